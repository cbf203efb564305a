//! A node bundle: the directory an administrator copies to a hall PC, and
//! the run configuration inside it.
//!
//! | file            | what                                             |
//! |-----------------|--------------------------------------------------|
//! | `hallsync.toml` | [`RunConfig`]: identity, listen address, parent  |
//! | `node.crt`      | the node certificate                             |
//! | `node.key`      | its private key (mode 0600)                      |
//! | `ca.crt`        | the federation CA certificate                    |
//! | `crl.pem`       | the revocation list (replace it when it changes) |
//! | `topology.toml` | the node's own topology entry                    |

use std::path::{Path, PathBuf};

use hallsync_model::{Level, NodeId, RegionCode};
use serde::{Deserialize, Serialize};

use crate::topology::NodeEntry;
use crate::{read, write_file, Ca, Issued, PkiError};

/// Run configuration file name.
pub const CONFIG: &str = "hallsync.toml";
/// Node certificate file name.
pub const NODE_CERT: &str = "node.crt";
/// Node key file name.
pub const NODE_KEY: &str = "node.key";
/// The node's topology entry.
pub const ENTRY: &str = "topology.toml";

/// The parent a node dials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentConfig {
    /// The parent's node id (its certificate must name it).
    pub id: NodeId,
    /// Its address, `host:port`.
    pub addr: String,
}

/// How a node runs: read by `hallsync run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// This node's id.
    pub id: NodeId,
    /// Hall name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Region code.
    pub region: RegionCode,
    /// Address to listen on for children (`host:port`); none for a node
    /// that only dials out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The parent to dial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentConfig>,
    /// Seconds without any packet before a link is declared dead.
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
    /// Seconds between keep-alive packets on an idle link.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_secs: u64,
    /// Longest wait between two attempts to reach the parent.
    #[serde(default = "default_backoff")]
    pub max_backoff_secs: u64,
}

fn default_idle() -> u64 {
    60
}
fn default_keep_alive() -> u64 {
    15
}
fn default_backoff() -> u64 {
    300
}

impl RunConfig {
    /// Checks the fields.
    pub fn validate(&self) -> Result<(), String> {
        self.region.check_level(self.level)?;
        if self.listen.is_none() && self.parent.is_none() {
            return Err("neither `listen` nor `parent`: this node would talk to no one".into());
        }
        if !(1..=3_600).contains(&self.idle_timeout_secs) {
            return Err("idle_timeout_secs must be 1-3600".into());
        }
        if self.keep_alive_secs == 0 || self.keep_alive_secs >= self.idle_timeout_secs {
            return Err("keep_alive_secs must be at least 1 and below idle_timeout_secs".into());
        }
        if !(1..=86_400).contains(&self.max_backoff_secs) {
            return Err("max_backoff_secs must be 1-86400".into());
        }
        Ok(())
    }
}

/// A bundle on disk.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Its directory.
    pub dir: PathBuf,
    /// Its run configuration.
    pub config: RunConfig,
}

impl Bundle {
    /// Writes a bundle for `entry` into `dir` (created; files replaced).
    pub fn write(
        dir: &Path,
        ca: &Ca,
        entry: &NodeEntry,
        issued: &Issued,
        listen: Option<String>,
        parent: Option<ParentConfig>,
    ) -> Result<Bundle, PkiError> {
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let config = RunConfig {
            id: entry.id.clone(),
            name: entry.name.clone(),
            level: entry.level,
            region: entry.region.clone(),
            listen,
            parent,
            idle_timeout_secs: default_idle(),
            keep_alive_secs: default_keep_alive(),
            max_backoff_secs: default_backoff(),
        };
        config.validate().map_err(PkiError::Refused)?;
        let text = toml::to_string_pretty(&config).map_err(|e| PkiError::Cert(e.to_string()))?;
        write_file(
            &dir.join(CONFIG),
            format!(
                "# hallsync run configuration for {}: read by `hallsync run --bundle`.\n{text}",
                entry.id
            )
            .as_bytes(),
            0o644,
        )?;
        write_file(&dir.join(NODE_KEY), issued.key_pem.as_bytes(), 0o600)?;
        write_file(&dir.join(NODE_CERT), issued.cert_pem.as_bytes(), 0o644)?;
        write_file(&dir.join(crate::CA_CERT), ca.cert_pem().as_bytes(), 0o644)?;
        write_file(&dir.join(crate::CRL), ca.crl_pem()?.as_bytes(), 0o644)?;
        let entry_text =
            toml::to_string_pretty(entry).map_err(|e| PkiError::Cert(e.to_string()))?;
        write_file(&dir.join(ENTRY), entry_text.as_bytes(), 0o644)?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            config,
        })
    }

    /// Opens a bundle and checks its configuration.
    pub fn open(dir: &Path) -> Result<Bundle, PkiError> {
        let path = dir.join(CONFIG);
        if !path.exists() {
            return Err(PkiError::Refused(format!(
                "{} is not a node bundle (no {CONFIG}); make one with `hallsync node add`",
                dir.display()
            )));
        }
        let config: RunConfig = toml::from_str(&read(&path)?).map_err(|e| PkiError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        config
            .validate()
            .map_err(|reason| PkiError::Invalid { path, reason })?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            config,
        })
    }

    /// A file of the bundle.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads a PEM file of the bundle.
    pub fn read(&self, name: &str) -> Result<String, PkiError> {
        read(&self.file(name))
    }

    /// The node's own topology entry.
    pub fn entry(&self) -> Result<NodeEntry, PkiError> {
        let path = self.file(ENTRY);
        toml::from_str(&read(&path)?).map_err(|e| PkiError::Invalid {
            path,
            reason: e.to_string(),
        })
    }

    /// Replaces the revocation list (`der`, already checked) atomically.
    pub fn replace_crl(&self, der: &[u8]) -> Result<(), PkiError> {
        write_file(
            &self.file(crate::CRL),
            crate::crl_to_pem(der).as_bytes(),
            0o644,
        )
    }
}
