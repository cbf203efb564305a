//! 督办: supervision orders. A hub issues one to a hall below about one of
//! its cases; that hall replies; the hub closes it.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use hallsync_api::ops::node::Status;
use hallsync_api::ops::orders::{
    AppealOrder, CloseOrder, DecideAppeal, IssueOrder, ListOrders, ReplyOrder, ShowOrder,
};
use hallsync_api::ops::warnings::{ListWarnings, WarningList};
use hallsync_hall::operators::Role;
use hallsync_model::order::{Card, OrderAction, OrderState, Resolution, Rule, Verdict};
use hallsync_model::{LimitUnit, RegionCode, TimeLimit};
use maud::{html, Markup};
use serde::Deserialize;

use super::text::{self, Refusal};
use super::{
    done, page, pager, posted, refusal, see_other, session, status_of, url, Ctx, Form, PAGE,
};
use crate::App;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Browse {
    #[serde(default)]
    open: String,
    #[serde(default)]
    late: String,
    #[serde(default)]
    offset: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    case: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    card: String,
    /// The level the cards list shows (empty: all).
    #[serde(default)]
    cards: String,
}

/// What the issue form holds (kept when a refusal sends it back).
#[derive(Debug, Default)]
struct Draft {
    unit: String,
    case: String,
    rule: String,
    card: String,
    reason: String,
    department: String,
    within: String,
    within_unit: String,
}

/// `GET /orders`.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    Query(b): Query<Browse>,
) -> Response {
    let ctx = match session(&app, &headers, &uri, None).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    let draft = Draft {
        unit: b.unit.trim().chars().take(20).collect(),
        case: b.case.trim().chars().take(120).collect(),
        rule: Rule::parse(b.rule.trim())
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        card: Card::parse(b.card.trim())
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        ..Draft::default()
    };
    render_list(&ctx, &b, &draft, None, StatusCode::OK).await
}

async fn render_list(
    ctx: &Ctx,
    b: &Browse,
    draft: &Draft,
    error: Option<Refusal>,
    status: StatusCode,
) -> Response {
    let listed = ctx
        .run(ListOrders {
            open: !b.open.is_empty(),
            late: !b.late.is_empty(),
            offset: super::offset(&b.offset),
            limit: PAGE,
        })
        .await;
    let issuing = ctx.is_hub() && ctx.has(Role::Supervisor);
    let here = ctx.node().region.clone();
    let below: Vec<(String, String)> = if issuing {
        match ctx.run(Status {}).await {
            Ok(s) => s
                .registry
                .into_iter()
                .filter(|n| RegionCode::parse(&n.region).is_ok_and(|r| here.is_ancestor_of(&r)))
                .map(|n| (n.region, n.name))
                .collect(),
            Err(_) => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let pairs = vec![("open", b.open.clone()), ("late", b.late.clone())];
    let level = Card::parse(b.cards.trim());
    let warnings = ctx
        .run(ListWarnings {
            card: level,
            limit: PAGE,
            ..ListWarnings::default()
        })
        .await;
    let body = html! {
        @if let Some(e) = &error { (refusal(e)) }
        section aria-labelledby="cards-h" {
            h2 #cards-h { "亮牌预警" }
            form.filters method="get" action="/orders" aria-label="亮牌筛选" {
                div {
                    label for="f-cards" { "等级" }
                    select #f-cards name="cards" {
                        option value="" { "全部" }
                        @for c in Card::ALL.iter().rev() { option value=(c.as_str()) selected[level == Some(*c)] { (text::card(*c)) } }
                    }
                }
                div.go { button type="submit" { "筛选" } }
            }
            (cards_table(ctx, &warnings, &below, issuing.then_some(&here)))
        }
        div.columns {
            section.col.wide aria-labelledby="list-h" {
                h2 #list-h { "督办单" }
                form.filters method="get" action="/orders" aria-label="筛选" {
                    div.checks {
                        label.check { input type="checkbox" name="open" value="1" checked[!b.open.is_empty()]; " 未办结" }
                        label.check { input type="checkbox" name="late" value="1" checked[!b.late.is_empty()]; " 反馈超期" }
                    }
                    div.go { button type="submit" { "筛选" } }
                }
                @match &listed {
                    Err(e) => (refusal(&Refusal::of(e, None))),
                    Ok(list) => {
                        table.list #orders {
                            thead { tr { th { "督办单" } th { "被督办单位" } th { "规则" } th { "等级" } th { "状态" } th { "反馈期限" } } }
                            tbody {
                                @if list.page.items.is_empty() { tr { td colspan="6" { "没有督办单。" } } }
                                @for o in &list.page.items {
                                    tr class=[o.view.reply_late.then_some("late")] {
                                        td.code { a href=(url("/order", &[("id", o.id.as_str())])) { (o.id.key()) } }
                                        td { (unit_name(&below, o.order.header.unit.as_str())) }
                                        td { (text::rule(o.order.header.rule)) }
                                        td { span class=(format!("card {}", o.order.header.card)) { (text::card(o.order.header.card)) } }
                                        td { (text::order_state(o.view.state)) @if o.view.reply_late { " " strong.over { "超期" } } }
                                        td.nowrap { (o.order.header.reply_due) }
                                    }
                                }
                            }
                        }
                        (pager("/orders", &pairs, super::offset(&b.offset), list.page.total))
                    }
                }
            }
            @if issuing {
                section.col aria-labelledby="issue-h" {
                    h2 #issue-h { "发出督办" }
                    (issue_form(ctx, &below, draft))
                }
            }
        }
    };
    page(ctx, status, "/orders", "督办", body)
}

/// The cards standing now, red first. `issuer`: the hub's region when the
/// operator may issue orders; each card of a hall below it then has a
/// button that issues an order from it in one click (after a confirmation),
/// three working days to reply.
fn cards_table(
    ctx: &Ctx,
    listed: &Result<WarningList, hallsync_api::ApiError>,
    below: &[(String, String)],
    issuer: Option<&RegionCode>,
) -> Markup {
    html! {
        @match listed {
            Err(e) => (refusal(&Refusal::of(e, None))),
            Ok(list) => {
                table.list #cards {
                    thead { tr { th { "办件" } th { "单位" } th { "事项" } th { "规则" } th { "等级" } th { "亮牌时间" } @if issuer.is_some() { th { "督办" } } } }
                    tbody {
                        @if list.page.items.is_empty() { tr { td colspan="7" { "没有亮牌。" } } }
                        @for w in &list.page.items {
                            tr {
                                td.code { a href=(url("/case", &[("id", w.case.as_str())])) { (w.number) } }
                                td { (unit_name(below, w.unit.as_str())) }
                                td { (w.item) }
                                td { (text::rule(w.card.rule)) }
                                td {
                                    span class=(format!("card {}", w.card.card)) { (text::card(w.card.card)) }
                                    @if let Some(ahead) = w.clock_off {
                                        " " span.clockoff title="记录办件时间时该节点的时钟偏差超过 5 分钟，亮牌可能有误" { (text::clock_off(ahead)) }
                                    }
                                }
                                td.nowrap { (w.card.since) }
                                @if let Some(here) = issuer {
                                    td {
                                        @if let Some(o) = &w.order {
                                            "已督办 " a href=(url("/order", &[("id", o.as_str())])) { (o.key()) }
                                        } @else if here.is_ancestor_of(&w.unit) {
                                            form.oneclick method="post" action="/orders/issue" data-confirm=(format!("按此{}向{}发出督办，3 个工作日内反馈？", text::card(w.card.card), unit_name(below, w.unit.as_str()))) {
                                                (ctx.csrf_field())
                                                input type="hidden" name="unit" value=(w.unit.as_str());
                                                input type="hidden" name="case" value=(w.case.as_str());
                                                input type="hidden" name="rule" value=(w.card.rule.as_str());
                                                input type="hidden" name="card" value=(w.card.card.as_str());
                                                input type="hidden" name="reason" value=(format!("{}{}，自 {} 起。请说明原因并整改。", text::rule(w.card.rule), text::card(w.card.card), w.card.since));
                                                input type="hidden" name="within" value="3";
                                                input type="hidden" name="within_unit" value=(LimitUnit::WorkingDays.as_str());
                                                button type="submit" { "督办此件" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if list.page.total > list.page.items.len() {
                    p.muted { "共 " (list.page.total) " 条，显示前 " (list.page.items.len()) " 条；命令行 hallsync warning list 可列出全部。" }
                }
            }
        }
    }
}

fn unit_name<'a>(below: &'a [(String, String)], region: &'a str) -> &'a str {
    below
        .iter()
        .find(|(r, _)| r == region)
        .map_or(region, |(_, n)| n.as_str())
}

fn issue_form(ctx: &Ctx, below: &[(String, String)], d: &Draft) -> Markup {
    let within = if d.within.is_empty() {
        "3"
    } else {
        d.within.as_str()
    };
    html! {
        form.grid #issue method="post" action="/orders/issue" {
            (ctx.csrf_field())
            label for="o-unit" { "被督办单位（区划代码）" }
            input #o-unit type="text" name="unit" value=(d.unit) required maxlength="20" list="o-units" autocomplete="off";
            datalist #o-units {
                @for (region, name) in below { option value=(region) { (name) } }
            }
            label for="o-case" { "办件编号" }
            input #o-case type="text" name="case" value=(d.case) required maxlength="120";
            label for="o-rule" { "督办规则" }
            select #o-rule name="rule" {
                @for r in Rule::ALL { option value=(r.as_str()) selected[d.rule == r.as_str()] { (text::rule(*r)) } }
            }
            label for="o-card" { "等级" }
            select #o-card name="card" {
                @for c in Card::ALL { option value=(c.as_str()) selected[d.card == c.as_str() || (d.card.is_empty() && *c == Card::Yellow)] { (text::card(*c)) } }
            }
            label for="o-reason" { "督办事由" }
            textarea #o-reason name="reason" required maxlength="2000" rows="3" { (d.reason) }
            label for="o-dept" { "责任科室（可空）" }
            input #o-dept type="text" name="department" value=(d.department) maxlength="100";
            label for="o-within" { "反馈期限" }
            div.pair {
                input #o-within type="number" name="within" min="1" max="3650" required value=(within) aria-label="数量";
                select name="within_unit" aria-label="单位" {
                    @for u in text::UNITS { option value=(u.as_str()) selected[d.within_unit == u.as_str()] { (text::unit(u)) } }
                }
            }
            span {}
            button type="submit" { "发出督办" }
        }
    }
}

/// `POST /orders/issue`.
pub(crate) async fn issue(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ctx, f) = match posted(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let d = Draft {
        unit: f.get("unit").trim().to_string(),
        case: f.get("case").trim().to_string(),
        rule: f.get("rule").to_string(),
        card: f.get("card").to_string(),
        reason: f.get("reason").trim().to_string(),
        department: f.get("department").trim().to_string(),
        within: f.get("within").trim().to_string(),
        within_unit: f.get("within_unit").to_string(),
    };
    let back = |r: Refusal, status: StatusCode| {
        let ctx = &ctx;
        let d = &d;
        async move { render_list(ctx, &Browse::default(), d, Some(r), status).await }
    };
    let bad = |zh: &str| Refusal::local(zh, "issue form");
    let Ok(unit) = RegionCode::parse(&d.unit) else {
        return back(
            bad("被督办单位的行政区划代码不对（如 140212101）。"),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let (Some(rule), Some(card)) = (Rule::parse(&d.rule), Card::parse(&d.card)) else {
        return back(bad("请选择督办规则和等级。"), StatusCode::BAD_REQUEST).await;
    };
    let within = d
        .within
        .parse::<u32>()
        .ok()
        .zip(LimitUnit::parse(&d.within_unit));
    let Some((amount, unit_of_time)) = within else {
        return back(
            bad("反馈期限请填写整数并选择单位。"),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let op = IssueOrder {
        unit,
        case: d.case.clone(),
        rule,
        card,
        reason: d.reason.clone(),
        department: d.department.clone(),
        reply_within: TimeLimit::new(amount, unit_of_time),
        by: String::new(),
    };
    match ctx.run(op).await {
        Ok(row) => see_other(&url(
            "/order",
            &[("id", row.id.as_str()), ("done", "issued")],
        )),
        Err(e) => {
            let card = "不能按此规则和等级督办：办件须持有所选的亮牌（亮牌列表中可见），被申诉撤销的亮牌不再督办，同一张牌本中心只督办一次。原因见“技术详情”。";
            back(Refusal::of(&e, Some(card)), status_of(&e)).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Which {
    #[serde(default)]
    id: String,
    #[serde(default)]
    done: Option<String>,
}

/// `GET /order?id=`.
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    Query(w): Query<Which>,
) -> Response {
    let ctx = match session(&app, &headers, &uri, None).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    render_order(&ctx, w.id.trim(), w.done.as_deref(), None, StatusCode::OK).await
}

async fn render_order(
    ctx: &Ctx,
    id: &str,
    done_key: Option<&str>,
    error: Option<Refusal>,
    status: StatusCode,
) -> Response {
    let o = match ctx.run(ShowOrder { order: id.into() }).await {
        Ok(o) => o,
        Err(e) => {
            return page(
                ctx,
                status_of(&e),
                "/orders",
                "督办单",
                refusal(&Refusal::of(&e, None)),
            )
        }
    };
    let h = &o.order.header;
    let here = &ctx.node().region;
    let open = o.view.state != OrderState::Closed;
    let oid = o.id.as_str();
    let body = html! {
        (done(done_key))
        @if let Some(e) = &error { (refusal(e)) }
        div.columns {
            section.col.wide aria-labelledby="o-h" {
                h2 #o-h { "督办内容" }
                dl.facts {
                    dt { "状态" } dd #order-state { strong { (text::order_state(o.view.state)) } @if o.view.reply_late { " " strong.over { "反馈超期" } } }
                    dt { "被督办单位" } dd { (h.unit.as_str()) @if !h.department.is_empty() { " · " (h.department) } }
                    dt { "督办单位" } dd { (h.issuer_node.as_str()) " · " (h.issuer.as_str()) }
                    dt { "办件" } dd.code { a href=(url("/case", &[("id", h.case.as_str())])) { (h.case.key()) } }
                    dt { "规则 / 等级" } dd { (text::rule(h.rule)) " · " span class=(format!("card {}", h.card)) { (text::card(h.card)) } }
                    dt { "事由" } dd { (h.reason) }
                    dt { "发出" } dd { (h.issued_at) " · " (h.issued_by) }
                    dt { "反馈期限" } dd { (h.reply_due) }
                    @if let Some((r, at)) = o.view.closed { dt { "办结" } dd { (text::resolution(r)) " · " (at) } }
                    @if let Some(a) = o.view.appeal {
                        dt { "申诉" } dd #order-appeal {
                            (a.filed) " 提出；"
                            @match a.verdict {
                                None => { strong { "待督办单位裁决" } }
                                Some((v, at)) => { strong { (text::verdict(v)) } " · " (at) }
                            }
                        }
                    }
                }
                h3 { "反馈与办结" }
                ol.history #order-events {
                    @if o.order.events.is_empty() { li.muted { "尚无反馈。" } }
                    @for e in &o.order.events {
                        li {
                            span.nowrap { (e.at) } " " (e.by) " · " (e.node.as_str()) "："
                            @match &e.action {
                                OrderAction::Reply { text } => { strong { "反馈" } " " (text) }
                                OrderAction::Close { resolution, text } => { strong { "办结（" (text::resolution(*resolution)) "）" } " " (text) }
                                OrderAction::Appeal { text } => { strong { "申诉" } " " (text) }
                                OrderAction::Decide { verdict, text } => { strong { "裁决（" (text::verdict(*verdict)) "）" } " " (text) }
                            }
                        }
                    }
                }
            }
            section.col aria-labelledby="act-h" {
                h2 #act-h { "办理" }
                @if !open {
                    p.muted { "督办已办结。" }
                } @else if *here == h.unit && ctx.has(Role::Clerk) {
                    form.grid #reply method="post" action="/orders/reply" {
                        (ctx.csrf_field())
                        input type="hidden" name="order" value=(oid);
                        label for="reply-text" { "整改情况" }
                        textarea #reply-text name="text" required maxlength="2000" rows="4" {}
                        span {}
                        button type="submit" { "提交反馈" }
                    }
                    @if o.view.appeal.is_none() {
                        h3 { "申诉" }
                        form.grid #appeal method="post" action="/orders/appeal" data-confirm="每张督办单只能申诉一次，确定提交？" {
                            (ctx.csrf_field())
                            input type="hidden" name="order" value=(oid);
                            label for="appeal-text" { "申诉理由" }
                            textarea #appeal-text name="text" required maxlength="2000" rows="3" placeholder="亮牌有误的理由，如申请人补正期间不计时" {}
                            span {}
                            button type="submit" { "提出申诉" }
                        }
                    }
                } @else if *here == h.issuer && ctx.has(Role::Supervisor) && o.view.state == OrderState::Appealed {
                    form.grid #decide method="post" action="/orders/decide" {
                        (ctx.csrf_field())
                        input type="hidden" name="order" value=(oid);
                        label for="decide-verdict" { "裁决" }
                        select #decide-verdict name="verdict" {
                            @for v in Verdict::ALL { option value=(v.as_str()) { (text::verdict(*v)) } }
                        }
                        label for="decide-text" { "理由" }
                        textarea #decide-text name="text" required maxlength="2000" rows="3" {}
                        span {}
                        button type="submit" { "裁决申诉" }
                    }
                } @else if *here == h.issuer && ctx.has(Role::Supervisor) {
                    form.grid #close method="post" action="/orders/close" data-confirm="确定办结该督办？办结后不能再反馈。" {
                        (ctx.csrf_field())
                        input type="hidden" name="order" value=(oid);
                        label for="close-result" { "结果" }
                        select #close-result name="result" {
                            @for r in Resolution::ALL { option value=(r.as_str()) { (text::resolution(*r)) } }
                        }
                        label for="close-text" { "意见" }
                        textarea #close-text name="text" required maxlength="2000" rows="3" {}
                        span {}
                        button type="submit" { "办结督办" }
                    }
                } @else {
                    p.muted { "由被督办单位反馈、督办单位办结；您的岗位或本中心不能办理这一步。" }
                }
            }
        }
    };
    page(
        ctx,
        status,
        "/orders",
        &format!("督办单 {}", o.id.key()),
        body,
    )
}

async fn answer<O: hallsync_api::Op>(ctx: &Ctx, f: &Form, op: O, done_key: &str) -> Response {
    let id = f.get("order").trim().to_string();
    match ctx.run(op).await {
        Ok(_) => see_other(&url("/order", &[("id", &id), ("done", done_key)])),
        Err(e) => {
            let r = Refusal::of(
                &e,
                Some("督办单已经办结，或这一步不归本中心办理。页面已显示最新状态。"),
            );
            render_order(ctx, &id, None, Some(r), status_of(&e)).await
        }
    }
}

/// `POST /orders/reply`: the unit's reply.
pub(crate) async fn reply(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ctx, f) = match posted(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let op = ReplyOrder {
        order: f.get("order").trim().to_string(),
        text: f.get("text").trim().to_string(),
        by: String::new(),
    };
    answer(&ctx, &f, op, "replied").await
}

/// `POST /orders/close`: the issuer closes the order.
pub(crate) async fn close(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ctx, f) = match posted(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let Some(result) = Resolution::parse(f.get("result")) else {
        let r = Refusal::local("请选择办结结果。", "result");
        let id = f.get("order").trim().to_string();
        return render_order(&ctx, &id, None, Some(r), StatusCode::BAD_REQUEST).await;
    };
    let op = CloseOrder {
        order: f.get("order").trim().to_string(),
        result,
        text: f.get("text").trim().to_string(),
        by: String::new(),
    };
    answer(&ctx, &f, op, "closed").await
}

/// `POST /orders/appeal`: the unit appeals the order's card.
pub(crate) async fn appeal(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ctx, f) = match posted(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let op = AppealOrder {
        order: f.get("order").trim().to_string(),
        text: f.get("text").trim().to_string(),
        by: String::new(),
    };
    answer(&ctx, &f, op, "appealed").await
}

/// `POST /orders/decide`: the issuer decides the appeal.
pub(crate) async fn decide(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ctx, f) = match posted(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let Some(verdict) = Verdict::parse(f.get("verdict")) else {
        let r = Refusal::local("请选择裁决结果。", "verdict");
        let id = f.get("order").trim().to_string();
        return render_order(&ctx, &id, None, Some(r), StatusCode::BAD_REQUEST).await;
    };
    let op = DecideAppeal {
        order: f.get("order").trim().to_string(),
        verdict,
        text: f.get("text").trim().to_string(),
        by: String::new(),
    };
    answer(&ctx, &f, op, "decided").await
}
