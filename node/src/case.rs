//! `hallsync case`: accepting cases, recording what happens to them,
//! showing and listing them.

use anyhow::Result;
use clap::Subcommand;
use hallsync_api::ops::cases::{AcceptCase, CaseList, CaseOut, ListCases, RecordEvent, ShowCase};
use hallsync_hall::CaseRow;
use hallsync_model::case::{Outcome, Procedure, StartBasis};
use hallsync_model::{CaseState, EventKind, TimeLimit, Ts};

use crate::cli::Ctx;
use crate::order::order_table;
use crate::output::{amount, clock_off, due, opt, page_line, say, table};
use crate::parse;
use crate::warning::card_table;

#[derive(Debug, Subcommand)]
pub enum CaseCmd {
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
        #[arg(long, value_parser = parse::ts)]
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
        #[arg(long, value_parser = parse::ts)]
        at: Option<Ts>,
        #[command(subcommand)]
        kind: EventCmd,
    },
    /// Show a case with its events, state and clock.
    Show {
        /// Case number (at a hub, a hall's case number too) or document id.
        case: String,
    },
    /// List cases (open ones by default), soonest due first.
    List {
        /// Only cases in this state (a code 1-15 or a name such as handling).
        #[arg(long, value_parser = parse::state)]
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
        /// Skip this many first.
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventCmd {
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
        #[arg(long, value_parser = parse::procedure)]
        procedure: Procedure,
        /// Why it is needed.
        #[arg(long)]
        reason: String,
        /// Its approved end.
        #[arg(long, value_parser = parse::ts)]
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
        #[arg(long, value_parser = parse::limit)]
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
        #[arg(long, value_parser = parse::yuan)]
        yuan: i64,
    },
    /// Conclude the case.
    Conclude {
        /// approved, deficient (容缺) or refused.
        #[arg(long, value_parser = parse::outcome)]
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
    /// Forward a case the level above decides (上报件) to it.
    Forward {
        /// The hall or department it goes to.
        #[arg(long)]
        to: String,
    },
    /// File a case of an item that is not published (confidential, or
    /// disclosed on request) with the supervision office (备案).
    File {
        /// The office it is filed with.
        #[arg(long)]
        office: String,
    },
    /// The applicant's satisfaction rating, 1-5.
    Rate {
        /// 1 (very unsatisfied) to 5 (very satisfied).
        #[arg(long)]
        score: u8,
    },
}

impl EventCmd {
    fn kind(self) -> EventKind {
        match self {
            EventCmd::Accept => EventKind::Accepted,
            EventCmd::NotAccept { reason, formal } => EventKind::NotAccepted { reason, formal },
            EventCmd::SupplementRequest { materials } => {
                EventKind::SupplementRequested { materials }
            }
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
            EventCmd::Forward { to } => EventKind::Forwarded { to },
            EventCmd::File { office } => EventKind::Filed { office },
            EventCmd::Rate { score } => EventKind::Rated { score },
        }
    }
}

pub fn run(cmd: CaseCmd, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    let out = ctx.out;
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
            let op = AcceptCase {
                item,
                applicant,
                id_type,
                id_number,
                channel,
                number,
                by,
                at,
                receive_only,
            };
            out.show(&target.call(op, ctx.now)?, print_row)
        }
        CaseCmd::Event { case, by, at, kind } => {
            let op = RecordEvent {
                case,
                by,
                at,
                event: kind.kind(),
            };
            out.show(&target.call(op, ctx.now)?, print_row)
        }
        CaseCmd::Show { case } => out.show(&target.call(ShowCase { case }, ctx.now)?, print_case),
        CaseCmd::List {
            state,
            overdue,
            due_within,
            item,
            all,
            limit,
            offset,
        } => {
            let op = ListCases {
                state,
                overdue,
                due_within,
                item,
                all,
                offset,
                limit,
                ..ListCases::default()
            };
            let list = target.call(op, ctx.now)?;
            if !list.calendar_covers && !out.json() {
                eprintln!("warning: the calendar has no entries for {}; working days there count weekends only (import it with `hallsync calendar import`)", list.now.year());
            }
            out.show(&list, print_list)
        }
    }
}

/// What to flag about a case at a glance.
pub fn flags(row: &CaseRow) -> String {
    let c = &row.clock;
    let mut f = Vec::new();
    if c.over_statutory {
        f.push("OVER STATUTORY");
    } else if c.over_committed {
        f.push("OVERDUE");
    }
    if c.paused_now {
        f.push("paused");
    }
    if matches!(c.accepted, Some((_, StartBasis::DeemedOnReceipt))) {
        f.push("deemed accepted");
    }
    if c.disclosure_late {
        f.push(if row.view.published_at.is_some() {
            "published late"
        } else {
            "not published"
        });
    }
    if !row.view.conflicts.is_empty() {
        f.push("CONFLICT");
    }
    f.join(", ")
}

fn print_row(row: &CaseRow) {
    say!(
        "{}: {} ({}), committed due {}, statutory due {}{}",
        row.header.number,
        row.view.state,
        row.view.state.label(),
        due(row.clock.committed_due),
        due(row.clock.statutory_due),
        match flags(row) {
            f if f.is_empty() => String::new(),
            f => format!(" [{f}]"),
        }
    );
}

fn print_case(c: &CaseOut) {
    let row = &c.row;
    let h = &row.header;
    let k = &row.clock;
    let mut t = table(&["field", "value"]);
    let rows: Vec<(&str, String)> = vec![
        ("id", row.id.to_string()),
        ("number", h.number.clone()),
        (
            "item",
            format!("{} {} (v{})", h.item.impl_code, h.item.name, h.item.version),
        ),
        ("category", h.item.category.to_string()),
        ("department", h.item.agency.clone()),
        (
            "applicant",
            format!(
                "{} ({} {})",
                h.applicant.name, h.applicant.id_type, h.applicant.id_number
            ),
        ),
        ("channel", h.channel.clone()),
        ("hall", format!("{} ({})", h.hall, h.region)),
        (
            "state",
            format!("{} {}", row.view.state, row.view.state.label()),
        ),
        ("received", opt(row.view.received_at)),
        (
            "accepted",
            match k.accepted {
                Some((t, basis)) => format!("{t} ({basis:?})"),
                None => "-".into(),
            },
        ),
        (
            "limits",
            format!(
                "committed {}, statutory {}",
                h.item.committed_limit, h.item.statutory_limit
            ),
        ),
        ("committed due", due(k.committed_due)),
        ("statutory due", due(k.statutory_due)),
        ("time used", amount(k.used, k.unit)),
        ("paused", amount(k.paused, k.unit)),
        ("concluded", opt(row.view.concluded_at)),
        ("disclosure due", opt(k.disclosure_due)),
        ("published", opt(row.view.published_at)),
        ("flags", flags(row)),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    say!("{t}");
    let mut e = table(&["when", "event", "by", "node", "details"]);
    for ev in &c.case.events {
        let details = serde_json::to_value(&ev.kind)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .map(|m| {
                m.into_iter()
                    .filter(|(k, _)| k != "kind")
                    .map(|(k, v)| {
                        format!(
                            "{k}: {}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_string)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let doubt = c.clock_off.iter().find(|f| f.event == ev.id);
        e.add_row(vec![
            match doubt {
                Some(f) => format!("{} [{}]", ev.at, clock_off(f.ahead_secs)),
                None => ev.at.to_string(),
            },
            ev.kind.name().into(),
            ev.by.clone(),
            ev.node.to_string(),
            details,
        ]);
    }
    say!("{e}");
    if !c.clock_off.is_empty() {
        say!(
            "{} event(s) were stamped while their node's clock was off its parent's: their times, and the deadlines and cards reckoned from them, may be wrong",
            c.clock_off.len()
        );
    }
    for conflict in &row.view.conflicts {
        say!(
            "conflict: event {} ({}): {}",
            conflict.event,
            conflict.kind,
            conflict.reason
        );
    }
    if !c.cards.is_empty() {
        say!("supervision cards:");
        say!("{}", card_table(&c.cards));
    }
    if !c.orders.is_empty() {
        say!("supervision orders about this case:");
        say!("{}", order_table(&c.orders));
    }
}

fn print_list(list: &CaseList) {
    let mut t = table(&[
        "case",
        "item",
        "applicant",
        "state",
        "accepted",
        "committed due",
        "statutory due",
        "used",
        "flags",
    ]);
    for r in &list.page.items {
        t.add_row(vec![
            r.header.number.clone(),
            r.header.item.name.clone(),
            r.header.applicant.masked_name(),
            format!("{} {}", r.view.state.code(), r.view.state.label()),
            opt(r.clock.accepted.map(|a| a.0)),
            due(r.clock.committed_due),
            due(r.clock.statutory_due),
            amount(r.clock.used, r.clock.unit),
            flags(r),
        ]);
    }
    say!("{t}");
    say!("{}", page_line("case(s)", &list.page, list.now));
}
