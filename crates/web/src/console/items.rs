//! 事项: the power catalogue, and its legal review: an agency drafts (or
//! revises) an item, the legal office approves or returns it, then it is
//! published; later suspended, resumed or revoked.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use hallsync_api::ops::items::{AddItem, ItemOut, ListItems, ReviewItem, ShowItem};
use hallsync_hall::operators::Role;
use hallsync_model::catalogue::{
    CaseType, Disclosure, ItemContent, ItemStatus, MaterialForm, COLUMNS,
};
use hallsync_model::ReviewAction;
use maud::{html, Markup};
use serde::Deserialize;

use super::text::{self, Refusal};
use super::{done, page, pager, posted, refusal, see_other, session, status_of, url, Ctx, PAGE};
use crate::App;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Browse {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    offset: String,
}

/// `GET /items`.
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
    let q = b.q.trim().chars().take(100).collect::<String>();
    let status = text::ITEM_STATUSES
        .into_iter()
        .find(|s| s.as_str() == b.status);
    let listed = ctx
        .run(ListItems {
            status,
            q: Some(q.clone()).filter(|q| !q.is_empty()),
            offset: super::offset(&b.offset),
            limit: PAGE,
        })
        .await;
    let pairs: Vec<(&str, String)> = vec![("q", q.clone()), ("status", b.status.clone())];
    let body = html! {
        form.filters method="get" action="/items" role="search" {
            div {
                label for="i-q" { "名称或实施编码" }
                input #i-q type="search" name="q" value=(q) maxlength="100";
            }
            div {
                label for="i-status" { "状态" }
                select #i-status name="status" {
                    option value="" { "全部" }
                    @for s in text::ITEM_STATUSES {
                        option value=(s.as_str()) selected[b.status == s.as_str()] { (text::item_status(s)) }
                    }
                }
            }
            div.go { button type="submit" { "查找" } }
            @if ctx.has(Role::Reviewer) {
                div.go { a.button href="/items/new" { "起草新事项" } }
            }
        }
        @match &listed {
            Err(e) => (refusal(&Refusal::of(e, None))),
            Ok(page) => {
                table.list #catalogue {
                    thead { tr { th { "实施编码" } th { "事项名称" } th { "类别" } th { "实施主体" } th { "法定 / 承诺时限" } th { "状态" } } }
                    tbody {
                        @if page.items.is_empty() { tr { td colspan="6" { "没有符合条件的事项。" } } }
                        @for i in &page.items {
                            tr {
                                td.code { a href=(url("/item", &[("code", &i.content.impl_code)])) { (i.content.impl_code) } }
                                td { (i.content.name) }
                                td { (i.content.category.name()) }
                                td { (i.content.agency) }
                                td.nowrap { (text::limit(i.content.statutory_limit)) " / " (text::limit(i.content.committed_limit)) }
                                td { span class=(format!("status {}", i.status)) { (text::item_status(i.status)) } }
                            }
                        }
                    }
                }
                (pager("/items", &pairs, super::offset(&b.offset), page.total))
            }
        }
    };
    page(&ctx, StatusCode::OK, "/items", "事项目录", body)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Code {
    #[serde(default)]
    code: String,
    #[serde(default)]
    done: Option<String>,
}

/// `GET /item?code=`.
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    Query(c): Query<Code>,
) -> Response {
    let ctx = match session(&app, &headers, &uri, None).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    render(&ctx, c.code.trim(), c.done.as_deref(), None, StatusCode::OK).await
}

async fn render(
    ctx: &Ctx,
    code: &str,
    done_key: Option<&str>,
    error: Option<Refusal>,
    status: StatusCode,
) -> Response {
    let item = match ctx.run(ShowItem { code: code.into() }).await {
        Ok(item) => item,
        Err(e) => {
            return page(
                ctx,
                status_of(&e),
                "/items",
                "事项",
                refusal(&Refusal::of(&e, None)),
            )
        }
    };
    let c = &item.content;
    let body = html! {
        (done(done_key))
        @if let Some(e) = &error { (refusal(e)) }
        div.columns {
            section.col.wide aria-labelledby="item-h" {
                h2 #item-h { "事项内容（第 " (item.version) " 版）" }
                dl.facts {
                    dt { "状态" } dd #item-status { strong { (text::item_status(item.view.status)) } }
                    dt { "实施编码" } dd.code { (c.impl_code) }
                    dt { "基本编码" } dd.code { (c.basic_code) }
                    dt { "类别" } dd { (c.category.name()) }
                    dt { "实施主体" } dd { (c.agency) " " span.code.muted { (c.agency_code) } }
                    dt { "承办机构" } dd { (c.office) }
                    dt { "时限" } dd { "法定 " (text::limit(c.statutory_limit)) "，承诺 " (text::limit(c.committed_limit)) }
                    dt { "设定依据" } dd { (c.legal_basis) }
                    dt { "受理条件" } dd { (c.conditions) }
                    dt { "申请材料" } dd {
                        @for m in &c.materials { (m.name) "；" }
                    }
                    dt { "办理流程" } dd { (c.steps.join(" → ")) }
                    dt { "咨询 / 投诉电话" } dd { (c.consult_phone) " / " (c.complaint_phone) }
                }
            }
            section.col aria-labelledby="review-h" {
                h2 #review-h { "法制审核" }
                (review_forms(ctx, &item))
                h3 { "审核记录" }
                ol.history {
                    @for r in &item.history {
                        li {
                            span.nowrap { (r.at) } " " strong { (text::review(r.action)) } " 第" (r.version) "版 · " (r.by)
                            @if !r.reason.is_empty() { "：" (r.reason) }
                        }
                    }
                }
            }
        }
    };
    page(ctx, status, "/items", &c.name, body)
}

fn review_forms(ctx: &Ctx, item: &ItemOut) -> Markup {
    if !ctx.has(Role::Reviewer) {
        return html! { p.muted { "起草、审核和发布事项需要「法制审核」岗位。" } };
    }
    let status = item.view.status;
    let code = &item.content.impl_code;
    html! {
        @for a in text::REVIEW_ACTIONS {
            @if a.apply(status).is_some() {
                form.grid.review method="post" action="/items/review"
                    data-confirm=[(a == ReviewAction::Revoked).then_some("确定取消该事项？取消后不能再受理办件，也不能恢复。")] {
                    (ctx.csrf_field())
                    input type="hidden" name="code" value=(code);
                    input type="hidden" name="action" value=(a.as_str());
                    @if a.needs_reason() {
                        label for=(format!("r-{}", a.as_str())) { "理由" }
                        input id=(format!("r-{}", a.as_str())) type="text" name="reason" required maxlength="2000";
                    }
                    span {}
                    button type="submit" { (text::review(a)) }
                }
            }
        }
        @if status != ItemStatus::Revoked {
            p { a.button href=(url("/items/new", &[("code", code)])) { "修订（形成新版本草稿）" } }
        }
    }
}

/// `POST /items/review`.
pub(crate) async fn review(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ctx, f) = match posted(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let code = f.get("code").trim().to_string();
    let Some(action) = ReviewAction::parse(f.get("action")) else {
        let r = Refusal::local("不认识的审核操作。请刷新页面后重试。", "action");
        return render(&ctx, &code, None, Some(r), StatusCode::BAD_REQUEST).await;
    };
    let op = ReviewItem {
        code: code.clone(),
        action,
        reason: f.get("reason").trim().to_string(),
        by: String::new(),
    };
    match ctx.run(op).await {
        Ok(_) => see_other(&url("/item", &[("code", &code), ("done", "reviewed")])),
        Err(e) => {
            let r = Refusal::of(
                &e,
                Some("事项的审核状态已经变化，这一步现在不能做。页面已显示最新状态。"),
            );
            render(&ctx, &code, None, Some(r), status_of(&e)).await
        }
    }
}

/// The form's fields: name, label, whether required, and how long.
const FIELDS: &[(&str, &str, bool, usize)] = &[
    ("name", "事项名称", true, 200),
    ("impl_code", "实施编码", true, 24),
    ("basic_code", "基本编码", true, 10),
    ("agency", "实施主体", true, 200),
    ("agency_code", "实施主体统一社会信用代码", false, 18),
    ("office", "承办机构", false, 200),
    ("statutory_limit", "法定时限（如 20个工作日）", true, 20),
    ("committed_limit", "承诺时限（如 10个工作日）", true, 20),
    ("legal_basis", "设定依据", false, 2000),
    ("conditions", "受理条件", false, 2000),
    (
        "materials",
        "申请材料（名称|原件/复印件|必需/可选；…）",
        false,
        4000,
    ),
    ("steps", "办理流程（受理→审核→决定）", false, 1000),
    ("fees", "收费（不收费，或 名称|标准|依据；…）", false, 2000),
    ("consult_phone", "咨询电话", false, 40),
    ("complaint_phone", "监督投诉电话", false, 40),
    ("co_departments", "联办机构（、分隔）", false, 1000),
    ("exercise_level", "行使层级（1-7）", false, 2),
    (
        "discretion",
        "自由裁量基准（情形|处罚幅度；…）",
        false,
        4000,
    ),
    ("effective", "生效日期", false, 10),
    ("cancel_date", "取消日期", false, 10),
];

/// An item's content as the form's texts (the forms its spreadsheet
/// columns take), so a revision starts from the version in force.
fn texts(c: &ItemContent) -> BTreeMap<&'static str, String> {
    let form = |f: MaterialForm| match f {
        MaterialForm::Original => "原件",
        MaterialForm::Copy => "复印件",
        MaterialForm::Both => "原件及复印件",
    };
    let mut t = BTreeMap::new();
    t.insert("name", c.name.clone());
    t.insert("impl_code", c.impl_code.clone());
    t.insert("basic_code", c.basic_code.clone());
    t.insert("category", c.category.name().to_string());
    t.insert("agency", c.agency.clone());
    t.insert("agency_code", c.agency_code.clone());
    t.insert("office", c.office.clone());
    t.insert("statutory_limit", text::limit(c.statutory_limit));
    t.insert("committed_limit", text::limit(c.committed_limit));
    t.insert("legal_basis", c.legal_basis.clone());
    t.insert("conditions", c.conditions.clone());
    t.insert(
        "materials",
        c.materials
            .iter()
            .map(|m| {
                format!(
                    "{}|{}|{}",
                    m.name,
                    form(m.form),
                    if m.mandatory { "必需" } else { "可选" }
                )
            })
            .collect::<Vec<_>>()
            .join("；"),
    );
    t.insert("steps", c.steps.join("→"));
    t.insert(
        "fees",
        if c.fees.is_empty() {
            "不收费".to_string()
        } else {
            c.fees
                .iter()
                .map(|f| format!("{}|{}|{}", f.name, f.standard, f.basis))
                .collect::<Vec<_>>()
                .join("；")
        },
    );
    t.insert("consult_phone", c.consult_phone.clone());
    t.insert("complaint_phone", c.complaint_phone.clone());
    t.insert("co_departments", c.co_departments.join("、"));
    t.insert("exercise_level", c.exercise_level.to_string());
    t.insert(
        "discretion",
        c.discretion
            .iter()
            .map(|d| format!("{}|{}", d.facts, d.range))
            .collect::<Vec<_>>()
            .join("；"),
    );
    t.insert(
        "effective",
        c.effective.map(|d| d.to_string()).unwrap_or_default(),
    );
    t.insert(
        "cancel_date",
        c.cancelled.map(|d| d.to_string()).unwrap_or_default(),
    );
    t.insert("case_type", c.case_type.as_str().to_string());
    t.insert("disclosure", c.disclosure.as_str().to_string());
    t
}

const CATEGORY_NAMES: [&str; 13] = [
    "行政许可",
    "行政处罚",
    "行政强制",
    "行政征收",
    "行政给付",
    "行政检查",
    "行政确认",
    "行政奖励",
    "行政裁决",
    "其他",
    "非许可审批",
    "行政征用",
    "公共服务",
];

fn draft_form(
    ctx: &Ctx,
    values: &BTreeMap<&'static str, String>,
    revising: bool,
    error: Option<Refusal>,
    status: StatusCode,
) -> Response {
    let v = |k: &str| values.get(k).map_or("", String::as_str);
    let input = |name: &str, label: &str, required: bool, max: usize| {
        let id = format!("d-{name}");
        html! {
            label for=(id) { (label) @if required { span.req aria-hidden="true" { " *" } } }
            @if max > 200 {
                textarea id=(id) name=(name) maxlength=(max) rows="2" required[required] { (v(name)) }
            } @else {
                input id=(id) type="text" name=(name) value=(v(name)) maxlength=(max) required[required]
                    readonly[revising && name == "impl_code"];
            }
        }
    };
    let (main, more) = FIELDS.split_at(15);
    let title = if revising {
        "修订事项"
    } else {
        "起草新事项"
    };
    let body = html! {
        @if let Some(e) = &error { (refusal(e)) }
        p.muted { "保存后为草稿，经法制审核通过后方可发布。带 * 的为必填项。" }
        form.grid.draft method="post" action="/items/new" {
            (ctx.csrf_field())
            @if revising { input type="hidden" name="revising" value="1"; }
            @for (name, label, required, max) in main {
                (input(name, label, *required, *max))
            }
            label for="d-category" { "权力类别" }
            select #d-category name="category" {
                @for c in CATEGORY_NAMES { option value=(c) selected[v("category") == c] { (c) } }
            }
            label for="d-case_type" { "办件类型" }
            select #d-case_type name="case_type" {
                @for (t, name) in [(CaseType::Committed, "承诺件"), (CaseType::Immediate, "即办件"), (CaseType::ForwardedUp, "上报件"), (CaseType::Parallel, "并联件")] {
                    option value=(t.as_str()) selected[v("case_type") == t.as_str()] { (name) }
                }
            }
            label for="d-disclosure" { "公开方式" }
            select #d-disclosure name="disclosure" {
                @for (d, name) in [(Disclosure::Public, "主动公开"), (Disclosure::OnRequest, "依申请公开"), (Disclosure::Confidential, "不予公开")] {
                    option value=(d.as_str()) selected[v("disclosure") == d.as_str()] { (name) }
                }
            }
            span {}
            details.more {
                summary { "其他字段" }
                div.grid {
                    @for (name, label, required, max) in more {
                        (input(name, label, *required, *max))
                    }
                }
            }
            span {}
            button type="submit" { "保存草稿" }
        }
    };
    page(ctx, status, "/items", title, body)
}

/// `GET /items/new[?code=]`: the form for a new item, or for a revision
/// of one.
pub(crate) async fn draft(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    Query(c): Query<Code>,
) -> Response {
    let ctx = match session(&app, &headers, &uri, None).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    if c.code.trim().is_empty() {
        return draft_form(&ctx, &BTreeMap::new(), false, None, StatusCode::OK);
    }
    match ctx
        .run(ShowItem {
            code: c.code.trim().into(),
        })
        .await
    {
        Ok(item) => draft_form(&ctx, &texts(&item.content), true, None, StatusCode::OK),
        Err(e) => draft_form(
            &ctx,
            &BTreeMap::new(),
            false,
            Some(Refusal::of(&e, None)),
            status_of(&e),
        ),
    }
}

/// `POST /items/new`: saves a draft (a new item, or a new version).
pub(crate) async fn save(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ctx, f) = match posted(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let mut values: BTreeMap<&'static str, String> = BTreeMap::new();
    for (field, _) in COLUMNS {
        let v = f.get(field).trim();
        if !v.is_empty() {
            values.insert(field, v.to_string());
        }
    }
    let op = AddItem {
        fields: values
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
        by: String::new(),
    };
    let revising = f.ticked("revising");
    match ctx.run(op).await {
        Ok(_) => see_other(&url(
            "/item",
            &[
                ("code", values.get("impl_code").map_or("", String::as_str)),
                ("done", "drafted"),
            ],
        )),
        Err(e) => {
            let mut r = Refusal::of(&e, Some("该事项已取消，不能再修订。"));
            if e.code == "invalid" {
                r.zh = format!(
                    "{} 出错的字段：{}。",
                    r.zh,
                    field_named(&e.message).unwrap_or("见技术详情")
                );
            }
            draft_form(&ctx, &values, revising, Some(r), status_of(&e))
        }
    }
}

/// The form's label of the field an error message begins with.
fn field_named(message: &str) -> Option<&'static str> {
    let field = message.split(':').next()?.trim();
    FIELDS
        .iter()
        .find(|f| f.0 == field)
        .map(|f| f.1)
        .or_else(|| (field == "category").then_some("权力类别"))
}
