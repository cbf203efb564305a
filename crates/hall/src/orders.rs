//! Supervision orders at a hall: a hub issues them to the halls below it,
//! the supervised hall replies, the hub closes them. Each order is filed
//! under the supervised hall's region, so replication takes it down to that
//! hall and the reply back up.

use hallsync_model::cards;
use hallsync_model::clock::{clock_start, due};
use hallsync_model::order::{
    Card, Order, OrderAction, OrderEvent, OrderHeader, OrderView, Resolution, Rule, Verdict,
};
use hallsync_model::rules::{self, AutoOrders};
use hallsync_model::schema::{self, Record};
use hallsync_model::{DocId, DocKind, Level, RegionCode, TimeLimit, Ts};
use hallsync_store::{lock, Loaded, Pending};
use serde::{Deserialize, Serialize};

use crate::{Hall, HallError, WarningFilter};

/// Who the orders a hub issues by itself are issued by.
pub const AUTO_ISSUER: &str = "自动督办";

/// An order to issue.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The supervised hall's region; strictly below this hall.
    pub unit: RegionCode,
    /// The department within it, or empty.
    pub department: String,
    /// The case: a document id, or a case number of the unit.
    pub case: String,
    /// The rule broken.
    pub rule: Rule,
    /// The warning level.
    pub card: Card,
    /// What the unit is to put right.
    pub reason: String,
    /// Who issues it.
    pub by: String,
    /// How long the unit has to reply.
    pub reply_within: TimeLimit,
}

/// An order with where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRow {
    /// Document id.
    pub id: DocId,
    /// The order.
    #[serde(flatten)]
    pub order: Order,
    /// Derived at the time asked.
    pub view: OrderView,
}

impl Hall {
    pub(crate) fn order_of(loaded: &mut Loaded, id: &DocId) -> Result<Option<Order>, HallError> {
        fn held(r: &Record) -> Option<&Order> {
            match r {
                Record::Order(x) => Some(x),
                _ => None,
            }
        }
        Self::record_of(loaded, id, held, schema::read_order, Record::Order)
    }

    /// Every order id held here.
    fn order_ids(&self) -> Result<Vec<DocId>, HallError> {
        Ok(self
            .store
            .ids(DocKind::Order)
            .collect::<Result<Vec<DocId>, _>>()?)
    }

    /// The id of an order given as a document id or as its key
    /// (`NODE.N`).
    pub fn order_id(&self, key: &str) -> Result<DocId, HallError> {
        let unknown = || HallError::UnknownOrder(key.into());
        let found = if key.starts_with("order:") {
            let id = DocId::parse(key)?;
            self.store.contains(&id)?.then_some(id)
        } else {
            self.order_ids()?.into_iter().find(|id| id.key() == key)
        };
        found.ok_or_else(unknown)
    }

    /// The next key for an order issued here: `NODE.N`, N one past the
    /// highest this node has used.
    fn next_order_key(&self) -> Result<String, HallError> {
        let prefix = format!("{}.", self.node.id);
        let last = self
            .order_ids()?
            .iter()
            .filter_map(|id| id.key().strip_prefix(&prefix)?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        Ok(format!("{prefix}{}", last + 1))
    }

    /// Issues a supervision order to a hall below this one, about one of
    /// its cases held here. The reply falls due `reply_within` after now,
    /// on this hall's calendar.
    pub fn issue_order(&self, req: NewOrder, now: Ts) -> Result<OrderRow, HallError> {
        let here = &self.node.region;
        if !here.is_ancestor_of(&req.unit) {
            return Err(HallError::BadInput(format!(
                "orders go to halls below this one: {} is not below {here}",
                req.unit
            )));
        }
        rules::check_reply_within("reply_within", req.reply_within)?;
        let case = if req.case.starts_with("case:") {
            DocId::parse(&req.case)?
        } else {
            DocId::new(DocKind::Case, &req.unit, &req.case)?
        };
        if !req.unit.contains(case.region()) {
            return Err(HallError::BadInput(format!(
                "{case} is not a case of the supervised unit {}",
                req.unit
            )));
        }
        if !self.store.contains(&case)? {
            return Err(HallError::BadInput(format!(
                "no copy of {case} is held here: a hub holds a hall's case once that hall has synced (see `hallsync case list`)"
            )));
        }
        // A poisoned lock guards nothing but this order: carry on.
        let _issuing = self.issuing.lock().unwrap_or_else(|p| p.into_inner());
        self.check_card_to_order(&case, req.rule, req.card, now)?;
        let cal = self.calendar()?;
        let limit = req.reply_within;
        let reply_due = due(
            &cal,
            limit.unit,
            clock_start(limit, now),
            limit.budget(),
            &[],
            now,
        )
        .ok_or_else(|| {
            HallError::BadInput(format!(
                "a reply due {limit} from now lies beyond the calendar's horizon"
            ))
        })?;
        let order = Order {
            header: OrderHeader {
                unit: req.unit,
                department: req.department.trim().to_string(),
                issuer: here.clone(),
                issuer_node: self.node.id.clone(),
                case,
                rule: req.rule,
                card: req.card,
                reason: req.reason.trim().to_string(),
                issued_at: now,
                issued_by: req.by.trim().to_string(),
                reply_due,
            },
            events: Vec::new(),
        };
        order.header.validate()?;
        let id = DocId::new(DocKind::Order, &order.header.unit, &self.next_order_key()?)?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        if l.exists() {
            return Err(HallError::BadInput(format!("order {id} already exists")));
        }
        let mut doc = self.new_doc();
        schema::write_new_order(&mut doc, &id, &order)
            .map_err(|e| HallError::BadInput(e.to_string()))?;
        doc.commit();
        l.doc = doc;
        self.finish_order_write(&id, &mut l, order, now)
    }

    /// Checks that an order naming `rule` and `card` may be issued here
    /// about `case` at `now`. A card counts once per case, rule and level:
    /// the case must hold that card (standing, or ended since) when its
    /// rule is a time rule, whose cards only ever come from the case's
    /// events; the card must not have been revoked on appeal, and this hub
    /// must not have ordered it already. A complaint (never recorded as a
    /// case) or an anomaly found on inspection may be ordered without a
    /// card.
    fn check_card_to_order(
        &self,
        case: &DocId,
        rule: Rule,
        card: Card,
        now: Ts,
    ) -> Result<(), HallError> {
        let (_, row) = self.case(case.as_str(), now)?;
        let held = self
            .case_cards(&row, now)?
            .into_iter()
            .find(|c| c.rule == rule);
        let from_events_only = cards::derives(rule) && rule != Rule::Anomaly;
        match held {
            Some(c) if c.card == card => {}
            Some(c) if from_events_only => {
                return Err(HallError::NotOrderable(format!(
                    "{case} holds a {} card of {rule} (since {}), not a {card} one: issue the order at {}",
                    c.card, c.since, c.card
                )))
            }
            None if from_events_only => {
                return Err(HallError::NotOrderable(format!(
                    "{case} holds no card of {rule} at {now}: an order is issued from a card the case holds (`hallsync warning list --unit {}` lists them)",
                    row.header.region
                )))
            }
            _ => return Ok(()),
        }
        for o in self.orders_about(case, now)? {
            let h = &o.order.header;
            if h.rule != rule || h.card != card {
                continue;
            }
            if o.view.card_revoked() {
                return Err(HallError::NotOrderable(format!(
                    "the {card} card of {rule} on {case} was revoked on appeal (order {}): it is not ordered again",
                    o.id.key()
                )));
            }
            if h.issuer == self.node.region {
                return Err(HallError::NotOrderable(format!(
                    "order {} of this hub already names the {card} card of {rule} on {case}: a card is ordered once (see `hallsync order show {}`)",
                    o.id.key(),
                    o.id.key()
                )));
            }
        }
        Ok(())
    }

    /// Issues the orders this hub's own published rules call for
    /// (`auto_orders`): one for each standing card of a case below it at
    /// the level its rule names, unless an order of this hub already names
    /// that case, rule and level (so a card is ordered once, and a card
    /// revoked on appeal is not ordered again). Returns the orders issued:
    /// none at a hall whose rules name no automatic orders.
    pub fn issue_auto_orders(&self, now: Ts) -> Result<Vec<OrderRow>, HallError> {
        match self.auto_orders_here()? {
            Some(auto) => self.issue_by_rules(&auto, now),
            None => Ok(Vec::new()),
        }
    }

    /// [`Hall::issue_auto_orders`] for a person who asked (`order auto`):
    /// refused, saying why, at a township and at a hub whose published
    /// rules name no automatic orders.
    pub fn issue_auto_orders_asked(&self, now: Ts) -> Result<Vec<OrderRow>, HallError> {
        if self.node.level == Level::Township {
            return Err(HallError::BadInput(
                "order auto: orders go from a city or a county hub to the halls below it; this hall is a township".into(),
            ));
        }
        let auto = self.auto_orders_here()?.ok_or_else(|| {
            HallError::BadInput(
                "order auto: this hub's published rules name no automatic orders; set one with `hallsync rules set auto_order.RULE=LEVEL` and publish it with `hallsync rules publish`".into(),
            )
        })?;
        self.issue_by_rules(&auto, now)
    }

    /// The automatic orders this hall's own published rules name, if any.
    fn auto_orders_here(&self) -> Result<Option<AutoOrders>, HallError> {
        let here = &self.node.region;
        Ok(self
            .rules_held()?
            .iter()
            .find(|r| r.region == *here)
            .map(|r| r.auto_orders.clone())
            .filter(|a| !a.levels.is_empty()))
    }

    fn issue_by_rules(&self, auto: &AutoOrders, now: Ts) -> Result<Vec<OrderRow>, HallError> {
        let here = self.node.region.clone();
        let standing = self.warnings(&WarningFilter::default(), now, 0, usize::MAX)?;
        let mut issued = Vec::new();
        for w in standing.rows {
            let c = &w.card;
            if !auto.calls_for(&here, &w.unit, c) || w.order.is_some() {
                continue;
            }
            let req = NewOrder {
                unit: w.unit.clone(),
                department: String::new(),
                case: w.case.to_string(),
                rule: c.rule,
                card: c.card,
                reason: format!(
                    "按本级监察规则自动督办：亮牌自 {} 起，请说明原因并整改（{}）。",
                    c.since, c.clears
                ),
                by: AUTO_ISSUER.into(),
                reply_within: auto.reply_within,
            };
            issued.push(self.issue_order(req, now)?);
        }
        Ok(issued)
    }

    /// Records the supervised hall's reply to an order addressed to it.
    pub fn reply_order(
        &self,
        key: &str,
        text: &str,
        by: &str,
        now: Ts,
    ) -> Result<OrderRow, HallError> {
        let action = OrderAction::Reply {
            text: text.trim().to_string(),
        };
        self.order_event(key, action, by, now)
    }

    /// Closes an order this hall issued, with its result.
    pub fn close_order(
        &self,
        key: &str,
        resolution: Resolution,
        text: &str,
        by: &str,
        now: Ts,
    ) -> Result<OrderRow, HallError> {
        let action = OrderAction::Close {
            resolution,
            text: text.trim().to_string(),
        };
        self.order_event(key, action, by, now)
    }

    /// Records the supervised hall's appeal (申诉) of the card an order
    /// addressed to it names: the card was raised in error.
    pub fn appeal_order(
        &self,
        key: &str,
        text: &str,
        by: &str,
        now: Ts,
    ) -> Result<OrderRow, HallError> {
        let action = OrderAction::Appeal {
            text: text.trim().to_string(),
        };
        self.order_event(key, action, by, now)
    }

    /// Decides the appeal of an order this hall issued: the card stands,
    /// or it is revoked (and the order closed as withdrawn).
    pub fn decide_appeal(
        &self,
        key: &str,
        verdict: Verdict,
        text: &str,
        by: &str,
        now: Ts,
    ) -> Result<OrderRow, HallError> {
        let action = OrderAction::Decide {
            verdict,
            text: text.trim().to_string(),
        };
        self.order_event(key, action, by, now)
    }

    fn order_event(
        &self,
        key: &str,
        action: OrderAction,
        by: &str,
        now: Ts,
    ) -> Result<OrderRow, HallError> {
        let id = self.order_id(key)?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let mut order =
            Self::order_of(&mut l, &id)?.ok_or_else(|| HallError::UnknownOrder(key.into()))?;
        let event = OrderEvent {
            id: order.next_event_id(&self.node.id, self.actor_tag())?,
            at: now,
            by: by.trim().to_string(),
            node: self.node.id.clone(),
            action,
        };
        order.check(&event, &self.node.region)?;
        if let Err(e) = schema::write_order_event(&mut l.doc, &event) {
            l.doc.rollback();
            return Err(HallError::BadInput(e.to_string()));
        }
        l.doc.commit();
        order.events.push(event);
        self.finish_order_write(&id, &mut l, order, now)
    }

    fn finish_order_write(
        &self,
        id: &DocId,
        l: &mut Loaded,
        order: Order,
        now: Ts,
    ) -> Result<OrderRow, HallError> {
        let view = order.view(now);
        let facts = Self::order_facts(&order)?;
        l.record = Some(Record::Order(order.clone()));
        self.persist(&mut [Pending {
            id,
            loaded: l,
            index: None,
            facts: Some(facts),
        }])?;
        Ok(OrderRow {
            id: id.clone(),
            order,
            view,
        })
    }

    /// One order with where it stands at `now`.
    pub fn order(&self, key: &str, now: Ts) -> Result<OrderRow, HallError> {
        let id = self.order_id(key)?;
        self.order_row(id, now)
    }

    fn order_row(&self, id: DocId, now: Ts) -> Result<OrderRow, HallError> {
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let order =
            Self::order_of(&mut l, &id)?.ok_or_else(|| HallError::UnknownOrder(id.to_string()))?;
        let view = order.view(now);
        Ok(OrderRow { id, order, view })
    }

    /// The orders held here that name case `case`. Only orders addressed to
    /// the case's region or a region above it can, so only those are read.
    pub fn orders_about(&self, case: &DocId, now: Ts) -> Result<Vec<OrderRow>, HallError> {
        let mut rows = Vec::new();
        let mut unit = Some(case.region().clone());
        while let Some(r) = unit {
            let prefix = format!("{}:{}:", DocKind::Order.as_str(), r.as_str());
            for id in self.store.ids_with_prefix(&prefix) {
                let row = self.order_row(id?, now)?;
                if row.order.header.case == *case {
                    rows.push(row);
                }
            }
            unit = r.parent();
        }
        soonest_due_first(&mut rows);
        Ok(rows)
    }

    /// Every order held here (those it issued, those addressed to it and,
    /// at a hub, those addressed to the halls below it), soonest reply due
    /// first.
    pub fn orders(&self, now: Ts) -> Result<Vec<OrderRow>, HallError> {
        let mut rows = self
            .order_ids()?
            .into_iter()
            .map(|id| self.order_row(id, now))
            .collect::<Result<Vec<_>, _>>()?;
        soonest_due_first(&mut rows);
        Ok(rows)
    }
}

fn soonest_due_first(rows: &mut [OrderRow]) {
    rows.sort_by(|a, b| (a.order.header.reply_due, &a.id).cmp(&(b.order.header.reply_due, &b.id)));
}
