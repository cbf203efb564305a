//! The case index as sled holds it: its entries packed into blocks.
//!
//! Commits log and memtable each index entry as a key of its own (`x`,
//! field, value, doc id; see `index_keys`), but sled receives them packed:
//! held one per key, they cost ~420 bytes of disk each, seven a case, since
//! sled puts at most 16 items in a leaf and rewrites nodes whole. A
//! checkpoint folds the entries it carries into blocks:
//!
//! - sled key: `y` + the block's *lower bound* (an entry);
//! - value: a format byte, then the entries in ascending order, each as its
//!   prefix shared with the one before (LEB128 length), the rest's length
//!   (LEB128) and the rest.
//!
//! Invariant: blocks partition the entries by their bounds. An entry lives
//! in the block with the greatest bound at or below it (an entry below
//! every bound goes to the first block, which is then moved under it). A
//! block holds at most [`BLOCK_ENTRIES`] entries (a fuller one is cut into
//! full blocks and a remainder, each under its first entry) and none is
//! empty. Folding is idempotent: adding a present entry or
//! dropping an absent one changes nothing, so a replayed log folds safely.

use std::collections::BTreeSet;
use std::ops::Bound;

use sled::IVec;

/// The key prefix of index blocks.
pub(crate) const BLOCK: u8 = b'y';

/// The most entries one block holds.
const BLOCK_ENTRIES: usize = 64;

/// The format byte of a block value.
const BLOCK_FORMAT: u8 = 1;

/// Why a stored block cannot be read.
#[derive(Debug)]
pub(crate) enum BlockError {
    /// sled failed.
    Db(sled::Error),
    /// The block at this bound is damaged.
    Damaged(Vec<u8>, &'static str),
}

impl From<sled::Error> for BlockError {
    fn from(e: sled::Error) -> BlockError {
        BlockError::Db(e)
    }
}

fn block_key(bound: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(bound.len() + 1);
    k.push(BLOCK);
    k.extend_from_slice(bound);
    k
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
    for shift in (0..28).step_by(7) {
        let (&b, rest) = v.split_first()?;
        *v = rest;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn encode(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![BLOCK_FORMAT];
    let mut prev: &[u8] = &[];
    for e in entries {
        let shared = prev.iter().zip(e).take_while(|(a, b)| a == b).count();
        put_len(&mut out, shared);
        put_len(&mut out, e.len() - shared);
        out.extend_from_slice(&e[shared..]);
        prev = e;
    }
    out
}

fn decode(bound: &[u8], v: &[u8]) -> Result<Vec<Vec<u8>>, BlockError> {
    let damaged = |why| BlockError::Damaged(bound.to_vec(), why);
    let mut rest = match v.split_first() {
        Some((&BLOCK_FORMAT, rest)) => rest,
        Some(_) => return Err(damaged("unknown block format")),
        None => return Err(damaged("empty block")),
    };
    let mut entries: Vec<Vec<u8>> = Vec::new();
    while !rest.is_empty() {
        let shared = take_len(&mut rest).ok_or_else(|| damaged("bad length"))?;
        let len = take_len(&mut rest).ok_or_else(|| damaged("bad length"))?;
        let prev = entries.last().map_or(&[][..], Vec::as_slice);
        if shared > prev.len() || len > rest.len() {
            return Err(damaged("an entry runs past the block"));
        }
        let mut e = prev[..shared].to_vec();
        e.extend_from_slice(&rest[..len]);
        rest = &rest[len..];
        if entries.last().is_some_and(|p| *p >= e) {
            return Err(damaged("entries out of order"));
        }
        entries.push(e);
    }
    if entries.is_empty() {
        return Err(damaged("empty block"));
    }
    Ok(entries)
}

/// A stored block: its key's bound, the entries, and the bound of the block
/// after it.
struct Block {
    bound: Option<Vec<u8>>,
    entries: Vec<Vec<u8>>,
    next: Option<Vec<u8>>,
    changed: bool,
}

impl Block {
    fn covers(&self, entry: &[u8]) -> bool {
        self.next.as_deref().is_none_or(|n| entry < n)
    }
}

fn bound_of(k: &IVec) -> Vec<u8> {
    k[1..].to_vec()
}

/// The first stored block whose bound is above `after` (or the first of
/// all).
fn next_bound(tree: &sled::Tree, after: Option<&[u8]>) -> Result<Option<Vec<u8>>, sled::Error> {
    let from = match after {
        Some(b) => Bound::Excluded(block_key(b)),
        None => Bound::Included(vec![BLOCK]),
    };
    Ok(tree
        .range((from, Bound::Excluded(vec![BLOCK + 1])))
        .keys()
        .next()
        .transpose()?
        .map(|k| bound_of(&k)))
}

/// The stored block that holds (or would hold) `entry`.
fn block_for(tree: &sled::Tree, entry: &[u8]) -> Result<Block, BlockError> {
    let below = tree
        .range(vec![BLOCK]..=block_key(entry))
        .next_back()
        .transpose()?;
    let (bound, value) = match below {
        Some((k, v)) => (Some(bound_of(&k)), Some(v)),
        None => match tree.scan_prefix([BLOCK]).next().transpose()? {
            Some((k, v)) => (Some(bound_of(&k)), Some(v)),
            None => (None, None),
        },
    };
    let entries = match (&bound, &value) {
        (Some(b), Some(v)) => decode(b, v)?,
        _ => Vec::new(),
    };
    let next = next_bound(tree, bound.as_deref())?;
    Ok(Block {
        bound,
        entries,
        next,
        changed: false,
    })
}

/// Writes a changed block back: cut into full blocks when over the limit,
/// moved when its first entry fell below its bound, deleted when empty. New
/// blocks are written before the old one shrinks, so a concurrent reader
/// sees an entry twice rather than not at all.
fn store(tree: &sled::Tree, block: Block) -> Result<(), sled::Error> {
    if !block.changed {
        return Ok(());
    }
    let mut pieces = block.entries.chunks(BLOCK_ENTRIES);
    let first = pieces.next();
    for piece in pieces {
        tree.insert(block_key(&piece[0]), encode(piece))?;
    }
    match (first, block.bound) {
        (Some(piece), Some(bound)) if piece[0] >= bound => {
            tree.insert(block_key(&bound), encode(piece))?;
        }
        (Some(piece), old) => {
            tree.insert(block_key(&piece[0]), encode(piece))?;
            if let Some(old) = old {
                tree.remove(block_key(&old))?;
            }
        }
        (None, Some(bound)) => {
            tree.remove(block_key(&bound))?;
        }
        (None, None) => {}
    }
    Ok(())
}

/// Applies index changes to the blocks: `(entry, present)` pairs in
/// ascending entry order, each entry at most once.
pub(crate) fn fold<'a>(
    tree: &sled::Tree,
    changes: impl IntoIterator<Item = (&'a [u8], bool)>,
) -> Result<(), BlockError> {
    let mut current: Option<Block> = None;
    for (entry, present) in changes {
        let block = match current.take() {
            Some(b) if b.covers(entry) => b,
            other => {
                if let Some(done) = other {
                    store(tree, done)?;
                }
                block_for(tree, entry)?
            }
        };
        let mut block = block;
        match (
            block.entries.binary_search_by(|e| e.as_slice().cmp(entry)),
            present,
        ) {
            (Err(at), true) => {
                block.entries.insert(at, entry.to_vec());
                block.changed = true;
            }
            (Ok(at), false) => {
                block.entries.remove(at);
                block.changed = true;
            }
            _ => {}
        }
        current = Some(block);
    }
    if let Some(done) = current {
        store(tree, done)?;
    }
    Ok(())
}

/// The stored entries in `[from, to)` (`to`: `None` for no end), in order.
pub(crate) fn scan(
    tree: &sled::Tree,
    from: &[u8],
    to: Option<&[u8]>,
) -> Result<BTreeSet<Vec<u8>>, BlockError> {
    let start = match tree
        .range(vec![BLOCK]..=block_key(from))
        .keys()
        .next_back()
        .transpose()?
    {
        Some(k) => k.to_vec(),
        None => vec![BLOCK],
    };
    let end = match to {
        Some(to) => Bound::Excluded(block_key(to)),
        None => Bound::Excluded(vec![BLOCK + 1]),
    };
    let mut found = BTreeSet::new();
    for kv in tree.range((Bound::Included(start), end)) {
        let (k, v) = kv?;
        for e in decode(&k[1..], &v)? {
            if e.as_slice() >= from && to.is_none_or(|t| e.as_slice() < t) {
                found.insert(e);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn tree() -> (sled::Db, sled::Tree) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = db.open_tree("t").unwrap();
        (db, t)
    }

    fn entry(n: u32) -> Vec<u8> {
        format!("s\x03\x00case:140212101:{n:06}").into_bytes()
    }

    fn blocks(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        tree.scan_prefix([BLOCK])
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (k[1..].to_vec(), decode(&k[1..], &v).unwrap())
            })
            .collect()
    }

    /// The block invariant: non-empty, within the limit, entries at or above
    /// their bound and below the next block's.
    fn check(tree: &sled::Tree) {
        let all = blocks(tree);
        for (i, (bound, entries)) in all.iter().enumerate() {
            assert!(!entries.is_empty() && entries.len() <= BLOCK_ENTRIES);
            assert!(entries[0] >= *bound);
            if let Some((next, _)) = all.get(i + 1) {
                assert!(entries.last().unwrap() < next);
            }
        }
    }

    #[test]
    fn folding_matches_a_set_through_splits_moves_and_deletions() {
        let (_db, t) = tree();
        let mut rng = StdRng::seed_from_u64(7);
        let mut model = BTreeSet::new();
        for round in 0..200 {
            // Each round is one checkpoint: distinct entries, in order.
            let mut changes = std::collections::BTreeMap::new();
            for _ in 0..rng.random_range(1..60) {
                // Early rounds mostly add, later ones mostly drop.
                let add = rng.random_bool(if round < 120 { 0.8 } else { 0.3 });
                changes.insert(entry(rng.random_range(0..3000)), add);
            }
            fold(&t, changes.iter().map(|(e, p)| (e.as_slice(), *p))).unwrap();
            for (e, p) in changes {
                if p {
                    model.insert(e);
                } else {
                    model.remove(&e);
                }
            }
            check(&t);
            assert_eq!(scan(&t, &[], None).unwrap(), model, "round {round}");
        }
        let lo = entry(1000);
        let hi = entry(2000);
        let expect: BTreeSet<_> = model.range(lo.clone()..hi.clone()).cloned().collect();
        assert_eq!(scan(&t, &lo, Some(&hi)).unwrap(), expect);
    }

    #[test]
    fn appending_in_order_fills_blocks() {
        let (_db, t) = tree();
        for n in 0..1000u32 {
            let e = entry(n);
            fold(&t, [(e.as_slice(), true)]).unwrap();
        }
        check(&t);
        let all = blocks(&t);
        assert_eq!(all.len(), 1000usize.div_ceil(BLOCK_ENTRIES));
        assert_eq!(scan(&t, &[], None).unwrap().len(), 1000);
    }

    #[test]
    fn an_entry_below_every_bound_moves_the_first_block() {
        let (_db, t) = tree();
        let (a, b) = (entry(5), entry(9));
        fold(&t, [(b.as_slice(), true)]).unwrap();
        fold(&t, [(a.as_slice(), true)]).unwrap();
        check(&t);
        assert_eq!(blocks(&t), vec![(a.clone(), vec![a.clone(), b.clone()])]);
        // Folding again changes nothing; dropping both leaves no block.
        fold(&t, [(a.as_slice(), true), (b.as_slice(), true)]).unwrap();
        assert_eq!(blocks(&t).len(), 1);
        fold(&t, [(a.as_slice(), false), (b.as_slice(), false)]).unwrap();
        assert!(blocks(&t).is_empty());
    }

    #[test]
    fn damaged_blocks_are_reported() {
        let (_db, t) = tree();
        let good = encode(&[entry(1), entry(2)]);
        for bad in [
            vec![],
            vec![9],
            vec![BLOCK_FORMAT],
            vec![BLOCK_FORMAT, 5, 1, b'x'],
            vec![BLOCK_FORMAT, 0, 200, b'x'],
            vec![BLOCK_FORMAT, 0, 0xff, 0xff, 0xff, 0xff, 0xff],
            [good.clone(), good[1..].to_vec()].concat(),
        ] {
            t.insert(block_key(b"k"), bad.clone()).unwrap();
            assert!(
                matches!(scan(&t, &[], None), Err(BlockError::Damaged(..))),
                "{bad:?}"
            );
        }
    }
}
