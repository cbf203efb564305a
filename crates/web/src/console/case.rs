//! One case: its state and clock, the actions that fit its state, its
//! record, the orders about it; recording an event; the printed receipt.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use hallsync_api::ops::cases::{CaseOut, RecordEvent, ShowCase};
use hallsync_hall::operators::Role;
use hallsync_model::case::{EventKind, Outcome, Procedure, StartBasis};
use hallsync_model::time::DAY;
use hallsync_model::{LimitUnit, TimeLimit, Ts};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use super::text::{self, Refusal};
use super::{
    done, head, page, posted, refusal, see_other, session, status_of, url, when, with_headers, Ctx,
    Form,
};
use crate::App;

#[derive(Debug, Deserialize)]
pub(crate) struct Which {
    #[serde(default)]
    id: String,
    #[serde(default)]
    done: Option<String>,
}

/// An identity number with its middle hidden (the screen faces the hall).
fn masked(n: &str) -> String {
    let chars: Vec<char> = n.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 10))
}

/// `GET /case?id=`.
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<Which>,
) -> Response {
    let ctx = match session(&app, &headers, &uri, None).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    render(&ctx, q.id.trim(), q.done.as_deref(), None, StatusCode::OK).await
}

async fn render(
    ctx: &Ctx,
    id: &str,
    done_key: Option<&str>,
    error: Option<Refusal>,
    status: StatusCode,
) -> Response {
    let shown = if id.is_empty() {
        Err(Refusal::local("请输入办件编号。", "no case given"))
    } else {
        ctx.run(ShowCase { case: id.into() })
            .await
            .map_err(|e| Refusal::of(&e, None))
    };
    let out = match shown {
        Ok(out) => out,
        Err(r) => {
            let body = html! {
                (refusal(&r))
                p { a href="/window" { "返回窗口" } " · " a href="/cases" { "办件列表" } }
            };
            return page(ctx, StatusCode::NOT_FOUND, "/cases", "办件", body);
        }
    };
    let hall_name = super::cases::units(ctx)
        .await
        .remove(out.case.header.hall.as_str())
        .map(|(_, name)| name);
    let title = format!("办件 {}", out.case.header.number);
    let body = html! {
        (done(done_key))
        @if let Some(e) = &error { (refusal(e)) }
        div.columns {
            section.col aria-labelledby="facts-h" {
                h2 #facts-h { "办件信息" }
                (facts(&out, hall_name.as_deref()))
                (clock(&out))
                (cards(&out))
                p.actions {
                    a.button href=(url("/receipt", &[("id", out.row.id.as_str())])) { "打印受理通知书" }
                    @if ctx.is_hub() && ctx.has(Role::Supervisor) && out.row.header.region != ctx.node().region {
                        " "
                        a.button href=(url("/orders", &[("unit", out.row.header.region.as_str()), ("case", out.row.id.as_str())])) { "督办此件" }
                    }
                }
            }
            section.col.wide aria-labelledby="act-h" {
                h2 #act-h { "办理" }
                (actions(ctx, &out))
            }
        }
        section aria-labelledby="log-h" {
            h2 #log-h { "办理记录" }
            (record(&out))
        }
        @if !out.orders.is_empty() {
            section aria-labelledby="orders-h" {
                h2 #orders-h { "督办" }
                table.list {
                    thead { tr { th { "督办单" } th { "规则" } th { "等级" } th { "状态" } th { "反馈期限" } } }
                    tbody {
                        @for o in &out.orders {
                            tr {
                                td { a href=(url("/order", &[("id", o.id.as_str())])) { (o.id.key()) } }
                                td { (text::rule(o.order.header.rule)) }
                                td { span class=(format!("card {}", o.order.header.card)) { (text::card(o.order.header.card)) } }
                                td { (text::order_state(o.view.state)) }
                                td { (o.order.header.reply_due) }
                            }
                        }
                    }
                }
            }
        }
    };
    page(ctx, status, "/cases", &title, body)
}

/// The case's header; `hall_name` is the accepting hall's name when the
/// registry holds it.
fn facts(out: &CaseOut, hall_name: Option<&str>) -> Markup {
    let h = &out.case.header;
    let v = &out.row.view;
    html! {
        dl.facts {
            dt { "办件编号" } dd #case-number.code { (h.number) }
            dt { "事项" } dd { (h.item.name) " " span.muted.code { (h.item.impl_code) } }
            dt { "申请人" } dd { (h.applicant.name) }
            dt { "证件" } dd { (h.applicant.id_type) " " span.code { (masked(&h.applicant.id_number)) } }
            dt { "渠道" } dd { (text::channel(&h.channel)) }
            dt { "受理单位" } dd #case-unit {
                @if let Some(name) = hall_name { (name) " " span.muted.code { "(" (h.hall.as_str()) ")" } } @else { (h.hall.as_str()) }
                " · " (h.region.as_str())
            }
            dt { "状态" } dd #case-state { strong { (v.state.label()) } " " span.muted { "(" (v.state.code()) ")" } }
            @if !v.conflicts.is_empty() {
                dt { "冲突" } dd.warn { (v.conflicts.len()) " 条记录与状态不符（多级同时办理），已保留供核查" }
            }
        }
    }
}

/// The supervision cards the case holds (derived now).
fn cards(out: &CaseOut) -> Markup {
    html! {
        section #cards aria-labelledby="cards-h" {
            h3 #cards-h { "电子监察" }
            @if out.cards.is_empty() {
                p.muted { "未亮牌。" }
            } @else {
                ul.cards {
                    @for c in &out.cards {
                        li {
                            span class=(format!("card {}", c.card)) { (text::card(c.card)) }
                            " " (text::rule(c.rule)) " · " (c.since) " 起"
                            @if let Some(u) = c.until { "，" (u) " 止" }
                        }
                    }
                }
            }
        }
    }
}

fn clock(out: &CaseOut) -> Markup {
    let c = &out.row.clock;
    let v = &out.row.view;
    let paused_by_special = v.specials.last().is_some_and(|s| s.end.is_none());
    let state = if c.ended_at.is_some() {
        "已停止计时（已办结或终止）"
    } else if c.paused_now && paused_by_special {
        "暂停计时（特别程序）"
    } else if c.paused_now {
        "暂停计时（补正材料）"
    } else if c.accepted.is_none() {
        "未开始计时（未受理）"
    } else {
        "计时中"
    };
    let basis = c.accepted.map(|(_, b)| match b {
        StartBasis::Accepted => "受理之日",
        StartBasis::MaterialsComplete => "材料补齐之日",
        StartBasis::DeemedOnReceipt => "五个工作日内未受理也未告知补正，自收件之日起算",
    });
    html! {
        section #clock.clock aria-labelledby="clock-h" {
            h3 #clock-h { "时限" }
            p #clock-state class=(if c.paused_now { "state paused" } else { "state" }) { (state) }
            dl.facts {
                dt { "起算" } dd { (when(c.accepted.map(|a| a.0))) @if let Some(b) = basis { " " span.muted { "（" (b) "）" } } }
                dt { "承诺到期" } dd #committed-due {
                    (when(c.committed_due))
                    " " span.muted { "(" (text::limit(out.case.header.item.committed_limit)) ")" }
                    @if c.over_committed { " " strong.over { "已超承诺时限" } }
                }
                dt { "法定到期" } dd #statutory-due {
                    (when(c.statutory_due))
                    " " span.muted { "(" (text::limit(out.case.header.item.statutory_limit)) ")" }
                    @if c.over_statutory { " " strong.over { "已超法定时限" } }
                }
                dt { "已用" } dd #time-used { (text::used(c.used, c.unit)) }
                @if c.paused > 0 {
                    dt { "暂停累计" } dd { (text::used(c.paused, c.unit)) }
                }
            }
        }
    }
}

fn record(out: &CaseOut) -> Markup {
    let conflicted: Vec<&str> = out
        .row
        .view
        .conflicts
        .iter()
        .map(|c| c.event.as_str())
        .collect();
    html! {
        table.list #events {
            thead { tr { th { "时间" } th { "操作" } th { "经办人" } th { "记录节点" } th { "说明" } } }
            tbody {
                @for e in &out.case.events {
                    tr class=[conflicted.contains(&e.id.to_string().as_str()).then_some("conflict")] {
                        td.nowrap {
                            (e.at)
                            @if let Some(f) = out.clock_off.iter().find(|f| f.event == e.id) {
                                br; span.clockoff { (text::clock_off(f.ahead_secs)) }
                            }
                        }
                        td { (text::event(e.kind.name())) }
                        td { (e.by) }
                        td.code { (e.node.as_str()) }
                        td { (detail(&e.kind)) }
                    }
                }
            }
        }
    }
}

/// What an event says beyond its kind.
fn detail(k: &EventKind) -> String {
    match k {
        EventKind::SupplementRequested { materials } => format!("补正材料：{materials}"),
        EventKind::NotAccepted { reason, formal } => {
            format!("{}：{reason}", if *formal { "不予受理" } else { "不受理" })
        }
        EventKind::StepStarted { step } => step.clone(),
        EventKind::StepFinished {
            step,
            pass,
            opinion,
        } => format!("{step}：{}；{opinion}", if *pass { "通过" } else { "退回" }),
        EventKind::SpecialStarted {
            procedure,
            reason,
            until,
        } => format!(
            "{}：{reason}{}",
            text::procedure(*procedure),
            until.map_or(String::new(), |u| format!("（至 {u}）"))
        ),
        EventKind::SpecialEnded { result } => result.clone(),
        EventKind::Extended { amount, reason } => {
            format!("延长{}：{reason}", text::limit(*amount))
        }
        EventKind::FeeCharged { name, amount_fen } => format!(
            "{name} {}.{:02} 元",
            amount_fen / 100,
            amount_fen.rem_euclid(100)
        ),
        EventKind::Concluded {
            outcome,
            opinion,
            certificate,
        } => {
            let mut s = format!("{}：{opinion}", text::outcome(*outcome));
            if !certificate.is_empty() {
                s.push_str(&format!("；证照 {certificate}"));
            }
            s
        }
        EventKind::Withdrawn { reason }
        | EventKind::Recalled { reason }
        | EventKind::Revoked { reason } => reason.clone(),
        EventKind::CertificateDelivered { method } => format!("送达方式：{method}"),
        EventKind::Forwarded { to } => format!("上报至：{to}"),
        EventKind::Filed { office } => format!("备案机关：{office}"),
        EventKind::Rated { score } => format!("{score} 分"),
        EventKind::Received
        | EventKind::SupplementCompleted
        | EventKind::Accepted
        | EventKind::Published => String::new(),
    }
}

/// Irreversible actions ask first.
const CONFIRM: &[(&str, &str)] = &[
    ("not_accepted", "确定不予受理？此操作不可撤回。"),
    ("withdrawn", "确定登记申请人撤件？此操作不可撤回。"),
    ("recalled", "确定撤回该决定？"),
    ("revoked", "确定撤销该决定？"),
];

fn actions(ctx: &Ctx, out: &CaseOut) -> Markup {
    if !ctx.has(Role::Clerk) {
        return html! { p.muted { "办理办件需要「窗口人员」岗位。" } };
    }
    if out.allowed.is_empty() {
        return html! { p.muted { "该办件已终结，没有可办理的操作。" } };
    }
    let id = out.row.id.as_str();
    let statutory = out.case.header.item.statutory_limit.unit;
    html! {
        div #actions {
            @for kind in &out.allowed {
                (action(ctx, id, kind, out, statutory))
            }
        }
    }
}

fn action(ctx: &Ctx, id: &str, kind: &str, out: &CaseOut, statutory: LimitUnit) -> Markup {
    let label = text::event(kind);
    let confirm = CONFIRM.iter().find(|c| c.0 == kind).map(|c| c.1);
    let fields = fields(kind, out, statutory);
    let form = |fields: Markup| {
        html! {
            form.grid method="post" action="/case/event" data-confirm=[confirm] data-kind=(kind) {
                (ctx.csrf_field())
                input type="hidden" name="case" value=(id);
                input type="hidden" name="kind" value=(kind);
                (fields)
                span {}
                button type="submit" { (label) }
            }
        }
    };
    match fields {
        None => html! { div.quick { (form(html! {})) } },
        Some(fields) => html! {
            details.action data-kind=(kind) {
                summary { (label) }
                (form(fields))
            }
        },
    }
}

/// The inputs an event kind needs, or `None` for one that needs none.
fn fields(kind: &str, out: &CaseOut, statutory: LimitUnit) -> Option<Markup> {
    let field = |name: &str, label: &str, max: usize| {
        let id = format!("f-{name}-{}", kind);
        html! {
            label for=(id) { (label) }
            @if max > 200 {
                textarea id=(id) name=(name) required maxlength=(max) rows="2" {}
            } @else {
                input id=(id) type="text" name=(name) required maxlength=(max);
            }
        }
    };
    let id_of = |n: &str| format!("f-{n}-{kind}");
    Some(match kind {
        "supplement_requested" => field("materials", "需补正的材料（一次性告知）", 2000),
        "not_accepted" => html! {
            (field("reason", "理由", 2000))
            span {}
            label.check { input type="checkbox" name="formal" value="1" checked; " 作出不予受理决定（不勾选：不属本机关受理范围）" }
        },
        "step_started" => field("step", "环节名称（如 审核、决定）", 100),
        "step_finished" => html! {
            label for=(id_of("step")) { "环节" }
            select id=(id_of("step")) name="step" {
                @for s in &out.row.view.open_steps { option value=(s) { (s) } }
            }
            label for=(id_of("pass")) { "结果" }
            select id=(id_of("pass")) name="pass" { option value="1" { "通过" } option value="0" { "退回" } }
            (field("opinion", "意见", 2000))
        },
        "special_started" => html! {
            label for=(id_of("procedure")) { "程序" }
            select id=(id_of("procedure")) name="procedure" {
                @for (p, name) in text::PROCEDURES { option value=(p.as_str()) { (name) } }
            }
            (field("reason", "理由", 2000))
            label for=(id_of("until")) { "批准结束日期（可空）" }
            input id=(id_of("until")) type="date" name="until";
        },
        "special_ended" => field("result", "结果", 2000),
        "extended" => html! {
            input type="hidden" name="unit" value=(statutory.as_str());
            label for=(id_of("amount")) { "延长（" (text::unit(statutory)) "）" }
            input id=(id_of("amount")) type="number" name="amount" min="1" max="3650" required value="10";
            (field("reason", "理由及批准人", 2000))
        },
        "fee_charged" => html! {
            (field("name", "收费项目", 200))
            label for=(id_of("yuan")) { "金额（元）" }
            input id=(id_of("yuan")) type="text" name="yuan" required maxlength="16" inputmode="decimal" pattern="[0-9]+(\\.[0-9]{1,2})?";
        },
        "concluded" => html! {
            label for=(id_of("outcome")) { "结果" }
            select id=(id_of("outcome")) name="outcome" {
                @for (o, name) in text::OUTCOMES { option value=(o.as_str()) { (name) } }
            }
            label for=(id_of("opinion")) { "意见（不予许可须写明理由）" }
            textarea id=(id_of("opinion")) name="opinion" maxlength="2000" rows="2" {}
            label for=(id_of("certificate")) { "证照名称及编号（可空）" }
            input id=(id_of("certificate")) type="text" name="certificate" maxlength="200";
        },
        "withdrawn" | "recalled" | "revoked" => field("reason", "理由", 2000),
        "certificate_delivered" => field("method", "送达方式（如 窗口领取、邮寄）", 100),
        "forwarded" => field("to", "上报至（审批的上级部门或中心）", 200),
        "filed" => field("office", "备案机关（如 县电子监察室）", 200),
        "rated" => html! {
            label for=(id_of("score")) { "评价" }
            select id=(id_of("score")) name="score" {
                option value="5" { "5 非常满意" } option value="4" { "4 满意" } option value="3" { "3 基本满意" }
                option value="2" { "2 不满意" } option value="1" { "1 非常不满意" }
            }
        },
        _ => return None,
    })
}

/// Yuan as typed (`12`, `12.5`, `12.50`) in fen.
fn fen(yuan: &str) -> Option<i64> {
    let yuan = yuan.trim();
    let (whole, part) = yuan.split_once('.').unwrap_or((yuan, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || whole.len() > 10 || part.len() > 2 || !digits(part) {
        return None;
    }
    let cents: i64 = format!("{part:0<2}").parse().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

/// The event a form describes; the operation checks the rest.
fn event_of(f: &Form) -> Result<EventKind, Refusal> {
    let bad = |zh: &str, detail: &str| Refusal::local(zh, detail.to_string());
    let s = |k: &str| f.get(k).trim().to_string();
    Ok(match f.get("kind") {
        "supplement_requested" => EventKind::SupplementRequested {
            materials: s("materials"),
        },
        "supplement_completed" => EventKind::SupplementCompleted,
        "accepted" => EventKind::Accepted,
        "not_accepted" => EventKind::NotAccepted {
            reason: s("reason"),
            formal: f.ticked("formal"),
        },
        "step_started" => EventKind::StepStarted { step: s("step") },
        "step_finished" => EventKind::StepFinished {
            step: s("step"),
            pass: f.get("pass") != "0",
            opinion: s("opinion"),
        },
        "special_started" => EventKind::SpecialStarted {
            procedure: Procedure::parse(f.get("procedure"))
                .ok_or_else(|| bad("请选择特别程序的种类。", "procedure"))?,
            reason: s("reason"),
            until: match f.opt("until") {
                None => None,
                Some(d) => Some(
                    Ts::parse(&d)
                        .map_err(|e| bad("批准结束日期不是有效日期。", &e.to_string()))?
                        .plus(DAY),
                ),
            },
        },
        "special_ended" => EventKind::SpecialEnded {
            result: s("result"),
        },
        "extended" => EventKind::Extended {
            amount: TimeLimit::new(
                f.get("amount")
                    .trim()
                    .parse()
                    .map_err(|_| bad("延长时限请填写 1 至 3650 的整数。", "amount"))?,
                LimitUnit::parse(f.get("unit")).ok_or_else(|| bad("时限单位不对。", "unit"))?,
            ),
            reason: s("reason"),
        },
        "fee_charged" => EventKind::FeeCharged {
            name: s("name"),
            amount_fen: fen(f.get("yuan"))
                .ok_or_else(|| bad("金额请填写元，最多两位小数，如 12.50。", "yuan"))?,
        },
        "concluded" => EventKind::Concluded {
            outcome: Outcome::parse(f.get("outcome"))
                .ok_or_else(|| bad("请选择办结结果。", "outcome"))?,
            opinion: s("opinion"),
            certificate: s("certificate"),
        },
        "withdrawn" => EventKind::Withdrawn {
            reason: s("reason"),
        },
        "recalled" => EventKind::Recalled {
            reason: s("reason"),
        },
        "revoked" => EventKind::Revoked {
            reason: s("reason"),
        },
        "certificate_delivered" => EventKind::CertificateDelivered {
            method: s("method"),
        },
        "published" => EventKind::Published,
        "forwarded" => EventKind::Forwarded { to: s("to") },
        "filed" => EventKind::Filed {
            office: s("office"),
        },
        "rated" => EventKind::Rated {
            score: f
                .get("score")
                .parse()
                .map_err(|_| bad("请选择 1 至 5 分。", "score"))?,
        },
        other => {
            return Err(bad(
                "不认识的操作。请刷新页面后从列出的操作中选择。",
                &format!(
                    "unknown event kind {:?}",
                    other.chars().take(40).collect::<String>()
                ),
            ))
        }
    })
}

/// `POST /case/event`: records an event on a case.
pub(crate) async fn event(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ctx, f) = match posted(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let case = f.get("case").trim().to_string();
    let kind = match event_of(&f) {
        Ok(k) => k,
        Err(r) => return render(&ctx, &case, None, Some(r), StatusCode::BAD_REQUEST).await,
    };
    let op = RecordEvent {
        case: case.clone(),
        by: String::new(),
        at: None,
        event: kind,
    };
    match ctx.run(op).await {
        Ok(row) => see_other(&url("/case", &[("id", row.id.as_str()), ("done", "event")])),
        Err(e) => {
            let r = Refusal::of(
                &e,
                Some("办件状态已经变化，这项操作现在不能办理。页面已显示最新状态和现在可以办理的操作。"),
            );
            render(&ctx, &case, None, Some(r), status_of(&e)).await
        }
    }
}

/// `GET /receipt?id=`: the notice handed to the applicant (受理通知书), or
/// a receipt of the materials while the case is not accepted.
pub(crate) async fn receipt(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<Which>,
) -> Response {
    let ctx = match session(&app, &headers, &uri, None).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    let out = match ctx
        .run(ShowCase {
            case: q.id.trim().into(),
        })
        .await
    {
        Ok(out) => out,
        Err(e) => {
            return page(
                &ctx,
                status_of(&e),
                "/cases",
                "受理通知书",
                refusal(&Refusal::of(&e, None)),
            )
        }
    };
    let h = &out.case.header;
    let c = &out.row.clock;
    let accepted = out.row.view.accepted_at.is_some();
    let title = if accepted {
        "受理通知书"
    } else {
        "接件回执"
    };
    let handler = out
        .case
        .events
        .iter()
        .rev()
        .find(|e| matches!(e.kind, EventKind::Accepted | EventKind::Received))
        .map_or("", |e| e.by.as_str());
    let date = |t: Option<Ts>| {
        t.map_or_else(
            || "—".to_string(),
            |t| t.local().format("%Y年%m月%d日 %H:%M").to_string(),
        )
    };
    let markup = html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title))
            body.receipt {
                main #main {
                    p.noprint {
                        button type="button" data-print { "打印" }
                        " "
                        a href=(url("/case", &[("id", out.row.id.as_str())])) { "返回办件" }
                    }
                    article.paper {
                        p.center { (ctx.node().name) }
                        h1.center { (title) }
                        p.right { "编号：" span.code { (h.number) } }
                        p { (h.applicant.name) "：" }
                        @if accepted {
                            p.body { "你（单位）申请的「" (h.item.name) "」事项，申请材料齐全、符合法定形式，本中心已于 " (date(out.row.view.accepted_at)) " 予以受理。" }
                        } @else {
                            p.body { "你（单位）申请「" (h.item.name) "」事项的材料已于 " (date(out.row.view.received_at)) " 收到，现予登记，待审查后决定是否受理。" }
                        }
                        table.paper-table {
                            tr { th { "申请人" } td { (h.applicant.name) } th { "证件号码" } td.code { (h.applicant.id_type) " " (h.applicant.id_number) } }
                            tr { th { "申请事项" } td colspan="3" { (h.item.name) " （" (h.item.impl_code) "）" } }
                            tr { th { "实施主体" } td colspan="3" { (h.item.agency) } }
                            @if accepted {
                                tr { th { "承诺办结时限" } td { (text::limit(h.item.committed_limit)) } th { "承诺办结日期" } td { (date(c.committed_due)) } }
                                tr { th { "法定办结时限" } td { (text::limit(h.item.statutory_limit)) } th { "法定办结日期" } td { (date(c.statutory_due)) } }
                            }
                            tr { th { "受理渠道" } td { (text::channel(&h.channel)) } th { "经办人" } td { (handler) } }
                        }
                        p.note { "补正材料、听证、检验检测等特别程序所需时间不计入办理时限。请凭本通知书查询办理进度、领取结果。" }
                        p.right.stamp { (ctx.node().name) br; "（盖章）" br; (date(Some(ctx.now))) }
                    }
                }
            }
        }
    };
    with_headers(StatusCode::OK, markup.into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_are_read_as_fen_and_anything_else_is_refused() {
        assert_eq!(fen("12"), Some(1200));
        assert_eq!(fen("12.5"), Some(1250));
        assert_eq!(fen(" 0.05 "), Some(5));
        for bad in ["", "-1", "1.234", "1e3", "１２", "12.", ".5", "99999999999"] {
            assert_eq!(fen(bad), None, "{bad}");
        }
    }

    #[test]
    fn identity_numbers_on_screen_keep_only_their_ends() {
        assert_eq!(masked("140212199001011237"), "140212********1237");
        assert_eq!(masked("E1234"), "*****");
    }

    #[test]
    fn a_form_for_an_unknown_event_is_refused_in_chinese() {
        let f = Form(vec![("kind".into(), "explode".into())]);
        let r = event_of(&f).unwrap_err();
        assert!(r.zh.contains("不认识的操作"));
    }
}
