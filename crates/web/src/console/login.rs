//! Logging in and out.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hallsync_api::ApiError;
use maud::html;
use serde::Deserialize;

use super::text::Refusal;
use super::{bare_page, posted, refusal, see_other, MAX_FORM};
use crate::App;

#[derive(Deserialize)]
pub(crate) struct Next {
    #[serde(default)]
    next: String,
}

/// A path on this console to go to after logging in: only a local path,
/// never another site.
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.starts_with("/login")
        && !next.starts_with("/logout")
        && next.len() <= 2048;
    if local {
        next
    } else {
        "/"
    }
}

fn form(
    hall: &str,
    next: &str,
    login: &str,
    error: Option<Refusal>,
    status: StatusCode,
) -> Response {
    bare_page(
        status,
        "登录",
        html! {
            p.muted { (hall) " · 政务服务管理系统" }
            @if let Some(e) = &error {
                (refusal(e))
            }
            form.login method="post" action="/login" {
                input type="hidden" name="next" value=(safe_next(next));
                label for="login" { "用户名" }
                input #login type="text" name="login" value=(login) required
                    maxlength="64" autocomplete="username" autofocus[login.is_empty()];
                label for="password" { "密码" }
                input #password type="password" name="password" required maxlength="512"
                    autocomplete="current-password" autofocus[!login.is_empty()];
                button type="submit" { "登录" }
            }
        },
    )
}

/// `GET /login`.
pub(crate) async fn page(State(app): State<Arc<App>>, Query(q): Query<Next>) -> Response {
    form(
        &app.svc.hall().node().name,
        &q.next,
        "",
        None,
        StatusCode::OK,
    )
}

/// `POST /login`: checks the password (throttled), opens a session and
/// goes on to the page asked for.
pub(crate) async fn submit(
    State(app): State<Arc<App>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let hall = app.svc.hall().node().name.clone();
    let bytes = match axum::body::to_bytes(req.into_body(), MAX_FORM).await {
        Ok(b) => b,
        Err(_) => {
            let e = ApiError::new(413, "too_large", "the login form is too large");
            return form(
                &hall,
                "/",
                "",
                Some(Refusal::of(&e, None)),
                StatusCode::PAYLOAD_TOO_LARGE,
            );
        }
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let (login, password, next) = (get("login"), get("password"), get("next"));
    let checked = {
        let (app, login) = (app.clone(), login.clone());
        tokio::task::spawn_blocking(move || {
            app.auth
                .login(app.svc.hall(), login.trim(), &password, from.ip())
        })
        .await
        .map_err(|e| ApiError::new(500, "internal", format!("the login stopped: {e}")))
        .and_then(|r| r)
    };
    match checked {
        Ok((token, _)) => {
            let mut resp = see_other(safe_next(&next));
            resp.headers_mut()
                .insert(header::SET_COOKIE, app.auth.set_cookie(Some(&token)));
            resp
        }
        Err(e) => {
            let zh = match e.code.as_str() {
                "unauthorized" => {
                    "用户名或密码不正确，或该账号已停用。请重新输入；忘记密码请联系系统管理员。"
                        .to_string()
                }
                "too_many_attempts" => {
                    let secs: String = e
                        .message
                        .split_whitespace()
                        .find(|w| w.chars().all(|c| c.is_ascii_digit()))
                        .unwrap_or("60")
                        .to_string();
                    format!("登录失败次数过多，请 {secs} 秒后再试；忘记密码请联系系统管理员。")
                }
                _ => Refusal::of(&e, None).zh,
            };
            let r = Refusal {
                zh,
                code: e.code.clone(),
                detail: e.message.clone(),
            };
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::UNAUTHORIZED);
            form(&hall, &next, login.trim(), Some(r), status)
        }
    }
}

/// `POST /logout`: ends the session (the form carries its CSRF token).
pub(crate) async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    if let Err(resp) = posted(&app, req).await {
        return resp;
    }
    app.auth.logout(&headers);
    let mut resp = see_other("/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, app.auth.set_cookie(None));
    resp
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next("/case?id=x"), "/case?id=x");
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil",
            "",
            "/logout",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad}");
        }
    }
}
