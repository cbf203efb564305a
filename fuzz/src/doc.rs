//! Documents: Automerge's loader, then the strict schema reader
//! (`hallsync_model::schema::read_record`, which validates), and a hall's
//! document import (`Hall::import_doc`).
//!
//! Invariants: loading and reading any bytes return a value or an error,
//! within [`alloc_limit`]; a document that reads is valid, reads the same
//! again (also with its id expected), and reads the same after Automerge
//! saves and reloads it. The same bytes applied as changes
//! (`load_incremental`, the replication path for `Payload::Changes`) onto
//! a valid document keep those invariants. A document that reads is
//! imported into a hall: the import returns a value or an error, and what
//! the hall then exports reads as a valid record of the same id.

use std::cell::RefCell;

use automerge::AutoCommit;
use hallsync_hall::Hall;
use hallsync_model::calendar::{CalendarDay, Window};
use hallsync_model::schema::{self, CalendarYear, Record};
use hallsync_model::{DayKind, DocId, DocKind, Level, NodeId, RegionCode, Ts};
use hallsync_store::StoreOptions;

/// What loading and reading `len` bytes may hold allocated at once: a
/// compressed column inflates at most ~1,000-fold, and the document's
/// structures cost some multiple of that.
pub fn alloc_limit(len: usize) -> u64 {
    4096 * len as u64 + (64 << 20)
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let limit = alloc_limit(data.len());
    let read = crate::bounded("loading and reading a document", limit, || {
        let doc = AutoCommit::load(data).ok()?;
        let read = schema::read_record(&doc, None).ok()?;
        Some((doc, read))
    });
    if let Some((mut doc, (id, record))) = read {
        check_read(&mut doc, &id, &record);
        import(data, &id);
    }
    let changed = crate::bounded("applying changes to a document", limit, || {
        let mut doc = base();
        doc.load_incremental(data).ok()?;
        let read = schema::read_record(&doc, None).ok()?;
        Some((doc, read))
    });
    if let Some((mut doc, (id, record))) = changed {
        check_read(&mut doc, &id, &record);
    }
}

fn check_read(doc: &mut AutoCommit, id: &DocId, record: &Record) {
    if let Err(e) = record.validate() {
        panic!("{id} was read but does not validate: {e}");
    }
    match schema::read_record(doc, Some(id)) {
        Ok((again, r)) => {
            assert_eq!(&again, id);
            assert_eq!(&r, record, "{id} reads differently the second time");
        }
        Err(e) => panic!("{id} read, then failed to read with its id expected: {e}"),
    }
    let saved = doc.save();
    let reloaded = AutoCommit::load(&saved)
        .unwrap_or_else(|e| panic!("{id}: what Automerge saved does not load: {e}"));
    match schema::read_record(&reloaded, Some(id)) {
        Ok((_, r)) => assert_eq!(&r, record, "{id} reads differently once saved and loaded"),
        Err(e) => panic!("{id} read, but not once saved and loaded: {e}"),
    }
}

fn t(s: &str) -> Ts {
    Ts::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A valid calendar document (what changes are applied onto).
fn base() -> AutoCommit {
    thread_local! {
        static BASE: Vec<u8> = {
            let region = RegionCode::parse("140212101").unwrap_or_else(|e| panic!("{e}"));
            let id = DocId::new(DocKind::Cal, &region, "2026").unwrap_or_else(|e| panic!("{e}"));
            let cal = CalendarYear {
                region,
                year: 2026,
                office_hours: vec![Window { start: 9 * 3600, end: 17 * 3600 }],
                days: vec![CalendarDay {
                    date: chrono::NaiveDate::from_ymd_opt(2026, 10, 1)
                        .unwrap_or_else(|| panic!("a date")),
                    kind: DayKind::Holiday,
                    name: "国庆".into(),
                }],
            };
            let mut doc = AutoCommit::new();
            schema::write_calendar(&mut doc, &id, &cal).unwrap_or_else(|e| panic!("{e}"));
            doc.save()
        };
    }
    BASE.with(|b| AutoCommit::load(b).unwrap_or_else(|e| panic!("the base document: {e}")))
}

/// Imports a document that read into a township hall (made once per
/// thread, so documents accumulate and merge), then checks what it holds.
fn import(data: &[u8], id: &DocId) {
    thread_local! {
        static HALL: RefCell<Option<(tempfile::TempDir, Hall)>> = const { RefCell::new(None) };
    }
    HALL.with(|h| {
        let mut h = h.borrow_mut();
        let (_, hall) = h.get_or_insert_with(|| {
            let dir = crate::scratch();
            let hall = Hall::init(
                dir.path(),
                NodeId::parse("tw-101").unwrap_or_else(|e| panic!("{e}")),
                "样例镇便民服务中心",
                RegionCode::parse("140212101").unwrap_or_else(|e| panic!("{e}")),
                Level::Township,
                StoreOptions {
                    memtable_bytes: 256 << 10,
                    ..StoreOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("a hall for imports: {e}"));
            (dir, hall)
        });
        let now = t("2026-03-10 10:00");
        if let Ok(imported) = hall.import_doc(data, now) {
            assert_eq!(&imported, id, "the import stored another id than it read");
            let bytes = hall
                .export_doc(id)
                .unwrap_or_else(|e| panic!("{id} was imported but does not export: {e}"));
            let doc = AutoCommit::load(&bytes)
                .unwrap_or_else(|e| panic!("{id} was imported but its export does not load: {e}"));
            if let Err(e) = schema::read_record(&doc, Some(id)) {
                panic!("{id} was imported but what the hall holds is not valid: {e}");
            }
        }
    });
}
