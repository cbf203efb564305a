//! A running node's HTTP side: the JSON API (`/api/v1/…`) the command line
//! and scripts use, and the web console window staff work in. Served by
//! `hallsync run` on the node's own runtime, on the loopback address unless
//! the bundle says otherwise (then only over HTTPS, and only to operators
//! who log in).
//!
//! The node publishes where it listens and the administrator's token in
//! `api.json` in its data directory, readable by the directory's owner only:
//! that is how the command line finds the running node and is let in. Over
//! HTTPS it also publishes the federation CA certificate the command line
//! checks the console's certificate against.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod auth;
pub mod console;
pub mod metrics;
mod serve;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use hallsync_api::Service;
use hallsync_model::Ts;
use hallsync_net::tls::ConsoleTls;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::auth::{random_token, Auth};

/// The file a running node publishes its address and token in.
pub const API_FILE: &str = "api.json";

/// What `api.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFile {
    /// The API's base URL, e.g. `http://127.0.0.1:7480`, or over HTTPS
    /// the address this PC reaches the console at, which its certificate
    /// names (`https://192.168.1.20:7480`, `https://127.0.0.1:7480`).
    pub url: String,
    /// The administrator's token (`Authorization: Bearer …`).
    pub token: String,
    /// The process serving it.
    pub pid: u32,
    /// Over HTTPS: the federation CA certificate (PEM), the only root a
    /// client trusts the console's certificate by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// Why the web side could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A non-loopback address without HTTPS.
    #[error("the console would listen on {0}, beyond this machine, without HTTPS: set `console` in hallsync.toml to 127.0.0.1:<port>, or serve it over HTTPS with a certificate from the federation CA (`hallsync node add --console-host`, or `hallsync node console` for a node that exists); operators must then log in")]
    NeedsTls(SocketAddr),
    /// The address is taken or not ours.
    #[error("cannot listen on {addr} for the console and API: {error}; set another `console` address in hallsync.toml")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
    /// `api.json` could not be written.
    #[error("{path}: {error}")]
    ApiFile {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
}

/// What every request handler shares.
pub struct App {
    /// The node's operations.
    pub svc: Service,
    /// Who may ask.
    pub auth: Auth,
    /// The node's clock.
    pub clock: Box<dyn Fn() -> Ts + Send + Sync>,
    /// The store's directory (its size is a metric).
    pub store_dir: PathBuf,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("svc", &self.svc).finish()
    }
}

/// The whole HTTP side as a router (for tests and for serving).
pub fn router(app: Arc<App>) -> Router {
    api::routes()
        .merge(console::routes())
        .route("/metrics", axum::routing::get(metrics::handler))
        .with_state(app)
}

/// The web side of a running node.
#[derive(Debug)]
pub struct WebHandle {
    addr: SocketAddr,
    url: String,
    api_file: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl WebHandle {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where this PC reaches it (`http://…` or `https://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits for the server to stop (after the shutdown signal), and takes
    /// `api.json` away.
    pub async fn stopped(self) {
        let _ = self.task.await;
        let _ = std::fs::remove_file(&self.api_file);
    }
}

/// Writes `api.json` readable by its owner only, atomically.
fn publish(dir: &Path, file: &ApiFile) -> Result<PathBuf, WebError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(API_FILE);
    let tmp = dir.join(format!("{API_FILE}.tmp"));
    let err = |error| WebError::ApiFile {
        path: path.clone(),
        error,
    };
    let _ = std::fs::remove_file(&tmp);
    let text = serde_json::to_vec_pretty(file).map_err(|e| err(std::io::Error::other(e)))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(err)?;
    Ok(path)
}

/// Starts serving the API for `svc` on `listen`, publishing `api.json` in
/// `data_dir`; stops when `shutdown` turns true. A `listen` address beyond
/// loopback is served only over HTTPS (`tls`, which the caller has checked
/// against the federation CA), and is refused without it; a loopback one
/// over plain HTTP.
pub async fn start(
    svc: Service,
    listen: SocketAddr,
    data_dir: &Path,
    clock: Box<dyn Fn() -> Ts + Send + Sync>,
    tls: Option<ConsoleTls>,
    shutdown: watch::Receiver<bool>,
) -> Result<WebHandle, WebError> {
    let tls = if listen.ip().is_loopback() {
        None
    } else {
        Some(tls.ok_or(WebError::NeedsTls(listen))?)
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| WebError::Listen {
            addr: listen,
            error,
        })?;
    let addr = listener.local_addr().map_err(|error| WebError::Listen {
        addr: listen,
        error,
    })?;
    let url = match &tls {
        Some(tls) => format!("https://{}", SocketAddr::new(tls.local_host(), addr.port())),
        None => format!("http://{addr}"),
    };
    let token = random_token();
    let auth = Auth::new(svc.hall().node().id.as_str(), token.clone(), tls.is_some());
    let api_file = publish(
        data_dir,
        &ApiFile {
            url: url.clone(),
            token,
            pid: std::process::id(),
            ca: tls.as_ref().map(|t| t.ca_pem().to_string()),
        },
    )?;
    let app = Arc::new(App {
        svc,
        auth,
        clock,
        store_dir: data_dir.join(hallsync_hall::STORE_DIR),
    });
    let task = tokio::spawn(serve::serve(listener, tls, router(app), shutdown));
    tracing::info!(%addr, "API and console listening ({url}/)");
    Ok(WebHandle {
        addr,
        url,
        api_file,
        task,
    })
}
