//! `/metrics` counts what the node holds, and is served only to this
//! machine or with the administrator's token.

#[path = "../../hall/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use hallsync_api::Service;
use hallsync_model::Ts;
use hallsync_web::auth::Auth;
use hallsync_web::{router, App};
use tower::ServiceExt;

fn now() -> Ts {
    Ts::parse("2026-11-23 10:00").unwrap()
}

async fn get(app: &Arc<App>, from: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::get("/metrics");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut req = req.body(Body::empty()).unwrap();
    let addr: SocketAddr = from.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    let resp = router(app.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn metrics_count_cases_by_state_and_are_served_to_this_machine_or_the_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let hall = support::township(dir.path());
    support::publish(&hall, "A1", now());
    for i in 0..3 {
        hall.accept_case(
            support::new_case(
                "A1",
                Some(format!("A1-{i}")),
                Ts::parse("2026-11-02").unwrap(),
            ),
            now(),
        )
        .unwrap();
    }
    let app = Arc::new(App {
        svc: Service::new(Arc::new(hall)),
        auth: Auth::new("tw-101", "secret".into(), false),
        clock: Box::new(now),
        store_dir: dir.path().join("store"),
    });
    let (status, text) = get(&app, "127.0.0.1:5000", None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        text.contains("hallsync_cases{state=\"accepted\"} 3"),
        "{text}"
    );
    assert!(text.contains("hallsync_cases_open 3"), "{text}");
    assert!(text.contains("hallsync_cases_overdue 3"), "{text}");
    assert!(text.contains("hallsync_feed_writes_total"), "{text}");
    assert!(text.contains("hallsync_store_bytes"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (status, _) = get(&app, "10.0.0.9:5000", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&app, "10.0.0.9:5000", Some("secret")).await;
    assert_eq!(status, StatusCode::OK);
}
