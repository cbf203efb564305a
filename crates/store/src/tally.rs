//! Tallies: counters summed over documents, kept in the same commit as the
//! documents, so a caller can answer "how many" without reading them.
//!
//! The store does not know what it counts. A caller hands each document's
//! *facts* over as opaque bytes, and at open a [`Tallier`] that turns a
//! change of facts into [`Tally`] entries to add (a key of the caller's
//! choosing and a row of counters, negative where the old facts counted).
//! The change is worked out before the commit takes the writer lock, from
//! the facts stored then; under the lock the commit checks those are still
//! the stored facts (else works it out again), adds the entries to the
//! summed counters and writes them back, so every tally always equals the
//! sum over the documents stored.
//!
//! Keys: [`SHARE`] + document id holds a document's facts; [`TALLY`] + the
//! caller's key holds the summed counters (a key whose counters are all
//! zero is deleted). A tallier whose [`Tallier::version`] differs from the
//! one the tallies were summed with has them rebuilt from the facts at
//! open (see [`Store::rebuild_tallies`](crate::Store::rebuild_tallies)).

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hallsync_model::DocId;

use crate::wal::Op;
use crate::{corrupt, decode, Store, StoreError};

/// A document's facts.
pub(crate) const SHARE: u8 = b'k';
/// A tally's summed counters.
pub(crate) const TALLY: u8 = b't';
/// The version of the tallier the tallies were summed with.
pub(crate) const TALLIER_KEY: &[u8] = b"mtallier";

/// One entry a document's facts contribute to: the caller's key and its
/// counters (a counter missing from the end counts as zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The caller's key.
    pub key: Vec<u8>,
    /// The counters.
    pub counts: Vec<i64>,
}

/// What a document's facts changing from the first (`None`: none) to the
/// second adds to the tallies.
pub type Delta = dyn Fn(Option<&[u8]>, &[u8]) -> Result<Vec<Tally>, String> + Send + Sync;

/// The caller's reading of facts as tallies, with the version of its key
/// layout and counters.
#[derive(Clone)]
pub struct Tallier {
    /// Changes whenever `delta` would give another answer for the same
    /// facts.
    pub version: u32,
    /// The tallies a change of facts adds; pure, and `delta(None, f)`
    /// minus `delta(None, e)` must equal `delta(Some(e), f)`.
    pub delta: Arc<Delta>,
}

impl std::fmt::Debug for Tallier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tallier")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Counters summed per key, as a commit collects them.
#[derive(Debug, Default)]
pub(crate) struct Deltas(BTreeMap<Vec<u8>, Vec<i64>>);

impl Deltas {
    /// Adds `sign` × each tally, keeping its key and counters where the
    /// key is new.
    pub(crate) fn add(&mut self, tallies: Vec<Tally>, sign: i64) {
        for t in tallies {
            match self.0.entry(t.key) {
                Entry::Occupied(mut row) => add_into(row.get_mut(), &t.counts, sign),
                Entry::Vacant(v) => {
                    let mut counts = t.counts;
                    if sign != 1 {
                        counts.iter_mut().for_each(|c| *c = c.wrapping_mul(sign));
                    }
                    v.insert(counts);
                }
            }
        }
    }

    /// The keys whose counters change, with the change.
    pub(crate) fn into_changes(self) -> impl Iterator<Item = (Vec<u8>, Vec<i64>)> {
        self.0
            .into_iter()
            .filter(|(_, row)| row.iter().any(|c| *c != 0))
    }
}

/// A tally's key and counters.
pub(crate) type Row = (Vec<u8>, Vec<i64>);

/// What tallies add, summed by key in key order, keys that add nothing
/// left out.
pub(crate) type Sums = Vec<Row>;

/// Worked out before the writer lock is taken.
fn summed(tallies: Vec<Tally>) -> Sums {
    let mut d = Deltas::default();
    d.add(tallies, 1);
    d.into_changes().collect()
}

/// The sums of a commit's writes together: the one write's own when only
/// one changes the tallies (most commits), so nothing is copied under the
/// writer lock.
pub(crate) fn together<'a>(parts: &[Cow<'a, [Row]>]) -> Cow<'a, [Row]> {
    match parts {
        [] => Cow::Borrowed(&[]),
        [one] => one.clone(),
        many => {
            let mut d = Deltas::default();
            for (k, row) in many.iter().flat_map(|p| p.iter()) {
                add_into(d.0.entry(k.clone()).or_default(), row, 1);
            }
            Cow::Owned(d.into_changes().collect())
        }
    }
}

/// `row += sign × counts`, growing `row` as needed.
pub(crate) fn add_into(row: &mut Vec<i64>, counts: &[i64], sign: i64) {
    if row.len() < counts.len() {
        row.resize(counts.len(), 0);
    }
    for (r, c) in row.iter_mut().zip(counts) {
        *r = r.wrapping_add(c.wrapping_mul(sign));
    }
}

pub(crate) fn tally_key(key: &[u8]) -> Vec<u8> {
    crate::key(TALLY, key)
}

pub(crate) fn share_key(id: &DocId) -> Vec<u8> {
    crate::key(SHARE, id.as_str().as_bytes())
}

/// The counters as stored, trailing zeros dropped: versioned postcard,
/// as every value, written in one allocation (this runs for every tally a
/// commit changes, under the writer lock).
pub(crate) fn encode_counts(key: &[u8], counts: &[i64]) -> Result<Vec<u8>, StoreError> {
    let end = counts.iter().rposition(|c| *c != 0).map_or(0, |p| p + 1);
    let mut out = Vec::with_capacity(2 + end * 3);
    out.push(crate::VALUES);
    postcard::to_extend(&counts[..end], out)
        .map_err(|e| corrupt(&String::from_utf8_lossy(key), e.to_string()))
}

/// A row's counters as stored; the key is spelt out only for an error
/// (this runs under the writer lock).
pub(crate) fn decode_counts(key: &[u8], v: &[u8]) -> Result<Vec<i64>, StoreError> {
    decode("", v).or_else(|_| decode(&String::from_utf8_lossy(key), v))
}

/// Every tally row (key with the store's prefix, value as stored: a row
/// of 63 counters is mostly zeros, a byte each), held in memory under the
/// writer lock: a commit adds to a row without reading the store, and
/// knows a row is new without looking for it. Most rows a case adds are
/// new (the instants its cards would fall due), and a key the memtable
/// does not hold is otherwise looked for in a compressed block. Loaded at
/// open, after the log is replayed; changed only by [`Rows::apply`], with
/// what each commit wrote, once it is logged.
#[derive(Debug, Default)]
pub(crate) struct Rows(HashMap<Box<[u8]>, Box<[u8]>>);

/// Tally rows a commit writes: each key's new value, `None` where the row
/// is deleted.
pub(crate) type RowChanges = Vec<(Vec<u8>, Option<Vec<u8>>)>;

impl Rows {
    /// A row's counters (empty: none).
    pub(crate) fn counts(&self, key: &[u8]) -> Result<Vec<i64>, StoreError> {
        self.0
            .get(key)
            .map_or(Ok(Vec::new()), |v| decode_counts(key, v))
    }

    /// Takes in what a logged commit wrote to tally rows.
    pub(crate) fn apply(&mut self, changes: RowChanges) {
        for (k, row) in changes {
            match row {
                Some(v) => self.0.insert(k.into_boxed_slice(), v.into_boxed_slice()),
                None => self.0.remove(&k[..]),
            };
        }
    }
}

/// The tally rows operations outside documents write (a recount, a
/// repair), decoded before anything is logged.
pub(crate) fn raw_rows(ops: &[Op]) -> Result<RowChanges, StoreError> {
    ops.iter()
        .filter(|op| op.key().first() == Some(&TALLY))
        .map(|op| match op {
            Op::Put(k, v) => {
                decode_counts(k, v)?;
                Ok((k.clone(), Some(v.clone())))
            }
            Op::Del(k) => Ok((k.clone(), None)),
        })
        .collect()
}

/// The operation storing `row` under `key`: a put, or a delete when every
/// counter is zero.
pub(crate) fn put_row(key: Vec<u8>, row: &[i64]) -> Result<Op, StoreError> {
    Ok(if row.iter().all(|c| *c == 0) {
        Op::Del(key)
    } else {
        let v = encode_counts(&key, row)?;
        Op::Put(key, v)
    })
}

/// What a change of one document's facts adds; a failure names the
/// document.
pub(crate) fn delta(
    tallier: &Tallier,
    doc: &str,
    old: Option<&[u8]>,
    new: &[u8],
) -> Result<Vec<Tally>, StoreError> {
    (tallier.delta)(old, new).map_err(|e| corrupt(doc, format!("its tally facts: {e}")))
}

/// A document's new facts as a commit carries them: the change they make
/// to the tallies, worked out against the facts stored before the commit.
#[derive(Debug)]
pub(crate) struct Change {
    /// The new facts.
    pub(crate) facts: Vec<u8>,
    /// The facts the change was worked out against.
    pub(crate) against: Option<Vec<u8>>,
    /// What it adds to the tallies.
    pub(crate) adds: Sums,
}

impl Store {
    /// A document's stored tally facts.
    pub fn facts(&self, id: &DocId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(&share_key(id))?.map(|v| v.to_vec()))
    }

    /// Works out, outside the writer lock, what new facts for a document
    /// add to the tallies; `None` when they are the facts stored.
    pub(crate) fn facts_change(
        &self,
        id: &DocId,
        facts: Vec<u8>,
    ) -> Result<Option<Change>, StoreError> {
        let against = self.facts(id)?;
        if against.as_deref() == Some(&facts[..]) {
            return Ok(None);
        }
        let adds = match &self.options.tallier {
            Some(t) => summed(delta(t, id.as_str(), against.as_deref(), &facts)?),
            None => Vec::new(),
        };
        Ok(Some(Change {
            facts,
            against,
            adds,
        }))
    }

    /// Under the writer lock: what a document's change adds, worked out
    /// again if its stored facts (`now`) are no longer those it was worked
    /// out against.
    pub(crate) fn tally_change<'a>(
        &self,
        id: &DocId,
        now: Option<&[u8]>,
        change: &'a Change,
    ) -> Result<Cow<'a, [Row]>, StoreError> {
        Ok(match &self.options.tallier {
            Some(t) if now != change.against.as_deref() => {
                Cow::Owned(summed(delta(t, id.as_str(), now, &change.facts)?))
            }
            _ => Cow::Borrowed(&change.adds),
        })
    }

    /// Every tally row as stored (see [`Rows`]).
    pub(crate) fn rows(&self) -> Result<Rows, StoreError> {
        let mut rows = HashMap::new();
        for kv in self.mem.prefix(&self.blocks, &[TALLY]) {
            let (k, v) = kv?;
            rows.insert(k[..].into(), v[..].into());
        }
        Ok(Rows(rows))
    }

    /// The counters summed under one key (empty: none).
    pub fn tally(&self, key: &[u8]) -> Result<Vec<i64>, StoreError> {
        let k = tally_key(key);
        match self.get(&k)? {
            Some(v) => decode_counts(&k, &v),
            None => Ok(Vec::new()),
        }
    }

    /// Every tally whose key lies in `[from, to)` (`to` `None`: to the end
    /// of the tallies), in key order, keys without the store's prefix.
    pub fn tallies(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<i64>), StoreError>> + '_ {
        let to = to.map_or_else(|| vec![TALLY + 1], tally_key);
        self.mem
            .range(&self.blocks, tally_key(from), Some(to))
            .map(|kv| {
                let (k, v) = kv?;
                let counts = decode_counts(&k, &v)?;
                Ok((k[1..].to_vec(), counts))
            })
    }

    /// Every tally whose key starts with `prefix`.
    pub fn tallies_with_prefix(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<i64>), StoreError>> + '_ {
        let end = crate::mem::prefix_end(&tally_key(prefix));
        let to = end.unwrap_or_else(|| vec![TALLY + 1]);
        self.tallies(prefix, Some(&to[1..]))
    }

    /// The tallies summed afresh from every document's facts.
    fn recount(&self) -> Result<BTreeMap<Vec<u8>, Vec<i64>>, StoreError> {
        let mut sums = Deltas::default();
        if let Some(tallier) = &self.options.tallier {
            for kv in self.mem.prefix(&self.blocks, &[SHARE]) {
                let (k, v) = kv?;
                let doc = String::from_utf8_lossy(&k[1..]);
                sums.add(delta(tallier, &doc, None, &v)?, 1);
            }
        }
        Ok(sums.into_changes().collect())
    }

    /// Checks that every tally equals the sum over the documents' facts;
    /// returns the number of tallies.
    pub fn verify_tallies(&self) -> Result<usize, StoreError> {
        let expected = self.recount()?;
        let mut stored = BTreeMap::new();
        for kv in self.tallies(&[], None) {
            let (k, v) = kv?;
            stored.insert(k, v);
        }
        let n = stored.len();
        let first_difference = expected
            .keys()
            .chain(stored.keys())
            .find(|k| expected.get(*k) != stored.get(*k));
        match first_difference {
            None => Ok(n),
            Some(k) => Err(corrupt(
                &String::from_utf8_lossy(k),
                format!(
                    "the tally holds {:?} but the documents sum to {:?}",
                    stored.get(k),
                    expected.get(k)
                ),
            )),
        }
    }

    /// Sums every tally afresh from the documents' facts (after the
    /// tallier changed), in bounded commits; the tallier's version is
    /// recorded with the last, so a rebuild cut short is done again.
    pub fn rebuild_tallies(&self) -> Result<(), StoreError> {
        const BATCH: usize = 20_000;
        let started = std::time::Instant::now();
        let sums = self.recount()?;
        let stale = self
            .tallies(&[], None)
            .map(|kv| kv.map(|(k, _)| k))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ops = Vec::new();
        for k in stale.into_iter().filter(|k| !sums.contains_key(k)) {
            ops.push(Op::Del(tally_key(&k)));
        }
        for (k, row) in &sums {
            ops.push(put_row(tally_key(k), row)?);
        }
        let total = ops.len();
        while ops.len() > BATCH {
            let rest = ops.split_off(BATCH);
            self.commit_raw(std::mem::replace(&mut ops, rest))?;
        }
        if let Some(t) = &self.options.tallier {
            ops.push(Op::Put(
                TALLIER_KEY.to_vec(),
                crate::versioned(&t.version.to_be_bytes()),
            ));
        }
        self.commit_raw(ops)?;
        if total > 0 {
            tracing::info!(
                tallies = sums.len(),
                ms = started.elapsed().as_millis() as u64,
                "summed the statistics' tallies afresh from every document"
            );
        }
        Ok(())
    }

    /// Rebuilds the tallies if a tallier of another version summed them.
    pub(crate) fn rebuild_tallies_if_stale(&self) -> Result<(), StoreError> {
        let Some(tallier) = &self.options.tallier else {
            return Ok(());
        };
        let stored = match self.get(TALLIER_KEY)? {
            Some(v) => crate::unversioned("meta/tallier", &v)?
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| corrupt("meta/tallier", "not 4 bytes"))?,
            None => 0,
        };
        if stored == tallier.version {
            return Ok(());
        }
        self.rebuild_tallies()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_drop_keys_that_cancel_and_rows_grow_to_the_longest() {
        let t = |k: &str, c: &[i64]| Tally {
            key: k.as_bytes().to_vec(),
            counts: c.to_vec(),
        };
        let mut d = Deltas::default();
        d.add(vec![t("a", &[1, 2]), t("b", &[1])], -1);
        d.add(vec![t("a", &[1, 2, 3]), t("b", &[1])], 1);
        let changes: Vec<_> = d.into_changes().collect();
        assert_eq!(changes, vec![(b"a".to_vec(), vec![0, 0, 3])]);
    }

    #[test]
    fn zero_rows_are_deleted_and_trailing_zeros_not_stored() {
        assert!(matches!(
            put_row(b"x".to_vec(), &[0, 0]).unwrap(),
            Op::Del(_)
        ));
        let Op::Put(_, v) = put_row(b"x".to_vec(), &[4, 0, 0]).unwrap() else {
            panic!("a put");
        };
        assert_eq!(decode_counts(b"x", &v).unwrap(), vec![4]);
    }
}
