//! Cases: accept, record events, show, list.

use hallsync_hall::operators::Role;
use hallsync_hall::{CaseFilter, CaseRow, ClockFlag, NewCase, OrderRow};
use hallsync_model::cards::CaseCard;
use hallsync_model::case::Applicant;
use hallsync_model::idcheck::{check_id_number, IdKind};
use hallsync_model::{Case, CaseState, EventKind, RegionCode, Ts};
use serde::{Deserialize, Serialize};

use super::{is_false, is_zero};
use crate::{check_limit, default_limit, ApiError, Caller, Op, Page, Service};

/// Receives (and usually accepts) a new application: `POST /api/v1/cases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptCase {
    /// Implementation code of the item.
    pub item: String,
    /// Applicant's name.
    pub applicant: String,
    /// Applicant's identity document type.
    #[serde(default = "default_id_type")]
    pub id_type: String,
    /// Its number.
    #[serde(default)]
    pub id_number: String,
    /// window, online, mobile, mail or agent.
    #[serde(default = "default_channel")]
    pub channel: String,
    /// Case number (default: implementation code, date and serial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// The handler at the window.
    #[serde(default)]
    pub by: String,
    /// When it was received (default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Ts>,
    /// Only record the receipt; accept it later.
    #[serde(default, skip_serializing_if = "is_false")]
    pub receive_only: bool,
}

fn default_id_type() -> String {
    "身份证".into()
}

fn default_channel() -> String {
    "window".into()
}

impl Op for AcceptCase {
    type Out = CaseRow;
    const PATH: &'static str = "/cases";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Clerk)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        // A number whose type carries a check digit is checked (when
        // given) and kept in capitals.
        let id_number = match IdKind::of_type(&self.id_type) {
            Some(_) if !self.id_number.trim().is_empty() => {
                let n = self.id_number.trim().to_ascii_uppercase();
                check_id_number(&self.id_type, &n).map_err(|e| {
                    ApiError::new(
                        400,
                        "id_number",
                        format!("id_number ({}): {e}", self.id_type),
                    )
                })?;
                n
            }
            _ => self.id_number,
        };
        Ok(svc.hall().accept_case(
            NewCase {
                item_code: self.item,
                number: self.number,
                applicant: Applicant {
                    name: self.applicant,
                    id_type: self.id_type,
                    id_number,
                },
                channel: self.channel,
                by,
                at: self.at.unwrap_or(now),
                accept: !self.receive_only,
            },
            now,
        )?)
    }
}

/// Records what happened to a case: `POST /api/v1/cases/event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordEvent {
    /// Case number or document id.
    pub case: String,
    /// Who did it.
    #[serde(default)]
    pub by: String,
    /// When (default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Ts>,
    /// What happened.
    pub event: EventKind,
}

impl Op for RecordEvent {
    type Out = CaseRow;
    const PATH: &'static str = "/cases/event";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Clerk)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        Ok(svc
            .hall()
            .record_event(&self.case, self.event, &by, self.at.unwrap_or(now), now)?)
    }
}

/// Shows a case: `GET /api/v1/case`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowCase {
    /// Case number or document id.
    pub case: String,
}

/// A case with its events (in the order they count), derived state, clock
/// and the supervision orders about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseOut {
    /// Header and events.
    pub case: Case,
    /// State and clock now.
    pub row: CaseRow,
    /// Orders about it.
    pub orders: Vec<OrderRow>,
    /// The kinds of event that fit now (see `Case::allowed_events`).
    #[serde(default)]
    pub allowed: Vec<String>,
    /// The supervision cards it holds now, standing or ended.
    #[serde(default)]
    pub cards: Vec<CaseCard>,
    /// Its events stamped while their node's clock was off its parent's.
    #[serde(default)]
    pub clock_off: Vec<ClockFlag>,
}

impl Op for ShowCase {
    type Out = CaseOut;
    const PATH: &'static str = "/case";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let (mut case, row) = svc.hall().case(&self.case, now)?;
        let allowed = case
            .allowed_events(now)
            .into_iter()
            .map(String::from)
            .collect();
        case.events = case.ordered_events().into_iter().cloned().collect();
        let orders = svc.hall().orders_about(&row.id, now)?;
        let cards = svc.hall().case_cards(&row, now)?;
        let clock_off = svc.hall().clock_off_events(&case.events)?;
        Ok(CaseOut {
            case,
            row,
            orders,
            allowed,
            cards,
            clock_off,
        })
    }
}

/// Lists cases, soonest due first: `GET /api/v1/cases`. Open cases only,
/// unless `all`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListCases {
    /// Only cases in this state: a code 1–15 or a name (`handling`, as
    /// the CLI takes them, or `Handling`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "any_state"
    )]
    pub state: Option<CaseState>,
    /// Only cases past their committed due time.
    #[serde(default, skip_serializing_if = "is_false")]
    pub overdue: bool,
    /// Only cases due within this many working days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_within: Option<u32>,
    /// Only cases under this item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Include concluded and closed cases.
    #[serde(default, skip_serializing_if = "is_false")]
    pub all: bool,
    /// Only cases of the halls in this region's subtree (at a hub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<RegionCode>,
    /// Only cases received at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_from: Option<Ts>,
    /// Only cases received before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_before: Option<Ts>,
    /// Rows to skip.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: usize,
    /// Most rows.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

/// A case state as a person types it (a code or a name, see
/// [`CaseState::parse`]) or as its JSON form writes it.
fn any_state<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<CaseState>, D::Error> {
    let Some(typed) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    CaseState::parse(&typed)
        .or_else(|| serde_json::from_value(serde_json::Value::String(typed.clone())).ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{:?} is not a state: use a code 1-15 or a name such as received, accepted, handling, approved",
                typed.chars().take(40).collect::<String>()
            ))
        })
}

/// A page of cases, as of a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseList {
    /// The time the clocks are read at.
    pub now: Ts,
    /// Whether the calendar in force covers that year (if not, working
    /// days there count weekends only).
    pub calendar_covers: bool,
    /// The cases.
    pub page: Page<CaseRow>,
}

impl Op for ListCases {
    type Out = CaseList;
    const PATH: &'static str = "/cases";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let filter = CaseFilter {
            state: self.state,
            overdue: self.overdue,
            due_within: self.due_within,
            item: self.item,
            include_closed: self.all,
            unit: self.unit,
            received_from: self.received_from,
            received_before: self.received_before,
        };
        check_limit(self.limit)?;
        let page = svc
            .hall()
            .list_cases_page(&filter, now, self.offset, self.limit)?;
        Ok(CaseList {
            now,
            calendar_covers: svc.hall().calendar()?.covers(now.year()),
            page: Page {
                total: page.total,
                offset: self.offset,
                limit: self.limit,
                items: page.rows,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_filter_takes_a_code_a_typed_name_or_the_json_name() {
        let state = |q: &str| {
            serde_json::from_str::<ListCases>(&format!("{{\"state\":{q}}}")).map(|l| l.state)
        };
        for q in ["\"8\"", "\"handling\"", "\"Handling\"", "\"部门办理\""] {
            assert_eq!(state(q).unwrap(), Some(CaseState::Handling), "{q}");
        }
        let err = state("\"busy\"").unwrap_err().to_string();
        assert!(err.contains("is not a state"), "{err}");
        let back = serde_json::to_string(&ListCases {
            state: Some(CaseState::Handling),
            ..ListCases::default()
        })
        .unwrap();
        assert_eq!(
            serde_json::from_str::<ListCases>(&back).unwrap().state,
            Some(CaseState::Handling)
        );
    }
}
