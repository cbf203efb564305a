//! `hallsync restore`: a node made again on a new PC, from a backup file or
//! from what its parent holds for it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hallsync_hall::{Hall, RestoreState};
use hallsync_model::registry::RestoreSource;
use hallsync_model::{DocKind, NodeId, RegionCode, Ts};
use hallsync_net::status::{NodeStatus, PeerStatus, Role};
use hallsync_pki::bundle::Bundle;
use hallsync_store::StoreOptions;
use serde::Serialize;

use crate::cli::{clock, Ctx};
use crate::output::say;

/// `restore --from FILE`: a node made again from its backup; with the
/// node's bundle (`--bundle DIR` too), only a backup of that node, and the
/// caller then fetches the rest from the parent.
pub fn from_backup(ctx: &Ctx, from: &Path, bundle: Option<&Path>) -> Result<()> {
    let open = || std::fs::File::open(from).with_context(|| format!("{}", from.display()));
    if let Some(dir) = bundle {
        // The bundle is checked whole before anything is made.
        let b = Bundle::open(dir)?;
        hallsync_net::tls::Credentials::load(&b)?;
        let id = b.config.id;
        let of = hallsync_hall::backed_up_node(&mut std::io::BufReader::new(open()?))
            .with_context(|| format!("{}", from.display()))?;
        if of != id {
            bail!(
                "{} is a backup of {of}, but the bundle {} is for {id}: give the backup of {id}",
                from.display(),
                dir.display()
            );
        }
        if ctx.dir.join("node.toml").exists() {
            // Restored from the backup already (the restore from the
            // parent was cut short): carry on with that.
            return Ok(());
        }
    }
    let file = open()?;
    let now = ctx.now.unwrap_or_else(clock);
    let (hall, done) = Hall::restore(
        &ctx.dir,
        &mut std::io::BufReader::new(file),
        StoreOptions::default(),
        now,
    )?;
    drop(hall);
    if bundle.is_some() {
        // The restore from the parent that follows gives the summary.
        eprintln!(
            "restored {} from the backup as of {}: {} documents and {} of its own records; now fetching from its parent what was written after it",
            done.node, done.taken_at, done.documents, done.local_records
        );
        return Ok(());
    }
    ctx.out.show(&done, |d| {
        say!(
            "restored {} (region {}) as of {}: {} documents and {} of its own records, in {}; start it with `hallsync --data-dir {} run --bundle DIR`: a node with a parent first fetches from it what was written after the backup, and records nothing until then",
            d.node,
            d.region,
            d.taken_at,
            d.documents,
            d.local_records,
            ctx.dir.display(),
            ctx.dir.display()
        );
    })
}

/// What `restore --bundle` brought back.
#[derive(Debug, Serialize)]
struct FromParent {
    node: NodeId,
    region: RegionCode,
    parent: NodeId,
    /// When the restore began (a restore cut short and started again keeps
    /// its first time).
    began: Ts,
    cases: usize,
    orders: usize,
    items: usize,
    /// Every document held, of every kind.
    documents: usize,
    seconds: f64,
    /// UDP bytes received from the parent and sent to it, on the
    /// connection that finished the restore.
    wire_rx: u64,
    wire_tx: u64,
    /// Whether the registry entry notes the restore already (if not, the
    /// node notes it when it next starts).
    noted: bool,
}

/// How long the registry entry is waited for once everything is here.
const NOTING: Duration = Duration::from_secs(10);

/// How often the restore looks whether it is done.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// How often the progress line is printed, at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// `restore --bundle DIR`: a new data directory filled from the parent:
/// the hall's own records (its cases, the orders addressed to it, its
/// registry entry) and the catalogue, calendars and rules from above, under
/// a new Automerge actor. Stops once it has applied the whole of the
/// parent's feed; cut short (Ctrl-C, a crash, a lost link), the same
/// command carries on where it stopped.
pub fn from_parent(ctx: &Ctx, bundle_dir: &Path) -> Result<()> {
    let bundle = Bundle::open(bundle_dir)?;
    let provider = hallsync_net::tls::provider();
    hallsync_net::tls::Credentials::load(&bundle)?.client(&provider)?;
    let c = bundle.config.clone();
    let Some(parent) = c.parent.clone() else {
        bail!(
            "{} has no parent to restore from: make it again from a backup with `hallsync restore --from FILE`",
            c.id
        );
    };
    let dir = &ctx.dir;
    let now = ctx.now.unwrap_or_else(clock);
    let hall = if dir.join("node.toml").exists() {
        let hall = Hall::open(dir, StoreOptions::default())?;
        let node = hall.node();
        if node.id != c.id {
            bail!(
                "{} holds node {}, but the bundle is for {}: restore into an empty directory (--data-dir)",
                dir.display(),
                node.id,
                c.id
            );
        }
        match hall.restore_state()? {
            Some(RestoreState::Fetching { since, .. }) => {
                eprintln!(
                    "carrying on with the restore of {} begun at {since}",
                    c.id
                );
                hall
            }
            // Stopped between making the directory and marking the restore:
            // a node that holds nothing has nothing to lose.
            None if hall.store().ids_with_prefix("").next().is_none() => {
                hall.begin_restore(RestoreSource::Parent, now)?;
                hall
            }
            Some(RestoreState::CaughtUp(_)) => {
                say!(
                    "{} holds everything its parent held for it already; start it with `hallsync --data-dir {} run --bundle {}`, which notes the restore in its registry entry",
                    c.id,
                    dir.display(),
                    bundle_dir.display()
                );
                return Ok(());
            }
            _ => bail!(
                "{} already holds node {} and is not being restored: start it with `hallsync --data-dir {} run --bundle {}`, or restore into an empty directory (--data-dir)",
                dir.display(),
                c.id,
                dir.display(),
                bundle_dir.display()
            ),
        }
    } else {
        if dir.join("store").exists() {
            bail!(
                "{} holds a store but no node.toml (files copied, or a node made only in part): restore into an empty directory (--data-dir)",
                dir.display()
            );
        }
        let hall = crate::run::init_from(dir, &c)?;
        hall.begin_restore(RestoreSource::Parent, now)?;
        hall
    };
    let began = match hall.restore_state()? {
        Some(RestoreState::Fetching { since, .. }) => since,
        _ => now,
    };
    let hall = std::sync::Arc::new(hall);
    let started = Instant::now();
    eprintln!(
        "restoring {} (region {}) from its parent {} at {}: Ctrl-C stops, and the same command (or `hallsync run`) carries on later. The PC this hall ran on before must be off: two nodes with one certificate push each other off the link",
        c.id, c.region, parent.id, parent.addr
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let finished = rt.block_on({
        let (hall, parent) = (hall.clone(), parent.id.clone());
        async move {
            let mut signals = crate::run::Signals::install()?;
            let options = hallsync_net::Options {
                now: ctx.now,
                dial_only: true,
                ..Default::default()
            };
            let node = hallsync_net::start(hall.clone(), bundle, options).await?;
            let mut tick = tokio::time::interval(WATCH_EVERY);
            let (mut told, mut told_at) = (String::new(), Instant::now());
            let mut caught_up = None;
            let mut wire = (0, 0);
            let finished = loop {
                tokio::select! {
                    signal = signals.next() => {
                        eprintln!("{}: stopping; run the same command again to carry on", signal?);
                        break false;
                    }
                    _ = tick.tick() => {}
                }
                let status = node.board().snapshot();
                if let Some(p) = parent_of(&status, &parent) {
                    wire = (p.wire_rx, p.wire_tx);
                }
                if !hall.restoring() {
                    // The session that caught up notes it in the registry
                    // entry next; a moment is enough.
                    let at = *caught_up.get_or_insert_with(Instant::now);
                    if hall.restore_state()?.is_none() || at.elapsed() > NOTING {
                        break true;
                    }
                    continue;
                }
                let line = progress(&status, &parent);
                if line != told && (told.is_empty() || told_at.elapsed() >= PROGRESS_EVERY) {
                    eprintln!("{line}");
                    (told, told_at) = (line, Instant::now());
                }
            };
            node.shutdown().await;
            Ok::<_, anyhow::Error>(finished.then_some(wire))
        }
    })?;
    rt.shutdown_timeout(Duration::from_millis(100));
    let Some((wire_rx, wire_tx)) = finished else {
        bail!(
            "the restore of {} was stopped before it had everything {} holds for it",
            c.id,
            parent.id
        );
    };
    let noted = hall.restore_state()?.is_none();
    let count = |kind| hall.store().ids(kind).count();
    let done = FromParent {
        node: c.id.clone(),
        region: c.region.clone(),
        parent: parent.id.clone(),
        began,
        cases: count(DocKind::Case),
        orders: count(DocKind::Order),
        items: count(DocKind::Item),
        documents: [
            DocKind::Case,
            DocKind::Order,
            DocKind::Item,
            DocKind::Cal,
            DocKind::Node,
            DocKind::Rules,
        ]
        .into_iter()
        .map(count)
        .sum(),
        seconds: started.elapsed().as_secs_f64(),
        wire_rx,
        wire_tx,
        noted,
    };
    drop(hall);
    if done.cases == 0 {
        eprintln!(
            "warning: {} held no case of {}: if the hall had cases, check that the bundle is this hall's",
            done.parent, done.node
        );
    }
    ctx.out.show(&done, |d| {
        say!(
            "restored {} (region {}) from {}: {} case(s), {} order(s), {} catalogue item(s), {} documents in all, {} received, in {:.1} s; {}. Start it with `hallsync --data-dir {} run --bundle {}`. Operators are kept on the hall's PC only: unless they came back from a backup, add them again with `hallsync operator add`",
            d.node,
            d.region,
            d.parent,
            d.cases,
            d.orders,
            d.items,
            d.documents,
            if d.wire_rx < 1_000_000 {
                format!("{:.1} KB", d.wire_rx as f64 / 1e3)
            } else {
                format!("{:.1} MB", d.wire_rx as f64 / 1e6)
            },
            d.seconds,
            if d.noted {
                "its registry entry notes the restore"
            } else {
                "its registry entry notes the restore when it starts"
            },
            dir.display(),
            bundle_dir.display()
        );
    })
}

fn parent_of<'a>(status: &'a NodeStatus, parent: &NodeId) -> Option<&'a PeerStatus> {
    status
        .peers
        .iter()
        .find(|p| p.role == Role::Parent && p.id == parent.as_str())
}

/// One line on how the fetch from `parent` is going.
fn progress(status: &NodeStatus, parent: &NodeId) -> String {
    let Some(p) = parent_of(status, parent) else {
        return format!("dialling {parent}…");
    };
    match (&p.last_error, p.connected) {
        (_, true) => format!(
            "fetching from {parent}: {} documents received, {} of its feed entries to go",
            p.received_docs, p.backlog_in
        ),
        (Some(e), false) => format!("no link with {parent} yet ({e}); trying again"),
        (None, false) => format!("connecting to {parent}…"),
    }
}
