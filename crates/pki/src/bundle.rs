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
//! | `console.crt`   | the console's HTTPS certificate, if it has one   |
//! | `console.key`   | its private key (mode 0600)                      |

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
/// The console's HTTPS certificate (from `hallsync node add
/// --console-host`), needed when the console is served beyond loopback.
pub const CONSOLE_CERT: &str = "console.crt";
/// Its private key.
pub const CONSOLE_KEY: &str = "console.key";

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
    /// Address (`IP:port`) the API and the web console listen on. The
    /// loopback address by default; any other one is served only over HTTPS
    /// (the bundle's `console.crt`) and only to operators who log in (and
    /// the PC's own command line, with the token in `api.json`).
    #[serde(default = "default_console")]
    pub console: String,
}

/// Where the API and console listen unless the bundle says otherwise.
pub const DEFAULT_CONSOLE: &str = "127.0.0.1:7480";

fn default_console() -> String {
    DEFAULT_CONSOLE.into()
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
        self.console_addr()?;
        Ok(())
    }

    /// The console's address.
    pub fn console_addr(&self) -> Result<std::net::SocketAddr, String> {
        self.console.parse().map_err(|_| {
            format!(
                "console = {:?} is not an IP address and port such as {DEFAULT_CONSOLE}",
                self.console
            )
        })
    }

    /// The configuration as `hallsync.toml`, each field with what it is for.
    pub fn to_toml(&self) -> Result<String, String> {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut out = format!(
            "# hallsync run configuration for {}: read by `hallsync run --bundle`.\n\n",
            self.id
        );
        let mut field = |doc: &str, line: String| {
            for d in doc.lines() {
                out.push_str(&format!("# {d}\n"));
            }
            out.push_str(&line);
            out.push_str("\n\n");
        };
        field(
            "This node's id (its certificate names it).",
            format!("id = {}", quote(self.id.as_str())),
        );
        field("The hall's name.", format!("name = {}", quote(&self.name)));
        field(
            "Its level: city, county or township.",
            format!("level = {}", quote(self.level.as_str())),
        );
        field(
            "Its region code.",
            format!("region = {}", quote(self.region.as_str())),
        );
        if let Some(l) = &self.listen {
            field(
                "Address (host:port) children dial, over QUIC.",
                format!("listen = {}", quote(l)),
            );
        }
        field(
            "Address (IP:port) the API and the web console listen on. The loopback\naddress by default, served over plain HTTP; any other (0.0.0.0:<port> for\nevery address of this PC) is served only over HTTPS, with console.crt and\nconsole.key in this bundle (from `hallsync node add --console-host` or\n`hallsync node console`), and only to operators who log in.",
            format!("console = {}", quote(&self.console)),
        );
        field(
            "Seconds without any packet before a link is declared dead.",
            format!("idle_timeout_secs = {}", self.idle_timeout_secs),
        );
        field(
            "Seconds between keep-alive packets on an idle link.",
            format!("keep_alive_secs = {}", self.keep_alive_secs),
        );
        field(
            "Longest wait, in seconds, between two attempts to reach the parent.",
            format!("max_backoff_secs = {}", self.max_backoff_secs),
        );
        if let Some(p) = &self.parent {
            field(
                "The parent this node dials: its node id and address (host:port).",
                format!(
                    "[parent]\nid = {}\naddr = {}",
                    quote(p.id.as_str()),
                    quote(&p.addr)
                ),
            );
        }
        // What was written must read back as this configuration.
        let back: RunConfig = toml::from_str(&out).map_err(|e| e.to_string())?;
        if back != *self {
            return Err("the configuration does not survive being written".into());
        }
        Ok(out)
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
        console: Option<String>,
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
            console: console.unwrap_or_else(default_console),
        };
        config.validate().map_err(PkiError::Refused)?;
        let text = config.to_toml().map_err(PkiError::Cert)?;
        write_file(&dir.join(CONFIG), text.as_bytes(), 0o644)?;
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

    /// Installs the console's certificate and key (key mode 0600).
    pub fn write_console(&self, issued: &Issued) -> Result<(), PkiError> {
        write_file(&self.file(CONSOLE_KEY), issued.key_pem.as_bytes(), 0o600)?;
        write_file(&self.file(CONSOLE_CERT), issued.cert_pem.as_bytes(), 0o644)
    }

    /// Sets where the console listens, rewriting `hallsync.toml`.
    pub fn set_console(&mut self, console: String) -> Result<(), PkiError> {
        let config = RunConfig {
            console,
            ..self.config.clone()
        };
        config.validate().map_err(PkiError::Refused)?;
        let text = config.to_toml().map_err(PkiError::Cert)?;
        write_file(&self.file(CONFIG), text.as_bytes(), 0o644)?;
        self.config = config;
        Ok(())
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
