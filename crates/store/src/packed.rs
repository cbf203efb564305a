//! What sled holds: the store's keys packed into blocks.
//!
//! The store logs, memtables and reads *logical* keys (documents, heads,
//! feed entries, index entries, peer checkpoints; see `lib.rs`). Held one
//! per sled key they cost ~600–900 bytes of disk each whatever their size
//! (sled puts at most 16 items in a leaf and rewrites nodes whole), and a
//! case has ten. A checkpoint therefore folds the keys it carries into
//! blocks of about [`BLOCK_BYTES`]:
//!
//! - sled key: [`BLOCK`] + the block's *bound* (a logical key);
//! - value: a format byte ([`RAW`] or [`ZSTD`]), then the entries in key
//!   order, each as the prefix its key shares with the one before (LEB128
//!   length), the rest of the key (LEB128 length, bytes) and the value
//!   (LEB128 length, bytes); as a zstd frame when that saves an eighth.
//!
//! Invariant: blocks partition the keys by bound. The first block's bound is
//! the empty key, and a key lives in the block with the greatest bound at or
//! below it, so every entry is at or above its block's bound and below the
//! next block's. Only the first block may be empty, and a block holds at
//! most [`BLOCK_BYTES`] of entries plus one entry.
//! Folding is idempotent (a change already applied changes nothing), so a
//! replayed log folds safely.
//!
//! Cutting a block writes its new pieces first, then shrinks it. A crash in
//! between leaves the old block whole beside the pieces: readers therefore
//! count a block's entries only below the next block's bound, and the next
//! fold that loads it drops the rest. Deleting an emptied block drops them
//! first, since the block before then reaches further.
//!
//! Readers run while a checkpoint folds. Changing one block is one sled
//! write, seen whole or not at all. A cut holds `cutting` for writing, and
//! readers hold it for reading while they find and read a block (and the
//! bound after it). Without that, a lookup (which walks sled backwards)
//! could pass a new piece before it was written and then find its block
//! already shrunk. A scan that read a block before a cut may meet some of
//! its entries again in a piece; it skips them.

use std::ops::Bound;
use std::sync::RwLock;

use sled::IVec;

/// The sled key prefix of blocks.
pub(crate) const BLOCK: u8 = b'B';

/// How many bytes of entries a block is filled to.
const BLOCK_BYTES: usize = 4 << 10;

/// Block formats.
const RAW: u8 = 1;
const ZSTD: u8 = 2;

/// Blocks larger than this are kept raw, so decompressing one never
/// allocates more.
const MAX_ZSTD_BLOCK: usize = 1 << 20;

/// Why stored blocks cannot be read.
#[derive(Debug)]
pub(crate) enum BlockError {
    /// sled failed.
    Db(sled::Error),
    /// The block at this bound is damaged.
    Damaged(Vec<u8>, String),
}

impl From<sled::Error> for BlockError {
    fn from(e: sled::Error) -> BlockError {
        BlockError::Db(e)
    }
}

/// A logical key and its value.
pub(crate) type Entry = (Vec<u8>, Vec<u8>);

fn block_key(bound: &[u8]) -> Vec<u8> {
    [&[BLOCK][..], bound].concat()
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_len(v: &mut &[u8]) -> Option<usize> {
    let mut n = 0usize;
    for shift in (0..35).step_by(7) {
        let (&b, rest) = v.split_first()?;
        *v = rest;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn take<'a>(v: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = take_len(v)?;
    let (bytes, rest) = v.split_at_checked(n)?;
    *v = rest;
    Some(bytes)
}

/// Roughly what an entry adds to a block.
fn cost((k, v): &Entry) -> usize {
    k.len() + v.len() + 4
}

pub(crate) fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut raw = vec![RAW];
    let mut prev: &[u8] = &[];
    for (k, v) in entries {
        let shared = prev.iter().zip(k).take_while(|(a, b)| a == b).count();
        put_len(&mut raw, shared);
        put_len(&mut raw, k.len() - shared);
        raw.extend_from_slice(&k[shared..]);
        put_len(&mut raw, v.len());
        raw.extend_from_slice(v);
        prev = k;
    }
    if raw.len() <= MAX_ZSTD_BLOCK {
        if let Ok(frame) = crate::dict::compress(&raw[1..], 1) {
            let framed = zstd::zstd_safe::get_frame_content_size(&frame) == (raw.len() - 1) as u64;
            if framed && frame.len() * 8 <= (raw.len() - 1) * 7 {
                return [&[ZSTD][..], &frame].concat();
            }
        }
    }
    raw
}

/// Walks a block's entries in order, handing each key and value to `f`
/// until it returns `false`.
fn walk(bound: &[u8], v: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<(), BlockError> {
    let damaged = |why: &str| BlockError::Damaged(bound.to_vec(), why.to_string());
    let unpacked;
    let mut rest = match v.split_first() {
        Some((&RAW, rest)) => rest,
        Some((&ZSTD, frame)) => {
            unpacked = crate::dict::decompress(frame, None, MAX_ZSTD_BLOCK as u64)
                .map_err(|e| damaged(&format!("does not decompress: {e}")))?;
            &unpacked[..]
        }
        Some(_) => return Err(damaged("unknown block format")),
        None => return Err(damaged("empty block")),
    };
    if rest.is_empty() && !bound.is_empty() {
        return Err(damaged("empty block"));
    }
    let mut key: Vec<u8> = Vec::with_capacity(64);
    let mut first = true;
    while !rest.is_empty() {
        let shared = take_len(&mut rest).ok_or_else(|| damaged("bad length"))?;
        let suffix = take(&mut rest).ok_or_else(|| damaged("a key runs past the block"))?;
        let value = take(&mut rest).ok_or_else(|| damaged("a value runs past the block"))?;
        // The key after `key` shares `shared` bytes with it and is greater:
        // its next byte is greater, or `key` ends there and it goes on.
        let greater = match (key.get(shared), suffix.first()) {
            _ if first => true,
            (Some(old), Some(new)) => new > old,
            (None, Some(_)) => shared == key.len(),
            (_, None) => false,
        };
        if shared > key.len() || !greater {
            return Err(damaged("keys out of order"));
        }
        key.truncate(shared);
        key.extend_from_slice(suffix);
        first = false;
        if !f(&key, value) {
            break;
        }
    }
    Ok(())
}

pub(crate) fn decode(bound: &[u8], v: &[u8]) -> Result<Vec<Entry>, BlockError> {
    let mut entries = Vec::new();
    walk(bound, v, |k, v| {
        entries.push((k.to_vec(), v.to_vec()));
        true
    })?;
    Ok(entries)
}

/// A block as loaded for change: its bound, entries, and the next bound.
struct Block {
    bound: Vec<u8>,
    entries: Vec<Entry>,
    next: Option<Vec<u8>>,
    changed: bool,
    /// Whether every change was a new entry after all the others.
    appended: bool,
}

fn bound_of(k: &IVec) -> Vec<u8> {
    k[1..].to_vec()
}

/// The last block whose bound is at or below `key`.
fn block_at(tree: &sled::Tree, key: &[u8]) -> Result<Option<(IVec, IVec)>, sled::Error> {
    tree.range(vec![BLOCK]..=block_key(key))
        .next_back()
        .transpose()
}

/// The bound of the block after the one bound by `bound`, if any.
fn next_bound(tree: &sled::Tree, bound: &[u8]) -> Result<Option<Vec<u8>>, sled::Error> {
    let after = (
        Bound::Excluded(block_key(bound)),
        Bound::Excluded(vec![BLOCK + 1]),
    );
    Ok(tree
        .range(after)
        .keys()
        .next()
        .transpose()?
        .map(|k| bound_of(&k)))
}

/// The block that holds (or would hold) `key`: the first block, bound
/// by the empty key, is made when there is none.
fn block_for(tree: &sled::Tree, key: &[u8]) -> Result<Block, BlockError> {
    let (bound, mut entries) = match block_at(tree, key)? {
        Some((k, v)) => (bound_of(&k), decode(&k[1..], &v)?),
        None => (Vec::new(), Vec::new()),
    };
    let next = next_bound(tree, &bound)?;
    // Left over from a cut cut short: the next block holds those.
    let held = entries.len();
    entries.retain(|(k, _)| next.as_ref().is_none_or(|n| k < n));
    Ok(Block {
        bound,
        changed: entries.len() < held,
        entries,
        next,
        appended: true,
    })
}

/// One write to sled: a block stored under its key, or (`None`) removed.
type BlockWrite = (Vec<u8>, Option<Vec<u8>>);

/// The sled writes that put a changed block back, in the order they must
/// be made: cut into pieces when over [`BLOCK_BYTES`], removed when empty
/// (unless it is the first). A block that only grew at its end is cut into
/// full pieces and a remainder, as keys that arrive in order keep doing;
/// any other into pieces of even size, leaving each room to grow.
///
/// The order keeps every key readable wherever a crash stops the writes:
/// new pieces go in from the last to the first, so the piece holding a key
/// is either written whole or the old block, still whole, serves its range
/// (readers count a block's entries only below the next block's bound);
/// the old block shrinks last. An empty block is removed only after the
/// block before it has dropped anything it held in that range, so a cut
/// cut short long ago cannot bring stale entries back.
fn block_writes(tree: &sled::Tree, block: Block) -> Result<Vec<BlockWrite>, BlockError> {
    if !block.changed {
        return Ok(Vec::new());
    }
    let total: usize = block.entries.iter().map(cost).sum();
    let n = total.div_ceil(BLOCK_BYTES);
    let mut pieces: Vec<&[Entry]> = Vec::new();
    let (mut start, mut filled, mut done) = (0, 0, 0);
    for (i, e) in block.entries.iter().enumerate() {
        let full = if block.appended {
            filled + cost(e) > BLOCK_BYTES
        } else {
            // Piece k ends at the entry that reaches k/n of the whole.
            filled > 0 && (done + filled) * n >= total * (pieces.len() + 1)
        };
        if i > start && full {
            pieces.push(&block.entries[start..i]);
            (start, done, filled) = (i, done + filled, 0);
        }
        filled += cost(e);
    }
    pieces.push(&block.entries[start..]);
    let key = block_key(&block.bound);
    if let [[]] = pieces[..] {
        if block.bound.is_empty() {
            return Ok(vec![(key, Some(encode(&[])))]);
        }
        let mut writes = Vec::new();
        if let Some((k, v)) = tree
            .range(vec![BLOCK]..key.clone())
            .next_back()
            .transpose()?
        {
            let mut before = decode(&k[1..], &v)?;
            let held = before.len();
            before.retain(|(e, _)| *e < block.bound);
            if before.len() < held {
                writes.push((k.to_vec(), Some(encode(&before))));
            }
        }
        writes.push((key, None));
        return Ok(writes);
    }
    let mut writes: Vec<BlockWrite> = pieces[1..]
        .iter()
        .rev()
        .map(|piece| (block_key(&piece[0].0), Some(encode(piece))))
        .collect();
    writes.push((key, Some(encode(pieces[0]))));
    Ok(writes)
}

/// Writes a changed block back (see [`block_writes`]); a cut into pieces
/// holds `cutting`, so no point read sees it half made.
fn store(tree: &sled::Tree, cutting: &RwLock<()>, block: Block) -> Result<(), BlockError> {
    let writes = block_writes(tree, block)?;
    let _cut = (writes.len() > 1).then(|| cutting.write().unwrap_or_else(|e| e.into_inner()));
    for (key, value) in writes {
        match value {
            Some(v) => tree.insert(key, v).map(drop)?,
            None => tree.remove(key).map(drop)?,
        }
    }
    Ok(())
}

/// The blocks in one sled tree.
#[derive(Debug)]
pub(crate) struct Blocks {
    tree: sled::Tree,
    /// Held for writing while a block is cut, for reading by point reads.
    cutting: RwLock<()>,
}

impl Blocks {
    pub(crate) fn new(tree: sled::Tree) -> Blocks {
        Blocks {
            tree,
            cutting: RwLock::new(()),
        }
    }

    /// Applies changes: `(key, new value or None to delete)` in ascending
    /// key order, each key at most once. One fold runs at a time.
    pub(crate) fn fold<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Result<(), BlockError> {
        let tree = &self.tree;
        let mut current: Option<Block> = None;
        for (key, value) in changes {
            let mut block = match current.take() {
                Some(b) if b.next.as_deref().is_none_or(|n| key < n) => b,
                other => {
                    if let Some(done) = other {
                        store(tree, &self.cutting, done)?;
                    }
                    block_for(tree, key)?
                }
            };
            let at = block
                .entries
                .binary_search_by(|(k, _)| k.as_slice().cmp(key));
            let end = block.entries.len();
            match (at, value) {
                (Ok(i), Some(v)) if block.entries[i].1 != v => {
                    block.entries[i].1 = v.to_vec();
                    block.changed = true;
                    block.appended = false;
                }
                (Err(i), Some(v)) => {
                    block.entries.insert(i, (key.to_vec(), v.to_vec()));
                    block.changed = true;
                    block.appended &= i == end;
                }
                (Ok(i), None) => {
                    block.entries.remove(i);
                    block.changed = true;
                    block.appended = false;
                }
                _ => {}
            }
            current = Some(block);
        }
        if let Some(done) = current {
            store(tree, &self.cutting, done)?;
        }
        Ok(())
    }

    /// A key's stored value.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BlockError> {
        let found = {
            let _no_cut = self.cutting.read().unwrap_or_else(|e| e.into_inner());
            block_at(&self.tree, key)?
        };
        let Some((k, v)) = found else {
            return Ok(None);
        };
        let mut value = None;
        walk(&k[1..], &v, |k, v| match k.cmp(key) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => {
                value = Some(v.to_vec());
                false
            }
            std::cmp::Ordering::Greater => false,
        })?;
        Ok(value)
    }

    /// The stored entry with the greatest key below `to`.
    pub(crate) fn last_below(&self, to: &[u8]) -> Result<Option<Entry>, BlockError> {
        // A block's entries count only below the next block's bound.
        let mut limit = to.to_vec();
        for kv in self.tree.range(vec![BLOCK]..block_key(to)).rev() {
            let (k, v) = kv?;
            let mut entries = decode(&k[1..], &v)?;
            entries.retain(|(k, _)| *k < limit);
            if let Some(last) = entries.pop() {
                return Ok(Some(last));
            }
            limit = k[1..].to_vec();
        }
        Ok(None)
    }

    /// Point reads that keep the block last read: see [`Reader`].
    pub(crate) fn reader(&self) -> Reader<'_> {
        Reader {
            blocks: self,
            held: None,
        }
    }

    /// The stored entries in `[from, to)`: see [`Entries`].
    pub(crate) fn entries(&self, from: Vec<u8>, to: Option<Vec<u8>>) -> Entries<'_> {
        Entries::new(self, from, to)
    }
}

/// Point reads, each block decoded once while the keys read stay in it:
/// cheap for keys asked in ascending order. Not a snapshot: a block is
/// kept as it was first read, so a key a checkpoint folds in meanwhile may
/// be seen at its value before.
pub(crate) struct Reader<'a> {
    blocks: &'a Blocks,
    /// The block last read.
    held: Option<Held>,
}

/// A block as read: its bound, the next block's, and its entries.
type Held = (Vec<u8>, Option<Vec<u8>>, Vec<Entry>);

impl Reader<'_> {
    /// A key's stored value.
    pub(crate) fn get(&mut self, key: &[u8]) -> Result<Option<IVec>, BlockError> {
        let covers = |(bound, next, _): &Held| {
            bound.as_slice() <= key && next.as_deref().is_none_or(|n| key < n)
        };
        if !self.held.as_ref().is_some_and(covers) {
            let tree = &self.blocks.tree;
            let _no_cut = self
                .blocks
                .cutting
                .read()
                .unwrap_or_else(|e| e.into_inner());
            let Some((k, v)) = block_at(tree, key)? else {
                return Ok(None);
            };
            let bound = bound_of(&k);
            let next = next_bound(tree, &bound)?;
            let mut entries = decode(&k[1..], &v)?;
            // Left over from a cut cut short: the next block holds those.
            entries.retain(|(e, _)| next.as_ref().is_none_or(|n| e < n));
            self.held = Some((bound, next, entries));
        }
        let entries = self.held.as_ref().map_or(&[][..], |h| &h.2[..]);
        Ok(entries
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
            .ok()
            .map(|i| IVec::from(&entries[i].1[..])))
    }
}

/// The stored entries in `[from, to)` (`to`: `None` for no end), in key
/// order, read a block at a time.
pub(crate) struct Entries<'a> {
    cutting: &'a RwLock<()>,
    blocks: std::iter::Peekable<sled::Iter>,
    from: Vec<u8>,
    to: Option<Vec<u8>>,
    current: std::vec::IntoIter<Entry>,
    last: Option<Vec<u8>>,
}

impl<'a> Entries<'a> {
    fn new(b: &'a Blocks, from: Vec<u8>, to: Option<Vec<u8>>) -> Entries<'a> {
        // The block holding `from` may begin below it; blocks from `to` on
        // hold nothing in range. (If the lookup fails, reading from the
        // first block finds the same entries.)
        let found = {
            let _no_cut = b.cutting.read().unwrap_or_else(|e| e.into_inner());
            block_at(&b.tree, &from)
        };
        let start = match found {
            Ok(Some((k, _))) => Bound::Included(k.to_vec()),
            _ => Bound::Included(vec![BLOCK]),
        };
        let end = match &to {
            Some(to) => Bound::Excluded(block_key(to)),
            None => Bound::Excluded(vec![BLOCK + 1]),
        };
        Entries {
            cutting: &b.cutting,
            blocks: b.tree.range((start, end)).peekable(),
            from,
            to,
            current: Vec::new().into_iter(),
            last: None,
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<(IVec, IVec), BlockError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            for (k, v) in self.current.by_ref() {
                let in_range = k >= self.from && self.to.as_ref().is_none_or(|t| k < *t);
                // A block being cut may show an entry twice.
                let fresh = self.last.as_ref().is_none_or(|l| k > *l);
                if in_range && fresh {
                    self.last = Some(k.clone());
                    return Some(Ok((IVec::from(k), IVec::from(v))));
                }
            }
            let (next, after) = {
                let _no_cut = self.cutting.read().unwrap_or_else(|e| e.into_inner());
                let next = self.blocks.next()?;
                let after = match self.blocks.peek() {
                    Some(Ok((k, _))) => Some(k[1..].to_vec()),
                    _ => None,
                };
                (next, after)
            };
            let (k, v) = match next {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            match decode(&k[1..], &v) {
                Ok(mut entries) => {
                    // Left over from a cut cut short: the next block holds
                    // those.
                    entries.retain(|(k, _)| after.as_ref().is_none_or(|a| k < a));
                    self.current = entries.into_iter();
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    fn tree() -> (sled::Db, Blocks) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = Blocks::new(db.open_tree("t").unwrap());
        (db, t)
    }

    fn key(n: u32) -> Vec<u8> {
        format!("hcase:140212101:{n:06}").into_bytes()
    }

    fn blocks(b: &Blocks) -> Vec<(Vec<u8>, Vec<Entry>)> {
        b.tree
            .scan_prefix([BLOCK])
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (k[1..].to_vec(), decode(&k[1..], &v).unwrap())
            })
            .collect()
    }

    /// The block invariant: the first bound is the empty key, no other
    /// block is empty, blocks hold at most the limit plus one entry, entries
    /// are at or above their bound and below the next block's.
    fn check(b: &Blocks) {
        let all = blocks(b);
        assert!(all.is_empty() || all[0].0.is_empty());
        for (i, (bound, entries)) in all.iter().enumerate() {
            assert!(i == 0 || !entries.is_empty());
            let size: usize = entries.iter().map(cost).sum();
            let largest = entries.iter().map(cost).max().unwrap_or(0);
            assert!(size <= BLOCK_BYTES + largest, "{size}");
            if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
                assert!(first.0 >= *bound);
                if let Some((next, _)) = all.get(i + 1) {
                    assert!(last.0 < *next);
                }
            }
        }
    }

    fn scan(b: &Blocks, from: &[u8], to: Option<&[u8]>) -> Vec<Entry> {
        b.entries(from.to_vec(), to.map(<[u8]>::to_vec))
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect()
    }

    #[test]
    fn folding_matches_a_map_through_splits_moves_and_deletions() {
        let (_db, t) = tree();
        let mut rng = StdRng::seed_from_u64(7);
        let mut model = BTreeMap::new();
        for round in 0..200 {
            // Each round is one checkpoint: distinct keys, in order.
            let mut changes = BTreeMap::new();
            for _ in 0..rng.random_range(1..60) {
                // Early rounds mostly write, later ones mostly delete.
                let write = rng.random_bool(if round < 120 { 0.8 } else { 0.3 });
                // Some entries fill most of a block, so cuts land anywhere.
                let len = if rng.random_bool(0.1) { 3000 } else { 300 };
                let value = write.then(|| vec![round as u8; rng.random_range(0..len)]);
                changes.insert(key(rng.random_range(0..3000)), value);
            }
            let ops = changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref()));
            t.fold(ops).unwrap();
            for (k, v) in changes {
                match v {
                    Some(v) => model.insert(k, v),
                    None => model.remove(&k),
                };
            }
            check(&t);
            let want: Vec<Entry> = model.clone().into_iter().collect();
            assert_eq!(scan(&t, &[], None), want, "round {round}");
            let probe = key(rng.random_range(0..3000));
            assert_eq!(t.get(&probe).unwrap(), model.get(&probe).cloned());
        }
        let (lo, hi) = (key(1000), key(2000));
        let want: Vec<Entry> = model
            .range(lo.clone()..hi.clone())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(scan(&t, &lo, Some(&hi)), want);
        let below = model
            .range(..hi.clone())
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone()));
        assert_eq!(t.last_below(&hi).unwrap(), below);
    }

    #[test]
    fn appending_in_order_fills_blocks() {
        let (_db, t) = tree();
        for n in 0..1000u32 {
            t.fold([(key(n).as_slice(), Some(&[7u8; 40][..]))]).unwrap();
        }
        check(&t);
        let per_block = BLOCK_BYTES / cost(&(key(0), vec![0; 40]));
        assert_eq!(blocks(&t).len(), 1000usize.div_ceil(per_block));
        assert_eq!(scan(&t, &[], None).len(), 1000);
    }

    #[test]
    fn a_full_block_that_grows_inside_is_cut_in_even_pieces() {
        let (_db, t) = tree();
        for n in 0..1000u32 {
            t.fold([(key(2 * n).as_slice(), Some(&[7u8; 40][..]))])
                .unwrap();
        }
        let before = blocks(&t).len();
        t.fold([(key(1001).as_slice(), Some(&[7u8; 40][..]))])
            .unwrap();
        check(&t);
        let after = blocks(&t);
        assert_eq!(after.len(), before + 1);
        let sizes: Vec<usize> = after
            .iter()
            .filter(|(_, e)| e.iter().any(|(k, _)| (key(980)..key(1020)).contains(k)))
            .map(|(_, e)| e.iter().map(cost).sum())
            .collect();
        assert!(sizes.iter().all(|s| *s > BLOCK_BYTES / 3), "{sizes:?}");
    }

    #[test]
    fn the_first_block_is_bound_by_the_empty_key_and_stays() {
        let (_db, t) = tree();
        let (a, b) = (key(5), key(9));
        t.fold([(b.as_slice(), Some(&b"1"[..]))]).unwrap();
        assert_eq!(t.get(&a).unwrap(), None);
        t.fold([(a.as_slice(), Some(&b"2"[..]))]).unwrap();
        check(&t);
        let both = vec![(a.clone(), b"2".to_vec()), (b.clone(), b"1".to_vec())];
        assert_eq!(blocks(&t), vec![(Vec::new(), both)]);
        // Folding again changes nothing; deleting both leaves the first
        // block, empty.
        t.fold([
            (a.as_slice(), Some(&b"2"[..])),
            (b.as_slice(), Some(&b"1"[..])),
        ])
        .unwrap();
        assert_eq!(blocks(&t).len(), 1);
        t.fold([(a.as_slice(), None), (b.as_slice(), None)])
            .unwrap();
        assert_eq!(blocks(&t), vec![(Vec::new(), Vec::new())]);
        assert_eq!(t.get(&a).unwrap(), None);
        assert!(scan(&t, &[], None).is_empty());
    }

    /// Point reads run while a fold cuts the blocks around the key they
    /// read: they must find it every time.
    #[test]
    fn a_key_is_found_while_folds_cut_the_blocks_around_it() {
        let (_db, t) = tree();
        let t = std::sync::Arc::new(t);
        let held = key(100_000);
        t.fold([(held.as_slice(), Some(&b"here"[..]))]).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        assert_eq!(t.get(&held).unwrap().as_deref(), Some(&b"here"[..]));
                    }
                });
            }
            let value = vec![5u8; 600];
            for round in 0..300u32 {
                // Keys on both sides of the held one, enough to cut blocks.
                let keys: Vec<_> = (0..12)
                    .flat_map(|i| [key(round * 12 + i), key(200_000 + round * 12 + i)])
                    .collect();
                let mut keys = keys;
                keys.sort();
                t.fold(keys.iter().map(|k| (k.as_slice(), Some(&value[..]))))
                    .unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        check(&t);
    }

    /// What a crash between writing a cut's new pieces and shrinking the
    /// old block leaves: the old block whole, its upper entries older than
    /// the pieces'.
    #[test]
    fn a_block_left_whole_by_a_cut_cut_short_is_read_only_below_the_next() {
        let (_db, t) = tree();
        let keys: Vec<_> = (0..60).map(key).collect();
        let fresh = vec![1u8; 200];
        t.fold(keys.iter().map(|k| (k.as_slice(), Some(&fresh[..]))))
            .unwrap();
        let all = blocks(&t);
        assert!(all.len() >= 3);
        let (a, b) = (&all[0], &all[1]);
        let mut whole = a.1.clone();
        whole.extend(b.1.iter().map(|(k, _)| (k.clone(), b"stale".to_vec())));
        t.tree.insert(block_key(&a.0), encode(&whole)).unwrap();
        let want: Vec<Entry> = keys.iter().map(|k| (k.clone(), fresh.clone())).collect();
        assert_eq!(scan(&t, &[], None), want);
        assert_eq!(t.get(&b.1[0].0).unwrap(), Some(fresh.clone()));
        assert_eq!(t.last_below(&all[2].0).unwrap(), b.1.last().cloned());
        let (first_b, last_a) = (&b.1[0].0, a.1.last().unwrap());
        assert_eq!(t.last_below(first_b).unwrap().as_ref(), Some(last_a));
        // A fold into the second block leaves reads right; one into the
        // first drops what it held beyond its range.
        t.fold([(first_b.as_slice(), None)]).unwrap();
        assert_eq!(scan(&t, &[], None).len(), 59);
        t.fold([(a.1[0].0.as_slice(), Some(&fresh[..]))]).unwrap();
        check(&t);
        assert_eq!(scan(&t, &[], None).len(), 59);
    }

    /// A crash can stop a cut after any of its sled writes: at each such
    /// point every key the block held must still be found.
    #[test]
    fn every_key_is_found_wherever_a_crash_stops_a_cut() {
        let (_db, t) = tree();
        let old: Vec<_> = (0..240).step_by(4).map(key).collect();
        let value = vec![3u8; 50];
        t.fold(old.iter().map(|k| (k.as_slice(), Some(&value[..]))))
            .unwrap();
        let before: Vec<(IVec, IVec)> = t.tree.iter().map(Result::unwrap).collect();
        // Many keys land inside one block at once: it is cut in several
        // pieces.
        let mut block = block_for(&t.tree, &old[0]).unwrap();
        for n in (0..240).filter(|n| n % 4 != 0) {
            let k = key(n);
            let at = block.entries.binary_search_by(|(e, _)| e.cmp(&k));
            if let Err(i) = at {
                block.entries.insert(i, (k, value.clone()));
            }
        }
        block.changed = true;
        block.appended = false;
        let writes = block_writes(&t.tree, block).unwrap();
        assert!(writes.len() >= 3, "{} writes", writes.len());
        for stop in 0..=writes.len() {
            let (_db, copy) = tree();
            for (k, v) in &before {
                copy.tree.insert(k, v).unwrap();
            }
            for (k, v) in &writes[..stop] {
                copy.tree.insert(k, v.clone().unwrap()).unwrap();
            }
            for k in &old {
                assert_eq!(
                    copy.get(k).unwrap(),
                    Some(value.clone()),
                    "{} lost after {stop} of {} writes",
                    String::from_utf8_lossy(k),
                    writes.len()
                );
            }
        }
    }

    /// An empty block is removed only once the block before it holds
    /// nothing in its range: stale entries left there by an old cut cut
    /// short must not come back.
    #[test]
    fn removing_an_empty_block_does_not_bring_back_what_an_old_cut_left_behind() {
        let (_db, t) = tree();
        let keys: Vec<_> = (0..60).map(key).collect();
        let fresh = [1u8; 200];
        t.fold(keys.iter().map(|k| (k.as_slice(), Some(&fresh[..]))))
            .unwrap();
        let all = blocks(&t);
        let (a, b) = (&all[0], &all[1]);
        // The first block still whole, as a crash mid-cut left it.
        let mut whole = a.1.clone();
        whole.extend(b.1.iter().map(|(k, _)| (k.clone(), b"stale".to_vec())));
        t.tree.insert(block_key(&a.0), encode(&whole)).unwrap();
        // Every key of the second block is deleted: it goes.
        t.fold(b.1.iter().map(|(k, _)| (k.as_slice(), None)))
            .unwrap();
        for (k, _) in &b.1 {
            assert_eq!(t.get(k).unwrap(), None, "a deleted key came back");
        }
        assert_eq!(scan(&t, &[], None).len(), 60 - b.1.len());
        check(&t);
    }

    #[test]
    fn lower_keys_cut_into_the_first_block_keep_every_piece() {
        let (_db, t) = tree();
        let big = vec![1u8; BLOCK_BYTES * 2 / 3];
        let m = key(500);
        t.fold([(m.as_slice(), Some(&big[..]))]).unwrap();
        // Every entry fills a piece of its own.
        let lower: Vec<_> = (0..5).map(key).collect();
        t.fold(lower.iter().map(|k| (k.as_slice(), Some(&big[..]))))
            .unwrap();
        check(&t);
        assert_eq!(t.get(&m).unwrap(), Some(big.clone()));
        assert_eq!(scan(&t, &[], None).len(), 6);
    }

    #[test]
    fn similar_entries_are_stored_compressed_and_large_ones_alone() {
        let (_db, t) = tree();
        let big = vec![3u8; 3 * BLOCK_BYTES];
        let similar = b"the same summary, case after case".repeat(4);
        let keys: Vec<_> = (0..40).map(key).collect();
        let mut changes: Vec<_> = keys
            .iter()
            .map(|k| (k.as_slice(), Some(&similar[..])))
            .collect();
        changes[20].1 = Some(&big);
        t.fold(changes).unwrap();
        check(&t);
        let stored: Vec<_> = t
            .tree
            .scan_prefix([BLOCK])
            .values()
            .map(|v| v.unwrap())
            .collect();
        assert!(stored.iter().any(|v| v[0] == ZSTD));
        assert!(blocks(&t)
            .iter()
            .any(|(_, e)| e.len() == 1 && e[0].1 == big));
        assert_eq!(t.get(&keys[20]).unwrap(), Some(big));
        assert_eq!(t.get(&keys[39]).unwrap(), Some(similar));
    }

    #[test]
    fn damaged_blocks_are_reported() {
        let (_db, t) = tree();
        let good = encode(&[(key(1), b"a".to_vec()), (key(2), b"b".to_vec())]);
        let huge = [
            &[ZSTD][..],
            &zstd::block::compress(&[0; 64], 1).unwrap()[..4],
            &[0xe0, 0, 0, 0, 0, 0, 1, 0, 0],
        ]
        .concat();
        for bad in [
            vec![],
            vec![9],
            vec![RAW],
            vec![RAW, 5, 1, b'x', 0],
            vec![RAW, 0, 200, b'x'],
            vec![RAW, 0, 1, b'x', 9, 1],
            vec![RAW, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            vec![ZSTD, 1, 2, 3],
            huge,
            [good.clone(), good[1..].to_vec()].concat(),
        ] {
            t.tree.insert(block_key(b"k"), bad.clone()).unwrap();
            let err = t.entries(Vec::new(), None).find_map(Result::err);
            assert!(matches!(err, Some(BlockError::Damaged(..))), "{bad:?}");
            assert!(
                matches!(t.get(b"z"), Err(BlockError::Damaged(..))),
                "{bad:?}"
            );
        }
    }
}
