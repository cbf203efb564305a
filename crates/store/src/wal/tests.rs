use super::*;

fn put(k: &str, len: usize) -> Op {
    Op::Put(k.as_bytes().to_vec(), vec![7; len])
}

/// Writes one flush of records `lsns`, each putting its number as key.
fn flush(wal: &Wal, lsns: std::ops::RangeInclusive<u64>, len: usize) {
    let mut bytes = Vec::new();
    for lsn in lsns {
        bytes.extend(Wal::record(&[put(&lsn.to_string(), len)], lsn).unwrap().0);
    }
    wal.write(&mut bytes).unwrap();
}

/// The keys the log replays, in order.
fn replayed(r: &Recovered) -> Vec<String> {
    r.records
        .iter()
        .flatten()
        .map(|op| match op {
            Op::Put(k, _) | Op::Del(k) => String::from_utf8(k.clone()).unwrap(),
        })
        .collect()
}

fn recover(dir: &Path, mark: Option<Mark>) -> Result<Recovered, RecoverError> {
    Wal::recover(dir, mark, false, false)
}

fn refused(dir: &Path, mark: Option<Mark>) -> String {
    match recover(dir, mark) {
        Err(RecoverError::Lost(why)) => why,
        other => panic!("not refused: {other:?}"),
    }
}

fn last_segment(dir: &Path) -> PathBuf {
    segments(dir).unwrap().pop().unwrap().1
}

const MARK: Mark = Mark { segment: 1, lsn: 0 };

#[test]
fn records_replay_and_a_last_flush_cut_short_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::start(dir.path(), 1, 0).unwrap();
    flush(&wal, 1..=2, 10);
    flush(&wal, 3..=4, 300);
    let r = recover(dir.path(), Some(MARK)).unwrap();
    assert_eq!(replayed(&r), ["1", "2", "3", "4"]);
    assert_eq!((r.last_lsn, r.next_segment), (4, 2));
    let path = last_segment(dir.path());
    let full = std::fs::read(&path).unwrap();
    let second_flush = HEAD + 2 * (HEADER + 16);
    // Cut inside the last flush (the file made no longer than its head, so
    // a crash can shorten it): its whole records are kept (none was
    // acknowledged, but they are in order), the torn one is dropped.
    for (cut, kept) in [
        (full.len() - 1, 3),
        (full.len() - 200, 3),
        (second_flush + 3, 2),
        (second_flush + 40, 2),
    ] {
        std::fs::write(&path, &full[..cut]).unwrap();
        let r = recover(dir.path(), Some(MARK)).unwrap();
        assert_eq!(replayed(&r).len(), kept, "cut at {cut}");
        assert!(r.discarded.is_none());
    }
}

#[test]
fn a_record_damaged_after_it_was_written_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::start(dir.path(), 1, 0).unwrap();
    flush(&wal, 1..=1, 100);
    flush(&wal, 2..=2, 100);
    let path = last_segment(dir.path());
    let full = std::fs::read(&path).unwrap();
    // The last record, all there, with one byte flipped.
    let mut last = full.clone();
    let end = last.len() - 5;
    last[end] ^= 1;
    std::fs::write(&path, &last).unwrap();
    let why = refused(dir.path(), Some(MARK));
    assert!(why.contains("damaged after they were written"), "{why}");
    // An earlier record flipped, a record after it.
    let mut first = full.clone();
    first[HEAD + HEADER + 50] ^= 1;
    std::fs::write(&path, &first).unwrap();
    let why = refused(dir.path(), Some(MARK));
    assert!(why.contains("offset 40 of wal-00000001"), "{why}");
    assert!(why.contains("hallsync repair --accept-log-loss"), "{why}");
    // A damaged header, likewise.
    let mut header = full;
    header[HEAD + 9] ^= 1;
    std::fs::write(&path, &header).unwrap();
    refused(dir.path(), Some(MARK));
}

#[test]
fn a_torn_last_flush_with_sectors_written_out_of_order_is_a_crash_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::start(dir.path(), 1, 0).unwrap();
    flush(&wal, 1..=1, 100);
    flush(&wal, 2..=4, 700);
    let path = last_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // The power went: the sector holding the start of record 3 never
    // reached the disk, though the ones after it did.
    let start3 = HEAD + (HEADER + 105) + (HEADER + 706);
    let sector = start3.div_ceil(SECTOR) * SECTOR - SECTOR;
    bytes[sector..sector + SECTOR].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let r = recover(dir.path(), Some(MARK)).unwrap();
    assert_eq!(replayed(&r), ["1", "2"][..replayed(&r).len()]);
    assert!(replayed(&r).len() <= 2);
    // ... but if a later flush had followed, record 3 was acknowledged.
    let wal = Wal {
        dir: dir.path().to_path_buf(),
        current: Mutex::new(Segment {
            number: 1,
            file: OpenOptions::new().append(true).open(&path).unwrap(),
        }),
        spare_bytes: 0,
    };
    flush(&wal, 5..=5, 10);
    let why = refused(dir.path(), Some(MARK));
    assert!(why.contains("later flush"), "{why}");
}

/// Found by the `wal_recover` fuzz harness: the sector where the last
/// flush began also held the end of the flush before; the power went
/// before it was written again, after the sectors following it were.
#[test]
fn a_torn_last_flush_whose_first_sector_kept_the_flush_before_is_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::start(dir.path(), 1, 0).unwrap();
    flush(&wal, 1..=1, 100);
    flush(&wal, 2..=3, 700);
    let path = last_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // That sector as it was before the flush: record 1, then zeros.
    let start2 = HEAD + HEADER + 105;
    bytes[start2..start2.div_ceil(SECTOR) * SECTOR].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let r = recover(dir.path(), Some(MARK)).unwrap();
    assert_eq!(replayed(&r), ["1"]);
    assert!(r.discarded.is_none());
}

#[test]
fn a_deleted_segment_is_reported_whether_the_mark_or_a_trailer_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::start(dir.path(), 1, 0).unwrap();
    flush(&wal, 1..=2, 10);
    let path = last_segment(dir.path());
    std::fs::remove_file(&path).unwrap();
    let why = refused(dir.path(), Some(MARK));
    assert!(why.contains("wal-00000001 is missing"), "{why}");

    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::start(dir.path(), 1, 0).unwrap();
    flush(&wal, 1..=2, 10);
    let mut more = Wal::record(&[put("3", 1)], 3).unwrap().0;
    assert_eq!(wal.write_and_rotate(&mut more).unwrap(), 1);
    flush(&wal, 4..=4, 10);
    assert_eq!(
        replayed(&recover(dir.path(), Some(MARK)).unwrap()),
        ["1", "2", "3", "4"]
    );
    // The newest segment gone: the closed one's trailer names it.
    std::fs::remove_file(last_segment(dir.path())).unwrap();
    let why = refused(dir.path(), Some(MARK));
    assert!(why.contains("wal-00000002 is missing"), "{why}");
}

#[test]
fn a_missing_middle_segment_is_a_gap_in_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::start(dir.path(), 1, 0).unwrap();
    for lsn in 1..=3 {
        let mut r = Wal::record(&[put(&lsn.to_string(), 1)], lsn).unwrap().0;
        wal.write_and_rotate(&mut r).unwrap();
    }
    std::fs::remove_file(segment_path(dir.path(), 2)).unwrap();
    let why = refused(dir.path(), Some(MARK));
    assert!(why.contains("missing"), "{why}");
}

#[test]
fn the_mark_skips_what_sled_holds_and_the_administrator_may_accept_a_loss() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::start(dir.path(), 1, 0).unwrap();
    flush(&wal, 1..=3, 10);
    flush(&wal, 4..=5, 10);
    // A checkpoint folded records 1-2 but had not deleted the segment yet.
    let r = recover(dir.path(), Some(Mark { segment: 1, lsn: 2 })).unwrap();
    assert_eq!(replayed(&r), ["3", "4", "5"]);
    let path = last_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[HEAD + (HEADER + 15) * 3 + 40] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    refused(dir.path(), Some(MARK));
    let r = Wal::recover(dir.path(), Some(MARK), false, true).unwrap();
    assert_eq!(replayed(&r), ["1", "2", "3"]);
    assert!(r.discarded.is_some());
    assert_eq!(
        r.last_lsn, 5,
        "new records continue after every number seen"
    );
}

#[test]
fn segments_of_the_previous_format_are_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let old = |ops: &[Op]| {
        let body = postcard::to_allocvec(ops).unwrap();
        let mut r = (body.len() as u32).to_le_bytes().to_vec();
        r.extend(crc32fast::hash(&body).to_le_bytes());
        r.extend(body);
        r
    };
    let mut bytes = old(&[put("a", 1)]);
    bytes.extend(old(&[put("b", 2)]));
    bytes.extend([9, 9, 9]);
    std::fs::write(segment_path(dir.path(), 4), &bytes).unwrap();
    let r = Wal::recover(dir.path(), None, true, false).unwrap();
    assert_eq!(replayed(&r), ["a", "b"]);
    assert_eq!((r.last_lsn, r.next_segment), (0, 5));
}

#[test]
fn records_are_postcard_and_spans_point_at_keys_and_values() {
    let big = vec![9u8; 70_000];
    let ops = vec![
        put("a", 0),
        Op::Del(vec![1; 200]),
        Op::Put(b"k".to_vec(), big.clone()),
        put("z", 127),
        put("y", 128),
    ];
    let (rec, spans) = Wal::record(&ops, 7).unwrap();
    assert_eq!(rec[HEADER..], postcard::to_allocvec(&ops).unwrap()[..]);
    let len = u32::from_le_bytes(rec[4..8].try_into().unwrap()) as usize;
    assert_eq!(len, rec.len() - HEADER);
    for (op, span) in ops.iter().zip(&spans) {
        match op {
            Op::Put(k, v) => {
                assert_eq!(&rec[span.key.clone()], k.as_slice());
                assert_eq!(&rec[span.value.clone().unwrap()], v.as_slice());
            }
            Op::Del(k) => {
                assert_eq!(&rec[span.key.clone()], k.as_slice());
                assert_eq!(span.value, None);
            }
        }
    }
    assert!(Wal::record(&[], 1).unwrap().1.is_empty());
}

#[test]
fn a_spare_becomes_the_next_segment_and_its_zeros_are_a_clean_end() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::start(dir.path(), 1, 4096).unwrap();
    wal.prepare_spare().unwrap();
    assert_eq!(
        std::fs::metadata(dir.path().join(SPARE)).unwrap().len(),
        4096
    );
    assert_eq!(
        std::fs::metadata(last_segment(dir.path())).unwrap().len(),
        4096,
        "a segment made without a spare is as long, sparse"
    );
    let mut a = Wal::record(&[put("1", 10)], 1).unwrap().0;
    assert_eq!(wal.write_and_rotate(&mut a).unwrap(), 1);
    // The rotation took the spare: the new segment is zeros so far.
    assert!(!dir.path().join(SPARE).exists());
    let second = last_segment(dir.path());
    assert_eq!(std::fs::metadata(&second).unwrap().len(), 4096);
    flush(&wal, 2..=2, 20);
    flush(&wal, 3..=3, 30);
    wal.prepare_spare().unwrap();
    let mut d = Wal::record(&[put("4", 1)], 4).unwrap().0;
    wal.write_and_rotate(&mut d).unwrap();
    flush(&wal, 5..=5, 1);
    let r = recover(dir.path(), Some(MARK)).unwrap();
    assert_eq!(replayed(&r), ["1", "2", "3", "4", "5"]);
    // A record torn in the zeros of the last segment is dropped, the one
    // before it kept.
    let last = last_segment(dir.path());
    let mut bytes = std::fs::read(&last).unwrap();
    let end = HEAD + HEADER + 14;
    bytes[end..end + 3].copy_from_slice(&MAGIC.to_le_bytes()[..3]);
    std::fs::write(&last, &bytes).unwrap();
    assert_eq!(replayed(&recover(dir.path(), Some(MARK)).unwrap()).len(), 5);
    // ... but not damage in a segment that was closed.
    let mut bytes = std::fs::read(&second).unwrap();
    bytes[HEAD + HEADER + 5] ^= 1;
    std::fs::write(&second, &bytes).unwrap();
    refused(dir.path(), Some(MARK));
    wal.remove_before(3).unwrap();
    assert_eq!(segments(dir.path()).unwrap().len(), 1);
}

#[test]
fn a_spare_half_filled_when_the_power_went_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SPARE_FILLING), [0u8; 100]).unwrap();
    let wal = Wal::start(dir.path(), 1, 4096).unwrap();
    assert!(!dir.path().join(SPARE_FILLING).exists());
    flush(&wal, 1..=1, 1);
    assert_eq!(recover(dir.path(), Some(MARK)).unwrap().records.len(), 1);
}

#[test]
fn a_truncated_or_beheaded_segment_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::start(dir.path(), 1, 4096).unwrap();
    flush(&wal, 1..=3, 10);
    let path = last_segment(dir.path());
    let full = std::fs::read(&path).unwrap();
    // Truncated at a record boundary: no record is torn, but the file is
    // shorter than it was made.
    std::fs::write(&path, &full[..HEAD + HEADER + 15]).unwrap();
    let why = refused(dir.path(), Some(MARK));
    assert!(why.contains("shorter than the 4096 it was made"), "{why}");
    std::fs::write(&path, []).unwrap();
    let why = refused(dir.path(), Some(MARK));
    assert!(why.contains("lost its beginning"), "{why}");
    std::fs::write(&path, &full).unwrap();
    assert_eq!(recover(dir.path(), Some(MARK)).unwrap().records.len(), 3);
}
