//! The index: terms a caller files each document under (a field tag and an
//! exact value, or a point on an ordered range), kept beside the document
//! in the same commit, with a summary to list it by without loading the
//! document; and the re-derivation of such derived data. The store does not
//! know what a field means: the caller chooses the tags and the values.

use hallsync_model::DocId;
use serde::{Deserialize, Serialize};

use crate::wal::Op;
use crate::*;

/// One term a document is filed under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Term {
    /// Listed and counted by its exact value, or by a prefix of the value
    /// ([`Store::indexed_under`]). The value must hold no zero byte.
    Exact(u8, Vec<u8>),
    /// Listed by range, in order of the number.
    Ordered(u8, i64),
}

/// What a document is filed under, and the caller's summary of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRecord {
    /// Its terms.
    pub terms: Vec<Term>,
    /// The caller's summary, for listing without loading the document.
    pub summary: Vec<u8>,
}

/// The subspace of exact terms.
const EXACT: u8 = b'=';
/// The subspace of ordered terms.
const ORDERED: u8 = b'<';

/// A stored document's derived data, made afresh: its index record and its
/// tally facts (`None`: unchanged).
#[derive(Debug, Clone)]
pub struct Rederived {
    /// The document.
    pub id: DocId,
    /// Its new index record.
    pub index: Option<IndexRecord>,
    /// Its new tally facts.
    pub facts: Option<Vec<u8>>,
}

/// Refuses a record the index could not file faithfully.
pub(crate) fn check_record(id: &DocId, r: &IndexRecord) -> Result<(), StoreError> {
    match r.terms.iter().find_map(|t| match t {
        Term::Exact(field, v) if v.contains(&0) => Some(*field),
        _ => None,
    }) {
        Some(field) => Err(StoreError::BadIndex {
            key: id.to_string(),
            reason: format!("the value of field {field} holds a zero byte"),
        }),
        None => Ok(()),
    }
}

fn exact_prefix(field: u8, value: &[u8]) -> Vec<u8> {
    let mut k = vec![INDEX, EXACT, field];
    k.extend_from_slice(value);
    k
}

fn ordered_bound(field: u8, at: i64) -> Vec<u8> {
    let mut k = vec![INDEX, ORDERED, field];
    k.extend_from_slice(&time_bytes(at));
    k
}

pub(crate) fn index_keys(id: &DocId, r: &IndexRecord) -> Vec<Vec<u8>> {
    r.terms
        .iter()
        .map(|t| {
            let mut k = match t {
                Term::Exact(field, v) => {
                    let mut k = exact_prefix(*field, v);
                    k.push(0);
                    k
                }
                Term::Ordered(field, at) => ordered_bound(*field, *at),
            };
            k.extend_from_slice(id.as_str().as_bytes());
            k
        })
        .collect()
}

/// The document an exact term's key files (a document id holds no zero
/// byte, the value before it none either).
fn exact_doc(k: &[u8]) -> Result<DocId, StoreError> {
    match k.iter().rposition(|b| *b == 0) {
        Some(p) => doc_id(&k[p + 1..]),
        None => Err(corrupt("index", "an exact term without its separator")),
    }
}

/// The entries of a scan, counted.
pub(crate) fn count(mut scan: mem::Scan<'_>) -> Result<usize, StoreError> {
    scan.try_fold(0, |n, kv| kv.map(|_| n + 1).map_err(StoreError::from))
}

/// Adds to `batch` the index changes from `old` to `new`: only the keys
/// that differ, so a typical event touches none or one or two.
pub(crate) fn reindex(ops: &mut Vec<Op>, id: &DocId, old: Option<&IndexRecord>, new: &IndexRecord) {
    let new_keys = index_keys(id, new);
    let old_keys = old.map(|o| index_keys(id, o)).unwrap_or_default();
    for k in old_keys.iter().filter(|k| !new_keys.contains(k)) {
        ops.push(Op::Del(k.clone()));
    }
    for k in new_keys.into_iter().filter(|k| !old_keys.contains(k)) {
        ops.push(Op::Put(k, Vec::new()));
    }
}

impl Store {
    /// Replaces the index records and tally facts of stored documents
    /// (derived data only: the documents and the feed are untouched),
    /// durably; with `version`, also
    /// records in the same commit that the derived data is now of that
    /// version (see [`Store::derived_version`]).
    pub fn rederive(
        &self,
        records: Vec<Rederived>,
        version: Option<u32>,
    ) -> Result<(), StoreError> {
        let writes: Vec<Write> = records
            .into_iter()
            .map(|r| Write {
                id: r.id,
                body: Body::Index,
                index: r.index,
                facts: r.facts,
                change: None,
                heads: Vec::new(),
                origin: None,
            })
            .collect();
        let extra = Extra {
            derived: version,
            ..Extra::default()
        };
        let writes = self.with_changes(writes)?;
        self.commit(&writes, extra).map(drop)
    }

    /// The version of the derived data (the index records and facts) last
    /// recorded with [`Store::rederive`]; 0 if none was.
    pub fn derived_version(&self) -> Result<u32, StoreError> {
        let Some(v) = self.get(DERIVED_KEY)? else {
            return Ok(0);
        };
        unversioned("meta/derived version", &v)?
            .try_into()
            .map(u32::from_be_bytes)
            .map_err(|_| corrupt("meta/derived version", "not 4 bytes"))
    }

    /// The index record of a document.
    pub fn index_record(&self, id: &DocId) -> Result<Option<IndexRecord>, StoreError> {
        Ok(self.head(id)?.and_then(|h| h.index))
    }

    /// The index records of `ids` (documents not stored or not filed are
    /// left out), best asked in ascending order: each block of heads is
    /// then read once while the ids stay in it, where a lookup each would
    /// read it again. Not a snapshot, like a scan: a document written
    /// meanwhile may be seen as it was.
    pub fn index_records_of<'a>(
        &'a self,
        ids: impl IntoIterator<Item = DocId> + 'a,
    ) -> impl Iterator<Item = Result<(DocId, IndexRecord), StoreError>> + 'a {
        let mut reader = self.blocks.reader();
        ids.into_iter().filter_map(move |id| {
            let head = self
                .mem
                .get_with(&mut reader, &key(HEAD, id.as_str().as_bytes()))
                .map_err(StoreError::from)
                .and_then(|v| v.map(|v| decode::<Head>(id.as_str(), &v)).transpose());
            match head {
                Ok(h) => h.and_then(|h| h.index).map(|r| Ok((id, r))),
                Err(e) => Some(Err(e)),
            }
        })
    }

    /// Every document whose id begins with `prefix` and that has an index
    /// record, with the record, in id order.
    pub fn index_records(
        &self,
        prefix: &str,
    ) -> impl Iterator<Item = Result<(DocId, IndexRecord), StoreError>> + '_ {
        self.mem
            .prefix(&self.blocks, &key(HEAD, prefix.as_bytes()))
            .filter_map(|kv| {
                let (k, v) = match kv {
                    Ok(kv) => kv,
                    Err(e) => return Some(Err(e.into())),
                };
                let id = match doc_id(&k[1..]) {
                    Ok(id) => id,
                    Err(e) => return Some(Err(e)),
                };
                match decode::<Head>(id.as_str(), &v) {
                    Ok(h) => h.index.map(|r| Ok((id, r))),
                    Err(e) => Some(Err(e)),
                }
            })
    }

    /// Documents filed under `field` with exactly `value`.
    pub fn indexed(&self, field: u8, value: &[u8]) -> Result<Vec<DocId>, StoreError> {
        let mut prefix = exact_prefix(field, value);
        prefix.push(0);
        self.exact_docs(&prefix)
    }

    /// Documents filed under `field` with a value that begins with
    /// `prefix`.
    pub fn indexed_under(&self, field: u8, prefix: &[u8]) -> Result<Vec<DocId>, StoreError> {
        self.exact_docs(&exact_prefix(field, prefix))
    }

    fn exact_docs(&self, prefix: &[u8]) -> Result<Vec<DocId>, StoreError> {
        self.mem
            .prefix(&self.blocks, prefix)
            .map(|kv| exact_doc(&kv?.0))
            .collect()
    }

    /// How many documents are filed under `field` with exactly `value`,
    /// counted from the index alone (no record is read).
    pub fn count_indexed(&self, field: u8, value: &[u8]) -> Result<usize, StoreError> {
        let mut prefix = exact_prefix(field, value);
        prefix.push(0);
        count(self.mem.prefix(&self.blocks, &prefix))
    }

    /// Documents whose ordered `field` lies in `[from, to)`, lowest first.
    pub fn indexed_between(
        &self,
        field: u8,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, DocId)>, StoreError> {
        self.ordered(field, from, Some(to)).collect()
    }

    /// Documents whose ordered `field` is `from` or more, lowest first
    /// (ties in id order), read as they are taken: a caller that stops
    /// early reads only what it took. Like every scan it is not a snapshot:
    /// a document written meanwhile may be seen at its old point, its new
    /// one, or both.
    pub fn indexed_from(
        &self,
        field: u8,
        from: i64,
    ) -> impl Iterator<Item = Result<(i64, DocId), StoreError>> + '_ {
        self.ordered(field, from, None)
    }

    fn ordered(
        &self,
        field: u8,
        from: i64,
        to: Option<i64>,
    ) -> impl Iterator<Item = Result<(i64, DocId), StoreError>> + '_ {
        let end = match to {
            Some(t) => Some(ordered_bound(field, t)),
            None => mem::prefix_end(&[INDEX, ORDERED, field]),
        };
        self.mem
            .range(&self.blocks, ordered_bound(field, from), end)
            .map(|kv| {
                let k = kv?.0;
                let t = k
                    .get(3..11)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(|b| (u64::from_be_bytes(b) ^ (1 << 63)) as i64)
                    .ok_or_else(|| corrupt("index", "short ordered key"))?;
                Ok((t, doc_id(&k[11..])?))
            })
    }

    /// How many documents have the ordered `field`, counted from the index
    /// alone.
    pub fn count_ordered(&self, field: u8) -> Result<usize, StoreError> {
        count(self.mem.prefix(&self.blocks, &[INDEX, ORDERED, field]))
    }
}
