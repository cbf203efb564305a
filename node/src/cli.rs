//! Command-line interface.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use hallsync_hall::import::{items_from_table, read_table};
use hallsync_hall::{CaseFilter, Hall, NewCase, NewOrder};
use hallsync_model::calendar::parse_office_hours;
use hallsync_model::case::{Applicant, Outcome, Procedure};
use hallsync_model::catalogue::ItemContent;
use hallsync_model::order::{Card, OrderState, Resolution, Rule};
use hallsync_model::{
    CaseState, DocId, EventKind, ItemStatus, Level, NodeId, RegionCode, ReviewAction, TimeLimit, Ts,
};
use hallsync_store::StoreOptions;

use crate::fed::{self, CaCmd, NodeCmd};
use crate::output::Out;

/// hallsync: a service hall's node. It keeps the hall's power catalogue and
/// cases, works fully offline, and replicates with the levels above and
/// below over mutual-TLS QUIC.
#[derive(Debug, Parser)]
#[command(name = "hallsync", version, about, long_about = None)]
pub struct Args {
    /// Data directory of the node.
    #[arg(long, global = true, env = "HALLSYNC_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    json: bool,
    /// Treat this time as now ('YYYY-MM-DD HH:MM', China Standard Time):
    /// for reproducible reports and rehearsals. Certificates (`ca`, `node`)
    /// always use the real clock.
    #[arg(long, global = true, env = "HALLSYNC_NOW", value_name = "TIME", value_parser = parse_ts)]
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
        #[arg(long, value_parser = parse_node)]
        id: NodeId,
        /// Name of the hall.
        #[arg(long)]
        name: String,
        /// Region code of the hall (e.g. 140212101 for a township).
        #[arg(long, value_parser = parse_region)]
        region: RegionCode,
        /// Level: city, county or township.
        #[arg(long, value_parser = parse_level)]
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
    /// The holiday calendar.
    #[command(subcommand)]
    Calendar(CalendarCmd),
    /// Raw Automerge documents.
    #[command(subcommand)]
    Doc(DocCmd),
    /// The federation CA (administrators).
    #[command(subcommand)]
    Ca(CaCmd),
    /// Federation nodes: certificates, topology and bundles (administrators).
    #[command(subcommand)]
    Node(NodeCmd),
    /// Run the node: listen for children, dial the parent, replicate both
    /// ways until Ctrl-C or SIGTERM. Creates the data directory from the
    /// bundle on first run.
    Run {
        /// The node's bundle directory (from `hallsync node add`).
        #[arg(long, env = "HALLSYNC_BUNDLE", value_name = "DIR")]
        bundle: PathBuf,
    },
    /// Show the links of the node: connected or not, last sync, backlog.
    Status,
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
const OWN_CRATES: [&str; 7] = [
    "hallsync",
    "hallsync_model",
    "hallsync_store",
    "hallsync_hall",
    "hallsync_sync",
    "hallsync_net",
    "hallsync_pki",
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

#[derive(Debug, Subcommand)]
enum ItemCmd {
    /// Add an item (or revise one) as a draft for legal review.
    Add(Box<ItemFields>),
    /// Import a catalogue spreadsheet (.csv or .xlsx) as published by a legal office.
    Import {
        /// The spreadsheet.
        file: PathBuf,
        /// Who is importing.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
        /// Record the items as approved and published by this person (the
        /// sheet is an already published list); otherwise they are drafts.
        #[arg(long)]
        publish_by: Option<String>,
    },
    /// List the items.
    List {
        /// Only items in this status (draft, approved, returned, published, suspended, revoked).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one item.
    Show {
        /// Implementation code.
        code: String,
    },
    /// Record a legal review decision.
    Review {
        /// Implementation code.
        code: String,
        /// The decision.
        #[arg(long, value_enum)]
        decision: Decision,
        /// The reviewer.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
        /// Why (required to return).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Publish an approved item, or resume a suspended one.
    Publish(ReviewArgs),
    /// Suspend a published item.
    Suspend(ReviewArgs),
    /// Revoke an item for good.
    Revoke(ReviewArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Decision {
    /// Approve the draft.
    Approve,
    /// Return it to the agency.
    Return,
}

#[derive(Debug, ClapArgs)]
struct ReviewArgs {
    /// Implementation code.
    code: String,
    /// Who is acting.
    #[arg(long, env = "HALLSYNC_OPERATOR")]
    by: String,
    /// Why (required to suspend or revoke).
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Debug, ClapArgs)]
struct ItemFields {
    /// 实施编码 (≤ 24 letters or digits).
    #[arg(long)]
    code: String,
    /// 基本编码 (≤ 10 letters or digits).
    #[arg(long)]
    basic_code: String,
    /// 事项名称.
    #[arg(long)]
    name: String,
    /// 权力类别: a name such as 行政许可 or a GB/T 39046 code such as 01.
    #[arg(long)]
    category: String,
    /// 实施主体.
    #[arg(long)]
    agency: String,
    /// 法定时限, e.g. 20wd or 20个工作日.
    #[arg(long)]
    statutory: String,
    /// 承诺时限, e.g. 10wd.
    #[arg(long)]
    committed: String,
    /// 实施主体编码 (18-character credit code).
    #[arg(long, default_value = "")]
    agency_code: String,
    /// 承办机构.
    #[arg(long, default_value = "")]
    office: String,
    /// 设定依据.
    #[arg(long, default_value = "")]
    legal_basis: String,
    /// 办件类型: 即办件, 承诺件, 上报件, 并联件.
    #[arg(long, default_value = "承诺件")]
    case_type: String,
    /// 行使层级 1-7 (5 township, 4 county).
    #[arg(long, default_value = "5")]
    exercise_level: String,
    /// 申请材料: 'name|原件|必需; …'.
    #[arg(long, default_value = "")]
    materials: String,
    /// 办理流程: '受理→审核→决定→办结'.
    #[arg(long, default_value = "")]
    steps: String,
    /// 收费: 'name|standard|basis; …' or 不收费.
    #[arg(long, default_value = "")]
    fees: String,
    /// 公开方式: 主动公开, 依申请公开, 不予公开.
    #[arg(long, default_value = "主动公开")]
    disclosure: String,
    /// 咨询电话.
    #[arg(long, default_value = "")]
    consult_phone: String,
    /// 监督投诉电话.
    #[arg(long, default_value = "")]
    complaint_phone: String,
    /// Who drafts it.
    #[arg(long, env = "HALLSYNC_OPERATOR")]
    by: String,
}

#[derive(Debug, Subcommand)]
enum CaseCmd {
    /// Receive a new application and (unless --receive-only) accept it.
    Accept {
        /// Implementation code of the item.
        #[arg(long)]
        item: String,
        /// Applicant's name.
        #[arg(long)]
        applicant: String,
        /// Applicant's identity document type.
        #[arg(long, default_value = "身份证")]
        id_type: String,
        /// Applicant's identity document number.
        #[arg(long, default_value = "")]
        id_number: String,
        /// How it arrived: window, online, mobile, mail, agent.
        #[arg(long, default_value = "window")]
        channel: String,
        /// Case number (default: implementation code, date and serial).
        #[arg(long)]
        number: Option<String>,
        /// The handler at the window.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
        /// When it was received (default: now).
        #[arg(long, value_parser = parse_ts)]
        at: Option<Ts>,
        /// Only record the receipt; accept later with `case event CASE accept`.
        #[arg(long)]
        receive_only: bool,
    },
    /// Record what happened to a case.
    Event {
        /// Case number or document id.
        case: String,
        /// Who did it.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
        /// When (default: now).
        #[arg(long, value_parser = parse_ts)]
        at: Option<Ts>,
        #[command(subcommand)]
        kind: EventCmd,
    },
    /// Show a case with its events, state and clock.
    Show {
        /// Case number or document id.
        case: String,
    },
    /// List cases (open ones by default), soonest due first.
    List {
        /// Only cases in this state (a code 1-15 or a name such as handling).
        #[arg(long, value_parser = parse_state)]
        state: Option<CaseState>,
        /// Only cases past their committed due time.
        #[arg(long)]
        overdue: bool,
        /// Only cases due within this many working days.
        #[arg(long, value_name = "DAYS")]
        due_within: Option<u32>,
        /// Only cases under this item.
        #[arg(long)]
        item: Option<String>,
        /// Include concluded and closed cases.
        #[arg(long)]
        all: bool,
        /// Show at most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
enum OrderCmd {
    /// Issue an order to a hall below this one about one of its cases
    /// (held here once that hall has synced).
    Issue {
        /// Region code of the supervised hall.
        #[arg(long, value_parser = parse_region)]
        unit: RegionCode,
        /// The case: its number at that hall, or its document id.
        #[arg(long)]
        case: String,
        /// The rule broken: case_time_limit, special_procedure,
        /// pre_acceptance, certificate_delivery, complaint_reply,
        /// disclosure or anomaly.
        #[arg(long, value_parser = parse_rule)]
        rule: Rule,
        /// Warning level: notice, yellow or red.
        #[arg(long, value_parser = parse_card, default_value = "notice")]
        card: Card,
        /// What the hall is to put right.
        #[arg(long)]
        reason: String,
        /// The department within the hall, if the order names one.
        #[arg(long, default_value = "")]
        department: String,
        /// How long the hall has to reply, e.g. 3wd or 24h.
        #[arg(long, value_parser = parse_limit, default_value = "3wd")]
        reply_within: TimeLimit,
        /// Who issues it.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
    },
    /// Reply to an order addressed to this hall.
    Reply {
        /// The order: its key (e.g. cn-212.1) or document id.
        order: String,
        /// What was done.
        #[arg(long)]
        text: String,
        /// Who replies.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
    },
    /// Close an order this hall issued, with its result.
    Close {
        /// The order: its key (e.g. cn-212.1) or document id.
        order: String,
        /// The result: rectified, not_rectified or withdrawn.
        #[arg(long, value_parser = parse_resolution)]
        result: Resolution,
        /// Remarks.
        #[arg(long)]
        text: String,
        /// Who closes it.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
    },
    /// Show an order with its replies.
    Show {
        /// The order: its key (e.g. cn-212.1) or document id.
        order: String,
    },
    /// List the orders held here (issued here, addressed to this hall or,
    /// at a hub, to the halls below), soonest reply due first.
    List {
        /// Only orders not yet closed.
        #[arg(long)]
        open: bool,
        /// Only orders whose reply came late or is missing past its due time.
        #[arg(long)]
        late: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EventCmd {
    /// Accept a received case.
    Accept,
    /// Do not accept it.
    NotAccept {
        /// Reason given to the applicant.
        #[arg(long)]
        reason: String,
        /// A formal decision not to accept (不予受理) rather than "not handled here" (不受理).
        #[arg(long)]
        formal: bool,
    },
    /// Ask for missing materials (pauses the clock once accepted).
    SupplementRequest {
        /// The materials asked for, all at once.
        #[arg(long)]
        materials: String,
    },
    /// The requested materials arrived.
    SupplementComplete,
    /// A handling step begins.
    StepStart {
        /// Step name.
        #[arg(long)]
        step: String,
    },
    /// A handling step ends.
    StepFinish {
        /// Step name.
        #[arg(long)]
        step: String,
        /// Send it back instead of passing it on.
        #[arg(long)]
        send_back: bool,
        /// The handler's opinion.
        #[arg(long, default_value = "")]
        opinion: String,
    },
    /// A special procedure (hearing, testing …) stops the clock.
    SpecialStart {
        /// hearing, bidding, auction, testing, inspection, quarantine, appraisal, expert_review.
        #[arg(long, value_parser = parse_procedure)]
        procedure: Procedure,
        /// Why it is needed.
        #[arg(long)]
        reason: String,
        /// Its approved end.
        #[arg(long, value_parser = parse_ts)]
        until: Option<Ts>,
    },
    /// The special procedure ended.
    SpecialEnd {
        /// Its result.
        #[arg(long, default_value = "")]
        result: String,
    },
    /// Extend the statutory deadline (with the agency head's approval).
    Extend {
        /// How much, in the statutory limit's unit, e.g. 10wd.
        #[arg(long, value_parser = parse_limit)]
        amount: TimeLimit,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Charge a fee.
    Fee {
        /// Fee name, as in the catalogue.
        #[arg(long)]
        name: String,
        /// Amount in yuan, e.g. 12.50.
        #[arg(long, value_parser = parse_yuan)]
        yuan: i64,
    },
    /// Conclude the case.
    Conclude {
        /// approved, deficient (容缺) or refused.
        #[arg(long, value_parser = parse_outcome)]
        outcome: Outcome,
        /// Opinion; the reasons for a refusal.
        #[arg(long, default_value = "")]
        opinion: String,
        /// Certificate name and number.
        #[arg(long, default_value = "")]
        certificate: String,
    },
    /// The applicant withdrew.
    Withdraw {
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Recall the decision (撤回).
    Recall {
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Revoke the decision (撤销).
    Revoke {
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// The certificate reached the applicant.
    Deliver {
        /// How.
        #[arg(long, default_value = "window")]
        method: String,
    },
    /// The case was published online.
    Publish,
    /// The applicant's satisfaction rating, 1-5.
    Rate {
        /// 1 (very unsatisfied) to 5 (very satisfied).
        #[arg(long)]
        score: u8,
    },
}

#[derive(Debug, Subcommand)]
enum CalendarCmd {
    /// Import holidays and make-up working days ('date,kind,name' lines).
    Import {
        /// The calendar file.
        file: PathBuf,
        /// Office hours for working-hour limits, e.g. 09:00-12:00,13:30-17:30.
        #[arg(long)]
        office_hours: Option<String>,
    },
    /// Show the calendar in force.
    Show {
        /// Only this year.
        #[arg(long)]
        year: Option<i32>,
    },
}

#[derive(Debug, Subcommand)]
enum DocCmd {
    /// Write a document's raw Automerge bytes (any Automerge implementation opens them).
    Export {
        /// Document id, e.g. case:140212101:XK-20261123-0001.
        id: String,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print a document as JSON.
    Show {
        /// Document id.
        id: String,
    },
    /// Merge a document file exported by another node.
    Import {
        /// The file.
        file: PathBuf,
    },
}

fn parse_ts(s: &str) -> Result<Ts, String> {
    Ts::parse(s).map_err(|e| e.to_string())
}
pub(crate) fn parse_node(s: &str) -> Result<NodeId, String> {
    NodeId::parse(s).map_err(|e| e.to_string())
}
pub(crate) fn parse_region(s: &str) -> Result<RegionCode, String> {
    RegionCode::parse(s).map_err(|e| e.to_string())
}
pub(crate) fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
        .map_err(|e: hallsync_model::ids::IdError| e.to_string())
}
fn parse_state(s: &str) -> Result<CaseState, String> {
    CaseState::parse(s).ok_or_else(|| format!("{s:?} is not a state: use a code 1-15 or a name such as received, accepted, handling, approved"))
}
fn parse_limit(s: &str) -> Result<TimeLimit, String> {
    TimeLimit::parse(s).map_err(|e| e.to_string())
}
/// Parses one of a fixed set of names, listing them all when it fails.
fn parse_named<T: Copy + std::fmt::Display>(what: &str, all: &[T], s: &str) -> Result<T, String> {
    all.iter()
        .copied()
        .find(|v| v.to_string() == s)
        .ok_or_else(|| {
            let names: Vec<String> = all.iter().map(T::to_string).collect();
            format!("{s:?} is not a {what}: use {}", names.join(", "))
        })
}
fn parse_rule(s: &str) -> Result<Rule, String> {
    parse_named("rule", Rule::ALL, s)
}
fn parse_card(s: &str) -> Result<Card, String> {
    parse_named("card", Card::ALL, s)
}
fn parse_resolution(s: &str) -> Result<Resolution, String> {
    parse_named("result", Resolution::ALL, s)
}
fn parse_procedure(s: &str) -> Result<Procedure, String> {
    Procedure::parse(s).ok_or_else(|| format!("{s:?} is not a special procedure: use hearing, bidding, auction, testing, inspection, quarantine, appraisal or expert_review"))
}
fn parse_outcome(s: &str) -> Result<Outcome, String> {
    Outcome::parse(s)
        .ok_or_else(|| format!("{s:?} is not an outcome: use approved, deficient or refused"))
}
fn parse_yuan(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an amount in yuan such as 12.50");
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if frac.len() > 2
        || whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let w: i64 = whole.parse().map_err(|_| bad())?;
    let f: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    w.checked_mul(100)
        .and_then(|c| c.checked_add(f))
        .filter(|v| *v > 0)
        .ok_or_else(bad)
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
fn clock() -> Ts {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ts(i64::try_from(secs).unwrap_or(i64::MAX))
}

fn now(args: &Args) -> Ts {
    args.now.unwrap_or_else(clock)
}

/// Runs a parsed command.
pub fn run(args: Args) -> Result<()> {
    let dir = data_dir(&args)?;
    let now = now(&args);
    let out = Out::new(args.json);
    match args.command {
        Command::Init {
            id,
            name,
            region,
            level,
        } => {
            let hall = Hall::init(&dir, id, &name, region, level, StoreOptions::default())?;
            out.node(hall.node(), &dir)
        }
        Command::Item(cmd) => with_node(&dir, |hall| item(hall, cmd, now, &out)),
        Command::Case(cmd) => with_node(&dir, |hall| case(hall, cmd, now, &out)),
        Command::Order(cmd) => with_node(&dir, |hall| order(hall, cmd, now, &out)),
        Command::Calendar(cmd) => with_node(&dir, |hall| calendar(hall, cmd, now, &out)),
        Command::Doc(cmd) => with_node(&dir, |hall| doc(hall, cmd, now, &out)),
        // Certificates live in real time, whatever --now says.
        Command::Ca(cmd) => fed::ca(cmd, clock(), &out),
        Command::Node(cmd) => fed::node(cmd, clock(), &out),
        Command::Run { bundle } => fed::run(&dir, &bundle),
        Command::Status => fed::status(&dir, &out),
        Command::Repair { accept_log_loss } => repair(&dir, accept_log_loss, &out),
    }
}

/// Opens the node accepting the loss of what a damaged log cannot replay.
fn repair(dir: &Path, accept_log_loss: bool, out: &Out) -> Result<()> {
    if !accept_log_loss {
        bail!("repair discards acknowledged writes the damaged log holds; copy {} somewhere safe, then pass --accept-log-loss to confirm", dir.display());
    }
    let hall = Hall::open(
        dir,
        StoreOptions {
            accept_log_loss: true,
            ..StoreOptions::default()
        },
    )?;
    out.repaired(hall.store().discarded_log())
}

/// Opens the node and runs `f` inside a span naming it, so every log line
/// says which hall it came from.
fn with_node(dir: &Path, f: impl FnOnce(&Hall) -> Result<()>) -> Result<()> {
    let hall = Hall::open(dir, StoreOptions::default())?;
    let _span =
        tracing::info_span!("node", id = %hall.node().id, region = %hall.node().region).entered();
    f(&hall)
}

fn item(hall: &Hall, cmd: ItemCmd, now: Ts, out: &Out) -> Result<()> {
    match cmd {
        ItemCmd::Add(f) => {
            let pairs = [
                ("impl_code", f.code.as_str()),
                ("basic_code", &f.basic_code),
                ("name", &f.name),
                ("category", &f.category),
                ("agency", &f.agency),
                ("statutory_limit", &f.statutory),
                ("committed_limit", &f.committed),
                ("agency_code", &f.agency_code),
                ("office", &f.office),
                ("legal_basis", &f.legal_basis),
                ("case_type", &f.case_type),
                ("exercise_level", &f.exercise_level),
                ("materials", &f.materials),
                ("steps", &f.steps),
                ("fees", &f.fees),
                ("disclosure", &f.disclosure),
                ("consult_phone", &f.consult_phone),
                ("complaint_phone", &f.complaint_phone),
            ];
            let content = ItemContent::from_row(pairs)?;
            let (id, change) = hall.add_item(&content, &f.by, now)?;
            out.item_change(&id, change)
        }
        ItemCmd::Import {
            file,
            by,
            publish_by,
        } => {
            let table = read_table(&file)?;
            let rows = items_from_table(&table)?;
            let show_progress = !out.json() && rows.len() > 200;
            let report =
                hall.import_items(rows, &by, publish_by.as_deref(), now, |done, total| {
                    if show_progress {
                        eprintln!("  {done}/{total} rows");
                    }
                })?;
            out.import_report(&file, &report)?;
            if report.created + report.revised + report.unchanged == 0
                && !report.problems.is_empty()
            {
                bail!("no row of {} could be imported", file.display());
            }
            if !report.problems.is_empty() {
                bail!("{} row(s) were not imported; fix them and import the file again (good rows are already stored)", report.problems.len());
            }
            Ok(())
        }
        ItemCmd::List { status } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(
                    [ItemStatus::Draft, ItemStatus::Approved, ItemStatus::Returned, ItemStatus::Published, ItemStatus::Suspended, ItemStatus::Revoked]
                        .into_iter()
                        .find(|x| x.as_str() == s)
                        .with_context(|| format!("{s:?} is not a status: use draft, approved, returned, published, suspended or revoked"))?,
                ),
            };
            let items: Vec<_> = hall
                .items()?
                .into_iter()
                .filter(|(_, i)| status.is_none_or(|s| i.view().status == s))
                .collect();
            out.items(&items)
        }
        ItemCmd::Show { code } => {
            let (id, item) = hall.item(&code)?;
            out.item(&id, &item)
        }
        ItemCmd::Review {
            code,
            decision,
            by,
            reason,
        } => {
            let action = match decision {
                Decision::Approve => ReviewAction::Approved,
                Decision::Return => ReviewAction::Returned,
            };
            let view = hall.review_item(&code, action, &by, &reason, now)?;
            out.item_status(&code, &view)
        }
        ItemCmd::Publish(a) => review(hall, a, ReviewAction::Published, now, out),
        ItemCmd::Suspend(a) => review(hall, a, ReviewAction::Suspended, now, out),
        ItemCmd::Revoke(a) => review(hall, a, ReviewAction::Revoked, now, out),
    }
}

fn review(hall: &Hall, a: ReviewArgs, action: ReviewAction, now: Ts, out: &Out) -> Result<()> {
    let view = hall.review_item(&a.code, action, &a.by, &a.reason, now)?;
    out.item_status(&a.code, &view)
}

fn event_kind(cmd: EventCmd) -> EventKind {
    match cmd {
        EventCmd::Accept => EventKind::Accepted,
        EventCmd::NotAccept { reason, formal } => EventKind::NotAccepted { reason, formal },
        EventCmd::SupplementRequest { materials } => EventKind::SupplementRequested { materials },
        EventCmd::SupplementComplete => EventKind::SupplementCompleted,
        EventCmd::StepStart { step } => EventKind::StepStarted { step },
        EventCmd::StepFinish {
            step,
            send_back,
            opinion,
        } => EventKind::StepFinished {
            step,
            pass: !send_back,
            opinion,
        },
        EventCmd::SpecialStart {
            procedure,
            reason,
            until,
        } => EventKind::SpecialStarted {
            procedure,
            reason,
            until,
        },
        EventCmd::SpecialEnd { result } => EventKind::SpecialEnded { result },
        EventCmd::Extend { amount, reason } => EventKind::Extended { amount, reason },
        EventCmd::Fee { name, yuan } => EventKind::FeeCharged {
            name,
            amount_fen: yuan,
        },
        EventCmd::Conclude {
            outcome,
            opinion,
            certificate,
        } => EventKind::Concluded {
            outcome,
            opinion,
            certificate,
        },
        EventCmd::Withdraw { reason } => EventKind::Withdrawn { reason },
        EventCmd::Recall { reason } => EventKind::Recalled { reason },
        EventCmd::Revoke { reason } => EventKind::Revoked { reason },
        EventCmd::Deliver { method } => EventKind::CertificateDelivered { method },
        EventCmd::Publish => EventKind::Published,
        EventCmd::Rate { score } => EventKind::Rated { score },
    }
}

fn case(hall: &Hall, cmd: CaseCmd, now: Ts, out: &Out) -> Result<()> {
    match cmd {
        CaseCmd::Accept {
            item,
            applicant,
            id_type,
            id_number,
            channel,
            number,
            by,
            at,
            receive_only,
        } => {
            let row = hall.accept_case(
                NewCase {
                    item_code: item,
                    number,
                    applicant: Applicant {
                        name: applicant,
                        id_type,
                        id_number,
                    },
                    channel,
                    by,
                    at: at.unwrap_or(now),
                    accept: !receive_only,
                },
                now,
            )?;
            out.case_row(&row)
        }
        CaseCmd::Event { case, by, at, kind } => {
            let row = hall.record_event(&case, event_kind(kind), &by, at.unwrap_or(now), now)?;
            out.case_row(&row)
        }
        CaseCmd::Show { case } => {
            let (case, row) = hall.case(&case, now)?;
            let orders = hall.orders_about(&row.id, now)?;
            out.case(&case, &row, &orders)
        }
        CaseCmd::List {
            state,
            overdue,
            due_within,
            item,
            all,
            limit,
        } => {
            let filter = CaseFilter {
                state,
                overdue,
                due_within,
                item,
                include_closed: all,
            };
            let rows = hall.list_cases(&filter, now)?;
            let cal = hall.calendar()?;
            let uncovered = now.year();
            if !cal.covers(uncovered) && !out.json() {
                eprintln!("warning: the calendar has no entries for {uncovered}; working days there count weekends only (import it with `hallsync calendar import`)");
            }
            out.case_rows(&rows, limit, now)
        }
    }
}

fn order(hall: &Hall, cmd: OrderCmd, now: Ts, out: &Out) -> Result<()> {
    match cmd {
        OrderCmd::Issue {
            unit,
            case,
            rule,
            card,
            reason,
            department,
            reply_within,
            by,
        } => {
            let row = hall.issue_order(
                NewOrder {
                    unit,
                    department,
                    case,
                    rule,
                    card,
                    reason,
                    by,
                    reply_within,
                },
                now,
            )?;
            out.order_row(&row)
        }
        OrderCmd::Reply { order, text, by } => {
            out.order_row(&hall.reply_order(&order, &text, &by, now)?)
        }
        OrderCmd::Close {
            order,
            result,
            text,
            by,
        } => out.order_row(&hall.close_order(&order, result, &text, &by, now)?),
        OrderCmd::Show { order } => out.order(&hall.order(&order, now)?),
        OrderCmd::List { open, late } => {
            let rows: Vec<_> = hall
                .orders(now)?
                .into_iter()
                .filter(|r| !open || r.view.state != OrderState::Closed)
                .filter(|r| !late || r.view.reply_late)
                .collect();
            out.order_rows(&rows, now)
        }
    }
}

fn calendar(hall: &Hall, cmd: CalendarCmd, now: Ts, out: &Out) -> Result<()> {
    match cmd {
        CalendarCmd::Import { file, office_hours } => {
            let hours = office_hours
                .as_deref()
                .map(parse_office_hours)
                .transpose()
                .map_err(anyhow::Error::msg)
                .context("--office-hours")?;
            let meta = std::fs::metadata(&file).with_context(|| file.display().to_string())?;
            if meta.len() > 1 << 20 {
                bail!("{}: a calendar file is at most 1 MiB", file.display());
            }
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
            let report = hall.import_calendar(&text, hours, now)?;
            out.calendar_import(&report)
        }
        CalendarCmd::Show { year } => {
            let years = hall.calendar_years()?;
            out.calendar(&years, year)
        }
    }
}

fn doc(hall: &Hall, cmd: DocCmd, now: Ts, out: &Out) -> Result<()> {
    match cmd {
        DocCmd::Export { id, output } => {
            let id = DocId::parse(&id)?;
            let bytes = hall.export_doc(&id)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, &bytes).with_context(|| path.display().to_string())?;
                    if !out.json() {
                        eprintln!("wrote {} bytes to {}", bytes.len(), path.display());
                    }
                    Ok(())
                }
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                    Ok(())
                }
            }
        }
        DocCmd::Show { id } => {
            let id = DocId::parse(&id)?;
            let v = hall.show_doc(&id)?;
            crate::output::say!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        DocCmd::Import { file } => {
            let meta = std::fs::metadata(&file).with_context(|| file.display().to_string())?;
            if meta.len() > hallsync_hall::MAX_DOC_BYTES as u64 {
                bail!(
                    "{}: a document file is at most {} bytes",
                    file.display(),
                    hallsync_hall::MAX_DOC_BYTES
                );
            }
            let bytes = std::fs::read(&file).with_context(|| file.display().to_string())?;
            let id = hall
                .import_doc(&bytes, now)
                .with_context(|| format!("{} was not imported", file.display()))?;
            out.imported(&id)
        }
    }
}
