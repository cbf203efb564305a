//! The hallsync store: every record as an Automerge document in sled, a
//! change feed for replication, and a case index, kept in step atomically.
//!
//! Layout (one sled tree each; every value starts with a format byte):
//!
//! | tree       | key                         | value                          |
//! |------------|-----------------------------|--------------------------------|
//! | `docs`     | doc id                      | saved (compacted) document     |
//! | `chunks`   | doc id, 0, seq (u64 BE)     | changes saved after the above  |
//! | `feed`     | seq (u64 BE)                | doc id                         |
//! | `feed_pos` | doc id                      | its newest seq                 |
//! | `cases`    | doc id                      | [`CaseRecord`] (postcard)      |
//! | `index`    | field tag, value, doc id    | empty                          |
//! | `meta`     | name                        | format version, next seq       |
//!
//! A write ([`Store::commit`]) is one sled transaction over all trees, and
//! returns only after the data is flushed to disk; concurrent writers share
//! flushes (group commit). Documents are loaded on demand into a bounded
//! cache of [`DocHandle`]s; at most one handle per document exists at a time,
//! so two writers never race on one document.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cache;
mod commit;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::{AutoCommit, ChangeHash};
use hallsync_model::schema::Record;
use hallsync_model::{DocId, DocKind};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use thiserror::Error;

use cache::DocCache;
use commit::GroupCommit;

/// The on-disk format this build reads and writes.
pub const FORMAT: u8 = 1;

/// Tuning knobs; the defaults suit a township PC.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Documents kept loaded in memory (a loaded case costs ~50 KB).
    pub cache_docs: usize,
    /// sled's page cache, in bytes.
    pub sled_cache_bytes: u64,
    /// A document is compacted (saved whole, its chunks dropped) when it
    /// would otherwise have this many chunks.
    pub compact_after_chunks: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_docs: 512,
            sled_cache_bytes: 32 << 20,
            compact_after_chunks: 8,
        }
    }
}

/// What went wrong in the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another process has the data directory open.
    #[error("the data directory {0} is in use by another hallsync process; stop it first")]
    Locked(PathBuf),
    /// The data was written by a newer hallsync.
    #[error("the data directory was written in store format {found}; this hallsync reads format {FORMAT}: upgrade hallsync")]
    NewerFormat {
        /// Format found on disk.
        found: u8,
    },
    /// A stored value cannot be read.
    #[error("stored data for {key} is damaged: {reason}")]
    Corrupt {
        /// Which key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// sled failed.
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    /// An earlier flush failed; the store refuses further writes.
    #[error("the store could not make writes durable ({0}); restart hallsync and check the disk")]
    Durability(String),
}

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
    fn tag(self) -> u8 {
        match self {
            TimeField::Accepted => b'a',
            TimeField::Due => b'u',
            TimeField::Concluded => b'f',
        }
    }
}

/// What a commit does to one document.
#[derive(Debug)]
enum Body {
    /// Adds changes saved after the stored state.
    Append(Vec<u8>),
    /// Replaces the saved document and drops its chunks.
    Replace {
        saved: Vec<u8>,
        drop_chunks: Vec<Vec<u8>>,
    },
}

/// One document's part of a commit.
#[derive(Debug)]
struct Write {
    id: DocId,
    body: Body,
    case: Option<CaseRecord>,
}

/// A document to persist: its handle's contents, locked by the caller, and
/// its new case index record (for cases).
#[derive(Debug)]
pub struct Pending<'a> {
    /// The document's id.
    pub id: &'a DocId,
    /// The locked document, with its new changes committed in Automerge.
    pub loaded: &'a mut Loaded,
    /// The case's new index record.
    pub case: Option<CaseRecord>,
}

/// A loaded document, shared through [`DocHandle`].
#[derive(Debug)]
pub struct Loaded {
    /// The document. Make changes, commit them, then [`Loaded::prepare`].
    pub doc: AutoCommit,
    /// The caller's typed reading of the document, kept while it is cached.
    pub record: Option<Record>,
    exists: bool,
    chunk_keys: Vec<Vec<u8>>,
    saved_heads: Vec<ChangeHash>,
}

impl Loaded {
    fn empty() -> Loaded {
        Loaded {
            doc: AutoCommit::new(),
            record: None,
            exists: false,
            chunk_keys: Vec::new(),
            saved_heads: Vec::new(),
        }
    }

    /// Whether the document is stored.
    pub fn exists(&self) -> bool {
        self.exists
    }

    /// Turns the changes made since the last commit into a write, or
    /// `None` when there is nothing to write.
    fn prepare(
        &mut self,
        id: &DocId,
        case: Option<CaseRecord>,
        compact_after: u32,
    ) -> Option<Write> {
        let heads = self.doc.get_heads();
        if self.exists && heads == self.saved_heads && case.is_none() {
            return None;
        }
        let body = if !self.exists || self.chunk_keys.len() + 1 >= compact_after as usize {
            Body::Replace {
                saved: self.doc.save(),
                drop_chunks: std::mem::take(&mut self.chunk_keys),
            }
        } else {
            Body::Append(self.doc.save_after(&self.saved_heads))
        };
        self.exists = true;
        self.saved_heads = heads;
        Some(Write {
            id: id.clone(),
            body,
            case,
        })
    }
}

/// Exclusive access to one cached document.
pub type DocHandle = Arc<Mutex<Loaded>>;

/// Locks a handle; a handle poisoned by a panic is reported as damaged.
pub fn lock(handle: &DocHandle) -> Result<MutexGuard<'_, Loaded>, StoreError> {
    handle.lock().map_err(|_| StoreError::Corrupt {
        key: "document cache".into(),
        reason: "a writer panicked while holding it".into(),
    })
}

/// The store.
#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    docs: sled::Tree,
    chunks: sled::Tree,
    feed: sled::Tree,
    feed_pos: sled::Tree,
    cases: sled::Tree,
    index: sled::Tree,
    meta: sled::Tree,
    options: StoreOptions,
    write_lock: Mutex<()>,
    group: GroupCommit,
    cache: DocCache,
}

const NEXT_SEQ: &[u8] = b"next_seq";
const FORMAT_KEY: &[u8] = b"format";

fn versioned(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 1);
    v.push(FORMAT);
    v.extend_from_slice(payload);
    v
}

fn unversioned<'a>(key: &str, v: &'a [u8]) -> Result<&'a [u8], StoreError> {
    match v.split_first() {
        Some((&FORMAT, rest)) => Ok(rest),
        Some((other, _)) => Err(StoreError::Corrupt {
            key: key.into(),
            reason: format!("unknown value format {other}"),
        }),
        None => Err(StoreError::Corrupt {
            key: key.into(),
            reason: "empty value".into(),
        }),
    }
}

fn seq_from(key: &str, v: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            key: key.into(),
            reason: "a sequence number is not 8 bytes".into(),
        })
}

/// Orders signed times as bytes.
fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn chunk_key(id: &DocId, seq: u64) -> Vec<u8> {
    let mut k = id.as_str().as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn chunk_prefix(id: &DocId) -> Vec<u8> {
    let mut k = id.as_str().as_bytes().to_vec();
    k.push(0);
    k
}

fn index_keys(id: &DocId, r: &CaseRecord) -> Vec<Vec<u8>> {
    let exact = |tag: u8, v: &[u8], sep: u8| {
        let mut k = vec![tag];
        k.extend_from_slice(v);
        k.push(sep);
        k.extend_from_slice(id.as_str().as_bytes());
        k
    };
    let timed = |f: TimeField, t: i64| {
        let mut k = vec![f.tag()];
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

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

fn decode_case(id: &str, v: &[u8]) -> Result<CaseRecord, StoreError> {
    postcard::from_bytes(unversioned(id, v)?).map_err(|e| StoreError::Corrupt {
        key: id.into(),
        reason: e.to_string(),
    })
}

fn doc_id(key: &[u8]) -> Result<DocId, StoreError> {
    std::str::from_utf8(key)
        .ok()
        .and_then(|s| DocId::parse(s).ok())
        .ok_or_else(|| StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: "not a document id".into(),
        })
}

impl Store {
    /// Opens (or creates) a store in `path`.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(options.sled_cache_bytes)
            .use_compression(true)
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    StoreError::Locked(path.to_path_buf())
                }
                sled::Error::Io(io) if io.to_string().contains("lock") => {
                    StoreError::Locked(path.to_path_buf())
                }
                other => StoreError::Db(other),
            })?;
        let meta = db.open_tree("meta")?;
        match meta.get(FORMAT_KEY)?.as_deref() {
            None => {
                meta.insert(FORMAT_KEY, &[FORMAT])?;
                db.flush()?;
            }
            Some([FORMAT]) => {}
            Some([found]) if *found > FORMAT => {
                return Err(StoreError::NewerFormat { found: *found })
            }
            Some(other) => {
                return Err(StoreError::Corrupt {
                    key: "meta/format".into(),
                    reason: format!("unexpected {other:?}"),
                })
            }
        }
        let cache = DocCache::new(options.cache_docs);
        let next = match meta.get(NEXT_SEQ)? {
            Some(v) => seq_from("meta/next_seq", &v)?,
            None => 1,
        };
        Ok(Store {
            docs: db.open_tree("docs")?,
            chunks: db.open_tree("chunks")?,
            feed: db.open_tree("feed")?,
            feed_pos: db.open_tree("feed_pos")?,
            cases: db.open_tree("cases")?,
            index: db.open_tree("index")?,
            meta,
            db,
            options,
            write_lock: Mutex::new(()),
            group: GroupCommit::starting_at(next - 1),
            cache,
        })
    }

    /// The handle of a document, loading it from disk if needed; a document
    /// not yet stored gets an empty handle ([`Loaded::exists`] is false).
    pub fn doc(&self, id: &DocId) -> Result<DocHandle, StoreError> {
        self.cache.get_or_load(id, || self.load(id))
    }

    /// Drops a document from the cache, so the next use reloads it.
    pub fn evict(&self, id: &DocId) {
        self.cache.remove(id);
    }

    fn load(&self, id: &DocId) -> Result<Loaded, StoreError> {
        let Some(saved) = self.docs.get(id.as_str())? else {
            return Ok(Loaded::empty());
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            key: id.to_string(),
            reason,
        };
        let mut doc = AutoCommit::load(unversioned(id.as_str(), &saved)?)
            .map_err(|e| corrupt(format!("saved document: {e}")))?;
        let mut chunk_keys = Vec::new();
        for kv in self.chunks.scan_prefix(chunk_prefix(id)) {
            let (k, v) = kv?;
            doc.load_incremental(unversioned(id.as_str(), &v)?)
                .map_err(|e| corrupt(format!("chunk: {e}")))?;
            chunk_keys.push(k.to_vec());
        }
        let saved_heads = doc.get_heads();
        Ok(Loaded {
            doc,
            record: None,
            exists: true,
            chunk_keys,
            saved_heads,
        })
    }

    /// Whether a document is stored.
    pub fn contains(&self, id: &DocId) -> Result<bool, StoreError> {
        Ok(self.docs.contains_key(id.as_str())?)
    }

    /// Persists the new changes of locked documents atomically, and returns
    /// once they are durable, with the feed sequence number of the last one.
    /// If it fails, the documents are dropped from the cache, so the next use
    /// reloads what is on disk; the caller must discard its locked copies.
    pub fn persist(&self, pending: &mut [Pending<'_>]) -> Result<u64, StoreError> {
        let compact_after = self.options.compact_after_chunks;
        let writes: Vec<Write> = pending
            .iter_mut()
            .filter_map(|p| p.loaded.prepare(p.id, p.case.take(), compact_after))
            .collect();
        let result = self.commit(&writes);
        match &result {
            Ok((_, seqs)) => {
                for (w, seq) in writes.iter().zip(seqs) {
                    if matches!(w.body, Body::Append(_)) {
                        if let Some(p) = pending.iter_mut().find(|p| *p.id == w.id) {
                            p.loaded.chunk_keys.push(chunk_key(&w.id, *seq));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, docs = writes.len(), "write failed; reloading the documents from disk");
                for w in &writes {
                    self.evict(&w.id);
                }
            }
        }
        result.map(|(last, _)| last)
    }

    fn commit(&self, writes: &[Write]) -> Result<(u64, Vec<u64>), StoreError> {
        if writes.is_empty() {
            return Ok((self.group.durable(), Vec::new()));
        }
        let (seq, seqs) = {
            let _guard = self
                .write_lock
                .lock()
                .map_err(|_| StoreError::Durability("a writer panicked during a commit".into()))?;
            self.group.check()?;
            let result = (
                &self.docs,
                &self.chunks,
                &self.feed,
                &self.feed_pos,
                &self.cases,
                &self.index,
                &self.meta,
            )
                .transaction(|(docs, chunks, feed, feed_pos, cases, index, meta)| {
                    let first = match meta.get(NEXT_SEQ)? {
                        Some(v) => seq_from("meta/next_seq", &v).map_err(abort)?,
                        None => 1,
                    };
                    let mut next = first;
                    for w in writes {
                        let key = w.id.as_str();
                        match &w.body {
                            Body::Append(bytes) => {
                                chunks.insert(chunk_key(&w.id, next), versioned(bytes))?;
                            }
                            Body::Replace { saved, drop_chunks } => {
                                docs.insert(key, versioned(saved))?;
                                for k in drop_chunks {
                                    chunks.remove(k.as_slice())?;
                                }
                            }
                        }
                        if let Some(old) = feed_pos.get(key)? {
                            feed.remove(old)?;
                        }
                        feed.insert(&next.to_be_bytes(), key)?;
                        feed_pos.insert(key, &next.to_be_bytes())?;
                        if let Some(rec) = &w.case {
                            Self::reindex(cases, index, &w.id, rec)?;
                        }
                        next += 1;
                    }
                    meta.insert(NEXT_SEQ, &next.to_be_bytes())?;
                    Ok(first)
                });
            let first = match result {
                Ok(first) => first,
                Err(TransactionError::Abort(e)) => return Err(e),
                Err(TransactionError::Storage(e)) => return Err(StoreError::Db(e)),
            };
            let seqs: Vec<u64> = (first..).take(writes.len()).collect();
            let last = first + writes.len() as u64 - 1;
            self.group.written(last);
            (last, seqs)
        };
        self.group
            .wait_durable(seq, || self.db.flush().map(|_| ()))?;
        Ok((seq, seqs))
    }

    fn reindex(
        cases: &TransactionalTree,
        index: &TransactionalTree,
        id: &DocId,
        rec: &CaseRecord,
    ) -> Result<(), ConflictableTransactionError<StoreError>> {
        let key = id.as_str();
        if let Some(old) = cases.get(key)? {
            let old = decode_case(key, &old).map_err(abort)?;
            for k in index_keys(id, &old) {
                index.remove(k)?;
            }
        }
        for k in index_keys(id, rec) {
            index.insert(k, &[])?;
        }
        let bytes = postcard::to_allocvec(rec).map_err(|e| {
            abort(StoreError::Corrupt {
                key: key.into(),
                reason: e.to_string(),
            })
        })?;
        cases.insert(key, versioned(&bytes))?;
        Ok(())
    }

    /// The whole document as Automerge save bytes.
    pub fn save(&self, id: &DocId) -> Result<Option<Vec<u8>>, StoreError> {
        let h = self.doc(id)?;
        let mut l = lock(&h)?;
        Ok(l.exists.then(|| l.doc.save()))
    }

    /// Ids of stored documents of one kind, in id order.
    pub fn ids(&self, kind: DocKind) -> impl Iterator<Item = Result<DocId, StoreError>> + '_ {
        self.ids_with_prefix(&format!("{}:", kind.as_str()))
    }

    /// Ids of stored documents whose id starts with `prefix`, in id order.
    pub fn ids_with_prefix(
        &self,
        prefix: &str,
    ) -> impl Iterator<Item = Result<DocId, StoreError>> + '_ {
        self.docs.scan_prefix(prefix).keys().map(|k| doc_id(&k?))
    }

    /// Replaces the index records of existing cases (derived data only: the
    /// documents and the feed are untouched), durably.
    pub fn reindex_cases(&self, records: Vec<(DocId, CaseRecord)>) -> Result<(), StoreError> {
        let _guard = self
            .write_lock
            .lock()
            .map_err(|_| StoreError::Durability("a writer panicked during a commit".into()))?;
        self.group.check()?;
        (&self.cases, &self.index)
            .transaction(|(cases, index)| {
                for (id, rec) in &records {
                    Self::reindex(cases, index, id, rec)?;
                }
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::Db(e),
            })?;
        self.db.flush()?;
        Ok(())
    }

    /// Feed entries after `after`: (sequence number, doc id), oldest first,
    /// at most `limit`. Each document appears once, at its newest change.
    pub fn feed_since(&self, after: u64, limit: usize) -> Result<Vec<(u64, DocId)>, StoreError> {
        let start = after.saturating_add(1).to_be_bytes();
        self.feed
            .range(start..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((seq_from("feed", &k)?, doc_id(&v)?))
            })
            .collect()
    }

    /// The highest sequence number known to be on disk.
    pub fn durable_seq(&self) -> u64 {
        self.group.durable()
    }

    /// The index record of a case.
    pub fn case_record(&self, id: &DocId) -> Result<Option<CaseRecord>, StoreError> {
        self.cases
            .get(id.as_str())?
            .map(|v| decode_case(id.as_str(), &v))
            .transpose()
    }

    /// Every case with its record, in id order.
    pub fn case_records(
        &self,
    ) -> impl Iterator<Item = Result<(DocId, CaseRecord), StoreError>> + '_ {
        self.cases.iter().map(|kv| {
            let (k, v) = kv?;
            let id = doc_id(&k)?;
            let rec = decode_case(id.as_str(), &v)?;
            Ok((id, rec))
        })
    }

    /// Cases matching one exact index key.
    pub fn cases_where(&self, key: IndexKey<'_>) -> Result<Vec<DocId>, StoreError> {
        let (prefix, strip): (Vec<u8>, usize) = match key {
            IndexKey::Region(r) => {
                let mut p = vec![b'r'];
                p.extend_from_slice(r.as_bytes());
                (p, 0)
            }
            IndexKey::Item(v) => (exact_prefix(b'i', v.as_bytes()), 0),
            IndexKey::Category(v) => (exact_prefix(b'c', v.as_bytes()), 0),
            IndexKey::Department(v) => (exact_prefix(b'd', v.as_bytes()), 0),
            IndexKey::State(s) => (exact_prefix(b's', &[s]), 0),
        };
        let region = matches!(key, IndexKey::Region(_));
        self.index
            .scan_prefix(&prefix)
            .keys()
            .map(|k| {
                let k = k?;
                let rest = &k[prefix.len() + strip..];
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
        let key = |t: i64| {
            let mut k = vec![field.tag()];
            k.extend_from_slice(&time_bytes(t));
            k
        };
        self.index
            .range(key(from)..key(to))
            .keys()
            .map(|k| {
                let k = k?;
                let t = <[u8; 8]>::try_from(&k[1..9])
                    .map(|b| (u64::from_be_bytes(b) ^ (1 << 63)) as i64)
                    .map_err(|_| StoreError::Corrupt {
                        key: "index".into(),
                        reason: "short time key".into(),
                    })?;
                Ok((t, doc_id(&k[9..])?))
            })
            .collect()
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Checks that every stored document loads and every case has index
    /// entries that match its record; returns the number of documents.
    pub fn verify(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for k in self.docs.iter().keys() {
            let id = doc_id(&k?)?;
            self.load(&id)?;
            n += 1;
        }
        for entry in self.case_records() {
            let (id, rec) = entry?;
            for k in index_keys(&id, &rec) {
                if !self.index.contains_key(&k)? {
                    return Err(StoreError::Corrupt {
                        key: id.to_string(),
                        reason: "case index entry missing".into(),
                    });
                }
            }
        }
        Ok(n)
    }
}

fn exact_prefix(tag: u8, v: &[u8]) -> Vec<u8> {
    let mut p = vec![tag];
    p.extend_from_slice(v);
    p.push(0);
    p
}

#[cfg(test)]
mod tests;
