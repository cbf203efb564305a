//! 办件: the case list, soonest due first, with filters and paging; at a
//! hub, the cases of the halls below with a unit column to drill into.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use hallsync_api::ops::cases::ListCases;
use hallsync_api::ops::node::Status;
use hallsync_model::time::{parse_date, DAY};
use hallsync_model::{CaseState, RegionCode, Ts};
use maud::html;
use serde::Deserialize;

use super::text::Refusal;
use super::{page, pager, refusal, session, url, when, Ctx, PAGE};
use crate::App;

/// The filters, as typed (each read leniently; a bad one is named).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    state: String,
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    due_within: String,
    #[serde(default)]
    item: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    all: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    offset: String,
}

const STATES: [CaseState; 15] = [
    CaseState::Received,
    CaseState::Withdrawn,
    CaseState::Accepted,
    CaseState::NotAccepted,
    CaseState::Rejected,
    CaseState::SupplementStarted,
    CaseState::SupplementEnded,
    CaseState::Handling,
    CaseState::SpecialStarted,
    CaseState::SpecialEnded,
    CaseState::Approved,
    CaseState::ApprovedWithDeficiencies,
    CaseState::Refused,
    CaseState::Recalled,
    CaseState::Revoked,
];

impl Filters {
    /// The operation they ask for, and what could not be read.
    fn op(&self) -> (ListCases, Vec<String>) {
        let mut bad = Vec::new();
        let date = |s: &str, what: &str, bad: &mut Vec<String>| {
            let s = s.trim();
            if s.is_empty() {
                return None;
            }
            match parse_date(s) {
                Ok(d) => Some(Ts::start_of(d)),
                Err(_) => {
                    bad.push(format!(
                        "{what}“{}”不是有效日期（应为 年-月-日）",
                        s.chars().take(20).collect::<String>()
                    ));
                    None
                }
            }
        };
        let state = match self.state.trim() {
            "" => None,
            s => {
                let parsed = CaseState::parse(s);
                if parsed.is_none() {
                    bad.push("办件状态不对".into());
                }
                parsed
            }
        };
        let due_within = match self.due_within.trim() {
            "" => None,
            s => match s.parse::<u32>() {
                Ok(n) if (1..=365).contains(&n) => Some(n),
                _ => {
                    bad.push("“几个工作日内到期”应为 1 至 365 的整数".into());
                    None
                }
            },
        };
        let unit = match self.unit.trim() {
            "" => None,
            s => match RegionCode::parse(s) {
                Ok(r) => Some(r),
                Err(_) => {
                    bad.push("单位的行政区划代码不对".into());
                    None
                }
            },
        };
        let received_from = date(&self.from, "受理起始日期", &mut bad);
        let received_before = date(&self.to, "受理截止日期", &mut bad).map(|t| t.plus(DAY));
        let item =
            Some(self.item.trim().chars().take(60).collect::<String>()).filter(|s| !s.is_empty());
        let op = ListCases {
            state,
            overdue: !self.overdue.is_empty(),
            due_within,
            item,
            all: !self.all.is_empty(),
            offset: super::offset(&self.offset),
            limit: PAGE,
            unit,
            received_from,
            received_before,
        };
        (op, bad)
    }

    /// The filters as a query string's pairs (for paging links).
    fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("state", &self.state),
            ("overdue", &self.overdue),
            ("due_within", &self.due_within),
            ("item", &self.item),
            ("from", &self.from),
            ("to", &self.to),
            ("all", &self.all),
            ("unit", &self.unit),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.trim().chars().take(60).collect()))
        .collect()
    }
}

/// The halls below this one that the registry names: region → name.
pub(crate) async fn units(ctx: &Ctx) -> BTreeMap<String, (String, String)> {
    let here = ctx.node().region.clone();
    match ctx.run(Status {}).await {
        Ok(status) => status
            .registry
            .into_iter()
            .filter(|n| {
                RegionCode::parse(&n.region).is_ok_and(|r| here.is_ancestor_of(&r) || r == here)
            })
            .map(|n| (n.id, (n.region, n.name)))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// `GET /cases`.
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    Query(f): Query<Filters>,
) -> Response {
    let ctx = match session(&app, &headers, &uri, None).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    let (op, bad) = f.op();
    let offset = op.offset;
    let listed = ctx.run(op).await;
    let hub = ctx.is_hub();
    let known = if hub {
        units(&ctx).await
    } else {
        BTreeMap::new()
    };
    let pairs = f.pairs();
    let body = html! {
        form.filters method="get" action="/cases" aria-label="筛选" {
            div {
                label for="f-state" { "状态" }
                select #f-state name="state" {
                    option value="" { "全部在办" }
                    @for s in STATES {
                        option value=(s.name()) selected[f.state == s.name()] { (s.label()) }
                    }
                }
            }
            div {
                label for="f-due" { "几个工作日内到期" }
                input #f-due type="number" name="due_within" min="1" max="365" value=(f.due_within);
            }
            div {
                label for="f-item" { "事项编码" }
                input #f-item type="text" name="item" maxlength="60" value=(f.item);
            }
            div {
                label for="f-from" { "受理日期自" }
                input #f-from type="date" name="from" value=(f.from);
            }
            div {
                label for="f-to" { "至" }
                input #f-to type="date" name="to" value=(f.to);
            }
            @if hub {
                div {
                    label for="f-unit" { "单位" }
                    select #f-unit name="unit" {
                        option value="" { "本级及全部下级" }
                        @for (region, name) in known.values() {
                            option value=(region) selected[f.unit.trim() == region] { (name) }
                        }
                    }
                }
            }
            div.checks {
                label.check { input type="checkbox" name="overdue" value="1" checked[!f.overdue.is_empty()]; " 已超期" }
                label.check { input type="checkbox" name="all" value="1" checked[!f.all.is_empty()]; " 含已办结" }
            }
            div.go { button type="submit" { "筛选" } " " a href="/cases" { "清除" } }
        }
        @if !bad.is_empty() {
            (refusal(&Refusal::local(format!("以下条件未采用：{}。", bad.join("；")), "filters")))
        }
        @match &listed {
            Err(e) => (refusal(&Refusal::of(e, None))),
            Ok(list) => {
                @if !list.calendar_covers {
                    p.warn { "本年度节假日安排尚未导入，工作日暂按周一至周五计算。请系统管理员导入节假日日历。" }
                }
                table.list #cases {
                    thead {
                        tr {
                            th { "办件编号" }
                            th { "事项" }
                            th { "申请人" }
                            th { "状态" }
                            th { "受理时间" }
                            th { "承诺到期" }
                            th { "时限" }
                            @if hub { th { "单位" } }
                        }
                    }
                    tbody {
                        @if list.page.items.is_empty() {
                            tr { td colspan=(if hub { 8 } else { 7 }) { "没有符合条件的办件。" } }
                        }
                        @for r in &list.page.items {
                            tr class=[r.clock.over_committed.then_some("late")] {
                                td.code { a href=(url("/case", &[("id", r.id.as_str())])) { (r.header.number) } }
                                td { (r.header.item.name) }
                                td { (r.header.applicant.masked_name()) }
                                td { (r.view.state.label()) }
                                td.nowrap { (when(r.clock.accepted.map(|a| a.0))) }
                                td.nowrap { (when(r.clock.committed_due)) }
                                td {
                                    @if r.clock.over_statutory { strong.over { "超法定时限" } }
                                    @else if r.clock.over_committed { strong.over { "超承诺时限" } }
                                    @else if r.clock.paused_now { span.paused { "暂停计时" } }
                                    @else { "正常" }
                                }
                                @if hub {
                                    td.unit {
                                        @let name = known.get(r.header.hall.as_str()).map_or(r.header.hall.as_str(), |k| k.1.as_str());
                                        a href=(url("/cases", &[("unit", r.header.region.as_str())])) title="只看该单位的办件" { (name) }
                                    }
                                }
                            }
                        }
                    }
                }
                (pager("/cases", &pairs, offset, list.page.total))
            }
        }
    };
    let status = match &listed {
        Ok(_) => StatusCode::OK,
        Err(e) => super::status_of(e),
    };
    page(&ctx, status, "/cases", "办件", body)
}
