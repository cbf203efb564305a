//! `hallsync node`: the federation's nodes: certificates, the topology
//! file, and the bundle each hall PC runs from.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use hallsync_model::{Level, NodeId, RegionCode, Ts};
use hallsync_pki::bundle::{Bundle, ParentConfig};
use hallsync_pki::topology::{NodeEntry, Topology};
use hallsync_pki::{Ca, ConsoleHost, Identity, CONSOLE_MAX_DAYS};
use serde::Serialize;

use crate::ca::FedPaths;
use crate::output::{say, table, Out};
use crate::parse;

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Issue a node certificate, record the node in the topology, and write
    /// its bundle (certificate, key, CA, CRL, topology entry, run config).
    Add {
        /// Node id (a-z, 0-9, '-'), unique in the federation.
        #[arg(long, value_parser = parse::node)]
        id: NodeId,
        /// Name of the hall.
        #[arg(long)]
        name: String,
        /// Level: city, county or township.
        #[arg(long, value_parser = parse::level)]
        level: Level,
        /// Region code of the hall.
        #[arg(long, value_parser = parse::region)]
        region: RegionCode,
        /// The node it dials (omit only for the top node).
        #[arg(long, value_parser = parse::node)]
        parent: Option<NodeId>,
        /// Address its children dial (host:port); omit for a node without
        /// children (a township PC behind NAT).
        #[arg(long)]
        addr: Option<String>,
        /// Address to listen on (default: all interfaces, the port of --addr).
        #[arg(long)]
        listen: Option<String>,
        /// Address (IP:port) its API and web console listen on (default
        /// 127.0.0.1:7480; give each node on one machine its own port). Any
        /// address but loopback (e.g. 0.0.0.0:7480) is served over HTTPS
        /// and needs --console-host.
        #[arg(long)]
        console: Option<String>,
        /// A host name or IP address the hall's browsers reach the console
        /// at (repeat for more): issues the console an HTTPS certificate
        /// from the federation CA naming them, and the address this PC's
        /// command line uses (the --console IP, or 127.0.0.1 when it is
        /// 0.0.0.0), valid at most 398 days.
        #[arg(long = "console-host", value_name = "HOST")]
        console_hosts: Vec<String>,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 825)]
        days: i64,
        /// Where to write the bundle (default: <certs-dir>/bundles/<id>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        paths: FedPaths,
    },
    /// Issue a node's console a new HTTPS certificate (to serve it beyond
    /// the hall PC, or when the old one expires or names the wrong hosts),
    /// and set where the console listens, in the node's bundle. Copy
    /// console.crt, console.key and hallsync.toml to the hall PC and
    /// restart the node there.
    Console {
        /// Node id.
        #[arg(value_parser = parse::node)]
        id: NodeId,
        /// Address (IP:port) the console listens on, beyond loopback (e.g.
        /// 0.0.0.0:7480, or the PC's own address).
        #[arg(long)]
        console: String,
        /// A host name or IP address browsers reach the console at (repeat
        /// for more).
        #[arg(long = "console-host", value_name = "HOST", required = true)]
        console_hosts: Vec<String>,
        /// Days the certificate is valid (at most 398).
        #[arg(long, default_value_t = hallsync_pki::CONSOLE_MAX_DAYS)]
        days: i64,
        /// The node's bundle (default: <certs-dir>/bundles/<id>).
        #[arg(long)]
        bundle: Option<PathBuf>,
        #[command(flatten)]
        paths: FedPaths,
    },
    /// Revoke a node's certificate: a new CRL is written; copy it to the
    /// bundles of the nodes its parent runs (`crl.pem`), which pick it up
    /// within seconds.
    Revoke {
        /// Node id.
        #[arg(value_parser = parse::node)]
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
        #[arg(value_parser = parse::node)]
        id: NodeId,
        #[command(flatten)]
        paths: FedPaths,
    },
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
            console,
            console_hosts,
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
            let console_hosts = match &console {
                Some(c) => console_sans(c, &console_hosts)?,
                None if console_hosts.is_empty() => Vec::new(),
                None => bail!("{CONSOLE_HOST_ALONE}"),
            };
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
            let console_issued = if console_hosts.is_empty() {
                None
            } else {
                let until = now.plus(days.min(CONSOLE_MAX_DAYS) * 86_400);
                Some(ca.issue_console(&entry.id, &console_hosts, now.plus(-300), until)?)
            };
            let bundle = Bundle::write(&dir, &ca, &entry, &issued, listen, parent_cfg, console)?;
            if let Some(c) = &console_issued {
                bundle.write_console(c)?;
            }
            topo.nodes.push(entry.clone());
            topo.save(&paths.topology)?;
            let added = NodeAdded {
                node: entry,
                bundle: bundle.dir,
                console: console_issued.map(|c| ConsoleIssued {
                    serial: c.serial,
                    hosts: console_hosts.iter().map(|h| h.to_string()).collect(),
                }),
            };
            out.show(&added, |a| {
                let e = &a.node;
                say!(
                    "added {} {} ({}, region {}), certificate {} valid until {}\n\
                     bundle: {}  (copy it to the hall PC; node.key is secret)\n\
                     start it there with: hallsync run --bundle <bundle dir>",
                    e.level,
                    e.id,
                    e.name,
                    e.region,
                    e.serial,
                    e.expires,
                    a.bundle.display()
                );
                if let Some(c) = &a.console {
                    print_console(c);
                }
            })
        }
        NodeCmd::Console {
            id,
            console,
            console_hosts,
            days,
            bundle,
            paths,
        } => {
            if !(1..=CONSOLE_MAX_DAYS).contains(&days) {
                bail!("--days must be 1-{CONSOLE_MAX_DAYS} for a console certificate");
            }
            let hosts = console_sans(&console, &console_hosts)?;
            let ca = Ca::open(&paths.certs_dir)?;
            let topo = Topology::load(&paths.topology)?;
            let entry = topo
                .node(&id)
                .with_context(|| format!("no node {id} in {}", paths.topology.display()))?;
            if entry.revoked.is_some() {
                bail!("{id} is revoked; add the hall again under a new id");
            }
            let dir = bundle.unwrap_or_else(|| paths.certs_dir.join("bundles").join(id.as_str()));
            let mut bundle = Bundle::open(&dir)?;
            if bundle.config.id != id {
                bail!(
                    "{} is the bundle of {}, not of {id}",
                    dir.display(),
                    bundle.config.id
                );
            }
            let issued = ca.issue_console(&id, &hosts, now.plus(-300), now.plus(days * 86_400))?;
            bundle.write_console(&issued)?;
            bundle.set_console(console)?;
            let shown = ConsoleShown {
                node: id,
                bundle: dir,
                console: bundle.config.console.clone(),
                certificate: ConsoleIssued {
                    serial: issued.serial,
                    hosts: hosts.iter().map(|h| h.to_string()).collect(),
                },
            };
            out.show(&shown, |s| {
                say!(
                    "console of {} at {} (HTTPS), in bundle {}",
                    s.node,
                    s.console,
                    s.bundle.display()
                );
                print_console(&s.certificate);
                say!("copy console.crt, console.key and hallsync.toml to the hall PC and restart `hallsync run` there");
            })
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
            let revoked = Revoked { revoked: id, crl };
            out.show(&revoked, |r| {
                say!(
                    "revoked {}; new revocation list: {}\n\
                     copy it over crl.pem in the bundle of {} (and of every node that may meet {}); \
                     running nodes pick it up within seconds and drop the link",
                    r.revoked,
                    r.crl.display(),
                    parent.map_or("its parent".to_string(), |p| p.to_string()),
                    r.revoked
                );
            })
        }
        NodeCmd::List { paths } => {
            let topo = Topology::load(&paths.topology)?;
            out.show(&topo, print_nodes)
        }
        NodeCmd::Show { id, paths } => {
            let topo = Topology::load(&paths.topology)?;
            let n = topo
                .node(&id)
                .with_context(|| format!("no node {id} in {}", paths.topology.display()))?;
            let shown = NodeShown {
                node: n.clone(),
                children: topo
                    .nodes
                    .iter()
                    .filter(|c| c.parent.as_ref() == Some(&id))
                    .map(|c| c.id.clone())
                    .collect(),
            };
            out.show(&shown, print_node)
        }
    }
}

const CONSOLE_HOST_ALONE: &str = "--console-host issues a certificate for a console served beyond the hall PC: give --console with the address it listens on (e.g. 0.0.0.0:7480)";

/// The names a console certificate carries for a console on `console`:
/// `hosts` (what browsers use) and the address this PC's command line
/// reaches it at. Refuses a console beyond loopback without hosts, and
/// hosts for a loopback console (plain HTTP, no certificate needed).
fn console_sans(console: &str, hosts: &[String]) -> Result<Vec<ConsoleHost>> {
    let addr: std::net::SocketAddr = console.parse().with_context(|| {
        format!("--console {console:?} must be an IP address and port, e.g. 0.0.0.0:7480")
    })?;
    if addr.ip().is_loopback() {
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        bail!("{CONSOLE_HOST_ALONE}, not a loopback one ({console}, plain HTTP on this PC only)");
    }
    if hosts.is_empty() {
        bail!(
            "--console {console} serves the console beyond the hall PC, over HTTPS only: give --console-host with each host name or IP address the hall's browsers reach it at"
        );
    }
    let mut sans = hosts
        .iter()
        .map(|h| ConsoleHost::parse(h))
        .collect::<Result<Vec<_>, _>>()?;
    let local = ConsoleHost::Ip(hallsync_net::tls::console_local_host(addr));
    if !sans.contains(&local) {
        sans.push(local);
    }
    Ok(sans)
}

fn print_console(c: &ConsoleIssued) {
    say!(
        "console certificate {} for {} (console.crt, console.key; hall PCs' browsers trust it once they import ca.crt)",
        c.serial,
        c.hosts.join(", ")
    );
}

fn port_of(addr: &str) -> Result<u16> {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .with_context(|| format!("--addr {addr:?} must be host:port"))
}

/// A node added.
#[derive(Debug, Serialize)]
pub struct NodeAdded {
    /// Its topology entry.
    pub node: NodeEntry,
    /// Where its bundle was written.
    pub bundle: PathBuf,
    /// Its console's certificate, if one was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleIssued>,
}

/// A console certificate issued.
#[derive(Debug, Serialize)]
pub struct ConsoleIssued {
    /// Serial number (hex).
    pub serial: String,
    /// The host names and addresses it names.
    pub hosts: Vec<String>,
}

/// A console given a certificate by `node console`.
#[derive(Debug, Serialize)]
pub struct ConsoleShown {
    /// The node.
    pub node: NodeId,
    /// Its bundle.
    pub bundle: PathBuf,
    /// Where the console listens.
    pub console: String,
    /// The certificate.
    pub certificate: ConsoleIssued,
}

/// A node revoked.
#[derive(Debug, Serialize)]
pub struct Revoked {
    /// The node.
    pub revoked: NodeId,
    /// The new revocation list.
    pub crl: PathBuf,
}

/// A node with its children.
#[derive(Debug, Serialize)]
pub struct NodeShown {
    /// Its topology entry.
    pub node: NodeEntry,
    /// The nodes that dial it.
    pub children: Vec<NodeId>,
}

fn print_nodes(topo: &Topology) {
    let mut t = table(&[
        "id", "level", "region", "name", "parent", "address", "expires", "state",
    ]);
    for n in &topo.nodes {
        t.add_row(vec![
            n.id.to_string(),
            n.level.to_string(),
            n.region.to_string(),
            n.name.clone(),
            n.parent.as_ref().map_or("—".into(), |p| p.to_string()),
            n.addr.clone().unwrap_or_else(|| "(dials out only)".into()),
            n.expires.clone(),
            n.revoked
                .as_ref()
                .map_or("active".into(), |r| format!("revoked {r}")),
        ]);
    }
    say!("{t}");
    say!(
        "{} nodes in federation {}",
        topo.nodes.len(),
        topo.federation
    );
}

fn print_node(s: &NodeShown) {
    let n = &s.node;
    let mut t = table(&["field", "value"]);
    let children = s
        .children
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    for (k, v) in [
        ("id", n.id.to_string()),
        ("name", n.name.clone()),
        ("level", n.level.to_string()),
        ("region", n.region.to_string()),
        (
            "parent",
            n.parent.as_ref().map_or("—".into(), |p| p.to_string()),
        ),
        (
            "children",
            if children.is_empty() {
                "—".into()
            } else {
                children
            },
        ),
        (
            "address",
            n.addr.clone().unwrap_or_else(|| "(dials out only)".into()),
        ),
        ("certificate", n.serial.clone()),
        ("issued", n.issued.clone()),
        ("expires", n.expires.clone()),
        ("revoked", n.revoked.clone().unwrap_or_else(|| "no".into())),
    ] {
        t.add_row(vec![k.to_string(), v]);
    }
    say!("{t}");
}
