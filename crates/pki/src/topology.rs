//! The federation's node list, kept by the administrator in
//! `topology/federation.toml` and written only by `hallsync node …`.

use std::path::Path;

use hallsync_model::{Level, NodeId, RegionCode};
use serde::{Deserialize, Serialize};

use crate::{write_file, PkiError};

/// One node of the federation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Node id, unique in the federation.
    pub id: NodeId,
    /// Hall name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Region code.
    pub region: RegionCode,
    /// The node it dials (none for the top of the federation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<NodeId>,
    /// Address it listens on (`host:port`), if children dial it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Serial number of its current certificate (hex).
    pub serial: String,
    /// When the certificate was issued (local time).
    pub issued: String,
    /// When the certificate expires (local time).
    pub expires: String,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

/// The whole federation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Federation name (the CA's).
    #[serde(default)]
    pub federation: String,
    /// Every node ever added, revoked ones included.
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeEntry>,
}

/// Largest topology file read (bytes).
const MAX_BYTES: u64 = 16 << 20;

impl Topology {
    /// Reads the file; a missing file is an empty federation.
    pub fn load(path: &Path) -> Result<Topology, PkiError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Topology::default()),
            Err(source) => {
                return Err(PkiError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        if meta.len() > MAX_BYTES {
            return Err(PkiError::Invalid {
                path: path.to_path_buf(),
                reason: format!("{} bytes; at most {MAX_BYTES}", meta.len()),
            });
        }
        let text = crate::read(path)?;
        let t: Topology = toml::from_str(&text).map_err(|e| PkiError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        t.validate().map_err(|reason| PkiError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(t)
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), PkiError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let body = toml::to_string_pretty(self).map_err(|e| PkiError::Cert(e.to_string()))?;
        let text =
            format!("# The hallsync federation: written by `hallsync node add | revoke`.\n{body}");
        write_file(path, text.as_bytes(), 0o644)
    }

    /// A node by id.
    pub fn node(&self, id: &NodeId) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == *id)
    }

    fn validate(&self) -> Result<(), String> {
        for (i, n) in self.nodes.iter().enumerate() {
            if self.nodes[..i].iter().any(|m| m.id == n.id) {
                return Err(format!("node {} is listed twice", n.id));
            }
            n.region
                .check_level(n.level)
                .map_err(|e| format!("node {}: {e}", n.id))?;
        }
        Ok(())
    }

    /// Checks that a new node fits: a fresh id, its region not taken by a
    /// live node, and a live parent above it that children can dial.
    pub fn check_new(&self, new: &NodeEntry) -> Result<(), PkiError> {
        let refuse = |m: String| Err(PkiError::Refused(m));
        if self.node(&new.id).is_some() {
            return refuse(format!(
                "node {} already exists (revoked ids are not reused: pick another)",
                new.id
            ));
        }
        if let Some(other) = self
            .nodes
            .iter()
            .find(|n| n.revoked.is_none() && n.region == new.region)
        {
            return refuse(format!(
                "region {} already has node {}; revoke it first",
                new.region, other.id
            ));
        }
        match &new.parent {
            None => {
                if let Some(top) = self
                    .nodes
                    .iter()
                    .find(|n| n.revoked.is_none() && n.parent.is_none())
                {
                    return refuse(format!(
                        "the federation already has a top node ({}); give --parent",
                        top.id
                    ));
                }
            }
            Some(p) => {
                let Some(parent) = self.node(p) else {
                    return refuse(format!("parent {p} is not in the topology; add it first"));
                };
                if parent.revoked.is_some() {
                    return refuse(format!("parent {p} is revoked"));
                }
                if !parent.region.is_ancestor_of(&new.region) {
                    return refuse(format!(
                        "parent {p} ({}) is not above region {}",
                        parent.region, new.region
                    ));
                }
                if parent.addr.is_none() {
                    return refuse(format!(
                        "parent {p} has no address; a child dials its parent, so re-add it with --addr"
                    ));
                }
            }
        }
        Ok(())
    }
}
