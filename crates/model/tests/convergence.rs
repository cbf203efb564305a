//! Convergence: two copies of one case document (or supervision order),
//! edited concurrently at two levels and merged in either order, give the
//! same events and the same derived state; and the derived state does not
//! depend on the order the events are listed in. And no card of a case
//! stands before the time its facts say one can first stand (the hall's
//! index of cases to list cards from relies on it).

use automerge::AutoCommit;
use hallsync_model::cards::{case_cards, Thresholds};
use hallsync_model::case::{Applicant, CaseHeader, ItemRef, Outcome, Procedure};
use hallsync_model::catalogue::{CaseType, Category, Disclosure};
use hallsync_model::order::{Card, Order, OrderAction, OrderEvent, OrderHeader, Resolution, Rule};
use hallsync_model::schema::{
    read_case, read_order, write_event, write_new_case, write_new_order, write_order_event,
};
use hallsync_model::stats::case_facts;
use hallsync_model::{
    Calendar, Case, CaseEvent, DocId, DocKind, EventKind, LimitUnit, LogId, NodeId, RegionCode,
    TimeLimit, Ts,
};
use proptest::prelude::*;

fn header() -> CaseHeader {
    CaseHeader {
        number: "XK-1".into(),
        region: RegionCode::parse("140212101").unwrap(),
        hall: NodeId::parse("town").unwrap(),
        item: ItemRef {
            impl_code: "A1".into(),
            name: "x".into(),
            version: 1,
            category: Category::Licensing,
            agency: "局".into(),
            statutory_limit: TimeLimit::new(20, LimitUnit::WorkingDays),
            committed_limit: TimeLimit::new(10, LimitUnit::WorkingDays),
            case_type: CaseType::Committed,
            disclosure: Disclosure::Public,
            fees: None,
        },
        applicant: Applicant {
            name: "张三".into(),
            id_type: "身份证".into(),
            id_number: "1".into(),
        },
        channel: "window".into(),
    }
}

fn kind(choice: u8) -> EventKind {
    let s = |x: &str| x.to_string();
    match choice % 14 {
        0 => EventKind::StepStarted { step: s("审核") },
        1 => EventKind::StepFinished {
            step: s("审核"),
            pass: true,
            opinion: s("同意"),
        },
        2 => EventKind::SupplementRequested {
            materials: s("户口簿"),
        },
        3 => EventKind::SupplementCompleted,
        4 => EventKind::SpecialStarted {
            procedure: Procedure::Hearing,
            reason: s("听证"),
            until: None,
        },
        5 => EventKind::SpecialEnded {
            result: s("完毕")
        },
        6 => EventKind::Extended {
            amount: TimeLimit::new(10, LimitUnit::WorkingDays),
            reason: s("复杂"),
        },
        7 => EventKind::FeeCharged {
            name: s("工本费"),
            amount_fen: 1000,
        },
        8 => EventKind::Concluded {
            outcome: Outcome::Approved,
            opinion: s("准予"),
            certificate: String::new(),
        },
        9 => EventKind::Concluded {
            outcome: Outcome::Refused,
            opinion: s("不符合条件"),
            certificate: String::new(),
        },
        10 => EventKind::Withdrawn {
            reason: s("撤回")
        },
        11 => EventKind::Published,
        12 => EventKind::CertificateDelivered {
            method: s("窗口")
        },
        _ => EventKind::Rated { score: 5 },
    }
}

/// Applies the valid ones of `steps` to a fork, as a node would: each
/// event is checked against the fork's own state first.
fn edit(doc: &mut AutoCommit, id: &DocId, node: &str, steps: &[(u8, u32)]) {
    let node = NodeId::parse(node).unwrap();
    let mut at = Ts::parse("2026-11-16 10:00").unwrap();
    for (choice, minutes) in steps {
        at = at.plus(i64::from(*minutes) * 60);
        let case = read_case(doc, id).unwrap();
        let event = CaseEvent {
            id: case.next_event_id(&node, "a").unwrap(),
            at,
            by: "handler".into(),
            node: node.clone(),
            kind: kind(*choice),
        };
        if case.check(&event, at).is_ok() {
            write_event(doc, &event).unwrap();
            doc.commit();
        }
    }
}

fn base() -> (DocId, AutoCommit) {
    let h = header();
    let id = DocId::new(DocKind::Case, &h.region, &h.number).unwrap();
    let node = h.hall.clone();
    let at = Ts::parse("2026-11-16 09:00").unwrap();
    let ev = |n: u32, kind| CaseEvent {
        id: LogId::new(&node, "a", u64::from(n)).unwrap(),
        at,
        by: "h".into(),
        node: node.clone(),
        kind,
    };
    let case = Case {
        events: vec![ev(1, EventKind::Received), ev(2, EventKind::Accepted)],
        header: h,
    };
    let mut doc = AutoCommit::new();
    write_new_case(&mut doc, &id, &case).unwrap();
    doc.commit();
    (id, doc)
}

fn sorted(mut c: Case) -> Case {
    c.events.sort_by(|a, b| a.id.cmp(&b.id));
    c
}

/// A red-card order from the county to the township about case XK-1.
fn order_doc() -> (DocId, AutoCommit) {
    let unit = RegionCode::parse("140212101").unwrap();
    let id = DocId::new(DocKind::Order, &unit, "county.1").unwrap();
    let order = Order {
        header: OrderHeader {
            unit,
            department: String::new(),
            issuer: RegionCode::parse("140212").unwrap(),
            issuer_node: NodeId::parse("county").unwrap(),
            case: DocId::parse("case:140212101:XK-1").unwrap(),
            rule: Rule::CaseTimeLimit,
            card: Card::Red,
            reason: "逾期".into(),
            issued_at: Ts::parse("2026-11-16 09:00").unwrap(),
            issued_by: "监察室".into(),
            reply_due: Ts::parse("2026-11-19 00:00").unwrap(),
        },
        events: Vec::new(),
    };
    let mut doc = AutoCommit::new();
    write_new_order(&mut doc, &id, &order).unwrap();
    doc.commit();
    (id, doc)
}

/// What the hall at `here` records on its copy of the order, as a node
/// would: replies at the township, closings at the county, each checked
/// against the copy first.
fn edit_order(doc: &mut AutoCommit, id: &DocId, here: &str, steps: &[(u8, u32)]) {
    let region = RegionCode::parse(here).unwrap();
    let node = NodeId::parse(if here.len() > 6 { "town" } else { "county" }).unwrap();
    let mut at = Ts::parse("2026-11-16 10:00").unwrap();
    for (choice, minutes) in steps {
        at = at.plus(i64::from(*minutes) * 60);
        let order = read_order(doc, id).unwrap();
        let text = "说明".to_string();
        let action = match choice % 4 {
            0 => OrderAction::Close {
                resolution: Resolution::Rectified,
                text,
            },
            1 => OrderAction::Close {
                resolution: Resolution::Withdrawn,
                text,
            },
            _ => OrderAction::Reply { text },
        };
        let event = OrderEvent {
            id: order.next_event_id(&node, "a").unwrap(),
            at,
            by: "某人".into(),
            node: node.clone(),
            action,
        };
        if order.check(&event, &region).is_ok() {
            write_order_event(doc, &event).unwrap();
            doc.commit();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn an_order_replied_and_closed_apart_merges_to_one_state(
        town in prop::collection::vec((0u8..4, 0u32..3000), 0..6),
        county in prop::collection::vec((0u8..4, 0u32..3000), 0..6),
    ) {
        let (id, mut doc) = order_doc();
        let (mut a, mut b) = (doc.fork(), doc.fork());
        edit_order(&mut a, &id, "140212101", &town);
        edit_order(&mut b, &id, "140212", &county);
        let mut ab = a.fork();
        ab.merge(&mut b.fork()).unwrap();
        let mut ba = b.fork();
        ba.merge(&mut a.fork()).unwrap();
        let (oab, oba) = (read_order(&ab, &id).unwrap(), read_order(&ba, &id).unwrap());
        let now = Ts::parse("2026-12-01 00:00").unwrap();
        prop_assert_eq!(oab.view(now), oba.view(now));
        let forks = read_order(&a, &id).unwrap().events.len() + read_order(&b, &id).unwrap().events.len();
        prop_assert_eq!(oab.events.len(), forks);
        // The county's copy holds at most one closing, and the township's none.
        let closes = |o: &Order| o.events.iter().filter(|e| matches!(e.action, OrderAction::Close { .. })).count();
        prop_assert!(closes(&read_order(&b, &id).unwrap()) <= 1);
        prop_assert_eq!(closes(&read_order(&a, &id).unwrap()), 0);
    }

    #[test]
    fn concurrent_edits_merge_to_one_state_in_either_order(
        town in prop::collection::vec((0u8..14, 0u32..3000), 0..10),
        county in prop::collection::vec((0u8..14, 0u32..3000), 0..10),
    ) {
        let (id, mut doc) = base();
        let mut a = doc.fork();
        let mut b = doc.fork();
        edit(&mut a, &id, "town", &town);
        edit(&mut b, &id, "county", &county);

        let mut ab = a.fork();
        ab.merge(&mut b.fork()).unwrap();
        let mut ba = b.fork();
        ba.merge(&mut a.fork()).unwrap();
        prop_assert_eq!(ab.get_heads(), ba.get_heads());

        let (cab, cba) = (sorted(read_case(&ab, &id).unwrap()), sorted(read_case(&ba, &id).unwrap()));
        prop_assert_eq!(&cab, &cba);
        let view = cab.view();
        prop_assert_eq!(&view, &cba.view());

        // Every event of both forks survives the merge.
        let from_forks = read_case(&a, &id).unwrap().events.len()
            + read_case(&b, &id).unwrap().events.len() - 2;
        prop_assert_eq!(cab.events.len(), from_forks);

        // A fork on its own never disagrees with itself.
        prop_assert!(read_case(&a, &id).unwrap().view().conflicts.is_empty());
    }

    #[test]
    fn derived_state_ignores_listing_order(
        steps in prop::collection::vec((0u8..14, 0u32..3000), 0..12),
        seed in any::<u64>(),
    ) {
        let (id, mut doc) = base();
        edit(&mut doc, &id, "town", &steps);
        let case = read_case(&doc, &id).unwrap();
        let mut shuffled = case.clone();
        // A deterministic shuffle driven by the seed.
        let n = shuffled.events.len();
        let mut s = seed;
        for i in (1..n).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.events.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(case.view(), shuffled.view());
    }

    #[test]
    fn no_card_stands_before_the_case_says_one_can(
        steps in prop::collection::vec((0u8..14, 0u32..6000), 0..12),
        later in prop::collection::vec(0i64..120 * 86_400, 1..8),
    ) {
        let (id, mut doc) = base();
        edit(&mut doc, &id, "town", &steps);
        let case = read_case(&doc, &id).unwrap();
        let view = case.view();
        let cal = Calendar::default();
        let t = Thresholds::default();
        let last = view.last_event_at.unwrap();
        let clock = case.clock(&view, &cal, last);
        let from = case_facts(&case.header, &view, &clock, &cal, &t).standing_from();
        for secs in later {
            let now = last.plus(secs);
            let clock = case.clock(&view, &cal, now);
            let standing: Vec<_> = case_cards(&case.header, &view, &clock, &cal, &t, now)
                .into_iter()
                .filter(|c| c.until.is_none())
                .collect();
            prop_assert!(
                standing.is_empty() || from.is_some_and(|f| f <= now),
                "standing at {}: {:?}, indexed from {:?}", now, standing, from
            );
        }
    }
}
