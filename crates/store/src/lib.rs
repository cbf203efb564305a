//! The hallsync store: every record as an Automerge document in sled, a
//! change feed for replication, and an index of terms the caller files
//! documents under, kept in step atomically.
//!
//! The store works on *logical* keys under one-byte prefixes; every value
//! starts with a format byte. A commit is made atomic and durable by the
//! store's own write-ahead log (see `wal.rs`), not by sled: sled's batches
//! and transactions each force a write and a `sync_file_range`, and its
//! flush costs milliseconds, which held the store to ~150 cases/s. Commits
//! land in a memtable (see `mem.rs`) that background checkpoints fold into
//! sled, each key once at its latest value, packed into blocks of ~4 KiB
//! (see `packed.rs`): sled keeps only blocks, plus the format, the feed id,
//! the log's mark (see `wal.rs`) and the compression dictionaries (`mdict:`,
//! see `dict.rs`) under keys of their own. The parts: `keys.rs` (the
//! logical keys and value framing), `commit.rs` (a commit: its log record,
//! group commit, the memtable), `feed.rs` (the change feed and peer
//! checkpoints), `index.rs` (the index and re-derivation), `tally.rs`,
//! `checkpoint.rs` (the memtable folded into sled in the background) and
//! `open.rs` (open, upgrade, replay).
//!
//! | prefix | key                      | value                                        |
//! |--------|--------------------------|----------------------------------------------|
//! | `d`    | doc id                   | saved (compacted) document, zstd-compressed  |
//! | `h`    | doc id                   | [`Head`]: feed seq, chunk seqs, index record |
//! | `c`    | seq (u64 BE)             | doc id + changes saved after `d` (a *chunk*), or doc id alone (a *marker*) |
//! | `x`    | `=` field value 0 doc id, `<` field point doc id | empty: the index |
//! | `m`    | `peer:` + node id        | how far this node applied that peer's feed   |
//! | `m`    | `derived`                | the version of the derived data (index)      |
//! | `m`    | `q` + way + peer + doc id | a document set aside in replication         |
//! | `l`    | any                      | this node's own records (e.g. operators), never replicated |
//!
//! The `c` entries are the change feed: every write of a document takes the
//! next sequence number and writes a chunk (new changes) or, when the write
//! compacts the document, a marker. A document's newest entry is the one its
//! head names; older entries of the same document are either chunks still
//! needed to load it, or gone (markers are deleted when superseded, chunks
//! when compacted). So the feed holds each document once at its newest
//! change, plus its few live chunks, which readers skip.
//!
//! A write ([`Store::persist`]) returns only after its log record is synced
//! to disk; concurrent writers share syncs (group commit). Documents are
//! loaded on demand into a bounded cache of [`DocHandle`]s; at most one
//! handle per document exists at a time, so two writers never race on one
//! document.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod aside;
mod cache;
mod checkpoint;
mod commit;
mod dict;
mod feed;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod keys;
mod listen;
mod mem;
mod open;
mod packed;
mod tally;
mod wal;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use automerge::{AutoCommit, ChangeHash};
use hallsync_model::schema::Record;
use hallsync_model::{DocId, DocKind};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use cache::DocCache;
use commit::GroupCommit;
use commit::{Body, Extra, Write};
use dict::Dicts;
use feed::{chunk_changes, feed_value};
use index::{index_keys, reindex};
use keys::*;
use mem::{Mem, Val};
use packed::{BlockError, Blocks};
use wal::{Op, Wal};

pub use aside::{Direction, SetAside};
pub use commit::Pending;
pub use feed::{Checkpoint, FeedEntry};
pub use index::{IndexRecord, Rederived, Term};
pub use tally::{Delta, Tallier, Tally};

/// The on-disk format this build writes: its index files the caller's
/// terms.
pub const FORMAT: u8 = 7;

/// The previous format, which this build reads and upgrades in place: its
/// log records carry sequence numbers, and sled keeps the log's mark; its
/// index knew the fields of a case.
const FORMAT_6: u8 = 6;

/// The previous format, which this build reads and upgrades in place: its
/// log records had no sequence numbers.
const FORMAT_5: u8 = 5;

/// The format before, also upgraded in place: it kept each case index
/// entry as a sled key of its own.
const FORMAT_4: u8 = 4;

/// The format before, also upgraded in place: it also kept saved documents
/// uncompressed.
const FORMAT_3: u8 = 3;

/// The first byte of every value this build writes (values have not
/// changed since format 5).
const VALUES: u8 = 5;

/// The largest saved document the store unpacks (a bound on what a damaged
/// value can make it allocate).
const MAX_SAVED: u64 = 64 << 20;

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
    /// The memtable's bound: past it a background checkpoint writes it to
    /// sled and deletes the log it covers. While one runs, a second table
    /// fills, and writers wait only if that one reaches twice the bound.
    pub memtable_bytes: usize,
    /// A compression dictionary for saved documents is trained on a sample
    /// of them when the change feed reaches this many writes, and again
    /// each time it grows tenfold (0: never).
    pub dictionary_after: u64,
    /// Open even when the write-ahead log is damaged so that acknowledged
    /// writes cannot be replayed: replay what comes before the damage and
    /// discard the rest (see [`Store::discarded_log`]). Only for an
    /// administrator who has accepted that loss.
    pub accept_log_loss: bool,
    /// Expands the facts documents are written with into tallies (see
    /// `tally.rs`); without one, facts are kept but nothing is summed.
    pub tallier: Option<Tallier>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_docs: 256,
            sled_cache_bytes: 16 << 20,
            compact_after_chunks: 8,
            memtable_bytes: 1 << 20,
            dictionary_after: 5_000,
            accept_log_loss: false,
            tallier: None,
        }
    }
}

/// What went wrong in the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another process has the data directory open.
    #[error("the data directory {0} is in use by another hallsync process (a running `hallsync run` holds it; `hallsync status` works alongside): stop it first")]
    Locked(PathBuf),
    /// The data was written by a newer hallsync.
    #[error("the data directory was written in store format {found}; this hallsync reads format {FORMAT}: upgrade hallsync")]
    NewerFormat {
        /// Format found on disk.
        found: u8,
    },
    /// The data was written by an earlier development build.
    #[error("the data directory was written in store format {found} by an earlier development build of hallsync; this one reads format {FORMAT}: export what you need with that build and start a fresh data directory")]
    OlderFormat {
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
    /// The store's directory is not there, or its files are gone.
    #[error("the store in {0} is missing or its files were deleted, though this data directory holds a hall (node.toml); nothing was created. Restore the directory from a backup; if this hall never held any data, delete node.toml and run `hallsync init` again")]
    Missing(PathBuf),
    /// The write-ahead log lost writes that were acknowledged.
    #[error("{0}")]
    LogDamaged(String),
    /// A file of the store could not be read or written.
    #[error("{path}: {error}{}", io_hint(error))]
    Io {
        /// The store's directory.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// sled failed.
    #[error("the database failed: {0}")]
    Db(String),
    /// sled found its own files damaged.
    #[error("the database files are damaged ({0}); restore the data directory from a backup")]
    DbDamaged(String),
    /// An earlier flush failed; the store refuses further writes.
    #[error("the store could not make writes durable ({0}); restart hallsync and check the disk")]
    Durability(String),
    /// An index record the index cannot file; nothing was written.
    #[error("the index record of {key} cannot be filed ({reason}); nothing was written")]
    BadIndex {
        /// Which document.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A document grew past what the store keeps; nothing was written.
    #[error("{key} saves to {bytes} bytes, more than the {MAX_SAVED} bytes the store keeps for one document; nothing was written")]
    TooLarge {
        /// Which document.
        key: String,
        /// Its saved size.
        bytes: usize,
    },
}

/// What an administrator can do about an I/O error.
fn io_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::StorageFull => "; free space on the disk that holds the data directory, then try again (nothing was written)",
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            "; check that the data directory is writable by the user running hallsync"
        }
        _ => "",
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        match e {
            sled::Error::Io(error) => StoreError::Io {
                path: PathBuf::from("the database (sled)"),
                error,
            },
            sled::Error::Corruption { at, .. } => StoreError::DbDamaged(match at {
                Some(at) => format!("sled read corrupted data at {at}"),
                None => "sled read corrupted data".into(),
            }),
            other => StoreError::Db(other.to_string()),
        }
    }
}

impl StoreError {
    fn io(path: &Path, error: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

impl From<BlockError> for StoreError {
    fn from(e: BlockError) -> StoreError {
        match e {
            BlockError::Db(e) => e.into(),
            BlockError::Damaged(bound, why) => corrupt(
                &format!("the stored block at {}", String::from_utf8_lossy(&bound)),
                why,
            ),
        }
    }
}

/// The per-document record kept beside the bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    /// Sequence number of the document's newest feed entry.
    feed_seq: u64,
    /// Chunks to apply on top of the saved document, oldest first.
    chunks: Vec<u64>,
    /// Index record, if the caller filed the document.
    index: Option<IndexRecord>,
    /// The document's Automerge heads, so a peer's offer can be answered
    /// without loading the document.
    heads: Vec<[u8; 32]>,
}

/// A loaded document, shared through [`DocHandle`].
#[derive(Debug)]
pub struct Loaded {
    /// The document. Make changes, commit them, then [`Store::persist`].
    pub doc: AutoCommit,
    /// The caller's typed reading of the document, kept while it is cached.
    pub record: Option<Record>,
    exists: bool,
    chunks: usize,
    saved_heads: Vec<ChangeHash>,
    /// Bytes known to load to exactly `doc`, stored instead of saving it
    /// again when the document is first written (see [`Loaded::adopt`]).
    saved_form: Option<(Vec<u8>, Vec<ChangeHash>)>,
    /// The peer whose copy the next write makes this exactly.
    origin: Option<String>,
}

impl Loaded {
    fn empty() -> Loaded {
        Loaded {
            doc: AutoCommit::new(),
            record: None,
            exists: false,
            chunks: 0,
            saved_heads: Vec::new(),
            saved_form: None,
            origin: None,
        }
    }

    /// Whether the document is stored.
    pub fn exists(&self) -> bool {
        self.exists
    }

    /// Marks the next write as making this document exactly `peer`'s copy,
    /// so the change feed need not offer it back to `peer`.
    pub fn set_origin(&mut self, peer: &str) {
        self.origin = Some(peer.to_string());
    }

    /// Sets the document to `doc`, which was loaded from `bytes` (a peer's
    /// saved form), so that a first write stores `bytes` as they are
    /// instead of saving the document again. Ignored if the document
    /// changes before it is written.
    pub fn adopt(&mut self, mut doc: AutoCommit, bytes: Vec<u8>) {
        let heads = doc.get_heads();
        self.doc = doc;
        self.saved_form = Some((bytes, heads));
    }

    /// Turns the changes made since the last commit into a write, or
    /// `None` when there is nothing to write.
    fn prepare(
        &mut self,
        id: &DocId,
        index: Option<IndexRecord>,
        facts: Option<Vec<u8>>,
        compact_after: u32,
        dicts: &Dicts,
    ) -> Result<Option<Write>, StoreError> {
        let heads = self.doc.get_heads();
        let origin = self.origin.take();
        let body = if self.exists && heads == self.saved_heads {
            // Nothing new in the document: an index change, or nothing.
            if index.is_none() && facts.is_none() {
                return Ok(None);
            }
            Body::Index
        } else if !self.exists || self.chunks + 1 >= compact_after as usize {
            let saved = match self.saved_form.take() {
                Some((bytes, at)) if !self.exists && at == heads => bytes,
                // The store compresses the whole saved form with zstd, at
                // ~60% of the cost of Automerge's per-column deflate and to
                // the same size.
                _ => self.doc.save_nocompress(),
            };
            let packed = pack_saved(id.as_str(), &saved, dicts)?;
            self.chunks = 0;
            Body::Replace(packed)
        } else {
            self.chunks += 1;
            Body::Append(self.doc.save_after(&self.saved_heads))
        };
        self.exists = true;
        self.saved_heads = heads.clone();
        Ok(Some(Write {
            id: id.clone(),
            body,
            index,
            facts,
            change: None,
            heads,
            origin,
        }))
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
    /// sled's directory (its files are synced after each flush).
    sled_dir: PathBuf,
    /// For the keys written to sled directly (format, feed id,
    /// dictionaries).
    tree: sled::Tree,
    /// Everything else, packed (see `packed.rs`).
    blocks: Arc<Blocks>,
    wal: Arc<Wal>,
    /// Commits since the last checkpoint, in front of `blocks`.
    mem: Arc<Mem>,
    /// The checkpoint running in the background, if any.
    background: Mutex<Option<JoinHandle<()>>>,
    /// Compression dictionaries for saved documents.
    dicts: Arc<Dicts>,
    /// The dictionary being trained in the background, if any.
    trainer: Mutex<Option<JoinHandle<()>>>,
    options: StoreOptions,
    /// Serialises commits; holds the next feed sequence number and log
    /// record number, and the tally rows.
    writer: Mutex<Writer>,
    group: Arc<GroupCommit>,
    /// Highest feed sequence number known to be on disk.
    durable_feed: std::sync::atomic::AtomicU64,
    /// Told whenever `durable_feed` grows (see `listen.rs`).
    listeners: listen::Listeners,
    cache: DocCache,
    /// Random at creation: sequence numbers mean something only within one
    /// feed, so a peer's checkpoint names the feed it counts in.
    feed_id: u64,
    /// What the open discarded of a damaged log, when the administrator
    /// accepted the loss.
    discarded: Option<String>,
    /// The keys of the set-aside notes (see `aside.rs`).
    noted: Mutex<std::collections::BTreeSet<Vec<u8>>>,
    /// Bumped whenever a set-aside note is written or deleted.
    notes_changed: std::sync::atomic::AtomicU64,
}

/// What the writer lock guards: the numbers the next commit takes.
#[derive(Debug)]
struct Writer {
    /// Next feed sequence number.
    seq: u64,
    /// Next log record number.
    lsn: u64,
    /// The tally rows, as the commits so far left them.
    rows: tally::Rows,
}

/// One of this node's own records: its key (without the store's prefix)
/// and value.
pub type LocalRecord = (Vec<u8>, Vec<u8>);

impl Store {
    /// The handle of a document, loading it from disk if needed; a document
    /// not yet stored gets an empty handle ([`Loaded::exists`] is false).
    pub fn doc(&self, id: &DocId) -> Result<DocHandle, StoreError> {
        self.cache.get_or_load(id, || self.load(id))
    }

    /// Drops a document from the cache, so the next use reloads it.
    pub fn evict(&self, id: &DocId) {
        self.cache.remove(id);
    }

    fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.mem.get(&self.blocks, key)?)
    }

    fn head(&self, id: &DocId) -> Result<Option<Head>, StoreError> {
        self.get(&key(HEAD, id.as_str().as_bytes()))?
            .map(|v| decode(id.as_str(), &v))
            .transpose()
    }

    fn load(&self, id: &DocId) -> Result<Loaded, StoreError> {
        let Some(head) = self.head(id)? else {
            return Ok(Loaded::empty());
        };
        let name = id.as_str();
        let (saved, chunks) = self.parts(id, &head)?;
        let mut doc = AutoCommit::load(&unpack_saved(name, &saved, &self.dicts)?)
            .map_err(|e| corrupt(name, format!("saved document: {e}")))?;
        for (seq, v) in &chunks {
            doc.load_incremental(chunk_changes(id, *seq, v)?)
                .map_err(|e| corrupt(name, format!("chunk {seq}: {e}")))?;
        }
        let saved_heads = doc.get_heads();
        Ok(Loaded {
            doc,
            record: None,
            exists: true,
            chunks: head.chunks.len(),
            saved_heads,
            saved_form: None,
            origin: None,
        })
    }

    /// A stored document's saved form and its chunks (with their sequence
    /// numbers), as stored.
    fn parts(
        &self,
        id: &DocId,
        head: &Head,
    ) -> Result<(sled::IVec, Vec<(u64, sled::IVec)>), StoreError> {
        let name = id.as_str();
        let saved = self
            .get(&key(DOC, name.as_bytes()))?
            .ok_or_else(|| corrupt(name, "the document has a head but no saved form"))?;
        let chunks = head
            .chunks
            .iter()
            .map(|&seq| {
                let v = self
                    .get(&feed_key(seq))?
                    .ok_or_else(|| corrupt(name, format!("chunk {seq} is missing")))?;
                Ok((seq, v))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((saved, chunks))
    }

    /// Whether a document is stored.
    pub fn contains(&self, id: &DocId) -> Result<bool, StoreError> {
        Ok(self.get(&key(HEAD, id.as_str().as_bytes()))?.is_some())
    }

    /// This node's own records under `prefix` (never in the change feed,
    /// never replicated: e.g. its operators), with their values.
    pub fn local(&self, prefix: &[u8]) -> Result<Vec<LocalRecord>, StoreError> {
        self.scan(&key(LOCAL, prefix))
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k[1..].to_vec(), unversioned("local record", &v)?.to_vec()))
            })
            .collect()
    }

    /// Writes (or, with `None`, deletes) this node's own records, durably
    /// and in one commit.
    pub fn put_local(&self, records: &[(&[u8], Option<&[u8]>)]) -> Result<(), StoreError> {
        self.commit_raw(
            records
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => Op::Put(key(LOCAL, k), versioned(v)),
                    None => Op::Del(key(LOCAL, k)),
                })
                .collect(),
        )
    }

    /// Logical keys and values under `prefix`.
    fn scan(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, sled::IVec), StoreError>> + '_ {
        self.mem
            .prefix(&self.blocks, prefix)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v)).map_err(StoreError::from))
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
        self.mem
            .prefix(&self.blocks, &key(HEAD, prefix.as_bytes()))
            .map(|kv| doc_id(&kv?.0[1..]))
    }

    /// What this open discarded of a damaged write-ahead log, when
    /// [`StoreOptions::accept_log_loss`] allowed it.
    pub fn discarded_log(&self) -> Option<&str> {
        self.discarded.as_deref()
    }

    /// The document's Automerge heads, without loading it (`None`: not
    /// stored).
    pub fn heads(&self, id: &DocId) -> Result<Option<Vec<ChangeHash>>, StoreError> {
        Ok(self
            .head(id)?
            .map(|h| h.heads.into_iter().map(ChangeHash).collect()))
    }

    /// The document as stored: its saved form followed by its chunks, which
    /// Automerge loads as one document. Cheaper than [`Store::save`]: the
    /// saved form is decompressed, nothing is parsed.
    pub fn stored_bytes(&self, id: &DocId) -> Result<Option<Vec<u8>>, StoreError> {
        let (saved, chunks) = {
            // Under the writer lock, so a commit compacting this document
            // cannot slip between reading its head and reading its parts.
            let _writer = self
                .writer
                .lock()
                .map_err(|_| StoreError::Durability("a writer panicked during a commit".into()))?;
            let Some(head) = self.head(id)? else {
                return Ok(None);
            };
            self.parts(id, &head)?
        };
        let mut out = unpack_saved(id.as_str(), &saved, &self.dicts)?.into_owned();
        for (seq, v) in &chunks {
            out.extend_from_slice(chunk_changes(id, *seq, v)?);
        }
        Ok(Some(out))
    }

    /// Why the store stopped accepting writes, once a flush or checkpoint
    /// has failed (a full disk, an I/O error): from then on its memory may
    /// hold writes that never reached the disk, so a running node stops
    /// rather than show them, and the next open replays what is durable.
    pub fn failure(&self) -> Option<String> {
        self.group.check().err().map(|e| e.to_string())
    }

    /// The highest sequence number known to be on disk.
    pub fn durable_seq(&self) -> u64 {
        self.durable_feed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Calls `listener` with the new [`Store::durable_seq`] each time it
    /// grows from then on, on the thread whose commit made it grow, until
    /// the listener returns `false`. It runs inside that commit's call, so
    /// it must be quick and must not block or write to the store: it is
    /// for a wake-up (a flag, a notification). Two commits finishing at
    /// once may tell it their numbers in either order. Growth before it is
    /// added is not told: read [`Store::durable_seq`] after adding it.
    pub fn on_durable(&self, listener: impl Fn(u64) -> bool + Send + Sync + 'static) {
        self.listeners.add(Box::new(listener));
    }

    /// Live data by key prefix: (prefix, keys, key and value bytes), for
    /// telling the store's own data from sled's overhead.
    pub fn live_bytes(&self) -> Result<Vec<(char, u64, u64)>, StoreError> {
        let mut out: Vec<(char, u64, u64)> = Vec::new();
        for kv in self.mem.range(&self.blocks, Vec::new(), None) {
            let (k, v) = kv?;
            let prefix = char::from(k[0]);
            let size = (k.len() + v.len()) as u64;
            match out.iter_mut().find(|e| e.0 == prefix) {
                Some(e) => {
                    e.1 += 1;
                    e.2 += size;
                }
                None => out.push((prefix, 1, size)),
            }
        }
        Ok(out)
    }

    /// Checks that every stored document loads, that its newest feed entry
    /// exists, and that every indexed document has the entries of its record;
    /// returns the number of documents.
    pub fn verify(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for kv in self.mem.prefix(&self.blocks, &[HEAD]) {
            let (k, v) = kv?;
            let id = doc_id(&k[1..])?;
            let head: Head = decode(id.as_str(), &v)?;
            self.load(&id)?;
            if self.get(&feed_key(head.feed_seq))?.is_none() {
                return Err(corrupt(id.as_str(), "its newest feed entry is missing"));
            }
            for k in head.index.iter().flat_map(|c| index_keys(&id, c)) {
                if self.get(&k)?.is_none() {
                    return Err(corrupt(id.as_str(), "an index entry is missing"));
                }
            }
            n += 1;
        }
        Ok(n)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let training = self
            .trainer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(job) = training {
            let _ = job.join();
        }
        if let Err(e) = self.checkpoint() {
            tracing::warn!(error = %e, "could not checkpoint on close; the log will be replayed at the next start");
        }
    }
}

#[cfg(test)]
mod tests;
