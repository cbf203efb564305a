use automerge::transaction::Transactable;
use automerge::{ReadDoc, ROOT};

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::open::{direct, CaseBefore7};

/// Opens the store in `dir`, creating it the first time.
fn open(dir: &Path) -> Store {
    Store::create(
        dir,
        StoreOptions {
            cache_docs: 4,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

fn id(key: &str) -> DocId {
    DocId::parse(&format!("case:140212101:{key}")).unwrap()
}

/// Field tags a caller might file cases under.
const REGION: u8 = b'r';
const ITEM: u8 = b'i';
const DEPARTMENT: u8 = b'd';
const STATE: u8 = b's';
const ACCEPTED: u8 = b'a';
const DUE: u8 = b'u';
const CONCLUDED: u8 = b'f';

/// A case as a caller would file it.
#[derive(Debug, Clone, PartialEq)]
struct Rec {
    region: String,
    item: String,
    department: String,
    state: u8,
    accepted: Option<i64>,
    due: Option<i64>,
    concluded: Option<i64>,
}

impl Rec {
    fn filed(&self) -> IndexRecord {
        let mut terms = vec![
            Term::Exact(REGION, self.region.as_bytes().to_vec()),
            Term::Exact(ITEM, self.item.as_bytes().to_vec()),
            Term::Exact(DEPARTMENT, self.department.as_bytes().to_vec()),
            Term::Exact(STATE, vec![self.state]),
        ];
        terms.extend(self.accepted.map(|t| Term::Ordered(ACCEPTED, t)));
        terms.extend(self.due.map(|t| Term::Ordered(DUE, t)));
        terms.extend(self.concluded.map(|t| Term::Ordered(CONCLUDED, t)));
        IndexRecord {
            terms,
            summary: vec![1, 2, 3],
        }
    }
}

fn record(state: u8, due: Option<i64>) -> Rec {
    Rec {
        region: "140212101".into(),
        item: "A1".into(),
        department: "民政办".into(),
        state,
        accepted: Some(100),
        due,
        concluded: None,
    }
}

fn write(store: &Store, doc: &DocId, key: &str, value: i64, case: Option<Rec>) -> u64 {
    let h = store.doc(doc).unwrap();
    let mut l = lock(&h).unwrap();
    l.doc.put(ROOT, key, value).unwrap();
    l.doc.commit();
    store
        .persist(&mut [Pending {
            id: doc,
            loaded: &mut l,
            index: case.map(|c| c.filed()),
            facts: None,
        }])
        .unwrap()
}

fn read(store: &Store, doc: &DocId, key: &str) -> Option<i64> {
    let h = store.doc(doc).unwrap();
    let l = lock(&h).unwrap();
    match l.doc.get(ROOT, key).unwrap() {
        Some((automerge::Value::Scalar(s), _)) => s.to_i64(),
        _ => None,
    }
}

#[test]
fn documents_survive_reopen_through_chunks_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let a = id("A");
    {
        let s = open(dir.path());
        for i in 0..20 {
            write(&s, &a, &format!("k{i}"), i, None);
        }
    }
    let s = open(dir.path());
    for i in 0..20 {
        assert_eq!(read(&s, &a, &format!("k{i}")), Some(i));
    }
    // Compaction keeps fewer chunks than the threshold.
    let chunks = s.head(&a).unwrap().unwrap().chunks.len();
    assert!(chunks < 8, "{chunks} chunks left");
    let feed_entries = s.mem.prefix(&s.blocks, &[FEED]).count();
    assert_eq!(feed_entries, chunks.max(1), "live chunks, or one marker");
    assert_eq!(s.verify().unwrap(), 1);
}

#[test]
fn feed_keeps_the_newest_entry_per_document() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let (a, b) = (id("A"), id("B"));
    write(&s, &a, "x", 1, None);
    write(&s, &b, "x", 1, None);
    let last = write(&s, &a, "x", 2, None);
    let feed = s.feed_since(0, 100).unwrap();
    assert_eq!(feed, vec![(2, b.clone()), (3, a.clone())]);
    assert_eq!(last, 3);
    assert_eq!(s.feed_since(2, 100).unwrap(), vec![(3, a)]);
    assert_eq!(s.durable_seq(), 3);
    drop(s);
    assert_eq!(open(dir.path()).durable_seq(), 3);
}

#[test]
fn listeners_hear_the_durable_feed_grow_from_any_thread_until_they_leave() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    write(&s, &id("before"), "x", 1, None);
    let heard = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    {
        let (heard, calls) = (heard.clone(), calls.clone());
        s.on_durable(move |seq| {
            heard.fetch_max(seq, Ordering::SeqCst);
            // Leaves once it has heard of entry 3.
            calls.fetch_add(1, Ordering::SeqCst);
            seq < 3
        });
    }
    assert_eq!(
        heard.load(Ordering::SeqCst),
        0,
        "growth before it is not told"
    );
    std::thread::scope(|t| {
        t.spawn(|| write(&s, &id("a"), "x", 1, None));
    });
    assert_eq!(heard.load(Ordering::SeqCst), 2);
    write(&s, &id("b"), "x", 1, None);
    assert_eq!(heard.load(Ordering::SeqCst), 3);
    let told = calls.load(Ordering::SeqCst);
    // A commit that adds nothing to the feed tells nothing; one after the
    // listener left tells it nothing either.
    s.persist_from(&mut [], "peer", Some(Checkpoint { feed: 1, seq: 9 }), &[])
        .unwrap();
    assert_eq!(s.peer_checkpoint("peer").unwrap().seq, 9);
    write(&s, &id("c"), "x", 1, None);
    assert_eq!(calls.load(Ordering::SeqCst), told);
    assert_eq!(heard.load(Ordering::SeqCst), 3);
}

#[test]
fn case_index_follows_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = id("A");
    write(&s, &a, "x", 1, Some(record(3, Some(500))));
    assert_eq!(s.indexed(STATE, &[3]).unwrap(), vec![a.clone()]);
    assert_eq!(
        s.indexed_between(DUE, 0, 1000).unwrap(),
        vec![(500, a.clone())]
    );
    let mut concluded = record(11, None);
    concluded.concluded = Some(900);
    write(&s, &a, "x", 2, Some(concluded.clone()));
    assert!(s.indexed(STATE, &[3]).unwrap().is_empty());
    assert_eq!(s.indexed(STATE, &[11]).unwrap(), vec![a.clone()]);
    assert!(s.indexed_between(DUE, 0, 1000).unwrap().is_empty());
    assert_eq!(
        s.indexed_between(CONCLUDED, 900, 901).unwrap(),
        vec![(900, a.clone())]
    );
    assert_eq!(s.indexed_under(REGION, b"1402").unwrap(), vec![a.clone()]);
    assert!(s.indexed_under(REGION, b"1403").unwrap().is_empty());
    assert_eq!(
        s.indexed(DEPARTMENT, "民政办".as_bytes()).unwrap(),
        vec![a.clone()]
    );
    assert_eq!(s.index_record(&a).unwrap(), Some(concluded.filed()));
    s.verify().unwrap();
    // Re-indexing touches only the index: the document keeps its feed entry.
    assert_eq!(s.derived_version().unwrap(), 0);
    let rederived = Rederived {
        id: a.clone(),
        index: Some(record(3, Some(700)).filed()),
        facts: None,
    };
    s.rederive(vec![rederived], Some(2)).unwrap();
    s.verify().unwrap();
    assert_eq!(s.derived_version().unwrap(), 2);
    assert_eq!(s.feed_since(0, 10).unwrap(), vec![(2, a.clone())]);
    assert_eq!(s.indexed_between(DUE, 0, 1000).unwrap(), vec![(700, a)]);
}

#[test]
fn an_exact_term_holding_a_zero_byte_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = id("A");
    write(&s, &a, "x", 1, Some(record(3, Some(500))));
    let h = s.doc(&a).unwrap();
    let mut l = lock(&h).unwrap();
    l.doc.put(ROOT, "x", 2).unwrap();
    l.doc.commit();
    let mut bad = record(8, None).filed();
    bad.terms.push(Term::Exact(ITEM, b"A\0B".to_vec()));
    let err = s
        .persist(&mut [Pending {
            id: &a,
            loaded: &mut l,
            index: Some(bad),
            facts: None,
        }])
        .unwrap_err();
    assert!(matches!(err, StoreError::BadIndex { .. }), "{err}");
    drop(l);
    assert_eq!(read(&s, &a, "x"), Some(1));
    assert_eq!(s.indexed(STATE, &[3]).unwrap(), vec![a.clone()]);
    assert!(s.indexed(STATE, &[8]).unwrap().is_empty());
    s.verify().unwrap();
}

#[test]
fn negative_times_sort_before_positive_ones() {
    assert!(time_bytes(-5) < time_bytes(0));
    assert!(time_bytes(0) < time_bytes(7));
    assert!(time_bytes(i64::MIN) < time_bytes(i64::MAX));
}

#[test]
fn damaged_values_and_newer_formats_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = id("A");
    {
        let s = open(dir.path());
        write(&s, &a, "x", 1, None);
        s.checkpoint().unwrap();
        let k = key(DOC, a.as_str().as_bytes());
        s.blocks
            .fold([(&k[..], Some(&[VALUES, 1, 2, 3][..]))])
            .unwrap();
        s.db.flush().unwrap();
    }
    let s = open(dir.path());
    let err = s.doc(&a).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(s.verify().is_err());
    s.tree.insert(FORMAT_KEY, &[FORMAT + 1]).unwrap();
    s.db.flush().unwrap();
    drop(s);
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::NewerFormat { .. }), "{err}");
}

#[test]
fn a_format_3_store_is_read_and_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let a = id("A");
    let bytes = {
        let s = open(dir.path());
        write(&s, &a, "x", 7, None);
        s.checkpoint().unwrap();
        // As format 3 left it: the saved document as Automerge wrote it.
        let saved = s.save(&a).unwrap().unwrap();
        s.tree
            .insert(key(DOC, a.as_str().as_bytes()), key(FORMAT_3, &saved))
            .unwrap();
        s.tree.insert(FORMAT_KEY, &[FORMAT_3]).unwrap();
        s.db.flush().unwrap();
        saved
    };
    let s = open(dir.path());
    assert_eq!(s.tree.get(FORMAT_KEY).unwrap().unwrap().as_ref(), &[FORMAT]);
    assert_eq!(s.stored_bytes(&a).unwrap().unwrap(), bytes);
    let h = s.doc(&a).unwrap();
    let value = lock(&h)
        .unwrap()
        .doc
        .get(ROOT, "x")
        .unwrap()
        .unwrap()
        .0
        .to_i64();
    assert_eq!(value, Some(7));
    drop(h);
    // The next compaction stores it compressed.
    for n in 0..StoreOptions::default().compact_after_chunks {
        write(&s, &a, "x", i64::from(n), None);
    }
    s.checkpoint().unwrap();
    let stored = s
        .blocks
        .get(&key(DOC, a.as_str().as_bytes()))
        .unwrap()
        .unwrap();
    assert_eq!(stored[0], VALUES);
    assert_eq!(s.verify().unwrap(), 1);
}

#[test]
fn a_compressed_document_claiming_a_huge_size_is_refused_unread() {
    let mut claim = zstd::block::compress(&[0u8; 64], 1).unwrap();
    // A frame header whose content size says 2^40 bytes.
    claim.truncate(4);
    claim.extend_from_slice(&[0xe0, 0, 0, 0, 0, 0, 1, 0, 0]);
    let none = Dicts::default();
    let err = unpack_saved("case", &key(FORMAT_4, &claim), &none).unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
    let err =
        unpack_saved("case", &[&[VALUES, 0, 0, 0, 0][..], &claim].concat(), &none).unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
    let err = unpack_saved("case", &key(VALUES, b"not zstd"), &none).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let err = unpack_saved("case", &[VALUES, 0, 0, 0, 9, 1, 2], &none).unwrap_err();
    assert!(err.to_string().contains("dictionary 9 is missing"), "{err}");
    // Nothing is stored that could not be read back.
    let limit = MAX_SAVED as usize;
    let err = pack_saved("case", &vec![7; limit + 1], &none).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    let packed = pack_saved("case", &vec![7; limit], &none).unwrap();
    assert_eq!(unpack_saved("case", &packed, &none).unwrap().len(), limit);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
}

#[test]
fn the_cache_is_bounded_but_never_drops_a_handle_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let held = s.doc(&id("held")).unwrap();
    for i in 0..20 {
        write(&s, &id(&format!("d{i}")), "x", i, None);
    }
    assert!(Arc::ptr_eq(&held, &s.doc(&id("held")).unwrap()));
    assert!(s.cache.len() <= 5);
}

#[test]
fn acknowledged_writes_come_back_from_the_log_when_sled_was_never_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (id("A"), id("B"));
    {
        let s = open(dir.path());
        write(&s, &a, "x", 1, Some(record(3, Some(500))));
        write(&s, &b, "x", 2, None);
        write(&s, &a, "y", 3, Some(record(8, Some(500))));
        // A crash: no checkpoint, sled not flushed, the process gone.
        std::mem::forget(s);
    }
    let copy = crashed_copy(dir.path());
    assert!(log_bytes(copy.path()) > 0);
    let s = open(copy.path());
    assert_eq!(read(&s, &a, "y"), Some(3));
    assert_eq!(read(&s, &b, "x"), Some(2));
    assert_eq!(
        s.index_record(&a).unwrap(),
        Some(record(8, Some(500)).filed())
    );
    assert_eq!(s.indexed(STATE, &[8]).unwrap(), vec![a.clone()]);
    assert_eq!(s.durable_seq(), 3);
    s.verify().unwrap();
}

#[test]
fn writes_after_a_torn_log_tail_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    // A crash cut the only record short: its first bytes, after the
    // segment's head, and nothing more.
    let segment = log_segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[wal::HEAD..wal::HEAD + 6].copy_from_slice(&[0x1c, 0x5a, 0xa7, 0xe1, 1, 2]);
    std::fs::write(segment, bytes).unwrap();
    let a = id("A");
    {
        let s = open(dir.path());
        write(&s, &a, "x", 1, None);
        std::mem::forget(s);
    }
    let copy = crashed_copy(dir.path());
    let s = open(copy.path());
    assert_eq!(read(&s, &a, "x"), Some(1));
}

fn log_segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = walk(dir)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("wal-"))
        .collect();
    found.sort();
    found
}

fn log_bytes(dir: &Path) -> u64 {
    log_segments(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// The files of a store whose instance was forgotten (sled's lock belongs
/// to it), copied as a crash would leave them.
fn crashed_copy(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in walk(dir) {
        let to = copy.path().join(entry.strip_prefix(dir).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
    copy
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p)
            } else {
                vec![p]
            }
        })
        .collect()
}

#[test]
fn concurrent_writers_through_background_checkpoints_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        cache_docs: 8,
        memtable_bytes: 16 << 10,
        ..StoreOptions::default()
    };
    {
        let s = Store::create(dir.path(), options.clone()).unwrap();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..150 {
                        let doc = id(&format!("t{t}-{}", i % 30));
                        write(s, &doc, &format!("k{i}"), i, Some(record(3, Some(i))));
                    }
                });
            }
            // A reader following the feed meanwhile never sees a durable
            // sequence number it cannot read.
            let s = &s;
            scope.spawn(move || {
                for _ in 0..200 {
                    let upto = s.durable_seq();
                    let (entries, _) = s.feed_entries(0, upto, usize::MAX).unwrap();
                    assert!(entries.iter().all(|e| e.seq <= upto));
                    assert!(entries.len() <= 120);
                }
            });
        });
        let (entries, _) = s.feed_entries(0, s.durable_seq(), usize::MAX).unwrap();
        assert_eq!(entries.len(), 120);
        // Many checkpoints ran (each starts a new log segment)...
        let segment = log_segments(dir.path()).pop().unwrap();
        let number: u64 = segment
            .to_str()
            .unwrap()
            .rsplit('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(number > 3, "{number}");
        // ... then a crash, with the last writes only in the log. (The
        // running checkpoint is let finish first: copying files while it
        // writes them is not what a crash leaves. SIGKILLs in the middle of
        // checkpoints are the hall's crash test.)
        s.finish_background(&mut s.background_job()).unwrap();
        std::mem::forget(s);
    }
    let copy = crashed_copy(dir.path());
    let s = Store::open(copy.path(), options).unwrap();
    assert_eq!(s.verify().unwrap(), 120);
    for t in 0..4 {
        for i in 0..150 {
            let doc = id(&format!("t{t}-{}", i % 30));
            assert_eq!(read(&s, &doc, &format!("k{i}")), Some(i), "t{t} k{i}");
        }
    }
    assert_eq!(s.indexed(STATE, &[3]).unwrap().len(), 120);
    assert_eq!(s.indexed_between(DUE, 0, 1000).unwrap().len(), 120);
}

/// A case record of `n`'s own: state, item and due time all vary with `n`.
fn varied(n: u32) -> Rec {
    let mut r = record(3 + (n % 3) as u8, Some(1_000 + i64::from(n % 50) * 7));
    r.item = format!("A{}", n % 7);
    r
}

/// Some index queries' answers: by exact field, and by time range.
type Answers = Vec<(Vec<DocId>, Vec<(i64, DocId)>)>;

fn index_answers(s: &Store) -> Answers {
    (3..6)
        .map(|state| {
            let by_state = s.indexed(STATE, &[state]).unwrap();
            let due = s.indexed_between(DUE, 1_100, 1_200).unwrap();
            (by_state, due)
        })
        .chain([(
            s.indexed(ITEM, b"A4").unwrap(),
            s.indexed_between(ACCEPTED, 0, 101).unwrap(),
        )])
        .collect()
}

fn expected_answers(records: &BTreeMap<DocId, Rec>) -> Answers {
    let mut due: Vec<(i64, DocId)> = records
        .iter()
        .filter_map(|(id, r)| {
            r.due
                .filter(|d| (1_100..1_200).contains(d))
                .map(|d| (d, id.clone()))
        })
        .collect();
    due.sort();
    let ids = |f: &dyn Fn(&Rec) -> bool| -> Vec<DocId> {
        records
            .iter()
            .filter(|(_, r)| f(r))
            .map(|(id, _)| id.clone())
            .collect()
    };
    (3..6)
        .map(|state| (ids(&|r| r.state == state), due.clone()))
        .chain([(
            ids(&|r| r.item == "A4"),
            records.keys().map(|id| (100, id.clone())).collect(),
        )])
        .collect()
}

/// Writes case `n` with record `varied(r)` for each `(n, r)`, noting it.
fn write_cases(
    s: &Store,
    cases: impl Iterator<Item = (u32, u32)>,
    records: &mut BTreeMap<DocId, Rec>,
) {
    for (n, r) in cases {
        let a = id(&format!("c{n:04}"));
        write(s, &a, "x", i64::from(r), Some(varied(r)));
        records.insert(a, varied(r));
    }
}

/// Rewrites the heads and the index of `s` as formats 3 to 6 kept them: a
/// case record of named fields in the head, index keys of those fields.
fn heads_as_before_format_7(s: &Store, records: &BTreeMap<DocId, Rec>) {
    let mut changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for kv in s.blocks.entries(vec![HEAD], Some(vec![INDEX + 1])) {
        let (k, v) = kv.unwrap();
        if k[0] == INDEX {
            changes.push((k.to_vec(), None));
            continue;
        }
        if k[0] != HEAD {
            continue;
        }
        let id = doc_id(&k[1..]).unwrap();
        let head: Head = decode(id.as_str(), &v).unwrap();
        let case: Option<CaseBefore7> = records.get(&id).map(|r| {
            (
                r.region.clone(),
                r.item.clone(),
                "01".to_string(),
                r.department.clone(),
                r.state,
                r.accepted,
                r.due,
                r.concluded,
                head.index.clone().unwrap().summary,
            )
        });
        if let Some(state) = case.as_ref().map(|c| c.4) {
            let mut old_key = vec![INDEX, b's', state, 0];
            old_key.extend_from_slice(id.as_str().as_bytes());
            changes.push((old_key, Some(Vec::new())));
        }
        let old = (head.feed_seq, head.chunks, case, head.heads);
        changes.push((k.to_vec(), Some(encode(id.as_str(), &old).unwrap())));
    }
    changes.sort();
    s.blocks
        .fold(changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())))
        .unwrap();
}

/// sled holds nothing but blocks and the keys written to it directly.
fn assert_only_blocks(s: &Store) {
    for k in s.tree.iter().keys() {
        let k = k.unwrap();
        assert!(k[0] == packed::BLOCK || direct(&k), "{k:?}");
    }
}

#[test]
fn the_index_answers_the_same_from_the_memtable_blocks_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = BTreeMap::new();
    {
        let s = open(dir.path());
        write_cases(&s, (0..300).map(|n| (n, n)), &mut records);
        assert_eq!(index_answers(&s), expected_answers(&records));
        s.checkpoint().unwrap();
        assert_eq!(index_answers(&s), expected_answers(&records));
        // Changes on top of the blocks, not yet checkpointed.
        write_cases(&s, (0..300).step_by(4).map(|n| (n, n + 1)), &mut records);
        assert_eq!(index_answers(&s), expected_answers(&records));
        s.verify().unwrap();
    }
    let s = open(dir.path());
    assert_eq!(index_answers(&s), expected_answers(&records));
    assert_eq!(s.verify().unwrap(), 300);
    assert_only_blocks(&s);
}

/// What the due-time walk and the index counts should give for `records`:
/// every due time in (time, id) order, and the counts by state and of due
/// times.
fn expected_walk(records: &BTreeMap<DocId, Rec>) -> (Vec<(i64, DocId)>, Vec<usize>) {
    let mut due: Vec<(i64, DocId)> = records
        .iter()
        .filter_map(|(id, r)| r.due.map(|d| (d, id.clone())))
        .collect();
    due.sort();
    let mut counts: Vec<usize> = (3..=11)
        .map(|state| records.values().filter(|r| r.state == state).count())
        .collect();
    counts.push(due.len());
    (due, counts)
}

fn due_walk(s: &Store) -> (Vec<(i64, DocId)>, Vec<usize>) {
    let due = s
        .indexed_from(DUE, i64::MIN)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut counts: Vec<usize> = (3..=11)
        .map(|state| s.count_indexed(STATE, &[state]).unwrap())
        .collect();
    counts.push(s.count_ordered(DUE).unwrap());
    (due, counts)
}

#[test]
fn the_due_walk_and_index_counts_follow_writes_in_the_memtable_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = BTreeMap::new();
    let s = open(dir.path());
    write_cases(&s, (0..200).map(|n| (n, n)), &mut records);
    assert_eq!(due_walk(&s), expected_walk(&records));
    s.checkpoint().unwrap();
    assert_eq!(due_walk(&s), expected_walk(&records));
    // New due times on top of the blocks, and cases concluded (no due
    // time, another state): the walk sees each case once, at its new time,
    // and none of the accepted and concluded times indexed beside it.
    write_cases(&s, (0..200).step_by(3).map(|n| (n, n + 7)), &mut records);
    for n in (1..200).step_by(5) {
        let a = id(&format!("c{n:04}"));
        let mut done = record(11, None);
        done.concluded = Some(2_000);
        write(&s, &a, "x", -1, Some(done.clone()));
        records.insert(a, done);
    }
    let (due, counts) = expected_walk(&records);
    assert_eq!(due_walk(&s), (due.clone(), counts));
    // From a bound, and stopped early: only what was taken.
    let from = due[due.len() / 2].0;
    let later: Vec<_> = due.iter().filter(|(t, _)| *t >= from).cloned().collect();
    let taken = s
        .indexed_from(DUE, from)
        .take(5)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(taken, later[..5]);
    s.checkpoint().unwrap();
    assert_eq!(due_walk(&s), expected_walk(&records));
}

#[test]
fn a_format_4_store_has_its_records_packed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = BTreeMap::new();
    {
        let s = open(dir.path());
        write_cases(&s, (0..120).map(|n| (n, n)), &mut records);
        let h = s.doc(&id("c0000")).unwrap();
        let mut l = lock(&h).unwrap();
        l.doc.put(ROOT, "y", 1).unwrap();
        l.doc.commit();
        let pending = Pending {
            id: &id("c0000"),
            loaded: &mut l,
            index: None,
            facts: None,
        };
        let at = Checkpoint { feed: 9, seq: 4 };
        s.persist_from(&mut [pending], "county", Some(at), &[])
            .unwrap();
        drop(l);
        s.checkpoint().unwrap();
        heads_as_before_format_7(&s, &records);
        // As format 4 left it: one sled key per record.
        for kv in s.blocks.entries(Vec::new(), None) {
            let (k, v) = kv.unwrap();
            s.tree.insert(k, v).unwrap();
        }
        for k in s.tree.scan_prefix([packed::BLOCK]).keys() {
            s.tree.remove(k.unwrap()).unwrap();
        }
        s.tree.insert(FORMAT_KEY, &[FORMAT_4]).unwrap();
        s.db.flush().unwrap();
    }
    let s = open(dir.path());
    assert_eq!(s.tree.get(FORMAT_KEY).unwrap().unwrap().as_ref(), &[FORMAT]);
    assert_only_blocks(&s);
    // The old index is gone, for the caller to file every case afresh.
    assert_eq!(s.derived_version().unwrap(), 0);
    assert_eq!(s.index_records("case:").count(), 0);
    assert_eq!(index_answers(&s), expected_answers(&BTreeMap::new()));
    assert_eq!(s.verify().unwrap(), 120);
    let refiled = records
        .iter()
        .map(|(id, r)| Rederived {
            id: id.clone(),
            index: Some(r.filed()),
            facts: None,
        })
        .collect();
    s.rederive(refiled, Some(1)).unwrap();
    assert_eq!(index_answers(&s), expected_answers(&records));
    assert_eq!(s.verify().unwrap(), 120);
    assert_eq!(read(&s, &id("c0077"), "x"), Some(77));
    assert!(s.peer_checkpoint("county").unwrap().seq > 0);
}

/// Writes a case-like document: a dozen fields, some shared by every
/// case, some its own.
fn write_case_like(s: &Store, n: u32) {
    let a = id(&format!("c{n:05}"));
    let h = s.doc(&a).unwrap();
    let mut l = lock(&h).unwrap();
    for f in 0..12 {
        let shared = format!("民政办 field {f} applies to every case of item A{}", f % 3);
        l.doc.put(ROOT, format!("f{f}"), shared).unwrap();
    }
    l.doc
        .put(ROOT, "own", format!("applicant {n} {}", n * 7919))
        .unwrap();
    l.doc.commit();
    s.persist(&mut [Pending {
        id: &a,
        loaded: &mut l,
        index: None,
        facts: None,
    }])
    .unwrap();
}

fn packed_size(s: &Store, n: u32) -> (u32, usize) {
    let v = s
        .get(&key(DOC, id(&format!("c{n:05}")).as_str().as_bytes()))
        .unwrap()
        .unwrap();
    assert_eq!(v[0], VALUES);
    (u32::from_be_bytes(v[1..5].try_into().unwrap()), v.len())
}

#[test]
fn a_dictionary_is_trained_from_stored_documents_and_read_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        cache_docs: 4,
        dictionary_after: 300,
        ..StoreOptions::default()
    };
    {
        let s = Store::create(dir.path(), options.clone()).unwrap();
        for n in 0..300 {
            write_case_like(&s, n);
        }
        let trainer = s.trainer.lock().unwrap().take().expect("training started");
        trainer.join().unwrap();
        assert!(s
            .tree
            .get([dict::DICT_PREFIX, &1u32.to_be_bytes()].concat())
            .unwrap()
            .is_some());
        for n in 300..400 {
            write_case_like(&s, n);
        }
        let (before, plain) = packed_size(&s, 299);
        let (after, with_dict) = packed_size(&s, 399);
        assert_eq!((before, after), (0, 1));
        assert!(with_dict * 2 < plain, "{with_dict} against {plain}");
    }
    let s = Store::open(dir.path(), options).unwrap();
    assert_eq!(s.verify().unwrap(), 400);
    let h = s.doc(&id("c00399")).unwrap();
    let own = lock(&h)
        .unwrap()
        .doc
        .get(ROOT, "own")
        .unwrap()
        .unwrap()
        .0
        .to_string();
    assert!(own.contains("applicant 399"), "{own}");
    // No second dictionary: one is trained per store.
    for n in 400..750 {
        write_case_like(&s, n);
    }
    assert!(s.trainer.lock().unwrap().is_none());
}

#[test]
fn a_damaged_dictionary_is_reported_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        let k = [dict::DICT_PREFIX, &1u32.to_be_bytes()].concat();
        let mut v = versioned(&dict::stored_form(7, b"a dictionary"));
        v[6] ^= 1;
        s.tree.insert(k, v).unwrap();
        s.db.flush().unwrap();
    }
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(err.to_string().contains("fails its checksum"), "{err}");
}

#[test]
fn a_newest_log_segment_deleted_truncated_or_flipped_after_a_kill_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let a = id("A");
    {
        let s = open(dir.path());
        for n in 0..5 {
            write(&s, &a, "x", n, None);
        }
        // Killed: the writes are acknowledged, in the log only.
        std::mem::forget(s);
    }
    let damaged = |damage: &dyn Fn(&Path)| {
        let copy = crashed_copy(dir.path());
        damage(&log_segments(copy.path()).pop().unwrap());
        let err = Store::open(copy.path(), StoreOptions::default()).unwrap_err();
        assert!(matches!(err, StoreError::LogDamaged(_)), "{err}");
        assert!(err.to_string().contains("accept-log-loss"), "{err}");
        // Refused: nothing changed, so the same answer the next time.
        let again = Store::open(copy.path(), StoreOptions::default()).unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
        // The administrator accepts the loss: it opens, and says what went.
        let s = Store::open(
            copy.path(),
            StoreOptions {
                accept_log_loss: true,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        assert!(s.discarded_log().is_some());
        drop(s);
        assert!(Store::open(copy.path(), StoreOptions::default()).is_ok());
    };
    damaged(&|p| std::fs::remove_file(p).unwrap());
    damaged(&|p| {
        let len = std::fs::metadata(p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.set_len(len / 2).unwrap();
    });
    damaged(&|p| {
        let mut bytes = std::fs::read(p).unwrap();
        let last = bytes.iter().rposition(|&b| b != 0).unwrap();
        bytes[last - 20] ^= 0x10;
        std::fs::write(p, bytes).unwrap();
    });
    // Undamaged, every acknowledged write comes back.
    let s = open(crashed_copy(dir.path()).path());
    assert_eq!(read(&s, &a, "x"), Some(4));
}

/// Facts for the tests: `key=count` pairs, one a line; each adds 1 and
/// the count under its key.
fn test_tallies(facts: &[u8]) -> Result<Vec<Tally>, String> {
    std::str::from_utf8(facts)
        .map_err(|e| e.to_string())?
        .lines()
        .map(|l| {
            let (k, n) = l.split_once('=').ok_or("no =")?;
            let n: i64 = n.parse().map_err(|_| "not a number")?;
            Ok(Tally {
                key: k.as_bytes().to_vec(),
                counts: vec![1, n],
            })
        })
        .collect()
}

/// A tallier for the tests: the new facts' tallies less the old ones'.
fn tallier(version: u32) -> Tallier {
    Tallier {
        version,
        delta: Arc::new(|old: Option<&[u8]>, new: &[u8]| {
            let mut out = test_tallies(new)?;
            for mut t in old.map(test_tallies).transpose()?.unwrap_or_default() {
                t.counts.iter_mut().for_each(|c| *c = -*c);
                out.push(t);
            }
            Ok(out)
        }),
    }
}

fn open_tallied(dir: &Path, version: u32) -> Store {
    Store::create(
        dir,
        StoreOptions {
            cache_docs: 4,
            memtable_bytes: 16 << 10,
            tallier: Some(tallier(version)),
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

fn write_facts(store: &Store, doc: &DocId, facts: &str) {
    let h = store.doc(doc).unwrap();
    let mut l = lock(&h).unwrap();
    l.doc.put(ROOT, "facts", facts).unwrap();
    l.doc.commit();
    store
        .persist(&mut [Pending {
            id: doc,
            loaded: &mut l,
            index: None,
            facts: Some(facts.as_bytes().to_vec()),
        }])
        .unwrap();
}

#[test]
fn tallies_equal_a_recount_through_rewrites_checkpoints_reopens_and_a_new_tallier() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected: BTreeMap<DocId, String> = BTreeMap::new();
    let sum = |expected: &BTreeMap<DocId, String>, key: &str| -> Vec<i64> {
        let mut row = vec![0, 0];
        for facts in expected.values() {
            for l in facts.lines() {
                let (k, n) = l.split_once('=').unwrap();
                if k == key {
                    row[0] += 1;
                    row[1] += n.parse::<i64>().unwrap();
                }
            }
        }
        if row == [0, 0] {
            Vec::new()
        } else {
            row
        }
    };
    let mut seed = 7u64;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for round in 0..3 {
        let s = open_tallied(dir.path(), 1);
        s.verify_tallies().unwrap();
        for _ in 0..300 {
            let doc = id(&format!("c{:04}", next(40)));
            let facts: String = (0..next(3) + 1)
                .map(|_| format!("k{}={}\n", next(5), next(100) as i64 - 50))
                .collect();
            write_facts(&s, &doc, &facts);
            expected.insert(doc, facts);
        }
        for k in 0..5 {
            assert_eq!(
                s.tally(format!("k{k}").as_bytes()).unwrap(),
                sum(&expected, &format!("k{k}")),
                "round {round}"
            );
        }
        let listed: Vec<_> = s
            .tallies_with_prefix(b"k")
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(listed
            .iter()
            .all(|(k, v)| *v == sum(&expected, std::str::from_utf8(k).unwrap())));
        s.verify_tallies().unwrap();
        if round == 1 {
            s.checkpoint().unwrap();
        }
    }
    // A tallier of another version (here: the same expansion) has the
    // tallies summed afresh at open, whatever they held.
    {
        let s = open_tallied(dir.path(), 1);
        let bogus = Op::Put(
            tally::tally_key(b"k9"),
            tally::encode_counts(b"k9", &[3]).unwrap(),
        );
        s.commit_raw(vec![bogus]).unwrap();
        assert!(s.verify_tallies().is_err());
    }
    let s = open_tallied(dir.path(), 2);
    s.verify_tallies().unwrap();
    assert_eq!(s.tally(b"k9").unwrap(), Vec::<i64>::new());
    assert_eq!(s.tally(b"k1").unwrap(), sum(&expected, "k1"));
}

/// A commit adds to the row stored, even when the row was last written
/// as it is (a recount, a repair) rather than summed by a commit.
#[test]
fn a_commit_adds_to_the_tally_stored_whoever_wrote_it_last() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_tallied(dir.path(), 1);
    let (a, b) = (id("c0001"), id("c0002"));
    write_facts(&s, &a, "k1=5\n");
    let as_is = Op::Put(
        tally::tally_key(b"k1"),
        tally::encode_counts(b"k1", &[10, 10]).unwrap(),
    );
    s.commit_raw(vec![as_is]).unwrap();
    write_facts(&s, &b, "k1=1\n");
    assert_eq!(s.tally(b"k1").unwrap(), vec![11, 11]);
    s.rebuild_tallies().unwrap();
    assert_eq!(s.tally(b"k1").unwrap(), vec![2, 6]);
    write_facts(&s, &a, "k1=7\n");
    assert_eq!(s.tally(b"k1").unwrap(), vec![2, 8]);
    // Two documents in one commit sum into one row.
    let (ha, hb) = (s.doc(&a).unwrap(), s.doc(&b).unwrap());
    let (mut la, mut lb) = (lock(&ha).unwrap(), lock(&hb).unwrap());
    for (l, f) in [(&mut la, "k1=1\nk2=3"), (&mut lb, "k2=4")] {
        l.doc.put(ROOT, "facts", f).unwrap();
        l.doc.commit();
    }
    s.persist(&mut [
        Pending {
            id: &a,
            loaded: &mut la,
            index: None,
            facts: Some(b"k1=1\nk2=3".to_vec()),
        },
        Pending {
            id: &b,
            loaded: &mut lb,
            index: None,
            facts: Some(b"k2=4".to_vec()),
        },
    ])
    .unwrap();
    assert_eq!(s.tally(b"k1").unwrap(), vec![1, 1]);
    assert_eq!(s.tally(b"k2").unwrap(), vec![2, 7]);
    s.verify_tallies().unwrap();
}

/// The commits add to rows kept in memory (`tally::Rows`): a commit
/// refused before it is logged leaves them as the store has them, and a
/// reopen loads them again from what the log and the blocks hold.
#[test]
fn a_refused_commit_changes_no_tally_and_a_reopen_sums_on_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open_tallied(dir.path(), 1);
        write_facts(&s, &id("c0001"), "k1=5\n");
        let not_counters = Op::Put(tally::tally_key(b"k1"), b"\x05\xff".to_vec());
        let counters = Op::Put(
            tally::tally_key(b"k0"),
            tally::encode_counts(b"k0", &[1]).unwrap(),
        );
        assert!(s.commit_raw(vec![counters, not_counters]).is_err());
        assert_eq!(s.tally(b"k0").unwrap(), Vec::<i64>::new());
        write_facts(&s, &id("c0002"), "k1=1\n");
        assert_eq!(s.tally(b"k1").unwrap(), vec![2, 6]);
        s.verify_tallies().unwrap();
    }
    let s = open_tallied(dir.path(), 1);
    write_facts(&s, &id("c0003"), "k1=2\nk2=1\n");
    write_facts(&s, &id("c0001"), "k2=3\n");
    assert_eq!(s.tally(b"k1").unwrap(), vec![2, 3]);
    assert_eq!(s.tally(b"k2").unwrap(), vec![2, 4]);
    s.verify_tallies().unwrap();
}

#[test]
fn facts_a_tallier_cannot_read_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_tallied(dir.path(), 1);
    let doc = id("c0001");
    write_facts(&s, &doc, "a=1\n");
    let h = s.doc(&doc).unwrap();
    let mut l = lock(&h).unwrap();
    l.doc.put(ROOT, "facts", "broken").unwrap();
    l.doc.commit();
    let err = s
        .persist(&mut [Pending {
            id: &doc,
            loaded: &mut l,
            index: None,
            facts: Some(b"broken".to_vec()),
        }])
        .unwrap_err();
    assert!(err.to_string().contains("tally facts"), "{err}");
    drop(l);
    assert_eq!(s.facts(&doc).unwrap(), Some(b"a=1\n".to_vec()));
    assert_eq!(s.tally(b"a").unwrap(), vec![1, 1]);
    s.verify_tallies().unwrap();
}
