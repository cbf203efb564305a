//! The operations of a hallsync node, typed: the one place where a request
//! is checked, run and answered, whoever asks. The command line runs them
//! on the store it opens, or sends them to the running node; the node's
//! HTTP API (`/api/v1/…`) and its web console run them for their callers.
//! So the CLI and the API give the same answers, refuse the same things,
//! and print the same JSON.
//!
//! Each operation is a type implementing [`Op`]: its request fields (a
//! query string for reads, a JSON body for writes), its answer type, the
//! role it needs and the code that runs it over [`Service`].
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod ops;

use std::sync::Arc;

use hallsync_hall::operators::{OperatorInfo, Role};
use hallsync_hall::Hall;
use hallsync_model::Ts;
use hallsync_net::status::NodeStatus;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use error::ApiError;

/// The version prefix of every API path.
pub const PREFIX: &str = "/api/v1";

/// Largest request body of most operations, bytes.
pub const MAX_BODY: usize = 64 << 10;

/// Most rows one page of a list holds.
pub const MAX_PAGE: usize = 10_000;

/// Rows in a page when the request does not say.
pub const DEFAULT_PAGE: usize = 50;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The administrator of the machine (the command line, with the token
    /// only its owner can read): every role, and names the handler of each
    /// write itself (`--by`).
    Local,
    /// An operator logged in at the console: only its roles, and recorded
    /// as the handler of everything it writes.
    Operator(OperatorInfo),
}

impl Caller {
    /// Whether the caller has `role`.
    pub fn has(&self, role: Role) -> bool {
        match self {
            Caller::Local => true,
            Caller::Operator(o) => o.roles.contains(&role),
        }
    }

    /// The handler a write records: a logged-in operator's own name, or
    /// the one the local administrator gives.
    pub fn handler(&self, given: &str) -> Result<String, ApiError> {
        match self {
            Caller::Operator(o) => Ok(o.name.clone()),
            Caller::Local if given.trim().is_empty() => Err(ApiError::invalid(
                "the handler must be named (--by, or $HALLSYNC_OPERATOR)",
            )),
            Caller::Local => Ok(given.trim().to_string()),
        }
    }
}

/// A node's operations, over its hall.
pub struct Service {
    hall: Arc<Hall>,
    status: Option<Box<dyn Fn() -> NodeStatus + Send + Sync>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("node", &self.hall.node().id)
            .field("running", &self.status.is_some())
            .finish()
    }
}

impl Service {
    /// The operations of a hall opened by this process alone.
    pub fn new(hall: Arc<Hall>) -> Service {
        Service { hall, status: None }
    }

    /// The operations of a running node, whose links `status` reports.
    pub fn running(hall: Arc<Hall>, status: Box<dyn Fn() -> NodeStatus + Send + Sync>) -> Service {
        Service {
            hall,
            status: Some(status),
        }
    }

    /// The hall.
    pub fn hall(&self) -> &Hall {
        &self.hall
    }

    /// The running node's links and registry; `None` when the node is not
    /// running.
    pub fn status(&self) -> Option<NodeStatus> {
        self.status.as_ref().map(|s| s())
    }

    /// Runs `op` for `caller` at `now`, after checking its role.
    pub fn run<O: Op>(&self, op: O, caller: &Caller, now: Ts) -> Result<O::Out, ApiError> {
        if let Some(role) = op.role() {
            if !caller.has(role) {
                return Err(ApiError::forbidden(format!(
                    "this needs the {} ({}) role",
                    role.label(),
                    role
                )));
            }
        }
        if O::RECORDS && self.hall.restoring() {
            return Err(ApiError::new(
                503,
                "restoring",
                "this hall is being rebuilt from its parent (hallsync restore) and records nothing until it holds everything its parent holds for it: new case numbers would clash with cases already there; `hallsync status` shows the progress",
            ));
        }
        op.run(self, caller, now)
    }
}

/// One operation of the API.
pub trait Op: Serialize + DeserializeOwned + Send + 'static {
    /// What it answers.
    type Out: Serialize + DeserializeOwned + Send + 'static;
    /// Its path under [`PREFIX`].
    const PATH: &'static str;
    /// Whether it writes (POST, JSON body) or reads (GET, query string).
    const WRITE: bool;
    /// Whether it writes records that replicate, refused while the hall is
    /// being rebuilt (`hallsync restore`); the hall's own records
    /// (operators, a rules draft, a backup) do not.
    const RECORDS: bool = Self::WRITE;
    /// Largest request body accepted, bytes.
    const MAX_BODY: usize = MAX_BODY;
    /// The role it needs; `None`: any operator.
    fn role(&self) -> Option<Role>;
    /// Runs it (the role is checked by [`Service::run`]).
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError>;
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// Rows matching, in all.
    pub total: usize,
    /// Rows skipped before this page.
    pub offset: usize,
    /// Most rows a page holds.
    pub limit: usize,
    /// This page's rows.
    pub items: Vec<T>,
}

impl<T> Page<T> {
    /// The page of `all` that `offset` and `limit` ask for.
    pub fn of(all: Vec<T>, offset: usize, limit: usize) -> Result<Page<T>, ApiError> {
        check_limit(limit)?;
        let total = all.len();
        Ok(Page {
            total,
            offset,
            limit,
            items: all.into_iter().skip(offset).take(limit).collect(),
        })
    }
}

/// Refuses a page size outside 1 to [`MAX_PAGE`].
pub fn check_limit(limit: usize) -> Result<(), ApiError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    Ok(())
}

/// The default page size, for serde.
pub fn default_limit() -> usize {
    DEFAULT_PAGE
}

/// Bytes carried in JSON as base64.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        use base64::Engine as _;
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}
