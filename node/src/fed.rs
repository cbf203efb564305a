//! Federation commands: the CA, nodes, `run` and `status`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use hallsync_hall::Hall;
use hallsync_model::{Level, NodeId, RegionCode, Ts};
use hallsync_net::status::{read_file, NodeStatus};
use hallsync_pki::bundle::{Bundle, ParentConfig};
use hallsync_pki::topology::{NodeEntry, Topology};
use hallsync_pki::{Ca, Identity};
use hallsync_store::StoreOptions;

use crate::cli::{parse_level, parse_node, parse_region};
use crate::output::Out;

/// Where the federation's files are.
#[derive(Debug, ClapArgs)]
pub struct FedPaths {
    /// Directory of the federation CA.
    #[arg(
        long,
        env = "HALLSYNC_CERTS",
        default_value = "certs",
        value_name = "DIR"
    )]
    certs_dir: PathBuf,
    /// The federation's topology file.
    #[arg(
        long,
        env = "HALLSYNC_TOPOLOGY",
        default_value = "topology/federation.toml",
        value_name = "FILE"
    )]
    topology: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Create the federation CA (certificate, key with mode 0600, empty
    /// revocation list).
    Init {
        /// Federation name, e.g. 样例市政务服务.
        #[arg(long)]
        name: String,
        /// Days the CA certificate is valid.
        #[arg(long, default_value_t = 3650)]
        days: i64,
        #[command(flatten)]
        paths: FedPaths,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Issue a node certificate, record the node in the topology, and write
    /// its bundle (certificate, key, CA, CRL, topology entry, run config).
    Add {
        /// Node id (a-z, 0-9, '-'), unique in the federation.
        #[arg(long, value_parser = parse_node)]
        id: NodeId,
        /// Name of the hall.
        #[arg(long)]
        name: String,
        /// Level: city, county or township.
        #[arg(long, value_parser = parse_level)]
        level: Level,
        /// Region code of the hall.
        #[arg(long, value_parser = parse_region)]
        region: RegionCode,
        /// The node it dials (omit only for the top node).
        #[arg(long, value_parser = parse_node)]
        parent: Option<NodeId>,
        /// Address its children dial (host:port); omit for a node without
        /// children (a township PC behind NAT).
        #[arg(long)]
        addr: Option<String>,
        /// Address to listen on (default: all interfaces, the port of --addr).
        #[arg(long)]
        listen: Option<String>,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 825)]
        days: i64,
        /// Where to write the bundle (default: <certs-dir>/bundles/<id>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        paths: FedPaths,
    },
    /// Revoke a node's certificate: a new CRL is written; copy it to the
    /// bundles of the nodes its parent runs (`crl.pem`), which pick it up
    /// within seconds.
    Revoke {
        /// Node id.
        #[arg(value_parser = parse_node)]
        id: NodeId,
        #[command(flatten)]
        paths: FedPaths,
    },
    /// List the federation's nodes.
    List {
        #[command(flatten)]
        paths: FedPaths,
    },
    /// Show one node.
    Show {
        /// Node id.
        #[arg(value_parser = parse_node)]
        id: NodeId,
        #[command(flatten)]
        paths: FedPaths,
    },
}

pub fn ca(cmd: CaCmd, now: Ts, out: &Out) -> Result<()> {
    match cmd {
        CaCmd::Init { name, days, paths } => {
            if !(1..=36_500).contains(&days) {
                bail!("--days must be 1-36500");
            }
            let ca = Ca::init(&paths.certs_dir, &name, now, days)?;
            out.message(
                &format!(
                    "created the federation CA '{}' in {} (ca.crt, ca.key [0600, never commit it], crl.pem)",
                    ca.name(),
                    paths.certs_dir.display()
                ),
                &serde_json::json!({ "ca": paths.certs_dir, "name": ca.name() }),
            )
        }
    }
}

pub fn node(cmd: NodeCmd, now: Ts, out: &Out) -> Result<()> {
    match cmd {
        NodeCmd::Add {
            id,
            name,
            level,
            region,
            parent,
            addr,
            listen,
            days,
            out: bundle_dir,
            paths,
        } => {
            if !(1..=3_650).contains(&days) {
                bail!("--days must be 1-3650");
            }
            region.check_level(level).map_err(anyhow::Error::msg)?;
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 100 {
                bail!("--name must be 1-100 characters");
            }
            if let Some(a) = &addr {
                port_of(a)?;
            }
            let ca = Ca::open(&paths.certs_dir)?;
            let mut topo = Topology::load(&paths.topology)?;
            if topo.federation.is_empty() {
                topo.federation = ca.name().to_string();
            }
            let expires = now.plus(days * 86_400);
            let mut entry = NodeEntry {
                id: id.clone(),
                name,
                level,
                region: region.clone(),
                parent: parent.clone(),
                addr: addr.clone(),
                serial: String::new(),
                issued: now.to_string(),
                expires: expires.to_string(),
                revoked: None,
            };
            topo.check_new(&entry)?;
            let issued = ca.issue(&Identity { id, level, region }, now.plus(-300), expires)?;
            entry.serial = issued.serial.clone();
            let parent_cfg = match &parent {
                Some(p) => {
                    let pe = topo.node(p).context("parent vanished")?;
                    Some(ParentConfig {
                        id: p.clone(),
                        addr: pe.addr.clone().context("parent has no address")?,
                    })
                }
                None => None,
            };
            let listen = match (listen, &addr) {
                (Some(l), _) => Some(l),
                (None, Some(a)) => Some(format!("0.0.0.0:{}", port_of(a)?)),
                (None, None) => None,
            };
            let dir = bundle_dir
                .unwrap_or_else(|| paths.certs_dir.join("bundles").join(entry.id.as_str()));
            let bundle = Bundle::write(&dir, &ca, &entry, &issued, listen, parent_cfg)?;
            topo.nodes.push(entry.clone());
            topo.save(&paths.topology)?;
            out.message(
                &format!(
                    "added {} {} ({}, region {}), certificate {} valid until {}\n\
                     bundle: {}  (copy it to the hall PC; node.key is secret)\n\
                     start it there with: hallsync run --bundle <bundle dir>",
                    entry.level,
                    entry.id,
                    entry.name,
                    entry.region,
                    entry.serial,
                    entry.expires,
                    bundle.dir.display()
                ),
                &serde_json::json!({ "node": entry, "bundle": bundle.dir }),
            )
        }
        NodeCmd::Revoke { id, paths } => {
            let mut ca = Ca::open(&paths.certs_dir)?;
            let mut topo = Topology::load(&paths.topology)?;
            let entry = topo
                .nodes
                .iter_mut()
                .find(|n| n.id == id)
                .with_context(|| format!("no node {id} in {}", paths.topology.display()))?;
            if entry.revoked.is_some() {
                bail!("{id} is already revoked");
            }
            ca.revoke(&entry.serial, id.as_str(), now)?;
            entry.revoked = Some(now.to_string());
            let parent = entry.parent.clone();
            topo.save(&paths.topology)?;
            let crl = paths.certs_dir.join(hallsync_pki::CRL);
            out.message(
                &format!(
                    "revoked {id}; new revocation list: {}\n\
                     copy it over crl.pem in the bundle of {} (and of every node that may meet {id}); \
                     running nodes pick it up within seconds and drop the link",
                    crl.display(),
                    parent.map_or("its parent".to_string(), |p| p.to_string())
                ),
                &serde_json::json!({ "revoked": id, "crl": crl }),
            )
        }
        NodeCmd::List { paths } => {
            let topo = Topology::load(&paths.topology)?;
            out.nodes(&topo)
        }
        NodeCmd::Show { id, paths } => {
            let topo = Topology::load(&paths.topology)?;
            let n = topo
                .node(&id)
                .with_context(|| format!("no node {id} in {}", paths.topology.display()))?;
            let children: Vec<&NodeId> = topo
                .nodes
                .iter()
                .filter(|c| c.parent.as_ref() == Some(&id))
                .map(|c| &c.id)
                .collect();
            out.node_entry(n, &children)
        }
    }
}

fn port_of(addr: &str) -> Result<u16> {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .with_context(|| format!("--addr {addr:?} must be host:port"))
}

/// `hallsync run`: opens (or creates, from the bundle) the node and runs it
/// until SIGINT or SIGTERM, then stops within about a second and closes the
/// store (the memtable written out), so the data directory is free at once.
pub fn run(dir: &Path, bundle_dir: &Path) -> Result<()> {
    let bundle = Bundle::open(bundle_dir)?;
    // A broken bundle is reported before anything is created.
    hallsync_net::tls::Credentials::load(&bundle)?.client(&hallsync_net::tls::provider())?;
    let c = &bundle.config;
    let id = c.id.clone();
    let hall = if dir.join("node.toml").exists() {
        Hall::open(dir, StoreOptions::default())?
    } else {
        tracing::info!("initialising {} from the bundle", dir.display());
        Hall::init(
            dir,
            c.id.clone(),
            &c.name,
            c.region.clone(),
            c.level,
            StoreOptions::default(),
        )?
    };
    let hall = std::sync::Arc::new(hall);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let stopping = rt.block_on({
        let (hall, id) = (hall.clone(), id.clone());
        async move {
            // Before the node starts, so that a signal during the start
            // stops it the same way.
            let mut signals = Signals::install()?;
            let options = hallsync_net::Options {
                status_file: Some(dir.join(STATUS_FILE)),
                ..Default::default()
            };
            let node = hallsync_net::start(hall, bundle, options).await?;
            eprintln!(
                "hallsync node running{}; stop with Ctrl-C",
                node.local_addr()
                    .map(|a| format!(", listening on {a}"))
                    .unwrap_or_default()
            );
            let signal = signals.next().await?;
            let stopping = std::time::Instant::now();
            tracing::info!(
                node = %id,
                "stopping: {signal} received; ending each session after its current commit, then closing the data directory"
            );
            node.shutdown().await;
            Ok::<_, anyhow::Error>(stopping)
        }
    })?;
    // A name lookup still running on a blocking thread is not waited for.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    let took = || stopping.elapsed().as_secs_f64();
    match std::sync::Arc::try_unwrap(hall) {
        Ok(hall) => {
            // Closing the store writes its memtable out to sled.
            drop(hall);
            tracing::info!(node = %id, "stopped in {:.2} s; {} is free", took(), dir.display());
        }
        Err(_) => tracing::warn!(
            node = %id,
            "stopped in {:.2} s, with a session still at work: what it acknowledged is on disk, and the write-ahead log is replayed at the next start",
            took()
        ),
    }
    Ok(())
}

const STATUS_FILE: &str = "status.json";

/// The signals that stop `hallsync run`, listened for from the start.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())
                    .context("installing the SIGINT handler")?,
                terminate: signal(SignalKind::terminate())
                    .context("installing the SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for one; returns its name.
    async fn next(&mut self) -> Result<&'static str> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Ok("SIGINT"),
                _ = self.terminate.recv() => Ok("SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            Ok("Ctrl-C")
        }
    }
}

/// Whether the node that wrote `st` is still running: its process exists
/// (where /proc tells) and it wrote the file in the last 10 seconds.
fn running(st: &NodeStatus) -> bool {
    let proc_dir = Path::new("/proc");
    let alive = !proc_dir.exists() || proc_dir.join(st.pid.to_string()).exists();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    alive && now - st.updated <= 10
}

/// `hallsync status`.
pub fn status(dir: &Path, out: &Out) -> Result<()> {
    let path = dir.join(STATUS_FILE);
    if !path.exists() {
        if !dir.join("node.toml").exists() {
            bail!(
                "no node in {}: run `hallsync init` or `hallsync run --bundle`",
                dir.display()
            );
        }
        bail!(
            "the node in {} has never run (`hallsync run --bundle <dir>` starts it)",
            dir.display()
        );
    }
    let st = read_file(&path).map_err(anyhow::Error::msg)?;
    out.status(&st, running(&st))
}
