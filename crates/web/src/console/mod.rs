//! The web console: server-rendered pages in Chinese for the staff of a
//! hall, over the same typed operations as the JSON API. Every page is
//! HTML from [`maud`] (escaped by default) with plain forms: a write is a
//! POST carrying the session's CSRF token in a hidden field, answered by a
//! redirect to the page that shows the result, or by the form again with
//! the refusal in Chinese. A little script (embedded, like the style
//! sheet: nothing is fetched from elsewhere) checks identity numbers as
//! they are typed and asks before the few irreversible actions.

mod case;
mod cases;
mod items;
mod links;
mod login;
mod orders;
mod stats;
pub mod text;
mod window;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use hallsync_api::{ApiError, Caller, Op};
use hallsync_hall::operators::{OperatorInfo, Role};
use hallsync_hall::NodeConfig;
use hallsync_model::{Level, Ts};
use maud::{html, Markup, DOCTYPE};

use crate::App;
use text::Refusal;

/// Largest form body a page accepts.
const MAX_FORM: usize = 64 << 10;

/// Rows per page of a list (a 1366×768 screen shows them without
/// scrolling far).
const PAGE: usize = 15;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The console's pages and the assets they use.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(home))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", axum::routing::post(login::logout))
        .route("/window", get(window::show))
        .route("/window/accept", axum::routing::post(window::accept))
        .route("/case", get(case::show))
        .route("/case/event", axum::routing::post(case::event))
        .route("/receipt", get(case::receipt))
        .route("/cases", get(cases::show))
        .route("/items", get(items::list))
        .route("/item", get(items::show))
        .route("/items/new", get(items::draft).post(items::save))
        .route("/items/review", axum::routing::post(items::review))
        .route("/orders", get(orders::list))
        .route("/order", get(orders::show))
        .route("/orders/issue", axum::routing::post(orders::issue))
        .route("/orders/reply", axum::routing::post(orders::reply))
        .route("/orders/close", axum::routing::post(orders::close))
        .route("/orders/appeal", axum::routing::post(orders::appeal))
        .route("/orders/decide", axum::routing::post(orders::decide))
        .route("/links", get(links::show))
        .route("/stats", get(stats::show))
        .route("/evaluation", get(stats::evaluation))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// A request from a logged-in operator.
pub(crate) struct Ctx {
    app: Arc<App>,
    caller: Caller,
    operator: OperatorInfo,
    csrf: String,
    now: Ts,
}

impl Ctx {
    /// The hall this node is.
    fn node(&self) -> &NodeConfig {
        self.app.svc.hall().node()
    }

    /// Whether this hall has halls below it (a county or city hub).
    fn is_hub(&self) -> bool {
        self.node().level != Level::Township
    }

    fn has(&self, role: Role) -> bool {
        self.operator.roles.contains(&role)
    }

    /// Runs an operation as the operator, off the async workers (the store
    /// syncs to disk).
    async fn run<O: Op>(&self, op: O) -> Result<O::Out, ApiError> {
        let (app, caller, now) = (self.app.clone(), self.caller.clone(), self.now);
        tokio::task::spawn_blocking(move || app.svc.run(op, &caller, now))
            .await
            .map_err(|e| ApiError::new(500, "internal", format!("the request stopped: {e}")))?
    }

    /// The hidden field every form carries.
    fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

/// Where to log in, coming back to `uri` afterwards.
fn to_login(uri: &Uri) -> Response {
    let next = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let q = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/login?{q}")).into_response()
}

/// The operator a request comes from, or the response that sends the
/// browser to log in. `csrf`: for a write, the token its form carried.
async fn session(
    app: &Arc<App>,
    headers: &HeaderMap,
    uri: &Uri,
    csrf: Option<&str>,
) -> Result<Ctx, Response> {
    let write = csrf.map(Some);
    let who = {
        let (app, headers) = (app.clone(), headers.clone());
        let write = write.map(|w| w.map(str::to_string));
        tokio::task::spawn_blocking(move || {
            app.auth.caller(
                app.svc.hall(),
                &headers,
                write.as_ref().map(|w| w.as_deref()),
            )
        })
        .await
        .map_err(|e| ApiError::new(500, "internal", format!("the request stopped: {e}")))
        .and_then(|r| r)
    };
    match who {
        Ok((caller @ Caller::Operator(_), Some(csrf))) => {
            let Caller::Operator(operator) = &caller else {
                return Err(to_login(uri));
            };
            Ok(Ctx {
                operator: operator.clone(),
                app: app.clone(),
                caller,
                csrf,
                now: (app.clock)(),
            })
        }
        Ok(_) => Err(to_login(uri)),
        Err(e) if e.code == "unauthorized" => Err(to_login(uri)),
        Err(e) => Err(bare_page(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::FORBIDDEN),
            "无法办理",
            html! {
                (refusal(&Refusal::of(&e, None)))
                p { a href="/" { "返回首页" } }
            },
        )),
    }
}

/// A form's fields, as sent.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of `name`, or "".
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The value of `name` trimmed, or `None` when empty.
    fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name).trim().to_string()).filter(|v| !v.is_empty())
    }

    /// Whether a checkbox `name` is ticked.
    fn ticked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

/// Reads a POSTed form (bounded) and the session it must belong to,
/// checking the form's CSRF token.
async fn posted(app: &Arc<App>, req: Request) -> Result<(Ctx, Form), Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM).await.map_err(|_| {
        bare_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "内容过长",
            refusal(&Refusal::of(
                &ApiError::new(
                    413,
                    "too_large",
                    format!("a form is at most {MAX_FORM} bytes"),
                ),
                None,
            )),
        )
    })?;
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
        bare_page(
            StatusCode::BAD_REQUEST,
            "无法办理",
            refusal(&Refusal::of(&ApiError::bad_request(e.to_string()), None)),
        )
    })?;
    let form = Form(form);
    let ctx = session(app, &parts.headers, &parts.uri, Some(form.get("csrf"))).await?;
    Ok((ctx, form))
}

/// Sends the browser on after a write (303, so a reload does not repeat it).
fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A URL with its query string.
fn url(path: &str, query: &[(&str, &str)]) -> String {
    let q: Vec<(&str, &str)> = query
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .copied()
        .collect();
    if q.is_empty() {
        return path.to_string();
    }
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(q).unwrap_or_default()
    )
}

/// The headers every page carries: no caching of pages with personal
/// data, no framing, and nothing run or loaded from elsewhere.
fn with_headers(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    for (k, v) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    resp
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · hallsync" }
            link rel="stylesheet" href="/assets/console.css";
            script src="/assets/console.js" defer {}
        }
    }
}

/// A page outside the console's frame (login, errors before a session).
fn bare_page(status: StatusCode, title: &str, body: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title))
            body.bare {
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    with_headers(status, page.into_string())
}

/// The console's sections: path, name, access key.
const NAV: &[(&str, &str, &str)] = &[
    ("/window", "窗口", "1"),
    ("/cases", "办件", "2"),
    ("/items", "事项", "3"),
    ("/orders", "督办", "4"),
    ("/stats", "统计", "5"),
    ("/links", "联网", "6"),
];

/// A page of the console: the hall, the sections, who is logged in (and
/// the way out), a message after a write, then `body`.
fn page(ctx: &Ctx, status: StatusCode, section: &str, title: &str, body: Markup) -> Response {
    let node = ctx.node();
    let roles: Vec<&str> = ctx.operator.roles.iter().map(|r| r.label()).collect();
    let markup = html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title))
            body {
                a.skip href="#main" { "跳到正文" }
                header.top {
                    div.hall {
                        strong { (node.name) }
                        span.muted { " " (node.region.as_str()) }
                    }
                    nav aria-label="栏目" {
                        @for (href, name, key) in NAV {
                            a href=(href) accesskey=(key)
                                aria-current=[(*href == section).then_some("page")]
                                title=(format!("{name}（Alt+{key}）")) {
                                (name) span.key { (key) }
                            }
                        }
                    }
                    form.who method="post" action="/logout" {
                        (ctx.csrf_field())
                        span #operator { (ctx.operator.name) }
                        span.muted { "（" (roles.join("、")) "）" }
                        button.link type="submit" { "退出" }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    with_headers(status, markup.into_string())
}

/// The box that shows a refusal.
fn refusal(r: &Refusal) -> Markup {
    html! {
        div.refusal role="alert" {
            p { (r.zh) }
            details {
                summary { "技术详情" }
                p.detail lang="en" { code { (r.code) } " " (r.detail) }
            }
        }
    }
}

/// What a successful write says on the page it leads to.
const DONE: &[(&str, &str)] = &[
    ("accepted", "已受理，办件已登记。"),
    ("received", "已接件登记，尚未受理。"),
    ("event", "已记录。"),
    ("drafted", "事项草稿已保存，待法制审核。"),
    ("reviewed", "审核结果已记录。"),
    ("issued", "督办单已发出，将随同步送达被督办单位。"),
    ("replied", "反馈已提交，将随同步报送督办单位。"),
    ("closed", "督办已办结。"),
    ("appealed", "申诉已提交，将随同步报送督办单位裁决。"),
    ("decided", "申诉裁决已记录，将随同步送达被督办单位。"),
];

/// The notice for `?done=…`, if it names one.
fn done(key: Option<&str>) -> Markup {
    let said = key
        .and_then(|k| DONE.iter().find(|d| d.0 == k))
        .map(|d| d.1);
    html! {
        @if let Some(text) = said {
            p.done role="status" { (text) }
        }
    }
}

/// The HTTP status an API error carries.
fn status_of(e: &ApiError) -> StatusCode {
    StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A time as the console shows it, or a dash.
fn when(t: Option<Ts>) -> String {
    t.map_or_else(|| "—".into(), |t| t.to_string())
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    match session(&app, &headers, &uri, None).await {
        Ok(ctx) if ctx.is_hub() => see_other("/cases"),
        Ok(_) => see_other("/window"),
        Err(resp) => resp,
    }
}

/// The `offset` of a list's page as given in its link: a number, else the
/// first page (bounded, so the pager's sums cannot overflow).
fn offset(given: &str) -> usize {
    given.trim().parse::<u32>().map_or(0, |o| o as usize)
}

/// Paging links for a list: previous and next, keeping the filters.
fn pager(path: &str, query: &[(&str, String)], offset: usize, total: usize) -> Markup {
    let at = |o: usize| {
        let mut q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let o = o.to_string();
        q.push(("offset", &o));
        url(path, &q)
    };
    let last = offset + PAGE >= total;
    html! {
        nav.pager aria-label="翻页" {
            span { "共 " (total) " 条，第 " (if total == 0 { 0 } else { offset + 1 }) "–" ((offset + PAGE).min(total)) " 条" }
            @if offset > 0 {
                a href=(at(offset.saturating_sub(PAGE))) rel="prev" { "上一页" }
            }
            @if !last {
                a href=(at(offset + PAGE)) rel="next" { "下一页" }
            }
        }
    }
}
