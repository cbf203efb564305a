//! The command line: global flags, the commands by area, and what every
//! command is given to run with.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hallsync_hall::{Hall, NodeConfig};
use hallsync_model::{Level, NodeId, RegionCode, Ts};
use hallsync_store::StoreOptions;
use serde::Serialize;

use crate::ca::CaCmd;
use crate::calendar::CalendarCmd;
use crate::case::CaseCmd;
use crate::doc::DocCmd;
use crate::item::ItemCmd;
use crate::nodes::NodeCmd;
use crate::operator::OperatorCmd;
use crate::order::OrderCmd;
use crate::output::{say, Out};
use crate::parse;
use crate::target::Target;
use crate::warning::WarningCmd;

/// hallsync: a service hall's node. It keeps the hall's power catalogue and
/// cases, works fully offline, and replicates with the levels above and
/// below over mutual-TLS QUIC. While `hallsync run` runs, every other
/// command goes through it.
#[derive(Debug, Parser)]
#[command(name = "hallsync", version, about, long_about = None)]
pub struct Args {
    /// Data directory of the node.
    #[arg(long, global = true, env = "HALLSYNC_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON instead of tables (for scripts): the same JSON the API
    /// answers with.
    #[arg(long, global = true)]
    json: bool,
    /// Treat this time as now ('YYYY-MM-DD HH:MM', China Standard Time):
    /// for reproducible reports and rehearsals. Certificates (`ca`, `node`)
    /// always use the real clock.
    #[arg(long, global = true, env = "HALLSYNC_NOW", value_name = "TIME", value_parser = parse::ts)]
    now: Option<Ts>,
    /// Log more: -v adds what the node does and what its libraries (sled,
    /// automerge, quinn) report, -vv adds debugging detail. `$HALLSYNC_LOG`
    /// (a tracing filter) overrides both.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node in the data directory.
    Init {
        /// Node id, unique in the federation (a-z, 0-9, '-').
        #[arg(long, value_parser = parse::node)]
        id: NodeId,
        /// Name of the hall.
        #[arg(long)]
        name: String,
        /// Region code of the hall (e.g. 140212101 for a township).
        #[arg(long, value_parser = parse::region)]
        region: RegionCode,
        /// Level: city, county or township.
        #[arg(long, value_parser = parse::level)]
        level: Level,
    },
    /// The power catalogue.
    #[command(subcommand)]
    Item(ItemCmd),
    /// Cases (办件).
    #[command(subcommand)]
    Case(CaseCmd),
    /// Supervision orders (督办): a hub issues them to the halls below it,
    /// the hall replies, the hub closes them.
    #[command(subcommand)]
    Order(OrderCmd),
    /// Supervision cards (预警, 黄牌, 红牌), derived from the cases' events.
    #[command(subcommand)]
    Warning(WarningCmd),
    /// Statistics of a unit for a period (received, concluded, on-time and
    /// speed-up rates, open and overdue cases, cards, orders, fees), with a
    /// breakdown by unit, item or day.
    Stats(crate::stats::StatsArgs),
    /// The performance evaluation (绩效考评): the units one level down,
    /// scored for a month and ranked, with the breakdown behind each score.
    Evaluate(crate::stats::EvaluateArgs),
    /// Supervision rules: the card thresholds and evaluation weights a hub
    /// publishes for its subtree (a county may only tighten its city's).
    #[command(subcommand)]
    Rules(crate::rules::RulesCmd),
    /// Reports as .xlsx or CSV: the weekly progress report and the monthly
    /// statistics.
    #[command(subcommand)]
    Report(crate::report::ReportCmd),
    /// The holiday calendar.
    #[command(subcommand)]
    Calendar(CalendarCmd),
    /// Raw Automerge documents.
    #[command(subcommand)]
    Doc(DocCmd),
    /// The operators who log in to the console, and their roles.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// The federation CA (administrators).
    #[command(subcommand)]
    Ca(CaCmd),
    /// Federation nodes: certificates, topology and bundles (administrators).
    #[command(subcommand)]
    Node(NodeCmd),
    /// Run the node: listen for children, dial the parent, replicate both
    /// ways, serve the API and the web console, until Ctrl-C or SIGTERM.
    /// Creates the data directory from the bundle on first run.
    Run {
        /// The node's bundle directory (from `hallsync node add`).
        #[arg(long, env = "HALLSYNC_BUNDLE", value_name = "DIR")]
        bundle: PathBuf,
    },
    /// Show the links of the node: connected or not, last sync, backlog,
    /// records set aside.
    Status,
    /// Write a backup of this node to a file: every document and the
    /// node's own records (operators, a rules draft). Works while the node
    /// runs. Keep it off this PC.
    Backup {
        /// The file to write; it must not exist yet.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
    /// Make this data directory a node again, on a new PC or after a disk
    /// failure: same node, new Automerge actor. The directory must hold no
    /// node. From a backup (`--from`), or from what its parent holds for it
    /// (`--bundle`: its cases, the orders addressed to it, its registry
    /// entry, and the catalogue, calendars and rules from above). Start it
    /// with `hallsync run` afterwards.
    #[command(group(clap::ArgGroup::new("source").required(true).multiple(true).args(["from", "bundle"])))]
    Restore {
        /// The backup written by `hallsync backup`; then `hallsync run`
        /// fetches from the parent what was written after it.
        #[arg(long = "from", value_name = "FILE")]
        from: Option<PathBuf>,
        /// The node's bundle directory: fetch everything from its parent
        /// now, and stop once it is all here. Cut short, the same command
        /// (or `hallsync run`) carries on; until it is done the hall
        /// records nothing. The hall's old PC must be off.
        #[arg(long = "bundle", value_name = "DIR")]
        bundle: Option<PathBuf>,
    },
    /// Open a data directory that a damaged write-ahead log stopped: replay
    /// what comes before the damage and discard the acknowledged writes
    /// after it. Copy the data directory somewhere safe first.
    Repair {
        /// Confirms that the writes after the damage may be lost.
        #[arg(long)]
        accept_log_loss: bool,
    },
}

/// The crates of this workspace, whose warnings every command shows.
const OWN_CRATES: [&str; 9] = [
    "hallsync",
    "hallsync_model",
    "hallsync_store",
    "hallsync_hall",
    "hallsync_sync",
    "hallsync_net",
    "hallsync_pki",
    "hallsync_api",
    "hallsync_web",
];

impl Args {
    /// The log filter when `$HALLSYNC_LOG` sets none: a running node
    /// reports its links at info level; one-shot commands show only this
    /// project's warnings, libraries' own lines only with `-v`.
    pub fn log_filter(&self) -> String {
        let own = |level: &str| {
            OWN_CRATES
                .iter()
                .map(|c| format!("{c}={level}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        match (self.verbose, matches!(self.command, Command::Run { .. })) {
            (0, true) => format!("warn,{}", own("info")),
            (0, false) => format!("off,{}", own("warn")),
            (1, _) => "info".into(),
            _ => "debug".into(),
        }
    }
}

/// What a command runs with.
pub struct Ctx {
    /// The data directory.
    pub dir: PathBuf,
    /// The time to treat as now, if one was given.
    pub now: Option<Ts>,
    /// How to print.
    pub out: Out,
}

impl Ctx {
    /// The node: the running one, or its store opened.
    pub fn target(&self) -> Result<Target> {
        Target::open(&self.dir)
    }
}

fn data_dir(args: &Args) -> Result<PathBuf> {
    match &args.data_dir {
        Some(d) => Ok(d.clone()),
        None => dirs::data_dir()
            .map(|d| d.join("hallsync"))
            .context("no data directory: pass --data-dir or set HALLSYNC_DATA_DIR"),
    }
}

/// The system clock.
pub fn clock() -> Ts {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ts(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// A node made by `init`.
#[derive(Debug, Serialize)]
struct Initialised<'a> {
    node: &'a NodeConfig,
    data_dir: &'a Path,
}

/// What `repair` discarded.
#[derive(Debug, Serialize)]
struct Repaired<'a> {
    discarded: Option<&'a str>,
}

/// Runs a parsed command.
pub fn run(args: Args) -> Result<()> {
    let ctx = Ctx {
        dir: data_dir(&args)?,
        now: args.now,
        out: Out::new(args.json),
    };
    match args.command {
        Command::Init {
            id,
            name,
            region,
            level,
        } => {
            let hall = Hall::init(&ctx.dir, id, &name, region, level, StoreOptions::default())?;
            let made = Initialised {
                node: hall.node(),
                data_dir: &ctx.dir,
            };
            ctx.out.show(&made, |m| {
                say!(
                    "initialised {} node {} ({}, region {}) in {}",
                    m.node.level,
                    m.node.id,
                    m.node.name,
                    m.node.region,
                    m.data_dir.display()
                );
            })
        }
        Command::Item(cmd) => crate::item::run(cmd, &ctx),
        Command::Case(cmd) => crate::case::run(cmd, &ctx),
        Command::Order(cmd) => crate::order::run(cmd, &ctx),
        Command::Warning(cmd) => crate::warning::run(cmd, &ctx),
        Command::Stats(args) => crate::stats::run(args, &ctx),
        Command::Evaluate(args) => crate::stats::evaluate(args, &ctx),
        Command::Rules(cmd) => crate::rules::run(cmd, &ctx),
        Command::Report(cmd) => crate::report::run(cmd, &ctx),
        Command::Calendar(cmd) => crate::calendar::run(cmd, &ctx),
        Command::Doc(cmd) => crate::doc::run(cmd, &ctx),
        Command::Operator(cmd) => crate::operator::run(cmd, &ctx),
        // Certificates live in real time, whatever --now says.
        Command::Ca(cmd) => crate::ca::ca(cmd, clock(), &ctx.out),
        Command::Node(cmd) => crate::nodes::node(cmd, clock(), &ctx.out),
        Command::Run { bundle } => crate::run::run(&ctx.dir, &bundle, ctx.now),
        Command::Status => crate::status::run(&ctx),
        Command::Repair { accept_log_loss } => repair(&ctx, accept_log_loss),
        Command::Backup { output } => backup(&ctx, &output),
        Command::Restore { from, bundle } => match (from, bundle) {
            (Some(from), None) => crate::restore::from_backup(&ctx, &from, None),
            (Some(from), Some(bundle)) => crate::restore::from_backup(&ctx, &from, Some(&bundle))
                .and_then(|()| crate::restore::from_parent(&ctx, &bundle)),
            (None, Some(bundle)) => crate::restore::from_parent(&ctx, &bundle),
            (None, None) => unreachable!("clap requires one of --from and --bundle"),
        },
    }
}

/// `backup -o FILE`: the node (running or not) writes the file.
fn backup(ctx: &Ctx, output: &Path) -> Result<()> {
    let path = std::path::absolute(output)
        .with_context(|| format!("{}: not a path this computer can use", output.display()))?;
    let op = hallsync_api::ops::node::Backup { path };
    let done = ctx.target()?.call(op, ctx.now)?;
    ctx.out.show(&done, |b| {
        say!(
            "backed up {} (region {}): {} documents and {} of its own records, {} bytes, in {}",
            b.summary.node,
            b.summary.region,
            b.summary.documents,
            b.summary.local_records,
            b.bytes,
            b.path.display()
        );
    })
}

/// Opens the node accepting the loss of what a damaged log cannot replay.
fn repair(ctx: &Ctx, accept_log_loss: bool) -> Result<()> {
    if !accept_log_loss {
        bail!("repair discards acknowledged writes the damaged log holds; copy {} somewhere safe, then pass --accept-log-loss to confirm", ctx.dir.display());
    }
    let hall = Hall::open(
        &ctx.dir,
        StoreOptions {
            accept_log_loss: true,
            ..StoreOptions::default()
        },
    )?;
    let done = Repaired {
        discarded: hall.store().discarded_log(),
    };
    ctx.out.show(&done, |r| match r.discarded {
        Some(what) => say!(
            "opened; the log was damaged ({what}), and the writes from there on were discarded"
        ),
        None => say!("the write-ahead log was whole: nothing was discarded"),
    })
}
