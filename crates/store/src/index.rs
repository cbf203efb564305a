//! The case index: fields of each case (region, item, category, department,
//! state, times) as keys to list and count by, kept beside the document in
//! the same commit; and the re-derivation of such derived data.

use hallsync_model::DocId;
use serde::{Deserialize, Serialize};

use crate::wal::Op;
use crate::*;

/// The indexed and summarised facts of a case, computed by the caller from
/// the case document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// Region code (canonical).
    pub region: String,
    /// Implementation code of the item.
    pub item: String,
    /// Category type code.
    pub category: String,
    /// Implementing department.
    pub department: String,
    /// Standard state code.
    pub state: u8,
    /// When it counts as accepted (seconds since the epoch).
    pub accepted: Option<i64>,
    /// Committed due time while the case is open.
    pub due: Option<i64>,
    /// When concluded.
    pub concluded: Option<i64>,
    /// Caller's summary for listing without loading the document.
    pub summary: Vec<u8>,
}

/// A field of the case index with an exact value.
#[derive(Debug, Clone, Copy)]
pub enum IndexKey<'a> {
    /// Cases whose region lies within this one (canonical prefix).
    Region(&'a str),
    /// Cases under one item.
    Item(&'a str),
    /// Cases of one category.
    Category(&'a str),
    /// Cases of one department.
    Department(&'a str),
    /// Cases in one state.
    State(u8),
}

/// A time field of the case index.
#[derive(Debug, Clone, Copy)]
pub enum TimeField {
    /// Acceptance.
    Accepted,
    /// Committed due time (open cases only).
    Due,
    /// Conclusion.
    Concluded,
}

impl TimeField {
    pub(crate) fn tag(self) -> u8 {
        match self {
            TimeField::Accepted => b'a',
            TimeField::Due => b'u',
            TimeField::Concluded => b'f',
        }
    }
}

/// A stored document's derived data, made afresh: its case record and its
/// tally facts (`None`: unchanged).
#[derive(Debug, Clone)]
pub struct Rederived {
    /// The document.
    pub id: DocId,
    /// Its new case record.
    pub case: Option<CaseRecord>,
    /// Its new tally facts.
    pub facts: Option<Vec<u8>>,
}

pub(crate) fn index_keys(id: &DocId, r: &CaseRecord) -> Vec<Vec<u8>> {
    let exact = |tag: u8, v: &[u8], sep: u8| {
        let mut k = vec![INDEX, tag];
        k.extend_from_slice(v);
        k.push(sep);
        k.extend_from_slice(id.as_str().as_bytes());
        k
    };
    let timed = |f: TimeField, t: i64| {
        let mut k = vec![INDEX, f.tag()];
        k.extend_from_slice(&time_bytes(t));
        k.extend_from_slice(id.as_str().as_bytes());
        k
    };
    let mut keys = vec![
        exact(b'r', r.region.as_bytes(), b'/'),
        exact(b'i', r.item.as_bytes(), 0),
        exact(b'c', r.category.as_bytes(), 0),
        exact(b'd', r.department.as_bytes(), 0),
        exact(b's', &[r.state], 0),
    ];
    keys.extend(r.accepted.map(|t| timed(TimeField::Accepted, t)));
    keys.extend(r.due.map(|t| timed(TimeField::Due, t)));
    keys.extend(r.concluded.map(|t| timed(TimeField::Concluded, t)));
    keys
}

/// The prefix of the index keys matching `key`.
pub(crate) fn exact_prefix(key: IndexKey<'_>) -> Vec<u8> {
    let state;
    let (tag, value, sep): (u8, &[u8], Option<u8>) = match key {
        // Region keys are `region/id`: a prefix matches the subtree.
        IndexKey::Region(r) => (b'r', r.as_bytes(), None),
        IndexKey::Item(v) => (b'i', v.as_bytes(), Some(0)),
        IndexKey::Category(v) => (b'c', v.as_bytes(), Some(0)),
        IndexKey::Department(v) => (b'd', v.as_bytes(), Some(0)),
        IndexKey::State(s) => {
            state = [s];
            (b's', &state, Some(0))
        }
    };
    let mut prefix = vec![INDEX, tag];
    prefix.extend_from_slice(value);
    prefix.extend(sep);
    prefix
}

/// The entries of a scan, counted.
pub(crate) fn count(mut scan: mem::Scan<'_>) -> Result<usize, StoreError> {
    scan.try_fold(0, |n, kv| kv.map(|_| n + 1).map_err(StoreError::from))
}

/// Adds to `batch` the index changes from `old` to `new`: only the keys
/// that differ, so a typical event touches none or one or two.
pub(crate) fn reindex(ops: &mut Vec<Op>, id: &DocId, old: Option<&CaseRecord>, new: &CaseRecord) {
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
    /// Replaces the case records and tally facts of stored documents
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
                case: r.case,
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

    /// The version of the derived data (the case index records) last
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

    /// The index record of a case.
    pub fn case_record(&self, id: &DocId) -> Result<Option<CaseRecord>, StoreError> {
        Ok(self.head(id)?.and_then(|h| h.case))
    }

    /// Every case with its record, in id order.
    pub fn case_records(
        &self,
    ) -> impl Iterator<Item = Result<(DocId, CaseRecord), StoreError>> + '_ {
        self.mem
            .prefix(&self.blocks, &key(HEAD, b"case:"))
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
                    Ok(h) => h.case.map(|c| Ok((id, c))),
                    Err(e) => Some(Err(e)),
                }
            })
    }

    /// Cases matching one exact index key.
    pub fn cases_where(&self, key: IndexKey<'_>) -> Result<Vec<DocId>, StoreError> {
        let region = matches!(key, IndexKey::Region(_));
        let prefix = exact_prefix(key);
        self.mem
            .prefix(&self.blocks, &prefix)
            .map(|kv| {
                let k = kv?.0;
                let rest = &k[prefix.len()..];
                let id = if region {
                    rest.iter()
                        .position(|b| *b == b'/')
                        .map_or(rest, |p| &rest[p + 1..])
                } else {
                    rest
                };
                doc_id(id)
            })
            .collect()
    }

    /// Cases whose `field` lies in `[from, to)`, oldest first.
    pub fn cases_between(
        &self,
        field: TimeField,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, DocId)>, StoreError> {
        self.timed_cases(field, from, Some(to)).collect()
    }

    /// Cases whose `field` is `from` or later, oldest first (ties in id
    /// order), read as they are taken: a caller that stops early reads
    /// only what it took. Like every scan it is not a snapshot: a case
    /// written meanwhile may be seen at its old time, its new one, or both.
    pub fn cases_from(
        &self,
        field: TimeField,
        from: i64,
    ) -> impl Iterator<Item = Result<(i64, DocId), StoreError>> + '_ {
        self.timed_cases(field, from, None)
    }

    pub(crate) fn timed_cases(
        &self,
        field: TimeField,
        from: i64,
        to: Option<i64>,
    ) -> impl Iterator<Item = Result<(i64, DocId), StoreError>> + '_ {
        let bound = |t: i64| {
            let mut k = vec![INDEX, field.tag()];
            k.extend_from_slice(&time_bytes(t));
            k
        };
        let end = match to {
            Some(t) => Some(bound(t)),
            None => Some(vec![INDEX, field.tag() + 1]),
        };
        self.mem.range(&self.blocks, bound(from), end).map(|kv| {
            let k = kv?.0;
            let t = k
                .get(2..10)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(|b| (u64::from_be_bytes(b) ^ (1 << 63)) as i64)
                .ok_or_else(|| corrupt("index", "short time key"))?;
            Ok((t, doc_id(&k[10..])?))
        })
    }

    /// How many cases have `field` set (for [`TimeField::Due`]: the open
    /// cases with a due time), counted from the index alone.
    pub fn count_cases_with(&self, field: TimeField) -> Result<usize, StoreError> {
        count(self.mem.prefix(&self.blocks, &[INDEX, field.tag()]))
    }

    /// How many cases match one exact index key, counted from the index
    /// alone (no case record is read).
    pub fn count_cases_where(&self, key: IndexKey<'_>) -> Result<usize, StoreError> {
        count(self.mem.prefix(&self.blocks, &exact_prefix(key)))
    }
}
