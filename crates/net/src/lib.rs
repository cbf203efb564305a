//! hallsync's transport: mutual-TLS QUIC links between a node and its
//! parent and children, each carrying one replication session.
//!
//! - A node listens (when its bundle gives an address) and dials its
//!   parent; the lower level always dials out, so a parent never needs to
//!   reach a child behind NAT.
//! - The peer's identity, level and region come from its certificate,
//!   checked against the federation CA and CRL; a child must lie below the
//!   node it dials, and the server must be the configured parent.
//! - A peer counts as connected only once its application hello has
//!   arrived: with TLS 1.3 a client learns that the server refused its
//!   certificate only when it first uses the connection.
//! - Dialing retries with exponential backoff and jitter. After three failed
//!   attempts on the parent, the node syncs for a while with the nearest hub
//!   above it that the registry gives an address for, then tries the parent
//!   again.
//! - Stopping is prompt in every link state: every wait of a link (name
//!   lookup, handshake, stream, backoff, fallback, session) gives way to the
//!   stop signal; a session finishes the commit in hand and says goodbye, and
//!   the waits for a peer to hear it are short, since it may be dead.
//!
//! Only this crate names quinn and rustls.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod registry;
pub mod relay;
pub mod status;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hallsync_hall::{Hall, HallReplica};
use hallsync_model::{NodeId, Ts};
use hallsync_pki::bundle::{Bundle, ParentConfig};
use hallsync_pki::Identity;
use hallsync_sync::{msg, Endpoint, Replica, Session, SessionError};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tracing::{info, info_span, warn, Instrument};

use crate::status::{Board, Role};
use crate::tls::Credentials;

/// Transport errors.
#[derive(Debug, Error)]
pub enum NetError {
    /// The bundle or configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Overrides for tests, benchmarks and rehearsals.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Listen here instead of the bundle's address (e.g. port 0).
    pub listen: Option<SocketAddr>,
    /// Dial the parent here instead of the bundle's address (e.g. through a
    /// relay).
    pub parent_addr: Option<SocketAddr>,
    /// Where to write `status.json` (none: not written).
    pub status_file: Option<PathBuf>,
    /// Session tuning.
    pub session: hallsync_sync::Config,
    /// A fixed time to run at instead of the system clock (`hallsync run
    /// --now`; tests of a node whose clock is off).
    pub now: Option<Ts>,
    /// Only dial, never listen, whatever the bundle says (`hallsync
    /// restore --bundle`: children wait until the hub is whole again).
    pub dial_only: bool,
}

/// Shared by every task of a running node.
struct Ctx {
    hall: Arc<Hall>,
    me: Endpoint,
    bundle: Bundle,
    provider: Arc<CryptoProvider>,
    creds: Mutex<Arc<Credentials>>,
    board: Arc<Board>,
    options: Options,
    started: Instant,
    shutdown: watch::Receiver<bool>,
    /// The store's durable feed head, as its listener last told it: a
    /// session thread with room to offer waits for it to pass the head it
    /// offered up to.
    feed: watch::Receiver<u64>,
    /// Live links: peer id -> (certificate serial, connection).
    links: Mutex<HashMap<NodeId, (String, quinn::Connection)>>,
}

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    endpoint: quinn::Endpoint,
    board: Arc<Board>,
    local_addr: Option<SocketAddr>,
}

impl NodeHandle {
    /// The address the node listens on, if it listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The live status board.
    pub fn board(&self) -> &Arc<Board> {
        &self.board
    }

    /// Stops: says goodbye on every link, waits for sessions to finish
    /// their current commit, and closes the endpoint, within about a second
    /// whatever the links are doing (dialling, handshaking, backing off,
    /// syncing, or talking to a dead peer). Acknowledged writes are already
    /// durable; nothing in flight is acknowledged. When this returns, the
    /// node's tasks hold no reference to the hall any more, unless a link
    /// missed the deadline (a warning says so).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + STOP_DEADLINE;
        for mut t in self.tasks {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                warn!(
                    "a link did not stop within {:.1} s; leaving it behind (what it acknowledged is on disk)",
                    STOP_DEADLINE.as_secs_f64()
                );
                t.abort();
            }
        }
        self.endpoint.close(0u32.into(), STOPPING);
        let _ = tokio::time::timeout(CLOSE_SENT, self.endpoint.wait_idle()).await;
        self.board.write_file();
    }
}

/// The reason a stopping node gives its peers.
const STOPPING: &[u8] = b"node shutting down";

/// How long a stopping node waits for a peer to take its goodbye: a live
/// peer on any usable link answers well within it, a dead one never does.
const GOODBYE: Duration = Duration::from_millis(400);

/// How long a stopping endpoint lets its connections send their close:
/// quinn would go on for three probe timeouts to answer stray packets, up to
/// seconds for a handshake that never got an answer.
const CLOSE_SENT: Duration = Duration::from_millis(100);

/// How long a stop waits for the node's tasks, as a last resort: every wait
/// in them gives way to the stop signal well within it.
const STOP_DEADLINE: Duration = Duration::from_millis(1_200);

fn transport(bundle: &Bundle) -> Result<Arc<quinn::TransportConfig>, NetError> {
    let mut t = quinn::TransportConfig::default();
    let idle = Duration::from_secs(bundle.config.idle_timeout_secs);
    t.max_idle_timeout(Some(
        idle.try_into()
            .map_err(|e| NetError::Config(format!("idle timeout: {e}")))?,
    ));
    t.keep_alive_interval(Some(Duration::from_secs(bundle.config.keep_alive_secs)));
    t.max_concurrent_bidi_streams(1u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.stream_receive_window((8u32 << 20).into());
    t.receive_window((16u32 << 20).into());
    t.send_window(16 << 20);
    Ok(Arc::new(t))
}

fn server_config(
    ctx_creds: &Credentials,
    provider: &Arc<CryptoProvider>,
    bundle: &Bundle,
) -> Result<quinn::ServerConfig, NetError> {
    let crypto = QuicServerConfig::try_from(ctx_creds.server(provider)?)
        .map_err(|e| NetError::Config(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(transport(bundle)?);
    Ok(cfg)
}

fn client_config(
    creds: &Credentials,
    provider: &Arc<CryptoProvider>,
    bundle: &Bundle,
) -> Result<quinn::ClientConfig, NetError> {
    let crypto = QuicClientConfig::try_from(creds.client(provider)?)
        .map_err(|e| NetError::Config(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(transport(bundle)?);
    Ok(cfg)
}

/// Starts a node: listens and dials as its bundle says. Must be called
/// inside a tokio runtime.
pub async fn start(
    hall: Arc<Hall>,
    bundle: Bundle,
    options: Options,
) -> Result<NodeHandle, NetError> {
    let cfg = &bundle.config;
    let node = hall.node();
    if node.id != cfg.id || node.region != cfg.region || node.level != cfg.level {
        return Err(NetError::Config(format!(
            "the data directory belongs to {} ({}), but the bundle is for {} ({}): use the bundle made for this hall",
            node.id, node.region, cfg.id, cfg.region
        )));
    }
    registry::install_check(&hall, &bundle).map_err(NetError::Config)?;
    if hall.restoring() && cfg.parent.is_none() {
        // Nothing above to catch up with: what the backup held is all.
        hall.restore_caught_up(None)
            .map_err(|e| NetError::Config(format!("noting the restore: {e}")))?;
    }
    // Before the TLS settings are made: a newer revocation list already
    // held (from the registry) replaces the bundle's first.
    let refreshed = {
        let (hall, bundle) = (hall.clone(), bundle.clone());
        tokio::task::spawn_blocking(move || registry::refresh(&hall, &bundle))
            .await
            .map_err(|e| NetError::Config(format!("registry: {e}")))?
            .map_err(NetError::Config)?
    };
    if let Some((number, from)) = &refreshed.installed {
        info!(node = %cfg.id, number, from = %from, "installed a newer revocation list found in the registry");
    }
    let provider = tls::provider();
    let creds = Arc::new(Credentials::load(&bundle)?);
    let listen = match options.listen {
        _ if options.dial_only => None,
        Some(a) => Some(a),
        None => match &cfg.listen {
            Some(s) => Some(
                s.parse()
                    .map_err(|e| NetError::Config(format!("listen address {s:?}: {e}")))?,
            ),
            None => None,
        },
    };
    let server = match listen {
        Some(_) => Some(server_config(&creds, &provider, &bundle)?),
        None => None,
    };
    let endpoint = open_endpoint(
        listen.unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
        server,
        creds.restart_keys(),
    )?;
    let local_addr = listen.and_then(|_| endpoint.local_addr().ok());
    let board = Arc::new(Board::new(
        hall.clone(),
        options.status_file.clone(),
        local_addr.map(|a| a.to_string()),
    ));
    board.set_registry(&refreshed);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let feed = durable_feed(&hall);
    let ctx = Arc::new(Ctx {
        me: Endpoint {
            id: cfg.id.clone(),
            region: cfg.region.clone(),
        },
        hall,
        provider,
        creds: Mutex::new(creds),
        board: board.clone(),
        options,
        started: Instant::now(),
        shutdown: shutdown_rx,
        feed,
        links: Mutex::new(HashMap::new()),
        bundle,
    });
    let span = info_span!("node", id = %ctx.me.id);
    let mut tasks = Vec::new();
    if listen.is_some() {
        info!(parent: &span, addr = ?local_addr, "listening for child nodes");
        tasks.push(tokio::spawn(
            accept_loop(ctx.clone(), endpoint.clone()).instrument(span.clone()),
        ));
    }
    if let Some(parent) = ctx.bundle.config.parent.clone() {
        tasks.push(tokio::spawn(
            dial_loop(ctx.clone(), endpoint.clone(), parent).instrument(span.clone()),
        ));
    }
    tasks.push(tokio::spawn(
        housekeeping(ctx.clone(), endpoint.clone()).instrument(span),
    ));
    Ok(NodeHandle {
        shutdown: shutdown_tx,
        tasks,
        endpoint,
        board,
        local_addr,
    })
}

/// Socket buffers: large enough that a burst of a window of batches is not
/// dropped by the kernel before quinn reads it (the kernel caps them at
/// `net.core.rmem_max` / `wmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

fn open_endpoint(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
    (reset_key, cid_key): (ring::hmac::Key, u64),
) -> Result<quinn::Endpoint, NetError> {
    let bind = |source| NetError::Bind { addr, source };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(bind)?;
    // Best effort: a smaller buffer only means more retransmissions.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into()).map_err(bind)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| NetError::Config("no async runtime for QUIC".into()))?;
    let mut config = quinn::EndpointConfig::new(Arc::new(reset_key));
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    quinn::Endpoint::new(config, server, socket.into(), runtime).map_err(bind)
}

/// The store's durable feed head, kept current from whatever thread
/// commits (a hall operation, another link's session); the store's listener
/// leaves once the node's tasks have all gone.
fn durable_feed(hall: &Hall) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0);
    hall.store().on_durable(move |seq| {
        tx.send_if_modified(|told| {
            let grew = seq > *told;
            if grew {
                *told = seq;
            }
            grew
        });
        !tx.is_closed()
    });
    rx
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// `fut`'s output, or `None` if the node starts stopping first (`fut` is
/// then dropped).
async fn unless_stopped<F: std::future::IntoFuture>(ctx: &Ctx, fut: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = stopped(ctx.shutdown.clone()) => None,
        out = fut.into_future() => Some(out),
    }
}

async fn accept_loop(ctx: Arc<Ctx>, endpoint: quinn::Endpoint) {
    let mut children = tokio::task::JoinSet::new();
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => i,
            Some(_) = children.join_next() => continue,
            () = stopped(ctx.shutdown.clone()) => break,
        };
        let Some(incoming) = incoming else { break };
        let remote = incoming.remote_address();
        let ctx = ctx.clone();
        children.spawn(
            async move {
                if let Err(e) = serve(ctx, incoming).await {
                    warn!(%remote, "refused a connection: {e}");
                }
            }
            .instrument(tracing::Span::current()),
        );
    }
    // Each child's session finishes its commit and says goodbye.
    while children.join_next().await.is_some() {}
}

fn peer_identity(conn: &quinn::Connection) -> Result<(Identity, String), String> {
    let certs = conn
        .peer_identity()
        .and_then(|a| {
            a.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .ok_or("no peer certificate")?;
    let leaf = certs.first().ok_or("empty certificate chain")?;
    let id = hallsync_pki::identity_of(leaf).map_err(|e| e.to_string())?;
    let serial = hallsync_pki::serial_of(leaf).map_err(|e| e.to_string())?;
    Ok((id, serial))
}

async fn serve(ctx: Arc<Ctx>, incoming: quinn::Incoming) -> Result<(), String> {
    let Some(handshake) = unless_stopped(&ctx, incoming).await else {
        return Ok(());
    };
    let conn = handshake.map_err(|e| format!("TLS handshake failed: {e}"))?;
    let (peer, serial) = peer_identity(&conn)?;
    if !ctx.me.region.is_ancestor_of(&peer.region) {
        conn.close(2u32.into(), b"not a node below this one");
        return Err(format!(
            "{} ({}) is not below this node ({}); it may not connect here",
            peer.id, peer.region, ctx.me.region
        ));
    }
    let span = info_span!("link", peer = %peer.id, role = "child");
    async move {
        let streams = unless_stopped(
            &ctx,
            tokio::time::timeout(Duration::from_secs(30), conn.accept_bi()),
        )
        .await;
        let (send, recv) = match streams {
            None => {
                conn.close(0u32.into(), STOPPING);
                return Ok(());
            }
            Some(Ok(Ok(s))) => s,
            Some(Ok(Err(e))) => return Err(format!("{} opened no stream: {e}", peer.id)),
            Some(Err(_)) => {
                conn.close(3u32.into(), b"no stream");
                return Err(format!("{} opened no stream within 30 s", peer.id));
            }
        };
        info!(addr = %conn.remote_address(), "child connected");
        let outcome = run_link(&ctx, conn, send, recv, peer, serial, Role::Child).await;
        if let Err(e) = outcome {
            warn!("session ended: {e}");
        }
        Ok(())
    }
    .instrument(span)
    .await
}

/// Failed attempts on the parent before a hub further up is tried.
const FALLBACK_AFTER: u32 = 3;

/// How long a session must last for the next attempt to come at once.
const SETTLED: Duration = Duration::from_secs(10);

/// The longest wait after sessions the parent keeps ending as soon as
/// they start (a restore refused while the old PC is linked, a peer that
/// closes on every hello): they are tried ever more slowly, so neither
/// node logs one every second, yet soon after the cause is gone.
const SHORT_SESSION_BACKOFF: Duration = Duration::from_secs(30);

/// Longest wait for a dialled node to answer a handshake (the idle timeout,
/// if shorter): a parent that is down is reported, and the next attempt
/// scheduled, within seconds rather than after a whole idle timeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn dial_loop(ctx: Arc<Ctx>, endpoint: quinn::Endpoint, parent: ParentConfig) {
    let max = Duration::from_secs(ctx.bundle.config.max_backoff_secs);
    let mut backoff = Duration::from_secs(1);
    let mut failures = 0u32;
    let span = info_span!("link", peer = %parent.id, role = "parent");
    ctx.board.expect(&parent.id, Role::Parent, &parent.addr);
    loop {
        if *ctx.shutdown.borrow() {
            return;
        }
        let started = tokio::time::Instant::now();
        let outcome = dial_once(&ctx, &endpoint, &parent, None)
            .instrument(span.clone())
            .await;
        let longest = match outcome {
            Ok(true) if started.elapsed() >= SETTLED => {
                backoff = Duration::from_secs(1);
                failures = 0;
                max
            }
            Ok(true) => {
                failures = 0;
                max.min(SHORT_SESSION_BACKOFF)
            }
            Ok(false) => {
                failures += 1;
                max
            }
            Err(e) => {
                warn!(parent: &span, "cannot sync with parent {} at {}: {e}", parent.id, parent.addr);
                ctx.board.error(&parent.id, &e);
                failures += 1;
                max
            }
        };
        backoff = backoff.min(longest);
        if failures >= FALLBACK_AFTER && !*ctx.shutdown.borrow() {
            info!(parent: &span, failures, "the parent is unreachable; trying the hubs above it");
            if sync_with_ancestor(&ctx, &endpoint, &parent, max).await {
                backoff = Duration::from_secs(1);
            }
        }
        if *ctx.shutdown.borrow() {
            return;
        }
        // Full jitter: anywhere in [backoff/2, backoff].
        let wait = backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
        info!(parent: &span, "next attempt in {:.1} s", wait.as_secs_f64());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped(ctx.shutdown.clone()) => return,
        }
        backoff = (backoff * 2).min(longest);
    }
}

/// Syncs with the nearest hub above the parent that answers (from the
/// registry), for at most `lease`, so the parent is tried again after it.
/// Records go up through it and reach the parent later from above; merges
/// are idempotent, so nothing arrives twice. `true` if a session ran.
async fn sync_with_ancestor(
    ctx: &Arc<Ctx>,
    endpoint: &quinn::Endpoint,
    parent: &ParentConfig,
    lease: Duration,
) -> bool {
    let lookup = {
        let (ctx, parent) = (ctx.clone(), parent.id.clone());
        tokio::task::spawn_blocking(move || registry::fallbacks(&ctx.hall, &parent))
    };
    let candidates = match unless_stopped(ctx, lookup).await {
        None => return false,
        Some(Ok(Ok(c))) => c,
        Some(Ok(Err(e))) => {
            warn!("cannot read the registry for a hub to fall back on: {e}");
            return false;
        }
        Some(Err(e)) => {
            warn!("the registry lookup stopped: {e}");
            return false;
        }
    };
    if candidates.is_empty() {
        info!("no hub above the parent is known with an address; waiting for the parent");
    }
    for hub in candidates {
        if *ctx.shutdown.borrow() {
            return false;
        }
        let span = info_span!("link", peer = %hub.id, role = "ancestor");
        ctx.board.expect(&hub.id, Role::Ancestor, &hub.addr);
        info!(parent: &span, addr = %hub.addr, lease_secs = lease.as_secs(), "syncing with a hub above the unreachable parent");
        match dial_once(ctx, endpoint, &hub, Some(lease))
            .instrument(span.clone())
            .await
        {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => {
                warn!(parent: &span, "cannot sync with {} at {} either: {e}", hub.id, hub.addr);
                ctx.board.error(&hub.id, &e);
            }
        }
    }
    false
}

/// One connection to the parent, or (with a lease) to a hub above it;
/// `Ok(true)` if the session got going, `Ok(false)` also if the node
/// started stopping first.
async fn dial_once(
    ctx: &Arc<Ctx>,
    endpoint: &quinn::Endpoint,
    target: &ParentConfig,
    lease: Option<Duration>,
) -> Result<bool, String> {
    let addr = match ctx.options.parent_addr.filter(|_| lease.is_none()) {
        Some(a) => a,
        None => {
            let Some(found) = unless_stopped(ctx, tokio::net::lookup_host(&target.addr)).await
            else {
                return Ok(false);
            };
            found
                .map_err(|e| format!("cannot resolve {}: {e}", target.addr))?
                .next()
                .ok_or_else(|| format!("{} resolves to no address", target.addr))?
        }
    };
    let creds = ctx
        .creds
        .lock()
        .map_err(|_| "credentials lock poisoned".to_string())?
        .clone();
    let cfg = client_config(&creds, &ctx.provider, &ctx.bundle).map_err(|e| e.to_string())?;
    let connecting = endpoint
        .connect_with(cfg, addr, &hallsync_pki::dns_name(&target.id))
        .map_err(|e| e.to_string())?;
    // Dropping the handshake when stopping abandons the connection.
    let wait = Duration::from_secs(ctx.bundle.config.idle_timeout_secs).min(HANDSHAKE_TIMEOUT);
    let Some(handshake) = unless_stopped(ctx, tokio::time::timeout(wait, connecting)).await else {
        return Ok(false);
    };
    let conn = handshake
        .map_err(|_| {
            format!(
                "no answer from {addr} within {} s: is {} running there, and does the network let UDP through to that port?",
                wait.as_secs(),
                target.id
            )
        })?
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    let (peer, serial) = peer_identity(&conn)?;
    if peer.id != target.id {
        conn.close(2u32.into(), b"unexpected node");
        return Err(format!("{addr} is {}, not {}", peer.id, target.id));
    }
    if lease.is_some() && !peer.region.is_ancestor_of(&ctx.me.region) {
        conn.close(2u32.into(), b"not above this node");
        return Err(format!(
            "{} ({}) is not above this node ({}); its certificate disagrees with the registry",
            peer.id, peer.region, ctx.me.region
        ));
    }
    let Some(stream) = unless_stopped(ctx, conn.open_bi()).await else {
        conn.close(0u32.into(), STOPPING);
        return Ok(false);
    };
    let (send, recv) = stream.map_err(|e| e.to_string())?;
    let Some(lease) = lease else {
        info!(%addr, "connected to parent");
        return run_link(ctx, conn, send, recv, peer, serial, Role::Parent).await;
    };
    info!(%addr, "connected to a hub above the parent");
    let expiry = {
        let conn = conn.clone();
        tokio::spawn(
            async move {
                tokio::time::sleep(lease).await;
                info!("lease over: closing the link to try the parent again");
                conn.close(6u32.into(), b"back to the parent");
            }
            .in_current_span(),
        )
    };
    let outcome = run_link(ctx, conn, send, recv, peer, serial, Role::Ancestor).await;
    expiry.abort();
    outcome
}

/// Runs one session over an open stream until it ends. `Ok(true)` if the
/// peer's hello arrived.
async fn run_link(
    ctx: &Arc<Ctx>,
    conn: quinn::Connection,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: Identity,
    serial: String,
    role: Role,
) -> Result<bool, String> {
    let (in_tx, in_rx) = mpsc::channel::<Result<msg::Msg, String>>(64);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    // The peer's link until now, if any: closed once this session's hello
    // shows it is not a node being rebuilt while its old PC still runs
    // (which is refused, and the old link kept).
    let old = match ctx.links.lock() {
        Ok(mut links) => links.insert(peer.id.clone(), (serial, conn.clone())),
        Err(_) => None,
    };
    let reader = tokio::spawn(async move {
        loop {
            let frame = read_frame(&mut recv).await;
            let item = frame.and_then(|f| msg::decode(&f).map_err(|e| e.to_string()));
            let fatal = item.is_err();
            if in_tx.send(item).await.is_err() || fatal {
                return;
            }
        }
    });
    let mut writer = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            let len = (frame.len() as u32).to_be_bytes();
            if send.write_all(&len).await.is_err() || send.write_all(&frame).await.is_err() {
                return;
            }
        }
        let _ = send.finish();
        let _ = send.stopped().await;
    });
    let driver = {
        let ctx = ctx.clone();
        let conn = conn.clone();
        let peer = peer.clone();
        let old = old.as_ref().map(|(_, c)| c.clone());
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            drive(&ctx, &conn, peer, role, old, in_rx, out_tx)
        })
    };
    let result = driver
        .await
        .unwrap_or_else(|e| Err((false, format!("session task failed: {e}"))));
    // Nothing reads the peer's messages any more; dropping the stream tells
    // the peer so, which ends its wait for its own goodbye to be taken.
    reader.abort();
    // The writer sends what the session left (its goodbye last) and waits
    // for the peer to take it: for 5 s, cut to GOODBYE once the node is
    // stopping, as the peer may be dead.
    let stopping = async {
        stopped(ctx.shutdown.clone()).await;
        tokio::time::sleep(GOODBYE).await;
    };
    tokio::select! {
        _ = tokio::time::timeout(Duration::from_secs(5), &mut writer) => {}
        () = stopping => {}
    }
    writer.abort();
    if let Ok(mut links) = ctx.links.lock() {
        if links
            .get(&peer.id)
            .is_some_and(|(_, c)| c.stable_id() == conn.stable_id())
        {
            match old.filter(|(_, c)| c.close_reason().is_none()) {
                // This session was refused and the old link lives on.
                Some(old) => links.insert(peer.id.clone(), old),
                None => links.remove(&peer.id),
            };
        }
    }
    ctx.board.disconnected(&peer.id, &conn);
    match result {
        Ok(established) => {
            conn.close(0u32.into(), STOPPING);
            Ok(established)
        }
        Err((established, reason)) => {
            let r: Vec<u8> = reason.bytes().take(200).collect();
            conn.close(1u32.into(), &r);
            ctx.board.error(&peer.id, &reason);
            if established {
                warn!("session ended: {reason}");
                Ok(true)
            } else {
                Err(reason)
            }
        }
    }
}

async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.map_err(|e| match e {
        quinn::ReadExactError::FinishedEarly(0) => "the peer closed the stream".to_string(),
        other => format!("link lost: {other}"),
    })?;
    let len = u32::from_be_bytes(len) as usize;
    if len > msg::MAX_FRAME {
        return Err(format!(
            "the peer announced a frame of {len} bytes; the limit is {}",
            msg::MAX_FRAME
        ));
    }
    let mut buf = vec![0u8; len];
    recv.read_exact(&mut buf)
        .await
        .map_err(|e| format!("truncated frame ({len} bytes announced): {e}"))?;
    Ok(buf)
}

/// A skew in words: `10 min 3 s`.
fn skew_words(ms: i64) -> String {
    let secs = ms.unsigned_abs() / 1000;
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

fn now_ts() -> Ts {
    Ts(SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64))
}

/// Whether a peer's old link is still heard from. A PC that died leaves
/// its link open here until the idle timeout, but sends nothing; one that
/// lives acknowledges a datagram within its round trip (it drops it
/// unread), or at least sends its keep-alive within a period and a half.
fn still_heard(ctx: &Ctx, old: &quinn::Connection) -> bool {
    let heard = || old.stats().udp_rx.datagrams;
    let before = heard();
    let wait = match old.send_datagram(b"?".to_vec().into()) {
        Ok(()) => Duration::from_secs(3),
        Err(_) => Duration::from_secs(ctx.bundle.config.keep_alive_secs) * 3 / 2,
    };
    let until = Instant::now() + wait;
    while Instant::now() < until && !*ctx.shutdown.borrow() {
        if old.close_reason().is_some() {
            return false;
        }
        if heard() > before {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// What ended a session thread's wait.
enum Woken {
    /// A message from the peer; `None` when the reader has gone.
    Msg(Option<Result<msg::Msg, String>>),
    /// The session is due, or the feed grew while it could offer.
    Poll,
    /// The node is stopping.
    Stop,
}

/// Waits for a message, for the durable feed to pass `offer_above` (when
/// given: the session has room to offer and offered up to it), or for
/// `due` (on the clock of `ctx.started`); the stop signal comes first.
async fn wait(
    ctx: &Ctx,
    in_rx: &mut mpsc::Receiver<Result<msg::Msg, String>>,
    feed: &mut watch::Receiver<u64>,
    offer_above: Option<u64>,
    due: Option<Duration>,
) -> Woken {
    let grown = async {
        if let Some(head) = offer_above {
            if feed.wait_for(|&told| told > head).await.is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await
    };
    let timer = async {
        match due.and_then(|d| ctx.started.checked_add(d)) {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        biased;
        () = stopped(ctx.shutdown.clone()) => Woken::Stop,
        m = in_rx.recv() => Woken::Msg(m),
        () = grown => Woken::Poll,
        () = timer => Woken::Poll,
    }
}

/// The session loop, on a blocking thread (the store syncs to disk). It
/// sleeps until a message arrives, the session is due
/// ([`Session::poll_timeout`]) or the durable feed grows while the session
/// can offer ([`Session::can_offer`]): a write is offered the moment it is
/// durable, and an idle link costs nothing. Ends with `Ok` (whether the
/// session got established) only when the node stops, at once but for the
/// commit in hand.
fn drive(
    ctx: &Ctx,
    conn: &quinn::Connection,
    peer: Identity,
    role: Role,
    mut old: Option<quinn::Connection>,
    mut in_rx: mpsc::Receiver<Result<msg::Msg, String>>,
    out_tx: mpsc::UnboundedSender<Vec<u8>>,
) -> Result<bool, (bool, String)> {
    let rt = tokio::runtime::Handle::current();
    let wall = || ctx.options.now.unwrap_or_else(now_ts);
    let mut replica = HallReplica {
        hall: &ctx.hall,
        now: wall(),
    };
    let (mut skew_told, mut clock_noted) = (false, false);
    let peer_end = Endpoint {
        id: peer.id.clone(),
        region: peer.region.clone(),
    };
    let now = || ctx.started.elapsed();
    let mut session = Session::new(
        ctx.me.clone(),
        peer_end,
        ctx.options.session.clone(),
        &mut replica,
        now(),
    )
    .map_err(|e| (false, e.to_string()))?;
    ctx.board.connecting(&peer, role, conn);
    let mut feed = ctx.feed.clone();
    let mut was_established = false;
    let (mut too_large, mut retries) = (0, 0);
    let mut batch: Vec<Result<msg::Msg, String>> = Vec::new();
    loop {
        let fail = |s: &Session, e: SessionError| (s.established(), e.to_string());
        if *ctx.shutdown.borrow() {
            session.close("node shutting down");
            flush(&mut session, &out_tx).map_err(|e| (session.established(), e))?;
            return Ok(session.established());
        }
        replica.now = wall();
        for m in std::mem::take(&mut batch) {
            // The messages left are not acknowledged: the peer sends them
            // again next time.
            if *ctx.shutdown.borrow() {
                break;
            }
            let m = m.map_err(|e| (session.established(), e))?;
            if let Err(e) = session.handle(&mut replica, m, now()) {
                if !matches!(e, SessionError::Closed(_)) {
                    session.close(&e.to_string());
                    let _ = flush(&mut session, &out_tx);
                }
                return Err(fail(&session, e));
            }
        }
        if *ctx.shutdown.borrow() {
            // Straight to the goodbye, without offering anything more.
            continue;
        }
        if let Some(old) = old.take_if(|_| session.established()) {
            if session.peer_restoring() && still_heard(ctx, &old) {
                let reason = format!(
                    "{} is being restored on another PC while the PC it replaces is still linked here: turn that one off (or revoke its certificate); the restore carries on once it is gone",
                    peer.id
                );
                session.close(&reason);
                let _ = flush(&mut session, &out_tx);
                warn!("{reason}");
                return Err((session.established(), reason));
            }
            old.close(4u32.into(), b"replaced by a newer connection");
        }
        // Read before the poll offers: a commit after this wakes the wait.
        let head = replica.feed_head();
        if let Err(e) = session.poll(&mut replica, now()) {
            return Err(fail(&session, e));
        }
        flush(&mut session, &out_tx).map_err(|e| (session.established(), e))?;
        let stats = session.stats();
        if stats.too_large > too_large {
            warn!(
                "{} documents over {} bytes were not sent; export them with `hallsync doc export` and carry them",
                stats.too_large - too_large,
                msg::MAX_DOC_BYTES
            );
            too_large = stats.too_large;
        }
        if stats.retries > retries {
            warn!("no progress for a while: offering again from the last acknowledged entry");
            retries = stats.retries;
        }
        if session.established() && !was_established {
            was_established = true;
            info!(
                resume_from = session.acked(),
                "session established (hello exchanged)"
            );
        }
        ctx.board.update(&session, &replica, conn);
        if role == Role::Parent
            && replica.restoring()
            && session.established()
            && session.backlog_in() == 0
        {
            restore_caught_up(ctx, &peer.id);
        }
        let skew = session.clock_skew_ms().filter(|_| !clock_noted);
        if let (Some(ms), Role::Parent | Role::Ancestor) = (skew, role) {
            // The hubs above keep the time: this node's clock is the one
            // judged, once a session (once its registry entry exists).
            match ctx.hall.note_clock(-ms / 1000, wall()) {
                Ok(None) => {}
                Ok(Some(changed)) => {
                    clock_noted = true;
                    if changed {
                        info!(
                            ahead_secs = -ms / 1000,
                            "this node's clock, against {}'s, noted in its registry entry", peer.id
                        );
                    }
                }
                Err(e) => {
                    clock_noted = true;
                    warn!("could not note this node's clock in its registry entry: {e}");
                }
            }
        }
        if let Some(ms) = session
            .clock_skew_ms()
            .filter(|ms| !skew_told && ms.abs() / 1000 > status::SKEW_WARN_SECS)
        {
            skew_told = true;
            tracing::warn!(
                node = %ctx.me.id,
                peer = %peer.id,
                "{}'s clock is {} {} this node's: the times of what either records are off by as much; set the clock right (NTP) on whichever is wrong",
                peer.id,
                skew_words(ms),
                if ms > 0 { "ahead of" } else { "behind" }
            );
        }
        let offer_above = session.can_offer().then_some(head);
        let woken = rt.block_on(wait(
            ctx,
            &mut in_rx,
            &mut feed,
            offer_above,
            session.poll_timeout(),
        ));
        match woken {
            Woken::Msg(Some(m)) => {
                batch.push(m);
                while batch.len() < 64 {
                    match in_rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
            }
            Woken::Msg(None) => return Err((session.established(), "the link closed".into())),
            Woken::Poll => {}
            // Stopping, or the node that would say so is gone (its runtime
            // dropped): either way the session ends here, never spins.
            Woken::Stop => {
                session.close("node shutting down");
                let _ = flush(&mut session, &out_tx);
                return Ok(session.established());
            }
        }
    }
}

/// The rebuilt store has applied the whole of its parent's feed: notes it,
/// and publishes this node's registry entry, which records the restore.
fn restore_caught_up(ctx: &Ctx, parent: &NodeId) {
    if let Err(e) = ctx.hall.restore_caught_up(Some(parent)) {
        warn!("could not note the restore as caught up ({e}); it goes on asking {parent} for this node's own records");
        return;
    }
    info!(
        "restore: every record {parent} holds for this node is here; the node carries on as usual"
    );
    match registry::refresh(&ctx.hall, &ctx.bundle) {
        Ok(refreshed) => ctx.board.set_registry(&refreshed),
        Err(e) => warn!("could not publish this node's registry entry after the restore ({e}); it is published at the next start"),
    }
}

fn flush(session: &mut Session, out: &mpsc::UnboundedSender<Vec<u8>>) -> Result<(), String> {
    while let Some(m) = session.poll_transmit() {
        let frame = msg::encode(&m).map_err(|e| e.to_string())?;
        out.send(frame).map_err(|_| "the link closed".to_string())?;
    }
    Ok(())
}

/// Writes the status file every second (with the live links' wire
/// counters) and keeps the revocation list current: a `crl.pem` replaced by
/// an administrator, or a newer list that arrived in another node's
/// registry entry, gives the endpoint new TLS settings and closes the links
/// of newly revoked peers; either way this node's own entry then carries
/// the list onwards.
async fn housekeeping(ctx: Arc<Ctx>, endpoint: quinn::Endpoint) {
    let crl_path = ctx.bundle.file(hallsync_pki::CRL);
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut crl_seen = modified(&crl_path);
    let mut registry_seen = ctx.hall.registry_version();
    let mut set_aside_seen = None;
    loop {
        let generation = ctx.hall.store().set_aside_generation();
        if set_aside_seen != Some(generation) {
            set_aside_seen = Some(generation);
            let hall = ctx.hall.clone();
            match tokio::task::spawn_blocking(move || hall.set_aside()).await {
                Ok(Ok(notes)) => ctx.board.set_set_aside(&notes),
                Ok(Err(e)) => warn!("cannot list the records set aside in replication: {e}"),
                Err(e) => warn!("listing the records set aside stopped: {e}"),
            }
        }
        if let Ok(links) = ctx.links.lock() {
            for (id, (_, conn)) in links.iter() {
                ctx.board.wire(id, conn);
            }
        }
        ctx.board.write_file();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stopped(ctx.shutdown.clone()) => return,
        }
        let file_changed = modified(&crl_path) != crl_seen;
        let version = ctx.hall.registry_version();
        if !file_changed && version == registry_seen {
            continue;
        }
        registry_seen = version;
        let job = {
            let ctx = ctx.clone();
            tokio::task::spawn_blocking(move || registry::refresh(&ctx.hall, &ctx.bundle))
        };
        let reload = match job.await {
            Ok(Ok(r)) => {
                ctx.board.set_registry(&r);
                ctx.board.write_file();
                match &r.installed {
                    Some((number, from)) => {
                        info!(number, from = %from, "installed a newer revocation list from the registry");
                        true
                    }
                    None => file_changed,
                }
            }
            Ok(Err(e)) => {
                warn!("the revocation list cannot be brought up to date; keeping the one in force: {e}");
                false
            }
            Err(e) => {
                warn!("the revocation list check stopped: {e}");
                false
            }
        };
        crl_seen = modified(&crl_path);
        if reload {
            if let Err(e) = reload_crl(&ctx, &endpoint) {
                warn!("the revocation list changed but cannot be used; keeping the old one: {e}");
            }
        }
    }
}

fn reload_crl(ctx: &Ctx, endpoint: &quinn::Endpoint) -> Result<(), String> {
    let creds = Arc::new(Credentials::load(&ctx.bundle).map_err(|e| e.to_string())?);
    let pem = ctx
        .bundle
        .read(hallsync_pki::CRL)
        .map_err(|e| e.to_string())?;
    let revoked = hallsync_pki::revoked_serials(&pem).map_err(|e| e.to_string())?;
    if ctx.bundle.config.listen.is_some() || ctx.options.listen.is_some() {
        endpoint.set_server_config(Some(
            server_config(&creds, &ctx.provider, &ctx.bundle).map_err(|e| e.to_string())?,
        ));
    }
    if let Ok(mut c) = ctx.creds.lock() {
        *c = creds;
    }
    info!(revoked = revoked.len(), "loaded a new revocation list");
    if let Ok(links) = ctx.links.lock() {
        for (id, (serial, conn)) in links.iter() {
            if revoked.contains(serial) {
                warn!(peer = %id, "closing the link: its certificate is now revoked");
                conn.close(5u32.into(), b"certificate revoked");
            }
        }
    }
    Ok(())
}
