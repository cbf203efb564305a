//! The write-ahead log: the store's atomicity and durability.
//!
//! Each commit appends one record listing the exact key writes and deletes
//! it makes, and is acknowledged once the log is synced (`fdatasync`,
//! shared by concurrent writers). The log is a series of segment files,
//! `wal-<n>`; a checkpoint closes the current segment (syncing it first) and
//! opens the next, and once sled holds everything the closed segments
//! describe (applied and flushed), they are deleted. On open, the segments
//! left are replayed in order: each operation is a blind put or delete of
//! one key, so replaying over any partly applied state yields exactly the
//! state the log describes.
//!
//! A new segment is, when one is ready, a spare file the checkpoint thread
//! filled with zeros beforehand (`wal.spare`, renamed): records then
//! overwrite blocks the file already has, so each sync writes only them,
//! not the file's size and block map as well. Zeros after the last record
//! are a clean end.
//!
//! Record: `[len u32 LE][crc32 u32 LE][postcard Vec<Op>]`. A torn or
//! damaged tail of the last segment (a record whose sync never completed, so
//! never acknowledged) ends the replay. A damaged record in an earlier
//! segment cannot come from a crash (a segment is synced whole before the
//! next is opened) and is reported instead of skipped, since the records
//! after it would be replayed without it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One key operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Op {
    /// Set a key.
    Put(Vec<u8>, Vec<u8>),
    /// Delete a key.
    Del(Vec<u8>),
}

/// Where one operation's key and value (`None`: a delete) lie in its
/// encoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) key: Range<usize>,
    pub(crate) value: Option<Range<usize>>,
}

/// Appends `n` as a postcard varint (LEB128).
fn varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Largest record accepted when replaying (a commit of many documents).
const MAX_RECORD: usize = 256 << 20;

/// The log file of stores made before segments (replayed like segment 0).
const LEGACY: &str = "wal";
const SEGMENT_PREFIX: &str = "wal-";
/// A zero-filled file ready to become the next segment, and the name it is
/// filled under.
const SPARE: &str = "wal.spare";
const SPARE_FILLING: &str = "wal.spare.filling";

/// A segment being appended to.
#[derive(Debug)]
struct Segment {
    number: u64,
    file: File,
}

#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    current: Mutex<Segment>,
    /// Size of a spare segment (0: none are made).
    spare_bytes: usize,
}

/// The segments found in `dir`, oldest first.
fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = if name == LEGACY {
            Some(0)
        } else {
            name.strip_prefix(SEGMENT_PREFIX)
                .and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(n) = number {
            found.push((n, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The records of one segment, and whether it ended cleanly.
fn read_segment(path: &Path) -> std::io::Result<(Vec<Vec<Op>>, bool)> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some(header) = bytes.get(pos..pos + 8) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(body) = bytes
            .get(pos + 8..pos + 8 + len)
            .filter(|_| len <= MAX_RECORD)
        else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        match postcard::from_bytes::<Vec<Op>>(body) {
            Ok(ops) => records.push(ops),
            Err(_) => break,
        }
        pos += 8 + len;
    }
    let clean = bytes[pos..].iter().all(|&b| b == 0);
    if !clean {
        tracing::warn!(
            segment = %path.display(),
            kept = pos,
            dropped = bytes.len() - pos,
            "a write-ahead log segment ends in an incomplete record (a write cut off before it was acknowledged); ignoring it"
        );
    }
    Ok((records, clean))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{number:08}"))
}

/// Opens segment `number`: the spare, renamed, if there is one, or else a
/// new empty file. Records are written from the start of the file on.
fn create_segment(dir: &Path, number: u64) -> std::io::Result<Segment> {
    let path = segment_path(dir, number);
    let file = match std::fs::rename(dir.join(SPARE), &path) {
        Ok(()) => OpenOptions::new().write(true).open(&path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?,
        Err(e) => return Err(e),
    };
    // The new name must survive a crash before any record in it is
    // acknowledged.
    sync_dir(dir)?;
    Ok(Segment { number, file })
}

impl Wal {
    /// The records of the log in `dir`, oldest first. Once the caller has
    /// made them durable elsewhere, [`Wal::start`] deletes them.
    pub(crate) fn recover(dir: &Path) -> std::io::Result<Vec<Vec<Op>>> {
        let found = segments(dir)?;
        let mut records = Vec::new();
        for (i, (_, path)) in found.iter().enumerate() {
            let (mut recs, clean) = read_segment(path)?;
            records.append(&mut recs);
            if !clean && i + 1 < found.len() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "write-ahead log segment {} is damaged before its end, and later segments exist",
                        path.display()
                    ),
                ));
            }
        }
        Ok(records)
    }

    /// Deletes every segment in `dir` (their records are all durable in
    /// sled) and starts an empty one. Spare segments made later are
    /// `spare_bytes` long.
    pub(crate) fn start(dir: &Path, spare_bytes: usize) -> std::io::Result<Wal> {
        let found = segments(dir)?;
        let next = found.last().map_or(1, |(n, _)| n + 1);
        for (_, path) in &found {
            std::fs::remove_file(path)?;
        }
        match std::fs::remove_file(dir.join(SPARE_FILLING)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let current = create_segment(dir, next)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            current: Mutex::new(current),
            spare_bytes,
        })
    }

    /// Makes the spare segment the next rotation takes, if there is none:
    /// zeros written (not just allocated) and synced, then renamed into
    /// place. Run off the write path (by the checkpoint thread).
    pub(crate) fn prepare_spare(&self) -> std::io::Result<()> {
        if self.spare_bytes == 0 || self.dir.join(SPARE).exists() {
            return Ok(());
        }
        let filling = self.dir.join(SPARE_FILLING);
        let mut file = File::create(&filling)?;
        let zeros = vec![0u8; 64 << 10];
        let mut left = self.spare_bytes;
        while left > 0 {
            let n = left.min(zeros.len());
            file.write_all(&zeros[..n])?;
            left -= n;
        }
        file.sync_all()?;
        std::fs::rename(filling, self.dir.join(SPARE))
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Segment> {
        // Only swapped whole under the lock: never half-written.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Encodes one commit's operations as a log record, with where each
    /// operation's key and value lie in it (so the memtable can keep the
    /// record instead of copying every value). The body is the postcard
    /// encoding of `ops`, written out by hand to learn those places.
    pub(crate) fn record(ops: &[Op]) -> std::io::Result<(Vec<u8>, Vec<Span>)> {
        let size: usize = ops
            .iter()
            .map(|op| match op {
                Op::Put(k, v) => k.len() + v.len() + 21,
                Op::Del(k) => k.len() + 11,
            })
            .sum();
        let mut rec = Vec::with_capacity(size + 18);
        rec.extend_from_slice(&[0; 8]);
        let mut spans = Vec::with_capacity(ops.len());
        varint(&mut rec, ops.len());
        fn bytes(rec: &mut Vec<u8>, b: &[u8]) -> Range<usize> {
            varint(rec, b.len());
            rec.extend_from_slice(b);
            rec.len() - b.len()..rec.len()
        }
        for op in ops {
            spans.push(match op {
                Op::Put(k, v) => {
                    varint(&mut rec, 0);
                    let key = bytes(&mut rec, k);
                    let value = Some(bytes(&mut rec, v));
                    Span { key, value }
                }
                Op::Del(k) => {
                    varint(&mut rec, 1);
                    Span {
                        key: bytes(&mut rec, k),
                        value: None,
                    }
                }
            });
        }
        let body = rec.get(8..).unwrap_or_default();
        let len = u32::try_from(body.len()).map_err(std::io::Error::other)?;
        let crc = crc32fast::hash(body);
        rec[..4].copy_from_slice(&len.to_le_bytes());
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
        Ok((rec, spans))
    }

    /// Appends records to the current segment and syncs it. Callers
    /// serialise writes (the group commit's flush leader).
    pub(crate) fn write(&self, records: &[u8]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let current = self.current();
        (&current.file).write_all(records)?;
        current.file.sync_data()?;
        Ok(())
    }

    /// Appends records to the current segment, syncs and closes it, and
    /// opens the next; returns the closed segment's number. Callers
    /// serialise this with [`Wal::write`].
    pub(crate) fn write_and_rotate(&self, records: &[u8]) -> std::io::Result<u64> {
        let mut current = self.current();
        (&current.file).write_all(records)?;
        current.file.sync_data()?;
        let next = create_segment(&self.dir, current.number + 1)?;
        let closed = std::mem::replace(&mut *current, next).number;
        Ok(closed)
    }

    /// Deletes the closed segments up to `number`, whose records sled now
    /// holds durably.
    pub(crate) fn remove_upto(&self, number: u64) -> std::io::Result<()> {
        for (n, path) in segments(&self.dir)? {
            if n <= number {
                std::fs::remove_file(path)?;
            }
        }
        // Durably gone before a later segment can be: an old segment
        // reappearing after a crash would replay stale values.
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, len: usize) -> Op {
        Op::Put(k.as_bytes().to_vec(), vec![7; len])
    }

    #[test]
    fn records_survive_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Wal::recover(dir.path()).unwrap().is_empty());
        {
            let wal = Wal::start(dir.path(), 0).unwrap();
            let mut records = Wal::record(&[put("a", 1)]).unwrap().0;
            records.extend(
                Wal::record(&[Op::Del(b"a".to_vec()), put("b", 300)])
                    .unwrap()
                    .0,
            );
            wal.write(&records).unwrap();
        }
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let full = std::fs::read(&path).unwrap();
        let first = 8 + u32::from_le_bytes(full[..4].try_into().unwrap()) as usize;
        for cut in [full.len() - 1, full.len() - 200, first + 3] {
            std::fs::write(&path, &full[..cut]).unwrap();
            assert_eq!(Wal::recover(dir.path()).unwrap().len(), 1, "cut at {cut}");
        }
        let mut flipped = full.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(Wal::recover(dir.path()).unwrap().len(), 1);
        std::fs::write(&path, &full).unwrap();
        assert_eq!(Wal::recover(dir.path()).unwrap().len(), 2);
        Wal::start(dir.path(), 0).unwrap();
        assert!(Wal::recover(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn segments_replay_in_order_and_closed_ones_can_be_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEGACY), []).unwrap();
        let wal = Wal::start(dir.path(), 0).unwrap();
        assert!(!dir.path().join(LEGACY).exists());
        let first = wal
            .write_and_rotate(&Wal::record(&[put("a", 1)]).unwrap().0)
            .unwrap();
        wal.write(&Wal::record(&[put("b", 1)]).unwrap().0).unwrap();
        let keys = |recs: Vec<Vec<Op>>| -> Vec<Vec<u8>> {
            recs.into_iter()
                .flatten()
                .map(|op| match op {
                    Op::Put(k, _) | Op::Del(k) => k,
                })
                .collect()
        };
        assert_eq!(
            keys(Wal::recover(dir.path()).unwrap()),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        wal.remove_upto(first).unwrap();
        assert_eq!(keys(Wal::recover(dir.path()).unwrap()), vec![b"b".to_vec()]);
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
        let (rec, spans) = Wal::record(&ops).unwrap();
        assert_eq!(rec[8..], postcard::to_allocvec(&ops).unwrap()[..]);
        let len = u32::from_le_bytes(rec[..4].try_into().unwrap()) as usize;
        assert_eq!(len, rec.len() - 8);
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
        assert!(Wal::record(&[]).unwrap().1.is_empty());
    }

    #[test]
    fn a_spare_becomes_the_next_segment_and_its_zeros_are_a_clean_end() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::start(dir.path(), 4096).unwrap();
        wal.prepare_spare().unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join(SPARE)).unwrap().len(),
            4096
        );
        let first = wal
            .write_and_rotate(&Wal::record(&[put("a", 10)]).unwrap().0)
            .unwrap();
        // The rotation took the spare: the new segment is zeros so far.
        assert!(!dir.path().join(SPARE).exists());
        let (_, second) = segments(dir.path()).unwrap().pop().unwrap();
        assert_eq!(std::fs::metadata(&second).unwrap().len(), 4096);
        wal.write(&Wal::record(&[put("b", 20)]).unwrap().0).unwrap();
        wal.write(&Wal::record(&[put("c", 30)]).unwrap().0).unwrap();
        // Records overwrite the zeros from the start, in order.
        wal.prepare_spare().unwrap();
        wal.write_and_rotate(&Wal::record(&[put("d", 1)]).unwrap().0)
            .unwrap();
        wal.write(&Wal::record(&[put("e", 1)]).unwrap().0).unwrap();
        let replayed: Vec<Vec<u8>> = Wal::recover(dir.path())
            .unwrap()
            .into_iter()
            .flatten()
            .map(|op| match op {
                Op::Put(k, _) | Op::Del(k) => k,
            })
            .collect();
        assert_eq!(replayed, [b"a", b"b", b"c", b"d", b"e"].map(|k| k.to_vec()));
        assert!(
            read_segment(&second).unwrap().1,
            "zeros end a segment cleanly"
        );
        // A record torn in the zeros of the last segment is ignored, and
        // the one before it kept.
        let (_, last) = segments(dir.path()).unwrap().pop().unwrap();
        let mut bytes = std::fs::read(&last).unwrap();
        let end = 8 + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        bytes[end..end + 3].copy_from_slice(&[40, 0, 0]);
        std::fs::write(&last, &bytes).unwrap();
        assert_eq!(Wal::recover(dir.path()).unwrap().len(), 5);
        // ... but not in a segment that was closed.
        let mut bytes = std::fs::read(&second).unwrap();
        bytes[4000] = 1;
        std::fs::write(&second, &bytes).unwrap();
        assert!(Wal::recover(dir.path()).is_err());
        wal.remove_upto(first).unwrap();
    }

    #[test]
    fn a_spare_half_filled_when_the_power_went_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SPARE_FILLING), [0u8; 100]).unwrap();
        let wal = Wal::start(dir.path(), 4096).unwrap();
        assert!(!dir.path().join(SPARE_FILLING).exists());
        wal.write(&Wal::record(&[put("a", 1)]).unwrap().0).unwrap();
        assert_eq!(Wal::recover(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn damage_inside_an_earlier_segment_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::start(dir.path(), 0).unwrap();
        let mut records = Wal::record(&[put("a", 40)]).unwrap().0;
        records.extend(Wal::record(&[put("b", 40)]).unwrap().0);
        wal.write_and_rotate(&records).unwrap();
        wal.write(&Wal::record(&[put("c", 1)]).unwrap().0).unwrap();
        let (_, path) = segments(dir.path()).unwrap().remove(0);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = Wal::recover(dir.path()).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}
