//! One definition of a valid record: whatever a writer's check accepts, the
//! strict reader reads back unchanged, and whatever the check refuses, the
//! reader refuses too, so no record can be written that another node would
//! turn away.

use automerge::AutoCommit;
use hallsync_model::case::{Applicant, CaseHeader, ItemRef, Outcome};
use hallsync_model::catalogue::{CaseType, Category, Disclosure, ItemContent, ReviewRecord};
use hallsync_model::schema::{
    read_case, read_item, write_item_content, write_new_case, write_review, MAX_STR,
};
use hallsync_model::{
    Case, CaseEvent, DocId, DocKind, EventKind, Item, LimitUnit, LogId, NodeId, RegionCode,
    ReviewAction, TimeLimit, Ts,
};
use proptest::prelude::*;

/// Texts at and around the limits, in characters that take three bytes.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(MAX_STR),
        Just(MAX_STR + 1),
        1usize..64,
    ]
    .prop_map(|n| "办".repeat(n))
}

fn header(name: String, agency: String) -> CaseHeader {
    CaseHeader {
        number: "XK-1".into(),
        region: RegionCode::parse("140212101").unwrap(),
        hall: NodeId::parse("tw-101").unwrap(),
        item: ItemRef {
            impl_code: "A1".into(),
            name: "宅基地审批".into(),
            version: 1,
            category: Category::Licensing,
            agency,
            statutory_limit: TimeLimit::new(20, LimitUnit::WorkingDays),
            committed_limit: TimeLimit::new(10, LimitUnit::WorkingDays),
            case_type: CaseType::Committed,
            disclosure: Disclosure::Public,
            fees: None,
        },
        applicant: Applicant {
            name,
            id_type: "身份证".into(),
            id_number: "140212199001011234".into(),
        },
        channel: "window".into(),
    }
}

fn event(n: u64, by: String, choice: u8, t: String) -> CaseEvent {
    let node = NodeId::parse("tw-101").unwrap();
    let kind = match choice % 6 {
        0 => EventKind::StepStarted { step: t },
        1 => EventKind::Withdrawn { reason: t },
        2 => EventKind::SupplementRequested { materials: t },
        3 => EventKind::Concluded {
            outcome: Outcome::Refused,
            opinion: t.clone(),
            certificate: t,
        },
        4 => EventKind::FeeCharged {
            name: t,
            amount_fen: 100,
        },
        _ => EventKind::Received,
    };
    CaseEvent {
        id: LogId::new(&node, "a", n).unwrap(),
        at: Ts(1_700_000_000 + n as i64),
        by,
        node,
        kind,
    }
}

fn round_trip_case(id: &DocId, case: &Case) -> Option<Case> {
    let mut doc = AutoCommit::new();
    write_new_case(&mut doc, id, case).ok()?;
    let loaded = AutoCommit::load(&doc.save()).ok()?;
    read_case(&loaded, id).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_case_the_writer_accepts_is_read_back_and_one_it_refuses_is_refused(
        name in text(),
        agency in text(),
        events in prop::collection::vec((text(), any::<u8>(), text()), 0..4),
    ) {
        let case = Case {
            header: header(name, agency),
            events: events
                .into_iter()
                .enumerate()
                .map(|(i, (by, choice, t))| event(i as u64 + 1, by, choice, t))
                .collect(),
        };
        let id = DocId::new(DocKind::Case, &case.header.region, &case.header.number).unwrap();
        let read = round_trip_case(&id, &case);
        prop_assert_eq!(case.validate().is_ok(), read.is_some());
        if let Some(mut back) = read {
            back.events.sort_by(|a, b| a.id.cmp(&b.id));
            prop_assert_eq!(back, case);
        }
    }

    #[test]
    fn an_item_the_writer_accepts_is_read_back_and_one_it_refuses_is_refused(
        basis in text(),
        step in text(),
        by in text(),
    ) {
        let content = ItemContent {
            name: "宅基地审批".into(),
            basic_code: "0101".into(),
            impl_code: "X1".into(),
            category: Category::Licensing,
            legal_basis: basis,
            exercise_level: 5,
            agency: "样例镇人民政府".into(),
            agency_code: String::new(),
            office: String::new(),
            co_departments: Vec::new(),
            statutory_limit: TimeLimit::new(20, LimitUnit::WorkingDays),
            committed_limit: TimeLimit::new(10, LimitUnit::WorkingDays),
            case_type: CaseType::Committed,
            conditions: String::new(),
            materials: Vec::new(),
            steps: vec![step],
            fees: Vec::new(),
            consult_phone: String::new(),
            complaint_phone: String::new(),
            disclosure: Disclosure::Public,
            discretion: Vec::new(),
            effective: None,
            cancelled: None,
        };
        let node = NodeId::parse("tw-101").unwrap();
        let record = ReviewRecord {
            id: LogId::new(&node, "a", 1).unwrap(),
            action: ReviewAction::Drafted,
            version: 1,
            by,
            at: Ts(1_700_000_000),
            reason: String::new(),
            node,
        };
        let item = Item { content, version: 1, history: vec![record.clone()] };
        let region = RegionCode::parse("140212101").unwrap();
        let id = DocId::new(DocKind::Item, &region, "X1").unwrap();
        let mut doc = AutoCommit::new();
        write_item_content(&mut doc, &id, &item.content, 1).unwrap();
        write_review(&mut doc, &record).unwrap();
        let read = read_item(&AutoCommit::load(&doc.save()).unwrap(), &id).ok();
        prop_assert_eq!(item.validate().is_ok(), read.is_some());
        if let Some(back) = read {
            prop_assert_eq!(back, item);
        }
    }
}

#[test]
fn an_event_keyed_under_another_node_is_not_a_valid_record() {
    let mut e = event(1, "李四".into(), 5, String::new());
    e.node = NodeId::parse("tw-102").unwrap();
    let case = Case {
        header: header("张三".into(), "局".into()),
        events: vec![e],
    };
    let err = case.validate().unwrap_err().to_string();
    assert!(err.contains("events.tw-101.a.1.node"), "{err}");
}
