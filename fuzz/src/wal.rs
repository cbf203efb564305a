//! The write-ahead log (`crates/store/src/wal.rs`).
//!
//! [`segment`] reads any bytes as one segment file, in both formats.
//! Invariants: parsing returns pieces in file order (damaged ranges inside
//! the file, in order) within [`segment_alloc_limit`], and every record it
//! accepts encodes again to a record that parses to the same thing.
//!
//! [`recover`] is structure-aware: the input is a recipe. A log is written
//! by the store's own writer (flushes of records, rotations, spare
//! segments, checkpoints that move the mark and delete old segments), then
//! damaged one of three ways, then recovered as opening the store does:
//! - not at all: recovery returns exactly the records written after the
//!   mark;
//! - a crash during the last flush (some of its 512-byte sectors never
//!   reached the disk, which leaves them as they were: zero): recovery
//!   opens without the administrator's consent and returns the records
//!   written after the mark up to some point in the last flush, none
//!   missing before it;
//! - anything (truncated, zeroed, flipped, deleted, overwritten, added,
//!   copied files): recovery never panics; unless bytes were forged, what
//!   it returns is a prefix of the records written after the mark (never a
//!   record that was not written, never one out of order); accepting the
//!   loss always opens, and changes nothing when there was no loss; the
//!   records returned replay (fold into blocks).

use std::collections::BTreeMap;
use std::path::Path;

use arbitrary::{Result, Unstructured};
use hallsync_store::fuzzing::{
    encode_record, parse_legacy, parse_segment, segment_file, BlockTree, Log, LogOp, Piece,
    RecoverError, Recovered, RECORD_HEADER, SEGMENT_HEAD,
};

/// What parsing `len` bytes of log may hold allocated at once: an
/// operation is a few dozen bytes in memory for as little as two on disk.
pub fn segment_alloc_limit(len: usize) -> u64 {
    64 * len as u64 + (4 << 20)
}

/// Completes a record's header as the flush that writes it does.
fn seal(record: &mut [u8], group: u64) {
    record[16..24].copy_from_slice(&group.to_le_bytes());
    let crc = crc32fast::hash(&record[..28]);
    record[28..32].copy_from_slice(&crc.to_le_bytes());
}

/// A record in the format before record headers.
fn legacy_record(ops: &[LogOp]) -> Vec<u8> {
    let record = encode_record(ops, 1).unwrap_or_else(|e| panic!("encoding a record: {e}"));
    let body = &record[RECORD_HEADER..];
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Runs one input as a segment file's bytes.
pub fn segment(data: &[u8]) {
    let limit = segment_alloc_limit(data.len());
    let pieces = crate::bounded("parsing a log segment", limit, || parse_segment(data));
    let mut done = 0;
    for piece in &pieces {
        match piece {
            Piece::Damaged { at, len, .. } => {
                assert!(
                    *len > 0 && *at >= done && at + len <= data.len(),
                    "{piece:?}"
                );
                done = at + len;
            }
            Piece::Record { lsn, group, ops } => {
                assert!(*lsn > 0);
                let mut again = encode_record(ops, *lsn)
                    .unwrap_or_else(|e| panic!("a record that was read does not encode: {e}"));
                seal(&mut again, *group);
                assert_eq!(
                    parse_segment(&again),
                    vec![piece.clone()],
                    "a record read changes when written again"
                );
            }
            Piece::Head { .. } | Piece::Trailer { .. } => {}
            Piece::Mangled(why) => panic!("parse_segment reported a mangled segment: {why}"),
        }
    }
    let (records, _) = crate::bounded("parsing a legacy log segment", limit, || parse_legacy(data));
    for ops in records {
        let again = legacy_record(&ops);
        assert_eq!(
            parse_legacy(&again),
            (vec![ops], true),
            "a legacy record read changes when written again"
        );
    }
}

/// One record written.
#[derive(Debug, Clone)]
struct Written {
    lsn: u64,
    flush: usize,
    ops: Vec<LogOp>,
}

fn ops(u: &mut Unstructured<'_>) -> Result<Vec<LogOp>> {
    let n = u.int_in_range(0..=3u8)?;
    let mut out = Vec::new();
    for _ in 0..n {
        let prefix = *u.choose(&[&b"d"[..], b"hcase:1", b"c", b"x", b""])?;
        let tail: u8 = u.arbitrary()?;
        let key = [prefix, &[tail % 8]].concat();
        if u.ratio(1, 4)? {
            out.push(LogOp::Del(key));
        } else {
            let len = *u.choose(&[0usize, 3, 100, 700, 1500])?;
            let fill: u8 = u.arbitrary()?;
            let value = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
            out.push(LogOp::Put(key, value));
        }
    }
    Ok(out)
}

fn io<T>(what: &str, r: std::io::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Runs one input as a recipe for a log and its damage.
pub fn recover(data: &[u8]) {
    let dir = crate::scratch();
    let mut u = Unstructured::new(data);
    let _ = if u.ratio(1, 8).unwrap_or(false) {
        legacy(&mut u, dir.path())
    } else {
        segments(&mut u, dir.path())
    };
}

fn segments(u: &mut Unstructured<'_>, dir: &Path) -> Result<()> {
    let spare = *u.choose(&[0usize, 2048, 8192])?;
    let first = u.int_in_range(1..=3u64)?;
    let first_lsn = u.int_in_range(1..=4u64)?;
    let log = io("starting the log", Log::start(dir, first, spare));
    // As a store leaves it when it opens: sled holds everything before.
    let mut mark = (first, first_lsn - 1);
    let mut written: Vec<Written> = Vec::new();
    let (mut segment, mut offset, mut lsn) = (first, SEGMENT_HEAD, first_lsn);
    // The last flush, if it was not followed by a rotation: its segment
    // and byte range.
    let mut last_flush = None;
    let flushes = u.int_in_range(0..=6usize)?;
    for flush in 0..flushes {
        let mut bytes = Vec::new();
        for _ in 0..u.int_in_range(1..=4u8)? {
            let ops = ops(u)?;
            let record = io("encoding a record", encode_record(&ops, lsn));
            written.push(Written { lsn, flush, ops });
            bytes.extend_from_slice(&record);
            lsn += 1;
        }
        if u.ratio(1, 3)? {
            io("rotating", log.write_and_rotate(&mut bytes));
            segment += 1;
            offset = SEGMENT_HEAD;
            last_flush = None;
            if u.ratio(1, 2)? {
                io("preparing a spare", log.prepare_spare());
            }
            if u.ratio(1, 3)? {
                // A checkpoint: sled holds everything so far.
                mark = (segment, lsn - 1);
                if u.ratio(1, 2)? {
                    io("removing old segments", log.remove_before(segment));
                }
            }
        } else {
            io("writing", log.write(&mut bytes));
            last_flush = Some((segment, offset..offset + bytes.len(), flush));
            offset += bytes.len();
        }
    }
    drop(log);
    let after: Vec<&Written> = written.iter().filter(|w| w.lsn > mark.1).collect();
    let expected: Vec<Vec<LogOp>> = after.iter().map(|w| w.ops.clone()).collect();
    let path = |n: u64| dir.join(segment_file(n));
    match u.int_in_range(0..=2u8)? {
        0 => {
            let r = recovered(dir, mark, false);
            assert_eq!(
                r.records, expected,
                "an undamaged log recovers other records"
            );
            assert_eq!(r.discarded, None);
            assert_eq!(r.last_lsn, lsn - 1);
            assert_eq!(r.next_segment, segment + 1);
        }
        1 => {
            let Some((n, range, flush)) = last_flush else {
                return Ok(());
            };
            let mut bytes = io("reading a segment", std::fs::read(path(n)));
            let mut torn = false;
            let mut s = range.start / 512 * 512;
            while s < range.end {
                if u.ratio(1, 2)? {
                    let zero = range.start.max(s)..range.end.min(s + 512);
                    bytes[zero].fill(0);
                    torn = true;
                }
                s += 512;
            }
            if !torn {
                return Ok(());
            }
            io("tearing a write", std::fs::write(path(n), &bytes));
            let before = after.iter().filter(|w| w.flush < flush).count();
            let r = match attempt(dir, mark, false) {
                Ok(r) => r,
                Err(e) => panic!("a log whose last flush was torn does not open: {e:?}"),
            };
            assert!(
                r.records.len() >= before && expected.starts_with(&r.records),
                "a torn last flush recovers {} records; {} were written after the mark, {before} before the last flush",
                r.records.len(),
                expected.len(),
            );
            assert_eq!(r.discarded, None);
            replays(&r);
        }
        _ => {
            let forged = damage(u, dir, segment)?;
            let strict = attempt(dir, mark, false);
            let lenient = attempt(dir, mark, true);
            let lenient = match lenient {
                Ok(r) => r,
                Err(RecoverError::Lost(why)) => {
                    panic!("accepting the loss, recovery still refuses: {why}")
                }
                Err(RecoverError::Io(e)) => panic!("reading the log: {e}"),
            };
            if let Ok(strict) = &strict {
                assert_eq!(strict.discarded, None);
                assert_eq!(
                    strict, &lenient,
                    "accepting a loss changed a recovery that lost nothing"
                );
            }
            if !forged {
                assert!(
                    expected.starts_with(&lenient.records),
                    "recovery returned records other than those written after the mark, in order"
                );
            }
            assert!(lenient.last_lsn >= mark.1 + lenient.records.len() as u64);
            assert_eq!(
                format!("{:?}", attempt(dir, mark, true)),
                format!("{:?}", Ok::<_, RecoverError>(lenient.clone())),
                "recovering twice differs"
            );
            replays(&lenient);
        }
    }
    Ok(())
}

fn attempt(
    dir: &Path,
    mark: (u64, u64),
    accept: bool,
) -> std::result::Result<Recovered, RecoverError> {
    hallsync_store::fuzzing::recover(dir, Some(mark), false, accept)
}

fn recovered(dir: &Path, mark: (u64, u64), accept: bool) -> Recovered {
    attempt(dir, mark, accept)
        .unwrap_or_else(|e| panic!("an undamaged log does not recover: {e:?}"))
}

/// Damages the log files; returns whether bytes that could form records
/// were written (forged), beyond truncating, zeroing, flipping bits and
/// deleting.
fn damage(u: &mut Unstructured<'_>, dir: &Path, last: u64) -> Result<bool> {
    let mut forged = false;
    for _ in 0..u.int_in_range(1..=4u8)? {
        let n = u.int_in_range(0..=last + 1)?;
        let path = dir.join(segment_file(n));
        let Ok(mut bytes) = std::fs::read(&path) else {
            continue;
        };
        let len = bytes.len();
        let at = u.int_in_range(0..=len)?;
        match u.int_in_range(0..=6u8)? {
            0 => bytes.truncate(at),
            1 => {
                let end = (at + u.int_in_range(1..=1024usize)?).min(len);
                bytes[at..end].fill(0);
            }
            2 if at < len => bytes[at] ^= 1 << u.int_in_range(0..=7u8)?,
            3 => {
                io("deleting a segment", std::fs::remove_file(&path));
                continue;
            }
            4 => {
                let junk: &[u8] = u.arbitrary()?;
                let end = (at + junk.len()).min(len);
                bytes.splice(at..end, junk.iter().copied());
                forged = true;
            }
            5 => {
                let other = dir.join(segment_file(u.int_in_range(0..=last + 2)?));
                io("copying a segment", std::fs::write(other, &bytes));
                forged = true;
                continue;
            }
            _ => {
                // A record that was never written, well formed.
                let ops = ops(u)?;
                let lsn = u.int_in_range(0..=64u64)?;
                let mut record = io("encoding a record", encode_record(&ops, lsn));
                seal(&mut record, u.int_in_range(0..=64u64)?);
                let end = (at + record.len()).min(len);
                bytes.splice(at..end, record);
                forged = true;
            }
        }
        io("damaging a segment", std::fs::write(&path, &bytes));
    }
    Ok(forged)
}

/// The records recovered replay: their latest values fold into blocks,
/// as opening the store does.
fn replays(r: &Recovered) {
    thread_local! {
        static TREE: BlockTree = BlockTree::temporary()
            .unwrap_or_else(|e| panic!("a temporary block tree: {e}"));
    }
    let mut latest = BTreeMap::new();
    for op in r.records.iter().flatten() {
        match op {
            LogOp::Put(k, v) => latest.insert(k.clone(), Some(v.clone())),
            LogOp::Del(k) => latest.insert(k.clone(), None),
        };
    }
    let changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = latest.into_iter().collect();
    TREE.with(|t| {
        t.clear().unwrap_or_else(|e| panic!("{e}"));
        t.fold(&changes)
            .unwrap_or_else(|e| panic!("recovered records do not replay: {e}"));
        let want: Vec<(Vec<u8>, Vec<u8>)> = changes
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        assert_eq!(
            t.entries(&[], None),
            Ok(want),
            "replayed records read back wrong"
        );
    });
}

/// Logs of the format before record headers.
fn legacy(u: &mut Unstructured<'_>, dir: &Path) -> Result<()> {
    let files = u.int_in_range(1..=3u64)?;
    let mut all = Vec::new();
    let mut contents = Vec::new();
    for n in 0..files {
        let mut bytes = Vec::new();
        for _ in 0..u.int_in_range(0..=4u8)? {
            let ops = ops(u)?;
            bytes.extend(legacy_record(&ops));
            all.push(ops);
        }
        // The first is the single file of the oldest stores.
        let name = if n == 0 {
            "wal".to_string()
        } else {
            segment_file(n)
        };
        contents.push((dir.join(name), bytes));
    }
    let damaged = u.ratio(1, 2)?;
    if damaged {
        if let Some((_, bytes)) = contents.last_mut() {
            // A torn tail: cut short, or junk after the last record.
            if u.ratio(1, 2)? {
                let at = u.int_in_range(0..=bytes.len())?;
                bytes.truncate(at);
            } else {
                // Its length field says more than a record may hold,
                // so it never reads as one.
                let junk: &[u8] = u.arbitrary()?;
                bytes.extend_from_slice(&[0xff; 4]);
                bytes.extend_from_slice(junk);
            }
        }
    }
    for (path, bytes) in &contents {
        io("writing a legacy segment", std::fs::write(path, bytes));
    }
    match hallsync_store::fuzzing::recover(dir, None, true, false) {
        Ok(r) if damaged => assert!(
            all.starts_with(&r.records),
            "a legacy log with a torn tail recovers records other than a prefix of those written"
        ),
        Ok(r) => assert_eq!(
            r.records, all,
            "an undamaged legacy log recovers other records"
        ),
        Err(e) if damaged => panic!("a legacy log with a torn tail does not open: {e:?}"),
        Err(e) => panic!("an undamaged legacy log does not open: {e:?}"),
    }
    Ok(())
}
