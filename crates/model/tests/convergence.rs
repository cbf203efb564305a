//! Convergence: two copies of one case document, edited concurrently at two
//! levels and merged in either order, give the same events and the same
//! derived state; and the derived state does not depend on the order the
//! events are listed in.

use automerge::AutoCommit;
use hallsync_model::case::{Applicant, CaseHeader, ItemRef, Outcome, Procedure};
use hallsync_model::catalogue::{CaseType, Category, Disclosure};
use hallsync_model::schema::{read_case, write_event, write_new_case};
use hallsync_model::{
    Case, CaseEvent, DocId, DocKind, EventKind, LimitUnit, NodeId, RegionCode, TimeLimit, Ts,
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
            id: case.next_event_id(&node, "a"),
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
        id: format!("town.a.{n}"),
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

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
}
