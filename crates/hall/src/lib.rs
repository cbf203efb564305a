//! A hall node's operations over its store: the power catalogue and its
//! review workflow, cases and their events, supervision orders, the holiday
//! calendar, the registry, and raw documents. Every operation validates with
//! the model before anything is written, and is acknowledged only once
//! durable. Time is always passed in.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod backup;
mod calendar;
mod cases;
mod catalogue;
mod docs;
mod filing;
pub mod import;
mod listing;
pub mod operators;
mod orders;
mod registry;
mod replica;
mod restore;
mod rules;
mod stats;
mod warnings;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use hallsync_model::calendar::Calendar;
use hallsync_model::case::CaseError;
use hallsync_model::catalogue::{ItemStatus, WorkflowError};
use hallsync_model::ids::IdError;
use hallsync_model::order::OrderError;
use hallsync_model::schema::{Record, SchemaError};
use hallsync_model::valid::Invalid;
use hallsync_model::{DocId, DocKind, Level, NodeId, RegionCode};
use hallsync_store::{Pending, Store, StoreError, StoreOptions};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use backup::{backed_up_node, BackupSummary};
pub use calendar::CalendarImport;
pub use cases::{CaseRow, NewCase};
pub use catalogue::{ImportReport, ItemChange, RowProblem};
pub use docs::MAX_DOC_BYTES;
pub use filing::field as case_field;
pub use hallsync_store::{Direction, SetAside};
pub use listing::{CaseFilter, CasePage};
pub use orders::{NewOrder, OrderRow};
pub use registry::{ClockFlag, CrlCheck};
pub use replica::HallReplica;
pub use restore::RestoreState;
pub use stats::{Stats, StatsBy, StatsLine, StatsQuery};
pub use warnings::{WarningFilter, WarningPage, WarningRow};

/// Name of the node configuration file in a data directory.
pub const NODE_FILE: &str = "node.toml";
/// Name of the store directory in a data directory.
pub const STORE_DIR: &str = "store";
/// Where `Hall::restore` builds a node inside a data directory, until it
/// is whole.
pub const RESTORE_PARTIAL_DIR: &str = ".restore-partial";

/// Everything that can go wrong in a hall operation.
#[derive(Debug, Error)]
pub enum HallError {
    /// The data directory holds no node.
    #[error("{0} holds no hallsync node: run `hallsync init` first (or pass --data-dir)")]
    NotInitialised(PathBuf),
    /// `init` on a directory that already holds a node.
    #[error("{0} already holds a hallsync node; choose another --data-dir")]
    AlreadyInitialised(PathBuf),
    /// `init` on a directory a restore was building a node in.
    #[error("a restore into {} was cut short (it left {}): run the same `hallsync restore` again; or, to make a new, empty hall here instead, remove that directory", .0.display(), .0.join(RESTORE_PARTIAL_DIR).display())]
    RestoreCutShort(PathBuf),
    /// The node configuration is invalid.
    #[error("node configuration {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An identifier is malformed.
    #[error(transparent)]
    Id(#[from] IdError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored document does not read as its record.
    #[error("document {id} is not valid: {source}")]
    Schema {
        /// The document.
        id: String,
        /// Why.
        source: Box<SchemaError>,
    },
    /// No item with that code.
    #[error("no catalogue item with implementation code {0:?} (see `hallsync item list`)")]
    UnknownItem(String),
    /// Cases need a published item.
    #[error("item {code} is {status}; only a published item can take cases")]
    ItemNotPublished {
        /// The item.
        code: String,
        /// Its status.
        status: ItemStatus,
    },
    /// No such case.
    #[error("no case {0:?} (see `hallsync case list`)")]
    UnknownCase(String),
    /// The case number is taken.
    #[error("case {0} already exists")]
    CaseExists(String),
    /// No such document.
    #[error("no document {0}")]
    UnknownDoc(String),
    /// No such supervision order.
    #[error("no supervision order {0:?} (see `hallsync order list`)")]
    UnknownOrder(String),
    /// An action on a supervision order was refused.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// A case action was refused.
    #[error(transparent)]
    Case(#[from] CaseError),
    /// A review action was refused.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// Input that is not what it claims to be.
    #[error("{0}")]
    BadInput(String),
    /// An order names a card the case does not hold, one revoked on
    /// appeal, or one this hub has already ordered.
    #[error("{0}")]
    NotOrderable(String),
    /// A field of a request that would not be valid.
    #[error(transparent)]
    Field(#[from] Invalid),
    /// A record that would not be valid; nothing was stored.
    #[error("{id} was not stored: {source}")]
    Invalid {
        /// The document.
        id: String,
        /// The field at fault and the limit.
        source: Invalid,
    },
    /// A record outside what this node may hold.
    #[error("{id} lies outside this hall's scope ({region}): {why}")]
    OutOfScope {
        /// The document.
        id: String,
        /// This node's region.
        region: String,
        /// Which rule it breaks.
        why: &'static str,
    },
}

impl HallError {
    fn schema(id: &DocId, source: SchemaError) -> HallError {
        HallError::Schema {
            id: id.to_string(),
            source: Box::new(source),
        }
    }
}

/// The node's identity, kept in `node.toml` in the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Node id (`a-z`, `0-9`, `-`), unique in the federation.
    pub id: NodeId,
    /// Name of the hall, e.g. 某镇便民服务中心.
    pub name: String,
    /// Region code of the hall.
    pub region: RegionCode,
    /// Level of the hall; must match the region code.
    pub level: Level,
    /// Automerge actor id of this data directory (32 hex digits). Never
    /// copy a data directory to run a second node from it.
    pub actor: String,
}

impl NodeConfig {
    /// Checks the configuration read from `file`, and returns its actor.
    fn checked_actor(&self, file: &Path) -> Result<automerge::ActorId, HallError> {
        let config_err = |reason: String| HallError::Config {
            path: file.to_path_buf(),
            reason,
        };
        self.validate().map_err(config_err)?;
        (0..16)
            .map(|i| u8::from_str_radix(&self.actor[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map(automerge::ActorId::from)
            .map_err(|e| config_err(e.to_string()))
    }

    /// Checks the fields against each other.
    pub fn validate(&self) -> Result<(), String> {
        self.region.check_level(self.level)?;
        if !matches!(self.level, Level::City | Level::County | Level::Township) {
            return Err("a hall is at city, county or township level".into());
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err("the hall name must be 1-100 characters".into());
        }
        if self.actor.len() != 32 || !self.actor.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("actor must be 32 hex digits".into());
        }
        Ok(())
    }
}

/// An open hall node.
#[derive(Debug)]
pub struct Hall {
    node: NodeConfig,
    actor: automerge::ActorId,
    store: Store,
    calendar: RwLock<Option<Arc<Calendar>>>,
    rules: RwLock<Option<Arc<Vec<hallsync_model::rules::Rules>>>>,
    crl_check: OnceLock<registry::CrlChecker>,
    registry_writes: AtomicU64,
    /// The store is being rebuilt ([`Hall::begin_restore`]).
    restoring: AtomicBool,
    /// Held while an order is checked and issued, so two requests for the
    /// same card (a form sent twice) cannot both pass the check.
    issuing: Mutex<()>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HallError + '_ {
    move |source| HallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Hall {
    /// Creates a node in `dir`: an empty store, then `node.toml` (so a
    /// directory with `node.toml` always has its store; a creation cut short
    /// leaves no `node.toml`, and can be run again).
    pub fn init(
        dir: &Path,
        id: NodeId,
        name: &str,
        region: RegionCode,
        level: Level,
        options: StoreOptions,
    ) -> Result<Hall, HallError> {
        let file = dir.join(NODE_FILE);
        if file.exists() {
            return Err(HallError::AlreadyInitialised(dir.to_path_buf()));
        }
        if dir.join(RESTORE_PARTIAL_DIR).exists() {
            return Err(HallError::RestoreCutShort(dir.to_path_buf()));
        }
        let actor: [u8; 16] = rand::random();
        let node = NodeConfig {
            id,
            name: name.trim().to_string(),
            region,
            level,
            actor: actor.iter().map(|b| format!("{b:02x}")).collect(),
        };
        let actor = node.checked_actor(&file)?;
        fs::create_dir_all(dir).map_err(io(dir))?;
        keep_private(dir);
        let text = toml::to_string_pretty(&node).map_err(|e| HallError::Config {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        let store = Store::create(&dir.join(STORE_DIR), with_tallier(options))?;
        let tmp = dir.join(format!("{NODE_FILE}.tmp"));
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(
            b"# hallsync node identity: written by `hallsync init`; do not copy to another hall.\n",
        )
        .and_then(|()| f.write_all(text.as_bytes()))
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
        fs::rename(&tmp, &file).map_err(io(&file))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Hall::with_store(node, actor, store)
    }

    /// Opens the node in `dir`. A node whose store is missing is reported,
    /// never given an empty one.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Hall, HallError> {
        let file = dir.join(NODE_FILE);
        let text = match fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(HallError::NotInitialised(dir.to_path_buf()))
            }
            Err(e) => return Err(io(&file)(e)),
        };
        let node: NodeConfig = toml::from_str(&text).map_err(|e| HallError::Config {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        let actor = node.checked_actor(&file)?;
        keep_private(dir);
        let store = Store::open(&dir.join(STORE_DIR), with_tallier(options))?;
        Hall::with_store(node, actor, store)
    }

    fn with_store(
        node: NodeConfig,
        actor: automerge::ActorId,
        store: Store,
    ) -> Result<Hall, HallError> {
        let hall = Hall {
            node,
            actor,
            store,
            calendar: RwLock::new(None),
            rules: RwLock::new(None),
            crl_check: OnceLock::new(),
            registry_writes: AtomicU64::new(0),
            restoring: AtomicBool::new(false),
            issuing: Mutex::new(()),
        };
        hall.rederive_if_older()?;
        hall.restoring.store(
            hall.restoring_at_open()?,
            std::sync::atomic::Ordering::Release,
        );
        Ok(hall)
    }

    /// Re-derives the case records if an older build derived them.
    fn rederive_if_older(&self) -> Result<(), HallError> {
        if self.store.derived_version()? >= filing::DERIVATION {
            return Ok(());
        }
        self.rederive_cases()
    }

    /// This node's identity.
    pub fn node(&self) -> &NodeConfig {
        &self.node
    }

    /// The store (for tools and benchmarks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores locked documents in one durable commit, once every record
    /// among them passes the one definition of a valid record
    /// ([`Record::validate`]): a write another node's reader would refuse is
    /// refused here, naming the field and the limit, and nothing is stored
    /// (the documents are dropped from the cache, so their next use reloads
    /// what is on disk). Documents received from a peer pass the same check
    /// in the strict reader before they get here.
    fn persist(&self, pending: &mut [Pending<'_>]) -> Result<u64, HallError> {
        let refused = pending.iter().find_map(|p| {
            let record = p.loaded.record.as_ref()?;
            record.validate().err().map(|source| (p.id, source))
        });
        if let Some((id, source)) = refused {
            let id = id.to_string();
            for p in pending.iter() {
                self.store.evict(p.id);
            }
            return Err(HallError::Invalid { id, source });
        }
        Ok(self.store.persist(pending)?)
    }

    /// Persists several locked documents (no case records) in one durable
    /// commit.
    fn persist_all(
        &self,
        guards: &mut [(&DocId, std::sync::MutexGuard<'_, hallsync_store::Loaded>)],
    ) -> Result<u64, HallError> {
        let mut pending: Vec<Pending<'_>> = guards
            .iter_mut()
            .map(|(id, l)| Pending {
                id,
                loaded: l,
                index: None,
                facts: None,
            })
            .collect();
        self.persist(&mut pending)
    }

    /// The typed record a loaded document holds: read (strictly) once, then
    /// kept with the document. `None` if the document does not exist.
    fn record_of<T: Clone>(
        loaded: &mut hallsync_store::Loaded,
        id: &DocId,
        held: fn(&Record) -> Option<&T>,
        read: fn(&automerge::AutoCommit, &DocId) -> Result<T, SchemaError>,
        wrap: fn(T) -> Record,
    ) -> Result<Option<T>, HallError> {
        if !loaded.exists() {
            return Ok(None);
        }
        if let Some(r) = loaded.record.as_ref().and_then(held) {
            return Ok(Some(r.clone()));
        }
        let r = read(&loaded.doc, id).map_err(|e| HallError::schema(id, e))?;
        loaded.record = Some(wrap(r.clone()));
        Ok(Some(r))
    }

    /// The short actor tag used in event and review ids.
    fn actor_tag(&self) -> &str {
        &self.node.actor[..8]
    }

    fn new_doc(&self) -> automerge::AutoCommit {
        automerge::AutoCommit::new().with_actor(self.actor.clone())
    }

    fn doc_id(&self, kind: DocKind, key: &str) -> Result<DocId, HallError> {
        Ok(DocId::new(kind, &self.node.region, key)?)
    }

    /// Whether this node may hold a record: its own subtree's records
    /// (orders addressed to it among them), and its ancestors' catalogue,
    /// calendar and registry entries.
    fn check_scope(&self, id: &DocId) -> Result<(), HallError> {
        hallsync_model::scope::check(&self.node.region, id).map_err(|e| HallError::OutOfScope {
            id: id.to_string(),
            region: self.node.region.to_string(),
            why: e.reason(),
        })
    }
}

// The test set-up shared with the integration tests names this crate.
#[cfg(test)]
extern crate self as hallsync_hall;

/// The store options with the statistics' tallier, which every hall uses.
fn with_tallier(options: StoreOptions) -> StoreOptions {
    StoreOptions {
        tallier: Some(stats::tallier()),
        ..options
    }
}

/// Makes the data directory readable by its owner only: it holds
/// applicants' names and identity numbers and the operators' password
/// hashes. A directory another build or an administrator left open is
/// closed at the next open; if that fails, the node runs and says so.
fn keep_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let open = fs::metadata(dir).map(|m| m.permissions().mode() & 0o077 != 0);
    if open.unwrap_or(false) {
        if let Err(e) = fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not make the data directory private to its owner; other users of this PC may read applicants' personal data: chmod 700 it");
        }
    }
}

#[cfg(test)]
mod tests;
