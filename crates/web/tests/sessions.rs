//! Operators' sessions: the cookie a login sets, `me`, logout, login
//! throttling, an operator disabled or given a new password while logged
//! in, a session that has lasted too long, a cookie from another node, and
//! the handler every write records being the operator logged in.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request};
use common::{county, node, township, Answer, Node, Who, PASSWORD, TOKEN};
use hallsync_api::ops::{cases, items, operators};
use hallsync_api::PREFIX;
use hallsync_hall::operators::Role;
use hallsync_model::Level;
use hallsync_web::auth::{Limits, FREE_FAILURES};

async fn me(node: &Node, who: &Who) -> Answer {
    let req = Request::get(format!("{PREFIX}/me"));
    let req = match who {
        Who::Session { cookie, .. } => req.header(header::COOKIE, cookie),
        Who::Admin => req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}")),
        Who::Nobody => req,
    };
    node.send(req.body(Body::empty()).unwrap()).await
}

async fn logout(node: &Node, who: &Who, csrf: bool) -> Answer {
    node.post_raw(who, "/logout", csrf, None, Body::empty())
        .await
}

fn set_cookie(answer: &Answer) -> String {
    answer.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_sets_an_http_only_same_site_cookie_secure_under_https() {
    let town = township();
    town.operator("clerk1", &[Role::Clerk]).await;
    let cookie = set_cookie(&town.try_login("clerk1", PASSWORD).await);
    assert!(cookie.starts_with("hallsync_tw_101="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );

    let https = node(
        "tw-101",
        "样例镇便民服务中心",
        "140212101",
        Level::Township,
        Limits::default(),
        true,
    );
    let admin = https.operator("admin1", &[Role::Admin]).await;
    let cookie = set_cookie(&https.try_login("admin1", PASSWORD).await);
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let gone = logout(&https, &admin, true).await;
    assert_eq!(gone.status, 204);
    let cleared = set_cookie(&gone);
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("Secure"),
        "{cleared}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_answers_the_operator_and_logout_ends_the_session() {
    let town = township();
    let clerk = town.operator("clerk1", &[Role::Clerk]).await;
    let Who::Session { csrf, .. } = &clerk else {
        unreachable!()
    };
    let who = me(&town, &clerk).await.ok();
    assert_eq!(who["operator"]["login"], "clerk1");
    assert_eq!(who["operator"]["roles"], serde_json::json!(["clerk"]));
    assert_eq!(&who["csrf"], csrf);
    me(&town, &Who::Nobody).await.refused(401, "unauthorized");
    // The administrator's token is no operator.
    me(&town, &Who::Admin).await.refused(400, "bad_request");

    // A logout is a write: without the session's CSRF token a page
    // elsewhere cannot end it.
    logout(&town, &clerk, false).await.refused(403, "csrf");
    me(&town, &clerk).await.ok();
    assert_eq!(logout(&town, &clerk, true).await.status, 204);
    me(&town, &clerk).await.refused(401, "unauthorized");
    let before = town.snapshot();
    town.post(&clerk, &common_case())
        .await
        .refused(401, "unauthorized");
    assert_eq!(town.snapshot(), before);
    // Logging out twice, or without a session, is refused as any write.
    logout(&town, &clerk, true)
        .await
        .refused(401, "unauthorized");
    logout(&town, &Who::Nobody, true)
        .await
        .refused(401, "unauthorized");
}

fn common_case() -> cases::AcceptCase {
    cases::AcceptCase {
        item: "X1".into(),
        applicant: "张三丰".into(),
        id_type: "身份证".into(),
        id_number: "140212199001011237".into(),
        channel: "window".into(),
        number: Some("A-1".into()),
        by: "冒名顶替".into(),
        at: None,
        receive_only: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_are_throttled_per_operator_and_per_address() {
    let mut town = township();
    town.operator("clerk1", &[Role::Clerk]).await;
    for _ in 0..FREE_FAILURES {
        town.try_login("clerk1", "wrong password 9")
            .await
            .refused(401, "unauthorized");
    }
    // One more failure, and then even the right password waits.
    town.try_login("clerk1", "wrong password 9")
        .await
        .refused(401, "unauthorized");
    let held = town.try_login("clerk1", PASSWORD).await;
    held.refused(429, "too_many_attempts");
    assert!(held.message().contains("try again in"), "{}", held.json);
    // From another address too: the operator is throttled, not only the
    // address.
    town.from = "192.0.2.99:50000".parse().unwrap();
    town.try_login("clerk1", PASSWORD)
        .await
        .refused(429, "too_many_attempts");

    // Unknown logins count against the address they come from, and are
    // answered as a wrong password is.
    let mut cn = county();
    cn.operator("jc1", &[Role::Supervisor]).await;
    cn.from = "192.0.2.50:50000".parse().unwrap();
    for i in 0..=FREE_FAILURES {
        let answer = cn.try_login(&format!("nobody{i}"), PASSWORD).await;
        answer.refused(401, "unauthorized");
        assert!(
            answer.message().contains("wrong login or password"),
            "{}",
            answer.json
        );
    }
    cn.try_login("jc1", PASSWORD)
        .await
        .refused(429, "too_many_attempts");
    cn.from = "192.0.2.51:50000".parse().unwrap();
    cn.try_login("jc1", PASSWORD).await.ok();

    // A malformed login is a bad request and no failure.
    let req = Request::post(format!("{PREFIX}/login"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"login\":"))
        .unwrap();
    town.send(req).await.refused(400, "bad_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_operator_or_a_new_password_ends_the_session_at_once() {
    let town = township();
    let admin = town.operator("admin1", &[Role::Admin]).await;
    let clerk = town.operator("clerk1", &[Role::Clerk]).await;
    let reviewer = town.operator("rev1", &[Role::Reviewer]).await;
    me(&town, &clerk).await.ok();
    let disable = operators::DisableOperator {
        login: "clerk1".into(),
        disabled: true,
    };
    town.post(&admin, &disable).await.ok();
    let before = town.snapshot();
    let answer = me(&town, &clerk).await;
    answer.refused(401, "unauthorized");
    assert!(answer.message().contains("disabled"), "{}", answer.json);
    town.post(&clerk, &common_case())
        .await
        .refused(401, "unauthorized");
    let login = town.try_login("clerk1", PASSWORD).await;
    login.refused(401, "unauthorized");
    assert_eq!(town.snapshot(), before, "a refused write stored something");
    // Enabled again, the old session stays ended; a new login works.
    let enable = operators::DisableOperator {
        login: "clerk1".into(),
        disabled: false,
    };
    town.post(&admin, &enable).await.ok();
    me(&town, &clerk).await.refused(401, "unauthorized");
    town.login("clerk1").await;

    let password = operators::SetPassword {
        login: "rev1".into(),
        password: "a new password 2".into(),
    };
    town.post(&admin, &password).await.ok();
    me(&town, &reviewer).await.refused(401, "unauthorized");
    town.try_login("rev1", PASSWORD)
        .await
        .refused(401, "unauthorized");
    town.try_login("rev1", "a new password 2").await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_when_it_has_lasted_too_long() {
    let limits = Limits {
        idle: Duration::from_secs(3600),
        max_age: Duration::ZERO,
    };
    let town = node(
        "tw-101",
        "样例镇便民服务中心",
        "140212101",
        Level::Township,
        limits,
        false,
    );
    let clerk = town.operator("clerk1", &[Role::Clerk]).await;
    // Any time at all is too long.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let answer = me(&town, &clerk).await;
    answer.refused(401, "unauthorized");
    assert!(answer.message().contains("expired"), "{}", answer.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_from_another_node_or_a_forged_one_lets_no_one_in() {
    let town = township();
    let cn = county();
    let Who::Session { cookie, csrf } = town.operator("admin1", &[Role::Admin]).await else {
        unreachable!()
    };
    cn.operator("admin1", &[Role::Admin]).await;
    let (_, value) = cookie.split_once('=').unwrap();
    let (id, _) = value.split_once('.').unwrap();
    let session = |cookie: String| Who::Session {
        cookie,
        csrf: csrf.clone(),
    };
    me(&town, &session(cookie.clone())).await.ok();
    for (node, forged) in [
        (&cn, cookie.clone()),
        (&cn, format!("hallsync_cn_212={value}")),
        (&town, format!("hallsync_tw_101={}", value.replace('.', ""))),
        (&town, format!("hallsync_tw_101={id}.{}", "0".repeat(64))),
        (&town, format!("hallsync_tw_101={id}.")),
    ] {
        let answer = me(node, &session(forged.clone())).await;
        assert_eq!(
            (answer.status, answer.code()),
            (401, "unauthorized"),
            "{forged}: {}",
            answer.json
        );
    }
    me(&town, &session(cookie)).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_records_the_operator_logged_in_not_the_by_it_gives() {
    let town = township();
    let reviewer = town.operator("rev1", &[Role::Reviewer]).await;
    let clerk = town.operator("clerk1", &[Role::Clerk]).await;
    let fields = [
        ("name", "乡村建设规划许可证核发"),
        ("basic_code", "010025000"),
        ("impl_code", "X1"),
        ("category", "行政许可"),
        ("agency", "样例镇人民政府"),
        ("statutory_limit", "20个工作日"),
        ("committed_limit", "10个工作日"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let draft = items::AddItem {
        fields,
        by: "冒名顶替".into(),
    };
    town.post(&reviewer, &draft).await.ok();
    for action in [
        hallsync_model::ReviewAction::Approved,
        hallsync_model::ReviewAction::Published,
    ] {
        let review = items::ReviewItem {
            code: "X1".into(),
            action,
            reason: String::new(),
            by: "冒名顶替".into(),
        };
        town.post(&reviewer, &review).await.ok();
    }
    town.post(&clerk, &common_case()).await.ok();
    let step = cases::RecordEvent {
        case: "A-1".into(),
        by: "冒名顶替".into(),
        at: None,
        event: hallsync_model::EventKind::StepStarted {
            step: "审核".into(),
        },
    };
    town.post(&clerk, &step).await.ok();
    let item = town
        .get(&clerk, &items::ShowItem { code: "X1".into() })
        .await
        .ok();
    let case = town
        .get(&clerk, &cases::ShowCase { case: "A-1".into() })
        .await
        .ok();
    let text = format!("{item}{case}");
    assert!(
        !text.contains("冒名顶替"),
        "a free-text by was kept: {text}"
    );
    assert!(text.contains("rev1的名字"), "{item}");
    let events = case["case"]["events"].as_array().unwrap();
    assert!(
        events.iter().all(|e| e["by"] == "clerk1的名字"),
        "{events:?}"
    );
}
