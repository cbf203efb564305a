//! 窗口: find a catalogue item, accept an application under it.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use hallsync_api::ops::cases::AcceptCase;
use hallsync_api::ops::items::{ListItems, ShowItem};
use hallsync_model::case::CHANNELS;
use hallsync_model::catalogue::{ItemStatus, MaterialForm};
use hallsync_model::idcheck::check_id_number;
use maud::{html, Markup};
use serde::Deserialize;

use super::text::{self, Refusal};
use super::{done, page, posted, refusal, see_other, session, status_of, url, Ctx};
use crate::App;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Find {
    #[serde(default)]
    q: String,
    #[serde(default)]
    item: String,
    #[serde(default)]
    done: Option<String>,
}

/// What the accept form holds (kept when a refusal sends it back).
#[derive(Debug, Default)]
struct Applicant {
    name: String,
    id_type: String,
    id_number: String,
    channel: String,
    receive_only: bool,
}

/// `GET /window`.
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<Find>,
) -> Response {
    match session(&app, &headers, &uri, None).await {
        Ok(ctx) => render(&ctx, &q, &Applicant::default(), None, StatusCode::OK).await,
        Err(resp) => resp,
    }
}

async fn render(
    ctx: &Ctx,
    q: &Find,
    form: &Applicant,
    error: Option<Refusal>,
    status: StatusCode,
) -> Response {
    let query = q.q.trim().chars().take(100).collect::<String>();
    let found = if query.is_empty() {
        None
    } else {
        Some(
            ctx.run(ListItems {
                status: Some(ItemStatus::Published),
                q: Some(query.clone()),
                offset: 0,
                limit: 10,
            })
            .await,
        )
    };
    let item = if q.item.trim().is_empty() {
        None
    } else {
        Some(
            ctx.run(ShowItem {
                code: q.item.trim().to_string(),
            })
            .await,
        )
    };
    let body = html! {
        (done(q.done.as_deref()))
        @if let Some(e) = &error { (refusal(e)) }
        div.columns {
            section.col aria-labelledby="find-h" {
                h2 #find-h { "查找事项" }
                form.inline method="get" action="/window" role="search" {
                    label for="q" { "事项名称或实施编码" }
                    input #q type="search" name="q" value=(query) maxlength="100"
                        autofocus[q.item.is_empty()] placeholder="如：宅基地";
                    button type="submit" { "查找" }
                }
                @match &found {
                    None => p.muted { "输入事项名称中的字词或实施编码，按回车查找已发布的事项。" },
                    Some(Err(e)) => (refusal(&Refusal::of(e, None))),
                    Some(Ok(page)) if page.items.is_empty() => p { "没有找到已发布的事项“" (query) "”。请换个关键词，或到「事项」栏目查看全部事项。" },
                    Some(Ok(page)) => {
                        table.list #items {
                            caption.sr { "查找结果" }
                            thead { tr { th { "事项名称" } th { "实施编码" } th { "承诺时限" } th { span.sr { "操作" } } } }
                            tbody {
                                @for i in &page.items {
                                    tr {
                                        td { (i.content.name) }
                                        td.code { (i.content.impl_code) }
                                        td { (text::limit(i.content.committed_limit)) }
                                        td { a.button href=(url("/window", &[("q", &query), ("item", &i.content.impl_code)])) { "选择" span.sr { (i.content.name) } } }
                                    }
                                }
                            }
                        }
                        @if page.total > page.items.len() {
                            p.muted { "另有 " (page.total - page.items.len()) " 项未列出，请输入更具体的关键词。" }
                        }
                    }
                }
                h2 { "打开办件" }
                form.inline method="get" action="/case" {
                    label for="open-case" { "办件编号" }
                    input #open-case type="text" name="id" maxlength="120" required;
                    button type="submit" { "打开" }
                }
            }
            section.col.wide aria-labelledby="accept-h" {
                h2 #accept-h { "受理申请" }
                @match &item {
                    None => p.muted { "先在左侧查找并选择事项。" },
                    Some(Err(e)) => (refusal(&Refusal::of(e, None))),
                    Some(Ok(item)) if item.view.status != ItemStatus::Published => {
                        p.refusal role="alert" { "事项“" (item.content.name) "”目前为「" (text::item_status(item.view.status)) "」，不能受理办件。" }
                    }
                    Some(Ok(item)) => (accept_form(ctx, &item.content, form)),
                }
            }
        }
    };
    page(ctx, status, "/window", "窗口受理", body)
}

fn material_form(f: MaterialForm) -> &'static str {
    match f {
        MaterialForm::Original => "原件",
        MaterialForm::Copy => "复印件",
        MaterialForm::Both => "原件及复印件",
    }
}

fn accept_form(ctx: &Ctx, c: &hallsync_model::catalogue::ItemContent, form: &Applicant) -> Markup {
    let id_type = if form.id_type.is_empty() {
        text::ID_TYPES[0]
    } else {
        form.id_type.as_str()
    };
    html! {
        dl.facts {
            dt { "事项" } dd #item-name { (c.name) }
            dt { "实施编码" } dd.code { (c.impl_code) }
            dt { "实施主体" } dd { (c.agency) }
            dt { "时限" } dd { "承诺 " (text::limit(c.committed_limit)) "，法定 " (text::limit(c.statutory_limit)) }
        }
        @if !c.materials.is_empty() {
            details.materials open {
                summary { "申请材料（" (c.materials.len()) " 项）" }
                ul {
                    @for m in &c.materials {
                        li { (m.name) "（" (material_form(m.form)) "）" @if m.mandatory { strong { " 必交" } } }
                    }
                }
            }
        }
        form.grid #accept method="post" action="/window/accept" {
            (ctx.csrf_field())
            input type="hidden" name="item" value=(c.impl_code);
            label for="applicant" { "申请人" }
            input #applicant type="text" name="applicant" value=(form.name) required maxlength="200"
                autofocus autocomplete="off";
            label for="id_type" { "证件类型" }
            select #id_type name="id_type" {
                @for t in text::ID_TYPES {
                    option value=(t) selected[*t == id_type] { (t) }
                }
            }
            label for="id_number" { "证件号码" }
            div {
                input #id_number type="text" name="id_number" value=(form.id_number) required
                    maxlength="40" autocomplete="off" spellcheck="false" data-idcheck="id_type"
                    aria-describedby="id-msg";
                p #id-msg.hint aria-live="polite" { "身份证号码、统一社会信用代码输入时即校验。" }
            }
            label for="channel" { "受理渠道" }
            select #channel name="channel" {
                @for ch in CHANNELS {
                    option value=(ch) selected[*ch == form.channel || (form.channel.is_empty() && *ch == "window")] { (text::channel(ch)) }
                }
            }
            span {}
            label.check {
                input type="checkbox" name="receive_only" value="1" checked[form.receive_only];
                " 仅接件登记，暂不受理（材料需补正时）"
            }
            span {}
            button #accept-submit type="submit" { "受理并登记" }
        }
    }
}

/// `POST /window/accept`: accepts (or only receives) an application.
pub(crate) async fn accept(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ctx, f) = match posted(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let form = Applicant {
        name: f.get("applicant").trim().to_string(),
        id_type: f.get("id_type").trim().to_string(),
        id_number: f.get("id_number").trim().to_string(),
        channel: f.get("channel").to_string(),
        receive_only: f.ticked("receive_only"),
    };
    let op = AcceptCase {
        item: f.get("item").trim().to_string(),
        applicant: form.name.clone(),
        id_type: form.id_type.clone(),
        id_number: form.id_number.clone(),
        channel: form.channel.clone(),
        number: None,
        by: String::new(),
        at: None,
        receive_only: form.receive_only,
    };
    let item = op.item.clone();
    match ctx.run(op).await {
        Ok(row) => see_other(&url(
            "/case",
            &[
                ("id", row.id.as_str()),
                (
                    "done",
                    if form.receive_only {
                        "received"
                    } else {
                        "accepted"
                    },
                ),
            ],
        )),
        Err(e) => {
            let mut r = Refusal::of(
                &e,
                Some("该事项目前不能受理办件（未发布、已暂停或已取消）。请在「事项」栏目查看其状态。"),
            );
            if e.code == "id_number" {
                if let Err(why) =
                    check_id_number(&form.id_type, &form.id_number.to_ascii_uppercase())
                {
                    r.zh = text::id_number(&why);
                }
            }
            let status = status_of(&e);
            let q = Find {
                q: String::new(),
                item,
                done: None,
            };
            render(&ctx, &q, &form, Some(r), status).await
        }
    }
}
