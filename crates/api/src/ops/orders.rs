//! Supervision orders: issue, reply, close, show, list.

use hallsync_hall::operators::Role;
use hallsync_hall::{NewOrder, OrderRow};
use hallsync_model::order::{Card, OrderState, Resolution, Rule, Verdict};
use hallsync_model::{RegionCode, TimeLimit, Ts};
use serde::{Deserialize, Serialize};

use super::{is_false, is_zero};
use crate::{default_limit, ApiError, Caller, Op, Page, Service};

/// Issues an order to a hall below this one: `POST /api/v1/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueOrder {
    /// Region code of the supervised hall.
    pub unit: RegionCode,
    /// The case: its number at that hall, or its document id.
    pub case: String,
    /// The rule broken.
    pub rule: Rule,
    /// Warning level.
    pub card: Card,
    /// What the hall is to put right.
    pub reason: String,
    /// The department within the hall, if the order names one.
    #[serde(default)]
    pub department: String,
    /// How long the hall has to reply.
    pub reply_within: TimeLimit,
    /// Who issues it.
    #[serde(default)]
    pub by: String,
}

impl Op for IssueOrder {
    type Out = OrderRow;
    const PATH: &'static str = "/orders";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Supervisor)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        Ok(svc.hall().issue_order(
            NewOrder {
                unit: self.unit,
                department: self.department,
                case: self.case,
                rule: self.rule,
                card: self.card,
                reason: self.reason,
                by,
                reply_within: self.reply_within,
            },
            now,
        )?)
    }
}

/// Replies to an order addressed to this hall: `POST /api/v1/orders/reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyOrder {
    /// The order: its key (e.g. cn-212.1) or document id.
    pub order: String,
    /// What was done.
    pub text: String,
    /// Who replies.
    #[serde(default)]
    pub by: String,
}

impl Op for ReplyOrder {
    type Out = OrderRow;
    const PATH: &'static str = "/orders/reply";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Clerk)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        Ok(svc.hall().reply_order(&self.order, &self.text, &by, now)?)
    }
}

/// Closes an order this hall issued: `POST /api/v1/orders/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseOrder {
    /// The order: its key or document id.
    pub order: String,
    /// rectified, not_rectified or withdrawn.
    pub result: Resolution,
    /// Remarks.
    pub text: String,
    /// Who closes it.
    #[serde(default)]
    pub by: String,
}

impl Op for CloseOrder {
    type Out = OrderRow;
    const PATH: &'static str = "/orders/close";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Supervisor)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        Ok(svc
            .hall()
            .close_order(&self.order, self.result, &self.text, &by, now)?)
    }
}

/// Appeals the card of an order addressed to this hall (申诉):
/// `POST /api/v1/orders/appeal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppealOrder {
    /// The order: its key or document id.
    pub order: String,
    /// Why the card was raised in error.
    pub text: String,
    /// Who appeals.
    #[serde(default)]
    pub by: String,
}

impl Op for AppealOrder {
    type Out = OrderRow;
    const PATH: &'static str = "/orders/appeal";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Clerk)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        Ok(svc.hall().appeal_order(&self.order, &self.text, &by, now)?)
    }
}

/// Decides the appeal of an order this hall issued:
/// `POST /api/v1/orders/decide`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideAppeal {
    /// The order: its key or document id.
    pub order: String,
    /// upheld (the card stands) or revoked.
    pub verdict: Verdict,
    /// The reasons.
    pub text: String,
    /// Who decides.
    #[serde(default)]
    pub by: String,
}

impl Op for DecideAppeal {
    type Out = OrderRow;
    const PATH: &'static str = "/orders/decide";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Supervisor)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        Ok(svc
            .hall()
            .decide_appeal(&self.order, self.verdict, &self.text, &by, now)?)
    }
}

/// Issues now the orders this hub's published rules call for (a running
/// node does so every minute): `POST /api/v1/orders/auto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueAutoOrders {}

impl Op for IssueAutoOrders {
    type Out = Vec<OrderRow>;
    const PATH: &'static str = "/orders/auto";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Supervisor)
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        Ok(svc.hall().issue_auto_orders_asked(now)?)
    }
}

/// Shows an order with its replies: `GET /api/v1/order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowOrder {
    /// The order: its key or document id.
    pub order: String,
}

impl Op for ShowOrder {
    type Out = OrderRow;
    const PATH: &'static str = "/order";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        Ok(svc.hall().order(&self.order, now)?)
    }
}

/// Lists the orders held here, soonest reply due first: `GET
/// /api/v1/orders`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListOrders {
    /// Only orders not yet closed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub open: bool,
    /// Only orders whose reply came late or is missing past its due time.
    #[serde(default, skip_serializing_if = "is_false")]
    pub late: bool,
    /// Rows to skip.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: usize,
    /// Most rows.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

/// A page of orders, as of a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderList {
    /// The time their state is read at.
    pub now: Ts,
    /// The orders.
    pub page: Page<OrderRow>,
}

impl Op for ListOrders {
    type Out = OrderList;
    const PATH: &'static str = "/orders";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let rows = svc
            .hall()
            .orders(now)?
            .into_iter()
            .filter(|r| !self.open || r.view.state != OrderState::Closed)
            .filter(|r| !self.late || r.view.reply_late)
            .collect();
        Ok(OrderList {
            now,
            page: Page::of(rows, self.offset, self.limit)?,
        })
    }
}
