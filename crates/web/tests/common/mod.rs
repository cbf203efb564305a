//! The HTTP side in process: a hall, its router with a known administrator
//! token and a fixed clock, requests sent with `tower::ServiceExt::oneshot`,
//! and a snapshot of everything the hall holds to check that a refusal
//! stored nothing.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request};
use axum::Router;
use hallsync_api::ops::{calendar, cases, items, operators, orders};
use hallsync_api::{Caller, Op, Service, MAX_PAGE, PREFIX};
use hallsync_hall::operators::Role;
use hallsync_hall::Hall;
use hallsync_model::{Level, NodeId, RegionCode, Ts};
use hallsync_store::StoreOptions;
use hallsync_web::auth::{Auth, Limits, CSRF_HEADER};
use hallsync_web::App;
use tower::ServiceExt as _;

/// The time every request is answered at.
pub const NOW: &str = "2026-11-23 10:00";
/// The administrator's token (what `api.json` would give the CLI).
pub const TOKEN: &str = "5e1f0c0ffee5e1f0c0ffee5e1f0c0ffee5e1f0c0ffee5e1f0c0ffee5e1f0c0ff";
/// Every operator's password in these tests.
pub const PASSWORD: &str = "correct horse 1";

pub fn now() -> Ts {
    Ts::parse(NOW).unwrap()
}

/// A hall behind its router.
pub struct Node {
    _dir: tempfile::TempDir,
    pub hall: Arc<Hall>,
    pub router: Router,
    /// The client address requests come from.
    pub from: SocketAddr,
}

/// Who sends a request.
#[derive(Debug, Clone)]
pub enum Who {
    /// The local administrator (the bearer token).
    Admin,
    /// No credentials at all.
    Nobody,
    /// A logged-in operator: the cookie header and the session's CSRF token.
    Session { cookie: String, csrf: String },
}

/// An answer: status, headers and the JSON body (null if none).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

impl Answer {
    /// The refusal code (`unauthorized`, `csrf`, …).
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or_default()
    }

    pub fn message(&self) -> &str {
        self.json["message"].as_str().unwrap_or_default()
    }

    /// Asserts a 200 and returns the body.
    pub fn ok(self) -> serde_json::Value {
        assert_eq!(self.status, 200, "{}", self.json);
        self.json
    }

    /// Asserts a refusal with this status and code.
    pub fn refused(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "expected {status} {code}, got {}",
            self.json
        );
    }
}

/// A township (tw-101, region 140212101).
pub fn township() -> Node {
    node(
        "tw-101",
        "样例镇便民服务中心",
        "140212101",
        Level::Township,
        Limits::default(),
        false,
    )
}

/// A county (cn-212, region 140212) above it.
pub fn county() -> Node {
    node(
        "cn-212",
        "样例县政务服务中心",
        "140212",
        Level::County,
        Limits::default(),
        false,
    )
}

/// A hall `id`; `secure` when its cookies are for HTTPS.
pub fn node(
    id: &str,
    name: &str,
    region: &str,
    level: Level,
    limits: Limits,
    secure: bool,
) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let hall = Hall::init(
        dir.path(),
        NodeId::parse(id).unwrap(),
        name,
        RegionCode::parse(region).unwrap(),
        level,
        StoreOptions::default(),
    )
    .unwrap();
    let hall = Arc::new(hall);
    let svc = Service::new(hall.clone());
    Node::serve(dir, hall, svc, limits, secure)
}

impl Node {
    /// The router over `svc`, answering at [`NOW`].
    pub fn serve(
        dir: tempfile::TempDir,
        hall: Arc<Hall>,
        svc: Service,
        limits: Limits,
        secure: bool,
    ) -> Node {
        let id = hall.node().id.to_string();
        let app = App {
            svc,
            auth: Auth::with_limits(&id, TOKEN.into(), secure, limits),
            clock: Box::new(now),
            store_dir: dir.path().join(hallsync_hall::STORE_DIR),
        };
        Node {
            _dir: dir,
            hall,
            router: hallsync_web::router(Arc::new(app)),
            from: "192.0.2.10:50000".parse().unwrap(),
        }
    }

    /// Sends a request as it comes off a connection from [`Node::from`].
    pub async fn send(&self, mut req: Request<Body>) -> Answer {
        req.extensions_mut().insert(ConnectInfo(self.from));
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
            })
        };
        Answer {
            status,
            headers,
            json,
        }
    }

    /// A read, as the CLI sends it.
    pub async fn get<O: Op>(&self, who: &Who, op: &O) -> Answer {
        let query = serde_urlencoded::to_string(op).unwrap();
        let req = request(who, "GET", &format!("{PREFIX}{}?{query}", O::PATH), true);
        self.send(req.body(Body::empty()).unwrap()).await
    }

    /// A write, as the CLI or the console sends it (JSON, with the
    /// session's CSRF token).
    pub async fn post<O: Op>(&self, who: &Who, op: &O) -> Answer {
        let body = serde_json::to_vec(op).unwrap();
        self.post_raw(
            who,
            O::PATH,
            true,
            Some("application/json"),
            Body::from(body),
        )
        .await
    }

    /// A write with its parts chosen: whether the session's CSRF token
    /// goes along, the content type, the body.
    pub async fn post_raw(
        &self,
        who: &Who,
        path: &str,
        csrf: bool,
        content_type: Option<&str>,
        body: Body,
    ) -> Answer {
        let mut req = request(who, "POST", &format!("{PREFIX}{path}"), csrf);
        if let Some(t) = content_type {
            req = req.header(header::CONTENT_TYPE, t);
        }
        self.send(req.body(body).unwrap()).await
    }

    /// Logs `login` in with `password`: the answer.
    pub async fn try_login(&self, login: &str, password: &str) -> Answer {
        let body = serde_json::json!({ "login": login, "password": password });
        let req = Request::post(format!("{PREFIX}/login"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(req).await
    }

    /// Logs `login` in: the session.
    pub async fn login(&self, login: &str) -> Who {
        let answer = self.try_login(login, PASSWORD).await;
        let cookie = answer.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let json = answer.ok();
        Who::Session {
            cookie,
            csrf: json["csrf"].as_str().unwrap().to_string(),
        }
    }

    /// Adds an operator (as the administrator) and logs it in.
    pub async fn operator(&self, login: &str, roles: &[Role]) -> Who {
        let add = operators::AddOperator {
            login: login.into(),
            name: format!("{login}的名字"),
            roles: roles.iter().copied().collect::<BTreeSet<_>>(),
            password: PASSWORD.into(),
        };
        self.post(&Who::Admin, &add).await.ok();
        self.login(login).await
    }

    /// Everything the hall holds that a request could change: the durable
    /// feed's sequence, and every listing (operators with their password
    /// generation).
    pub fn snapshot(&self) -> String {
        let svc = Service::new(self.hall.clone());
        let list = |v: serde_json::Value| v.to_string();
        let run = |json: Result<serde_json::Value, _>| list(json.unwrap());
        let at = now();
        let items = svc.run(
            items::ListItems {
                limit: MAX_PAGE,
                ..Default::default()
            },
            &Caller::Local,
            at,
        );
        let cases = svc.run(
            cases::ListCases {
                all: true,
                limit: MAX_PAGE,
                ..Default::default()
            },
            &Caller::Local,
            at,
        );
        let orders = svc.run(
            orders::ListOrders {
                limit: MAX_PAGE,
                ..Default::default()
            },
            &Caller::Local,
            at,
        );
        let calendar = svc.run(calendar::ShowCalendar::default(), &Caller::Local, at);
        let operators: Vec<String> = self
            .hall
            .operators()
            .unwrap()
            .iter()
            .map(|o| format!("{} {} {} {}", o.login, o.disabled, o.generation, o.password))
            .collect();
        format!(
            "seq {}\nitems {}\ncases {}\norders {}\ncalendar {}\noperators {operators:?}",
            self.hall.store().durable_seq(),
            run(items.map(|v| serde_json::to_value(v).unwrap())),
            run(cases.map(|v| serde_json::to_value(v).unwrap())),
            run(orders.map(|v| serde_json::to_value(v).unwrap())),
            run(calendar.map(|v| serde_json::to_value(v).unwrap())),
        )
    }
}

fn request(who: &Who, method: &str, uri: &str, csrf: bool) -> axum::http::request::Builder {
    let req = Request::builder().method(method).uri(uri);
    match who {
        Who::Admin => req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}")),
        Who::Nobody => req,
        Who::Session {
            cookie,
            csrf: token,
        } => {
            let req = req.header(header::COOKIE, cookie);
            if csrf {
                req.header(CSRF_HEADER, token)
            } else {
                req
            }
        }
    }
}

/// A request body of `len` spaces, sent a MiB at a time without being
/// held whole (to pass a body bound without allocating it).
pub struct Spaces(pub usize);

static MIB: [u8; 1 << 20] = [b' '; 1 << 20];

impl http_body::Body for Spaces {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Infallible>>> {
        if self.0 == 0 {
            return Poll::Ready(None);
        }
        let n = self.0.min(MIB.len());
        self.0 -= n;
        Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(
            &MIB[..n],
        )))))
    }
}
