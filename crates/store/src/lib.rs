//! The hallsync store: every record as an Automerge document in sled, a
//! change feed for replication, and a case index, kept in step atomically.
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
//! see `dict.rs`) under keys of their own. Opening a store is `open.rs`.
//!
//! | prefix | key                      | value                                        |
//! |--------|--------------------------|----------------------------------------------|
//! | `d`    | doc id                   | saved (compacted) document, zstd-compressed  |
//! | `h`    | doc id                   | [`Head`]: feed seq, chunk seqs, case record  |
//! | `c`    | seq (u64 BE)             | doc id + changes saved after `d` (a *chunk*), or doc id alone (a *marker*) |
//! | `x`    | field tag, value, doc id | empty: the case index                        |
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
mod commit;
mod dict;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod listen;
mod mem;
mod open;
mod packed;
mod tally;
mod wal;

use std::borrow::Cow;
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
use dict::Dicts;
use mem::{Mem, Table, Val};
use packed::{BlockError, Blocks};
use wal::{Mark, Op, Wal};

pub use aside::{Direction, SetAside};
pub use tally::{Delta, Tallier, Tally};

/// The on-disk format this build writes: its log records carry sequence
/// numbers, and sled keeps the log's mark.
pub const FORMAT: u8 = 6;

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

/// The per-document record kept beside the bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    /// Sequence number of the document's newest feed entry.
    feed_seq: u64,
    /// Chunks to apply on top of the saved document, oldest first.
    chunks: Vec<u64>,
    /// Index record, for cases.
    case: Option<CaseRecord>,
    /// The document's Automerge heads, so a peer's offer can be answered
    /// without loading the document.
    heads: Vec<[u8; 32]>,
}

/// What a commit does to one document.
#[derive(Debug)]
enum Body {
    /// Adds changes saved after the stored state.
    Append(Vec<u8>),
    /// Replaces the saved document (as stored: see [`pack_saved`]) and
    /// drops its chunks.
    Replace(Vec<u8>),
    /// Changes only the case record.
    Index,
}

/// One document's part of a commit.
#[derive(Debug)]
struct Write {
    id: DocId,
    body: Body,
    case: Option<CaseRecord>,
    /// The document's new tally facts (then its change to the tallies).
    facts: Option<Vec<u8>>,
    change: Option<tally::Change>,
    heads: Vec<ChangeHash>,
    origin: Option<String>,
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
    /// The document's new tally facts (see [`Tallier`]).
    pub facts: Option<Vec<u8>>,
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

/// How far one node has applied another's change feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The identity of the feed counted in (0: none yet).
    pub feed: u64,
    /// The sequence number reached.
    pub seq: u64,
}

/// A document's newest entry in the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Its sequence number.
    pub seq: u64,
    /// The document.
    pub id: DocId,
    /// The document's Automerge heads as of this entry.
    pub heads: Vec<ChangeHash>,
    /// The peer whose copy this entry is exactly (it came from that peer
    /// and nothing was added here): no need to offer it back.
    pub origin: Option<String>,
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
        case: Option<CaseRecord>,
        facts: Option<Vec<u8>>,
        compact_after: u32,
        dicts: &Dicts,
    ) -> Result<Option<Write>, StoreError> {
        let heads = self.doc.get_heads();
        let origin = self.origin.take();
        let body = if self.exists && heads == self.saved_heads {
            // Nothing new in the document: an index change, or nothing.
            if case.is_none() && facts.is_none() {
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
            case,
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
    /// record number.
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
}

const DOC: u8 = b'd';
const HEAD: u8 = b'h';
const FEED: u8 = b'c';
const INDEX: u8 = b'x';
/// This node's own records (never replicated).
const LOCAL: u8 = b'l';
const FORMAT_KEY: &[u8] = b"mformat";
const FEED_ID_KEY: &[u8] = b"mfeedid";
/// The log's mark (see `wal.rs`), written to sled directly.
const MARK_KEY: &[u8] = b"mwalmark";
const PEER_PREFIX: &[u8] = b"mpeer:";
/// The version of the derived data, a logical key.
const DERIVED_KEY: &[u8] = b"mderived";

/// One of this node's own records: its key (without the store's prefix)
/// and value.
pub type LocalRecord = (Vec<u8>, Vec<u8>);

/// What a commit records besides its documents.
#[derive(Default)]
struct Extra<'a> {
    /// How far this node has applied a peer's feed; the documents came
    /// from that peer.
    peer: Option<(&'a str, Checkpoint)>,
    /// The version of the derived data.
    derived: Option<u32>,
    /// Writes and deletes of keys outside documents: set-aside notes (see
    /// `aside.rs`) and local records.
    raw: Vec<Op>,
}

impl Extra<'_> {
    fn is_empty(&self) -> bool {
        self.peer.is_none() && self.derived.is_none() && self.raw.is_empty()
    }
}

fn key(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

fn feed_key(seq: u64) -> Vec<u8> {
    key(FEED, &seq.to_be_bytes())
}

fn peer_key(peer: &str) -> Vec<u8> {
    let mut k = PEER_PREFIX.to_vec();
    k.extend_from_slice(peer.as_bytes());
    k
}

fn versioned(payload: &[u8]) -> Vec<u8> {
    key(VALUES, payload)
}

fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.into(),
        reason: reason.into(),
    }
}

fn unversioned<'a>(key: &str, v: &'a [u8]) -> Result<&'a [u8], StoreError> {
    match v.split_first() {
        Some((&(VALUES | FORMAT_4 | FORMAT_3), rest)) => Ok(rest),
        Some((other, _)) => Err(corrupt(key, format!("unknown value format {other}"))),
        None => Err(corrupt(key, "empty value")),
    }
}

/// A saved document as stored: zstd-compressed (see `dict.rs`), which makes
/// Automerge's own column compression unnecessary (see
/// [`Loaded::prepare`]).
fn pack_saved(key: &str, saved: &[u8], dicts: &Dicts) -> Result<Vec<u8>, StoreError> {
    // What could not be read back is not written.
    if saved.len() as u64 > MAX_SAVED {
        return Err(StoreError::TooLarge {
            key: key.to_string(),
            bytes: saved.len(),
        });
    }
    dicts
        .pack(saved)
        .map(|packed| versioned(&packed))
        .map_err(|e| StoreError::Durability(format!("could not compress {key}: {e}")))
}

/// The saved document in a stored value (format 3 kept it as it was,
/// format 4 as a zstd frame with no dictionary).
fn unpack_saved<'a>(key: &str, v: &'a [u8], dicts: &Dicts) -> Result<Cow<'a, [u8]>, StoreError> {
    let saved = match v.split_first() {
        Some((&FORMAT_3, rest)) => return Ok(Cow::Borrowed(rest)),
        Some((&FORMAT_4, frame)) => dict::decompress(frame, None, MAX_SAVED),
        Some((&VALUES, packed)) => dicts.unpack(packed, MAX_SAVED),
        Some((other, _)) => return Err(corrupt(key, format!("unknown value format {other}"))),
        None => return Err(corrupt(key, "empty value")),
    };
    saved
        .map(Cow::Owned)
        .map_err(|e| corrupt(key, format!("saved document: {e}")))
}

fn encode<T: Serialize>(key: &str, v: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(v)
        .map(|b| versioned(&b))
        .map_err(|e| corrupt(key, e.to_string()))
}

fn decode<'a, T: Deserialize<'a>>(key: &str, v: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(unversioned(key, v)?).map_err(|e| corrupt(key, e.to_string()))
}

/// A feed entry: the doc id, the origin (the peer whose state this entry
/// is exactly, or empty), then the chunk's bytes (none for a marker).
fn feed_value(id: &DocId, origin: Option<&str>, bytes: &[u8]) -> Vec<u8> {
    let idb = id.as_str().as_bytes();
    let ob = origin.unwrap_or("").as_bytes();
    let mut v = Vec::with_capacity(3 + idb.len() + ob.len() + bytes.len());
    v.push(VALUES);
    v.push(idb.len() as u8);
    v.extend_from_slice(idb);
    v.push(ob.len() as u8);
    v.extend_from_slice(ob);
    v.extend_from_slice(bytes);
    v
}

/// A parsed feed entry value.
struct FeedValue<'a> {
    id: DocId,
    origin: Option<String>,
    bytes: &'a [u8],
}

/// The changes chunk `seq` holds, checked to be `id`'s.
fn chunk_changes<'a>(id: &DocId, seq: u64, v: &'a [u8]) -> Result<&'a [u8], StoreError> {
    let FeedValue {
        id: owner, bytes, ..
    } = parse_feed_value(v)?;
    if owner != *id {
        return Err(corrupt(
            id.as_str(),
            format!("chunk {seq} belongs to {owner}"),
        ));
    }
    Ok(bytes)
}

fn parse_feed_value(v: &[u8]) -> Result<FeedValue<'_>, StoreError> {
    fn field(rest: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
        let (&n, rest) = rest
            .split_first()
            .ok_or_else(|| corrupt("feed", "short entry"))?;
        let n = usize::from(n);
        if rest.len() < n {
            return Err(corrupt("feed", "short entry"));
        }
        Ok(rest.split_at(n))
    }
    let rest = unversioned("feed", v)?;
    let (id, rest) = field(rest)?;
    let (origin, bytes) = field(rest)?;
    let origin = std::str::from_utf8(origin).map_err(|_| corrupt("feed", "origin is not text"))?;
    Ok(FeedValue {
        id: doc_id(id)?,
        origin: (!origin.is_empty()).then(|| origin.to_string()),
        bytes,
    })
}

/// Orders signed times as bytes.
fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn index_keys(id: &DocId, r: &CaseRecord) -> Vec<Vec<u8>> {
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
fn exact_prefix(key: IndexKey<'_>) -> Vec<u8> {
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
fn count(mut scan: mem::Scan<'_>) -> Result<usize, StoreError> {
    scan.try_fold(0, |n, kv| kv.map(|_| n + 1).map_err(StoreError::from))
}

/// Adds to `batch` the index changes from `old` to `new`: only the keys
/// that differ, so a typical event touches none or one or two.
fn reindex(ops: &mut Vec<Op>, id: &DocId, old: Option<&CaseRecord>, new: &CaseRecord) {
    let new_keys = index_keys(id, new);
    let old_keys = old.map(|o| index_keys(id, o)).unwrap_or_default();
    for k in old_keys.iter().filter(|k| !new_keys.contains(k)) {
        ops.push(Op::Del(k.clone()));
    }
    for k in new_keys.into_iter().filter(|k| !old_keys.contains(k)) {
        ops.push(Op::Put(k, Vec::new()));
    }
}

fn doc_id(key: &[u8]) -> Result<DocId, StoreError> {
    std::str::from_utf8(key)
        .ok()
        .and_then(|s| DocId::parse(s).ok())
        .ok_or_else(|| corrupt(&String::from_utf8_lossy(key), "not a document id"))
}

fn seq_of(k: &[u8]) -> Result<u64, StoreError> {
    k.get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("feed", "a sequence number is not 8 bytes"))
}

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

    /// Persists the new changes of locked documents atomically, and returns
    /// once they are durable, with the feed sequence number of the last one.
    /// If it fails, the documents are dropped from the cache, so the next use
    /// reloads what is on disk; the caller must discard its locked copies.
    pub fn persist(&self, pending: &mut [Pending<'_>]) -> Result<u64, StoreError> {
        self.persist_extra(pending, Extra::default())
    }

    /// Commits writes of keys outside documents alone.
    fn commit_raw(&self, raw: Vec<Op>) -> Result<(), StoreError> {
        let extra = Extra {
            raw,
            ..Extra::default()
        };
        self.commit(&[], extra).map(drop)
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

    /// [`Store::persist`] of documents `peer` sent, recording in the same
    /// commit how far this node has applied its change feed, the documents
    /// of it set aside (`refused`), and that those stored are no longer set
    /// aside. Within one feed a checkpoint never moves back; a checkpoint in
    /// another feed (the peer's store was recreated) replaces it.
    pub fn persist_from(
        &self,
        pending: &mut [Pending<'_>],
        peer: &str,
        checkpoint: Option<Checkpoint>,
        refused: &[SetAside],
    ) -> Result<u64, StoreError> {
        let mut raw = refused
            .iter()
            .map(aside::put)
            .collect::<Result<Vec<_>, _>>()?;
        {
            let noted = self.noted.lock().unwrap_or_else(|e| e.into_inner());
            raw.extend(
                pending
                    .iter()
                    .map(|p| aside::key(Direction::Refused, peer, p.id))
                    .filter(|k| noted.contains(k))
                    .map(Op::Del),
            );
        }
        let extra = Extra {
            peer: checkpoint.map(|at| (peer, at)),
            derived: None,
            raw,
        };
        self.persist_extra(pending, extra)
    }

    fn persist_extra(
        &self,
        pending: &mut [Pending<'_>],
        extra: Extra<'_>,
    ) -> Result<u64, StoreError> {
        let compact_after = self.options.compact_after_chunks;
        let writes: Result<Vec<Write>, StoreError> = pending
            .iter_mut()
            .filter_map(|p| {
                p.loaded
                    .prepare(
                        p.id,
                        p.case.take(),
                        p.facts.take(),
                        compact_after,
                        &self.dicts,
                    )
                    .transpose()
            })
            .collect();
        let result = writes
            .and_then(|writes| self.with_changes(writes))
            .and_then(|writes| self.commit(&writes, extra));
        if let Err(e) = &result {
            tracing::error!(error = %e, docs = pending.len(), "write failed; reloading the documents from disk");
            for p in pending.iter() {
                self.evict(p.id);
            }
        }
        result
    }

    /// Works out, before the writer lock is taken, what each write's new
    /// facts change in the tallies; facts that are those stored are
    /// dropped (a write left with nothing to do is dropped too).
    fn with_changes(&self, writes: Vec<Write>) -> Result<Vec<Write>, StoreError> {
        let mut out = Vec::with_capacity(writes.len());
        for mut w in writes {
            if let Some(facts) = w.facts.take() {
                w.change = self.facts_change(&w.id, facts)?;
            }
            let idle = matches!(w.body, Body::Index) && w.case.is_none() && w.change.is_none();
            if !idle {
                out.push(w);
            }
        }
        Ok(out)
    }

    fn commit(&self, writes: &[Write], extra: Extra<'_>) -> Result<u64, StoreError> {
        if writes.is_empty() && extra.is_empty() {
            return Ok(self.durable_seq());
        }
        let (last, ticket) = {
            let mut next = self
                .writer
                .lock()
                .map_err(|_| StoreError::Durability("a writer panicked during a commit".into()))?;
            self.group.check()?;
            let mut ops: Vec<Op> = Vec::new();
            let mut heads: HashMap<&DocId, Head> = HashMap::new();
            let mut facts: HashMap<&DocId, Option<Vec<u8>>> = HashMap::new();
            let mut deltas = tally::Deltas::default();
            let mut seq = next.seq;
            for w in writes {
                let name = w.id.as_str().as_bytes();
                let old = match heads.remove(&w.id) {
                    Some(h) => Some(h),
                    None => self.head(&w.id)?,
                };
                if old.is_none() && matches!(w.body, Body::Index) {
                    // An index record for a document not stored: nothing to
                    // file it under.
                    continue;
                }
                let mut head = old.clone().unwrap_or_default();
                // A superseded marker is deleted; a superseded chunk stays
                // until the document is compacted.
                if let Some(o) = old.as_ref().filter(|_| !matches!(w.body, Body::Index)) {
                    if !o.chunks.contains(&o.feed_seq) {
                        ops.push(Op::Del(feed_key(o.feed_seq)));
                    }
                }
                match &w.body {
                    Body::Append(bytes) => {
                        ops.push(Op::Put(
                            feed_key(seq),
                            feed_value(&w.id, w.origin.as_deref(), bytes),
                        ));
                        head.chunks.push(seq);
                        head.feed_seq = seq;
                    }
                    Body::Replace(saved) => {
                        ops.push(Op::Put(key(DOC, name), saved.clone()));
                        for c in head.chunks.drain(..) {
                            ops.push(Op::Del(feed_key(c)));
                        }
                        ops.push(Op::Put(
                            feed_key(seq),
                            feed_value(&w.id, w.origin.as_deref(), &[]),
                        ));
                        head.feed_seq = seq;
                    }
                    Body::Index => {}
                }
                if !matches!(w.body, Body::Index) {
                    seq += 1;
                    head.heads = w.heads.iter().map(|h| h.0).collect();
                }
                if let Some(rec) = &w.case {
                    reindex(
                        &mut ops,
                        &w.id,
                        old.as_ref().and_then(|o| o.case.as_ref()),
                        rec,
                    );
                    head.case = Some(rec.clone());
                }
                if let Some(change) = &w.change {
                    let now = match facts.remove(&w.id) {
                        Some(f) => f,
                        None => self.facts(&w.id)?,
                    };
                    self.tally_change(&mut deltas, &w.id, now.as_deref(), change)?;
                    ops.push(Op::Put(tally::share_key(&w.id), change.facts.clone()));
                    facts.insert(&w.id, Some(change.facts.clone()));
                }
                ops.push(Op::Put(key(HEAD, name), encode(w.id.as_str(), &head)?));
                heads.insert(&w.id, head);
            }
            for (k, change) in deltas.into_changes() {
                let k = tally::tally_key(&k);
                let mut row = match self.get(&k)? {
                    Some(v) => tally::decode_counts(&k, &v)?,
                    None => Vec::new(),
                };
                tally::add_into(&mut row, &change, 1);
                ops.push(tally::put_row(k, &row)?);
            }
            if let Some((peer, at)) = extra.peer {
                let old = self.peer_checkpoint(peer)?;
                if at.feed != old.feed || at.seq > old.seq {
                    let mut v = at.feed.to_be_bytes().to_vec();
                    v.extend_from_slice(&at.seq.to_be_bytes());
                    ops.push(Op::Put(peer_key(peer), versioned(&v)));
                }
            }
            if let Some(version) = extra.derived {
                ops.push(Op::Put(
                    DERIVED_KEY.to_vec(),
                    versioned(&version.to_be_bytes()),
                ));
            }
            if extra.raw.iter().any(|op| aside::is_note(op.key())) {
                let mut noted = self.noted.lock().unwrap_or_else(|e| e.into_inner());
                for op in extra.raw.iter().filter(|op| aside::is_note(op.key())) {
                    match op {
                        Op::Put(k, _) => noted.insert(k.clone()),
                        Op::Del(k) => noted.remove(k),
                    };
                }
                self.notes_changed
                    .fetch_add(1, std::sync::atomic::Ordering::Release);
            }
            ops.extend(extra.raw);
            // The record joins the log buffer in sequence order, and the
            // operations become readable in the memtable; the commit is
            // acknowledged once a flush has synced its record, and from
            // then on survives any crash.
            let (record, spans) = match Wal::record(&ops, next.lsn) {
                Ok(r) => r,
                Err(e) => return Err(self.group.fail(format!("writing a commit failed: {e}"))),
            };
            let ticket = self.group.push(&record);
            self.mem.apply(&Arc::from(record), &spans);
            next.seq = seq;
            next.lsn += 1;
            (seq.saturating_sub(1), ticket)
        };
        self.group
            .wait_durable(ticket, |records| self.wal.write(records))?;
        // Every commit up to this one is on disk, so every sequence number
        // up to its last is.
        let before = self
            .durable_feed
            .fetch_max(last, std::sync::atomic::Ordering::AcqRel);
        if last > before {
            self.listeners.tell(last);
        }
        // The write is durable whatever happens next: a checkpoint that
        // cannot start or finish is logged, and stops later writes.
        if let Err(e) = self.maybe_checkpoint() {
            tracing::error!(error = %e, "checkpoint failed; the store stops accepting writes");
        }
        self.maybe_train(last);
        Ok(last)
    }

    /// Starts training a compression dictionary in the background when one
    /// is due, the feed being at `seq` (see `dict.rs`).
    fn maybe_train(&self, seq: u64) {
        let first = self.options.dictionary_after;
        if !self.dicts.claim_training(seq, first) {
            return;
        }
        let mut slot = self.trainer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = slot.take() {
            // The previous one has finished: it released the claim.
            let _ = done.join();
        }
        let (db, sled_dir, tree, blocks, mem, dicts) = (
            self.db.clone(),
            self.sled_dir.clone(),
            self.tree.clone(),
            Arc::clone(&self.blocks),
            Arc::clone(&self.mem),
            Arc::clone(&self.dicts),
        );
        let spawned = std::thread::Builder::new()
            .name("hallsync-dictionary".into())
            .spawn(move || {
                let trained = train_dictionary(&db, &sled_dir, &tree, &blocks, &mem, &dicts, seq);
                if let Err(e) = &trained {
                    tracing::warn!(error = %e, "could not train a compression dictionary; documents stay compressed as they are, and training is tried again later");
                }
                dicts.trained(trained.is_ok(), seq, first);
            });
        match spawned {
            Ok(handle) => *slot = Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "could not start a thread to train a compression dictionary");
                self.dicts.trained(false, seq, first);
            }
        }
    }

    fn checkpoint_due(&self, factor: usize) -> bool {
        // The memtable counts every log record it holds, so it reaches its
        // bound no later than the log segment written since the last
        // checkpoint does.
        self.mem.active_bytes() > self.options.memtable_bytes.max(1) * factor
    }

    /// Starts a background checkpoint when one is due. If the previous one
    /// is still running, writers go on unless the memtable has grown to
    /// twice its bound, when they wait for it (so memory stays bounded when
    /// sled cannot keep up).
    fn maybe_checkpoint(&self) -> Result<(), StoreError> {
        if !self.checkpoint_due(1) {
            return Ok(());
        }
        let mut running = self.background_job();
        if running.as_ref().is_some_and(|j| !j.is_finished()) && !self.checkpoint_due(2) {
            return Ok(());
        }
        self.finish_background(&mut running)?;
        if !self.checkpoint_due(1) {
            // Another writer just started one.
            return Ok(());
        }
        if let Some((frozen, mark)) = self.freeze()? {
            let job = self.checkpointer();
            let spawned = std::thread::Builder::new()
                .name("hallsync-checkpoint".into())
                .spawn(move || job.in_background(&frozen, mark));
            match spawned {
                Ok(handle) => *running = Some(handle),
                Err(e) => {
                    return Err(self
                        .group
                        .fail(format!("could not start a checkpoint thread: {e}")))
                }
            }
        }
        Ok(())
    }

    fn checkpointer(&self) -> Checkpointer {
        Checkpointer {
            db: self.db.clone(),
            sled_dir: self.sled_dir.clone(),
            tree: self.tree.clone(),
            blocks: Arc::clone(&self.blocks),
            wal: Arc::clone(&self.wal),
            mem: Arc::clone(&self.mem),
            group: Arc::clone(&self.group),
        }
    }

    fn background_job(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        // Holds only a thread handle: a panic cannot leave it half-set.
        self.background.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the running background checkpoint, if any.
    fn finish_background(&self, running: &mut Option<JoinHandle<()>>) -> Result<(), StoreError> {
        if let Some(job) = running.take() {
            if job.join().is_err() {
                return Err(self.group.fail("the checkpoint thread panicked".into()));
            }
        }
        self.group.check()
    }

    /// Under the writer lock: closes the log's current segment (every record
    /// in it is then durable) and freezes the memtable; returns the frozen
    /// table, and the log's mark once sled holds it.
    fn freeze(&self) -> Result<Option<(Arc<Table>, Mark)>, StoreError> {
        let next = self
            .writer
            .lock()
            .map_err(|_| StoreError::Durability("a writer panicked during a commit".into()))?;
        self.group.check()?;
        if self.mem.active_bytes() == 0 {
            // Nothing committed since the last checkpoint: the current
            // segment holds no record, and stays the current one.
            return Ok(None);
        }
        let closed = self
            .group
            .flush_all(|records| self.wal.write_and_rotate(records))?;
        let mark = Mark {
            segment: closed + 1,
            lsn: next.lsn - 1,
        };
        Ok(self.mem.freeze().map(|t| (t, mark)))
    }

    /// Writes everything committed so far into sled, flushes it and deletes
    /// the log it covered; returns once done.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let mut running = self.background_job();
        self.finish_background(&mut running)?;
        if let Some((frozen, mark)) = self.freeze()? {
            self.checkpointer().write_out(&frozen, mark);
        }
        self.group.check()
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

    /// Feed entries after `after`: (sequence number, doc id), oldest first,
    /// at most `limit`. Each document appears once, at its newest change.
    pub fn feed_since(&self, after: u64, limit: usize) -> Result<Vec<(u64, DocId)>, StoreError> {
        Ok(self
            .feed_entries(after, u64::MAX, limit)?
            .0
            .into_iter()
            .map(|e| (e.seq, e.id))
            .collect())
    }

    /// Feed entries in `(after, upto]` with the document's heads, oldest
    /// first, at most `limit`; each document once, at its newest change.
    /// Also returns how far the scan got: every entry up to it was seen.
    pub fn feed_entries(
        &self,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<(Vec<FeedEntry>, u64), StoreError> {
        let mut out = Vec::new();
        let end = match upto.checked_add(1) {
            Some(n) => feed_key(n),
            None => key(FEED + 1, &[]),
        };
        let mut scanned = upto;
        for kv in self
            .mem
            .range(&self.blocks, feed_key(after.saturating_add(1)), Some(end))
        {
            let (k, v) = kv?;
            let seq = seq_of(&k)?;
            if out.len() >= limit {
                scanned = seq - 1;
                break;
            }
            let FeedValue { id, origin, .. } = parse_feed_value(&v)?;
            if let Some(h) = self.head(&id)?.filter(|h| h.feed_seq == seq) {
                out.push(FeedEntry {
                    seq,
                    id,
                    heads: h.heads.into_iter().map(ChangeHash).collect(),
                    origin,
                });
            }
        }
        Ok((out, scanned))
    }

    /// How far this node has applied `peer`'s change feed (zero: nothing
    /// yet).
    pub fn peer_checkpoint(&self, peer: &str) -> Result<Checkpoint, StoreError> {
        let Some(v) = self.get(&peer_key(peer))? else {
            return Ok(Checkpoint::default());
        };
        let v = unversioned("peer checkpoint", &v)?;
        let (feed, seq) = (v.get(..8), v.get(8..16));
        match (feed, seq, v.len()) {
            (Some(f), Some(s), 16) => Ok(Checkpoint {
                feed: u64::from_be_bytes(f.try_into().unwrap_or_default()),
                seq: u64::from_be_bytes(s.try_into().unwrap_or_default()),
            }),
            _ => Err(corrupt("peer checkpoint", "not 16 bytes")),
        }
    }

    /// This store's feed identity (random, fixed at creation).
    pub fn feed_id(&self) -> u64 {
        self.feed_id
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

    fn timed_cases(
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
    /// exists, and that every case has the index entries of its record;
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
            for k in head.case.iter().flat_map(|c| index_keys(&id, c)) {
                if self.get(&k)?.is_none() {
                    return Err(corrupt(id.as_str(), "a case index entry is missing"));
                }
            }
            n += 1;
        }
        Ok(n)
    }
}

/// What a checkpoint needs, apart from the store (so it can run on its own
/// thread).
struct Checkpointer {
    db: sled::Db,
    sled_dir: PathBuf,
    tree: sled::Tree,
    blocks: Arc<Blocks>,
    wal: Arc<Wal>,
    mem: Arc<Mem>,
    group: Arc<GroupCommit>,
}

impl Checkpointer {
    /// [`Checkpointer::write_out`], then the spare log segment for the next
    /// checkpoint, while writers carry on. (A checkpoint on close makes
    /// none: a one-off command would write one for nothing.)
    fn in_background(&self, frozen: &Table, mark: Mark) {
        self.write_out(frozen, mark);
        if let Err(e) = self.wal.prepare_spare() {
            tracing::warn!(error = %e, "could not prepare the next write-ahead log segment; it will be made when needed, and syncing it will cost more");
        }
    }

    /// Applies a frozen memtable to sled with the log's `mark`, flushes it,
    /// deletes the log segments before the mark's and forgets the table. A
    /// failure stops the store accepting writes (the frozen table stays
    /// readable).
    fn write_out(&self, frozen: &Table, mark: Mark) {
        let started = std::time::Instant::now();
        let changes = frozen
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_ref().map(Val::as_slice)));
        let result = self
            .blocks
            .fold(changes)
            .map_err(StoreError::from)
            .and_then(|()| Ok(self.tree.insert(MARK_KEY, &mark.encode()).map(drop)?))
            .and_then(|()| open::flush(&self.db, &self.sled_dir))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                self.wal
                    .remove_before(mark.segment)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => {
                self.mem.drop_frozen();
                tracing::debug!(
                    keys = frozen.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "checkpoint written"
                );
            }
            Err(e) => {
                let e = self.group.fail(format!("a checkpoint failed: {e}"));
                tracing::error!(error = %e, "the store stops accepting writes");
            }
        }
    }
}

/// Trains a dictionary on a sample of the stored documents, stores it,
/// flushes sled, and only then lets new saves use it.
fn train_dictionary(
    db: &sled::Db,
    sled_dir: &Path,
    tree: &sled::Tree,
    blocks: &Blocks,
    mem: &Mem,
    dicts: &Dicts,
    seq: u64,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut samples = Vec::new();
    for kv in mem.prefix(blocks, &[DOC]).take(dict::SAMPLES) {
        let (k, v) = kv.map_err(|e| StoreError::from(e).to_string())?;
        let name = String::from_utf8_lossy(&k[1..]);
        let saved = unpack_saved(&name, &v, dicts).map_err(|e| e.to_string())?;
        samples.push(saved.into_owned());
    }
    let raw = dict::train(&samples)
        .map_err(|e| format!("zstd could not train on {} documents: {e}", samples.len()))?;
    let number = dicts.next_number();
    let mut k = dict::DICT_PREFIX.to_vec();
    k.extend_from_slice(&number.to_be_bytes());
    tree.insert(k, versioned(&dict::stored_form(seq, &raw)))
        .map_err(StoreError::from)
        .and_then(|_| open::flush(db, sled_dir))
        .map_err(|e| format!("could not store it: {e}"))?;
    dicts.install(number, seq, &raw);
    tracing::info!(
        dictionary = number,
        feed = seq,
        samples = samples.len(),
        bytes = raw.len(),
        ms = started.elapsed().as_millis() as u64,
        "trained a compression dictionary for saved documents"
    );
    Ok(())
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
