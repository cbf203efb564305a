//! What a running node knows about its links, kept in memory and written
//! to `status.json` in the data directory every second for
//! `hallsync status` (which must not open the store the node holds).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hallsync_hall::{Hall, HallReplica};
use hallsync_model::NodeId;
use hallsync_pki::Identity;
use hallsync_sync::Session;
use serde::{Deserialize, Serialize};

use crate::now_ts;

/// Which side of the link the peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The node this one dials.
    Parent,
    /// A hub further up, dialled while the parent cannot be reached.
    Ancestor,
    /// A node that dials this one.
    Child,
}

/// One peer as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Peer node id.
    pub id: String,
    /// Parent or child.
    pub role: Role,
    /// Its region (from its certificate), once it has connected.
    pub region: Option<String>,
    /// Address dialled or connected from.
    pub addr: Option<String>,
    /// Whether a session is up (hello exchanged).
    pub connected: bool,
    /// When the current session came up (Unix seconds).
    pub since: Option<i64>,
    /// Whether both directions are caught up now.
    pub in_sync: bool,
    /// Last time both directions were caught up (Unix seconds).
    pub last_sync: Option<i64>,
    /// Our feed entries the peer has not acknowledged.
    pub backlog_out: u64,
    /// The peer's feed entries we have not applied, as last reported.
    pub backlog_in: u64,
    /// Documents sent in the current session.
    pub sent_docs: u64,
    /// Documents received in the current session.
    pub received_docs: u64,
    /// UDP bytes sent and received on the current connection.
    pub wire_tx: u64,
    /// See `wire_tx`.
    pub wire_rx: u64,
    /// Why the last session or attempt ended, if it failed.
    pub last_error: Option<String>,
    /// How far the peer's clock is ahead of this node's (seconds; negative:
    /// behind), as it told it in the current or last session.
    #[serde(default)]
    pub clock_skew_secs: Option<i64>,
}

/// A clock skew worth an administrator's attention (seconds).
pub const SKEW_WARN_SECS: i64 = hallsync_model::registry::CLOCK_TOLERANCE_SECS;

impl PeerStatus {
    fn new(id: &str, role: Role) -> PeerStatus {
        PeerStatus {
            id: id.to_string(),
            role,
            region: None,
            addr: None,
            connected: false,
            since: None,
            in_sync: false,
            last_sync: None,
            backlog_out: 0,
            backlog_in: 0,
            sent_docs: 0,
            received_docs: 0,
            wire_tx: 0,
            wire_rx: 0,
            last_error: None,
            clock_skew_secs: None,
        }
    }
}

/// The whole node, as written to `status.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node id.
    pub node: String,
    /// Process id of `hallsync run`.
    pub pid: u32,
    /// Listening address, if any.
    pub listen: Option<String>,
    /// When the node started (Unix seconds).
    pub started: i64,
    /// When this status was written (Unix seconds).
    pub updated: i64,
    /// Newest durable entry of the node's change feed.
    pub feed_head: u64,
    /// Every peer.
    pub peers: Vec<PeerStatus>,
    /// Number of the revocation list in force.
    #[serde(default)]
    pub revocation_list: Option<u64>,
    /// The federation registry as this node holds it: itself, the halls
    /// below it and the hubs above it.
    #[serde(default)]
    pub registry: Vec<KnownNode>,
    /// Records set aside in replication, either way, newest first.
    #[serde(default)]
    pub set_aside: Vec<SetAsideStatus>,
    /// The node is being rebuilt from its parent (`hallsync restore`) and
    /// records nothing until it has caught up.
    #[serde(default)]
    pub restoring: bool,
}

/// A record set aside in replication, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAsideStatus {
    /// `refused`: the peer sent it and this node refused it;
    /// `refused_by_peer`: this node sent it and the peer refused it.
    pub direction: String,
    /// The peer.
    pub peer: String,
    /// The document.
    pub id: String,
    /// Why.
    pub reason: String,
    /// When (Unix seconds).
    pub at: i64,
}

impl From<&hallsync_hall::SetAside> for SetAsideStatus {
    fn from(a: &hallsync_hall::SetAside) -> SetAsideStatus {
        SetAsideStatus {
            direction: match a.direction {
                hallsync_hall::Direction::Refused => "refused",
                hallsync_hall::Direction::RefusedByPeer => "refused_by_peer",
            }
            .into(),
            peer: a.peer.clone(),
            id: a.id.to_string(),
            reason: a.reason.clone(),
            at: a.at,
        }
    }
}

/// A registry entry, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownNode {
    /// Node id.
    pub id: String,
    /// Hall name.
    pub name: String,
    /// Level.
    pub level: String,
    /// Region.
    pub region: String,
    /// The node it dials.
    pub parent: Option<String>,
    /// Where it listens, if it does.
    pub addr: Option<String>,
    /// Number of the newest revocation list it reported.
    pub revocation_list: Option<u64>,
    /// Its clock is off its parent's, as last seen: by this many seconds
    /// ahead (negative: behind).
    #[serde(default)]
    pub clock_off: Option<i64>,
    /// The periods its entry records its clock off, ended ones included.
    #[serde(default)]
    pub clock_off_periods: usize,
    /// The last time its store was rebuilt (`hallsync restore`): when it
    /// began (Unix seconds), from a backup or from the parent alone, and
    /// the node it caught up from.
    #[serde(default)]
    pub last_restore: Option<(i64, String, Option<String>)>,
}

/// The live board.
#[derive(Debug)]
pub struct Board {
    hall: Arc<Hall>,
    file: Option<PathBuf>,
    listen: Option<String>,
    started: i64,
    peers: Mutex<BTreeMap<String, PeerStatus>>,
    registry: Mutex<(Option<u64>, Vec<KnownNode>)>,
    set_aside: Mutex<Vec<SetAsideStatus>>,
}

impl Board {
    pub(crate) fn new(hall: Arc<Hall>, file: Option<PathBuf>, listen: Option<String>) -> Board {
        Board {
            hall,
            file,
            listen,
            started: now_ts().0,
            peers: Mutex::new(BTreeMap::new()),
            registry: Mutex::new((None, Vec::new())),
            set_aside: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn set_set_aside(&self, notes: &[hallsync_hall::SetAside]) {
        if let Ok(mut slot) = self.set_aside.lock() {
            *slot = notes.iter().map(SetAsideStatus::from).collect();
        }
    }

    pub(crate) fn set_registry(&self, r: &crate::registry::Refreshed) {
        let known = r
            .known
            .iter()
            .map(|e| KnownNode {
                id: e.node.to_string(),
                name: e.name.clone(),
                level: e.level.to_string(),
                region: e.region.to_string(),
                parent: e.parent.as_ref().map(ToString::to_string),
                addr: e.addr.clone(),
                revocation_list: e.crl.as_ref().map(|c| c.number),
                clock_off: e
                    .clock_off
                    .last()
                    .filter(|p| p.to.is_none())
                    .map(|p| p.ahead_secs),
                clock_off_periods: e.clock_off.len(),
                last_restore: e.restored.last().map(|r| {
                    (
                        r.at.0,
                        r.source.as_str().to_string(),
                        r.from.as_ref().map(ToString::to_string),
                    )
                }),
            })
            .collect();
        if let Ok(mut slot) = self.registry.lock() {
            *slot = (Some(r.in_force), known);
        }
    }

    fn with(&self, id: &str, role: Role, f: impl FnOnce(&mut PeerStatus)) {
        if let Ok(mut peers) = self.peers.lock() {
            f(peers
                .entry(id.to_string())
                .or_insert_with(|| PeerStatus::new(id, role)));
        }
    }

    fn with_existing(&self, id: &str, f: impl FnOnce(&mut PeerStatus)) {
        if let Ok(mut peers) = self.peers.lock() {
            if let Some(p) = peers.get_mut(id) {
                f(p);
            }
        }
    }

    pub(crate) fn expect(&self, id: &NodeId, role: Role, addr: &str) {
        self.with(id.as_str(), role, |p| p.addr = Some(addr.to_string()));
    }

    pub(crate) fn connecting(&self, peer: &Identity, role: Role, conn: &quinn::Connection) {
        self.with(peer.id.as_str(), role, |p| {
            p.region = Some(peer.region.to_string());
            p.addr = Some(conn.remote_address().to_string());
            p.sent_docs = 0;
            p.received_docs = 0;
        });
    }

    pub(crate) fn update(&self, s: &Session, replica: &HallReplica<'_>, conn: &quinn::Connection) {
        let stats = conn.stats();
        let now = now_ts().0;
        let caught_up = s.caught_up(replica);
        let mut reached_sync = false;
        self.with_existing(s.peer().id.as_str(), |p| {
            reached_sync = caught_up && !p.in_sync;
            p.in_sync = caught_up;
            if s.established() && !p.connected {
                p.connected = true;
                p.since = Some(now);
                p.last_error = None;
            }
            if caught_up {
                p.last_sync = Some(now);
            }
            p.backlog_out = s.backlog_out(replica);
            p.backlog_in = s.backlog_in();
            p.sent_docs = s.stats().sent_whole + s.stats().sent_changes;
            p.received_docs = s.stats().received;
            p.wire_tx = stats.udp_tx.bytes;
            p.wire_rx = stats.udp_rx.bytes;
            if let Some(ms) = s.clock_skew_ms() {
                p.clock_skew_secs = Some(ms / 1000);
            }
        });
        if reached_sync {
            // Scripts and benchmarks watch the file for this moment.
            self.write_file();
        }
    }

    /// The UDP bytes of a live link now: a session thread updates the
    /// board only when it wakes, and an idle link's keep-alives wake none.
    pub(crate) fn wire(&self, id: &NodeId, conn: &quinn::Connection) {
        let stats = conn.stats();
        self.with_existing(id.as_str(), |p| {
            p.wire_tx = stats.udp_tx.bytes;
            p.wire_rx = stats.udp_rx.bytes;
        });
    }

    pub(crate) fn disconnected(&self, id: &NodeId, conn: &quinn::Connection) {
        let stats = conn.stats();
        self.with_existing(id.as_str(), |p| {
            p.connected = false;
            p.in_sync = false;
            p.since = None;
            p.wire_tx = stats.udp_tx.bytes;
            p.wire_rx = stats.udp_rx.bytes;
        });
    }

    pub(crate) fn error(&self, id: &NodeId, reason: &str) {
        self.with_existing(id.as_str(), |p| {
            p.last_error = Some(reason.chars().take(300).collect());
        });
    }

    /// The node's status now.
    pub fn snapshot(&self) -> NodeStatus {
        let now = now_ts().0;
        NodeStatus {
            node: self.hall.node().id.to_string(),
            pid: std::process::id(),
            listen: self.listen.clone(),
            started: self.started,
            updated: now,
            feed_head: self.hall.store().durable_seq(),
            // A link in sync is in sync now, though its session thread
            // sleeps until something happens.
            peers: self
                .peers
                .lock()
                .map(|p| {
                    p.values()
                        .map(|p| PeerStatus {
                            last_sync: if p.in_sync { Some(now) } else { p.last_sync },
                            ..p.clone()
                        })
                        .collect()
                })
                .unwrap_or_default(),
            revocation_list: self.registry.lock().ok().and_then(|r| r.0),
            registry: self
                .registry
                .lock()
                .map(|r| r.1.clone())
                .unwrap_or_default(),
            set_aside: self.set_aside.lock().map(|a| a.clone()).unwrap_or_default(),
            restoring: self.hall.restoring(),
        }
    }

    /// Writes `status.json` (atomically), if the board has a file.
    pub fn write_file(&self) {
        let Some(path) = &self.file else { return };
        let Ok(text) = serde_json::to_vec_pretty(&self.snapshot()) else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)) {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }
}

/// Largest status file read.
const MAX_STATUS_BYTES: u64 = 4 << 20;

/// Reads a status file written by a running (or stopped) node.
pub fn read_file(path: &Path) -> Result<NodeStatus, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_STATUS_BYTES {
        return Err(format!("{}: too large to be a status file", path.display()));
    }
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}
