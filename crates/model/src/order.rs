//! Supervision orders (督查督办): a hub orders a hall below it to act on one
//! of that hall's cases, the hall replies, and the hub closes the order with
//! a result.
//!
//! An order is a record *addressed* to the supervised hall: its document id
//! carries that hall's region (`order:UNIT:KEY`), so the scope rules carry it
//! down to the hall and up to every hub above it, and never to a sibling.
//! The hall's reply travels back up in the same document. Replies and the
//! closing are events in a map keyed by event id, so copies edited at both
//! levels merge, and the state is derived from the events in one order.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::{DocId, DocKind, IdError, LogId, NodeId, RegionCode};
use crate::time::Ts;

/// Longest reason, reply or result text, in characters.
pub const MAX_TEXT: usize = 2000;
/// Longest name of a person or department, in characters.
pub const MAX_NAME: usize = 100;
/// Most events on one order.
pub const MAX_EVENTS: usize = 200;

macro_rules! named {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The name stored in documents and typed on the command line.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            /// Parses a stored or typed name.
            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named! {
    /// The supervision rule an order enforces (DOMAIN §5).
    Rule {
        /// Case time limit (办理时限).
        CaseTimeLimit => "case_time_limit",
        /// Special procedure past its approved end.
        SpecialProcedure => "special_procedure",
        /// Online pre-acceptance overdue.
        PreAcceptance => "pre_acceptance",
        /// Certificate not delivered within 3 days of conclusion.
        CertificateDelivery => "certificate_delivery",
        /// Complaint or consultation reply overdue.
        ComplaintReply => "complaint_reply",
        /// Disclosure late or missing.
        Disclosure => "disclosure",
        /// Another anomaly: refusal without reasons, a step overtime, a fee
        /// outside the catalogue, work off the system …
        Anomaly => "anomaly",
    }
}

named! {
    /// Warning level (预警 / 黄牌 / 红牌).
    Card {
        /// 预警.
        Notice => "notice",
        /// 黄牌.
        Yellow => "yellow",
        /// 红牌.
        Red => "red",
    }
}

named! {
    /// How the issuing hub closed an order.
    Resolution {
        /// The unit put it right (整改到位).
        Rectified => "rectified",
        /// The unit did not put it right (未整改); the finding stands.
        NotRectified => "not_rectified",
        /// The order was issued in error (撤销).
        Withdrawn => "withdrawn",
    }
}

named! {
    /// The issuer's decision on a unit's appeal (申诉) of an order's card.
    Verdict {
        /// The card stands (维持原判); the order goes on.
        Upheld => "upheld",
        /// The card was raised in error (撤销亮牌): it is counted apart as
        /// revoked, and the order is closed as withdrawn.
        Revoked => "revoked",
    }
}

/// The fixed part of an order, written when it is issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderHeader {
    /// The supervised hall's region: the addressee.
    pub unit: RegionCode,
    /// The department within the unit, if the order names one.
    pub department: String,
    /// The issuing hub's region; strictly above the unit.
    pub issuer: RegionCode,
    /// The issuing node.
    pub issuer_node: NodeId,
    /// The case it names; in the unit's subtree.
    pub case: DocId,
    /// The rule broken.
    pub rule: Rule,
    /// The warning level.
    pub card: Card,
    /// What the unit is to put right.
    pub reason: String,
    /// When it was issued.
    pub issued_at: Ts,
    /// Who issued it.
    pub issued_by: String,
    /// When the unit's reply is due.
    pub reply_due: Ts,
}

/// What happened to an order after it was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderAction {
    /// The unit's reply (整改情况).
    Reply {
        /// What was done.
        text: String,
    },
    /// The issuing hub closed the order.
    Close {
        /// The result.
        resolution: Resolution,
        /// The hub's remarks.
        text: String,
    },
    /// The unit appeals the card the order names (申诉): it holds the card
    /// was raised in error. Once per order.
    Appeal {
        /// Why.
        text: String,
    },
    /// The issuing hub decides the unit's appeal.
    Decide {
        /// Whether the card stands or is revoked.
        verdict: Verdict,
        /// The hub's reasons.
        text: String,
    },
}

impl OrderAction {
    /// The name stored in documents.
    pub fn name(&self) -> &'static str {
        match self {
            OrderAction::Reply { .. } => "reply",
            OrderAction::Close { .. } => "close",
            OrderAction::Appeal { .. } => "appeal",
            OrderAction::Decide { .. } => "decide",
        }
    }

    /// Its text.
    pub fn text(&self) -> &str {
        match self {
            OrderAction::Reply { text }
            | OrderAction::Close { text, .. }
            | OrderAction::Appeal { text }
            | OrderAction::Decide { text, .. } => text,
        }
    }
}

/// One event on an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// Unique within the order: `NODE.ACTOR.N`.
    pub id: LogId,
    /// When.
    pub at: Ts,
    /// Who.
    pub by: String,
    /// At which node.
    pub node: NodeId,
    /// What.
    #[serde(flatten)]
    pub action: OrderAction,
}

/// A supervision order: its header and its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Fixed part.
    pub header: OrderHeader,
    /// Replies and the closing, in any order.
    pub events: Vec<OrderEvent>,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Issued, no reply yet (待反馈).
    Open,
    /// The unit replied; the hub has not closed it (已反馈).
    Replied,
    /// The unit appealed the card; the hub has not decided (申诉中).
    Appealed,
    /// Closed by the hub (已办结).
    Closed,
}

impl OrderState {
    /// The name shown and typed.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Open => "open",
            OrderState::Replied => "replied",
            OrderState::Appealed => "appealed",
            OrderState::Closed => "closed",
        }
    }
}

impl std::fmt::Display for OrderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the events of an order add up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Where it stands.
    pub state: OrderState,
    /// When the unit first replied.
    pub first_reply: Option<Ts>,
    /// How it was closed, and when (a revoked card closes it as
    /// withdrawn).
    pub closed: Option<(Resolution, Ts)>,
    /// The unit's appeal of the card, if it appealed.
    pub appeal: Option<AppealView>,
    /// The unit's first answer (a reply or an appeal) came after its due
    /// time, or is still missing past it.
    pub reply_late: bool,
}

/// A unit's appeal of an order's card and the issuer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppealView {
    /// When the unit appealed.
    pub filed: Ts,
    /// The decision and when it was taken; none while pending.
    pub verdict: Option<(Verdict, Ts)>,
}

impl OrderView {
    /// Whether the card the order names was revoked on appeal.
    pub fn card_revoked(&self) -> bool {
        self.appeal
            .is_some_and(|a| matches!(a.verdict, Some((Verdict::Revoked, _))))
    }
}

/// Why an action on an order was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrderError {
    /// A field is missing, too long or inconsistent.
    #[error("order {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The order is closed and takes no more events.
    #[error("the order was closed ({0}); it takes no more replies or results")]
    Closed(Resolution),
    /// An appeal out of turn: a second appeal, or a decision with no
    /// appeal pending.
    #[error("{0}")]
    Appeal(String),
    /// A copy of an order this hall is named the issuer of, though it
    /// never issued it, came from below or from a file.
    #[error(
        "this hall ({0}) is named as the order's issuer but never issued it: the copy is forged"
    )]
    NotIssuedHere(RegionCode),
    /// This hall may not take this action on this order.
    #[error("{action} is for {who}: this hall is {here}")]
    NotYours {
        /// The action attempted.
        action: &'static str,
        /// Who may take it.
        who: String,
        /// This hall's region.
        here: RegionCode,
    },
}

/// Where a copy of an order came from, for [`Order::check_received`].
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A peer at this region, over a link.
    Peer(&'a RegionCode),
    /// A document file (`doc import`): its writer is unknown.
    File,
    /// The hall's own backup, restored into an empty store.
    Own,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> OrderError {
    OrderError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), OrderError> {
    if s.trim().is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if s.chars().count() > max {
        return Err(invalid(field, format!("is longer than {max} characters")));
    }
    Ok(())
}

impl OrderHeader {
    /// Checks the fields against each other: the issuer lies strictly above
    /// the unit, the case is one of the unit's subtree, the texts are
    /// bounded, and the reply falls due after the order was issued.
    pub fn validate(&self) -> Result<(), OrderError> {
        if !self.issuer.is_ancestor_of(&self.unit) {
            return Err(invalid(
                "issuer",
                format!(
                    "{} is not above the supervised unit {}: orders go down the tree",
                    self.issuer, self.unit
                ),
            ));
        }
        if self.case.kind() != DocKind::Case || !self.unit.contains(self.case.region()) {
            return Err(invalid(
                "case",
                format!(
                    "{} is not a case of the supervised unit {}",
                    self.case, self.unit
                ),
            ));
        }
        check_text("reason", &self.reason, MAX_TEXT)?;
        check_text("issued_by", &self.issued_by, MAX_NAME)?;
        if self.department.chars().count() > MAX_NAME {
            return Err(invalid(
                "department",
                format!("is longer than {MAX_NAME} characters"),
            ));
        }
        if self.reply_due <= self.issued_at {
            return Err(invalid("reply_due", "must be after the issue time"));
        }
        Ok(())
    }
}

impl OrderEvent {
    /// Checks the event's own fields: its key names the node that wrote it,
    /// and its texts are bounded as [`Order::check`] bounds them.
    pub fn validate(&self) -> Result<(), OrderError> {
        if self.id.node() != &self.node {
            return Err(invalid(
                "node",
                format!(
                    "event {}: {} is not the node the key names",
                    self.id, self.node
                ),
            ));
        }
        check_text("by", &self.by, MAX_NAME)?;
        check_text("text", self.action.text(), MAX_TEXT)
    }
}

impl Order {
    /// Checks the whole record: the header, the number of events and each
    /// event's fields.
    pub fn validate(&self) -> Result<(), OrderError> {
        self.header.validate()?;
        if self.events.len() > MAX_EVENTS {
            return Err(invalid(
                "events",
                format!("has more than {MAX_EVENTS} entries"),
            ));
        }
        self.events.iter().try_for_each(OrderEvent::validate)
    }

    /// The events in the one order every copy agrees on: by time, the
    /// unit's answers before the issuer's in the same second (a decision
    /// answers an appeal, so it never goes before one of its second), then
    /// by id.
    pub fn sorted(&self) -> Vec<&OrderEvent> {
        let issuers = |e: &OrderEvent| {
            matches!(
                e.action,
                OrderAction::Close { .. } | OrderAction::Decide { .. }
            )
        };
        let mut v: Vec<&OrderEvent> = self.events.iter().collect();
        v.sort_by(|a, b| (a.at, issuers(a), &a.id).cmp(&(b.at, issuers(b), &b.id)));
        v
    }

    /// Derives where the order stands at `now`, reading the events by
    /// time, then id: the first closing (or revoking decision) decides the
    /// result and later events are kept but change nothing; the first
    /// appeal is the appeal, and the first decision after it decides it.
    pub fn view(&self, now: Ts) -> OrderView {
        let mut closed: Option<(Resolution, Ts)> = None;
        let mut first_reply: Option<Ts> = None;
        let mut appeal: Option<AppealView> = None;
        for e in self.sorted() {
            if closed.is_some() {
                break;
            }
            match &e.action {
                OrderAction::Reply { .. } => {
                    first_reply.get_or_insert(e.at);
                }
                OrderAction::Appeal { .. } => {
                    appeal.get_or_insert(AppealView {
                        filed: e.at,
                        verdict: None,
                    });
                }
                OrderAction::Decide { verdict, .. } => {
                    if let Some(a) = appeal.as_mut().filter(|a| a.verdict.is_none()) {
                        a.verdict = Some((*verdict, e.at));
                        if *verdict == Verdict::Revoked {
                            closed = Some((Resolution::Withdrawn, e.at));
                        }
                    }
                }
                OrderAction::Close { resolution, .. } => closed = Some((*resolution, e.at)),
            }
        }
        let state = match (closed, appeal, first_reply) {
            (Some(_), _, _) => OrderState::Closed,
            (None, Some(AppealView { verdict: None, .. }), _) => OrderState::Appealed,
            (None, _, Some(_)) => OrderState::Replied,
            (None, _, None) => OrderState::Open,
        };
        let answered = [first_reply, appeal.map(|a| a.filed), closed.map(|c| c.1)]
            .into_iter()
            .flatten()
            .min();
        let reply_late = answered.unwrap_or(now) > self.header.reply_due;
        OrderView {
            state,
            first_reply,
            closed,
            appeal,
            reply_late,
        }
    }

    /// Checks that the hall at `here` may record `event` now. Replies are
    /// the unit's, the closing is the issuer's, and a closed order takes
    /// nothing more.
    pub fn check(&self, event: &OrderEvent, here: &RegionCode) -> Result<(), OrderError> {
        if let Some((resolution, _)) = self.view(event.at).closed {
            return Err(OrderError::Closed(resolution));
        }
        if self.events.len() >= MAX_EVENTS {
            return Err(invalid("events", format!("at most {MAX_EVENTS}")));
        }
        if event.at < self.header.issued_at {
            return Err(invalid(
                "at",
                format!("{} is before the order was issued", event.at),
            ));
        }
        check_text("by", &event.by, MAX_NAME)?;
        let who = match &event.action {
            OrderAction::Reply { .. } | OrderAction::Appeal { .. } => &self.header.unit,
            OrderAction::Close { .. } | OrderAction::Decide { .. } => &self.header.issuer,
        };
        if who != here {
            return Err(OrderError::NotYours {
                action: event.action.name(),
                who: format!("the hall of region {who}"),
                here: here.clone(),
            });
        }
        let appeal = self.view(event.at).appeal;
        match (&event.action, appeal) {
            (OrderAction::Appeal { .. }, Some(a)) => {
                return Err(OrderError::Appeal(format!(
                    "this order's card was appealed at {}: a card is appealed once",
                    a.filed
                )))
            }
            (OrderAction::Decide { .. }, None) => {
                return Err(OrderError::Appeal(
                    "the unit has not appealed this order's card: there is nothing to decide"
                        .into(),
                ))
            }
            (
                OrderAction::Decide { .. },
                Some(AppealView {
                    verdict: Some((v, at)),
                    ..
                }),
            ) => {
                return Err(OrderError::Appeal(format!(
                    "the appeal was decided at {at} ({v})"
                )))
            }
            (OrderAction::Decide { .. }, Some(a)) if event.at < a.filed => {
                return Err(OrderError::Appeal(format!(
                    "the appeal was filed at {}, after this decision's time {}: check this computer's clock",
                    a.filed, event.at
                )))
            }
            _ => {}
        }
        check_text("text", event.action.text(), MAX_TEXT)
    }

    /// Checks a copy of this order that reached the hall at `here` from
    /// `source` (`self`, the merged copy; `before`, the copy held until now,
    /// if any). The header never changes once issued. The closing and the
    /// decision on an appeal are the issuer's: a peer at or below the
    /// supervised unit brings replies and appeals only, and a file, whose
    /// writer nobody can name, brings them only down to the unit, never up
    /// to a hub. An order the hall at `here` issued itself never arrives as
    /// new from below or from a file: such a copy is forged.
    pub fn check_received(
        &self,
        before: Option<&Order>,
        here: &RegionCode,
        source: Source<'_>,
    ) -> Result<(), OrderError> {
        if before.is_some_and(|b| b.header != self.header) {
            return Err(invalid(
                "header",
                "an order's header never changes after it is issued",
            ));
        }
        let from_below = match source {
            Source::Own => return Ok(()),
            Source::Peer(from) => self.header.unit.contains(from),
            Source::File => !self.header.unit.contains(here),
        };
        if !from_below {
            return Ok(());
        }
        if before.is_none() && &self.header.issuer == here {
            return Err(OrderError::NotIssuedHere(here.clone()));
        }
        let held = before.map_or(&[][..], |b| b.events.as_slice());
        let closing = self.events.iter().find(|e| {
            matches!(
                e.action,
                OrderAction::Close { .. } | OrderAction::Decide { .. }
            ) && !held.iter().any(|b| b.id == e.id)
        });
        let Some(e) = closing else {
            return Ok(());
        };
        let issuer = &self.header.issuer;
        Err(match source {
            Source::Peer(from) => OrderError::NotYours {
                action: e.action.name(),
                who: format!("the issuing hall ({issuer})"),
                here: from.clone(),
            },
            _ => OrderError::NotYours {
                action: e.action.name(),
                who: format!(
                    "the issuing hall ({issuer}) and reaches a hub over the link, never from a file"
                ),
                here: here.clone(),
            },
        })
    }

    /// A fresh event id for this node and actor.
    pub fn next_event_id(&self, node: &NodeId, actor: &str) -> Result<LogId, IdError> {
        LogId::next(self.events.iter().map(|e| &e.id), node, actor)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn r(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    pub(crate) fn order() -> Order {
        Order {
            header: OrderHeader {
                unit: r("140212101"),
                department: "民政办".into(),
                issuer: r("140212"),
                issuer_node: NodeId::parse("cn-212").unwrap(),
                case: DocId::parse("case:140212101:A1-1").unwrap(),
                rule: Rule::CaseTimeLimit,
                card: Card::Yellow,
                reason: "超过承诺时限未办结".into(),
                issued_at: Ts::parse("2026-11-23 10:00").unwrap(),
                issued_by: "县监察室".into(),
                reply_due: Ts::parse("2026-11-26 00:00").unwrap(),
            },
            events: Vec::new(),
        }
    }

    pub(crate) fn event(id: &str, at: &str, action: OrderAction) -> OrderEvent {
        let id = LogId::parse(id).unwrap();
        OrderEvent {
            node: id.node().clone(),
            id,
            at: Ts::parse(at).unwrap(),
            by: "某人".into(),
            action,
        }
    }

    fn reply() -> OrderAction {
        OrderAction::Reply {
            text: "已补办".into(),
        }
    }

    fn close(resolution: Resolution) -> OrderAction {
        OrderAction::Close {
            resolution,
            text: "核实".into(),
        }
    }

    #[test]
    fn names_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::parse(r.as_str()), Some(*r));
        }
        for c in Card::ALL {
            assert_eq!(Card::parse(c.as_str()), Some(*c));
        }
        assert_eq!(Resolution::parse("withdrawn"), Some(Resolution::Withdrawn));
        assert_eq!(Verdict::parse("revoked"), Some(Verdict::Revoked));
        assert_eq!(Rule::parse("nope"), None);
    }

    #[test]
    fn orders_go_down_to_a_case_of_the_unit() {
        assert_eq!(order().header.validate(), Ok(()));
        let mut up = order();
        up.header.issuer = r("140212101");
        up.header.unit = r("140212");
        up.header.case = DocId::parse("case:140212:x").unwrap();
        assert!(matches!(
            up.header.validate(),
            Err(OrderError::Invalid {
                field: "issuer",
                ..
            })
        ));
        let mut sibling = order();
        sibling.header.case = DocId::parse("case:140212102:x").unwrap();
        assert!(matches!(
            sibling.header.validate(),
            Err(OrderError::Invalid { field: "case", .. })
        ));
        let mut item = order();
        item.header.case = DocId::parse("item:140212101:x").unwrap();
        assert!(item.header.validate().is_err());
        let mut due = order();
        due.header.reply_due = due.header.issued_at;
        assert!(due.header.validate().is_err());
        let mut long = order();
        long.header.reason = "长".repeat(MAX_TEXT + 1);
        assert!(long.header.validate().is_err());
    }

    #[test]
    fn the_unit_replies_and_the_issuer_closes() {
        let unit = r("140212101");
        let county = r("140212");
        let mut o = order();
        let rep = event("tw-101.a.1", "2026-11-24 09:00", reply());
        assert!(matches!(
            o.check(&rep, &county),
            Err(OrderError::NotYours { .. })
        ));
        o.check(&rep, &unit).unwrap();
        o.events.push(rep);
        let now = Ts::parse("2026-11-24 10:00").unwrap();
        assert_eq!(o.view(now).state, OrderState::Replied);
        assert!(!o.view(now).reply_late);
        let shut = event(
            "cn-212.b.1",
            "2026-11-25 09:00",
            close(Resolution::Rectified),
        );
        assert!(o.check(&shut, &unit).is_err());
        o.check(&shut, &county).unwrap();
        o.events.push(shut);
        let v = o.view(now);
        assert_eq!(v.state, OrderState::Closed);
        assert_eq!(
            v.closed,
            Some((
                Resolution::Rectified,
                Ts::parse("2026-11-25 09:00").unwrap()
            ))
        );
        let again = event("tw-101.a.2", "2026-11-25 10:00", reply());
        assert_eq!(
            o.check(&again, &unit),
            Err(OrderError::Closed(Resolution::Rectified))
        );
        let before = event("tw-101.a.2", "2026-11-22 10:00", reply());
        let fresh = order();
        assert!(fresh.check(&before, &unit).is_err());
    }

    #[test]
    fn a_missing_reply_is_late_one_second_after_its_due_time() {
        let o = order();
        let due = o.header.reply_due;
        assert!(!o.view(due).reply_late);
        assert!(o.view(due.plus(1)).reply_late);
        let mut replied = order();
        replied
            .events
            .push(event("tw-101.a.1", "2026-11-26 00:00", reply()));
        assert!(!replied.view(due.plus(86_400)).reply_late);
        replied.events[0].at = due.plus(1);
        assert!(replied.view(due.plus(1)).reply_late);
    }

    #[test]
    fn concurrent_closings_resolve_the_same_whatever_the_order() {
        let a = event(
            "cn-212.a.1",
            "2026-11-25 09:00",
            close(Resolution::Rectified),
        );
        let b = event(
            "cn-212.b.1",
            "2026-11-25 09:00",
            close(Resolution::Withdrawn),
        );
        let mut one = order();
        one.events = vec![a.clone(), b.clone()];
        let mut two = order();
        two.events = vec![b, a];
        let now = Ts::parse("2026-11-26 09:00").unwrap();
        assert_eq!(one.view(now), two.view(now));
        assert_eq!(one.view(now).closed.unwrap().0, Resolution::Rectified);
    }

    #[test]
    fn from_below_only_replies_arrive_and_the_header_never_changes() {
        let held = order();
        let (unit, county, city) = (r("140212101"), r("140212"), r("1402"));
        let peer = Source::Peer;
        let mut replied = held.clone();
        replied
            .events
            .push(event("tw-101.a.1", "2026-11-24 09:00", reply()));
        assert_eq!(
            replied.check_received(Some(&held), &county, peer(&unit)),
            Ok(())
        );
        let mut closed = replied.clone();
        closed.events.push(event(
            "tw-101.a.2",
            "2026-11-24 09:30",
            close(Resolution::Rectified),
        ));
        assert!(matches!(
            closed.check_received(Some(&replied), &county, peer(&unit)),
            Err(OrderError::NotYours {
                action: "close",
                ..
            })
        ));
        // From above (the issuer, or a hub relaying it) a closing is fine.
        assert_eq!(
            closed.check_received(Some(&replied), &unit, peer(&county)),
            Ok(())
        );
        assert_eq!(
            closed.check_received(Some(&replied), &county, peer(&city)),
            Ok(())
        );
        // A closing already held may come back from below.
        assert_eq!(
            closed.check_received(Some(&closed), &county, peer(&unit)),
            Ok(())
        );
        let mut softer = held.clone();
        softer.header.card = Card::Notice;
        for (here, from) in [(&county, &unit), (&unit, &county)] {
            assert!(matches!(
                softer.check_received(Some(&held), here, peer(from)),
                Err(OrderError::Invalid {
                    field: "header",
                    ..
                })
            ));
        }
        // An order new to its own issuer, sent up from below, is forged;
        // the city above cannot tell and keeps it.
        assert_eq!(
            softer.check_received(None, &county, peer(&unit)),
            Err(OrderError::NotIssuedHere(county.clone()))
        );
        assert_eq!(softer.check_received(None, &city, peer(&unit)), Ok(()));
        assert_eq!(softer.check_received(None, &county, peer(&city)), Ok(()));
    }

    #[test]
    fn a_file_brings_the_issuers_word_down_to_the_unit_but_never_up_to_a_hub() {
        let (unit, county, city) = (r("140212101"), r("140212"), r("1402"));
        let held = order();
        let mut closed = held.clone();
        closed.events.push(event(
            "tw-101.a.1",
            "2026-11-24 09:30",
            close(Resolution::Rectified),
        ));
        assert_eq!(
            closed.check_received(Some(&held), &unit, Source::File),
            Ok(())
        );
        for hub in [&county, &city] {
            assert!(matches!(
                closed.check_received(Some(&held), hub, Source::File),
                Err(OrderError::NotYours {
                    action: "close",
                    ..
                })
            ));
        }
        let mut replied = held.clone();
        replied
            .events
            .push(event("tw-101.a.1", "2026-11-24 09:00", reply()));
        assert_eq!(
            replied.check_received(Some(&held), &county, Source::File),
            Ok(())
        );
        assert_eq!(
            held.check_received(None, &county, Source::File),
            Err(OrderError::NotIssuedHere(county.clone()))
        );
        assert_eq!(held.check_received(None, &city, Source::File), Ok(()));
        // The hall's own backup, restored into an empty store, is its own.
        assert_eq!(closed.check_received(None, &county, Source::Own), Ok(()));
    }

    fn appeal() -> OrderAction {
        OrderAction::Appeal {
            text: "申请人补正材料期间不计时".into(),
        }
    }

    fn decide(verdict: Verdict) -> OrderAction {
        OrderAction::Decide {
            verdict,
            text: "经核实".into(),
        }
    }

    #[test]
    fn the_unit_appeals_once_and_the_issuer_decides_once() {
        let (unit, county) = (r("140212101"), r("140212"));
        let mut o = order();
        let d = event("cn-212.b.1", "2026-11-24 09:00", decide(Verdict::Revoked));
        assert!(matches!(o.check(&d, &county), Err(OrderError::Appeal(_))));
        let a = event("tw-101.a.1", "2026-11-24 09:00", appeal());
        assert!(matches!(
            o.check(&a, &county),
            Err(OrderError::NotYours { .. })
        ));
        o.check(&a, &unit).unwrap();
        o.events.push(a);
        let now = Ts::parse("2026-11-24 10:00").unwrap();
        let v = o.view(now);
        assert_eq!(v.state, OrderState::Appealed);
        assert!(!v.reply_late && !v.card_revoked());
        let again = event("tw-101.a.2", "2026-11-24 11:00", appeal());
        assert!(matches!(o.check(&again, &unit), Err(OrderError::Appeal(_))));
        let d = event("cn-212.b.1", "2026-11-25 09:00", decide(Verdict::Revoked));
        assert!(o.check(&d, &unit).is_err());
        o.check(&d, &county).unwrap();
        o.events.push(d);
        let v = o.view(now);
        assert!(v.card_revoked());
        assert_eq!(v.state, OrderState::Closed);
        assert_eq!(v.closed.unwrap().0, Resolution::Withdrawn);
        let twice = event("cn-212.b.2", "2026-11-25 10:00", decide(Verdict::Upheld));
        assert!(o.check(&twice, &county).is_err());
    }

    #[test]
    fn an_upheld_card_leaves_the_order_to_be_answered() {
        let mut o = order();
        o.events
            .push(event("tw-101.a.1", "2026-11-24 09:00", appeal()));
        o.events.push(event(
            "cn-212.b.1",
            "2026-11-24 12:00",
            decide(Verdict::Upheld),
        ));
        let v = o.view(Ts::parse("2026-11-30 00:00").unwrap());
        assert_eq!(v.state, OrderState::Open);
        assert!(!v.card_revoked() && !v.reply_late);
        o.check(
            &event("tw-101.a.2", "2026-11-25 09:00", reply()),
            &r("140212101"),
        )
        .unwrap();
        // A decision with no appeal before it (by time) decides nothing.
        let mut early = order();
        early.events.push(event(
            "cn-212.b.1",
            "2026-11-24 08:00",
            decide(Verdict::Revoked),
        ));
        early
            .events
            .push(event("tw-101.a.1", "2026-11-24 09:00", appeal()));
        let v = early.view(Ts::parse("2026-11-24 10:00").unwrap());
        assert_eq!(v.state, OrderState::Appealed);
        assert!(!v.card_revoked());
    }

    #[test]
    fn a_unit_cannot_bring_its_own_decision_from_below() {
        let mut appealed = order();
        appealed
            .events
            .push(event("tw-101.a.1", "2026-11-24 09:00", appeal()));
        assert_eq!(
            appealed.check_received(Some(&order()), &r("140212"), Source::Peer(&r("140212101"))),
            Ok(())
        );
        let mut decided = appealed.clone();
        decided.events.push(event(
            "tw-101.a.2",
            "2026-11-24 10:00",
            decide(Verdict::Revoked),
        ));
        assert!(matches!(
            decided.check_received(Some(&appealed), &r("140212"), Source::Peer(&r("140212101"))),
            Err(OrderError::NotYours {
                action: "decide",
                ..
            })
        ));
        assert_eq!(
            decided.check_received(Some(&appealed), &r("140212101"), Source::Peer(&r("140212"))),
            Ok(())
        );
    }

    #[test]
    fn event_ids_count_per_node_and_actor() {
        let mut o = order();
        o.events
            .push(event("tw-101.a.1", "2026-11-24 09:00", reply()));
        let node = NodeId::parse("tw-101").unwrap();
        assert_eq!(
            o.next_event_id(&node, "a").unwrap().to_string(),
            "tw-101.a.2"
        );
        assert_eq!(
            o.next_event_id(&node, "b").unwrap().to_string(),
            "tw-101.b.1"
        );
    }
}
