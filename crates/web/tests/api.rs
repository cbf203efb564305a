//! The JSON API, in process: every operation succeeds for a caller with its
//! role and stores what it says, and every refusal — malformed JSON, an
//! unknown record, an event the state does not allow, an oversized body,
//! no session or an ended one, the wrong role, a write without its CSRF
//! token, a body that is not JSON — answers with its status and code and
//! stores nothing (the durable feed and every listing unchanged).

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use common::{county, now, township, Node, Spaces, Who};
use hallsync_api::ops::{calendar, cases, docs, items, node, operators, orders};
use hallsync_api::{Bytes, Op, Service, DEFAULT_PAGE};
use hallsync_hall::operators::Role;
use hallsync_model::case::Outcome;
use hallsync_model::order::{Card, Resolution, Rule};
use hallsync_model::{EventKind, RegionCode, ReviewAction, TimeLimit};
use hallsync_web::auth::Limits;

const ITEM: &str = "11140212MB1234567K500001";

fn calendar_file() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../topology/sample-city/calendar-2026.csv"
    );
    std::fs::read_to_string(path).unwrap()
}

fn one_item_csv(code: &str) -> Vec<u8> {
    format!(
        "事项名称,基本编码,实施编码,权力类别,实施主体,法定时限,承诺时限\n\
         农村村民宅基地审批,010015000,{code},行政许可,样例镇人民政府,20个工作日,10个工作日\n"
    )
    .into_bytes()
}

fn draft(code: &str) -> items::AddItem {
    let fields: BTreeMap<String, String> = [
        ("name", "乡村建设规划许可证核发"),
        ("basic_code", "010025000"),
        ("impl_code", code),
        ("category", "行政许可"),
        ("agency", "样例镇人民政府"),
        ("statutory_limit", "20个工作日"),
        ("committed_limit", "10个工作日"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    items::AddItem {
        fields,
        by: String::new(),
    }
}

fn accept(item: &str, number: &str) -> cases::AcceptCase {
    cases::AcceptCase {
        item: item.into(),
        applicant: "张三丰".into(),
        id_type: "身份证".into(),
        id_number: "140212199001011237".into(),
        channel: "window".into(),
        number: Some(number.into()),
        by: String::new(),
        at: None,
        receive_only: false,
    }
}

fn event(case: &str, event: EventKind) -> cases::RecordEvent {
    cases::RecordEvent {
        case: case.into(),
        by: String::new(),
        at: None,
        event,
    }
}

/// `op` succeeds for `who` and the feed grows (a replicated record was
/// written).
async fn writes<O: Op>(node: &Node, who: &Who, op: &O) -> serde_json::Value {
    let before = node.hall.store().durable_seq();
    let out = node.post(who, op).await.ok();
    assert!(
        node.hall.store().durable_seq() > before,
        "{} stored nothing",
        O::PATH
    );
    out
}

/// `op` is refused with `status` and `code`, and nothing changes.
async fn refused<O: Op>(node: &Node, who: &Who, op: &O, status: u16, code: &str) -> String {
    let before = node.snapshot();
    let answer = if O::WRITE {
        node.post(who, op).await
    } else {
        node.get(who, op).await
    };
    answer.refused(status, code);
    assert_eq!(
        node.snapshot(),
        before,
        "{} {code} changed something",
        O::PATH
    );
    answer.message().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_succeeds_for_an_operator_with_its_role_and_stores_what_it_says() {
    let town = township();
    let admin = town.operator("admin1", &[Role::Admin]).await;
    // An administrator adds the others, through its session.
    let add = |login: &str, role: Role| operators::AddOperator {
        login: login.into(),
        name: format!("{login}的名字"),
        roles: [role].into(),
        password: common::PASSWORD.into(),
    };
    let added = town.post(&admin, &add("clerk1", Role::Clerk)).await.ok();
    assert_eq!(added["roles"], serde_json::json!(["clerk"]));
    town.post(&admin, &add("rev1", Role::Reviewer)).await.ok();
    let clerk = town.login("clerk1").await;
    let reviewer = town.login("rev1").await;
    let listed = town.get(&admin, &operators::ListOperators {}).await.ok();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert!(!listed.to_string().contains("argon2"), "no password hashes");

    // The calendar.
    let imported = writes(
        &town,
        &admin,
        &calendar::ImportCalendar {
            text: calendar_file(),
            office_hours: Some("09:00-12:00,13:30-17:30".into()),
        },
    )
    .await;
    assert!(imported.to_string().contains("2026"), "{imported}");
    let shown = town
        .get(&clerk, &calendar::ShowCalendar { year: Some(2026) })
        .await
        .ok();
    assert_eq!(shown[0]["days"].as_array().unwrap().len(), 39);

    // The catalogue: a draft reviewed and published, a sheet imported
    // published; the reviewer is recorded as the one who acted.
    let out = writes(&town, &reviewer, &draft("X1")).await;
    assert!(out["id"].as_str().unwrap().starts_with("item:"), "{out}");
    for action in [ReviewAction::Approved, ReviewAction::Published] {
        let review = items::ReviewItem {
            code: "X1".into(),
            action,
            reason: String::new(),
            by: "someone else".into(),
        };
        writes(&town, &reviewer, &review).await;
    }
    let sheet = items::ImportItems {
        file_name: "目录.csv".into(),
        content: Bytes(one_item_csv(ITEM)),
        by: String::new(),
        publish_by: Some(String::new()),
    };
    let report = writes(&town, &reviewer, &sheet).await;
    assert_eq!(report["report"]["created"], 1, "{report}");
    let list = town
        .get(
            &clerk,
            &items::ListItems {
                limit: DEFAULT_PAGE,
                ..Default::default()
            },
        )
        .await
        .ok();
    assert_eq!(list["total"], 2);
    let item = town
        .get(&clerk, &items::ShowItem { code: "X1".into() })
        .await
        .ok();
    assert_eq!(item["view"]["status"], "published");
    let history = item["history"].as_array().unwrap();
    assert!(
        history.iter().all(|h| h["by"] == "rev1的名字"),
        "an operator's writes carry its own name: {history:?}"
    );

    // Cases.
    let row = writes(&town, &clerk, &accept(ITEM, "A-1")).await;
    assert_eq!(row["header"]["number"], "A-1");
    let step = event(
        "A-1",
        EventKind::StepStarted {
            step: "审核".into(),
        },
    );
    let row = writes(&town, &clerk, &step).await;
    assert_eq!(row["view"]["state"], "Handling");
    let list = town
        .get(
            &clerk,
            &cases::ListCases {
                limit: DEFAULT_PAGE,
                ..Default::default()
            },
        )
        .await
        .ok();
    assert_eq!(list["page"]["total"], 1);
    assert_eq!(list["now"], serde_json::to_value(now()).unwrap());
    let shown = town
        .get(&clerk, &cases::ShowCase { case: "A-1".into() })
        .await
        .ok();
    assert_eq!(shown["case"]["events"].as_array().unwrap().len(), 3);

    // Raw documents, and the case carried to the county.
    let case_id = "case:140212101:A-1";
    let doc = town
        .get(&admin, &docs::ShowDoc { id: case_id.into() })
        .await
        .ok();
    assert_eq!(doc["number"], "A-1");
    let exported = town
        .get(&admin, &docs::ExportDoc { id: case_id.into() })
        .await
        .ok();
    let file: Bytes = serde_json::from_value(exported).unwrap();
    assert!(!file.0.is_empty());

    let cn = county();
    let cn_admin = cn.operator("admin1", &[Role::Admin]).await;
    let supervisor = cn.operator("jc1", &[Role::Supervisor]).await;
    let imported = writes(&cn, &cn_admin, &docs::ImportDoc { content: file }).await;
    assert_eq!(imported["imported"], case_id);

    // Orders: issued at the county, replied to at the township, closed at
    // the county, each step carried as a document.
    let issue = orders::IssueOrder {
        unit: RegionCode::parse("140212101").unwrap(),
        case: "A-1".into(),
        rule: Rule::ComplaintReply,
        card: Card::Yellow,
        reason: "群众投诉办理缓慢，请核实答复".into(),
        department: String::new(),
        reply_within: TimeLimit::parse("3wd").unwrap(),
        by: String::new(),
    };
    let order = writes(&cn, &supervisor, &issue).await;
    let order_id = order["id"].as_str().unwrap().to_string();
    let key = order_id.rsplit(':').next().unwrap().to_string();
    let export = docs::ExportDoc {
        id: order_id.clone(),
    };
    let file: Bytes = serde_json::from_value(cn.get(&Who::Admin, &export).await.ok()).unwrap();
    writes(&town, &Who::Admin, &docs::ImportDoc { content: file }).await;
    let reply = orders::ReplyOrder {
        order: key.clone(),
        text: "已办结".into(),
        by: String::new(),
    };
    let replied = writes(&town, &clerk, &reply).await;
    assert_eq!(replied["view"]["state"], "replied");
    let file: Bytes = serde_json::from_value(town.get(&admin, &export).await.ok()).unwrap();
    writes(&cn, &cn_admin, &docs::ImportDoc { content: file }).await;
    let close = orders::CloseOrder {
        order: key.clone(),
        result: Resolution::Rectified,
        text: "经核实已整改".into(),
        by: String::new(),
    };
    let closed = writes(&cn, &supervisor, &close).await;
    assert_eq!(closed["view"]["state"], "closed");
    let list = cn
        .get(
            &supervisor,
            &orders::ListOrders {
                limit: DEFAULT_PAGE,
                ..Default::default()
            },
        )
        .await
        .ok();
    assert_eq!(list["page"]["total"], 1);
    let shown = cn
        .get(&supervisor, &orders::ShowOrder { order: key })
        .await
        .ok();
    assert_eq!(shown["events"].as_array().unwrap().len(), 2);

    // Operators: disable, enable, a new password (kept locally, not in
    // the feed).
    let disable = operators::DisableOperator {
        login: "clerk1".into(),
        disabled: true,
    };
    assert_eq!(town.post(&admin, &disable).await.ok()["disabled"], true);
    let enable = operators::DisableOperator {
        login: "clerk1".into(),
        disabled: false,
    };
    assert_eq!(town.post(&admin, &enable).await.ok()["disabled"], false);
    let before = town.snapshot();
    let password = operators::SetPassword {
        login: "clerk1".into(),
        password: "a new password 2".into(),
    };
    town.post(&admin, &password).await.ok();
    assert_ne!(town.snapshot(), before);
    town.try_login("clerk1", "a new password 2").await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_status_is_answered_while_it_runs_and_refused_otherwise() {
    let town = township();
    let clerk = town.operator("clerk1", &[Role::Clerk]).await;
    let message = refused(&town, &clerk, &node::Status {}, 409, "not_running").await;
    assert!(message.contains("hallsync run"), "{message}");
    // The same hall as a running node.
    let dir = tempfile::tempdir().unwrap();
    let running = Node::serve(
        dir,
        town.hall.clone(),
        Service::running(
            town.hall.clone(),
            Box::new(|| hallsync_net::status::NodeStatus {
                node: "tw-101".into(),
                pid: 1,
                listen: None,
                started: 0,
                updated: 0,
                feed_head: 7,
                peers: Vec::new(),
                revocation_list: Some(1),
                registry: Vec::new(),
                set_aside: Vec::new(),
                restoring: false,
            }),
        ),
        Limits::default(),
        false,
    );
    let clerk = running.login("clerk1").await;
    let status = running.get(&clerk, &node::Status {}).await.ok();
    assert_eq!(status["feed_head"], 7);
}

/// A township with a published item, a case A-1 received but not
/// accepted, and one operator of each role it can have.
struct Town {
    node: Node,
    admin: Who,
    clerk: Who,
    reviewer: Who,
}

async fn town() -> Town {
    let node = township();
    let admin = node.operator("admin1", &[Role::Admin]).await;
    let clerk = node.operator("clerk1", &[Role::Clerk]).await;
    let reviewer = node.operator("rev1", &[Role::Reviewer]).await;
    let sheet = items::ImportItems {
        file_name: "目录.csv".into(),
        content: Bytes(one_item_csv(ITEM)),
        by: String::new(),
        publish_by: Some(String::new()),
    };
    node.post(&reviewer, &sheet).await.ok();
    let mut received = accept(ITEM, "A-1");
    received.receive_only = true;
    node.post(&clerk, &received).await.ok();
    Town {
        node,
        admin,
        clerk,
        reviewer,
    }
}

/// One write: a request a caller with its role may make, such a caller,
/// a caller without the role, and the body bound.
struct Row<'a> {
    path: &'static str,
    body: String,
    may: &'a Who,
    may_not: &'a Who,
    max: usize,
}

fn row<'a, O: Op>(op: &O, may: &'a Who, may_not: &'a Who) -> Row<'a> {
    Row {
        path: O::PATH,
        body: serde_json::to_string(op).unwrap(),
        may,
        may_not,
        max: O::MAX_BODY,
    }
}

/// `body` (a JSON object) with one field more, as a typo would add it.
fn misspelt(body: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["id_numbr"] = "140212199001011237".into();
    v.to_string()
}

/// Every write.
fn every_write(t: &Town) -> Vec<Row<'_>> {
    vec![
        row(&draft("X2"), &t.reviewer, &t.clerk),
        row(
            &items::ImportItems {
                file_name: "b.csv".into(),
                content: Bytes(one_item_csv("X3")),
                by: String::new(),
                publish_by: None,
            },
            &t.reviewer,
            &t.clerk,
        ),
        row(
            &items::ReviewItem {
                code: ITEM.into(),
                action: ReviewAction::Suspended,
                reason: "上位法修订".into(),
                by: String::new(),
            },
            &t.reviewer,
            &t.clerk,
        ),
        row(&accept(ITEM, "A-2"), &t.clerk, &t.reviewer),
        row(&event("A-1", EventKind::Accepted), &t.clerk, &t.reviewer),
        row(
            &orders::IssueOrder {
                unit: RegionCode::parse("140212101").unwrap(),
                case: "A-1".into(),
                rule: Rule::CaseTimeLimit,
                card: Card::Notice,
                reason: "x".into(),
                department: String::new(),
                reply_within: TimeLimit::parse("3wd").unwrap(),
                by: String::new(),
            },
            &Who::Admin,
            &t.clerk,
        ),
        row(
            &orders::ReplyOrder {
                order: "cn-212.1".into(),
                text: "x".into(),
                by: String::new(),
            },
            &t.clerk,
            &t.reviewer,
        ),
        row(
            &orders::CloseOrder {
                order: "cn-212.1".into(),
                result: Resolution::Withdrawn,
                text: "x".into(),
                by: String::new(),
            },
            &Who::Admin,
            &t.clerk,
        ),
        row(
            &calendar::ImportCalendar {
                text: "2026-10-01,holiday,国庆\n".into(),
                office_hours: None,
            },
            &t.admin,
            &t.clerk,
        ),
        row(
            &docs::ImportDoc {
                content: Bytes(b"not a document".to_vec()),
            },
            &t.admin,
            &t.clerk,
        ),
        row(
            &operators::AddOperator {
                login: "new1".into(),
                name: "新人".into(),
                roles: [Role::Clerk].into(),
                password: common::PASSWORD.into(),
            },
            &t.admin,
            &t.clerk,
        ),
        row(
            &operators::DisableOperator {
                login: "rev1".into(),
                disabled: true,
            },
            &t.admin,
            &t.clerk,
        ),
        row(
            &operators::SetPassword {
                login: "rev1".into(),
                password: "another one 3".into(),
            },
            &t.admin,
            &t.reviewer,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_refused_at_the_door_stores_nothing() {
    let t = town().await;
    let node = &t.node;
    let ended = Who::Session {
        cookie: format!(
            "{}=0123.4567",
            node.hall.node().id.as_str().replace('-', "_")
        ),
        csrf: "x".into(),
    };
    // A second session of the clerk: its CSRF token is its own.
    let Who::Session { csrf: spare, .. } = node.login("clerk1").await else {
        unreachable!()
    };
    let json = Some("application/json");
    for Row {
        path,
        body,
        may,
        may_not,
        max,
    } in every_write(&t)
    {
        let before = node.snapshot();
        macro_rules! post {
            ($who:expr, $csrf:expr, $ct:expr, $body:expr) => {
                node.post_raw($who, path, $csrf, $ct, $body)
            };
        }
        let typo = misspelt(&body);
        let body = || Body::from(body.clone());
        let mut answers = vec![
            (
                "no session",
                post!(&Who::Nobody, true, json, body()).await,
                401,
                "unauthorized",
            ),
            (
                "an ended session",
                post!(&ended, true, json, body()).await,
                401,
                "unauthorized",
            ),
            (
                "the wrong role",
                post!(may_not, true, json, body()).await,
                403,
                "forbidden",
            ),
            (
                "not JSON",
                post!(may, true, Some("text/plain"), body()).await,
                415,
                "unsupported_media_type",
            ),
            (
                "no content type",
                post!(may, true, None, body()).await,
                415,
                "unsupported_media_type",
            ),
            (
                "malformed JSON",
                post!(may, true, json, "{\"oops\":".into()).await,
                400,
                "bad_request",
            ),
            (
                "the wrong fields",
                post!(may, true, json, "{\"oops\":1}".into()).await,
                400,
                "bad_request",
            ),
            (
                "an oversized body",
                post!(may, true, json, Body::new(Spaces(max + 1))).await,
                413,
                "too_large",
            ),
            (
                "a misspelt field beside the right ones",
                post!(may, true, json, typo.clone().into()).await,
                400,
                "bad_request",
            ),
        ];
        if let Who::Session { cookie, .. } = may {
            answers.push((
                "no CSRF token",
                post!(may, false, json, body()).await,
                403,
                "csrf",
            ));
            let borrowed = Who::Session {
                cookie: cookie.clone(),
                csrf: spare.clone(),
            };
            answers.push((
                "another session's CSRF token",
                post!(&borrowed, true, json, body()).await,
                403,
                "csrf",
            ));
        }
        for (what, answer, status, code) in &answers {
            assert_eq!(
                (answer.status, answer.code()),
                (*status, *code),
                "{path} with {what}: {}",
                answer.json
            );
        }
        assert_eq!(
            node.snapshot(),
            before,
            "{path}: a refusal stored something"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_refused_at_the_door_answers_nothing() {
    let t = town().await;
    let node = &t.node;
    let ended = Who::Session {
        cookie: format!(
            "{}=0123.4567",
            node.hall.node().id.as_str().replace('-', "_")
        ),
        csrf: "x".into(),
    };
    // (path and a query it takes, whether only administrators may read it,
    // whether it has fields a query can get wrong)
    let reads = [
        (items::ListItems::PATH, "", false, true),
        (items::ShowItem::PATH, "code=X", false, true),
        (cases::ListCases::PATH, "", false, true),
        (cases::ShowCase::PATH, "case=A-1", false, true),
        (orders::ListOrders::PATH, "", false, true),
        (orders::ShowOrder::PATH, "order=cn-212.1", false, true),
        (calendar::ShowCalendar::PATH, "", false, true),
        (docs::ExportDoc::PATH, "id=case:140212101:A-1", true, true),
        (docs::ShowDoc::PATH, "id=case:140212101:A-1", true, true),
        (node::Status::PATH, "", false, false),
        (operators::ListOperators::PATH, "", true, false),
    ];
    let get = |who: &Who, uri: String| {
        let req = match who {
            Who::Session { cookie, .. } => axum::http::Request::get(uri).header("cookie", cookie),
            _ => axum::http::Request::get(uri),
        };
        node.send(req.body(Body::empty()).unwrap())
    };
    for (path, query, admin_only, fields) in reads {
        let uri = |q: &str| format!("{}{path}?{q}", hallsync_api::PREFIX);
        let answer = get(&Who::Nobody, uri(query)).await;
        answer.refused(401, "unauthorized");
        assert!(answer.message().contains("log in"), "{}", answer.json);
        get(&ended, uri(query)).await.refused(401, "unauthorized");
        if admin_only {
            get(&t.clerk, uri(query)).await.refused(403, "forbidden");
        }
        if fields {
            // A page size that is no number, a year that is none, or a
            // required field missing.
            get(&t.admin, uri("limit=many&year=x"))
                .await
                .refused(400, "bad_request");
        }
    }
    // A read is no write, nor a write a read.
    let post = node
        .post_raw(
            &t.clerk,
            cases::ShowCase::PATH,
            true,
            Some("application/json"),
            "{}".into(),
        )
        .await;
    post.refused(405, "method_not_allowed");
    let get_write = get(
        &t.clerk,
        format!("{}{}", hallsync_api::PREFIX, cases::RecordEvent::PATH),
    )
    .await;
    get_write.refused(405, "method_not_allowed");
    get(&t.clerk, format!("{}/nothing/here", hallsync_api::PREFIX))
        .await
        .refused(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_records_do_not_allow_is_refused_and_stores_nothing() {
    let t = town().await;
    let n = &t.node;
    // Unknown records.
    refused(n, &t.clerk, &accept("NOPE", "A-3"), 404, "not_found").await;
    refused(
        n,
        &t.clerk,
        &event("A-9", EventKind::Accepted),
        404,
        "not_found",
    )
    .await;
    refused(
        n,
        &t.clerk,
        &cases::ShowCase { case: "A-9".into() },
        404,
        "not_found",
    )
    .await;
    refused(
        n,
        &t.clerk,
        &items::ShowItem {
            code: "NOPE".into(),
        },
        404,
        "not_found",
    )
    .await;
    let review = items::ReviewItem {
        code: "NOPE".into(),
        action: ReviewAction::Approved,
        reason: String::new(),
        by: String::new(),
    };
    refused(n, &t.reviewer, &review, 404, "not_found").await;
    let reply = orders::ReplyOrder {
        order: "cn-212.9".into(),
        text: "x".into(),
        by: String::new(),
    };
    refused(n, &t.clerk, &reply, 404, "not_found").await;
    refused(
        n,
        &t.clerk,
        &orders::ShowOrder {
            order: "cn-212.9".into(),
        },
        404,
        "not_found",
    )
    .await;
    let missing = docs::ShowDoc {
        id: "case:140212101:A-9".into(),
    };
    refused(n, &t.admin, &missing, 404, "not_found").await;
    // Events the case's state does not allow.
    let conclude = EventKind::Concluded {
        outcome: Outcome::Approved,
        opinion: String::new(),
        certificate: String::new(),
    };
    let message = refused(n, &t.clerk, &event("A-1", conclude), 409, "not_allowed").await;
    assert!(message.contains("state 1 received"), "{message}");
    refused(n, &t.clerk, &accept(ITEM, "A-1"), 409, "exists").await;
    let publish = items::ReviewItem {
        code: ITEM.into(),
        action: ReviewAction::Approved,
        reason: String::new(),
        by: String::new(),
    };
    refused(n, &t.reviewer, &publish, 409, "not_allowed").await;
    // Values no record takes.
    let mut pigeon = accept(ITEM, "A-4");
    pigeon.channel = "pigeon".into();
    refused(n, &t.clerk, &pigeon, 400, "invalid").await;
    let mut nameless = draft("X9");
    nameless.fields.remove("name");
    refused(n, &t.reviewer, &nameless, 400, "invalid").await;
    let pdf = items::ImportItems {
        file_name: "目录.pdf".into(),
        content: Bytes(b"%PDF".to_vec()),
        by: String::new(),
        publish_by: None,
    };
    refused(n, &t.reviewer, &pdf, 400, "invalid").await;
    let calendar = calendar::ImportCalendar {
        text: "2026-13-01,holiday,x\n".into(),
        office_hours: None,
    };
    refused(n, &t.admin, &calendar, 400, "invalid").await;
    let garbage = docs::ImportDoc {
        content: Bytes(b"not a document".to_vec()),
    };
    refused(n, &t.admin, &garbage, 400, "invalid").await;
    refused(
        n,
        &t.admin,
        &docs::ExportDoc {
            id: "case:x".into(),
        },
        400,
        "invalid",
    )
    .await;
    let twice = operators::AddOperator {
        login: "clerk1".into(),
        name: "又一个".into(),
        roles: [Role::Clerk].into(),
        password: common::PASSWORD.into(),
    };
    refused(n, &t.admin, &twice, 400, "invalid").await;
    let short = operators::SetPassword {
        login: "clerk1".into(),
        password: "short".into(),
    };
    refused(n, &t.admin, &short, 400, "invalid").await;
    let nobody = operators::DisableOperator {
        login: "nobody".into(),
        disabled: true,
    };
    refused(n, &t.admin, &nobody, 400, "invalid").await;
    // A township issues no orders, and its own administrator names the
    // handler of a write.
    let issue = orders::IssueOrder {
        unit: RegionCode::parse("140212").unwrap(),
        case: "A-1".into(),
        rule: Rule::CaseTimeLimit,
        card: Card::Notice,
        reason: "x".into(),
        department: String::new(),
        reply_within: TimeLimit::parse("3wd").unwrap(),
        by: "王芳".into(),
    };
    refused(n, &Who::Admin, &issue, 400, "invalid").await;
    let unnamed = event("A-1", EventKind::Accepted);
    let message = refused(n, &Who::Admin, &unnamed, 400, "invalid").await;
    assert!(message.contains("handler must be named"), "{message}");
}
