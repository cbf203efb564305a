//! The JSON API: every [`Op`] at `/api/v1/<path>`, reads as GET with a
//! query string, writes as POST with a JSON body; refusals as 4xx with a
//! JSON body `{status, code, message}`. Bodies are bounded per operation
//! before they are read whole.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use hallsync_api::ops::{
    calendar, cases, docs, items, node, operators, orders, rules, stats, warnings,
};
use hallsync_api::{ApiError, Caller, Op, PREFIX};
use hallsync_model::Ts;
use serde::Deserialize;

use crate::auth::{CSRF_HEADER, NOW_HEADER};
use crate::App;

/// An API error as an HTTP response.
#[derive(Debug)]
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}

/// The time a request is answered at: the node's clock, or for the local
/// administrator the time it gives (rehearsals, reproducible reports).
fn now(app: &App, caller: &Caller, headers: &HeaderMap) -> Result<Ts, ApiError> {
    match (caller, headers.get(NOW_HEADER)) {
        (Caller::Local, Some(v)) => v
            .to_str()
            .ok()
            .and_then(|t| Ts::parse(t).ok())
            .ok_or_else(|| ApiError::bad_request(format!("{NOW_HEADER} is not a time"))),
        _ => Ok((app.clock)()),
    }
}

/// Reads a body of at most `max` bytes.
pub async fn body(req: Request, max: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), max)
        .await
        .map_err(|e| {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                ApiError::new(
                    413,
                    "too_large",
                    format!("the request body is over {max} bytes"),
                )
            } else {
                ApiError::bad_request(format!("the request body could not be read: {e}"))
            }
        })
}

/// Refuses a body that does not say it is JSON: a page elsewhere can post
/// a form or plain text to this node without asking, but not JSON.
fn json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            415,
            "unsupported_media_type",
            "the request body must be JSON (Content-Type: application/json)",
        ))
    }
}

/// The header saying how long the server took over an operation, from its
/// request's headers read to its answer serialised (`app;dur=<ms>`).
pub const SERVER_TIMING: &str = "server-timing";

async fn call<O: Op>(state: State<Arc<App>>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let mut resp = answer::<O>(state, req).await.into_response();
    let took = format!("app;dur={:.3}", started.elapsed().as_secs_f64() * 1e3);
    if let Ok(v) = header::HeaderValue::from_str(&took) {
        resp.headers_mut().insert(SERVER_TIMING, v);
    }
    resp
}

async fn answer<O: Op>(State(app): State<Arc<App>>, req: Request) -> Result<Response, Failure> {
    let headers = req.headers().clone();
    if O::WRITE {
        let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        let (caller, _) = app.auth.caller(app.svc.hall(), &headers, Some(csrf))?;
        json_body(&headers)?;
        let bytes = body(req, O::MAX_BODY).await?;
        let op: O = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("the request is not what {} takes: {e}", O::PATH))
        })?;
        return run(app, caller, &headers, op).await;
    }
    let (caller, _) = app.auth.caller(app.svc.hall(), &headers, None)?;
    let op: O = serde_urlencoded::from_str(req.uri().query().unwrap_or_default()).map_err(|e| {
        ApiError::bad_request(format!("the query is not what {} takes: {e}", O::PATH))
    })?;
    run(app, caller, &headers, op).await
}

async fn run<O: Op>(
    app: Arc<App>,
    caller: Caller,
    headers: &HeaderMap,
    op: O,
) -> Result<Response, Failure> {
    let now = now(&app, &caller, headers)?;
    // The store syncs to disk: off the async workers.
    let out = tokio::task::spawn_blocking(move || app.svc.run(op, &caller, now))
        .await
        .map_err(|e| ApiError::new(500, "internal", format!("the request stopped: {e}")))??;
    Ok(Json(out).into_response())
}

fn route<O: Op>() -> (String, MethodRouter<Arc<App>>) {
    let handler = if O::WRITE {
        post(call::<O>)
    } else {
        get(call::<O>)
    };
    (format!("{PREFIX}{}", O::PATH), handler)
}

#[derive(Deserialize)]
struct Login {
    login: String,
    password: String,
}

/// Longest a client may take to send a login.
const LOGIN_BODY_TIME: std::time::Duration = std::time::Duration::from_secs(10);

async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    req: Request,
) -> Result<Response, Failure> {
    json_body(req.headers())?;
    let bytes = tokio::time::timeout(LOGIN_BODY_TIME, body(req, 4096))
        .await
        .map_err(|_| ApiError::bad_request("the login took too long to arrive"))??;
    let creds: Login = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("a login is {{login, password}}: {e}")))?;
    let turn = app.auth.login_turn().await;
    let auth = app.clone();
    let (token, out) = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        auth.auth
            .login(auth.svc.hall(), &creds.login, &creds.password, from.ip())
    })
    .await
    .map_err(|e| ApiError::new(500, "internal", format!("the login stopped: {e}")))??;
    let mut resp = Json(out).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, app.auth.set_cookie(Some(&token)));
    Ok(resp)
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Failure> {
    let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    app.auth.caller(app.svc.hall(), &headers, Some(csrf))?;
    app.auth.logout(&headers);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, app.auth.set_cookie(None));
    Ok(resp)
}

async fn me(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Failure> {
    match app.auth.caller(app.svc.hall(), &headers, None)? {
        (Caller::Operator(operator), Some(csrf)) => {
            Ok(Json(crate::auth::LoggedIn { operator, csrf }).into_response())
        }
        _ => Err(ApiError::bad_request("the administrator's token is no operator").into()),
    }
}

async fn unknown(method: Method, uri: axum::http::Uri) -> Failure {
    Failure(ApiError::not_found(format!(
        "{method} {} is not part of the API (see /api/v1 in the README)",
        uri.path()
    )))
}

async fn wrong_method(method: Method, uri: axum::http::Uri) -> Failure {
    Failure(ApiError::new(
        405,
        "method_not_allowed",
        format!(
            "{} does not take {method}: reads are GET with a query string, writes POST with a JSON body",
            uri.path()
        ),
    ))
}

/// The API's routes.
pub fn routes() -> Router<Arc<App>> {
    let all = [
        route::<items::ListItems>(),
        route::<items::ShowItem>(),
        route::<items::AddItem>(),
        route::<items::ImportItems>(),
        route::<items::ReviewItem>(),
        route::<cases::ListCases>(),
        route::<cases::ShowCase>(),
        route::<cases::AcceptCase>(),
        route::<cases::RecordEvent>(),
        route::<warnings::ListWarnings>(),
        route::<stats::GetStats>(),
        route::<stats::GetEvaluation>(),
        route::<rules::ShowRules>(),
        route::<rules::SetRules>(),
        route::<rules::PublishRules>(),
        route::<orders::ListOrders>(),
        route::<orders::ShowOrder>(),
        route::<orders::IssueOrder>(),
        route::<orders::ReplyOrder>(),
        route::<orders::CloseOrder>(),
        route::<orders::AppealOrder>(),
        route::<orders::DecideAppeal>(),
        route::<orders::IssueAutoOrders>(),
        route::<calendar::ShowCalendar>(),
        route::<calendar::ImportCalendar>(),
        route::<docs::ExportDoc>(),
        route::<docs::ShowDoc>(),
        route::<docs::ImportDoc>(),
        route::<node::Status>(),
        route::<node::Backup>(),
        route::<operators::ListOperators>(),
        route::<operators::AddOperator>(),
        route::<operators::DisableOperator>(),
        route::<operators::SetPassword>(),
    ];
    // A path serves both a read and a write (GET and POST /items): merge
    // their method routers.
    let mut merged: Vec<(String, MethodRouter<Arc<App>>)> = Vec::new();
    for (path, handler) in all {
        match merged.iter_mut().find(|(p, _)| *p == path) {
            Some((_, h)) => *h = std::mem::take(h).merge(handler),
            None => merged.push((path, handler)),
        }
    }
    let mut router = Router::new();
    for (path, handler) in merged {
        router = router.route(&path, handler);
    }
    router
        .route(&format!("{PREFIX}/login"), post(login))
        .route(&format!("{PREFIX}/logout"), post(logout))
        .route(&format!("{PREFIX}/me"), get(me))
        .method_not_allowed_fallback(wrong_method)
        .route(&format!("{PREFIX}/{{*rest}}"), axum::routing::any(unknown))
}
