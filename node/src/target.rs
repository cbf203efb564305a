//! How a command reaches the node: through the running node's API when a
//! `hallsync run` holds the data directory (it publishes where it listens
//! and the administrator's token in `api.json`), or by opening the store
//! when none runs. Either way the same operation runs ([`hallsync_api`]),
//! so the answer is the same.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use hallsync_api::{ApiError, Caller, Op, Service, PREFIX};
use hallsync_hall::{Hall, HallError};
use hallsync_model::Ts;
use hallsync_store::{StoreError, StoreOptions};
use hallsync_web::{ApiFile, API_FILE};

/// How long a command waits for a node that holds the store but has not
/// published its API (starting, or stopping).
const STARTING: std::time::Duration = std::time::Duration::from_secs(20);

/// Largest `api.json` read (it may hold the federation CA certificate).
const MAX_API_FILE: u64 = 64 << 10;
/// Largest answer read from the API (a document export, a long list).
const MAX_ANSWER: u64 = 256 << 20;

/// Where a command's operations run.
pub enum Target {
    /// On the store this process opened.
    Local(Service),
    /// On the running node.
    Remote {
        /// Its HTTP client.
        agent: ureq::Agent,
        /// What it published.
        api: ApiFile,
    },
}

/// The running node's `api.json`, if a node is running: the file is there
/// and the process that wrote it is alive.
fn running_api(dir: &Path) -> Result<Option<ApiFile>> {
    let path = dir.join(API_FILE);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => bail!(
            "the data directory {} is, or lies under, a file; give --data-dir (or $HALLSYNC_DATA_DIR) a directory",
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    };
    if meta.len() > MAX_API_FILE {
        bail!(
            "{} is too large to be what a running node writes",
            path.display()
        );
    }
    let text = std::fs::read(&path).with_context(|| path.display().to_string())?;
    let api: ApiFile = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not what a running node writes", path.display()))?;
    Ok(alive(api.pid).then_some(api))
}

/// Whether process `pid` is alive. A process killed while its parent has
/// not yet reaped it stays in `/proc` as a zombie (state `Z`), and must not
/// be taken for a running node: every command would wait on its address.
/// Without `/proc`, any pid counts as alive.
fn alive(pid: u32) -> bool {
    let proc_dir = Path::new("/proc");
    if !proc_dir.exists() {
        return true;
    }
    match std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// TLS for a node serving HTTPS: its certificate must come from the
/// federation CA the node published in `api.json`, and name the address
/// the URL gives; no other root is trusted.
fn console_tls(api: &ApiFile, dir: &Path) -> Result<ureq::tls::TlsConfig> {
    let path = dir.join(API_FILE);
    let pem = api.ca.as_deref().with_context(|| {
        format!(
            "{} gives an https:// address but no CA certificate to check it by",
            path.display()
        )
    })?;
    let ca = ureq::tls::Certificate::from_pem(pem.as_bytes())
        .with_context(|| format!("the CA certificate in {} does not read", path.display()))?;
    // The process's one crypto provider (ring), which ureq's TLS uses.
    let _ = hallsync_net::tls::provider();
    Ok(ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
        .build())
}

impl Target {
    /// The running node in `dir`, or else its store, opened.
    /// A node that holds the store but has not published its API yet is
    /// starting (it opens its store first, then serves): waited for, up to
    /// [`STARTING`], as is one that is stopping.
    pub fn open(dir: &Path) -> Result<Target> {
        let since = std::time::Instant::now();
        let mut told = false;
        loop {
            if let Some(target) = Target::open_running(dir)? {
                return Ok(target);
            }
            match Hall::open(dir, StoreOptions::default()) {
                Ok(hall) => return Ok(Target::Local(Service::new(Arc::new(hall)))),
                Err(HallError::Store(StoreError::Locked(_))) if since.elapsed() < STARTING => {
                    if !std::mem::replace(&mut told, true) {
                        eprintln!(
                            "the node in {} is starting or stopping; waiting for it",
                            dir.display()
                        );
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The running node in `dir`, if one runs.
    pub fn open_running(dir: &Path) -> Result<Option<Target>> {
        let Some(api) = running_api(dir)? else {
            return Ok(None);
        };
        let config = ureq::Agent::config_builder().http_status_as_error(false);
        let config = if api.url.starts_with("https://") {
            config.tls_config(console_tls(&api, dir)?)
        } else {
            config
        };
        Ok(Some(Target::Remote {
            agent: config.build().into(),
            api,
        }))
    }

    /// Runs `op`, at `now` when given (a rehearsal) or else the node's time.
    pub fn call<O: Op>(&self, op: O, now: Option<Ts>) -> Result<O::Out> {
        match self {
            Target::Local(svc) => {
                let _span = tracing::info_span!("node", id = %svc.hall().node().id).entered();
                Ok(svc.run(op, &Caller::Local, now.unwrap_or_else(crate::cli::clock))?)
            }
            Target::Remote { agent, api } => remote(agent, api, op, now),
        }
    }
}

fn remote<O: Op>(agent: &ureq::Agent, api: &ApiFile, op: O, now: Option<Ts>) -> Result<O::Out> {
    let url = format!("{}{PREFIX}{}", api.url, O::PATH);
    let unreachable = |e: ureq::Error| {
        anyhow::anyhow!(
            "the running node (pid {}) does not answer at {}: {e}; if it was stopped, try again",
            api.pid,
            api.url
        )
    };
    let auth = format!("Bearer {}", api.token);
    let when = now.map(|t| t.to_string());
    let mut resp = if O::WRITE {
        let body = serde_json::to_vec(&op)?;
        let mut req = agent
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json");
        if let Some(t) = &when {
            req = req.header(hallsync_web::auth::NOW_HEADER, t);
        }
        req.send(&body[..]).map_err(unreachable)?
    } else {
        let query = serde_urlencoded::to_string(&op)?;
        let mut req = agent
            .get(&format!("{url}?{query}"))
            .header("authorization", &auth);
        if let Some(t) = &when {
            req = req.header(hallsync_web::auth::NOW_HEADER, t);
        }
        req.call().map_err(unreachable)?
    };
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(unreachable)?;
    if status == 200 {
        return serde_json::from_slice(&body).with_context(|| {
            format!("the node's answer to {} is not what was asked for", O::PATH)
        });
    }
    let err: ApiError = serde_json::from_slice(&body).unwrap_or_else(|_| {
        ApiError::new(
            status,
            "internal",
            format!(
                "the node answered {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ),
        )
    });
    Err(err.into())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn a_killed_process_not_yet_reaped_is_not_a_running_node() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(super::alive(child.id()));
        child.kill().unwrap();
        // Not waited for: it lingers in /proc as a zombie.
        let deadline = Instant::now() + Duration::from_secs(5);
        while super::alive(child.id()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(std::path::Path::new(&format!("/proc/{}", child.id())).exists());
        assert!(!super::alive(child.id()));
        child.wait().unwrap();
        assert!(!super::alive(child.id()));
    }
}
