//! The running node: its links, the registry, what was set aside.

use hallsync_hall::operators::Role;
use hallsync_hall::BackupSummary;
use hallsync_model::Ts;
use hallsync_net::status::NodeStatus;
use serde::{Deserialize, Serialize};

use crate::{ApiError, Caller, Op, Service};

/// The node's links, registry and records set aside: `GET /api/v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {}

impl Op for Status {
    type Out = NodeStatus;
    const PATH: &'static str = "/status";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, _: Ts) -> Result<Self::Out, ApiError> {
        match svc.status() {
            Some(status) => Ok(status),
            None => Err(ApiError::new(
                409,
                "not_running",
                "the node is not running: `hallsync run --bundle <dir>` starts it",
            )),
        }
    }
}

/// Writes a backup of the node to a file on the node's machine:
/// `POST /api/v1/backup`. Only for the machine's administrator (the
/// command line): the node itself writes the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// Where: an absolute path that does not exist yet.
    pub path: std::path::PathBuf,
}

/// A backup written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupOut {
    /// The file.
    pub path: std::path::PathBuf,
    /// Its size.
    pub bytes: u64,
    /// What it holds.
    #[serde(flatten)]
    pub summary: BackupSummary,
}

impl Op for Backup {
    type Out = BackupOut;
    const PATH: &'static str = "/backup";
    const WRITE: bool = true;
    const RECORDS: bool = false;
    fn role(&self) -> Option<Role> {
        Some(Role::Admin)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        if !matches!(caller, Caller::Local) {
            return Err(ApiError::forbidden(
                "a backup is written by the machine's administrator, with `hallsync backup -o FILE` on the node's computer",
            ));
        }
        if svc.hall().restoring() {
            return Err(ApiError::new(
                503,
                "restoring",
                "this hall is being rebuilt from its parent (hallsync restore) and does not hold everything yet: a backup now would miss what it still lacks; take it once `hallsync status` no longer says it is being restored",
            ));
        }
        let path = self.path;
        if !path.is_absolute() {
            return Err(ApiError::invalid(format!(
                "{} is not an absolute path",
                path.display()
            )));
        }
        let io = |e: std::io::Error| ApiError::invalid(format!("{}: {e}", path.display()));
        // Only the owner may read it: it holds applicants' identity numbers
        // and the operators' password hashes.
        let create = |p: &std::path::Path| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(p)
        };
        // The name is taken first, so an existing file is never overwritten;
        // the backup is written beside it and renamed over it when whole.
        create(&path).map_err(io)?;
        let partial = path.with_extension("partial");
        let written = create(&partial).and_then(|f| {
            let result = (|| {
                let mut out = std::io::BufWriter::new(f);
                let summary = svc
                    .hall()
                    .backup(&mut out, now)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let f = out.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                let bytes = f.metadata()?.len();
                std::fs::rename(&partial, &path)?;
                Ok((summary, bytes))
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            result
        });
        match written {
            Ok((summary, bytes)) => Ok(BackupOut {
                path,
                bytes,
                summary,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(io(e))
            }
        }
    }
}
