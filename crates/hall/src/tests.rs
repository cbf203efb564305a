use std::collections::BTreeSet;

use hallsync_model::case::Outcome;
use hallsync_model::{
    CaseState, DocId, EventKind, ItemStatus, Level, NodeId, RegionCode, ReviewAction, Ts,
};
use hallsync_store::{StoreOptions, Term};

#[path = "../tests/support/mod.rs"]
mod support;

use support::{item as content, publish, township};

use crate::import::{items_from_table, read_csv, read_table};
use crate::{CaseFilter, CaseRow, Hall, HallError, NewCase};

const CALENDAR: &str =
    "2026-10-01,holiday,国庆\n2026-10-02,holiday,国庆\n2026-10-10,workday,调休\n";

fn t(s: &str) -> Ts {
    Ts::parse(s).unwrap()
}

/// A county above the support township (the unit tests include `support`
/// alone).
fn county(dir: &std::path::Path) -> Hall {
    Hall::init(
        dir,
        NodeId::parse("cn-212").unwrap(),
        "新荣区政务服务中心",
        RegionCode::parse("140212").unwrap(),
        Level::County,
        StoreOptions::default(),
    )
    .unwrap()
}

/// The support township's sibling, tw-102 (region 140212102).
fn sibling(dir: &std::path::Path) -> Hall {
    Hall::init(
        dir,
        NodeId::parse("tw-102").unwrap(),
        "邻镇",
        RegionCode::parse("140212102").unwrap(),
        Level::Township,
        StoreOptions::default(),
    )
    .unwrap()
}

fn published(hall: &Hall, code: &str) {
    publish(hall, code, t("2026-01-05"));
}

fn new_case(code: &str, at: &str) -> NewCase {
    support::new_case(code, None, t(at))
}

#[test]
fn init_refuses_a_second_node_and_a_mismatched_level() {
    let dir = tempfile::tempdir().unwrap();
    drop(township(dir.path()));
    let again = Hall::init(
        dir.path(),
        NodeId::parse("x").unwrap(),
        "x",
        RegionCode::parse("140212101").unwrap(),
        Level::Township,
        StoreOptions::default(),
    );
    assert!(matches!(again, Err(HallError::AlreadyInitialised(_))));
    let other = tempfile::tempdir().unwrap();
    let err = Hall::init(
        other.path(),
        NodeId::parse("x").unwrap(),
        "x",
        RegionCode::parse("140212").unwrap(),
        Level::Township,
        StoreOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("county code"), "{err}");
    assert!(matches!(
        Hall::open(tempfile::tempdir().unwrap().path(), StoreOptions::default()),
        Err(HallError::NotInitialised(_))
    ));
}

#[test]
fn cases_need_a_published_item_and_follow_the_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    let now = t("2026-11-20");
    assert!(matches!(
        hall.accept_case(new_case("NOPE1", "2026-11-16 09:00"), now),
        Err(HallError::UnknownItem(_))
    ));
    hall.add_item(&content("A1", "10个工作日"), "起草人", now)
        .unwrap();
    assert!(matches!(
        hall.accept_case(new_case("A1", "2026-11-16 09:00"), now),
        Err(HallError::ItemNotPublished {
            status: ItemStatus::Draft,
            ..
        })
    ));
    hall.review_item("A1", ReviewAction::Approved, "法制办", "", now)
        .unwrap();
    hall.review_item("A1", ReviewAction::Published, "法制办", "", now)
        .unwrap();
    let row = hall
        .accept_case(new_case("A1", "2026-11-16 09:00"), now)
        .unwrap();
    assert_eq!(row.header.number, "A1-20261116-0001");
    assert_eq!(row.view.state, CaseState::Accepted);
    let second = hall
        .accept_case(new_case("A1", "2026-11-16 10:00"), now)
        .unwrap();
    assert_eq!(second.header.number, "A1-20261116-0002");

    let err = hall
        .record_event(
            "A1-20261116-0001",
            EventKind::Rated { score: 5 },
            "x",
            t("2026-11-17"),
            now,
        )
        .unwrap_err();
    assert!(matches!(err, HallError::Case(_)), "{err}");
    let conclude = EventKind::Concluded {
        outcome: Outcome::Approved,
        opinion: "准予".into(),
        certificate: "宅基地批准书".into(),
    };
    let row = hall
        .record_event(
            "A1-20261116-0001",
            conclude,
            "镇长",
            t("2026-11-18 10:00"),
            now,
        )
        .unwrap();
    assert_eq!(row.view.state, CaseState::Approved);

    // Reopened, the state and the index are what was acknowledged.
    drop(hall);
    let hall = Hall::open(dir.path(), StoreOptions::default()).unwrap();
    let (_, row) = hall.case("A1-20261116-0001", now).unwrap();
    assert_eq!(row.view.state, CaseState::Approved);
    let concluded = hall
        .list_cases(
            &CaseFilter {
                state: Some(CaseState::Approved),
                ..CaseFilter::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(concluded.len(), 1);
    hall.store().verify().unwrap();

    // Suspending the item stops new cases.
    hall.review_item("A1", ReviewAction::Suspended, "法制办", "法律修订", now)
        .unwrap();
    assert!(hall
        .accept_case(new_case("A1", "2026-11-19 10:00"), now)
        .is_err());
}

#[test]
fn overdue_and_due_soon_lists_follow_the_calendar() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    published(&hall, "A1");
    // Accepted Mon 16 Nov: 10 working days → due 24:00 Mon 30 Nov.
    hall.accept_case(new_case("A1", "2026-11-16 09:00"), t("2026-11-16 09:00"))
        .unwrap();
    // Accepted Mon 2 Nov → due 24:00 Mon 16 Nov.
    hall.accept_case(new_case("A1", "2026-11-02 09:00"), t("2026-11-02 09:00"))
        .unwrap();
    let now = t("2026-11-26 12:00");
    let overdue = hall
        .list_cases(
            &CaseFilter {
                overdue: true,
                ..CaseFilter::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].header.number, "A1-20261102-0001");
    let soon = |days| {
        hall.list_cases(
            &CaseFilter {
                due_within: Some(days),
                ..CaseFilter::default()
            },
            now,
        )
        .unwrap()
    };
    assert!(soon(1).is_empty(), "due Monday 30th is 3 working days away");
    assert_eq!(soon(3).len(), 1);
    assert_eq!(soon(3)[0].clock.committed_due, Some(t("2026-12-01")));

    // A pause stops the clock: paused now, the case falls due later.
    hall.record_event(
        "A1-20261116-0001",
        EventKind::SupplementRequested {
            materials: "户口簿".into(),
        },
        "王芳",
        t("2026-11-26 12:00"),
        now,
    )
    .unwrap();
    let later = t("2026-12-03 12:00");
    let rows = hall
        .list_cases(
            &CaseFilter {
                due_within: Some(5),
                ..CaseFilter::default()
            },
            later,
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].clock.paused_now);
    assert!(rows[0].clock.committed_due.unwrap() > later);
}

#[test]
fn cases_are_listed_by_the_date_received_and_by_unit() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    published(&hall, "A1");
    for at in ["2026-11-02 09:00", "2026-11-16 09:00", "2026-11-17 09:00"] {
        hall.accept_case(new_case("A1", at), t(at)).unwrap();
    }
    let now = t("2026-11-20 12:00");
    let list = |filter: CaseFilter| {
        hall.list_cases(&filter, now)
            .unwrap()
            .into_iter()
            .map(|r| r.header.number)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(CaseFilter {
            received_from: Some(t("2026-11-16")),
            received_before: Some(t("2026-11-17")),
            ..CaseFilter::default()
        }),
        ["A1-20261116-0001"]
    );
    let unit = |code: &str| CaseFilter {
        unit: Some(RegionCode::parse(code).unwrap()),
        ..CaseFilter::default()
    };
    assert_eq!(list(unit("140212")).len(), 3, "the county's subtree");
    assert_eq!(list(unit("140212101")).len(), 3);
    assert!(list(unit("140212102")).is_empty(), "a sibling's");
}

#[test]
fn importing_a_calendar_moves_due_times_of_open_cases() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    published(&hall, "A1");
    let row = hall
        .accept_case(new_case("A1", "2026-09-28 09:00"), t("2026-09-28 09:00"))
        .unwrap();
    // Without a calendar: 10 working days from Tue 29 Sep → 24:00 Mon 12 Oct.
    assert_eq!(row.clock.committed_due, Some(t("2026-10-13")));
    let report = hall
        .import_calendar(CALENDAR, None, t("2026-09-29"))
        .unwrap();
    assert_eq!(report.years, vec![(2026, 3)]);
    assert_eq!(report.cases_reindexed, 1);
    // 1–2 Oct are holidays, Sat 10 Oct a working day: 24:00 Tue 13 Oct.
    let rows = hall
        .list_cases(
            &CaseFilter {
                overdue: true,
                ..CaseFilter::default()
            },
            t("2026-10-13 12:00"),
        )
        .unwrap();
    assert!(rows.is_empty(), "not overdue on the 13th any more");
    let (_, row) = hall
        .case(&row.header.number, t("2026-10-13 12:00"))
        .unwrap();
    assert_eq!(row.clock.committed_due, Some(t("2026-10-14")));
    let err = hall
        .import_calendar(
            "2026-02-30,holiday,x\n2026-03-01,maybe,y",
            None,
            t("2026-09-29"),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("line 1") && err.to_string().contains("line 2"),
        "{err}"
    );
    assert_eq!(
        hall.calendar_years().unwrap()[0].1.days.len(),
        3,
        "nothing changed"
    );
}

#[test]
fn csv_and_xlsx_imports_report_bad_rows_and_store_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    let csv = "事项名称,基本编码,实施编码,权力类别,实施主体,法定时限,承诺时限\n\
               宅基地审批,0101,A1,行政许可,样例镇人民政府,20个工作日,10个工作日\n\
               坏行,0102,A2,行政摊派,样例镇人民政府,20个工作日,10个工作日\n\
               超时,0103,A3,行政许可,样例镇人民政府,20个工作日,30个工作日\n\
               重复,0104,A1,行政许可,样例镇人民政府,20个工作日,10个工作日\n";
    let rows = items_from_table(&read_csv(csv.as_bytes()).unwrap()).unwrap();
    let report = hall
        .import_items(rows, "王芳", Some("法制办"), t("2026-01-05"), |_, _| {})
        .unwrap();
    assert_eq!((report.created, report.published), (1, 1));
    let lines: Vec<usize> = report.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![3, 4, 5]);
    assert!(report.problems[0].reason.starts_with("category"));
    assert!(report.problems[2].reason.contains("repeats line 2"));
    assert_eq!(hall.items().unwrap().len(), 1);

    // Re-importing with a change makes a new version that needs review again.
    let changed = csv.replace("10个工作日\n坏行", "8个工作日\n坏行");
    let rows = items_from_table(&read_csv(changed.as_bytes()).unwrap()).unwrap();
    let report = hall
        .import_items(rows, "王芳", None, t("2026-02-05"), |_, _| {})
        .unwrap();
    assert_eq!(report.revised, 1);
    let (_, item) = hall.item("A1").unwrap();
    assert_eq!(item.version, 2);
    assert_eq!(item.view().status, ItemStatus::Draft);

    // GB18030, as Excel on a Chinese Windows PC saves CSV.
    let (gbk, _, _) = encoding_rs::GB18030.encode(csv);
    assert_eq!(read_csv(&gbk).unwrap().heads[0], "事项名称");

    // The same sheet as .xlsx.
    let path = dir.path().join("catalogue.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, line) in csv.lines().enumerate() {
        for (c, cell) in line.split(',').enumerate() {
            sheet.write_string(r as u32, c as u16, cell).unwrap();
        }
    }
    book.save(&path).unwrap();
    let table = read_table(&path).unwrap();
    assert_eq!(table.rows.len(), 4);
    assert_eq!(table.rows[0].0, 2, "spreadsheet row numbers");
    let missing = read_csv("事项名称,实施编码\nx,y\n".as_bytes()).unwrap();
    assert!(items_from_table(&missing)
        .unwrap_err()
        .to_string()
        .contains("basic_code"));
}

/// A case of an item with fees carries them in its header: the county
/// takes it (its history writes the fee list once, at acceptance).
#[test]
fn a_case_of_an_item_with_fees_reaches_the_county() {
    let town_dir = tempfile::tempdir().unwrap();
    let town = township(town_dir.path());
    let at = t("2026-11-16 09:00");
    let item = hallsync_model::catalogue::ItemContent::from_row([
        ("事项名称", "城乡居民基本养老保险费代征"),
        ("基本编码", "040155000"),
        ("实施编码", "F1"),
        ("权力类别", "行政征收"),
        ("实施主体", "样例镇人民政府"),
        ("法定时限", "5个工作日"),
        ("承诺时限", "即办"),
        (
            "收费标准",
            "按缴费档次|100-3000元/年|《城乡居民基本养老保险办法》",
        ),
    ])
    .unwrap();
    assert_eq!(item.fees.len(), 1, "the item lists a fee");
    town.add_item(&item, "起草人", at).unwrap();
    town.review_item("F1", ReviewAction::Approved, "法制办", "", at)
        .unwrap();
    town.review_item("F1", ReviewAction::Published, "法制办", "", at)
        .unwrap();
    let row = town
        .accept_case(new_case("F1", "2026-11-16 09:00"), at)
        .unwrap();
    let county_dir = tempfile::tempdir().unwrap();
    let county = county(county_dir.path());
    let bytes = town.export_doc(&row.id).unwrap();
    assert_eq!(county.import_doc(&bytes, at).unwrap(), row.id);
}

#[test]
fn document_files_are_checked_before_anything_is_stored() {
    let town_dir = tempfile::tempdir().unwrap();
    let town = township(town_dir.path());
    published(&town, "A1");
    let row = town
        .accept_case(new_case("A1", "2026-11-16 09:00"), t("2026-11-16 09:00"))
        .unwrap();
    let bytes = town.export_doc(&row.id).unwrap();

    let county_dir = tempfile::tempdir().unwrap();
    let county = county(county_dir.path());
    let now = t("2026-11-17 12:00");
    for (bad, why) in [
        (&bytes[..bytes.len() / 2], "truncated"),
        (&b"PK\x03\x04 not an automerge file"[..], "foreign"),
    ] {
        let err = county.import_doc(bad, now).unwrap_err();
        assert!(
            err.to_string().contains("not an Automerge document"),
            "{why}: {err}"
        );
    }
    assert_eq!(county.store().index_records("case:").count(), 0);

    // The county takes the township's case; both edit it; the merge keeps both.
    let id = county.import_doc(&bytes, now).unwrap();
    assert_eq!(id, row.id);
    county
        .record_event(
            id.as_str(),
            EventKind::StepStarted {
                step: "县级审核".into(),
            },
            "县审批局",
            t("2026-11-17 10:00"),
            now,
        )
        .unwrap();
    town.record_event(
        id.as_str(),
        EventKind::Published,
        "王芳",
        t("2026-11-17 11:00"),
        now,
    )
    .unwrap();
    town.import_doc(&county.export_doc(&id).unwrap(), now)
        .unwrap();
    let (case, row) = town.case(id.as_str(), now).unwrap();
    assert_eq!(case.events.len(), 4);
    assert_eq!(row.view.state, CaseState::Handling);
    assert!(row.view.published_at.is_some());

    // A sibling township's case is refused by another township.
    let sib_dir = tempfile::tempdir().unwrap();
    let sibling = sibling(sib_dir.path());
    let err = sibling.import_doc(&bytes, now).unwrap_err();
    assert!(matches!(err, HallError::OutOfScope { .. }), "{err}");
    // But the county's catalogue item may come down to it.
    let (item_id, _) = town.item("A1").unwrap();
    assert!(
        sibling
            .import_doc(&town.export_doc(&item_id).unwrap(), now)
            .is_err(),
        "a sibling's catalogue is not an ancestor's"
    );
    assert!(sibling.store().index_records("case:").next().is_none());
    // Several files in one commit: one bad file, and none is stored; the
    // error says which.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = self::county(fresh_dir.path());
    let item = town.export_doc(&item_id).unwrap();
    let source = hallsync_model::order::Source::File;
    let files = [&item[..], &bytes[..], &bytes[..bytes.len() / 2]];
    let (at, err) = fresh.import_many(&files, now, source).unwrap_err();
    assert_eq!(at, 2, "{err}");
    let (at, err) = fresh
        .import_many(&[&bytes[..], &bytes[..]], now, source)
        .unwrap_err();
    assert!(at == 1 && err.to_string().contains("twice"), "{err}");
    assert_eq!(fresh.store().index_records("case:").count(), 0);
    assert!(!fresh.store().contains(&item_id).unwrap());
    assert_eq!(
        fresh.import_many(&[], now, source).unwrap(),
        Vec::<DocId>::new()
    );
    let ids = fresh.import_many(&files[..2], now, source).unwrap();
    assert_eq!(ids, [item_id.clone(), row.id.clone()]);
    assert_eq!(fresh.store().index_records("case:").count(), 1);
    let unknown = DocId::parse("case:140212101:NOPE").unwrap();
    assert!(matches!(
        town.export_doc(&unknown),
        Err(HallError::UnknownDoc(_))
    ));
}

#[test]
fn a_registry_entry_with_an_unsigned_revocation_list_is_refused() {
    use hallsync_model::registry::{CrlCopy, RegistryEntry};
    let county_dir = tempfile::tempdir().unwrap();
    let county = county(county_dir.path());
    let mut entry = RegistryEntry {
        node: NodeId::parse("cn-212").unwrap(),
        name: "样例县政务服务中心".into(),
        level: Level::County,
        region: RegionCode::parse("140212").unwrap(),
        parent: None,
        addr: Some("10.0.0.1:7400".into()),
        serial: "0c".into(),
        crl: Some(CrlCopy {
            number: 4,
            der: b"signed by the CA".to_vec(),
        }),
        clock_off: Vec::new(),
        restored: Vec::new(),
    };
    assert!(county.publish_registry_entry(&entry).unwrap());
    assert!(
        !county.publish_registry_entry(&entry).unwrap(),
        "rewrote an unchanged entry"
    );
    let mut other = entry.clone();
    other.node = NodeId::parse("cn-213").unwrap();
    assert!(
        county.publish_registry_entry(&other).is_err(),
        "wrote another node's entry"
    );

    // A township whose check accepts only the CA's list, as number 4.
    let town_dir = tempfile::tempdir().unwrap();
    let town = township(town_dir.path());
    town.set_crl_check(Box::new(|der: &[u8]| {
        if der == b"signed by the CA" {
            Ok(4)
        } else {
            Err("the signature is not the federation CA's".into())
        }
    }));
    let now = t("2026-11-23 10:00");
    let id = entry.doc_id().unwrap();
    let version = town.registry_version();
    for (der, number, why) in [
        (&b"forged"[..], 9, "federation CA"),
        (&b"signed by the CA"[..], 5, "number 4"),
    ] {
        entry.crl = Some(CrlCopy {
            number,
            der: der.to_vec(),
        });
        county.publish_registry_entry(&entry).unwrap();
        let err = town
            .import_doc(&county.export_doc(&id).unwrap(), now)
            .unwrap_err();
        assert!(err.to_string().contains(why), "{err}");
        assert!(town.registry().unwrap().is_empty());
        assert_eq!(town.registry_version(), version);
    }
    entry.crl = Some(CrlCopy {
        number: 4,
        der: b"signed by the CA".to_vec(),
    });
    county.publish_registry_entry(&entry).unwrap();
    town.import_doc(&county.export_doc(&id).unwrap(), now)
        .unwrap();
    assert_eq!(town.registry().unwrap(), vec![entry]);
    assert!(town.registry_version() > version);
}

#[test]
fn an_order_goes_down_to_its_hall_the_reply_comes_up_and_the_county_closes_it() {
    use crate::NewOrder;
    use hallsync_model::order::{Card, OrderState, Resolution, Rule};
    use hallsync_model::TimeLimit;
    let (town_dir, county_dir, sib_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let town = township(town_dir.path());
    let county = county(county_dir.path());
    let now = t("2026-11-23 10:00");
    published(&town, "A1");
    let case = town
        .accept_case(new_case("A1", "2026-11-05 09:00"), now)
        .unwrap();
    let order = |case: &str| NewOrder {
        unit: RegionCode::parse("140212101").unwrap(),
        department: "民政办".into(),
        case: case.into(),
        rule: Rule::CaseTimeLimit,
        card: Card::Yellow,
        reason: "超过承诺时限未办结".into(),
        by: "县电子监察室".into(),
        reply_within: TimeLimit::parse("3wd").unwrap(),
    };
    // The county holds no copy of the case yet: it cannot name it.
    let err = county
        .issue_order(order(&case.header.number), now)
        .unwrap_err();
    assert!(err.to_string().contains("no copy of"), "{err}");
    county
        .import_doc(&town.export_doc(&case.id).unwrap(), now)
        .unwrap();
    // Orders go down only: the township cannot issue one to the county.
    let mut up = order(case.id.as_str());
    up.unit = RegionCode::parse("140212").unwrap();
    assert!(town.issue_order(up, now).is_err());
    // Ten working days committed from 5 November ended on the 19th: the
    // case holds a yellow card of its time limit, and that card only.
    let mut notice = order(&case.header.number);
    notice.card = Card::Notice;
    let err = county.issue_order(notice, now).unwrap_err().to_string();
    assert!(
        err.contains(
            "holds a yellow card of case_time_limit (since 2026-11-20 00:00), not a notice one"
        ),
        "{err}"
    );
    let mut delivery = order(&case.header.number);
    delivery.rule = Rule::CertificateDelivery;
    let err = county.issue_order(delivery, now).unwrap_err().to_string();
    assert!(
        err.contains("holds no card of certificate_delivery"),
        "{err}"
    );
    let mut at_once = order(&case.header.number);
    at_once.reply_within = TimeLimit::parse("0wd").unwrap();
    let err = county.issue_order(at_once, now).unwrap_err().to_string();
    assert!(err.contains("must be more than zero"), "{err}");
    let issued = county.issue_order(order(&case.header.number), now).unwrap();
    assert_eq!(issued.id.as_str(), "order:140212101:cn-212.1");
    // Three working days from Monday 10:00 end on Thursday at midnight.
    assert_eq!(issued.order.header.reply_due, t("2026-11-27 00:00"));
    assert_eq!(issued.view.state, OrderState::Open);
    // A card is ordered once; a complaint about the case needs no card.
    let err = county
        .issue_order(order(&case.header.number), now)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("order cn-212.1 of this hub already names the yellow card"),
        "{err}"
    );
    let mut complaint = order(&case.header.number);
    complaint.rule = Rule::ComplaintReply;
    assert_eq!(
        county.issue_order(complaint, now).unwrap().id.key(),
        "cn-212.2"
    );
    let desk = county
        .warnings(&crate::WarningFilter::default(), now, 0, 10)
        .unwrap();
    let ordered: Vec<_> = desk
        .rows
        .iter()
        .map(|w| (w.card.rule, w.order.as_ref()))
        .collect();
    assert!(
        ordered.contains(&(Rule::CaseTimeLimit, Some(&issued.id))),
        "{ordered:?}"
    );
    assert!(ordered
        .iter()
        .all(|(r, o)| *r == Rule::CaseTimeLimit || o.is_none()));
    assert_eq!(county.orders_about(&case.id, now).unwrap().len(), 2);
    let other = DocId::parse("case:140212101:NOPE").unwrap();
    assert!(county.orders_about(&other, now).unwrap().is_empty());

    // Addressed to the township: its hall takes it, the sibling does not.
    let bytes = county.export_doc(&issued.id).unwrap();
    town.import_doc(&bytes, now).unwrap();
    let sibling = sibling(sib_dir.path());
    assert!(matches!(
        sibling.import_doc(&bytes, now).unwrap_err(),
        HallError::OutOfScope { .. }
    ));
    assert!(sibling.orders(now).unwrap().is_empty());

    // The county cannot reply for the township, nor the township close it.
    let later = t("2026-11-24 15:00");
    assert!(county.reply_order("cn-212.1", "x", "y", later).is_err());
    assert!(town
        .close_order("cn-212.1", Resolution::Rectified, "x", "y", later)
        .is_err());
    let replied = town
        .reply_order("cn-212.1", "已于今日办结", "镇民政办 李四", later)
        .unwrap();
    assert_eq!(replied.view.state, OrderState::Replied);
    county
        .import_doc(&town.export_doc(&issued.id).unwrap(), later)
        .unwrap();
    let closed = county
        .close_order(
            "cn-212.1",
            Resolution::Rectified,
            "经核实已整改",
            "县电子监察室",
            later.plus(3600),
        )
        .unwrap();
    assert_eq!(closed.view.state, OrderState::Closed);
    assert!(!closed.view.reply_late);
    town.import_doc(&county.export_doc(&issued.id).unwrap(), later)
        .unwrap();
    let seen = town.order("cn-212.1", later.plus(7200)).unwrap();
    assert_eq!(seen.view, closed.view);
    assert!(matches!(
        town.reply_order("cn-212.1", "再补充", "李四", later.plus(7200)),
        Err(HallError::Order(_))
    ));
    assert!(matches!(
        town.order("cn-212.9", now),
        Err(HallError::UnknownOrder(_))
    ));
}

/// A township that writes its county's word into its own copy of an
/// order (a closing, or a whole order) and carries the file up: refused at
/// the county, which keeps the order as it issued it.
#[test]
fn a_township_cannot_forge_its_countys_word_through_a_file() {
    use crate::NewOrder;
    use hallsync_model::order::{Card, OrderAction, OrderEvent, OrderState, Resolution, Rule};
    use hallsync_model::{LogId, TimeLimit};
    let (town_dir, county_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let town = township(town_dir.path());
    let county = county(county_dir.path());
    let now = t("2026-11-23 10:00");
    published(&town, "A1");
    let case = town
        .accept_case(new_case("A1", "2026-11-05 09:00"), now)
        .unwrap();
    county
        .import_doc(&town.export_doc(&case.id).unwrap(), now)
        .unwrap();
    let issued = county
        .issue_order(
            NewOrder {
                unit: RegionCode::parse("140212101").unwrap(),
                department: "民政办".into(),
                case: case.header.number.clone(),
                rule: Rule::CaseTimeLimit,
                card: Card::Yellow,
                reason: "超过承诺时限未办结".into(),
                by: "县电子监察室".into(),
                reply_within: TimeLimit::parse("3wd").unwrap(),
            },
            now,
        )
        .unwrap();
    town.import_doc(&county.export_doc(&issued.id).unwrap(), now)
        .unwrap();

    // The township writes a closing under the county's node straight into
    // its copy, past every check of its own hall.
    let forged_close = OrderEvent {
        id: LogId::parse("cn-212.x.1").unwrap(),
        at: t("2026-11-23 11:00"),
        by: "县电子监察室".into(),
        node: NodeId::parse("cn-212").unwrap(),
        action: OrderAction::Close {
            resolution: Resolution::Rectified,
            text: "已整改".into(),
        },
    };
    let bytes = {
        let h = town.store().doc(&issued.id).unwrap();
        let mut l = hallsync_store::lock(&h).unwrap();
        let mut doc = l.doc.fork();
        hallsync_model::schema::write_order_event(&mut doc, &forged_close).unwrap();
        doc.save()
    };
    let before = county.export_doc(&issued.id).unwrap();
    let err = county.import_doc(&bytes, now).unwrap_err().to_string();
    assert!(
        err.contains("close is for the issuing hall (140212)") && err.contains("never from a file"),
        "{err}"
    );
    assert_eq!(county.export_doc(&issued.id).unwrap(), before);
    assert_eq!(
        county.order("cn-212.1", now).unwrap().view.state,
        OrderState::Open
    );

    // A whole order the county never issued, made at the township.
    let mut made = county.order("cn-212.1", now).unwrap().order;
    made.header.reason = "伪造".into();
    let id = DocId::parse("order:140212101:cn-212.9").unwrap();
    let mut doc = automerge::AutoCommit::new();
    hallsync_model::schema::write_new_order(&mut doc, &id, &made).unwrap();
    let err = county.import_doc(&doc.save(), now).unwrap_err().to_string();
    assert!(err.contains("never issued it"), "{err}");
    assert!(matches!(
        county.order("cn-212.9", now),
        Err(HallError::UnknownOrder(_))
    ));
    // The township's own file of the county's closing comes down fine.
    town.import_doc(&bytes, now).unwrap();
}

#[test]
fn a_document_too_large_to_send_as_stored_is_sent_compressed() {
    use automerge::transaction::Transactable;
    use hallsync_sync::msg::MAX_DOC_BYTES as MESSAGE_LIMIT;
    use hallsync_sync::Replica;

    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    published(&hall, "A1");
    let now = t("2026-11-16 09:00");
    let row = hall
        .accept_case(new_case("A1", "2026-11-16 09:00"), now)
        .unwrap();
    let long = "附".repeat(MESSAGE_LIMIT / 3 + 1);
    {
        let h = hall.store().doc(&row.id).unwrap();
        let mut l = hallsync_store::lock(&h).unwrap();
        l.doc
            .put(automerge::ROOT, "attachment", long.as_str())
            .unwrap();
        l.doc.commit();
        hall.store()
            .persist(&mut [hallsync_store::Pending {
                id: &row.id,
                loaded: &mut l,
                index: None,
                facts: None,
            }])
            .unwrap();
    }
    let stored = hall.store().stored_bytes(&row.id).unwrap().unwrap();
    assert!(stored.len() > MESSAGE_LIMIT, "{} bytes", stored.len());
    let mut replica = crate::HallReplica { hall: &hall, now };
    let sent = replica.whole(&row.id).unwrap().unwrap();
    assert!(sent.len() <= MESSAGE_LIMIT, "{} bytes", sent.len());
    let heads = |bytes: &[u8]| automerge::AutoCommit::load(bytes).unwrap().get_heads();
    assert_eq!(heads(&sent), heads(&stored));
}

#[test]
fn an_over_long_field_is_refused_at_the_door_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    published(&hall, "A1");
    let now = t("2026-11-20");
    let mut long = new_case("A1", "2026-11-16 09:00");
    long.applicant.name = "张".repeat(5_000);
    let err = hall.accept_case(long, now).unwrap_err().to_string();
    assert!(
        err.contains("field applicant.name: is longer than 4096 characters"),
        "{err}"
    );
    assert!(hall
        .list_cases(&CaseFilter::default(), now)
        .unwrap()
        .is_empty());

    let row = hall
        .accept_case(new_case("A1", "2026-11-16 09:00"), now)
        .unwrap();
    let number = row.header.number;
    for (by, kind) in [
        ("李".repeat(5_000), EventKind::Published),
        (
            "李四".into(),
            EventKind::Withdrawn {
                reason: "因".repeat(4_097),
            },
        ),
        (
            "李四".into(),
            EventKind::StepStarted {
                step: "审".repeat(4_097),
            },
        ),
    ] {
        let err = hall
            .record_event(&number, kind, &by, t("2026-11-16 10:00"), now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("longer than 4096 characters"), "{err}");
    }
    // The case reads as it was, here and after a reopen, and takes the
    // next event.
    let (case, _) = hall.case(&number, now).unwrap();
    assert_eq!(case.events.len(), 2);
    drop(hall);
    let hall = Hall::open(dir.path(), StoreOptions::default()).unwrap();
    let (case, _) = hall.case(&number, now).unwrap();
    assert_eq!(case.events.len(), 2);
    hall.record_event(
        &number,
        EventKind::Published,
        "李四",
        t("2026-11-16 10:00"),
        now,
    )
    .unwrap();
}

#[test]
fn records_derived_by_an_older_build_are_derived_again_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    published(&hall, "A1");
    let now = t("2026-11-20");
    let at = t("2026-11-16 09:00");
    let row = hall
        .accept_case(new_case("A1", "2026-11-16 09:00"), now)
        .unwrap();
    let number = row.header.number.clone();
    for kind in [
        EventKind::StepStarted {
            step: "审核".into(),
        },
        EventKind::StepFinished {
            step: "审核".into(),
            pass: true,
            opinion: "同意".into(),
        },
        EventKind::Concluded {
            outcome: Outcome::Approved,
            opinion: "准予".into(),
            certificate: "批准书".into(),
        },
    ] {
        hall.record_event(&number, kind, "李四", at, now).unwrap();
    }
    // As an older build left it: the record of the case when it was still
    // being handled, and no derivation version.
    let (mut case, _) = hall.case(&number, now).unwrap();
    case.events.sort_by(|a, b| a.id.cmp(&b.id));
    case.events.truncate(3);
    let view = case.view();
    assert_eq!(view.state, CaseState::Handling);
    let cal = hall.calendar().unwrap();
    let (stale, _) = hall
        .case_derived(&case.header, &view, &case.clock(&view, &cal, now), &cal)
        .unwrap();
    hall.store()
        .rederive(
            vec![hallsync_store::Rederived {
                id: row.id.clone(),
                index: Some(stale),
                facts: None,
            }],
            Some(0),
        )
        .unwrap();
    let handling = CaseFilter {
        state: Some(CaseState::Handling),
        ..CaseFilter::default()
    };
    assert_eq!(hall.list_cases(&handling, now).unwrap().len(), 1);
    drop(hall);
    let hall = Hall::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(hall.list_cases(&handling, now).unwrap().is_empty());
    let all = CaseFilter {
        include_closed: true,
        ..CaseFilter::default()
    };
    let rows = hall.list_cases(&all, now).unwrap();
    assert_eq!(rows[0].view.state, CaseState::Approved);
    assert!(hall.store().derived_version().unwrap() >= 1);
}

#[test]
fn a_hall_whose_store_vanished_is_reported_not_given_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    published(&hall, "A1");
    drop(hall);
    std::fs::rename(dir.path().join("store"), dir.path().join("moved")).unwrap();
    let err = Hall::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            HallError::Store(hallsync_store::StoreError::Missing(_))
        ),
        "{err}"
    );
    assert!(!dir.path().join("store").exists(), "nothing was created");
    // Its files gone but the directory left: the same.
    std::fs::create_dir_all(dir.path().join("store/sled")).unwrap();
    let err = Hall::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

/// Found by the doc fuzz harness: a document file on which Automerge's
/// loader panics is refused like any other bad file.
#[test]
fn a_document_file_that_makes_automerge_panic_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    let bytes = include_bytes!("../../../fuzz/regressions/doc/automerge-unknown-action-panics");
    let err = hall.import_doc(bytes, t("2026-03-10 10:00")).unwrap_err();
    assert!(matches!(err, HallError::BadInput(_)), "{err}");
    assert!(err.to_string().contains("panicked"), "{err}");
}

/// Cases of every kind a list orders: accepted on many days under two
/// items (ties in due time included), received only (some long enough ago
/// to count as accepted), paused and resumed, paused ever since, in a
/// special procedure, being handled, concluded and withdrawn. Each written
/// at its own time.
fn varied_cases(hall: &Hall) {
    published(hall, "A1");
    hall.add_item(&content("B2", "3个工作日"), "起草人", t("2026-01-05"))
        .unwrap();
    hall.review_item("B2", ReviewAction::Approved, "法制办", "", t("2026-01-05"))
        .unwrap();
    hall.review_item("B2", ReviewAction::Published, "法制办", "", t("2026-01-05"))
        .unwrap();
    let event = |number: &str, kind: EventKind, at: &str| {
        hall.record_event(number, kind, "李四", t(at), t(at))
            .unwrap();
    };
    for i in 0..48u32 {
        let code = if i % 3 == 0 { "B2" } else { "A1" };
        // Two cases a day at the same minute: equal due times.
        let at = format!("2026-{}-{:02} 09:30", 10 + i / 24, 2 + (i % 24) / 2 * 2);
        let mut new = new_case(code, &at);
        new.accept = i % 11 != 5;
        let number = hall.accept_case(new, t(&at)).unwrap().header.number;
        let later = |hours: i64| t(&at).plus(hours * 3_600).to_string();
        match i % 8 {
            1 => event(
                &number,
                EventKind::StepStarted {
                    step: "审核".into(),
                },
                &later(2),
            ),
            2 => event(
                &number,
                EventKind::SupplementRequested {
                    materials: "户口簿".into(),
                },
                &later(3),
            ),
            3 => {
                let materials = "图纸".to_string();
                event(
                    &number,
                    EventKind::SupplementRequested { materials },
                    &later(1),
                );
                event(&number, EventKind::SupplementCompleted, &later(50));
            }
            4 => event(
                &number,
                EventKind::Concluded {
                    outcome: Outcome::Approved,
                    opinion: "准予".into(),
                    certificate: format!("批准书 {i}"),
                },
                &later(30),
            ),
            6 => event(
                &number,
                EventKind::Withdrawn {
                    reason: "申请人撤回".into(),
                },
                &later(4),
            ),
            7 => event(
                &number,
                EventKind::SpecialStarted {
                    procedure: hallsync_model::case::Procedure::Appraisal,
                    reason: "鉴定".into(),
                    until: None,
                },
                &later(5),
            ),
            _ => {}
        }
    }
}

/// A list of each kind: open cases by state (walked in due order), a
/// closed state, by item, overdue, due soon, and with closed cases.
fn list_filters() -> Vec<CaseFilter> {
    vec![
        CaseFilter::default(),
        CaseFilter {
            state: Some(CaseState::Accepted),
            ..CaseFilter::default()
        },
        CaseFilter {
            state: Some(CaseState::Handling),
            ..CaseFilter::default()
        },
        CaseFilter {
            state: Some(CaseState::SupplementStarted),
            ..CaseFilter::default()
        },
        CaseFilter {
            state: Some(CaseState::Received),
            ..CaseFilter::default()
        },
        CaseFilter {
            state: Some(CaseState::Approved),
            ..CaseFilter::default()
        },
        CaseFilter {
            item: Some("B2".into()),
            ..CaseFilter::default()
        },
        CaseFilter {
            overdue: true,
            ..CaseFilter::default()
        },
        CaseFilter {
            due_within: Some(3),
            ..CaseFilter::default()
        },
        CaseFilter {
            include_closed: true,
            ..CaseFilter::default()
        },
    ]
}

#[test]
fn a_page_of_the_case_list_holds_the_same_rows_as_the_whole_list() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    varied_cases(&hall);
    // Every open case has an indexed due time, so open-case lists are
    // paged by walking the due-time index.
    let open: usize = (1..=15)
        .filter_map(CaseState::from_code)
        .filter(|s| s.is_open())
        .map(|s| hall.count_cases_in(s).unwrap())
        .sum();
    assert_eq!(
        hall.store()
            .count_ordered(crate::filing::field::DUE)
            .unwrap(),
        open
    );
    let filters = list_filters();
    // Right after the last write, and weeks later (paused cases have
    // fallen due later than their index says; old receipts count as
    // accepted).
    for now in [t("2026-11-30 18:00"), t("2026-12-21 10:00")] {
        for filter in &filters {
            let whole = hall.list_cases(filter, now).unwrap();
            for offset in [0, 1, 5, 13, 40] {
                for limit in [1, 3, 10, 50] {
                    let page = hall.list_cases_page(filter, now, offset, limit).unwrap();
                    let expected: Vec<_> = whole.iter().skip(offset).take(limit).cloned().collect();
                    assert_eq!(page.total, whole.len(), "{filter:?} at {now}");
                    assert_eq!(
                        page.rows, expected,
                        "{filter:?} at {now}, offset {offset}, limit {limit}"
                    );
                }
            }
        }
    }
    let open_now = hall
        .list_cases(&CaseFilter::default(), t("2026-12-21 10:00"))
        .unwrap();
    assert_eq!(open_now.len(), open);
    assert!(open_now.iter().any(|r| r.clock.paused_now));
}

#[test]
fn an_open_case_missing_from_the_due_index_is_still_listed_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    varied_cases(&hall);
    let now = t("2026-11-30 18:00");
    let whole = hall.list_cases(&CaseFilter::default(), now).unwrap();
    // As a record made with no due time would leave it: open, unindexed.
    let victim = &whole[whole.len() / 2];
    let mut record = hall.store().index_record(&victim.id).unwrap().unwrap();
    record
        .terms
        .retain(|t| !matches!(t, Term::Ordered(crate::filing::field::DUE, _)));
    hall.store()
        .rederive(
            vec![hallsync_store::Rederived {
                id: victim.id.clone(),
                index: Some(record),
                facts: None,
            }],
            None,
        )
        .unwrap();
    let page = hall
        .list_cases_page(&CaseFilter::default(), now, 0, whole.len())
        .unwrap();
    assert_eq!(page.total, whole.len());
    assert_eq!(page.rows, whole);
}

#[test]
fn a_paused_case_due_with_another_waits_for_it_and_follows_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    published(&hall, "A1");
    hall.add_item(&content("B2", "3个工作日"), "起草人", t("2026-01-05"))
        .unwrap();
    hall.review_item("B2", ReviewAction::Approved, "法制办", "", t("2026-01-05"))
        .unwrap();
    hall.review_item("B2", ReviewAction::Published, "法制办", "", t("2026-01-05"))
        .unwrap();
    // Indexed and due at 24:00 Mon 16 Nov.
    let a = hall
        .accept_case(new_case("A1", "2026-11-02 09:00"), t("2026-11-02 09:00"))
        .unwrap();
    // Indexed due 24:00 Thu 5 Nov when written; paused since Tuesday, so
    // on Thursday the 12th it falls due with the first, later in the index.
    let b = hall
        .accept_case(new_case("B2", "2026-11-02 10:00"), t("2026-11-02 10:00"))
        .unwrap();
    hall.record_event(
        &b.header.number,
        EventKind::SupplementRequested {
            materials: "户口簿".into(),
        },
        "王芳",
        t("2026-11-03 10:00"),
        t("2026-11-03 10:00"),
    )
    .unwrap();
    let now = t("2026-11-12 12:00");
    let whole = hall.list_cases(&CaseFilter::default(), now).unwrap();
    assert_eq!(whole.len(), 2);
    assert_eq!(whole[0].clock.committed_due, whole[1].clock.committed_due);
    assert_eq!(whole[0].id, a.id);
    let page = hall
        .list_cases_page(&CaseFilter::default(), now, 0, 1)
        .unwrap();
    assert_eq!(page.rows, whole[..1]);
}

/// Pages of `limit` rows, read one after another as the console asks for
/// them, until the list ends.
fn page_through(hall: &Hall, filter: &CaseFilter, now: Ts, limit: usize) -> Vec<CaseRow> {
    let mut rows = Vec::new();
    loop {
        let page = hall
            .list_cases_page(filter, now, rows.len(), limit)
            .unwrap();
        assert!(page.rows.len() <= limit);
        let last = page.rows.len() < limit;
        rows.extend(page.rows);
        assert!(rows.len() <= page.total, "{filter:?}");
        if last {
            assert_eq!(rows.len(), page.total, "{filter:?}");
            return rows;
        }
    }
}

#[test]
fn paging_through_a_list_gives_every_case_once_in_order_after_each_write() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    varied_cases(&hall);
    let now = t("2026-12-21 10:00");
    let check = |when: &str| {
        for filter in list_filters() {
            let whole = hall.list_cases(&filter, now).unwrap();
            for limit in [3, 7, 50] {
                let paged = page_through(&hall, &filter, now, limit);
                let ids: BTreeSet<_> = paged.iter().map(|r| r.id.clone()).collect();
                assert_eq!(ids.len(), paged.len(), "a case twice: {filter:?} {when}");
                assert_eq!(paged, whole, "{filter:?}, pages of {limit}, {when}");
            }
        }
    };
    check("as written");
    // Writes that move cases in the list or off it: a paused case resumed,
    // a special procedure ended, open cases concluded, a receipt withdrawn,
    // then new cases.
    let open = hall.list_cases(&CaseFilter::default(), now).unwrap();
    for (k, row) in open.iter().enumerate().take(12) {
        let at = t("2026-12-01 09:00").plus(k as i64 * 60);
        let kind = match row.view.state {
            CaseState::Received => EventKind::Withdrawn {
                reason: "申请人撤回".into(),
            },
            CaseState::SupplementStarted => EventKind::SupplementCompleted,
            CaseState::SpecialStarted => EventKind::SpecialEnded {
                result: "鉴定完成".into(),
            },
            _ if k % 2 == 0 => EventKind::Concluded {
                outcome: Outcome::Approved,
                opinion: "准予".into(),
                certificate: format!("批准书 9{k}"),
            },
            _ => EventKind::StepStarted {
                step: "复核".into(),
            },
        };
        hall.record_event(&row.header.number, kind, "李四", at, at)
            .unwrap();
        check(&format!("after event {k} on {}", row.header.number));
    }
    for k in 0..4 {
        let at = format!("2026-12-0{} 10:00", 2 + k);
        hall.accept_case(new_case(if k % 2 == 0 { "A1" } else { "B2" }, &at), t(&at))
            .unwrap();
        check(&format!("after new case {k}"));
    }
}

#[test]
fn windows_accepting_at_once_get_distinct_numbers_and_a_typed_number_blocks_none() {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    published(&hall, "X1");
    let now = t("2026-11-25 10:00");
    let numbers: Vec<String> = std::thread::scope(|s| {
        let windows: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    (0..5)
                        .map(|_| {
                            hall.accept_case(new_case("X1", "2026-11-25 09:00"), now)
                                .unwrap()
                                .header
                                .number
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        windows
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let distinct: std::collections::BTreeSet<_> = numbers.iter().collect();
    assert_eq!(distinct.len(), 40);
    // A number typed past the next one: later automatic numbers go on
    // after it instead of running into it.
    let mut typed = new_case("X1", "2026-11-25 09:00");
    typed.number = Some("X1-20261125-0050".into());
    hall.accept_case(typed, now).unwrap();
    let next = hall
        .accept_case(new_case("X1", "2026-11-25 09:00"), now)
        .unwrap();
    assert_eq!(next.header.number, "X1-20261125-0051");
}

#[test]
fn the_data_directory_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let mode = || std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    drop(
        Hall::init(
            &data,
            NodeId::parse("tw-101").unwrap(),
            "样例镇",
            RegionCode::parse("140212101").unwrap(),
            Level::Township,
            StoreOptions::default(),
        )
        .unwrap(),
    );
    assert_eq!(mode(), 0o700);
    // One an older build left open is closed at the next open.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(Hall::open(&data, StoreOptions::default()).unwrap());
    assert_eq!(mode(), 0o700);
}

#[test]
fn a_backup_restores_the_hall_under_a_new_actor_and_a_damaged_one_leaves_nothing() {
    use crate::operators::Role;
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    published(&hall, "A1");
    let now = t("2026-11-23 10:00");
    for i in 0..5 {
        hall.accept_case(new_case("A1", &format!("2026-11-1{i} 09:00")), now)
            .unwrap();
    }
    hall.add_operator(
        "wangfang",
        "王芳",
        [Role::Clerk].into_iter().collect(),
        "a long enough password",
        now,
    )
    .unwrap();
    let mut file = Vec::new();
    let summary = hall.backup(&mut file, now).unwrap();
    assert_eq!(summary.local_records, 1);
    let all = CaseFilter {
        include_closed: true,
        ..CaseFilter::default()
    };
    let before = hall.list_cases(&all, now).unwrap();
    assert_eq!(before.len(), 5);

    let target = tempfile::tempdir().unwrap();
    let into = target.path().join("restored");
    // A restore cut short (killed half-way) left its part-built node in
    // the directory, and no node: the next one starts afresh.
    let cut_short = into.join(".restore-partial").join("store");
    std::fs::create_dir_all(&cut_short).unwrap();
    std::fs::write(cut_short.join("half"), b"half a store").unwrap();
    assert!(matches!(
        Hall::open(&into, StoreOptions::default()),
        Err(HallError::NotInitialised(_))
    ));
    // Nor is a new, empty hall made over it (`run --bundle` would).
    let node = hall.node().clone();
    let err = Hall::init(
        &into,
        node.id,
        &node.name,
        node.region,
        node.level,
        StoreOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, HallError::RestoreCutShort(_))
            && err.to_string().contains("`hallsync restore` again"),
        "{err}"
    );
    let (restored, got) =
        Hall::restore(&into, &mut file.as_slice(), StoreOptions::default(), now).unwrap();
    assert_eq!(got, summary);
    assert!(!into.join(".restore-partial").exists());
    assert_eq!(restored.list_cases(&all, now).unwrap(), before);
    assert!(restored
        .operator("wangfang")
        .unwrap()
        .unwrap()
        .verify("a long enough password"));
    assert_ne!(restored.node().actor, hall.node().actor);
    assert_eq!(restored.node().id, hall.node().id);
    restored.store().verify_tallies().unwrap();
    // Until it has caught up with its parent it asks for its own records
    // back, and its registry entry waits for the old one; then the entry
    // notes the restore, once.
    use hallsync_model::registry::{RegistryEntry, RestoreSource};
    let node = restored.node().clone();
    let entry = RegistryEntry {
        node: node.id.clone(),
        name: node.name.clone(),
        level: node.level,
        region: node.region.clone(),
        parent: Some(NodeId::parse("cn-212").unwrap()),
        addr: None,
        serial: "0d".into(),
        crl: None,
        clock_off: Vec::new(),
        restored: Vec::new(),
    };
    assert!(restored.restoring());
    assert!(!restored.publish_registry_entry(&entry).unwrap());
    assert!(restored.registry().unwrap().is_empty());
    let county = NodeId::parse("cn-212").unwrap();
    restored.restore_caught_up(Some(&county)).unwrap();
    assert!(!restored.restoring());
    assert!(restored.publish_registry_entry(&entry).unwrap());
    let noted = restored.registry().unwrap().remove(0).restored;
    assert_eq!(noted.len(), 1);
    assert_eq!(
        (noted[0].at, noted[0].source, noted[0].from.as_ref()),
        (now, RestoreSource::Backup, Some(&county))
    );
    assert_eq!(restored.restore_state().unwrap(), None);
    assert!(!restored.publish_registry_entry(&entry).unwrap());
    // The restored hall works on: a new case takes the next number.
    restored
        .accept_case(new_case("A1", "2026-11-23 09:00"), now)
        .unwrap();
    drop(restored);
    // Over a node: refused, the node untouched.
    assert!(matches!(
        Hall::restore(&into, &mut file.as_slice(), StoreOptions::default(), now),
        Err(HallError::AlreadyInitialised(_))
    ));
    assert!(Hall::open(&into, StoreOptions::default()).is_ok());

    // Truncated, padded, miscounted or not a backup: refused, nothing left.
    let mut miscounted = file.clone();
    let end = miscounted.len() - 2;
    miscounted[end] = b'9';
    let damaged: [(&str, Vec<u8>); 4] = [
        ("truncated", file[..file.len() - 10].to_vec()),
        ("goes on after its end", [file.clone(), vec![b'x']].concat()),
        ("says it holds", miscounted),
        ("does not begin", b"PK\x03\x04 a zip file".to_vec()),
    ];
    for (says, bytes) in damaged {
        let into = target.path().join(format!("damaged-{}", says.len()));
        let err = Hall::restore(&into, &mut bytes.as_slice(), StoreOptions::default(), now)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{says}: {err}");
        assert!(!into.exists(), "{says}: {} was left behind", into.display());
    }
}

#[test]
fn what_a_hall_stamps_while_its_clock_is_off_is_flagged_at_every_level() {
    use crate::WarningFilter;
    use hallsync_model::registry::RegistryEntry;
    let (town_dir, county_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let town = township(town_dir.path());
    let county = county(county_dir.path());
    published(&town, "A1");
    assert_eq!(
        town.note_clock(-600, t("2026-11-18 08:00")).unwrap(),
        None,
        "a node with no entry yet has nothing to note in"
    );
    let entry = RegistryEntry {
        node: NodeId::parse("tw-101").unwrap(),
        name: "样例镇便民服务中心".into(),
        level: Level::Township,
        region: RegionCode::parse("140212101").unwrap(),
        parent: Some(NodeId::parse("cn-212").unwrap()),
        addr: None,
        serial: "0b".into(),
        crl: None,
        clock_off: Vec::new(),
        restored: Vec::new(),
    };
    town.publish_registry_entry(&entry).unwrap();
    // Right on the 19th, ten minutes slow when next seen on the 20th.
    assert_eq!(
        town.note_clock(2, t("2026-11-19 08:00")).unwrap(),
        Some(false)
    );
    let off = town
        .accept_case(new_case("A1", "2026-11-19 15:00"), t("2026-11-19 15:00"))
        .unwrap();
    assert_eq!(
        town.note_clock(-600, t("2026-11-20 12:00")).unwrap(),
        Some(true)
    );
    assert_eq!(
        town.note_clock(-610, t("2026-11-20 13:00")).unwrap(),
        Some(false)
    );
    // Republishing the entry from the bundle keeps the period.
    town.publish_registry_entry(&entry).unwrap();
    let before = town
        .accept_case(new_case("A1", "2026-11-18 15:00"), t("2026-11-18 15:00"))
        .unwrap();
    assert_eq!(
        town.note_clock(30, t("2026-11-21 12:00")).unwrap(),
        Some(true)
    );
    let after = town
        .accept_case(new_case("A1", "2026-11-22 09:00"), t("2026-11-22 09:00"))
        .unwrap();

    let now = t("2026-12-30 10:00");
    let entry_id = entry.doc_id().unwrap();
    for id in [&entry_id, &off.id, &before.id, &after.id] {
        county
            .import_doc(&town.export_doc(id).unwrap(), now)
            .unwrap();
    }
    for hall in [&town, &county] {
        let flagged = |row: &CaseRow| {
            let (case, _) = hall.case(row.id.as_str(), now).unwrap();
            hall.clock_off_events(&case.events).unwrap()
        };
        let flags = flagged(&off);
        assert!(!flags.is_empty());
        assert!(flags
            .iter()
            .all(|f| f.ahead_secs == -600 && f.node.as_str() == "tw-101"));
        assert!(flagged(&before).is_empty());
        assert!(flagged(&after).is_empty());
        let cards = hall
            .warnings(&WarningFilter::default(), now, 0, usize::MAX)
            .unwrap();
        assert!(!cards.rows.is_empty());
        for w in &cards.rows {
            let expected = (w.case == off.id).then_some(-600);
            assert_eq!(w.clock_off, expected, "{}", w.number);
        }
    }
}

#[test]
fn the_standing_cards_read_from_the_index_are_those_of_every_case_read() {
    use crate::WarningFilter;
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    varied_cases(&hall);
    let ended = WarningFilter {
        ended: true,
        ..WarningFilter::default()
    };
    let mut seen = 0;
    // Right after the last write, and as cases fall due, go past their
    // statutory limits, and wait for delivery and disclosure.
    for now in [
        "2026-11-30 18:00",
        "2026-12-03 09:00",
        "2026-12-21 10:00",
        "2027-03-01 08:00",
    ] {
        let now = t(now);
        let indexed = hall
            .warnings(&WarningFilter::default(), now, 0, usize::MAX)
            .unwrap();
        let every = hall.warnings(&ended, now, 0, usize::MAX).unwrap();
        let standing: Vec<_> = every
            .rows
            .into_iter()
            .filter(|w| w.card.until.is_none() && !w.revoked)
            .collect();
        assert_eq!(indexed.rows, standing, "at {now}");
        assert_eq!(indexed.total, standing.len());
        seen += standing.len();
    }
    assert!(seen > 0, "no card stood at any of the times");
}
