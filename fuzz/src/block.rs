//! sled's blocks (`crates/store/src/packed.rs`).
//!
//! The first byte picks one of two harnesses.
//!
//! Even: one block. The next byte is the length of its bound,
//! then the bound, then the stored value. Invariants: decoding returns
//! entries or an error within [`ALLOC_LIMIT`] plus a multiple of the
//! input; entries come in strictly ascending key order; a block with a
//! bound is not empty; the entries encode to a block that decodes to the
//! same entries.
//!
//! Odd: a tree of blocks (structure-aware): blocks bound by keys of a small
//! alphabet, each either well formed (its entries at or above its bound,
//! possibly some beyond the next bound, as a cut cut short leaves them) or
//! raw bytes from the input. Point reads, range reads and `last_below` never
//! panic; over well-formed blocks they agree with a model (each block's
//! entries count below the next block's bound), and so does the content
//! after a fold of changes.

use std::collections::BTreeMap;

use arbitrary::{Result, Unstructured};
use hallsync_store::fuzzing::{decode_block, encode_block, BlockTree};

/// What decoding a block may hold allocated at once, besides a multiple of
/// its size: a zstd block decompresses to at most 1 MiB, and its entries
/// are copied out.
pub const ALLOC_LIMIT: u64 = 4 << 20;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A block's entries, or raw bytes.
type Block = std::result::Result<Entries, Vec<u8>>;

/// Runs one input.
pub fn run(data: &[u8]) {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => one(rest),
        Some((_, rest)) => {
            let _ = tree(&mut Unstructured::new(rest));
        }
        None => {}
    }
}

fn one(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (bound, value) = rest.split_at(usize::from(n).min(rest.len()));
    let limit = ALLOC_LIMIT + 64 * data.len() as u64;
    let Ok(entries) = crate::bounded("decoding a block", limit, || decode_block(bound, value))
    else {
        return;
    };
    assert!(
        entries.windows(2).all(|w| w[0].0 < w[1].0),
        "a block decoded to keys out of order"
    );
    assert!(bound.is_empty() || !entries.is_empty());
    let again = encode_block(&entries);
    assert_eq!(
        decode_block(bound, &again),
        Ok(entries),
        "a block's entries encode to a block that decodes differently"
    );
}

fn keys(entries: &Entries) -> Vec<String> {
    entries
        .iter()
        .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), v.len()))
        .collect()
}

fn key(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let n = u.int_in_range(1..=3usize)?;
    (0..n).map(|_| u.int_in_range(b'a'..=b'e')).collect()
}

fn value(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let len = *u.choose(&[0usize, 1, 5, 300, 3000])?;
    let fill: u8 = u.arbitrary()?;
    Ok(vec![fill; len])
}

fn tree(u: &mut Unstructured<'_>) -> Result<()> {
    thread_local! {
        static TREE: BlockTree = BlockTree::temporary()
            .unwrap_or_else(|e| panic!("a temporary block tree: {e}"));
    }
    TREE.with(|t| {
        t.clear().unwrap_or_else(|e| panic!("{e}"));
        tree_in(t, u)
    })
}

fn tree_in(t: &BlockTree, u: &mut Unstructured<'_>) -> Result<()> {
    let mut bounds: Vec<Vec<u8>> = (0..u.int_in_range(0..=4u8)?)
        .map(|_| key(u))
        .collect::<Result<_>>()?;
    if !u.ratio(1, 8)? {
        bounds.push(Vec::new());
    }
    bounds.sort();
    bounds.dedup();
    // Each block: raw bytes from the input, or well-formed entries (a
    // block with a bound and no entries is not stored).
    let mut blocks: Vec<(Vec<u8>, Block)> = Vec::new();
    for bound in bounds {
        if u.ratio(1, 6)? {
            blocks.push((bound, Err(u.arbitrary()?)));
            continue;
        }
        let mut entries = BTreeMap::new();
        for _ in 0..u.int_in_range(0..=6u8)? {
            let k = [bound.as_slice(), &key(u)?].concat();
            entries.insert(k, value(u)?);
        }
        if bound.is_empty() || !entries.is_empty() {
            blocks.push((bound, Ok(entries.into_iter().collect())));
        }
    }
    let hostile = blocks.iter().any(|(_, b)| b.is_err());
    let mut model = BTreeMap::new();
    for (i, (bound, block)) in blocks.iter().enumerate() {
        let next = blocks.get(i + 1).map(|(b, _)| b);
        let raw = match block {
            Err(raw) => raw.clone(),
            Ok(entries) => {
                for (k, v) in entries {
                    if next.is_none_or(|n| k < n) {
                        model.insert(k.clone(), v.clone());
                    }
                }
                encode_block(entries)
            }
        };
        t.put_raw(bound, &raw).unwrap_or_else(|e| panic!("{e}"));
    }
    let in_range =
        |model: &BTreeMap<Vec<u8>, Vec<u8>>, from: &[u8], to: Option<&[u8]>| -> Entries {
            model
                .iter()
                .filter(|(k, _)| k.as_slice() >= from && to.is_none_or(|t| k.as_slice() < t))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
    for _ in 0..u.int_in_range(1..=3u8)? {
        let from = if u.arbitrary()? { key(u)? } else { Vec::new() };
        let to = if u.arbitrary()? { Some(key(u)?) } else { None };
        let got = t.entries(&from, to.as_deref());
        if !hostile {
            let want = in_range(&model, &from, to.as_deref());
            assert!(
                got.as_ref() == Ok(&want),
                "a range read [{from:?}, {to:?}) gives {:?}, not {:?}",
                got.map(|e| keys(&e)),
                keys(&want)
            );
        }
        let probe = key(u)?;
        let got = t.get(&probe);
        if !hostile {
            assert_eq!(got, Ok(model.get(&probe).cloned()), "a point read");
        }
        let got = t.last_below(&probe);
        if !hostile {
            let want = model
                .range(..probe.clone())
                .next_back()
                .map(|(k, v)| (k.clone(), v.clone()));
            assert_eq!(got, Ok(want), "last_below");
        }
    }
    let mut changes = BTreeMap::new();
    for _ in 0..u.int_in_range(0..=12u8)? {
        let k = key(u)?;
        let v = if u.ratio(1, 3)? {
            None
        } else {
            Some(value(u)?)
        };
        changes.insert(k, v);
    }
    let changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = changes.into_iter().collect();
    let folded = t.fold(&changes);
    if !hostile {
        if let Err(e) = folded {
            panic!("folding into well-formed blocks failed: {e}");
        }
        for (k, v) in changes {
            match v {
                Some(v) => model.insert(k, v),
                None => model.remove(&k),
            };
        }
        let got = t.entries(&[], None);
        let want = in_range(&model, &[], None);
        assert!(
            got.as_ref() == Ok(&want),
            "after a fold, the tree holds {:?}, not {:?}",
            got.map(|e| keys(&e)),
            keys(&want)
        );
        for k in model.keys() {
            assert_eq!(
                t.get(k),
                Ok(model.get(k).cloned()),
                "a point read after a fold"
            );
        }
    }
    Ok(())
}
