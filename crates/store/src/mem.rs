//! The memtable: what commits since the last checkpoint wrote, in front of
//! sled.
//!
//! A commit puts its operations here (after logging them); sled receives
//! them only at a checkpoint, and then only each key's latest value, so a
//! value rewritten many times between checkpoints (a document's head, a
//! chunk later compacted away) costs sled one write or none. A checkpoint
//! first *freezes* the active table (new commits go to a fresh one), then
//! applies the frozen table to sled and flushes it, and only then forgets
//! it; readers look in the active table, then the frozen one, then sled, so
//! every key is always found in at least one of them.
//!
//! Invariant: a frozen table is dropped only after sled holds all of it.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, Range};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sled::IVec;

use crate::packed::{BlockError, Blocks, Entries, Reader};
use crate::wal::Span;

/// Bytes inside a commit's log record, which the memtable keeps whole: one
/// allocation per commit rather than one per key and value.
#[derive(Debug, Clone)]
pub(crate) struct Val {
    record: Arc<[u8]>,
    start: u32,
    end: u32,
}

impl Val {
    fn new(record: &Arc<[u8]>, at: &Range<usize>) -> Val {
        // Records are at most 4 GiB (their length is a u32).
        Val {
            record: Arc::clone(record),
            start: at.start as u32,
            end: at.end as u32,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        self.record
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

impl Borrow<[u8]> for Val {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Val {
    fn eq(&self, other: &Val) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Val {}

impl PartialOrd for Val {
    fn partial_cmp(&self, other: &Val) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Val {
    fn cmp(&self, other: &Val) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

/// Key → new value, or `None` for a deletion.
pub(crate) type Table = BTreeMap<Val, Option<Val>>;

/// Rough bookkeeping cost of one entry beyond its record's bytes.
const ENTRY_OVERHEAD: usize = 96;

/// Overlay entries read per refill of a scan.
const SCAN_CHUNK: usize = 256;

#[derive(Debug, Default)]
struct Tables {
    active: Table,
    active_bytes: usize,
    frozen: Option<Arc<Table>>,
}

#[derive(Debug, Default)]
pub(crate) struct Mem {
    tables: RwLock<Tables>,
}

impl Mem {
    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        // Every update is a single map operation: a panic cannot leave the
        // tables half-changed.
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a commit's operations: its log record and where each
    /// operation lies in it.
    pub(crate) fn apply(&self, record: &Arc<[u8]>, spans: &[Span]) {
        let mut t = self.write();
        t.active_bytes += record.len() + spans.len() * ENTRY_OVERHEAD;
        for span in spans {
            let value = span.value.as_ref().map(|v| Val::new(record, v));
            t.active.insert(Val::new(record, &span.key), value);
        }
    }

    /// Approximate memory held by the active table.
    pub(crate) fn active_bytes(&self) -> usize {
        self.read().active_bytes
    }

    /// Moves the active table aside for a checkpoint and returns it, or
    /// `None` when there is nothing to move or a frozen table is still
    /// being written.
    pub(crate) fn freeze(&self) -> Option<Arc<Table>> {
        let mut t = self.write();
        if t.frozen.is_some() || t.active.is_empty() {
            return None;
        }
        let frozen = Arc::new(std::mem::take(&mut t.active));
        t.active_bytes = 0;
        t.frozen = Some(Arc::clone(&frozen));
        Some(frozen)
    }

    /// Forgets the frozen table; sled now holds it.
    pub(crate) fn drop_frozen(&self) {
        self.write().frozen = None;
    }

    /// A key's value in the memtable (`Some(None)`: deleted there), if it
    /// holds the key.
    fn held(&self, key: &[u8]) -> Option<Option<IVec>> {
        let t = self.read();
        let v = t
            .active
            .get(key)
            .or_else(|| t.frozen.as_ref().and_then(|f| f.get(key)))?;
        Some(v.as_ref().map(|v| IVec::from(v.as_slice())))
    }

    /// A key's current value.
    pub(crate) fn get(&self, blocks: &Blocks, key: &[u8]) -> Result<Option<IVec>, BlockError> {
        match self.held(key) {
            Some(v) => Ok(v),
            None => Ok(blocks.get(key)?.map(IVec::from)),
        }
    }

    /// A key's current value, read through `reader` when the memtable
    /// does not hold it (see [`Reader`]).
    pub(crate) fn get_with(
        &self,
        reader: &mut Reader<'_>,
        key: &[u8],
    ) -> Result<Option<IVec>, BlockError> {
        match self.held(key) {
            Some(v) => Ok(v),
            None => reader.get(key),
        }
    }

    /// The entries in `[from, to)` (`to`: `None` for no end), in key order.
    pub(crate) fn range<'a>(
        &'a self,
        blocks: &'a Blocks,
        from: Vec<u8>,
        to: Option<Vec<u8>>,
    ) -> Scan<'a> {
        let mut buf = VecDeque::new();
        let mut next_from = Bound::Included(from.clone());
        // The overlay is read before sled: a key a checkpoint moves to sled
        // meanwhile is then seen in one or the other.
        let mem_done = self.refill(&mut buf, &mut next_from, to.as_deref());
        let disk = blocks.entries(from, to.clone());
        Scan {
            mem: self,
            disk: disk.peekable(),
            buf,
            next_from,
            to,
            mem_done,
        }
    }

    /// Reads the next overlay entries (active over frozen) from `next_from`
    /// into `buf`, moving `next_from` past them; returns whether the
    /// overlay has no more.
    fn refill(
        &self,
        buf: &mut VecDeque<(Val, Option<Val>)>,
        next_from: &mut Bound<Vec<u8>>,
        to: Option<&[u8]>,
    ) -> bool {
        let t = self.read();
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        let lower = match &*next_from {
            Bound::Included(k) => Bound::Included(k.as_slice()),
            Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let range = (lower, upper);
        let mut active = t.active.range::<[u8], _>(range).take(SCAN_CHUNK).peekable();
        let mut frozen = t
            .frozen
            .iter()
            .flat_map(|f| f.range::<[u8], _>(range).take(SCAN_CHUNK))
            .peekable();
        let mut taken = 0;
        while taken < SCAN_CHUNK {
            let pick = match (active.peek(), frozen.peek()) {
                (None, None) => break,
                (Some(_), None) => active.next(),
                (None, Some(_)) => frozen.next(),
                (Some((a, _)), Some((f, _))) => match a.cmp(f) {
                    Ordering::Less => active.next(),
                    Ordering::Greater => frozen.next(),
                    Ordering::Equal => {
                        frozen.next();
                        active.next()
                    }
                },
            };
            if let Some((k, v)) = pick {
                buf.push_back((k.clone(), v.clone()));
                taken += 1;
            }
        }
        if let Some((k, _)) = buf.back() {
            *next_from = Bound::Excluded(k.as_slice().to_vec());
        }
        taken < SCAN_CHUNK
    }

    /// The entries whose key starts with `prefix`, in key order.
    pub(crate) fn prefix<'a>(&'a self, blocks: &'a Blocks, prefix: &[u8]) -> Scan<'a> {
        self.range(blocks, prefix.to_vec(), prefix_end(prefix))
    }
}

/// The first key after every key starting with `prefix` (`None`: no such
/// key, the prefix is all 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A scan merging the overlay with sled (overlay entries win; deletions
/// hide sled's value). Like sled's own iterators it is not a snapshot.
pub(crate) struct Scan<'a> {
    mem: &'a Mem,
    disk: std::iter::Peekable<Entries<'a>>,
    buf: VecDeque<(Val, Option<Val>)>,
    next_from: Bound<Vec<u8>>,
    to: Option<Vec<u8>>,
    mem_done: bool,
}

impl Iterator for Scan<'_> {
    type Item = Result<(IVec, IVec), BlockError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.buf.is_empty() && !self.mem_done {
                self.mem_done =
                    self.mem
                        .refill(&mut self.buf, &mut self.next_from, self.to.as_deref());
            }
            let order = match (self.buf.front(), self.disk.peek()) {
                (None, None) => return None,
                (_, Some(Err(_))) => return self.disk.next(),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((m, _)), Some(Ok((d, _)))) => m.as_slice().cmp(d.as_ref()),
            };
            if order != Ordering::Less {
                let from_disk = self.disk.next();
                if order == Ordering::Greater {
                    return from_disk;
                }
            }
            if let Some((k, Some(v))) = self.buf.pop_front() {
                return Some(Ok((IVec::from(k.as_slice()), IVec::from(v.as_slice()))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::{Op, Wal};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn collect(scan: Scan<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
        scan.map(|kv| {
            let (k, v) = kv.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
    }

    /// Random writes, freezes and checkpoints (some interrupted halfway,
    /// as a frozen table part-written to sled) agree with a plain map at
    /// every step, for point reads and for scans across refill boundaries.
    #[test]
    fn reads_always_see_the_latest_writes() {
        for seed in 0..8 {
            let mut rng = StdRng::seed_from_u64(seed);
            let db = sled::Config::new().temporary(true).open().unwrap();
            let tree = Blocks::new(db.open_tree("t").unwrap());
            let mem = Mem::default();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut pending: Option<(Arc<Table>, usize)> = None;
            for step in 0..3_000 {
                match rng.random_range(0..100) {
                    0..=69 => {
                        let mut ops = Vec::new();
                        for _ in 0..rng.random_range(1..6) {
                            let k = vec![b"ab"[rng.random_range(0..2)], rng.random_range(0..=255)];
                            if rng.random_bool(0.25) {
                                model.remove(&k);
                                ops.push(Op::Del(k));
                            } else {
                                let v = vec![step as u8; rng.random_range(0..40)];
                                model.insert(k.clone(), v.clone());
                                ops.push(Op::Put(k, v));
                            }
                        }
                        let (record, spans) = Wal::record(&ops, 1).unwrap();
                        mem.apply(&Arc::from(record), &spans);
                    }
                    70..=79 if pending.is_none() => {
                        pending = mem.freeze().map(|t| (t, 0));
                    }
                    80..=89 => {
                        // Write part of the frozen table to sled.
                        if let Some((t, done)) = pending.as_mut() {
                            let n = rng.random_range(0..=t.len() - *done);
                            let part = t.iter().skip(*done).take(n);
                            tree.fold(
                                part.map(|(k, v)| (k.as_slice(), v.as_ref().map(Val::as_slice))),
                            )
                            .unwrap();
                            *done += n;
                            if *done == t.len() {
                                mem.drop_frozen();
                                pending = None;
                            }
                        }
                    }
                    _ => {}
                }
                let k = vec![b"ab"[rng.random_range(0..2)], rng.random_range(0..=255)];
                assert_eq!(
                    mem.get(&tree, &k).unwrap().map(|v| v.to_vec()),
                    model.get(&k).cloned(),
                    "seed {seed} step {step}"
                );
                if step % 97 == 0 {
                    let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    assert_eq!(collect(mem.range(&tree, Vec::new(), None)), want);
                    let want_b: Vec<_> =
                        want.iter().filter(|(k, _)| k[0] == b'b').cloned().collect();
                    assert_eq!(collect(mem.prefix(&tree, b"b")), want_b);
                    let want_mid: Vec<_> = want
                        .iter()
                        .filter(|(k, _)| {
                            k.as_slice() >= b"a\x80".as_slice()
                                && k.as_slice() < b"b\x10".as_slice()
                        })
                        .cloned()
                        .collect();
                    assert_eq!(
                        collect(mem.range(&tree, b"a\x80".to_vec(), Some(b"b\x10".to_vec()))),
                        want_mid
                    );
                }
            }
        }
    }

    #[test]
    fn prefix_ends_skip_trailing_maximum_bytes() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
