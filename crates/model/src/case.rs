//! Cases (办件, DOMAIN §3) as append-only event logs.
//!
//! A case is a header (what was applied for, by whom, under which item
//! version and limits) plus a set of events. Everything else — the standard
//! state code, pauses, extensions, due times, time used — is derived by
//! replaying the events in (time, id) order through one state machine
//! ([`Case::view`]). Because the order depends only on the events
//! themselves, every level that holds the same events derives the same
//! answer, whatever order they arrived in. An event that does not fit where
//! it falls (two decisions made concurrently at two levels) is kept and
//! listed as a conflict: a supervision finding, not a silent overwrite.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::calendar::Calendar;
use crate::catalogue::{CaseType, Category, Disclosure};
use crate::clock::{self, LimitUnit, Pause, TimeLimit};
use crate::ids::{IdError, LogId, NodeId, RegionCode};
use crate::time::{Ts, DAY, EARLIEST, HOUR, LATEST};
use crate::valid::{self, Invalid, MAX_ENTRIES, MAX_STR};

/// The standard state codes of the national interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CaseState {
    /// 1 已接件.
    Received = 1,
    /// 2 已撤件.
    Withdrawn = 2,
    /// 3 受理.
    Accepted = 3,
    /// 4 不受理.
    NotAccepted = 4,
    /// 5 不予受理.
    Rejected = 5,
    /// 6 补正开始.
    SupplementStarted = 6,
    /// 7 补正结束.
    SupplementEnded = 7,
    /// 8 部门办理.
    Handling = 8,
    /// 9 特别程序开始.
    SpecialStarted = 9,
    /// 10 特别程序结束.
    SpecialEnded = 10,
    /// 11 办结(准予).
    Approved = 11,
    /// 12 办结(容缺准予).
    ApprovedWithDeficiencies = 12,
    /// 13 办结(不予许可).
    Refused = 13,
    /// 14 撤回.
    Recalled = 14,
    /// 15 撤销.
    Revoked = 15,
}

const STATES: [(CaseState, &str, &str); 15] = [
    (CaseState::Received, "received", "已接件"),
    (CaseState::Withdrawn, "withdrawn", "已撤件"),
    (CaseState::Accepted, "accepted", "受理"),
    (CaseState::NotAccepted, "not_accepted", "不受理"),
    (CaseState::Rejected, "rejected", "不予受理"),
    (CaseState::SupplementStarted, "supplement", "补正开始"),
    (CaseState::SupplementEnded, "supplemented", "补正结束"),
    (CaseState::Handling, "handling", "部门办理"),
    (CaseState::SpecialStarted, "special", "特别程序开始"),
    (CaseState::SpecialEnded, "special_ended", "特别程序结束"),
    (CaseState::Approved, "approved", "办结(准予)"),
    (
        CaseState::ApprovedWithDeficiencies,
        "approved_deficient",
        "办结(容缺)",
    ),
    (CaseState::Refused, "refused", "办结(不予)"),
    (CaseState::Recalled, "recalled", "撤回"),
    (CaseState::Revoked, "revoked", "撤销"),
];

impl CaseState {
    /// The standard code (1–15).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The state of a standard code.
    pub fn from_code(code: u8) -> Option<CaseState> {
        STATES.iter().map(|s| s.0).find(|s| s.code() == code)
    }

    /// English name used on the command line.
    pub fn name(self) -> &'static str {
        STATES.iter().find(|s| s.0 == self).map_or("?", |s| s.1)
    }

    /// Chinese name.
    pub fn label(self) -> &'static str {
        STATES.iter().find(|s| s.0 == self).map_or("?", |s| s.2)
    }

    /// Parses a code or an English name.
    pub fn parse(s: &str) -> Option<CaseState> {
        let t = s.trim();
        t.parse::<u8>()
            .ok()
            .and_then(CaseState::from_code)
            .or_else(|| STATES.iter().find(|x| x.1 == t || x.2 == t).map(|x| x.0))
    }

    /// Only 11–13 are concluded.
    pub fn is_concluded(self) -> bool {
        matches!(
            self,
            CaseState::Approved | CaseState::ApprovedWithDeficiencies | CaseState::Refused
        )
    }

    /// Whether the case is still being worked on (not closed, concluded,
    /// recalled or revoked).
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            CaseState::Withdrawn
                | CaseState::NotAccepted
                | CaseState::Rejected
                | CaseState::Recalled
                | CaseState::Revoked
        ) && !self.is_concluded()
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

/// Result of a concluded case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Approved (11).
    Approved,
    /// Approved with deficiencies to be made good later (12, 容缺).
    ApprovedWithDeficiencies,
    /// Refused (13); needs reasons.
    Refused,
}

impl Outcome {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::ApprovedWithDeficiencies => "approved_with_deficiencies",
            Outcome::Refused => "refused",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "approved" => Some(Outcome::Approved),
            "approved_with_deficiencies" | "deficient" => Some(Outcome::ApprovedWithDeficiencies),
            "refused" => Some(Outcome::Refused),
            _ => None,
        }
    }

    fn state(self) -> CaseState {
        match self {
            Outcome::Approved => CaseState::Approved,
            Outcome::ApprovedWithDeficiencies => CaseState::ApprovedWithDeficiencies,
            Outcome::Refused => CaseState::Refused,
        }
    }
}

/// Special procedures that stop the clock (Licensing Law art. 45).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Procedure {
    /// 听证.
    Hearing,
    /// 招标.
    Bidding,
    /// 拍卖.
    Auction,
    /// 检验.
    Testing,
    /// 检测.
    Inspection,
    /// 检疫.
    Quarantine,
    /// 鉴定.
    Appraisal,
    /// 专家评审.
    ExpertReview,
}

const PROCEDURES: [(Procedure, &str, &str); 8] = [
    (Procedure::Hearing, "hearing", "听证"),
    (Procedure::Bidding, "bidding", "招标"),
    (Procedure::Auction, "auction", "拍卖"),
    (Procedure::Testing, "testing", "检验"),
    (Procedure::Inspection, "inspection", "检测"),
    (Procedure::Quarantine, "quarantine", "检疫"),
    (Procedure::Appraisal, "appraisal", "鉴定"),
    (Procedure::ExpertReview, "expert_review", "专家评审"),
];

impl Procedure {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        PROCEDURES.iter().find(|p| p.0 == self).map_or("?", |p| p.1)
    }

    /// Parses a stored or Chinese name.
    pub fn parse(s: &str) -> Option<Procedure> {
        let t = s.trim();
        PROCEDURES
            .iter()
            .find(|p| p.1 == t || p.2 == t)
            .map(|p| p.0)
    }
}

/// What happened to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The application reached the hall.
    Received,
    /// Missing materials requested (before or after acceptance).
    SupplementRequested {
        /// The materials asked for, all at once (一次性告知).
        materials: String,
    },
    /// The requested materials arrived.
    SupplementCompleted,
    /// Formally accepted (受理).
    Accepted,
    /// Not accepted.
    NotAccepted {
        /// Reason given to the applicant.
        reason: String,
        /// `true` for a formal decision not to accept (5 不予受理), `false`
        /// when the matter is simply not handled here (4 不受理).
        formal: bool,
    },
    /// A handling step began.
    StepStarted {
        /// Step name (审核, 决定 …).
        step: String,
    },
    /// A handling step ended.
    StepFinished {
        /// Step name.
        step: String,
        /// Passed on (`true`) or sent back (`false`).
        pass: bool,
        /// The handler's opinion.
        opinion: String,
    },
    /// A special procedure stopped the clock.
    SpecialStarted {
        /// Which procedure.
        procedure: Procedure,
        /// Why it is needed.
        reason: String,
        /// The approved end, if one was set.
        until: Option<Ts>,
    },
    /// The special procedure ended; the clock runs again.
    SpecialEnded {
        /// Its result.
        result: String,
    },
    /// The statutory deadline was extended with approval.
    Extended {
        /// How much (in the statutory limit's unit).
        amount: TimeLimit,
        /// Why.
        reason: String,
    },
    /// A fee was charged.
    FeeCharged {
        /// Fee name, as in the catalogue.
        name: String,
        /// Amount in fen (0.01 yuan).
        amount_fen: i64,
    },
    /// A decision was made.
    Concluded {
        /// The decision.
        outcome: Outcome,
        /// The opinion and, for a refusal, the reasons.
        opinion: String,
        /// Certificate name and number, if one is issued.
        certificate: String,
    },
    /// The applicant withdrew.
    Withdrawn {
        /// Why.
        reason: String,
    },
    /// The decision was recalled (撤回).
    Recalled {
        /// Why.
        reason: String,
    },
    /// The decision was revoked (撤销).
    Revoked {
        /// Why.
        reason: String,
    },
    /// The certificate reached the applicant.
    CertificateDelivered {
        /// How (window, mail …).
        method: String,
    },
    /// The case was published online.
    Published,
    /// Forwarded to the level that decides it (上报, for an item handled
    /// as 上报件).
    Forwarded {
        /// The hall or department it went to.
        to: String,
    },
    /// Filed with the supervision office (备案), for an item that is not
    /// published (confidential, or disclosed on request only).
    Filed {
        /// The office it was filed with.
        office: String,
    },
    /// The applicant rated the service, 1 (very unsatisfied) to 5.
    Rated {
        /// The rating.
        score: u8,
    },
}

impl EventKind {
    /// The event's free-text fields, by name.
    pub fn texts(&self) -> Vec<(&'static str, &str)> {
        match self {
            EventKind::Received
            | EventKind::SupplementCompleted
            | EventKind::Accepted
            | EventKind::Published
            | EventKind::Rated { .. } => vec![],
            EventKind::SupplementRequested { materials } => vec![("materials", materials)],
            EventKind::NotAccepted { reason, .. }
            | EventKind::SpecialStarted { reason, .. }
            | EventKind::Extended { reason, .. }
            | EventKind::Withdrawn { reason }
            | EventKind::Recalled { reason }
            | EventKind::Revoked { reason } => vec![("reason", reason)],
            EventKind::StepStarted { step } => vec![("step", step)],
            EventKind::StepFinished { step, opinion, .. } => {
                vec![("step", step), ("opinion", opinion)]
            }
            EventKind::SpecialEnded { result } => vec![("result", result)],
            EventKind::FeeCharged { name, .. } => vec![("name", name)],
            EventKind::Concluded {
                opinion,
                certificate,
                ..
            } => vec![("opinion", opinion), ("certificate", certificate)],
            EventKind::CertificateDelivered { method } => vec![("method", method)],
            EventKind::Forwarded { to } => vec![("to", to)],
            EventKind::Filed { office } => vec![("office", office)],
        }
    }

    /// The stored kind name.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Received => "received",
            EventKind::SupplementRequested { .. } => "supplement_requested",
            EventKind::SupplementCompleted => "supplement_completed",
            EventKind::Accepted => "accepted",
            EventKind::NotAccepted { .. } => "not_accepted",
            EventKind::StepStarted { .. } => "step_started",
            EventKind::StepFinished { .. } => "step_finished",
            EventKind::SpecialStarted { .. } => "special_started",
            EventKind::SpecialEnded { .. } => "special_ended",
            EventKind::Extended { .. } => "extended",
            EventKind::FeeCharged { .. } => "fee_charged",
            EventKind::Concluded { .. } => "concluded",
            EventKind::Withdrawn { .. } => "withdrawn",
            EventKind::Recalled { .. } => "recalled",
            EventKind::Revoked { .. } => "revoked",
            EventKind::CertificateDelivered { .. } => "certificate_delivered",
            EventKind::Published => "published",
            EventKind::Forwarded { .. } => "forwarded",
            EventKind::Filed { .. } => "filed",
            EventKind::Rated { .. } => "rated",
        }
    }

    /// The reason an event needs but lacks, if any.
    fn missing_text(&self) -> Option<&'static str> {
        let empty = |s: &str| s.trim().is_empty();
        match self {
            EventKind::SupplementRequested { materials } if empty(materials) => {
                Some("the missing materials must be listed")
            }
            EventKind::NotAccepted { reason, .. }
            | EventKind::Withdrawn { reason }
            | EventKind::Recalled { reason }
            | EventKind::Revoked { reason }
            | EventKind::SpecialStarted { reason, .. }
            | EventKind::Extended { reason, .. }
                if empty(reason) =>
            {
                Some("a reason is required")
            }
            EventKind::StepStarted { step } | EventKind::StepFinished { step, .. }
                if empty(step) =>
            {
                Some("the step must be named")
            }
            EventKind::Forwarded { to } if empty(to) => {
                Some("the hall or department it goes to must be named")
            }
            EventKind::Filed { office } if empty(office) => {
                Some("the office it is filed with must be named")
            }
            EventKind::Concluded {
                outcome: Outcome::Refused,
                opinion,
                ..
            } if empty(opinion) => Some("a refusal must give its reasons"),
            EventKind::Rated { score } if !(1..=5).contains(score) => Some("a rating is 1 to 5"),
            EventKind::FeeCharged { amount_fen, name } if *amount_fen <= 0 || empty(name) => {
                Some("a fee needs a name and a positive amount")
            }
            EventKind::Extended { amount, .. } if amount.amount == 0 => {
                Some("an extension must be longer than zero")
            }
            _ => None,
        }
    }
}

/// One event in a case's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEvent {
    /// Unique within the case: `node.actor.n`.
    pub id: LogId,
    /// When it happened.
    pub at: Ts,
    /// Who did it (handler, approver).
    pub by: String,
    /// The node that recorded it.
    pub node: NodeId,
    /// What happened.
    pub kind: EventKind,
}

/// The item a case was applied under, as it stood when the case was
/// received, so the case stands alone at every level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRef {
    /// 实施编码.
    pub impl_code: String,
    /// Item name.
    pub name: String,
    /// Item version.
    pub version: u32,
    /// Category.
    pub category: Category,
    /// Implementing agency (the department for statistics).
    pub agency: String,
    /// 法定时限.
    pub statutory_limit: TimeLimit,
    /// 承诺时限.
    pub committed_limit: TimeLimit,
    /// 办件类型.
    pub case_type: CaseType,
    /// 公开方式.
    pub disclosure: Disclosure,
    /// The fees the catalogue allowed (收费项目); `None` for a case
    /// received before the catalogue's fees were copied into cases, whose
    /// fees are then not checked.
    pub fees: Option<Vec<FeeRef>>,
}

/// A fee an item allows, as copied into a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRef {
    /// Its name.
    pub name: String,
    /// The most it may be per case, in fen, when the catalogue's standard
    /// is a fixed amount (`10元/件`); `None` when the standard depends on
    /// the case (per square metre, per page …).
    pub max_fen: Option<i64>,
}

impl FeeRef {
    /// The fee as the catalogue lists it: its standard read as a fixed
    /// amount when it begins with one (`10元`, `10元/件`, `2.5元`).
    pub fn of(fee: &crate::catalogue::Fee) -> FeeRef {
        let s = fee.standard.trim();
        let amount = s.find('元').and_then(|end| {
            let (yuan, fen) = match s[..end].split_once('.') {
                Some((y, f)) => (y, f),
                None => (&s[..end], ""),
            };
            let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
            if !digits(yuan) || !(fen.is_empty() || (fen.len() <= 2 && digits(fen))) {
                return None;
            }
            let y: i64 = yuan.parse().ok()?;
            let f: i64 = format!("{fen:0<2}").parse().ok()?;
            y.checked_mul(100)?.checked_add(f)
        });
        FeeRef {
            name: fee.name.clone(),
            max_fen: amount,
        }
    }
}

/// Most fees an item lists.
pub const MAX_FEES: usize = 50;

/// The applicant (personal data: never published).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applicant {
    /// Name of the person or organisation.
    pub name: String,
    /// Kind of identity document (身份证, 统一社会信用代码 …).
    pub id_type: String,
    /// Its number.
    pub id_number: String,
}

impl Applicant {
    /// The name with all but the first character masked, for lists.
    pub fn masked_name(&self) -> String {
        let mut chars = self.name.chars();
        let first: String = chars.next().into_iter().collect();
        first + &"*".repeat(chars.count())
    }
}

/// The fixed part of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseHeader {
    /// Case number (≤ 50 characters).
    pub number: String,
    /// Region of the accepting hall.
    pub region: RegionCode,
    /// The accepting hall's node.
    pub hall: NodeId,
    /// The item applied under.
    pub item: ItemRef,
    /// Who applied.
    pub applicant: Applicant,
    /// How the application arrived: window, online, mobile, mail, agent.
    pub channel: String,
}

/// Channels an application can arrive by.
pub const CHANNELS: &[&str] = &["window", "online", "mobile", "mail", "agent"];

/// A case: header and events (in any order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// The fixed part.
    pub header: CaseHeader,
    /// The log.
    pub events: Vec<CaseEvent>,
}

/// Why an action on a case was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CaseError {
    /// Not allowed in the current state.
    #[error("cannot record {event} while the case is in state {state}: {hint}")]
    NotAllowed {
        /// The event attempted.
        event: &'static str,
        /// The current state.
        state: CaseState,
        /// What would be allowed.
        hint: &'static str,
    },
    /// A required field of the event is missing or out of range.
    #[error("{event}: {reason}")]
    Invalid {
        /// The event attempted.
        event: &'static str,
        /// What is missing.
        reason: String,
    },
    /// The event time is before the last recorded event or in the future.
    #[error("{event} at {at} is out of order: {reason}")]
    BadTime {
        /// The event attempted.
        event: &'static str,
        /// Its time.
        at: Ts,
        /// Why.
        reason: String,
    },
}

/// An event that did not fit where it fell in the merged log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The event's id.
    pub event: String,
    /// Its kind.
    pub kind: String,
    /// Why it does not fit.
    pub reason: String,
}

/// A special procedure as derived from the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialProcedure {
    /// Which.
    pub procedure: Procedure,
    /// Started.
    pub start: Ts,
    /// Approved end.
    pub until: Option<Ts>,
    /// Actual end.
    pub end: Option<Ts>,
}

/// A fee charged on a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// When.
    pub at: Ts,
    /// The fee's name.
    pub name: String,
    /// How much, in fen.
    pub amount_fen: i64,
}

/// A handling step of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpan {
    /// Its name.
    pub name: String,
    /// When it began.
    pub started: Ts,
    /// When it ended; `None` while it goes on.
    pub finished: Option<Ts>,
}

/// Everything derived from a case's events, independent of the calendar
/// and of the current time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseView {
    /// Standard state.
    pub state: CaseState,
    /// When received.
    pub received_at: Option<Ts>,
    /// When the accept event was recorded.
    pub accepted_at: Option<Ts>,
    /// First supplement request before acceptance.
    pub pre_supplement_requested_at: Option<Ts>,
    /// Last supplement completion before acceptance.
    pub pre_supplement_completed_at: Option<Ts>,
    /// Clock stops after acceptance (supplements and special procedures).
    pub pauses: Vec<Pause>,
    /// Special procedures.
    pub specials: Vec<SpecialProcedure>,
    /// Approved extensions.
    pub extensions: Vec<TimeLimit>,
    /// When concluded, and how.
    pub concluded_at: Option<Ts>,
    /// The decision.
    pub outcome: Option<Outcome>,
    /// When withdrawn or not accepted.
    pub closed_at: Option<Ts>,
    /// When recalled or revoked.
    pub annulled_at: Option<Ts>,
    /// Certificate delivery.
    pub delivered_at: Option<Ts>,
    /// The conclusion names a certificate to deliver.
    #[serde(default)]
    pub certificate_issued: bool,
    /// First publication.
    pub published_at: Option<Ts>,
    /// Forwarded to the level that decides it.
    pub forwarded_at: Option<Ts>,
    /// Filed with the supervision office.
    pub filed_at: Option<Ts>,
    /// Satisfaction rating, the latest.
    pub rating: Option<u8>,
    /// Fees charged, in fen.
    pub fees_fen: i64,
    /// Each fee charged: when, which and how much.
    pub charges: Vec<Charge>,
    /// Each handling step: when it began and ended.
    pub steps: Vec<StepSpan>,
    /// Steps begun and not finished.
    pub open_steps: Vec<String>,
    /// Steps finished.
    pub steps_done: u32,
    /// Time of the latest event.
    pub last_event_at: Option<Ts>,
    /// Events that did not fit.
    pub conflicts: Vec<Conflict>,
}

impl CaseView {
    /// Every instant the view took from an event: the times the case's
    /// clock and cards are reckoned from.
    pub fn instants(&self) -> Vec<Ts> {
        let once = [
            self.received_at,
            self.accepted_at,
            self.pre_supplement_requested_at,
            self.pre_supplement_completed_at,
            self.concluded_at,
            self.closed_at,
            self.annulled_at,
            self.delivered_at,
            self.published_at,
            self.forwarded_at,
            self.filed_at,
        ];
        let spans = self
            .pauses
            .iter()
            .flat_map(|p| [Some(p.start), p.end])
            .chain(self.specials.iter().flat_map(|p| [Some(p.start), p.end]))
            .chain(
                self.steps
                    .iter()
                    .flat_map(|s| [Some(s.started), s.finished]),
            );
        once.into_iter()
            .chain(spans)
            .chain(self.charges.iter().map(|c| Some(c.at)))
            .flatten()
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Empty,
    Received,
    PreSupplement,
    Handling,
    Supplement,
    Special,
    Concluded,
    Closed,
    Annulled,
}

fn close_pause(v: &mut CaseView, at: Ts) {
    if let Some(p) = v.pauses.last_mut().filter(|p| p.end.is_none()) {
        p.end = Some(at);
    }
    if let Some(s) = v.specials.last_mut().filter(|s| s.end.is_none()) {
        s.end = Some(at);
    }
}

#[derive(Clone)]
struct Fold<'a> {
    header: &'a CaseHeader,
    phase: Phase,
    view: CaseView,
    open_steps: BTreeSet<String>,
}

const HINT: &[(Phase, &str)] = &[
    (Phase::Empty, "a case starts with received"),
    (
        Phase::Received,
        "accept it, request a supplement, not accept it, or record its withdrawal",
    ),
    (
        Phase::PreSupplement,
        "record supplement_completed, not accept it, or its withdrawal",
    ),
    (
        Phase::Handling,
        "record steps, a supplement, a special procedure, an extension, a fee or the conclusion",
    ),
    (Phase::Supplement, "record supplement_completed first"),
    (Phase::Special, "record special_ended first"),
    (
        Phase::Concluded,
        "only certificate delivery, fees, publication, rating, recall or revocation follow a conclusion",
    ),
    (Phase::Closed, "a withdrawn or not accepted case takes no further events"),
    (Phase::Annulled, "only publication or a rating follow a recall or revocation"),
];

/// Notes the time of an event that happens once and only for some items:
/// refused with `not_here` (why this case's item takes no such event), or
/// when `slot` holds the time it was `done` already.
fn record_once(
    e: &CaseEvent,
    slot: &mut Option<Ts>,
    not_here: Option<&str>,
    done: &str,
) -> Result<(), CaseError> {
    let reason = match (not_here, *slot) {
        (Some(why), _) => why.to_string(),
        (None, Some(t)) => format!("it was {done} already, at {t}"),
        (None, None) => {
            *slot = Some(e.at);
            return Ok(());
        }
    };
    Err(CaseError::Invalid {
        event: e.kind.name(),
        reason,
    })
}

impl<'a> Fold<'a> {
    fn new(header: &'a CaseHeader) -> Self {
        Fold {
            header,
            phase: Phase::Empty,
            open_steps: BTreeSet::new(),
            view: CaseView {
                state: CaseState::Received,
                received_at: None,
                accepted_at: None,
                pre_supplement_requested_at: None,
                pre_supplement_completed_at: None,
                pauses: Vec::new(),
                specials: Vec::new(),
                extensions: Vec::new(),
                concluded_at: None,
                outcome: None,
                closed_at: None,
                annulled_at: None,
                delivered_at: None,
                certificate_issued: false,
                published_at: None,
                forwarded_at: None,
                filed_at: None,
                rating: None,
                fees_fen: 0,
                charges: Vec::new(),
                steps: Vec::new(),
                open_steps: Vec::new(),
                steps_done: 0,
                last_event_at: None,
                conflicts: Vec::new(),
            },
        }
    }

    /// Applies one event, or says why it does not fit.
    fn apply(&mut self, e: &CaseEvent) -> Result<(), CaseError> {
        let at = e.at;
        if let Some(reason) = e.kind.missing_text() {
            return Err(CaseError::Invalid {
                event: e.kind.name(),
                reason: reason.into(),
            });
        }
        let (phase, state) = self.transition(e)?;
        self.phase = phase;
        if let Some(s) = state {
            self.view.state = s;
        }
        self.view.last_event_at = Some(at);
        Ok(())
    }

    fn not_allowed(&self, e: &CaseEvent) -> CaseError {
        CaseError::NotAllowed {
            event: e.kind.name(),
            state: self.view.state,
            hint: HINT.iter().find(|h| h.0 == self.phase).map_or("", |h| h.1),
        }
    }

    /// The phase and (if it changes) the state an event leads to, updating
    /// the derived fields it touches.
    fn transition(&mut self, e: &CaseEvent) -> Result<(Phase, Option<CaseState>), CaseError> {
        use EventKind as K;
        use Phase as P;
        let at = e.at;
        let v = &mut self.view;
        Ok(match (&e.kind, self.phase) {
            (K::Received, P::Empty) => {
                v.received_at = Some(at);
                (P::Received, Some(CaseState::Received))
            }
            (K::SupplementRequested { .. }, P::Received) => {
                v.pre_supplement_requested_at.get_or_insert(at);
                (P::PreSupplement, Some(CaseState::SupplementStarted))
            }
            (K::SupplementCompleted, P::PreSupplement) => {
                v.pre_supplement_completed_at = Some(at);
                (P::Received, Some(CaseState::SupplementEnded))
            }
            (K::Accepted, P::Received) => {
                v.accepted_at = Some(at);
                (P::Handling, Some(CaseState::Accepted))
            }
            (K::NotAccepted { formal, .. }, P::Received | P::PreSupplement) => {
                v.closed_at = Some(at);
                let s = if *formal {
                    CaseState::Rejected
                } else {
                    CaseState::NotAccepted
                };
                (P::Closed, Some(s))
            }
            (
                K::Withdrawn { .. },
                P::Received | P::PreSupplement | P::Handling | P::Supplement | P::Special,
            ) => {
                v.closed_at = Some(at);
                close_pause(v, at);
                (P::Closed, Some(CaseState::Withdrawn))
            }
            (K::SupplementRequested { .. }, P::Handling) => {
                v.pauses.push(Pause {
                    start: at,
                    end: None,
                });
                (P::Supplement, Some(CaseState::SupplementStarted))
            }
            (K::SupplementCompleted, P::Supplement) => {
                close_pause(v, at);
                (P::Handling, Some(CaseState::SupplementEnded))
            }
            (
                K::SpecialStarted {
                    procedure, until, ..
                },
                P::Handling,
            ) => {
                v.pauses.push(Pause {
                    start: at,
                    end: None,
                });
                v.specials.push(SpecialProcedure {
                    procedure: *procedure,
                    start: at,
                    until: *until,
                    end: None,
                });
                (P::Special, Some(CaseState::SpecialStarted))
            }
            (K::SpecialEnded { .. }, P::Special) => {
                close_pause(v, at);
                (P::Handling, Some(CaseState::SpecialEnded))
            }
            (K::StepStarted { step }, P::Handling) => {
                if !self.open_steps.insert(step.clone()) {
                    return Err(CaseError::Invalid {
                        event: e.kind.name(),
                        reason: format!("step {step:?} is already in progress"),
                    });
                }
                v.steps.push(StepSpan {
                    name: step.clone(),
                    started: at,
                    finished: None,
                });
                (P::Handling, Some(CaseState::Handling))
            }
            (K::StepFinished { step, .. }, P::Handling) => {
                if !self.open_steps.remove(step) {
                    return Err(CaseError::Invalid {
                        event: e.kind.name(),
                        reason: format!("step {step:?} was not started"),
                    });
                }
                if let Some(span) = v
                    .steps
                    .iter_mut()
                    .rev()
                    .find(|p| p.name == *step && p.finished.is_none())
                {
                    span.finished = Some(at);
                }
                v.steps_done += 1;
                (P::Handling, Some(CaseState::Handling))
            }
            (K::Extended { amount, .. }, P::Handling | P::Supplement | P::Special) => {
                let unit = self.header.item.statutory_limit.unit;
                if amount.unit != unit {
                    return Err(CaseError::Invalid {
                        event: e.kind.name(),
                        reason: format!(
                            "the extension must be in the statutory limit's unit ({})",
                            unit.as_str()
                        ),
                    });
                }
                v.extensions.push(*amount);
                (self.phase, None)
            }
            (
                K::FeeCharged { amount_fen, name },
                P::Handling | P::Supplement | P::Special | P::Concluded,
            ) => {
                v.fees_fen = v.fees_fen.saturating_add(*amount_fen);
                v.charges.push(Charge {
                    at,
                    name: name.clone(),
                    amount_fen: *amount_fen,
                });
                (self.phase, None)
            }
            (
                K::Concluded {
                    outcome,
                    certificate,
                    ..
                },
                P::Handling,
            ) => {
                v.concluded_at = Some(at);
                v.outcome = Some(*outcome);
                v.certificate_issued =
                    *outcome != Outcome::Refused && !certificate.trim().is_empty();
                (P::Concluded, Some(outcome.state()))
            }
            (K::CertificateDelivered { .. }, P::Concluded)
                if v.outcome != Some(Outcome::Refused) && v.delivered_at.is_none() =>
            {
                v.delivered_at = Some(at);
                (P::Concluded, None)
            }
            (
                K::Published,
                P::Handling | P::Supplement | P::Special | P::Concluded | P::Annulled,
            ) => {
                v.published_at.get_or_insert(at);
                (self.phase, None)
            }
            (K::Forwarded { .. }, P::Handling | P::Supplement | P::Special) => {
                let not_here = (self.header.item.case_type != CaseType::ForwardedUp)
                    .then_some("its item is not one a higher level decides (上报件)");
                record_once(e, &mut v.forwarded_at, not_here, "forwarded")?;
                (self.phase, None)
            }
            (
                K::Filed { .. },
                P::Handling | P::Supplement | P::Special | P::Concluded | P::Annulled,
            ) => {
                let not_here = (self.header.item.disclosure == Disclosure::Public)
                    .then_some("its item is published (公开): record its publication instead");
                record_once(e, &mut v.filed_at, not_here, "filed")?;
                (self.phase, None)
            }
            (K::Rated { score }, P::Concluded | P::Annulled) => {
                v.rating = Some(*score);
                (self.phase, None)
            }
            (K::Recalled { .. }, P::Concluded) => {
                v.annulled_at = Some(at);
                (P::Annulled, Some(CaseState::Recalled))
            }
            (K::Revoked { .. }, P::Concluded | P::Annulled) if v.state != CaseState::Revoked => {
                v.annulled_at = Some(at);
                (P::Annulled, Some(CaseState::Revoked))
            }
            _ => return Err(self.not_allowed(e)),
        })
    }

    fn finish(mut self) -> CaseView {
        self.view.open_steps = self.open_steps.into_iter().collect();
        self.view
    }
}

impl Case {
    /// Events in the canonical (time, id) order.
    pub fn ordered_events(&self) -> Vec<&CaseEvent> {
        let mut ev: Vec<&CaseEvent> = self.events.iter().collect();
        ev.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        ev
    }

    /// Derives the case's state by replaying its events in canonical order.
    pub fn view(&self) -> CaseView {
        let mut fold = Fold::new(&self.header);
        for e in self.ordered_events() {
            if let Err(err) = fold.apply(e) {
                fold.view.conflicts.push(Conflict {
                    event: e.id.to_string(),
                    kind: e.kind.name().into(),
                    reason: err.to_string(),
                });
            }
        }
        fold.finish()
    }

    /// Checks that `event` may be appended now: it must fit the current
    /// state, carry what it needs, not precede the latest event, and lie
    /// neither more than five minutes in the future nor more than a year in
    /// the past.
    pub fn check(&self, event: &CaseEvent, now: Ts) -> Result<(), CaseError> {
        let name = event.kind.name();
        if event.by.trim().is_empty() {
            return Err(CaseError::Invalid {
                event: name,
                reason: "the handler (--by) must be named".into(),
            });
        }
        if event.at > now.plus(300) {
            return Err(CaseError::BadTime {
                event: name,
                at: event.at,
                reason: "it lies in the future".into(),
            });
        }
        if event.at < now.plus(-MAX_BACKDATE) {
            return Err(CaseError::BadTime {
                event: name,
                at: event.at,
                reason: "it lies more than a year before now; a case is recorded as it is handled"
                    .into(),
            });
        }
        let mut fold = Fold::new(&self.header);
        for e in self.ordered_events() {
            // Conflicting events already in the log are skipped here just
            // as `view` skips them.
            let _ = fold.apply(e);
        }
        if let Some(last) = fold.view.last_event_at.filter(|l| event.at < *l) {
            return Err(CaseError::BadTime {
                event: name,
                at: event.at,
                reason: format!("the case already has an event at {last}"),
            });
        }
        fold.apply(event)
    }

    /// The kinds of event (by stored name, in the order of [`EventKind`])
    /// that [`Case::check`] would accept at `now`, given the fields each
    /// needs: what a form may offer next.
    pub fn allowed_events(&self, now: Ts) -> Vec<&'static str> {
        let mut fold = Fold::new(&self.header);
        for e in self.ordered_events() {
            let _ = fold.apply(e);
        }
        let Ok(id) = LogId::new(&self.header.hall, "probe", 1) else {
            return Vec::new();
        };
        if fold.view.last_event_at.is_some_and(|l| now < l) {
            return Vec::new();
        }
        let text = || "-".to_string();
        let open_step = fold.open_steps.iter().next().cloned().unwrap_or_default();
        let new_step = (0..)
            .map(|n| format!("step {n}"))
            .find(|s| !fold.open_steps.contains(s))
            .unwrap_or_default();
        let statutory = self.header.item.statutory_limit.unit;
        let samples = [
            EventKind::Received,
            EventKind::SupplementRequested { materials: text() },
            EventKind::SupplementCompleted,
            EventKind::Accepted,
            EventKind::NotAccepted {
                reason: text(),
                formal: true,
            },
            EventKind::StepStarted { step: new_step },
            EventKind::StepFinished {
                step: open_step,
                pass: true,
                opinion: text(),
            },
            EventKind::SpecialStarted {
                procedure: Procedure::Hearing,
                reason: text(),
                until: None,
            },
            EventKind::SpecialEnded { result: text() },
            EventKind::Extended {
                amount: TimeLimit::new(1, statutory),
                reason: text(),
            },
            EventKind::FeeCharged {
                name: text(),
                amount_fen: 1,
            },
            EventKind::Concluded {
                outcome: Outcome::Approved,
                opinion: text(),
                certificate: String::new(),
            },
            EventKind::Withdrawn { reason: text() },
            EventKind::Recalled { reason: text() },
            EventKind::Revoked { reason: text() },
            EventKind::CertificateDelivered { method: text() },
            EventKind::Published,
            EventKind::Forwarded { to: text() },
            EventKind::Filed { office: text() },
            EventKind::Rated { score: 5 },
        ];
        samples
            .into_iter()
            .filter_map(|kind| {
                let event = CaseEvent {
                    id: id.clone(),
                    at: now,
                    by: text(),
                    node: self.header.hall.clone(),
                    kind,
                };
                fold.clone().apply(&event).ok().map(|()| event.kind.name())
            })
            .collect()
    }

    /// The id the next event recorded by `node` with actor tag `actor`
    /// should take.
    pub fn next_event_id(&self, node: &NodeId, actor: &str) -> Result<LogId, IdError> {
        LogId::next(self.events.iter().map(|e| &e.id), node, actor)
    }
}

impl CaseHeader {
    /// Checks the header fields (see [`crate::valid`]).
    pub fn validate(&self) -> Result<(), Invalid> {
        let n = &self.number;
        if n.is_empty()
            || n.len() > 50
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(Invalid::new(
                "number",
                format!(
                    "case number {:?} must be 1-50 of A-Z a-z 0-9 - _ .",
                    n.chars().take(60).collect::<String>()
                ),
            ));
        }
        valid::required("applicant.name", &self.applicant.name, MAX_STR)?;
        valid::text("applicant.id_type", &self.applicant.id_type, 20)?;
        if self.applicant.id_number.len() > 40 {
            return Err(Invalid::new(
                "applicant.id_number",
                "is longer than 40 characters",
            ));
        }
        if !CHANNELS.contains(&self.channel.as_str()) {
            return Err(Invalid::new(
                "channel",
                format!(
                    "{:?} is not one of {}",
                    self.channel.chars().take(60).collect::<String>(),
                    CHANNELS.join(", ")
                ),
            ));
        }
        let item = &self.item;
        valid::required("item.impl_code", &item.impl_code, MAX_STR)?;
        valid::required("item.name", &item.name, MAX_STR)?;
        valid::text("item.agency", &item.agency, MAX_STR)?;
        if let Some(fees) = &item.fees {
            if fees.len() > MAX_FEES {
                return Err(Invalid::new(
                    "item.fees",
                    format!("has more than {MAX_FEES} entries"),
                ));
            }
            for f in fees {
                valid::required("item.fees.name", &f.name, MAX_STR)?;
                if f.max_fen.is_some_and(|m| m < 0) {
                    return Err(Invalid::new("item.fees.max_fen", "is negative"));
                }
            }
        }
        for (path, limit) in [
            ("item.statutory_limit", item.statutory_limit),
            ("item.committed_limit", item.committed_limit),
        ] {
            limit
                .validate()
                .map_err(|reason| Invalid::new(path, reason))?;
        }
        Ok(())
    }
}

impl CaseEvent {
    /// Checks the event's own fields (see [`crate::valid`]): its key names
    /// the node that recorded it, and every text is bounded.
    pub fn validate(&self) -> Result<(), Invalid> {
        let here = |e: Invalid| e.within(&format!("events.{}", self.id));
        if self.id.node() != &self.node {
            return Err(here(Invalid::new(
                "node",
                format!(
                    "{} is not the node {} the event's key names",
                    self.node,
                    self.id.node()
                ),
            )));
        }
        valid::text("by", &self.by, MAX_STR).map_err(here)?;
        if !(EARLIEST..LATEST).contains(&self.at) {
            return Err(here(Invalid::new(
                "at",
                "lies outside the years 2000 to 2099",
            )));
        }
        for (field, value) in self.kind.texts() {
            valid::text(field, value, MAX_STR).map_err(here)?;
        }
        if let EventKind::Extended { amount, .. } = &self.kind {
            amount
                .validate()
                .map_err(|reason| here(Invalid::new("amount", reason)))?;
        }
        Ok(())
    }
}

impl Case {
    /// Checks the whole record (see [`crate::valid`]): the header, the
    /// number of events and each event's fields.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.header.validate()?;
        valid::entries("events", self.events.len(), MAX_ENTRIES)?;
        self.events.iter().try_for_each(CaseEvent::validate)
    }
}

/// How the clock of a case came to start (DOMAIN §3, Licensing Law art. 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartBasis {
    /// The day it was accepted.
    Accepted,
    /// The day the last requested material arrived before acceptance.
    MaterialsComplete,
    /// The hall neither accepted nor asked for supplements within five
    /// working days, so the day of receipt counts as acceptance.
    DeemedOnReceipt,
}

/// How far before now an event may be dated when it is recorded.
pub const MAX_BACKDATE: i64 = 366 * DAY;

/// Days within which a hall must accept or ask for supplements (art. 32).
pub const ACCEPT_OR_ASK_WORKING_DAYS: u32 = 5;

/// The time-dependent picture of a case: due times, time used, lateness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseClock {
    /// When the case counts as accepted, and why.
    pub accepted: Option<(Ts, StartBasis)>,
    /// Due under the committed limit (a lower bound while paused).
    pub committed_due: Option<Ts>,
    /// Due under the statutory limit plus extensions.
    pub statutory_due: Option<Ts>,
    /// Metered seconds used (committed limit's unit).
    pub used: i64,
    /// Metered seconds paused (same unit).
    pub paused: i64,
    /// The unit both are in.
    pub unit: LimitUnit,
    /// Whether a pause is open now.
    pub paused_now: bool,
    /// When the clock stopped for good (concluded, withdrawn, not accepted).
    pub ended_at: Option<Ts>,
    /// Past the committed due time (at the end, or now if still open).
    pub over_committed: bool,
    /// Past the statutory due time.
    pub over_statutory: bool,
    /// When the case must be published by, unless confidential.
    pub disclosure_due: Option<Ts>,
    /// Not published by the disclosure due time.
    pub disclosure_late: bool,
}

impl Case {
    /// The clock of the case against `cal` at `now`.
    pub fn clock(&self, view: &CaseView, cal: &Calendar, now: Ts) -> CaseClock {
        let item = &self.header.item;
        let committed = item.committed_limit;
        let statutory = item.statutory_limit;
        let ended_at = view.concluded_at.or(view.closed_at);
        let end = ended_at.unwrap_or(now);
        let accepted = effective_acceptance(view, cal, now);
        let paused_now = ended_at.is_none() && view.pauses.last().is_some_and(|p| p.end.is_none());
        // Day limits see pauses in whole days; hour limits as they are.
        let pauses_for = |limit: TimeLimit| {
            if limit.counts_days() {
                clock::whole_days(&view.pauses, now)
            } else {
                view.pauses.clone()
            }
        };
        let due_of = |limit: TimeLimit, start: Ts| {
            let extra: i64 = view
                .extensions
                .iter()
                .filter(|x| x.unit == limit.unit)
                .map(|x| x.budget())
                .sum();
            let s = clock::clock_start(limit, start);
            clock::due(
                cal,
                limit.unit,
                s,
                limit.budget() + extra,
                &pauses_for(limit),
                now,
            )
        };
        let (committed_due, statutory_due, used, paused) = match accepted {
            Some((start, _)) => {
                let s = clock::clock_start(committed, start);
                let pauses = pauses_for(committed);
                (
                    due_of(committed, start),
                    due_of(statutory, start),
                    clock::used(cal, committed.unit, s, end, &pauses),
                    clock::paused(cal, committed.unit, s, end, &pauses),
                )
            }
            None => (None, None, 0, 0),
        };
        let past = |due: Option<Ts>| due.is_some_and(|d| end > d) && view.closed_at.is_none();
        let disclosure_due = match item.disclosure {
            Disclosure::Confidential | Disclosure::OnRequest => None,
            _ if item.category.discloses_decision() => view.concluded_at.map(|c| c.plus(24 * HOUR)),
            _ => view.accepted_at.map(|a| a.plus(12 * HOUR)),
        };
        let disclosure_late =
            disclosure_due.is_some_and(|d| view.published_at.map_or(now > d, |p| p > d));
        CaseClock {
            accepted,
            committed_due,
            statutory_due,
            used,
            paused,
            unit: committed.unit,
            paused_now,
            ended_at,
            over_committed: past(committed_due),
            over_statutory: past(statutory_due),
            disclosure_due,
            disclosure_late,
        }
    }
}

/// When the case counts as accepted (art. 32), or `None` while it does not.
fn effective_acceptance(view: &CaseView, cal: &Calendar, now: Ts) -> Option<(Ts, StartBasis)> {
    let received = view.received_at?;
    let five = TimeLimit::new(ACCEPT_OR_ASK_WORKING_DAYS, LimitUnit::WorkingDays);
    let deadline = clock::due(
        cal,
        five.unit,
        clock::clock_start(five, received),
        five.budget(),
        &[],
        now,
    )?;
    let asked_in_time = view
        .pre_supplement_requested_at
        .is_some_and(|r| r <= deadline);
    match view.accepted_at {
        Some(acc) if asked_in_time => Some((
            view.pre_supplement_completed_at.map_or(acc, |c| c.min(acc)),
            StartBasis::MaterialsComplete,
        )),
        Some(acc) if acc > deadline => Some((received, StartBasis::DeemedOnReceipt)),
        Some(acc) => Some((acc, StartBasis::Accepted)),
        None if asked_in_time || view.closed_at.is_some() => None,
        None if now > deadline => Some((received, StartBasis::DeemedOnReceipt)),
        None => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::calendar::parse_calendar_csv;

    #[test]
    fn a_fee_standard_is_a_fixed_amount_only_when_it_begins_with_one() {
        let of = |standard: &str| {
            FeeRef::of(&crate::catalogue::Fee {
                name: "工本费".into(),
                standard: standard.into(),
                basis: String::new(),
            })
            .max_fen
        };
        assert_eq!(of("10元/件"), Some(1000));
        assert_eq!(of("2.5元"), Some(250));
        assert_eq!(of(" 0.05元/页"), Some(5));
        assert_eq!(of("按面积每平方米1元"), None);
        assert_eq!(of("1.234元"), None);
        assert_eq!(of("依规定"), None);
        assert_eq!(of("99999999999999999999元"), None);
    }

    pub(crate) fn header(statutory: TimeLimit, committed: TimeLimit) -> CaseHeader {
        CaseHeader {
            number: "XK001-20261116-0001".into(),
            region: RegionCode::parse("140212101").unwrap(),
            hall: NodeId::parse("tw-101").unwrap(),
            item: ItemRef {
                impl_code: "11140212MB0123456X4000".into(),
                name: "宅基地审批".into(),
                version: 1,
                category: Category::Licensing,
                agency: "某镇人民政府".into(),
                statutory_limit: statutory,
                committed_limit: committed,
                case_type: CaseType::Committed,
                disclosure: Disclosure::Public,
                fees: Some(vec![FeeRef {
                    name: "工本费".into(),
                    max_fen: Some(1000),
                }]),
            },
            applicant: Applicant {
                name: "张三丰".into(),
                id_type: "身份证".into(),
                id_number: "140212199001011234".into(),
            },
            channel: "window".into(),
        }
    }

    /// An event keyed `NODE.ACTOR.N`, or `ACTOR.N` for one recorded at
    /// the township `tw-101`.
    pub(crate) fn ev(id: &str, at: &str, kind: EventKind) -> CaseEvent {
        let id = LogId::parse(id)
            .or_else(|_| LogId::parse(&format!("tw-101.{id}")))
            .unwrap();
        CaseEvent {
            node: id.node().clone(),
            id,
            at: Ts::parse(at).unwrap(),
            by: "李四".into(),
            kind,
        }
    }

    fn wd(n: u32) -> TimeLimit {
        TimeLimit::new(n, LimitUnit::WorkingDays)
    }

    fn t(s: &str) -> Ts {
        Ts::parse(s).unwrap()
    }

    fn cal() -> Calendar {
        let mut c = Calendar::default();
        c.add_year(
            2026,
            parse_calendar_csv("2026-10-01,holiday,国庆\n2026-10-02,holiday,国庆").unwrap(),
        );
        c
    }

    fn case(events: Vec<CaseEvent>) -> Case {
        Case {
            header: header(wd(20), wd(10)),
            events,
        }
    }

    fn push(c: &mut Case, e: CaseEvent) -> Result<(), CaseError> {
        c.check(&e, e.at.plus(1))?;
        c.events.push(e);
        Ok(())
    }

    #[test]
    fn times_outside_the_years_a_hall_works_in_are_refused() {
        let c = case(Vec::new());
        let received = |at: Ts| CaseEvent {
            at,
            ..ev("a.1", "2026-11-16 09:00", EventKind::Received)
        };
        let now = t("2026-11-16 09:00");
        for at in [Ts(i64::MIN), t("0001-01-01 09:00"), t("2025-11-14 09:00")] {
            let err = c.check(&received(at), now).unwrap_err();
            assert!(
                err.to_string().contains("more than a year before now"),
                "{err}"
            );
        }
        assert!(c.check(&received(t("2025-11-16 09:00")), now).is_ok());
        let err = c.check(&received(Ts(i64::MAX)), now).unwrap_err();
        assert!(err.to_string().contains("future"), "{err}");
        // On read too, whoever wrote it: a clock across centuries costs
        // minutes.
        for at in [
            Ts(-99_999_999_999),
            t("1999-12-31 23:59"),
            t("2100-01-01 00:00"),
        ] {
            let e = received(at);
            let err = e.validate().unwrap_err();
            assert_eq!(err.path, format!("events.{}.at", e.id), "{err}");
        }
        assert!(received(t("2000-01-01 00:00")).validate().is_ok());
    }

    #[test]
    fn ten_events_at_one_minute_fold_in_the_order_they_were_recorded() {
        let at = "2026-11-16 09:00";
        let step = || "审核".to_string();
        let kinds = vec![
            EventKind::Received,
            EventKind::Accepted,
            EventKind::StepStarted { step: step() },
            EventKind::StepFinished {
                step: step(),
                pass: true,
                opinion: "同意".into(),
            },
            EventKind::StepStarted { step: step() },
            EventKind::StepFinished {
                step: step(),
                pass: true,
                opinion: "同意".into(),
            },
            EventKind::FeeCharged {
                name: "工本费".into(),
                amount_fen: 1000,
            },
            EventKind::StepStarted { step: step() },
            EventKind::StepFinished {
                step: step(),
                pass: true,
                opinion: "同意".into(),
            },
            EventKind::Concluded {
                outcome: Outcome::Approved,
                opinion: String::new(),
                certificate: "批准书".into(),
            },
            EventKind::Published,
        ];
        let mut c = case(Vec::new());
        let node = NodeId::parse("tw-101").unwrap();
        for kind in kinds {
            let mut e = ev("a.1", at, kind);
            e.id = c.next_event_id(&node, "a").unwrap();
            push(&mut c, e).unwrap();
        }
        let v = c.view();
        assert!(v.conflicts.is_empty(), "{:?}", v.conflicts);
        assert_eq!(v.state, CaseState::Approved);
        assert!(v.published_at.is_some());
    }

    #[test]
    fn states_follow_the_standard_codes() {
        assert_eq!(CaseState::parse("11"), Some(CaseState::Approved));
        assert_eq!(CaseState::parse("handling"), Some(CaseState::Handling));
        assert!(CaseState::Refused.is_concluded());
        assert!(!CaseState::Recalled.is_concluded());
        assert!(CaseState::SpecialStarted.is_open());
        for code in 1..=15 {
            assert_eq!(CaseState::from_code(code).unwrap().code(), code);
        }
    }

    #[test]
    fn a_full_case_derives_state_and_clock() {
        let mut c = case(vec![]);
        push(&mut c, ev("a.1", "2026-11-16 09:00", EventKind::Received)).unwrap();
        push(&mut c, ev("a.2", "2026-11-16 09:10", EventKind::Accepted)).unwrap();
        push(
            &mut c,
            ev(
                "a.3",
                "2026-11-17 10:00",
                EventKind::StepStarted {
                    step: "审核".into(),
                },
            ),
        )
        .unwrap();
        push(
            &mut c,
            ev(
                "a.4",
                "2026-11-18 00:00",
                EventKind::SupplementRequested {
                    materials: "户口簿".into(),
                },
            ),
        )
        .unwrap();
        assert_eq!(c.view().state, CaseState::SupplementStarted);
        push(
            &mut c,
            ev("a.5", "2026-11-20 00:00", EventKind::SupplementCompleted),
        )
        .unwrap();
        push(
            &mut c,
            ev(
                "a.6",
                "2026-11-20 10:00",
                EventKind::StepFinished {
                    step: "审核".into(),
                    pass: true,
                    opinion: "同意".into(),
                },
            ),
        )
        .unwrap();
        push(
            &mut c,
            ev(
                "a.7",
                "2026-11-25 10:00",
                EventKind::Concluded {
                    outcome: Outcome::Approved,
                    opinion: "准予".into(),
                    certificate: "宅基地批准书 2026-001".into(),
                },
            ),
        )
        .unwrap();
        let v = c.view();
        assert_eq!(v.state, CaseState::Approved);
        assert!(v.conflicts.is_empty());
        let clk = c.clock(&v, &cal(), t("2026-12-30"));
        assert_eq!(
            clk.accepted,
            Some((t("2026-11-16 09:10"), StartBasis::Accepted))
        );
        // 10 working days from Tue 17 Nov, plus the two paused (18, 19).
        assert_eq!(clk.committed_due, Some(t("2026-12-03")));
        assert_eq!(clk.paused, 2 * crate::time::DAY);
        assert!(!clk.over_committed);
        // Used: 17, 20, 23, 24 and 10 hours of 25 Nov.
        assert_eq!(clk.used, 4 * crate::time::DAY + 10 * HOUR);
        assert_eq!(clk.disclosure_due, Some(t("2026-11-16 21:10")));
        assert!(clk.disclosure_late, "never published");
    }

    #[test]
    fn invalid_orders_are_refused_with_clear_errors() {
        let mut c = case(vec![]);
        let err = push(&mut c, ev("a.1", "2026-11-16 09:00", EventKind::Accepted)).unwrap_err();
        assert!(err.to_string().contains("starts with received"), "{err}");
        push(&mut c, ev("a.1", "2026-11-16 09:00", EventKind::Received)).unwrap();
        let conclude = EventKind::Concluded {
            outcome: Outcome::Approved,
            opinion: String::new(),
            certificate: String::new(),
        };
        let err = push(&mut c, ev("a.2", "2026-11-16 10:00", conclude.clone())).unwrap_err();
        assert!(matches!(err, CaseError::NotAllowed { .. }), "{err}");
        push(
            &mut c,
            ev(
                "a.2",
                "2026-11-16 10:00",
                EventKind::Withdrawn {
                    reason: "申请人撤回".into(),
                },
            ),
        )
        .unwrap();
        let err = push(&mut c, ev("a.3", "2026-11-16 11:00", EventKind::Published)).unwrap_err();
        assert!(err.to_string().contains("withdrawn"), "{err}");
        let err = push(&mut c, ev("a.3", "2026-11-16 08:00", EventKind::Published)).unwrap_err();
        assert!(matches!(err, CaseError::BadTime { .. }), "{err}");
        let refuse = EventKind::Concluded {
            outcome: Outcome::Refused,
            opinion: " ".into(),
            certificate: String::new(),
        };
        assert!(refuse.missing_text().is_some());
    }

    #[test]
    fn the_events_offered_next_follow_the_state() {
        let now = t("2026-11-20 09:00");
        let mut c = case(vec![ev("a.1", "2026-11-16 09:00", EventKind::Received)]);
        assert_eq!(
            c.allowed_events(now),
            [
                "supplement_requested",
                "accepted",
                "not_accepted",
                "withdrawn"
            ]
        );
        push(&mut c, ev("a.2", "2026-11-16 10:00", EventKind::Accepted)).unwrap();
        assert_eq!(
            c.allowed_events(now),
            [
                "supplement_requested",
                "step_started",
                "special_started",
                "extended",
                "fee_charged",
                "concluded",
                "withdrawn",
                "published"
            ]
        );
        let materials = EventKind::SupplementRequested {
            materials: "户口簿".into(),
        };
        push(&mut c, ev("a.3", "2026-11-16 11:00", materials)).unwrap();
        assert_eq!(
            c.allowed_events(now),
            [
                "supplement_completed",
                "extended",
                "fee_charged",
                "withdrawn",
                "published"
            ]
        );
        push(
            &mut c,
            ev("a.4", "2026-11-17 09:00", EventKind::SupplementCompleted),
        )
        .unwrap();
        let step = EventKind::StepStarted {
            step: "审核".into(),
        };
        push(&mut c, ev("a.5", "2026-11-17 10:00", step)).unwrap();
        assert!(c.allowed_events(now).contains(&"step_finished"));
        let conclude = EventKind::Concluded {
            outcome: Outcome::Approved,
            opinion: "同意".into(),
            certificate: "批准书 001".into(),
        };
        push(&mut c, ev("a.6", "2026-11-18 10:00", conclude)).unwrap();
        assert_eq!(
            c.allowed_events(now),
            [
                "fee_charged",
                "recalled",
                "revoked",
                "certificate_delivered",
                "published",
                "rated"
            ]
        );
        // Nothing fits before the latest event.
        assert!(c.allowed_events(t("2026-11-18 09:00")).is_empty());
    }

    #[test]
    fn an_event_is_offered_exactly_when_check_accepts_it() {
        let now = t("2026-11-20 09:00");
        let reason = || "原因".to_string();
        let all = [
            EventKind::Received,
            EventKind::SupplementRequested {
                materials: "申请表".into(),
            },
            EventKind::SupplementCompleted,
            EventKind::Accepted,
            EventKind::NotAccepted {
                reason: reason(),
                formal: false,
            },
            // Another step than the one begun on the path.
            EventKind::StepStarted {
                step: "决定".into(),
            },
            EventKind::StepFinished {
                step: "审核".into(),
                pass: true,
                opinion: "同意".into(),
            },
            EventKind::SpecialStarted {
                procedure: Procedure::Testing,
                reason: reason(),
                until: None,
            },
            EventKind::SpecialEnded {
                result: "合格".into(),
            },
            EventKind::Extended {
                amount: wd(10),
                reason: reason(),
            },
            EventKind::FeeCharged {
                name: "工本费".into(),
                amount_fen: 1000,
            },
            EventKind::Concluded {
                outcome: Outcome::Refused,
                opinion: reason(),
                certificate: String::new(),
            },
            EventKind::Withdrawn { reason: reason() },
            EventKind::Recalled { reason: reason() },
            EventKind::Revoked { reason: reason() },
            EventKind::CertificateDelivered {
                method: "窗口".into(),
            },
            EventKind::Published,
            EventKind::Rated { score: 4 },
        ];
        // A path through most states: each event taken in turn where it fits.
        let path = [0, 1, 2, 3, 5, 7, 8, 6, 11, 17, 14];
        let mut c = case(vec![]);
        for (n, &i) in path.iter().enumerate() {
            let offered = c.allowed_events(now);
            for kind in &all {
                let e = ev(&format!("a.{}", n + 1), "2026-11-19 09:00", kind.clone());
                assert_eq!(
                    offered.contains(&kind.name()),
                    c.check(&e, now).is_ok(),
                    "{} after {n} steps",
                    kind.name()
                );
            }
            let at = format!("2026-11-{:02} 09:00", 2 + n);
            let kind = match &all[i] {
                EventKind::StepStarted { .. } => EventKind::StepStarted {
                    step: "审核".into(),
                },
                other => other.clone(),
            };
            push(&mut c, ev(&format!("a.{}", n + 1), &at, kind)).unwrap();
        }
    }

    #[test]
    fn supplement_before_acceptance_starts_the_clock_when_materials_arrive() {
        let c = case(vec![
            ev("a.1", "2026-11-16 09:00", EventKind::Received),
            ev(
                "a.2",
                "2026-11-17 09:00",
                EventKind::SupplementRequested {
                    materials: "申请表".into(),
                },
            ),
            ev("a.3", "2026-11-26 15:00", EventKind::SupplementCompleted),
            ev("a.4", "2026-11-27 09:00", EventKind::Accepted),
        ]);
        let v = c.view();
        assert!(v.pauses.is_empty(), "no pause before acceptance");
        let clk = c.clock(&v, &cal(), t("2026-11-30"));
        assert_eq!(
            clk.accepted,
            Some((t("2026-11-26 15:00"), StartBasis::MaterialsComplete))
        );
    }

    #[test]
    fn silence_for_five_working_days_deems_acceptance_on_receipt() {
        let received = vec![ev("a.1", "2026-11-16 09:00", EventKind::Received)];
        let c = case(received.clone());
        let v = c.view();
        // Five working days after Mon 16 Nov end at 24:00 Mon 23 Nov.
        assert_eq!(c.clock(&v, &cal(), t("2026-11-23 23:00")).accepted, None);
        assert_eq!(
            c.clock(&v, &cal(), t("2026-11-24 00:00:01")).accepted,
            Some((t("2026-11-16 09:00"), StartBasis::DeemedOnReceipt))
        );
        let mut late = received;
        late.push(ev("a.2", "2026-11-25 09:00", EventKind::Accepted));
        let c = case(late);
        let v = c.view();
        assert_eq!(
            c.clock(&v, &cal(), t("2026-11-26")).accepted,
            Some((t("2026-11-16 09:00"), StartBasis::DeemedOnReceipt))
        );
    }

    #[test]
    fn extension_moves_the_statutory_due_and_special_procedures_pause() {
        let mut c = Case {
            header: header(wd(20), wd(20)),
            events: vec![],
        };
        push(&mut c, ev("a.1", "2026-11-02 09:00", EventKind::Received)).unwrap();
        push(&mut c, ev("a.2", "2026-11-02 09:00", EventKind::Accepted)).unwrap();
        let base = c.clock(&c.view(), &cal(), t("2026-11-03"));
        assert_eq!(base.statutory_due, Some(t("2026-12-01")));
        let bad_unit = ev(
            "a.3",
            "2026-11-20 09:00",
            EventKind::Extended {
                amount: TimeLimit::new(10, LimitUnit::NaturalDays),
                reason: "复杂".into(),
            },
        );
        assert!(push(&mut c, bad_unit).is_err());
        push(
            &mut c,
            ev(
                "a.3",
                "2026-11-20 09:00",
                EventKind::Extended {
                    amount: wd(10),
                    reason: "情况复杂，经负责人批准".into(),
                },
            ),
        )
        .unwrap();
        push(
            &mut c,
            ev(
                "a.4",
                "2026-11-24 00:00",
                EventKind::SpecialStarted {
                    procedure: Procedure::Hearing,
                    reason: "申请听证".into(),
                    until: Some(t("2026-11-26")),
                },
            ),
        )
        .unwrap();
        let paused = c.clock(&c.view(), &cal(), t("2026-11-25"));
        assert!(paused.paused_now);
        assert_eq!(c.view().state, CaseState::SpecialStarted);
        push(
            &mut c,
            ev(
                "a.5",
                "2026-11-26 00:00",
                EventKind::SpecialEnded {
                    result: "听证完毕".into(),
                },
            ),
        )
        .unwrap();
        let clk = c.clock(&c.view(), &cal(), t("2026-11-27"));
        // 20 + 10 working days, plus two paused (24, 25 Nov).
        assert_eq!(clk.statutory_due, Some(t("2026-12-17")));
        assert!(!clk.paused_now);
    }

    #[test]
    fn concurrent_conclusions_are_a_conflict_in_both_orders() {
        let base = vec![
            ev("a.1", "2026-11-16 09:00", EventKind::Received),
            ev("a.2", "2026-11-16 09:10", EventKind::Accepted),
        ];
        let approve = ev(
            "cn-212.a.1",
            "2026-11-18 10:00",
            EventKind::Concluded {
                outcome: Outcome::Approved,
                opinion: "准予".into(),
                certificate: String::new(),
            },
        );
        let refuse = ev(
            "tw-101.a.1",
            "2026-11-18 10:00",
            EventKind::Concluded {
                outcome: Outcome::Refused,
                opinion: "材料不实".into(),
                certificate: String::new(),
            },
        );
        let mut one = base.clone();
        one.extend([approve.clone(), refuse.clone()]);
        let mut two = base;
        two.extend([refuse, approve]);
        let (v1, v2) = (case(one).view(), case(two).view());
        assert_eq!(v1, v2);
        assert_eq!(v1.state, CaseState::Approved, "cn-212 < tw-101");
        assert_eq!(v1.conflicts.len(), 1);
        assert_eq!(v1.conflicts[0].event, "tw-101.a.1");
    }
}
