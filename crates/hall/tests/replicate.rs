//! Replication between two real stores (a township and its county), with
//! the protocol sessions wired back to back: records flow both ways, merge,
//! stay in scope, and bad data from a peer changes nothing.

#[path = "support/levels.rs"]
mod levels;
#[path = "support/mod.rs"]
mod support;

use levels::county;

use std::time::Duration;

use hallsync_hall::{Hall, HallReplica};
use hallsync_model::Ts;
use hallsync_sync::{msg, Config, Endpoint, Msg, Payload, Session, SessionError};

fn endpoint(h: &Hall) -> Endpoint {
    Endpoint {
        id: h.node().id.clone(),
        region: h.node().region.clone(),
    }
}

fn now() -> Ts {
    Ts::parse("2026-03-10 10:00").unwrap()
}

/// Runs a session pair until neither has anything to say; returns the
/// township's session (its counters) and the county's.
fn sync(town: &Hall, county: &Hall) -> Result<(Session, Session), SessionError> {
    let t = Duration::ZERO;
    let mut rt = HallReplica {
        hall: town,
        now: now(),
    };
    let mut rc = HallReplica {
        hall: county,
        now: now(),
    };
    let mut up = Session::new(
        endpoint(town),
        endpoint(county),
        Config::default(),
        &mut rt,
        t,
    )?;
    let mut down = Session::new(
        endpoint(county),
        endpoint(town),
        Config::default(),
        &mut rc,
        t,
    )?;
    loop {
        let mut quiet = true;
        while let Some(m) = up.poll_transmit() {
            quiet = false;
            let m = msg::decode(&msg::encode(&m).unwrap()).unwrap();
            down.handle(&mut rc, m, t)?;
        }
        while let Some(m) = down.poll_transmit() {
            quiet = false;
            let m = msg::decode(&msg::encode(&m).unwrap()).unwrap();
            up.handle(&mut rt, m, t)?;
        }
        up.poll(&mut rt, t)?;
        down.poll(&mut rc, t)?;
        if quiet {
            return Ok((up, down));
        }
    }
}

#[test]
fn cases_go_up_items_come_down_and_concurrent_edits_merge() {
    let (dt, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let town = support::township(dt.path());
    let county = county(dc.path());
    support::publish(&town, "T1", now());
    for i in 0..40 {
        town.accept_case(
            support::new_case("T1", Some(format!("T1-{i:03}")), now()),
            now(),
        )
        .unwrap();
    }
    county
        .add_item(&support::item("C9", "15个工作日"), "县法制办", now())
        .unwrap();
    let (up, down) = sync(&town, &county).unwrap();
    assert_eq!(up.stats().sent_whole, 41, "40 cases and the township item");
    assert_eq!(down.stats().sent_whole, 1, "the county item");
    assert!(up.caught_up(&HallReplica {
        hall: &town,
        now: now()
    }));
    assert_eq!(county.list_cases(&all(), now()).unwrap().len(), 40);
    let id = town.case_id("T1-007").unwrap();
    let (case, _) = county.case(id.as_str(), now()).unwrap();
    assert_eq!(case.header.number, "T1-007");
    town.item("C9").unwrap();

    // Both levels record an event on the same case while apart.
    let later = now().plus(3_600);
    levels::act_at_both_levels(&town, &county, "T1-007", later);
    let (up, down) = sync(&town, &county).unwrap();
    assert_eq!(up.stats().sent_whole + down.stats().sent_whole, 0);
    assert_eq!(up.stats().sent_changes, 1);
    assert_eq!(down.stats().sent_changes, 1);
    let (a, _) = town.case("T1-007", later).unwrap();
    let (b, _) = county.case(id.as_str(), later).unwrap();
    assert_eq!(a.events.len(), b.events.len());
    assert_eq!(a.view(), b.view());

    // A third run has nothing to send.
    let (up, down) = sync(&town, &county).unwrap();
    assert_eq!(up.stats().offered + down.stats().offered, 0);
}

/// Any checkpoint of the township's feed.
const AT: hallsync_sync::Position = hallsync_sync::Position { feed: 1, seq: 9 };

fn received(id: &hallsync_model::DocId, payload: Payload) -> hallsync_sync::Received {
    hallsync_sync::Received {
        id: id.clone(),
        payload,
        heads: Vec::new(),
    }
}

#[test]
fn a_peer_whose_store_was_recreated_gets_everything_again() {
    let (dt, dc, dc2) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let town = support::township(dt.path());
    support::publish(&town, "T1", now());
    for i in 0..10 {
        town.accept_case(
            support::new_case("T1", Some(format!("T1-{i}")), now()),
            now(),
        )
        .unwrap();
    }
    let first = county(dc.path());
    for i in 0..30 {
        first
            .add_item(
                &support::item(&format!("C{i}"), "15个工作日"),
                "县法制办",
                now(),
            )
            .unwrap();
    }
    sync(&town, &first).unwrap();
    drop(first);
    // The county PC is reinstalled: same node, empty store, a newer feed
    // whose sequence numbers are far below the township's checkpoint.
    let second = county(dc2.path());
    second
        .add_item(&support::item("NEW", "15个工作日"), "县法制办", now())
        .unwrap();
    let (up, down) = sync(&town, &second).unwrap();
    assert_eq!(up.stats().sent_whole, 11, "every township record again");
    assert_eq!(down.stats().sent_whole, 1, "the new county item");
    assert_eq!(second.list_cases(&all(), now()).unwrap().len(), 10);
    town.item("NEW").unwrap();
}

#[test]
fn a_calendar_update_reaches_a_node_that_has_not_loaded_its_calendar() {
    let (dt, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let town = support::township(dt.path());
    let county = county(dc.path());
    let first = "2026-10-01,holiday,国庆节\n2026-10-10,workday,国庆调休\n";
    county.import_calendar(first, None, now()).unwrap();
    sync(&town, &county).unwrap();
    assert!(!town
        .calendar()
        .unwrap()
        .is_working_day(chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()));
    // The county adds a day; the township restarts (no calendar loaded)
    // and receives the change to a calendar document it holds.
    let second = format!("{first}2026-10-02,holiday,国庆节\n");
    county.import_calendar(&second, None, now()).unwrap();
    drop(town);
    let town =
        hallsync_hall::Hall::open(dt.path(), hallsync_store::StoreOptions::default()).unwrap();
    let (up, down) = sync(&town, &county).unwrap();
    assert_eq!(
        up.stats().received,
        1,
        "{:?} {:?}",
        up.stats(),
        down.stats()
    );
    assert!(!town
        .calendar()
        .unwrap()
        .is_working_day(chrono::NaiveDate::from_ymd_opt(2026, 10, 2).unwrap()));
}

fn all() -> hallsync_hall::CaseFilter {
    hallsync_hall::CaseFilter {
        include_closed: true,
        ..Default::default()
    }
}

/// A township holding case T1-1 (under published item T1), and its county,
/// in temporary directories (kept alive by the first value).
fn town_and_county_with_a_case() -> ([tempfile::TempDir; 2], Hall, Hall) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let town = support::township(dirs[0].path());
    let county = county(dirs[1].path());
    support::publish(&town, "T1", now());
    town.accept_case(support::new_case("T1", Some("T1-1".into()), now()), now())
        .unwrap();
    (dirs, town, county)
}

/// A document chunk, checksum right, with an action code Automerge does
/// not know: its loader reaches an `unreachable!`.
const AUTOMERGE_PANICS: &[u8] =
    include_bytes!("../../../fuzz/regressions/doc/automerge-unknown-action-panics");

#[test]
fn bad_data_from_a_peer_is_set_aside_and_nothing_of_it_is_stored() {
    use hallsync_sync::Replica;
    let (_dirs, town, county) = town_and_county_with_a_case();
    let id = town.case_id("T1-1").unwrap();
    let good = town.export_doc(&id).unwrap();
    let peer = endpoint(&town);
    let mut rc = HallReplica {
        hall: &county,
        now: now(),
    };
    let head = county.store().durable_seq();
    let bad = [
        Payload::Whole(good[..good.len() / 2].to_vec()),
        Payload::Whole(b"not automerge".to_vec()),
        Payload::Changes(good.clone()),
        // Found by the doc fuzz harness: Automerge's loader panics on it.
        Payload::Whole(AUTOMERGE_PANICS.to_vec()),
        Payload::Changes(AUTOMERGE_PANICS.to_vec()),
    ];
    for p in bad {
        let refused = rc.apply(&peer, vec![received(&id, p)], Some(AT)).unwrap();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].id, id);
    }
    // A valid document under the wrong id.
    let other = hallsync_model::DocId::parse("case:140212101:forged").unwrap();
    let refused = rc
        .apply(
            &peer,
            vec![received(&other, Payload::Whole(good.clone()))],
            Some(AT),
        )
        .unwrap();
    assert!(refused[0].reason.contains("forged"), "{refused:?}");
    // A sibling's record.
    let sibling = hallsync_model::DocId::parse("case:140213101:x").unwrap();
    let mut rt = HallReplica {
        hall: &town,
        now: now(),
    };
    let refused = rt
        .apply(
            &endpoint(&county),
            vec![received(&sibling, Payload::Whole(good.clone()))],
            None,
        )
        .unwrap();
    assert!(refused[0].reason.contains("scope"), "{refused:?}");
    assert_eq!(county.store().durable_seq(), head, "nothing was stored");
    assert!(!county.store().contains(&id).unwrap());
    // ... but the batches count as applied, and what was set aside is
    // noted with its reason.
    assert_eq!(
        county.store().peer_checkpoint("tw-101").unwrap().seq,
        AT.seq
    );
    let noted = county.set_aside().unwrap();
    assert_eq!(noted.len(), 2, "{noted:?}");
    assert!(noted
        .iter()
        .all(|n| n.direction == hallsync_hall::Direction::Refused && n.peer == "tw-101"));
    // The good copy arrives later: stored, and no longer set aside.
    let refused = rc
        .apply(&peer, vec![received(&id, Payload::Whole(good))], None)
        .unwrap();
    assert!(refused.is_empty());
    assert!(county.store().contains(&id).unwrap());
    assert_eq!(county.set_aside().unwrap().len(), 1, "only the forged id");

    // The same through a session: the record is set aside, the peer told,
    // the batch acknowledged, and the session goes on.
    let mut down = Session::new(
        endpoint(&county),
        endpoint(&town),
        Config::default(),
        &mut rc,
        Duration::ZERO,
    )
    .unwrap();
    down.handle(
        &mut rc,
        Msg::Hello(msg::Hello {
            protocol: msg::PROTOCOL,
            node: "tw-101".into(),
            feed: town.store().feed_id(),
            resume_feed: 0,
            resume: 0,
            head: 1,
        }),
        Duration::ZERO,
    )
    .unwrap();
    down.handle(
        &mut rc,
        Msg::Offer {
            batch: 1,
            after: 0,
            upto: 1,
            head: 1,
            docs: vec![msg::OfferDoc {
                id: id.to_string(),
                heads: vec![[7; 32]],
            }],
        },
        Duration::ZERO,
    )
    .unwrap();
    while down.poll_transmit().is_some() {}
    down.handle(
        &mut rc,
        Msg::Data {
            batch: 1,
            start: 0,
            last: true,
            docs: vec![Payload::Whole(vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3])],
        },
        Duration::ZERO,
    )
    .unwrap();
    let sent: Vec<Msg> = std::iter::from_fn(|| down.poll_transmit()).collect();
    assert!(
        sent.iter().any(
            |m| matches!(m, Msg::Refused { docs } if docs.len() == 1 && docs[0].id == id.to_string())
        ),
        "{sent:?}"
    );
    assert!(sent.contains(&Msg::Ack { upto: 1 }), "{sent:?}");
    assert!(down.established());
}

/// Changes a stored document directly, past every check of the hall: what
/// an older build, a crafted import or a damaged disk could leave.
fn edit_stored(
    hall: &Hall,
    id: &hallsync_model::DocId,
    edit: impl FnOnce(&mut automerge::AutoCommit),
) {
    let h = hall.store().doc(id).unwrap();
    let mut l = hallsync_store::lock(&h).unwrap();
    edit(&mut l.doc);
    l.doc.commit();
    hall.store()
        .persist(&mut [hallsync_store::Pending {
            id,
            loaded: &mut l,
            index: None,
            facts: None,
        }])
        .unwrap();
}

#[test]
fn a_record_the_county_refuses_is_set_aside_at_both_ends_and_the_rest_flows() {
    use automerge::{transaction::Transactable, ReadDoc, ROOT};
    let (_dirs, town, county) = town_and_county_with_a_case();
    // What an older build could write, past today's checks: a case whose
    // applicant's name is far over the limit, written so from the start.
    let (mut bad, _) = town.case("T1-1", now()).unwrap();
    bad.header.number = "T1-0".into();
    bad.header.applicant.name = "张".repeat(5_000);
    let id = hallsync_model::DocId::parse("case:140212101:T1-0").unwrap();
    edit_stored(&town, &id, |doc| {
        hallsync_model::schema::write_new_case(doc, &id, &bad).unwrap();
    });
    for i in 2..=20 {
        town.accept_case(
            support::new_case("T1", Some(format!("T1-{i}")), now()),
            now(),
        )
        .unwrap();
    }
    let (up, down) = sync(&town, &county).unwrap();
    assert_eq!(county.list_cases(&all(), now()).unwrap().len(), 20);
    assert_eq!(down.stats().refused, 1);
    assert_eq!(up.stats().refused_by_peer, 1);
    assert_eq!(
        county.store().peer_checkpoint("tw-101").unwrap().seq,
        town.store().durable_seq(),
        "the whole feed acknowledged"
    );
    let at_county = county.set_aside().unwrap();
    let at_town = town.set_aside().unwrap();
    assert_eq!((at_county.len(), at_town.len()), (1, 1));
    assert!(
        at_county[0].reason.contains("applicant.name"),
        "{at_county:?}"
    );
    assert_eq!(
        at_town[0].direction,
        hallsync_hall::Direction::RefusedByPeer
    );
    assert_eq!(at_town[0].id, id);
    // A header is written once: putting the name right by rewriting it is
    // refused as well, so the record stays set aside, now for the rewrite,
    // while new cases keep flowing.
    edit_stored(&town, &id, |doc| {
        let (_, applicant) = doc.get(ROOT, "applicant").unwrap().unwrap();
        doc.put(&applicant, "name", "张三").unwrap();
    });
    town.accept_case(support::new_case("T1", Some("T1-21".into()), now()), now())
        .unwrap();
    sync(&town, &county).unwrap();
    assert_eq!(county.list_cases(&all(), now()).unwrap().len(), 21);
    let at_county = county.set_aside().unwrap();
    assert_eq!(at_county.len(), 1);
    assert!(
        at_county[0].reason.contains("writes applicant.name again"),
        "{at_county:?}"
    );
}

#[test]
fn a_township_can_neither_close_its_own_order_nor_soften_it() {
    use automerge::{transaction::Transactable, AutoCommit, ROOT};
    use hallsync_model::order::{Card, OrderAction, OrderEvent, OrderState, Resolution, Rule};
    use hallsync_model::schema::write_order_event;
    use hallsync_sync::Replica;
    let (_dirs, town, county) = town_and_county_with_a_case();
    sync(&town, &county).unwrap();
    let order = county
        .issue_order(
            hallsync_hall::NewOrder {
                unit: town.node().region.clone(),
                department: String::new(),
                case: "T1-1".into(),
                rule: Rule::ComplaintReply,
                card: Card::Red,
                reason: "群众投诉办理逾期未答复".into(),
                by: "县电子监察室".into(),
                reply_within: hallsync_model::TimeLimit::parse("3wd").unwrap(),
            },
            now(),
        )
        .unwrap();
    sync(&town, &county).unwrap();
    let state = |h: &Hall| h.order("cn-212.1", now()).unwrap().view.state;
    assert_eq!(state(&town), OrderState::Open);

    // A tampered township edits its copy directly, past the hall's checks.
    let forge = |edit: &dyn Fn(&mut AutoCommit)| {
        let mut d = AutoCommit::load(&town.export_doc(&order.id).unwrap()).unwrap();
        edit(&mut d);
        d.save()
    };
    let self_closed = forge(&|d| {
        let close = OrderEvent {
            id: hallsync_model::LogId::parse("tw-101.forged.1").unwrap(),
            at: now(),
            by: "镇长".into(),
            node: town.node().id.clone(),
            action: OrderAction::Close {
                resolution: Resolution::Withdrawn,
                text: "不予督办".into(),
            },
        };
        write_order_event(d, &close).unwrap();
    });
    let softened = forge(&|d| {
        d.put(ROOT, "card", "notice").unwrap();
    });
    let mut rc = HallReplica {
        hall: &county,
        now: now(),
    };
    let head = county.store().durable_seq();
    for (bytes, why) in [
        (self_closed, "close is for the issuing hall"),
        (softened, "header"),
    ] {
        let refused = rc
            .apply(
                &endpoint(&town),
                vec![received(&order.id, Payload::Whole(bytes))],
                None,
            )
            .unwrap();
        assert!(refused[0].reason.contains(why), "{refused:?}");
    }
    assert_eq!(county.store().durable_seq(), head, "nothing was stored");
    assert_eq!(state(&county), OrderState::Open);
    assert_eq!(
        county.order("cn-212.1", now()).unwrap().order.header.card,
        Card::Red
    );

    // Its reply goes up.
    town.reply_order("cn-212.1", "已办结", "李四", now())
        .unwrap();
    sync(&town, &county).unwrap();
    assert_eq!(state(&county), OrderState::Replied);
}

/// A township that edits its copy of the county's catalogue (as a crafted
/// `doc import` can) cannot send the edit up: the county sets it aside and
/// keeps its item as it published it; the township's cases still go up.
#[test]
fn a_township_cannot_rewrite_its_countys_catalogue() {
    use automerge::transaction::Transactable;
    use automerge::ROOT;
    let (_dirs, town, county) = town_and_county_with_a_case();
    support::publish(&county, "C1", now());
    sync(&town, &county).unwrap();
    let (id, before) = county.item("C1").unwrap();
    assert_eq!(town.item("C1").unwrap().1, before, "the item came down");
    edit_stored(&town, &id, |doc| {
        doc.put(ROOT, "name", "镇改的名字").unwrap();
    });
    town.accept_case(support::new_case("T1", Some("T1-2".into()), now()), now())
        .unwrap();
    let (up, down) = sync(&town, &county).unwrap();
    assert_eq!(
        county.item("C1").unwrap().1,
        before,
        "the county's item changed"
    );
    assert_eq!(county.list_cases(&all(), now()).unwrap().len(), 2);
    assert_eq!((down.stats().refused, up.stats().refused_by_peer), (1, 1));
    let noted = county.set_aside().unwrap();
    assert_eq!(noted.len(), 1);
    assert_eq!(noted[0].id, id);
    assert!(noted[0].reason.contains("may not change"), "{noted:?}");
}

#[test]
fn an_event_time_moved_in_a_crafted_copy_is_refused_at_import_and_from_a_peer() {
    use automerge::{transaction::Transactable, ActorId, AutoCommit, ReadDoc, ROOT};
    use hallsync_sync::Replica;
    let (_dirs, town, county) = town_and_county_with_a_case();
    sync(&town, &county).unwrap();
    let id = town.case_id("T1-1").unwrap();
    let (before, _) = town.case("T1-1", now()).unwrap();
    // As another Automerge implementation would: the export opened under
    // its own actor, the received event's time moved eight days later.
    let mut doc = AutoCommit::load(&town.export_doc(&id).unwrap())
        .unwrap()
        .with_actor(ActorId::from(vec![0xab; 16]));
    let (_, events) = doc.get(ROOT, "events").unwrap().unwrap();
    let first = before
        .events
        .iter()
        .find(|e| e.kind.name() == "received")
        .unwrap();
    let received_key = first.id.to_string();
    let (_, event) = doc.get(&events, &received_key).unwrap().unwrap();
    let moved = first.at.millis() + 8 * 86_400_000;
    doc.put(&event, "at", automerge::ScalarValue::Timestamp(moved))
        .unwrap();
    let crafted = doc.save();

    let head = town.store().durable_seq();
    let err = town.import_doc(&crafted, now()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("events.{received_key}.at")) && err.contains("abababab"),
        "{err}"
    );
    assert_eq!(town.store().durable_seq(), head, "nothing was stored");
    assert_eq!(town.case("T1-1", now()).unwrap().0, before);

    // The same bytes sent up by the township: set aside at the county.
    let mut rc = HallReplica {
        hall: &county,
        now: now(),
    };
    let head = county.store().durable_seq();
    let refused = rc
        .apply(
            &endpoint(&town),
            vec![received(&id, Payload::Whole(crafted))],
            None,
        )
        .unwrap();
    assert_eq!(refused.len(), 1);
    assert!(refused[0].reason.contains("written once"), "{refused:?}");
    assert_eq!(county.store().durable_seq(), head);
    assert_eq!(county.case("T1-1", now()).unwrap().0, before);
}

#[test]
fn the_county_derives_the_same_cards_as_the_township_whatever_order_the_events_came_in() {
    use hallsync_hall::WarningFilter;
    use hallsync_model::order::{Card, Rule};
    let (_dirs, town, county) = town_and_county_with_a_case();
    let long_ago = Ts::parse("2026-01-20 09:00").unwrap();
    let mut online = support::new_case("T1", Some("T1-online".into()), long_ago);
    online.channel = "online".into();
    online.accept = false;
    town.accept_case(online, long_ago).unwrap();
    town.accept_case(
        support::new_case("T1", Some("T1-old".into()), long_ago),
        long_ago,
    )
    .unwrap();
    // Half the events go up before the rest are recorded, so the county
    // folds them in another order and from two batches.
    sync(&town, &county).unwrap();
    let later = Ts::parse("2026-02-27 10:00").unwrap();
    town.record_event(
        "T1-old",
        hallsync_model::EventKind::Published,
        "王芳",
        later,
        later,
    )
    .unwrap();
    sync(&town, &county).unwrap();
    let every = WarningFilter {
        ended: true,
        ..WarningFilter::default()
    };
    let at_town = town.warnings(&every, now(), 0, 100).unwrap();
    let at_county = county.warnings(&every, now(), 0, 100).unwrap();
    assert_eq!(at_town, at_county);
    let has = |rule: Rule, card: Card, ended: bool| {
        at_town.rows.iter().any(|w| {
            w.number == "T1-old"
                && w.card.rule == rule
                && w.card.card == card
                && w.card.until.is_some() == ended
        })
    };
    assert!(has(Rule::CaseTimeLimit, Card::Red, false));
    assert!(has(Rule::Disclosure, Card::Red, true), "{at_town:?}");
    assert!(at_town.rows.iter().any(|w| w.number == "T1-online"
        && w.card.rule == Rule::PreAcceptance
        && w.card.card == Card::Red));
    // Filters: level, rule, standing only, and a unit outside the subtree.
    let red_standing = WarningFilter {
        card: Some(Card::Red),
        rule: Some(Rule::CaseTimeLimit),
        ..WarningFilter::default()
    };
    let page = county.warnings(&red_standing, now(), 0, 100).unwrap();
    assert!(!page.rows.is_empty());
    assert!(page.rows.iter().all(|w| w.card.card == Card::Red
        && w.card.rule == Rule::CaseTimeLimit
        && w.card.until.is_none()));
    let elsewhere = WarningFilter {
        unit: Some(hallsync_model::RegionCode::parse("140213").unwrap()),
        ..WarningFilter::default()
    };
    assert_eq!(county.warnings(&elsewhere, now(), 0, 100).unwrap().total, 0);
}

#[test]
fn a_card_revoked_on_appeal_leaves_the_standing_cards_and_is_counted_apart() {
    use hallsync_hall::{NewOrder, StatsBy, StatsQuery, WarningFilter};
    use hallsync_model::order::{Card, OrderState, Rule, Verdict};
    use hallsync_model::stats::{ix, revoked_counter};
    use hallsync_model::{RegionCode, TimeLimit};
    let (_dirs, town, county) = town_and_county_with_a_case();
    let long_ago = Ts::parse("2026-01-20 09:00").unwrap();
    town.accept_case(
        support::new_case("T1", Some("T1-old".into()), long_ago),
        long_ago,
    )
    .unwrap();
    sync(&town, &county).unwrap();
    let red = WarningFilter {
        card: Some(Card::Red),
        rule: Some(Rule::CaseTimeLimit),
        ..WarningFilter::default()
    };
    let standing = |hall: &Hall| {
        hall.warnings(&red, now(), 0, 100)
            .unwrap()
            .rows
            .iter()
            .filter(|w| w.number == "T1-old")
            .count()
    };
    assert_eq!(standing(&county), 1);
    let issued = county
        .issue_order(
            NewOrder {
                unit: RegionCode::parse("140212101").unwrap(),
                department: String::new(),
                case: "T1-old".into(),
                rule: Rule::CaseTimeLimit,
                card: Card::Red,
                reason: "超过法定时限".into(),
                by: "县电子监察室".into(),
                reply_within: TimeLimit::parse("3wd").unwrap(),
            },
            now(),
        )
        .unwrap();
    let key = issued.id.key().to_string();
    sync(&town, &county).unwrap();
    // Only the issuer decides, and only an appeal.
    assert!(county
        .decide_appeal(&key, Verdict::Revoked, "x", "y", now())
        .is_err());
    let appealed = town
        .appeal_order(&key, "申请人补正期间不应计时", "镇民政办", now())
        .unwrap();
    assert_eq!(appealed.view.state, OrderState::Appealed);
    assert!(town
        .decide_appeal(&key, Verdict::Revoked, "自行撤销", "镇民政办", now())
        .is_err());
    assert!(town
        .appeal_order(&key, "再申诉", "镇民政办", now())
        .is_err());
    sync(&town, &county).unwrap();
    let decided = county
        .decide_appeal(&key, Verdict::Revoked, "经核实属实", "县电子监察室", now())
        .unwrap();
    assert!(decided.view.card_revoked());
    sync(&town, &county).unwrap();
    assert_eq!(town.order(&key, now()).unwrap().view, decided.view);
    // Revoked at both levels: not standing, listed with the ended cards.
    for hall in [&town, &county] {
        assert_eq!(standing(hall), 0);
        let all = WarningFilter {
            ended: true,
            ..red.clone()
        };
        let page = hall.warnings(&all, now(), 0, 100).unwrap();
        assert!(page.rows.iter().any(|w| w.number == "T1-old" && w.revoked));
    }
    let q = StatsQuery {
        unit: RegionCode::parse("140212101").unwrap(),
        from: Ts::parse("2026-01-01").unwrap(),
        to: Ts::parse("2026-03-31").unwrap(),
        by: StatsBy::Total,
    };
    let (at_town, at_county) = (
        town.stats(&q, now()).unwrap(),
        county.stats(&q, now()).unwrap(),
    );
    assert_eq!(at_town, at_county);
    let counts = &at_county.total.counts;
    assert_eq!(counts.get(ix::APPEALS), 1);
    assert_eq!(
        counts.get(revoked_counter(Rule::CaseTimeLimit, Card::Red)),
        1
    );
    assert_eq!(counts.revoked_at(Card::Red), 1);
    assert_eq!(
        counts.standing_at(Card::Red),
        counts.cards_at(Card::Red) - 1
    );
    assert_eq!(counts.get(ix::ORDERS_CLOSED), 1);
}

/// The statistics of `q` recounted from every case's facts, the slow way.
fn recount(hall: &Hall, q: &hallsync_hall::StatsQuery, now: Ts) -> hallsync_model::stats::Row {
    use hallsync_model::stats::{case_facts, day_of, Row};
    let cal = hall.calendar().unwrap();
    let (from, to) = (day_of(q.from), day_of(q.to).min(day_of(now)));
    let mut row = Row::default();
    for c in hall.list_cases(&all(), now).unwrap() {
        if !c.header.region.as_str().starts_with(q.unit.as_str()) {
            continue;
        }
        let case = hallsync_model::Case {
            header: c.header.clone(),
            events: Vec::new(),
        };
        let last = c.view.last_event_at.unwrap();
        let clock = case.clock(&c.view, &cal, last);
        let f = case_facts(
            &c.header,
            &c.view,
            &clock,
            &cal,
            &hall.thresholds_for(&c.header.region).unwrap(),
        );
        for (day, counts) in &f.days {
            if (from..=to).contains(day) {
                for (counter, n) in counts {
                    let mut one = vec![0; usize::from(*counter) + 1];
                    one[usize::from(*counter)] = *n;
                    row.add(&one, 1);
                }
            }
        }
        for (at, counter) in &f.pending {
            let day = day_of(Ts(*at));
            if *at <= now.0 && (from..=to).contains(&day) {
                let mut one = vec![0; usize::from(*counter) + 1];
                one[usize::from(*counter)] = 1;
                row.add(&one, 1);
            }
        }
    }
    row
}

#[test]
fn statistics_equal_a_recount_and_the_county_counts_what_the_township_counts() {
    use hallsync_hall::{StatsBy, StatsQuery};
    use hallsync_model::case::Outcome;
    use hallsync_model::stats::ix;
    use hallsync_model::{EventKind, RegionCode};
    let (_dirs, town, county) = town_and_county_with_a_case();
    support::publish(&town, "T2", now());
    let mut seed = 11u64;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let start = Ts::parse("2026-01-26 09:00").unwrap();
    for n in 0..40 {
        let at = start.plus(i64::try_from(next(40)).unwrap() * 86_400 + 3_600);
        let item = if next(2) == 0 { "T1" } else { "T2" };
        let number = format!("S-{n}");
        town.accept_case(support::new_case(item, Some(number.clone()), at), at)
            .unwrap();
        if n == 20 {
            // Half the cases go up before the rest exist.
            sync(&town, &county).unwrap();
        }
        let done = at.plus(i64::try_from(next(25)).unwrap() * 86_400);
        if next(3) > 0 && done < now() {
            let outcome = if next(5) == 0 {
                Outcome::Refused
            } else {
                Outcome::Approved
            };
            let conclude = EventKind::Concluded {
                outcome,
                opinion: "意见".into(),
                certificate: String::new(),
            };
            town.record_event(&number, conclude, "王芳", done, done)
                .unwrap();
            let rated = EventKind::Rated {
                score: u8::try_from(next(5)).unwrap() + 1,
            };
            town.record_event(&number, rated, "王芳", done, done)
                .unwrap();
        }
    }
    town.store().verify_tallies().unwrap();
    sync(&town, &county).unwrap();
    county.store().verify_tallies().unwrap();
    let unit = RegionCode::parse("140212101").unwrap();
    let periods = [
        ("2026-01-01", "2026-03-31"),
        ("2026-02-01", "2026-02-28"),
        ("2026-02-10", "2026-03-10"),
        ("2026-03-10", "2026-03-10"),
    ];
    let mut seen_cards = 0;
    for (from, to) in periods {
        for by in [StatsBy::Total, StatsBy::Item, StatsBy::Day] {
            let q = StatsQuery {
                unit: unit.clone(),
                from: Ts::parse(from).unwrap(),
                to: Ts::parse(to).unwrap(),
                by,
            };
            let at_town = town.stats(&q, now()).unwrap();
            let at_county = county.stats(&q, now()).unwrap();
            assert_eq!(at_town, at_county, "{from}..{to} {by:?}");
            let expected = recount(&town, &q, now());
            let trim = |r: &hallsync_model::stats::Row| {
                let mut v = r.0.clone();
                while v.last() == Some(&0) {
                    v.pop();
                }
                v
            };
            assert_eq!(
                trim(&at_town.total.counts),
                trim(&expected),
                "{from}..{to} {by:?}"
            );
            assert!(!expected.is_empty() || from == to, "{from}..{to}");
            let mut summed = hallsync_model::stats::Row::default();
            for line in &at_town.rows {
                summed.add(&line.counts.0, 1);
            }
            if by != StatsBy::Total {
                assert_eq!(summed, at_town.total.counts, "{from}..{to} {by:?}");
            }
            seen_cards += at_town
                .total
                .counts
                .cards_at(hallsync_model::order::Card::Yellow);
        }
    }
    assert!(seen_cards > 0, "the cases raise cards");
    // The county's own view by unit: one row, the township, equal to it.
    let q = StatsQuery {
        unit: RegionCode::parse("140212").unwrap(),
        from: Ts::parse("2026-01-01").unwrap(),
        to: Ts::parse("2026-03-31").unwrap(),
        by: StatsBy::Unit,
    };
    let by_unit = county.stats(&q, now()).unwrap();
    assert_eq!(by_unit.rows.len(), 1);
    assert_eq!(by_unit.rows[0].key, "140212101");
    assert_eq!(by_unit.rows[0].counts, by_unit.total.counts);
    assert_eq!(by_unit.total.counts.get(ix::RECEIVED), 41);
    assert_eq!(by_unit.total.open, by_unit.rows[0].open);
    assert!(by_unit.total.open > 0 && by_unit.total.overdue > 0);
    assert!(by_unit.total.overdue <= by_unit.total.open);
    // A unit outside the subtree is refused.
    let outside = StatsQuery {
        unit: RegionCode::parse("140213").unwrap(),
        ..q
    };
    assert!(county.stats(&outside, now()).is_err());
}

#[test]
fn a_countys_rules_reach_its_township_and_no_one_loosens_the_citys() {
    use hallsync_model::rules::{Rules, RULES_KEY};
    use hallsync_model::{DocId, DocKind, Level, NodeId, RegionCode};
    let (dirs, town, county) = town_and_county_with_a_case();
    let by = "县监察室";
    let tighter = [
        ("delivery".to_string(), "1d".to_string()),
        ("time_limit_notice".to_string(), "4wd".to_string()),
    ];
    county.set_rules_draft(&tighter, None, by, now()).unwrap();
    assert_eq!(county.publish_rules(by, now()).unwrap().version, 1);
    // Published again from a fresh open, as the CLI does, with nothing
    // cached: the next version.
    let county_dir = dirs[1].path().to_path_buf();
    drop(county);
    let county = Hall::open(&county_dir, hallsync_store::StoreOptions::default()).unwrap();
    let earlier = [("time_limit_notice".to_string(), "5wd".to_string())];
    county.set_rules_draft(&earlier, None, by, now()).unwrap();
    let published = county.publish_rules(by, now()).unwrap();
    assert_eq!(published.version, 2);
    // The same rules again: nothing to publish, no new version.
    let again = county.publish_rules(by, now()).unwrap_err().to_string();
    assert!(again.contains("nothing to publish: version 2"), "{again}");
    sync(&town, &county).unwrap();
    let here = town.node().region.clone();
    let at_town = town.thresholds_for(&here).unwrap();
    assert_eq!(at_town.delivery.to_string(), "1d");
    assert_eq!(at_town.time_limit_notice.to_string(), "5wd");
    assert_eq!(at_town, county.thresholds_for(&here).unwrap());
    assert_eq!(town.rules_chain().unwrap(), vec![published.clone()]);
    // The statistics at both levels were derived under the same rules.
    town.store().verify_tallies().unwrap();
    let q = hallsync_hall::StatsQuery {
        unit: here.clone(),
        from: Ts::parse("2026-03-01").unwrap(),
        to: now(),
        by: hallsync_hall::StatsBy::Day,
    };
    assert_eq!(
        town.stats(&q, now()).unwrap(),
        county.stats(&q, now()).unwrap()
    );
    // The tightened notice stands four working days before the due time
    // (24 March), where DOMAIN §5's two would not yet raise it.
    let thursday = Ts::parse("2026-03-19 10:00").unwrap();
    let cards = town
        .warnings(&hallsync_hall::WarningFilter::default(), thursday, 0, 10)
        .unwrap();
    assert!(
        cards.rows.iter().any(|w| w.number == "T1-1"
            && w.card.rule == hallsync_model::order::Rule::CaseTimeLimit
            && w.card.card == hallsync_model::order::Card::Notice),
        "{cards:?}"
    );
    assert_eq!(
        cards,
        county
            .warnings(&hallsync_hall::WarningFilter::default(), thursday, 0, 10)
            .unwrap()
    );
    // A township publishes none.
    let e = town
        .set_rules_draft(&tighter, None, "镇", now())
        .unwrap_err();
    assert!(e.to_string().contains("city or a county hub"), "{e}");

    // A city above: its rules hold, and the county may only tighten them.
    let city_dir = tempfile::tempdir().unwrap();
    let city = Hall::init(
        city_dir.path(),
        NodeId::parse("city-02").unwrap(),
        "样例市政务服务中心",
        RegionCode::parse("1402").unwrap(),
        Level::City,
        hallsync_store::StoreOptions::default(),
    )
    .unwrap();
    let city_rules = [
        ("delivery".to_string(), "2d".to_string()),
        ("step_limit".to_string(), "3wd".to_string()),
    ];
    city.set_rules_draft(&city_rules, None, "市监察室", now())
        .unwrap();
    city.publish_rules("市监察室", now()).unwrap();
    sync(&county, &city).unwrap();
    let loose = [("delivery".to_string(), "3d".to_string())];
    let e = county
        .set_rules_draft(&loose, None, by, now())
        .unwrap_err()
        .to_string();
    // Both conflicts, the one typed and the one the county's rules held
    // before the city tightened it.
    assert!(
        e.contains("field delivery: 3d is looser than the 2d that 140200 set"),
        "{e}"
    );
    assert!(
        e.contains("field step_limit: 5wd is looser than the 3wd that 140200 set")
            && e.contains("not typed now"),
        "{e}"
    );
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    for (typed, said) in [
        (
            vec![pair("time_limit_notice", "30wd")],
            "give at most 10 days",
        ),
        (
            vec![pair("online_yellow", "5d"), pair("online_red", "5d")],
            "must each come later than the one before",
        ),
    ] {
        let e = county
            .set_rules_draft(&typed, None, by, now())
            .unwrap_err()
            .to_string();
        assert!(e.contains(said), "{typed:?}: {e}");
    }
    // Crafted with the automerge crate and carried to the city: refused,
    // nothing stored.
    let id = DocId::new(
        DocKind::Rules,
        &RegionCode::parse("140212").unwrap(),
        RULES_KEY,
    )
    .unwrap();
    let mut crafted = published.clone();
    crafted.version = 2;
    crafted.thresholds.delivery = hallsync_model::TimeLimit::parse("3d").unwrap();
    let held = county.store().save(&id).unwrap().unwrap();
    let mut doc = automerge::AutoCommit::load(&held).unwrap();
    hallsync_model::schema::write_rules(&mut doc, &id, &crafted).unwrap();
    let before = city.store().durable_seq();
    let e = city.import_doc(&doc.save(), now()).unwrap_err();
    assert!(e.to_string().contains("looser"), "{e}");
    assert_eq!(city.store().durable_seq(), before);
    // Rules under a township's region are no rules at all.
    let mut township_rules: Rules = published.clone();
    township_rules.region = here.clone();
    let id = DocId::new(DocKind::Rules, &here, RULES_KEY).unwrap();
    let mut doc = automerge::AutoCommit::new();
    hallsync_model::schema::write_rules(&mut doc, &id, &township_rules).unwrap();
    let e = county.import_doc(&doc.save(), now()).unwrap_err();
    assert!(e.to_string().contains("city or a county"), "{e}");
    drop(dirs);
}
