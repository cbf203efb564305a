//! The write-ahead log: the store's atomicity and durability.
//!
//! Each commit appends one record listing the exact key writes and deletes
//! it makes, and is acknowledged once the log is synced (`fdatasync`,
//! shared by concurrent writers: a *flush*). The log is a series of segment
//! files, `wal-<n>`; a checkpoint closes the current segment and opens the
//! next, and once sled holds everything the closed segments describe
//! (applied and flushed, together with the log's *mark*: the first segment
//! still needed and the last record sled holds), they are deleted. On open,
//! the segments left are checked and replayed in order: each operation is a
//! blind put or delete of one key, so replaying over any partly applied
//! state yields exactly the state the log describes.
//!
//! A new segment is, when one is ready, a spare file the checkpoint thread
//! filled with zeros beforehand (`wal.spare`, renamed): records then
//! overwrite blocks the file already has, so each sync writes only them,
//! not the file's size and block map as well. Zeros after the last record
//! are a clean end.
//!
//! Record: a 32-byte header — magic, body length, the record's log sequence
//! number (LSN: 1, 2, … across segments and restarts), the LSN of the first
//! record of the flush that wrote it, the body's CRC, and the header's own
//! CRC — then the postcard `Vec<Op>` body. Two records have LSN 0: every
//! segment starts with a *head* giving the length the file was made
//! (a spare's, or as much again, left sparse), synced before the file takes
//! its name; and a segment that was closed ends with a *trailer* naming the
//! segment after it, written once that one exists.
//!
//! What the headers allow recovery to tell apart:
//! - a gap in the LSNs, a segment the mark or a trailer names that is
//!   missing, a segment without its head or shorter than it was made:
//!   acknowledged writes were lost (a file deleted, truncated or damaged),
//!   not a crash;
//! - damage followed by a record of a *later* flush: the damaged record's
//!   flush had completed (flushes run one at a time), so it was
//!   acknowledged;
//! - damage at the very end: the last flush cut off by a crash is torn,
//!   leaving it short or with 512-byte sectors as they were: zero (the
//!   first may hold the end of an earlier flush before its zeros); a record
//!   that is all there but fails its CRC was damaged after it was written.
//!
//! Writes that were acknowledged and cannot be replayed stop the open, with
//! a message saying which, unless the administrator accepts the loss.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
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

impl Op {
    /// The key the operation writes or deletes.
    pub(crate) fn key(&self) -> &[u8] {
        match self {
            Op::Put(k, _) | Op::Del(k) => k,
        }
    }
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

/// Starts every record. Read as a little-endian length, as builds before
/// record headers read the log, it exceeds [`MAX_RECORD`].
const MAGIC: u32 = 0xE1A7_5A1C;
/// Bytes before a record's body.
pub(crate) const HEADER: usize = 32;
/// The size of the disk sectors a torn write leaves unwritten.
const SECTOR: usize = 512;

/// The log file of stores made before segments (replayed like segment 0).
const LEGACY: &str = "wal";
const SEGMENT_PREFIX: &str = "wal-";
/// A zero-filled file ready to become the next segment, and the name it is
/// filled under.
const SPARE: &str = "wal.spare";
const SPARE_FILLING: &str = "wal.spare.filling";
/// A segment made without a spare, until it has its head and its name.
const MAKING: &str = "wal.new";
/// A segment's head: a header and the length the file was made.
pub(crate) const HEAD: usize = HEADER + 8;

/// Where the log stood at the last checkpoint, kept in sled: the first
/// segment still needed (it exists: it was made before the mark was
/// written), and the last record sled holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) segment: u64,
    pub(crate) lsn: u64,
}

impl Mark {
    pub(crate) fn encode(self) -> [u8; 16] {
        let mut b = [0; 16];
        b[..8].copy_from_slice(&self.segment.to_be_bytes());
        b[8..].copy_from_slice(&self.lsn.to_be_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Mark> {
        Some(Mark {
            segment: u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
            lsn: u64::from_be_bytes(b.get(8..16)?.try_into().ok()?),
        })
        .filter(|_| b.len() == 16)
    }
}

/// What recovery found: the records to replay, and where the log goes on.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Records not yet in sled, oldest first.
    pub(crate) records: Vec<Vec<Op>>,
    /// The highest LSN used so far (new records continue after it).
    pub(crate) last_lsn: u64,
    /// The number the next segment takes.
    pub(crate) next_segment: u64,
    /// What was discarded because the administrator accepted the loss.
    pub(crate) discarded: Option<String>,
}

/// Why the log cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecoverError {
    /// A file could not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Acknowledged writes cannot be replayed.
    #[error("{0}")]
    Lost(String),
}

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

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// A record's header, if the bytes at `pos` hold an intact one.
#[derive(Debug, Clone, Copy)]
struct Header {
    len: usize,
    lsn: u64,
    group: u64,
    body_crc: u32,
}

fn header_at(bytes: &[u8], pos: usize) -> Option<Header> {
    let h = bytes.get(pos..pos.checked_add(HEADER)?)?;
    if u32_at(h, 0) != MAGIC || crc32fast::hash(&h[..28]) != u32_at(h, 28) {
        return None;
    }
    let len = u32_at(h, 4) as usize;
    (len <= MAX_RECORD).then(|| Header {
        len,
        lsn: u64_at(h, 8),
        group: u64_at(h, 16),
        body_crc: u32_at(h, 24),
    })
}

/// One thing found in a segment.
#[derive(Debug)]
pub(crate) enum Piece {
    /// A record: its LSN, the first LSN of its flush, and its operations.
    Record { lsn: u64, group: u64, ops: Vec<Op> },
    /// A segment's first record: the length the file was made.
    Head { size: u64 },
    /// A closed segment's last word: the segment after it exists.
    Trailer { next: u64 },
    /// Bytes that are no record, from `at` for `len` bytes; `torn` when
    /// they look like a write cut off by a crash (short, or with a whole
    /// sector still zero).
    Damaged { at: usize, len: usize, torn: bool },
    /// The segment itself is not as it was made; why.
    Mangled(String),
}

/// A whole intact record at `pos`, and where the next one starts.
fn record_at(bytes: &[u8], pos: usize) -> Option<(Piece, usize)> {
    let h = header_at(bytes, pos)?;
    let body = bytes.get(pos + HEADER..pos + HEADER + h.len)?;
    if crc32fast::hash(body) != h.body_crc {
        return None;
    }
    let piece = if h.lsn == 0 && body.len() == 8 {
        Piece::Head {
            size: u64_at(body, 0),
        }
    } else if h.lsn == 0 {
        Piece::Trailer { next: h.group }
    } else {
        Piece::Record {
            lsn: h.lsn,
            group: h.group,
            ops: postcard::from_bytes(body).ok()?,
        }
    };
    Some((piece, pos + HEADER + h.len))
}

/// Whether `bytes[from..to]` holds what a sector, aligned as on disk, that
/// a crash kept from being written looks like: all zeros, or, for the
/// sector where `from` falls, zeros from `from` on (the bytes before were
/// written by an earlier flush, and kept).
fn has_zero_sector(bytes: &[u8], from: usize, to: usize) -> bool {
    let mut s = from / SECTOR * SECTOR;
    while s + SECTOR <= to {
        if bytes[s.max(from)..s + SECTOR].iter().all(|&b| b == 0) {
            return true;
        }
        s += SECTOR;
    }
    false
}

/// The pieces of one segment, in order.
pub(crate) fn parse_segment(bytes: &[u8]) -> Vec<Piece> {
    // Zeros after the last non-zero byte are the clean end (of a spare).
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let mut pieces = Vec::new();
    let mut pos = 0;
    while pos < end {
        if let Some((piece, next)) = record_at(bytes, pos) {
            pieces.push(piece);
            pos = next;
            continue;
        }
        // Resynchronise on the next intact record, if any.
        let resume = (pos + 1..end)
            .filter(|&p| bytes[p..].starts_with(&MAGIC.to_le_bytes()))
            .find(|&p| record_at(bytes, p).is_some())
            .unwrap_or(end);
        let cut_short = match header_at(bytes, pos) {
            Some(h) => pos + HEADER + h.len > resume,
            None => pos + HEADER > resume,
        };
        pieces.push(Piece::Damaged {
            at: pos,
            len: resume - pos,
            torn: cut_short || has_zero_sector(bytes, pos, resume),
        });
        pos = resume;
    }
    pieces
}

/// The records of a segment written before record headers: `[len u32 LE]
/// [crc32 u32 LE][postcard Vec<Op>]`, a torn tail ending them.
pub(crate) fn parse_legacy(bytes: &[u8], path: &Path) -> (Vec<Vec<Op>>, bool) {
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some(header) = bytes.get(pos..pos + 8) {
        let len = u32_at(header, 0) as usize;
        let crc = u32_at(header, 4);
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
            "a write-ahead log segment of the previous store format ends in an incomplete record; ignoring it"
        );
    }
    (records, clean)
}

fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{number:08}"))
}

pub(crate) fn segment_name(number: u64) -> String {
    format!("{SEGMENT_PREFIX}{number:08}")
}

/// A record with LSN 0 and `body`, `group` naming a segment.
fn meta_record(group: u64, body: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; HEADER];
    r[..4].copy_from_slice(&MAGIC.to_le_bytes());
    r[4..8].copy_from_slice(&(body.len() as u32).to_le_bytes());
    r[16..24].copy_from_slice(&group.to_le_bytes());
    r[24..28].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    let crc = crc32fast::hash(&r[..28]);
    r[28..].copy_from_slice(&crc.to_le_bytes());
    r.extend_from_slice(body);
    r
}

/// The head of a segment made `size` bytes long.
fn head(size: u64) -> Vec<u8> {
    meta_record(0, &size.to_le_bytes())
}

/// Opens segment `number`: the spare, renamed, if there is one, or else a
/// new file made `size` bytes long (sparse). Either way the file has its
/// head, synced, before it takes its name; records follow the head.
fn create_segment(dir: &Path, number: u64, size: usize) -> std::io::Result<Segment> {
    let path = segment_path(dir, number);
    match std::fs::rename(dir.join(SPARE), &path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let making = dir.join(MAKING);
            let mut file = File::create(&making)?;
            file.write_all(&head(size.max(HEAD) as u64))?;
            file.set_len(size.max(HEAD) as u64)?;
            file.sync_all()?;
            std::fs::rename(&making, &path)?;
        }
        Err(e) => return Err(e),
    }
    // The new name must survive a crash before any record in it is
    // acknowledged.
    sync_dir(dir)?;
    let mut file = OpenOptions::new().write(true).open(&path)?;
    file.seek(SeekFrom::Start(HEAD as u64))?;
    Ok(Segment { number, file })
}

/// The advice every refusal ends with.
const WHAT_TO_DO: &str = "Nothing was changed. Restore this data directory from a backup (or, once it can, rebuild the hall from its parent); to open it anyway and lose those writes, run `hallsync repair --accept-log-loss`";

/// Checks the records found against the mark and each other, and returns
/// the ones to replay (see the module documentation for the rules).
struct Checker {
    mark: Option<Mark>,
    /// The LSN the next record must have (`None`: not known yet).
    expect: Option<u64>,
    /// Where a torn last flush began, if one did: nothing from there on is
    /// replayed, and no record of a later flush may follow.
    cut: Option<(u64, String)>,
    records: Vec<Vec<Op>>,
    last_lsn: u64,
}

impl Checker {
    fn record(&mut self, lsn: u64, group: u64, ops: Vec<Op>, place: &str) -> Result<(), String> {
        self.last_lsn = self.last_lsn.max(lsn);
        if let Some((missing, _)) = &self.cut {
            if group > *missing {
                return Err(format!(
                    "record {missing} cannot be read, and record {lsn} ({place}) was written by a later flush, so record {missing} had been acknowledged"
                ));
            }
            return Ok(());
        }
        if self.mark.is_some_and(|m| lsn <= m.lsn) {
            // Already in sled (a segment the last checkpoint did not get
            // to delete).
            return Ok(());
        }
        let expect = *self.expect.get_or_insert(lsn);
        if lsn < expect {
            return Err(format!(
                "record {lsn} ({place}) comes after record {}: the segments are out of order",
                expect - 1
            ));
        }
        if lsn > expect {
            if group > expect {
                return Err(format!(
                    "records {expect} to {} are missing before record {lsn} ({place}), which a later flush wrote",
                    lsn - 1
                ));
            }
            // The record is of the flush that held the missing one: that
            // flush may have been cut off, if nothing later follows.
            self.cut = Some((expect, format!("records from {expect} on")));
            return Ok(());
        }
        self.expect = Some(lsn + 1);
        self.records.push(ops);
        Ok(())
    }

    fn damaged(&mut self, torn: bool, last: bool, place: String) -> Result<(), String> {
        if self.cut.is_some() {
            return Ok(());
        }
        if !torn {
            return Err(format!(
                "{place} hold no readable record, and not what a crash leaves (a write cut short, or whole sectors still zero): they were damaged after they were written"
            ));
        }
        // Whether a record was lost there is decided by what follows (the
        // next record must continue the numbers, or belong to the same
        // flush); at the very end it is the last flush, cut off.
        if last {
            let next = self.expect.unwrap_or(self.mark.map_or(1, |m| m.lsn + 1));
            self.cut = Some((next, place));
        }
        Ok(())
    }
}

impl Wal {
    /// Checks and reads the log in `dir` (`legacy`: segments of the store
    /// format before record headers; `mark`: where the last checkpoint left
    /// it). Records lost to a crash before they were acknowledged are
    /// dropped with a warning; acknowledged ones that cannot be replayed
    /// stop recovery, unless `accept_loss`, when everything from the first
    /// of them on is dropped and said so. Nothing is written here; once the
    /// caller has made the records durable elsewhere, [`Wal::start`] and
    /// [`Wal::remove_before`] replace the log.
    pub(crate) fn recover(
        dir: &Path,
        mark: Option<Mark>,
        legacy: bool,
        accept_loss: bool,
    ) -> Result<Recovered, RecoverError> {
        let found = segments(dir)?;
        let next_segment = found
            .last()
            .map_or(1, |(n, _)| n + 1)
            .max(mark.map_or(0, |m| m.segment + 1));
        if legacy {
            let mut records = Vec::new();
            for (i, (_, path)) in found.iter().enumerate() {
                let (mut recs, clean) = parse_legacy(&read(path)?, path);
                records.append(&mut recs);
                if !clean && i + 1 < found.len() {
                    return Err(RecoverError::Lost(format!(
                        "the write-ahead log segment {} is damaged before its end, and later segments exist, so acknowledged writes after the damage would be lost. {WHAT_TO_DO}",
                        path.display()
                    )));
                }
            }
            return Ok(Recovered {
                records,
                last_lsn: 0,
                next_segment,
                discarded: None,
            });
        }
        let mut checker = Checker {
            mark,
            expect: mark.map(|m| m.lsn + 1),
            cut: None,
            records: Vec::new(),
            last_lsn: mark.map_or(0, |m| m.lsn),
        };
        let refuse = |why: String| {
            if accept_loss {
                Ok(why)
            } else {
                Err(RecoverError::Lost(format!(
                    "the write-ahead log in {} is damaged: {why}. Acknowledged writes would be lost. {WHAT_TO_DO}",
                    dir.display()
                )))
            }
        };
        let mut problem: Option<String> = None;
        if let Some(m) = mark {
            if !found.iter().any(|(n, _)| *n == m.segment) {
                let why = if found.iter().any(|(n, _)| *n > m.segment) {
                    format!(
                        "the database (sled) is older than the log: its mark names segment {}, which a later checkpoint deleted once sled had confirmed what it held, so sled has lost writes (its files were damaged or replaced)",
                        segment_name(m.segment)
                    )
                } else {
                    format!(
                        "segment {} is missing (the last checkpoint left the writes after record {} in it)",
                        segment_name(m.segment),
                        m.lsn
                    )
                };
                problem = Some(refuse(why)?);
            }
        }
        let needed = found
            .iter()
            .filter(|(n, _)| mark.is_none_or(|m| *n >= m.segment));
        let mut pieces = Vec::new();
        for (n, path) in needed {
            let bytes = read(path)?;
            let mut found = parse_segment(&bytes).into_iter();
            match found.next() {
                Some(Piece::Head { size }) => {
                    pieces.extend(found.map(|p| (*n, p)));
                    if (bytes.len() as u64) < size {
                        pieces.push((
                            *n,
                            Piece::Mangled(format!(
                                "segment {} is {} bytes, shorter than the {size} it was made: it was truncated",
                                segment_name(*n),
                                bytes.len()
                            )),
                        ));
                    }
                }
                _ => pieces.push((
                    *n,
                    Piece::Mangled(format!(
                        "segment {} has lost its beginning (it was truncated or overwritten)",
                        segment_name(*n)
                    )),
                )),
            }
        }
        let last_data = pieces
            .iter()
            .rposition(|(_, p)| matches!(p, Piece::Record { .. }));
        for (i, (n, piece)) in pieces.into_iter().enumerate() {
            if problem.is_some() {
                // Discarded; new records are numbered after it all the same.
                if let Piece::Record { lsn, .. } = piece {
                    checker.last_lsn = checker.last_lsn.max(lsn);
                }
                continue;
            }
            let checked = match piece {
                Piece::Record { lsn, group, ops } => {
                    checker.record(lsn, group, ops, &segment_name(n))
                }
                Piece::Head { .. } => Err(format!(
                    "segment {} holds a second head: it was overwritten",
                    segment_name(n)
                )),
                Piece::Mangled(why) => Err(why),
                Piece::Trailer { next } if found.iter().any(|(s, _)| *s == next) => Ok(()),
                Piece::Trailer { next } => Err(format!(
                    "segment {} is missing ({} was closed with it as the next)",
                    segment_name(next),
                    segment_name(n)
                )),
                Piece::Damaged { at, len, torn } => checker.damaged(
                    torn,
                    last_data.is_none_or(|l| i > l),
                    format!("{len} bytes at offset {at} of {}", segment_name(n)),
                ),
            };
            if let Err(why) = checked {
                problem = Some(refuse(why)?);
            }
        }
        let discarded = match (problem, checker.cut.take()) {
            (Some(why), _) => {
                tracing::error!(
                    "the write-ahead log is damaged ({why}); the administrator accepted the loss: replaying the {} records before the damage and discarding the rest",
                    checker.records.len()
                );
                Some(why)
            }
            (None, Some((_, place))) => {
                tracing::warn!(at = %place, "the last write before the stop was cut off before it was acknowledged; discarding it");
                None
            }
            (None, None) => None,
        };
        Ok(Recovered {
            records: checker.records,
            last_lsn: checker.last_lsn,
            next_segment,
            discarded,
        })
    }

    /// Starts the log at a new, empty segment `number` (the segments before
    /// it stay until [`Wal::remove_before`]). Spare segments made later are
    /// `spare_bytes` long.
    pub(crate) fn start(dir: &Path, number: u64, spare_bytes: usize) -> std::io::Result<Wal> {
        match std::fs::remove_file(dir.join(SPARE_FILLING)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        match std::fs::remove_file(dir.join(MAKING)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let current = create_segment(dir, number, spare_bytes)?;
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
        let size = self.spare_bytes.max(HEAD);
        file.write_all(&head(size as u64))?;
        let zeros = vec![0u8; 64 << 10];
        let mut left = size - HEAD;
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

    /// Encodes one commit's operations as log record `lsn`, with where each
    /// operation's key and value lie in it (so the memtable can keep the
    /// record instead of copying every value). The body is the postcard
    /// encoding of `ops`, written out by hand to learn those places. The
    /// flush that writes the record completes its header.
    pub(crate) fn record(ops: &[Op], lsn: u64) -> std::io::Result<(Vec<u8>, Vec<Span>)> {
        let size: usize = ops
            .iter()
            .map(|op| match op {
                Op::Put(k, v) => k.len() + v.len() + 21,
                Op::Del(k) => k.len() + 11,
            })
            .sum();
        let mut rec = Vec::with_capacity(size + HEADER + 10);
        rec.extend_from_slice(&[0; HEADER]);
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
        let body = rec.get(HEADER..).unwrap_or_default();
        let len = u32::try_from(body.len())
            .ok()
            .filter(|&l| l as usize <= MAX_RECORD)
            .ok_or_else(|| std::io::Error::other("a commit too large for one log record"))?;
        let crc = crc32fast::hash(body);
        rec[..4].copy_from_slice(&MAGIC.to_le_bytes());
        rec[4..8].copy_from_slice(&len.to_le_bytes());
        rec[8..16].copy_from_slice(&lsn.to_le_bytes());
        rec[24..28].copy_from_slice(&crc.to_le_bytes());
        Ok((rec, spans))
    }

    /// Completes the headers of the records one flush writes: each names
    /// the flush's first record.
    fn seal(records: &mut [u8]) {
        let first = u64_at(records, 8);
        let mut pos = 0;
        while pos + HEADER <= records.len() {
            let len = u32_at(records, pos + 4) as usize;
            records[pos + 16..pos + 24].copy_from_slice(&first.to_le_bytes());
            let crc = crc32fast::hash(&records[pos..pos + 28]);
            records[pos + 28..pos + 32].copy_from_slice(&crc.to_le_bytes());
            pos += HEADER + len;
        }
    }

    /// Appends one flush's records to the current segment and syncs it.
    /// Callers serialise writes (the group commit's flush leader).
    pub(crate) fn write(&self, records: &mut [u8]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        Self::seal(records);
        let current = self.current();
        (&current.file).write_all(records)?;
        current.file.sync_data()?;
        Ok(())
    }

    /// Appends one flush's records to the current segment and syncs it,
    /// opens the next segment, then closes the first with a trailer naming
    /// it; returns the closed segment's number. Callers serialise this with
    /// [`Wal::write`].
    pub(crate) fn write_and_rotate(&self, records: &mut [u8]) -> std::io::Result<u64> {
        let mut current = self.current();
        if !records.is_empty() {
            Self::seal(records);
            (&current.file).write_all(records)?;
            current.file.sync_data()?;
        }
        let next = create_segment(&self.dir, current.number + 1, self.spare_bytes)?;
        (&current.file).write_all(&meta_record(next.number, &[]))?;
        current.file.sync_data()?;
        let closed = std::mem::replace(&mut *current, next).number;
        Ok(closed)
    }

    /// Deletes the segments before `number`, whose records sled now holds
    /// durably (and the mark says so).
    pub(crate) fn remove_before(&self, number: u64) -> std::io::Result<()> {
        for (n, path) in segments(&self.dir)? {
            if n < number {
                std::fs::remove_file(path)?;
            }
        }
        // Durably gone before a later segment can be: an old segment
        // reappearing after a crash would replay stale values.
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests;
