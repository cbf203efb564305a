//! The domain model of hallsync, pure and deterministic.
//!
//! Nothing in this crate performs I/O or reads the system clock: every
//! function that depends on time takes it as an argument ([`Ts`]). The
//! modules, bottom up:
//!
//! - [`ids`]: region codes and levels, node ids, document ids;
//! - [`time`]: instants and the local (China Standard Time) calendar date;
//! - [`calendar`]: the holiday calendar with make-up working days;
//! - [`clock`]: time limits, working-time measurement, due times;
//! - [`catalogue`]: power catalogue items and their review workflow;
//! - [`case`]: cases as event logs and the state derived from them;
//! - [`registry`]: the federation registry, one entry per node;
//! - [`order`]: supervision orders, addressed to the hall they supervise;
//! - [`cards`]: the supervision cards a case holds, derived from its clock;
//! - [`valid`]: what makes a record valid, for writers and readers alike;
//! - [`schema`]: how each record is laid out as an Automerge document;
//! - [`scope`]: which node may hold which record.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod calendar;
pub mod cards;
pub mod case;
pub mod catalogue;
pub mod clock;
pub mod evaluation;
pub mod history;
pub mod idcheck;
pub mod ids;
pub mod inflate;
pub mod order;
pub mod registry;
pub mod rules;
pub mod schema;
pub mod scope;
pub mod stats;
pub mod time;
pub mod valid;

pub use calendar::{Calendar, DayKind};
pub use case::{Case, CaseEvent, CaseHeader, CaseState, CaseView, EventKind};
pub use catalogue::{Category, Item, ItemStatus, ReviewAction};
pub use clock::{LimitUnit, TimeLimit};
pub use ids::{DocId, DocKind, Level, LogId, NodeId, RegionCode};
pub use time::Ts;
