//! How every record is laid out as an Automerge document.
//!
//! `crates/model/SCHEMA.md` describes the same layout for people and other tools;
//! this module is the code that writes and reads it. Reading is strict: a
//! document from the network, the disk or a file is hostile until it has
//! been read back into a typed record here, with every field checked and
//! every string and collection bounded.

use automerge::hydrate;
use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ReadDoc, ScalarValue, ROOT};
use thiserror::Error;

use crate::calendar::{parse_office_hours, CalendarDay, DayKind, OfficeHours, Window};
use crate::case::{
    Applicant, Case, CaseEvent, CaseHeader, EventKind, FeeRef, ItemRef, Outcome, Procedure,
};
use crate::catalogue::{
    CaseType, Category, Disclosure, DiscretionTier, Fee, Item, ItemContent, Material, MaterialForm,
    ReviewAction, ReviewRecord,
};
use crate::clock::{LimitUnit, TimeLimit};
use crate::ids::{DocId, DocKind, Level, LogId, NodeId, RegionCode};
use crate::order::{
    Card, Order, OrderAction, OrderError, OrderEvent, OrderHeader, Resolution, Rule, Verdict,
    MAX_EVENTS,
};
use crate::registry::{ClockOff, CrlCopy, RegistryEntry, Restored, MAX_CRL_BYTES};
use crate::rules::{set_threshold, threshold_names, threshold_values, Rules};
use crate::time::{parse_date, Ts};
use crate::valid::{self, Invalid};

/// Schema tag of case documents.
pub const CASE_SCHEMA: &str = "hallsync/case/1";
/// Schema tag of item documents.
pub const ITEM_SCHEMA: &str = "hallsync/item/1";
/// Schema tag of calendar documents.
pub const CAL_SCHEMA: &str = "hallsync/cal/1";
/// Schema tag of registry entries.
pub const NODE_SCHEMA: &str = "hallsync/node/1";
/// Schema tag of supervision orders.
pub const ORDER_SCHEMA: &str = "hallsync/order/1";
/// Schema tag of a hub's supervision rules.
pub const RULES_SCHEMA: &str = "hallsync/rules/1";

pub use crate::valid::{MAX_ENTRIES, MAX_STR};

/// Why a document is not a valid hallsync record.
#[derive(Debug, Error)]
pub enum SchemaError {
    /// The document has no hallsync schema tag.
    #[error("not a hallsync record: {0}")]
    Foreign(String),
    /// A field is missing or wrong.
    #[error("field {path}: {reason}")]
    Field {
        /// Where in the document.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The document's own id disagrees with where it was found.
    #[error("the document is {found} but {expected} was expected")]
    IdMismatch {
        /// Id in the document.
        found: String,
        /// Id expected.
        expected: String,
    },
    /// Automerge refused an operation.
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
}

impl From<Invalid> for SchemaError {
    fn from(e: Invalid) -> SchemaError {
        SchemaError::Field {
            path: e.path,
            reason: e.reason,
        }
    }
}

/// One year of a region's holiday calendar, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarYear {
    /// The region that published it.
    pub region: RegionCode,
    /// The year.
    pub year: i32,
    /// Office hours for working-hour limits.
    pub office_hours: Vec<Window>,
    /// Holidays and make-up working days.
    pub days: Vec<CalendarDay>,
}

impl CalendarYear {
    /// Checks the record (see [`crate::valid`]): every day lies in the
    /// year, and the list and its names are bounded.
    pub fn validate(&self) -> Result<(), Invalid> {
        valid::entries("days", self.days.len(), MAX_ENTRIES)?;
        valid::entries("office_hours", self.office_hours.len(), MAX_ENTRIES)?;
        for d in &self.days {
            let path = format!("days.{}", d.date.format("%Y-%m-%d"));
            if chrono::Datelike::year(&d.date) != self.year {
                return Err(Invalid::new(path, format!("is not in {}", self.year)));
            }
            valid::text(&format!("{path}.name"), &d.name, MAX_STR)?;
        }
        Ok(())
    }
}

/// Any record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A catalogue item.
    Item(Item),
    /// A case.
    Case(Case),
    /// A calendar year.
    Calendar(CalendarYear),
    /// A node's registry entry.
    Node(RegistryEntry),
    /// A supervision order.
    Order(Order),
    /// A hub's supervision rules.
    Rules(Rules),
}

impl Record {
    /// Checks the record against the one definition of a valid record
    /// ([`crate::valid`]). Every writer calls this before storing a record,
    /// and [`read_record`] calls it on every record it reads.
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            Record::Case(c) => c.validate(),
            Record::Item(i) => i.validate(),
            Record::Calendar(c) => c.validate(),
            Record::Node(e) => e
                .validate()
                .map_err(|(path, reason)| Invalid::new(path, reason)),
            Record::Rules(r) => r.validate(),
            Record::Order(o) => o.validate().map_err(|e| match e {
                OrderError::Invalid { field, reason } => Invalid::new(field, reason),
                other => Invalid::new("", other.to_string()),
            }),
        }
    }
}

// ---------------------------------------------------------------- writing

fn put_limit<T: Transactable>(
    doc: &mut T,
    obj: &automerge::ObjId,
    key: &str,
    l: TimeLimit,
) -> Result<(), AutomergeError> {
    let m = doc.put_object(obj, key, ObjType::Map)?;
    doc.put(&m, "amount", i64::from(l.amount))?;
    doc.put(&m, "unit", l.unit.as_str())?;
    Ok(())
}

fn put_strs<T: Transactable>(
    doc: &mut T,
    obj: &automerge::ObjId,
    key: &str,
    items: &[String],
) -> Result<(), AutomergeError> {
    let l = doc.put_object(obj, key, ObjType::List)?;
    for (i, s) in items.iter().enumerate() {
        doc.insert(&l, i, s.as_str())?;
    }
    Ok(())
}

fn put_records<T: Transactable, R>(
    doc: &mut T,
    key: &str,
    items: &[R],
    fields: impl Fn(&R) -> Vec<(&'static str, ScalarValue)>,
) -> Result<(), AutomergeError> {
    let l = doc.put_object(ROOT, key, ObjType::List)?;
    for (i, r) in items.iter().enumerate() {
        let m = doc.insert_object(&l, i, ObjType::Map)?;
        for (k, v) in fields(r) {
            doc.put(&m, k, v)?;
        }
    }
    Ok(())
}

fn ts(t: Ts) -> ScalarValue {
    ScalarValue::Timestamp(t.millis())
}

/// Writes a new case document: schema, header and initial events.
pub fn write_new_case<T: Transactable>(
    doc: &mut T,
    id: &DocId,
    case: &Case,
) -> Result<(), AutomergeError> {
    let h = &case.header;
    doc.put(ROOT, "schema", CASE_SCHEMA)?;
    doc.put(ROOT, "id", id.as_str())?;
    doc.put(ROOT, "number", h.number.as_str())?;
    doc.put(ROOT, "region", h.region.as_str())?;
    doc.put(ROOT, "hall", h.hall.as_str())?;
    doc.put(ROOT, "channel", h.channel.as_str())?;
    let item = doc.put_object(ROOT, "item", ObjType::Map)?;
    doc.put(&item, "impl_code", h.item.impl_code.as_str())?;
    doc.put(&item, "name", h.item.name.as_str())?;
    doc.put(&item, "version", i64::from(h.item.version))?;
    doc.put(&item, "category", h.item.category.code())?;
    doc.put(&item, "agency", h.item.agency.as_str())?;
    put_limit(doc, &item, "statutory_limit", h.item.statutory_limit)?;
    put_limit(doc, &item, "committed_limit", h.item.committed_limit)?;
    doc.put(&item, "case_type", h.item.case_type.as_str())?;
    doc.put(&item, "disclosure", h.item.disclosure.as_str())?;
    if let Some(fees) = &h.item.fees {
        let l = doc.put_object(&item, "fees", ObjType::List)?;
        for (i, f) in fees.iter().enumerate() {
            let m = doc.insert_object(&l, i, ObjType::Map)?;
            doc.put(&m, "name", f.name.as_str())?;
            if let Some(max) = f.max_fen {
                doc.put(&m, "max_fen", max)?;
            }
        }
    }
    let ap = doc.put_object(ROOT, "applicant", ObjType::Map)?;
    doc.put(&ap, "name", h.applicant.name.as_str())?;
    doc.put(&ap, "id_type", h.applicant.id_type.as_str())?;
    doc.put(&ap, "id_number", h.applicant.id_number.as_str())?;
    doc.put_object(ROOT, "events", ObjType::Map)?;
    for e in &case.events {
        write_event(doc, e)?;
    }
    Ok(())
}

/// Puts a new event map under `events.<id>` with the fields every event
/// has, and returns it for the kind's own fields.
fn put_event_map<T: Transactable>(
    doc: &mut T,
    id: &LogId,
    kind: &str,
    at: Ts,
    by: &str,
    node: &NodeId,
) -> Result<automerge::ObjId, AutomergeError> {
    let events = match doc.get(ROOT, "events")? {
        Some((automerge::Value::Object(ObjType::Map), id)) => id,
        _ => doc.put_object(ROOT, "events", ObjType::Map)?,
    };
    let m = doc.put_object(&events, id.to_string(), ObjType::Map)?;
    doc.put(&m, "kind", kind)?;
    doc.put(&m, "at", ts(at))?;
    doc.put(&m, "by", by)?;
    doc.put(&m, "node", node.as_str())?;
    Ok(m)
}

/// Adds one event to a case document.
pub fn write_event<T: Transactable>(doc: &mut T, e: &CaseEvent) -> Result<(), AutomergeError> {
    let m = put_event_map(doc, &e.id, e.kind.name(), e.at, &e.by, &e.node)?;
    for (k, v) in event_fields(&e.kind) {
        doc.put(&m, k, v)?;
    }
    Ok(())
}

/// Writes a new supervision order: schema, header and any events.
pub fn write_new_order<T: Transactable>(
    doc: &mut T,
    id: &DocId,
    order: &Order,
) -> Result<(), AutomergeError> {
    let h = &order.header;
    doc.put(ROOT, "schema", ORDER_SCHEMA)?;
    doc.put(ROOT, "id", id.as_str())?;
    doc.put(ROOT, "unit", h.unit.as_str())?;
    doc.put(ROOT, "department", h.department.as_str())?;
    doc.put(ROOT, "issuer", h.issuer.as_str())?;
    doc.put(ROOT, "issuer_node", h.issuer_node.as_str())?;
    doc.put(ROOT, "case", h.case.as_str())?;
    doc.put(ROOT, "rule", h.rule.as_str())?;
    doc.put(ROOT, "card", h.card.as_str())?;
    doc.put(ROOT, "reason", h.reason.as_str())?;
    doc.put(ROOT, "issued_at", ts(h.issued_at))?;
    doc.put(ROOT, "issued_by", h.issued_by.as_str())?;
    doc.put(ROOT, "reply_due", ts(h.reply_due))?;
    doc.put_object(ROOT, "events", ObjType::Map)?;
    for e in &order.events {
        write_order_event(doc, e)?;
    }
    Ok(())
}

/// Adds one event (a reply or the closing) to an order.
pub fn write_order_event<T: Transactable>(
    doc: &mut T,
    e: &OrderEvent,
) -> Result<(), AutomergeError> {
    let m = put_event_map(doc, &e.id, e.action.name(), e.at, &e.by, &e.node)?;
    match &e.action {
        OrderAction::Reply { text } => doc.put(&m, "text", text.as_str())?,
        OrderAction::Close { resolution, text } => {
            doc.put(&m, "resolution", resolution.as_str())?;
            doc.put(&m, "text", text.as_str())?;
        }
        OrderAction::Appeal { text } => doc.put(&m, "text", text.as_str())?,
        OrderAction::Decide { verdict, text } => {
            doc.put(&m, "verdict", verdict.as_str())?;
            doc.put(&m, "text", text.as_str())?;
        }
    }
    Ok(())
}

fn event_fields(kind: &EventKind) -> Vec<(&'static str, ScalarValue)> {
    let s = |v: &str| ScalarValue::Str(v.into());
    match kind {
        EventKind::Received
        | EventKind::SupplementCompleted
        | EventKind::Accepted
        | EventKind::Published => vec![],
        EventKind::SupplementRequested { materials } => vec![("materials", s(materials))],
        EventKind::NotAccepted { reason, formal } => {
            vec![
                ("reason", s(reason)),
                ("formal", ScalarValue::Boolean(*formal)),
            ]
        }
        EventKind::StepStarted { step } => vec![("step", s(step))],
        EventKind::StepFinished {
            step,
            pass,
            opinion,
        } => vec![
            ("step", s(step)),
            ("pass", ScalarValue::Boolean(*pass)),
            ("opinion", s(opinion)),
        ],
        EventKind::SpecialStarted {
            procedure,
            reason,
            until,
        } => {
            let mut f = vec![("procedure", s(procedure.as_str())), ("reason", s(reason))];
            if let Some(u) = until {
                f.push(("until", ts(*u)));
            }
            f
        }
        EventKind::SpecialEnded { result } => vec![("result", s(result))],
        EventKind::Extended { amount, reason } => vec![
            ("amount", ScalarValue::Int(i64::from(amount.amount))),
            ("unit", s(amount.unit.as_str())),
            ("reason", s(reason)),
        ],
        EventKind::FeeCharged { name, amount_fen } => vec![
            ("name", s(name)),
            ("amount_fen", ScalarValue::Int(*amount_fen)),
        ],
        EventKind::Concluded {
            outcome,
            opinion,
            certificate,
        } => vec![
            ("outcome", s(outcome.as_str())),
            ("opinion", s(opinion)),
            ("certificate", s(certificate)),
        ],
        EventKind::Withdrawn { reason }
        | EventKind::Recalled { reason }
        | EventKind::Revoked { reason } => vec![("reason", s(reason))],
        EventKind::CertificateDelivered { method } => vec![("method", s(method))],
        EventKind::Forwarded { to } => vec![("to", s(to))],
        EventKind::Filed { office } => vec![("office", s(office))],
        EventKind::Rated { score } => vec![("score", ScalarValue::Int(i64::from(*score)))],
    }
}

/// Writes (or overwrites) an item's content fields and version.
pub fn write_item_content<T: Transactable>(
    doc: &mut T,
    id: &DocId,
    content: &ItemContent,
    version: u32,
) -> Result<(), AutomergeError> {
    let c = content;
    doc.put(ROOT, "schema", ITEM_SCHEMA)?;
    doc.put(ROOT, "id", id.as_str())?;
    doc.put(ROOT, "version", i64::from(version))?;
    for (k, v) in [
        ("name", &c.name),
        ("basic_code", &c.basic_code),
        ("impl_code", &c.impl_code),
        ("legal_basis", &c.legal_basis),
        ("agency", &c.agency),
        ("agency_code", &c.agency_code),
        ("office", &c.office),
        ("conditions", &c.conditions),
        ("consult_phone", &c.consult_phone),
        ("complaint_phone", &c.complaint_phone),
    ] {
        doc.put(ROOT, k, v.as_str())?;
    }
    doc.put(ROOT, "category", c.category.code())?;
    doc.put(ROOT, "exercise_level", i64::from(c.exercise_level))?;
    doc.put(ROOT, "case_type", c.case_type.as_str())?;
    doc.put(ROOT, "disclosure", c.disclosure.as_str())?;
    put_limit(doc, &ROOT, "statutory_limit", c.statutory_limit)?;
    put_limit(doc, &ROOT, "committed_limit", c.committed_limit)?;
    put_strs(doc, &ROOT, "co_departments", &c.co_departments)?;
    put_strs(doc, &ROOT, "steps", &c.steps)?;
    let s = |v: &str| ScalarValue::Str(v.into());
    put_records(doc, "materials", &c.materials, |m| {
        vec![
            ("name", s(&m.name)),
            ("form", s(m.form.as_str())),
            ("mandatory", ScalarValue::Boolean(m.mandatory)),
        ]
    })?;
    put_records(doc, "fees", &c.fees, |f| {
        vec![
            ("name", s(&f.name)),
            ("standard", s(&f.standard)),
            ("basis", s(&f.basis)),
        ]
    })?;
    put_records(doc, "discretion", &c.discretion, |d| {
        vec![("facts", s(&d.facts)), ("range", s(&d.range))]
    })?;
    for (k, d) in [("effective", c.effective), ("cancel_date", c.cancelled)] {
        match d {
            Some(d) => doc.put(ROOT, k, d.format("%Y-%m-%d").to_string())?,
            None => doc.put(ROOT, k, ScalarValue::Null)?,
        }
    }
    if doc.get(ROOT, "review")?.is_none() {
        doc.put_object(ROOT, "review", ObjType::Map)?;
    }
    Ok(())
}

/// Adds a review record to an item document.
pub fn write_review<T: Transactable>(doc: &mut T, r: &ReviewRecord) -> Result<(), AutomergeError> {
    let review = match doc.get(ROOT, "review")? {
        Some((automerge::Value::Object(ObjType::Map), id)) => id,
        _ => doc.put_object(ROOT, "review", ObjType::Map)?,
    };
    let m = doc.put_object(&review, r.id.to_string(), ObjType::Map)?;
    doc.put(&m, "action", r.action.as_str())?;
    doc.put(&m, "version", i64::from(r.version))?;
    doc.put(&m, "by", r.by.as_str())?;
    doc.put(&m, "at", ts(r.at))?;
    doc.put(&m, "reason", r.reason.as_str())?;
    doc.put(&m, "node", r.node.as_str())?;
    Ok(())
}

/// Writes a calendar year, replacing any days it held before.
pub fn write_calendar<T: Transactable>(
    doc: &mut T,
    id: &DocId,
    cal: &CalendarYear,
) -> Result<(), AutomergeError> {
    doc.put(ROOT, "schema", CAL_SCHEMA)?;
    doc.put(ROOT, "id", id.as_str())?;
    doc.put(ROOT, "region", cal.region.as_str())?;
    doc.put(ROOT, "year", i64::from(cal.year))?;
    doc.put(
        ROOT,
        "office_hours",
        OfficeHours(&cal.office_hours).to_string(),
    )?;
    let days = doc.put_object(ROOT, "days", ObjType::Map)?;
    for d in &cal.days {
        let m = doc.put_object(&days, d.date.format("%Y-%m-%d").to_string(), ObjType::Map)?;
        doc.put(&m, "kind", d.kind.as_str())?;
        doc.put(&m, "name", d.name.as_str())?;
    }
    Ok(())
}

/// Puts `value` at the root unless it is already there.
fn put_changed<T: Transactable>(
    doc: &mut T,
    key: &str,
    value: ScalarValue,
) -> Result<(), AutomergeError> {
    let same = matches!(
        doc.get(ROOT, key)?,
        Some((automerge::Value::Scalar(old), _)) if *old == value
    );
    if !same {
        doc.put(ROOT, key, value)?;
    }
    Ok(())
}

/// Writes a registry entry. Only fields whose value differs are written, so
/// a node rewriting its own entry adds only what changed.
pub fn write_registry_entry<T: Transactable>(
    doc: &mut T,
    id: &DocId,
    e: &RegistryEntry,
) -> Result<(), AutomergeError> {
    let s = |v: &str| ScalarValue::Str(v.into());
    let opt = |v: Option<&str>| v.map_or(ScalarValue::Null, s);
    let fields = [
        ("schema", s(NODE_SCHEMA)),
        ("id", s(id.as_str())),
        ("node", s(e.node.as_str())),
        ("name", s(&e.name)),
        ("level", s(e.level.as_str())),
        ("region", s(e.region.as_str())),
        ("parent", opt(e.parent.as_ref().map(NodeId::as_str))),
        ("addr", opt(e.addr.as_deref())),
        ("serial", s(&e.serial)),
        (
            "crl_number",
            e.crl
                .as_ref()
                .map_or(ScalarValue::Null, |c| ScalarValue::Uint(c.number)),
        ),
        (
            "crl",
            e.crl
                .as_ref()
                .map_or(ScalarValue::Null, |c| ScalarValue::Bytes(c.der.clone())),
        ),
        (
            "clock_off",
            if e.clock_off.is_empty() {
                ScalarValue::Null
            } else {
                s(&ClockOff::encode(&e.clock_off))
            },
        ),
        (
            "restored",
            if e.restored.is_empty() {
                ScalarValue::Null
            } else {
                s(&Restored::encode(&e.restored))
            },
        ),
    ];
    for (key, value) in fields {
        put_changed(doc, key, value)?;
    }
    Ok(())
}

/// Writes a hub's rules, replacing what they held.
pub fn write_rules<T: Transactable>(
    doc: &mut T,
    id: &DocId,
    r: &Rules,
) -> Result<(), AutomergeError> {
    let s = |v: &str| ScalarValue::Str(v.into());
    let fields = [
        ("schema", s(RULES_SCHEMA)),
        ("id", s(id.as_str())),
        ("region", s(r.region.as_str())),
        ("version", ScalarValue::Uint(u64::from(r.version))),
        ("published_at", ts(r.published_at)),
        ("published_by", s(&r.published_by)),
    ];
    for (key, value) in fields {
        put_changed(doc, key, value)?;
    }
    let t = doc.put_object(ROOT, "thresholds", ObjType::Map)?;
    for (name, value) in threshold_values(&r.thresholds) {
        doc.put(&t, name, value)?;
    }
    let a = doc.put_object(ROOT, "auto_orders", ObjType::Map)?;
    for (name, value) in r.auto_orders.values() {
        doc.put(&a, name, value)?;
    }
    let w = doc.put_object(ROOT, "weights", ObjType::Map)?;
    let weights = &r.weights;
    for (name, value) in [
        ("on_time", weights.on_time),
        ("speed_up", weights.speed_up),
        ("satisfaction", weights.satisfaction),
        ("cards", weights.cards),
        ("orders", weights.orders),
    ] {
        doc.put(&w, name, ScalarValue::Uint(u64::from(value)))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- reading

struct Obj<'a> {
    map: &'a hydrate::Map,
    path: String,
}

fn field(path: &str, key: &str, reason: impl Into<String>) -> SchemaError {
    SchemaError::Field {
        path: if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        },
        reason: reason.into(),
    }
}

fn text_of(v: &hydrate::Value) -> Option<String> {
    match v {
        hydrate::Value::Scalar(ScalarValue::Str(s)) => Some(s.to_string()),
        hydrate::Value::Text(t) => Some(String::from(t)),
        _ => None,
    }
}

impl<'a> Obj<'a> {
    fn root(v: &'a hydrate::Value) -> Result<Obj<'a>, SchemaError> {
        match v {
            hydrate::Value::Map(map) => Ok(Obj {
                map,
                path: String::new(),
            }),
            _ => Err(SchemaError::Foreign("the root is not a map".into())),
        }
    }

    fn err(&self, key: &str, reason: impl Into<String>) -> SchemaError {
        field(&self.path, key, reason)
    }

    fn get(&self, key: &str) -> Option<&'a hydrate::Value> {
        self.map
            .get(key)
            .filter(|v| !matches!(v, hydrate::Value::Scalar(ScalarValue::Null)))
    }

    fn opt_str(&self, key: &str) -> Result<String, SchemaError> {
        match self.get(key) {
            None => Ok(String::new()),
            Some(v) => {
                let s = text_of(v).ok_or_else(|| self.err(key, "is not a string"))?;
                if s.chars().count() > MAX_STR {
                    return Err(self.err(key, format!("is longer than {MAX_STR} characters")));
                }
                Ok(s)
            }
        }
    }

    fn str(&self, key: &str) -> Result<String, SchemaError> {
        if self.get(key).is_none() {
            return Err(self.err(key, "is missing"));
        }
        self.opt_str(key)
    }

    fn parsed<T>(&self, key: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, SchemaError> {
        let s = self.str(key)?;
        parse(&s).ok_or_else(|| self.err(key, format!("{s:?} is not a valid value")))
    }

    fn int(&self, key: &str) -> Result<i64, SchemaError> {
        match self.get(key) {
            Some(hydrate::Value::Scalar(ScalarValue::Int(i))) => Ok(*i),
            Some(hydrate::Value::Scalar(ScalarValue::Uint(u))) => {
                i64::try_from(*u).map_err(|_| self.err(key, "is out of range"))
            }
            Some(_) => Err(self.err(key, "is not an integer")),
            None => Err(self.err(key, "is missing")),
        }
    }

    fn small<T: TryFrom<i64>>(&self, key: &str) -> Result<T, SchemaError> {
        let i = self.int(key)?;
        T::try_from(i).map_err(|_| self.err(key, format!("{i} is out of range")))
    }

    fn opt_ts(&self, key: &str) -> Result<Option<Ts>, SchemaError> {
        match self.get(key) {
            Some(hydrate::Value::Scalar(ScalarValue::Timestamp(ms)))
            | Some(hydrate::Value::Scalar(ScalarValue::Int(ms))) => Ok(Some(Ts::from_millis(*ms))),
            Some(_) => Err(self.err(key, "is not a timestamp")),
            None => Ok(None),
        }
    }

    fn ts(&self, key: &str) -> Result<Ts, SchemaError> {
        self.opt_ts(key)?.ok_or_else(|| self.err(key, "is missing"))
    }

    fn bool(&self, key: &str) -> Result<bool, SchemaError> {
        match self.get(key) {
            Some(hydrate::Value::Scalar(ScalarValue::Boolean(b))) => Ok(*b),
            Some(_) => Err(self.err(key, "is not a boolean")),
            None => Err(self.err(key, "is missing")),
        }
    }

    fn child(&self, key: &str, v: &'a hydrate::Value) -> Result<Obj<'a>, SchemaError> {
        match v {
            hydrate::Value::Map(map) => Ok(Obj {
                map,
                path: if self.path.is_empty() {
                    key.to_string()
                } else {
                    format!("{}.{key}", self.path)
                },
            }),
            _ => Err(self.err(key, "is not a map")),
        }
    }

    fn map(&self, key: &str) -> Result<Obj<'a>, SchemaError> {
        let v = self.get(key).ok_or_else(|| self.err(key, "is missing"))?;
        self.child(key, v)
    }

    /// The entries of a map of maps, bounded, in key order (Automerge
    /// hands a map over as a hash map: without the sort, reading the same
    /// document twice could list events or reviews in another order).
    fn entries(&self, key: &str) -> Result<Vec<(String, Obj<'a>)>, SchemaError> {
        let m = match self.get(key) {
            None => return Ok(Vec::new()),
            Some(v) => self.child(key, v)?,
        };
        if m.map.iter().count() > MAX_ENTRIES {
            return Err(self.err(key, format!("has more than {MAX_ENTRIES} entries")));
        }
        let mut found: Vec<_> = m.map.iter().collect();
        found.sort_by(|a, b| a.0.cmp(b.0));
        found
            .into_iter()
            .map(|(k, mv)| {
                if mv.conflict {
                    return Err(m.err(k, "was written concurrently under the same key"));
                }
                Ok((k.clone(), m.child(k, &mv.value)?))
            })
            .collect()
    }

    fn list(&self, key: &str) -> Result<Vec<&'a hydrate::Value>, SchemaError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(hydrate::Value::List(l)) if l.len() <= MAX_ENTRIES => {
                Ok(l.iter().map(|lv| &lv.value).collect())
            }
            Some(hydrate::Value::List(_)) => {
                Err(self.err(key, format!("has more than {MAX_ENTRIES} entries")))
            }
            Some(_) => Err(self.err(key, "is not a list")),
        }
    }

    fn strs(&self, key: &str) -> Result<Vec<String>, SchemaError> {
        self.list(key)?
            .into_iter()
            .map(|v| {
                text_of(v)
                    .filter(|s| s.chars().count() <= MAX_STR)
                    .ok_or_else(|| self.err(key, "holds something other than short strings"))
            })
            .collect()
    }

    fn records(&self, key: &str) -> Result<Vec<Obj<'a>>, SchemaError> {
        self.list(key)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| self.child(&format!("{key}[{i}]"), v))
            .collect()
    }

    fn limit(&self, key: &str) -> Result<TimeLimit, SchemaError> {
        let m = self.map(key)?;
        let amount: u32 = m.small("amount")?;
        if amount > crate::clock::MAX_LIMIT_AMOUNT {
            return Err(m.err("amount", "is implausibly long"));
        }
        Ok(TimeLimit::new(amount, m.parsed("unit", LimitUnit::parse)?))
    }

    fn node(&self, key: &str) -> Result<NodeId, SchemaError> {
        let s = self.str(key)?;
        NodeId::parse(&s).map_err(|e| self.err(key, e.to_string()))
    }

    fn opt_bytes(&self, key: &str, max: usize) -> Result<Option<Vec<u8>>, SchemaError> {
        match self.get(key) {
            None => Ok(None),
            Some(hydrate::Value::Scalar(ScalarValue::Bytes(b))) if b.len() <= max => {
                Ok(Some(b.clone()))
            }
            Some(hydrate::Value::Scalar(ScalarValue::Bytes(_))) => {
                Err(self.err(key, format!("is longer than {max} bytes")))
            }
            Some(_) => Err(self.err(key, "is not bytes")),
        }
    }
}

fn hydrate_root(doc: &impl ReadDoc) -> Result<hydrate::Value, SchemaError> {
    Ok(doc.hydrate(ROOT, None)?)
}

fn check_id(root: &Obj<'_>, kind: DocKind, expected: Option<&DocId>) -> Result<DocId, SchemaError> {
    let s = root.str("id")?;
    let id = DocId::parse(&s).map_err(|e| root.err("id", e.to_string()))?;
    if id.kind() != kind {
        return Err(root.err("id", format!("is a {} id in a {kind} document", id.kind())));
    }
    if let Some(exp) = expected.filter(|e| **e != id) {
        return Err(SchemaError::IdMismatch {
            found: id.to_string(),
            expected: exp.to_string(),
        });
    }
    Ok(id)
}

/// A log entry's key, as found in a document.
fn log_id(e: &Obj<'_>, key: &str) -> Result<LogId, SchemaError> {
    LogId::parse(key).map_err(|err| e.err("", err.to_string()))
}

fn read_event(key: String, e: &Obj<'_>) -> Result<CaseEvent, SchemaError> {
    let id = log_id(e, &key)?;
    let kind_name = e.str("kind")?;
    let kind = match kind_name.as_str() {
        "received" => EventKind::Received,
        "supplement_requested" => EventKind::SupplementRequested {
            materials: e.opt_str("materials")?,
        },
        "supplement_completed" => EventKind::SupplementCompleted,
        "accepted" => EventKind::Accepted,
        "not_accepted" => EventKind::NotAccepted {
            reason: e.opt_str("reason")?,
            formal: e.bool("formal")?,
        },
        "step_started" => EventKind::StepStarted {
            step: e.str("step")?,
        },
        "step_finished" => EventKind::StepFinished {
            step: e.str("step")?,
            pass: e.bool("pass")?,
            opinion: e.opt_str("opinion")?,
        },
        "special_started" => EventKind::SpecialStarted {
            procedure: e.parsed("procedure", Procedure::parse)?,
            reason: e.opt_str("reason")?,
            until: e.opt_ts("until")?,
        },
        "special_ended" => EventKind::SpecialEnded {
            result: e.opt_str("result")?,
        },
        "extended" => EventKind::Extended {
            amount: TimeLimit::new(e.small("amount")?, e.parsed("unit", LimitUnit::parse)?),
            reason: e.opt_str("reason")?,
        },
        "fee_charged" => EventKind::FeeCharged {
            name: e.str("name")?,
            amount_fen: e.int("amount_fen")?,
        },
        "concluded" => EventKind::Concluded {
            outcome: e.parsed("outcome", Outcome::parse)?,
            opinion: e.opt_str("opinion")?,
            certificate: e.opt_str("certificate")?,
        },
        "withdrawn" => EventKind::Withdrawn {
            reason: e.opt_str("reason")?,
        },
        "recalled" => EventKind::Recalled {
            reason: e.opt_str("reason")?,
        },
        "revoked" => EventKind::Revoked {
            reason: e.opt_str("reason")?,
        },
        "certificate_delivered" => EventKind::CertificateDelivered {
            method: e.opt_str("method")?,
        },
        "published" => EventKind::Published,
        "forwarded" => EventKind::Forwarded { to: e.str("to")? },
        "filed" => EventKind::Filed {
            office: e.str("office")?,
        },
        "rated" => EventKind::Rated {
            score: e.small("score")?,
        },
        other => return Err(e.err("kind", format!("{other:?} is not an event kind"))),
    };
    Ok(CaseEvent {
        id,
        at: e.ts("at")?,
        by: e.opt_str("by")?,
        node: e.node("node")?,
        kind,
    })
}

fn read_case_root(root: &Obj<'_>, id: &DocId) -> Result<Case, SchemaError> {
    let item = root.map("item")?;
    let ap = root.map("applicant")?;
    let region = root.str("region")?;
    let header = CaseHeader {
        number: root.str("number")?,
        region: RegionCode::parse(&region).map_err(|e| root.err("region", e.to_string()))?,
        hall: root.node("hall")?,
        channel: root.str("channel")?,
        item: ItemRef {
            impl_code: item.str("impl_code")?,
            name: item.str("name")?,
            version: item.small("version")?,
            category: item.parsed("category", Category::parse)?,
            agency: item.opt_str("agency")?,
            statutory_limit: item.limit("statutory_limit")?,
            committed_limit: item.limit("committed_limit")?,
            case_type: item.parsed("case_type", CaseType::parse)?,
            disclosure: item.parsed("disclosure", Disclosure::parse)?,
            fees: match item.get("fees") {
                None => None,
                Some(_) => Some(
                    item.records("fees")?
                        .iter()
                        .map(|f| {
                            Ok(FeeRef {
                                name: f.str("name")?,
                                max_fen: match f.get("max_fen") {
                                    None => None,
                                    Some(_) => Some(f.int("max_fen")?),
                                },
                            })
                        })
                        .collect::<Result<Vec<_>, SchemaError>>()?,
                ),
            },
        },
        applicant: Applicant {
            name: ap.str("name")?,
            id_type: ap.opt_str("id_type")?,
            id_number: ap.opt_str("id_number")?,
        },
    };
    if header.region != *id.region() || header.number != id.key() {
        return Err(root.err("number", format!("region/number do not match the id {id}")));
    }
    let events = root
        .entries("events")?
        .into_iter()
        .map(|(k, e)| read_event(k, &e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Case { header, events })
}

fn read_item_root(root: &Obj<'_>, id: &DocId) -> Result<Item, SchemaError> {
    let date = |key: &str| -> Result<Option<chrono::NaiveDate>, SchemaError> {
        match root.opt_str(key)?.as_str() {
            "" => Ok(None),
            s => parse_date(s)
                .map(Some)
                .map_err(|e| root.err(key, e.to_string())),
        }
    };
    let content = ItemContent {
        name: root.str("name")?,
        basic_code: root.str("basic_code")?,
        impl_code: root.str("impl_code")?,
        category: root.parsed("category", Category::parse)?,
        legal_basis: root.opt_str("legal_basis")?,
        exercise_level: root.small("exercise_level")?,
        agency: root.str("agency")?,
        agency_code: root.opt_str("agency_code")?,
        office: root.opt_str("office")?,
        co_departments: root.strs("co_departments")?,
        statutory_limit: root.limit("statutory_limit")?,
        committed_limit: root.limit("committed_limit")?,
        case_type: root.parsed("case_type", CaseType::parse)?,
        conditions: root.opt_str("conditions")?,
        materials: root
            .records("materials")?
            .iter()
            .map(|m| {
                Ok(Material {
                    name: m.str("name")?,
                    form: m.parsed("form", MaterialForm::parse)?,
                    mandatory: m.bool("mandatory")?,
                })
            })
            .collect::<Result<_, SchemaError>>()?,
        steps: root.strs("steps")?,
        fees: root
            .records("fees")?
            .iter()
            .map(|f| {
                Ok(Fee {
                    name: f.str("name")?,
                    standard: f.opt_str("standard")?,
                    basis: f.opt_str("basis")?,
                })
            })
            .collect::<Result<_, SchemaError>>()?,
        consult_phone: root.opt_str("consult_phone")?,
        complaint_phone: root.opt_str("complaint_phone")?,
        disclosure: root.parsed("disclosure", Disclosure::parse)?,
        discretion: root
            .records("discretion")?
            .iter()
            .map(|d| {
                Ok(DiscretionTier {
                    facts: d.str("facts")?,
                    range: d.opt_str("range")?,
                })
            })
            .collect::<Result<_, SchemaError>>()?,
        effective: date("effective")?,
        cancelled: date("cancel_date")?,
    };
    if content.impl_code != id.key() {
        return Err(root.err("impl_code", format!("does not match the id {id}")));
    }
    let history = root
        .entries("review")?
        .into_iter()
        .map(|(rid, r)| {
            Ok(ReviewRecord {
                id: log_id(&r, &rid)?,
                action: r.parsed("action", ReviewAction::parse)?,
                version: r.small("version")?,
                by: r.opt_str("by")?,
                at: r.ts("at")?,
                reason: r.opt_str("reason")?,
                node: r.node("node")?,
            })
        })
        .collect::<Result<Vec<_>, SchemaError>>()?;
    Ok(Item {
        content,
        version: root.small("version")?,
        history,
    })
}

fn read_calendar_root(root: &Obj<'_>, id: &DocId) -> Result<CalendarYear, SchemaError> {
    let region = root.str("region")?;
    let region = RegionCode::parse(&region).map_err(|e| root.err("region", e.to_string()))?;
    let year: i32 = root.small("year")?;
    if region != *id.region() || id.key() != year.to_string() {
        return Err(root.err("year", format!("region/year do not match the id {id}")));
    }
    let office_hours =
        parse_office_hours(&root.str("office_hours")?).map_err(|e| root.err("office_hours", e))?;
    let mut days = root
        .entries("days")?
        .into_iter()
        .map(|(date, d)| {
            let date = parse_date(&date).map_err(|e| d.err("", e.to_string()))?;
            Ok(CalendarDay {
                date,
                kind: d.parsed("kind", DayKind::parse)?,
                name: d.opt_str("name")?,
            })
        })
        .collect::<Result<Vec<_>, SchemaError>>()?;
    days.sort_by_key(|d| d.date);
    Ok(CalendarYear {
        region,
        year,
        office_hours,
        days,
    })
}

fn read_rules_root(root: &Obj<'_>, id: &DocId) -> Result<Rules, SchemaError> {
    let region = root.parsed("region", |s| RegionCode::parse(s).ok())?;
    if region != *id.region() || id.key() != crate::rules::RULES_KEY {
        return Err(root.err("region", format!("region/key do not match the id {id}")));
    }
    let t = root.map("thresholds")?;
    let mut thresholds = crate::cards::Thresholds::default();
    for name in threshold_names() {
        let value = match t.get(name) {
            Some(hydrate::Value::Scalar(ScalarValue::Str(v))) => v.to_string(),
            Some(_) => return Err(t.err(name, "is not a string")),
            None if crate::rules::ADDED_LATER.contains(&name) => continue,
            None => return Err(t.err(name, "is missing")),
        };
        set_threshold(&mut thresholds, name, &value).map_err(|e| t.err(name, e))?;
    }
    let w = root.map("weights")?;
    let weights = crate::evaluation::Weights {
        on_time: w.small("on_time")?,
        speed_up: w.small("speed_up")?,
        satisfaction: w.small("satisfaction")?,
        cards: w.small("cards")?,
        orders: w.small("orders")?,
    };
    let mut auto_orders = crate::rules::AutoOrders::default();
    if root.get("auto_orders").is_some() {
        let a = root.map("auto_orders")?;
        let mut names: Vec<&String> = a.map.keys().collect();
        if names.len() > Rule::ALL.len() + 1 {
            return Err(root.err("auto_orders", "has more entries than there are rules"));
        }
        names.sort();
        for name in names {
            let value = a.str(name)?;
            match auto_orders.set(name, &value) {
                Ok(true) => {}
                Ok(false) => return Err(a.err(name, "is not an automatic order setting")),
                Err(e) => return Err(a.err(name, e)),
            }
        }
    }
    Ok(Rules {
        region,
        version: root.small("version")?,
        published_at: root.ts("published_at")?,
        published_by: root.str("published_by")?,
        thresholds,
        weights,
        auto_orders,
    })
}

fn read_registry_root(root: &Obj<'_>, id: &DocId) -> Result<RegistryEntry, SchemaError> {
    let region = root.parsed("region", |s| RegionCode::parse(s).ok())?;
    let node = root.node("node")?;
    if region != *id.region() || id.key() != node.as_str() {
        return Err(root.err("node", format!("node/region do not match the id {id}")));
    }
    let parent = match root.get("parent") {
        None => None,
        Some(_) => Some(root.node("parent")?),
    };
    let addr = match root.get("addr") {
        None => None,
        Some(_) => Some(root.str("addr")?),
    };
    let crl = match root.opt_bytes("crl", MAX_CRL_BYTES)? {
        None => None,
        Some(der) => Some(CrlCopy {
            number: u64::try_from(root.int("crl_number")?)
                .map_err(|_| root.err("crl_number", "is negative"))?,
            der,
        }),
    };
    let clock_off =
        ClockOff::decode(&root.opt_str("clock_off")?).map_err(|e| root.err("clock_off", e))?;
    let restored =
        Restored::decode(&root.opt_str("restored")?).map_err(|e| root.err("restored", e))?;
    Ok(RegistryEntry {
        node,
        name: root.str("name")?,
        level: root.parsed("level", |s| s.parse::<Level>().ok())?,
        region,
        parent,
        addr,
        serial: root.str("serial")?,
        crl,
        clock_off,
        restored,
    })
}

fn read_order_event(key: String, e: &Obj<'_>) -> Result<OrderEvent, SchemaError> {
    let id = log_id(e, &key)?;
    let action = match e.str("kind")?.as_str() {
        "reply" => OrderAction::Reply {
            text: e.str("text")?,
        },
        "close" => OrderAction::Close {
            resolution: e.parsed("resolution", Resolution::parse)?,
            text: e.str("text")?,
        },
        "appeal" => OrderAction::Appeal {
            text: e.str("text")?,
        },
        "decide" => OrderAction::Decide {
            verdict: e.parsed("verdict", Verdict::parse)?,
            text: e.str("text")?,
        },
        other => return Err(e.err("kind", format!("{other:?} is not an order event"))),
    };
    Ok(OrderEvent {
        id,
        at: e.ts("at")?,
        by: e.str("by")?,
        node: e.node("node")?,
        action,
    })
}

fn read_order_root(root: &Obj<'_>, id: &DocId) -> Result<Order, SchemaError> {
    let region = |s: &str| RegionCode::parse(s).ok();
    let header = OrderHeader {
        unit: root.parsed("unit", region)?,
        department: root.opt_str("department")?,
        issuer: root.parsed("issuer", region)?,
        issuer_node: root.node("issuer_node")?,
        case: root.parsed("case", |s| DocId::parse(s).ok())?,
        rule: root.parsed("rule", Rule::parse)?,
        card: root.parsed("card", Card::parse)?,
        reason: root.str("reason")?,
        issued_at: root.ts("issued_at")?,
        issued_by: root.str("issued_by")?,
        reply_due: root.ts("reply_due")?,
    };
    if header.unit != *id.region() {
        return Err(root.err("unit", format!("does not match the id {id}")));
    }
    let entries = root.entries("events")?;
    if entries.len() > MAX_EVENTS {
        return Err(root.err("events", format!("has more than {MAX_EVENTS} entries")));
    }
    let events = entries
        .into_iter()
        .map(|(k, e)| read_order_event(k, &e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Order { header, events })
}

/// Loads Automerge bytes from outside (a file, a peer), refusing those
/// whose compressed parts would inflate past [`crate::inflate::MAX_INFLATED`]
/// before Automerge inflates them. Automerge 0.6
/// panics on some malformed input that passes its checksums (a document
/// chunk with an unknown action code reaches an `unreachable!`); that is
/// caught and reported like any other error, so such bytes are refused
/// instead of ending the process or failing a whole replication batch.
pub fn load_outside(bytes: &[u8]) -> Result<automerge::AutoCommit, String> {
    crate::inflate::check(bytes, crate::inflate::MAX_INFLATED)?;
    match std::panic::catch_unwind(|| automerge::AutoCommit::load(bytes)) {
        Ok(loaded) => loaded.map_err(|e| e.to_string()),
        Err(_) => Err(AUTOMERGE_PANICKED.into()),
    }
}

/// Applies changes from outside to `doc` (see [`load_outside`]). On an
/// error `doc` may hold part of them, or anything after a panic: the
/// caller works on a fork and drops it.
pub fn apply_outside(doc: &mut automerge::AutoCommit, bytes: &[u8]) -> Result<usize, String> {
    crate::inflate::check(bytes, crate::inflate::MAX_INFLATED)?;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.load_incremental(bytes))) {
        Ok(applied) => applied.map_err(|e| e.to_string()),
        Err(_) => Err(AUTOMERGE_PANICKED.into()),
    }
}

/// Checks that what Automerge saves of `doc` loads again. Automerge 0.6
/// accepts changes (through `load_incremental`, or a merge) that its
/// document format cannot hold: an actor whose first change is not its
/// change 1, or whose changes skip a number or count their operations
/// backwards. Such a document reads, but once saved it does not load
/// ("changes out of order"): a store that compacts it would lose it. This
/// makes the loader's checks over the history in the order a save writes
/// it.
pub fn check_history(doc: &mut automerge::AutoCommit) -> Result<(), String> {
    let mut last: std::collections::HashMap<automerge::ActorId, (u64, u64)> =
        std::collections::HashMap::new();
    for change in doc.get_changes(&[]) {
        let actor = change.actor_id();
        let (seq, max_op) = (change.seq(), change.max_op());
        let expected = last.get(actor).map_or(1, |(s, _)| s.saturating_add(1));
        if seq != expected {
            return Err(format!(
                "actor {actor}'s change {seq} stands where its change {expected} belongs: Automerge could not load the document once saved"
            ));
        }
        if last.get(actor).is_some_and(|(_, m)| *m > max_op) {
            return Err(format!(
                "actor {actor}'s operation counters go backwards at its change {seq}: Automerge could not load the document once saved"
            ));
        }
        last.insert(actor.clone(), (seq, max_op));
    }
    Ok(())
}

const AUTOMERGE_PANICKED: &str =
    "malformed in a way Automerge does not check for (its loader panicked)";

/// Reads and validates any hallsync record. With `expected`, the document's
/// own id must be that id.
pub fn read_record(
    doc: &impl ReadDoc,
    expected: Option<&DocId>,
) -> Result<(DocId, Record), SchemaError> {
    let value = hydrate_root(doc)?;
    let root = Obj::root(&value)?;
    let schema = match root.get("schema").and_then(text_of) {
        Some(s) => s,
        None => return Err(SchemaError::Foreign("it has no schema field".into())),
    };
    let (kind, id) = match schema.as_str() {
        CASE_SCHEMA => (DocKind::Case, check_id(&root, DocKind::Case, expected)?),
        ITEM_SCHEMA => (DocKind::Item, check_id(&root, DocKind::Item, expected)?),
        CAL_SCHEMA => (DocKind::Cal, check_id(&root, DocKind::Cal, expected)?),
        NODE_SCHEMA => (DocKind::Node, check_id(&root, DocKind::Node, expected)?),
        ORDER_SCHEMA => (DocKind::Order, check_id(&root, DocKind::Order, expected)?),
        RULES_SCHEMA => (DocKind::Rules, check_id(&root, DocKind::Rules, expected)?),
        other => {
            return Err(SchemaError::Foreign(format!(
                "unknown schema {:?}",
                other.chars().take(60).collect::<String>()
            )))
        }
    };
    let record = match kind {
        DocKind::Case => Record::Case(read_case_root(&root, &id)?),
        DocKind::Item => Record::Item(read_item_root(&root, &id)?),
        DocKind::Cal => Record::Calendar(read_calendar_root(&root, &id)?),
        DocKind::Node => Record::Node(read_registry_root(&root, &id)?),
        DocKind::Order => Record::Order(read_order_root(&root, &id)?),
        DocKind::Rules => Record::Rules(read_rules_root(&root, &id)?),
    };
    record.validate()?;
    Ok((id, record))
}

/// Reads a case document.
pub fn read_case(doc: &impl ReadDoc, id: &DocId) -> Result<Case, SchemaError> {
    match read_record(doc, Some(id))?.1 {
        Record::Case(c) => Ok(c),
        _ => Err(SchemaError::Foreign(format!("{id} is not a case"))),
    }
}

/// Reads an item document.
pub fn read_item(doc: &impl ReadDoc, id: &DocId) -> Result<Item, SchemaError> {
    match read_record(doc, Some(id))?.1 {
        Record::Item(i) => Ok(i),
        _ => Err(SchemaError::Foreign(format!("{id} is not an item"))),
    }
}

/// Reads a registry entry.
pub fn read_registry_entry(doc: &impl ReadDoc, id: &DocId) -> Result<RegistryEntry, SchemaError> {
    match read_record(doc, Some(id))?.1 {
        Record::Node(e) => Ok(e),
        _ => Err(SchemaError::Foreign(format!(
            "{id} is not a registry entry"
        ))),
    }
}

/// Reads a supervision order.
pub fn read_order(doc: &impl ReadDoc, id: &DocId) -> Result<Order, SchemaError> {
    match read_record(doc, Some(id))?.1 {
        Record::Order(o) => Ok(o),
        _ => Err(SchemaError::Foreign(format!(
            "{id} is not a supervision order"
        ))),
    }
}

/// Reads a calendar document.
pub fn read_calendar(doc: &impl ReadDoc, id: &DocId) -> Result<CalendarYear, SchemaError> {
    match read_record(doc, Some(id))?.1 {
        Record::Calendar(c) => Ok(c),
        _ => Err(SchemaError::Foreign(format!("{id} is not a calendar"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::tests::{ev, header};
    use crate::catalogue::tests::sample_content;
    use automerge::AutoCommit;

    fn case_doc() -> (DocId, AutoCommit, Case) {
        let h = header(
            TimeLimit::new(20, LimitUnit::WorkingDays),
            TimeLimit::new(10, LimitUnit::WorkingDays),
        );
        let id = DocId::new(DocKind::Case, &h.region, &h.number).unwrap();
        let case = Case {
            header: h,
            events: vec![
                ev("tw-101.a.1", "2026-11-16 09:00", EventKind::Received),
                ev(
                    "tw-101.a.2",
                    "2026-11-16 09:05",
                    EventKind::SpecialStarted {
                        procedure: Procedure::Hearing,
                        reason: "听证".into(),
                        until: Some(Ts::parse("2026-11-20").unwrap()),
                    },
                ),
                ev(
                    "tw-101.a.3",
                    "2026-11-16 09:10",
                    EventKind::Forwarded {
                        to: "县民政局".into(),
                    },
                ),
                ev(
                    "tw-101.a.4",
                    "2026-11-16 09:15",
                    EventKind::Filed {
                        office: "县电子监察室".into(),
                    },
                ),
            ],
        };
        let mut doc = AutoCommit::new();
        write_new_case(&mut doc, &id, &case).unwrap();
        doc.commit();
        (id, doc, case)
    }

    #[test]
    fn case_round_trips_through_automerge_bytes() {
        let (id, mut doc, case) = case_doc();
        let bytes = doc.save();
        let loaded = AutoCommit::load(&bytes).unwrap();
        let mut back = read_case(&loaded, &id).unwrap();
        back.events.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(back, case);
    }

    /// Found by the `doc` fuzz harness: a document read twice must give
    /// the same record, events in the same order.
    #[test]
    fn a_document_reads_the_same_every_time() {
        let (id, doc, _) = case_doc();
        let first = read_case(&doc, &id).unwrap();
        assert!(first.events.len() > 1);
        for _ in 0..20 {
            let reloaded = AutoCommit::load(&doc.clone().save()).unwrap();
            assert_eq!(read_case(&reloaded, &id).unwrap(), first);
            assert_eq!(read_case(&doc, &id).unwrap(), first);
        }
        let keys: Vec<String> = first.events.iter().map(|e| e.id.to_string()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    /// Found by the doc fuzz harness: changes Automerge applies, after
    /// which the document reads but what it saves does not load.
    #[test]
    fn changes_that_would_save_an_unloadable_document_are_caught() {
        let region = RegionCode::parse("140212101").unwrap();
        let id = DocId::new(DocKind::Cal, &region, "2026").unwrap();
        let cal = CalendarYear {
            region,
            year: 2026,
            office_hours: vec![Window {
                start: 9 * 3600,
                end: 17 * 3600,
            }],
            days: vec![],
        };
        let mut doc = AutoCommit::new();
        write_calendar(&mut doc, &id, &cal).unwrap();
        check_history(&mut doc).unwrap();
        let changes = include_bytes!("../../../fuzz/regressions/doc/changes-that-save-unloadable");
        apply_outside(&mut doc, changes).unwrap();
        assert!(AutoCommit::load(&doc.save()).is_err());
        let why = check_history(&mut doc).unwrap_err();
        assert!(
            why.contains("change 11 stands where its change 1 belongs"),
            "{why}"
        );
        // Panics in the loader are errors.
        let panics =
            include_bytes!("../../../fuzz/regressions/doc/automerge-unknown-action-panics");
        assert!(load_outside(panics).unwrap_err().contains("panicked"));
    }

    #[test]
    fn item_and_calendar_round_trip() {
        let content = sample_content();
        let region = RegionCode::parse("140212101").unwrap();
        let id = DocId::new(DocKind::Item, &region, &content.impl_code).unwrap();
        let mut doc = AutoCommit::new();
        write_item_content(&mut doc, &id, &content, 1).unwrap();
        let rec = ReviewRecord {
            id: LogId::parse("n.a.1").unwrap(),
            action: ReviewAction::Drafted,
            version: 1,
            by: "x".into(),
            at: Ts(100),
            reason: String::new(),
            node: NodeId::parse("n").unwrap(),
        };
        write_review(&mut doc, &rec).unwrap();
        let item = read_item(&doc, &id).unwrap();
        assert_eq!(item.content, content);
        assert_eq!(item.history, vec![rec]);

        let cal = CalendarYear {
            region: region.clone(),
            year: 2026,
            office_hours: crate::calendar::DEFAULT_OFFICE_HOURS.to_vec(),
            days: crate::calendar::parse_calendar_csv("2026-10-01,休,国庆").unwrap(),
        };
        let cid = DocId::new(DocKind::Cal, &region, "2026").unwrap();
        let mut doc = AutoCommit::new();
        write_calendar(&mut doc, &cid, &cal).unwrap();
        assert_eq!(read_calendar(&doc, &cid).unwrap(), cal);
    }

    #[test]
    fn foreign_and_tampered_documents_are_refused() {
        let mut plain = AutoCommit::new();
        plain.put(ROOT, "title", "a shopping list").unwrap();
        assert!(matches!(
            read_record(&plain, None),
            Err(SchemaError::Foreign(_))
        ));

        let (id, mut doc, _) = case_doc();
        let other = DocId::parse("case:140212101:OTHER").unwrap();
        assert!(matches!(
            read_record(&doc, Some(&other)),
            Err(SchemaError::IdMismatch { .. })
        ));
        doc.put(ROOT, "region", "140213101").unwrap();
        let err = read_case(&doc, &id).unwrap_err();
        assert!(err.to_string().contains("do not match"), "{err}");

        let (id, mut doc, _) = case_doc();
        let (_, events) = doc.get(ROOT, "events").unwrap().unwrap();
        let e = doc.put_object(&events, "x.y.1", ObjType::Map).unwrap();
        doc.put(&e, "kind", "teleported").unwrap();
        let err = read_case(&doc, &id).unwrap_err();
        assert!(err.to_string().contains("teleported"), "{err}");

        let (id, mut doc, _) = case_doc();
        doc.put(ROOT, "channel", "x".repeat(MAX_STR + 1)).unwrap();
        assert!(read_case(&doc, &id).is_err());
    }

    #[test]
    fn a_registry_entry_round_trips_and_a_rewrite_changes_only_what_changed() {
        let e = crate::registry::tests::entry();
        let id = e.doc_id().unwrap();
        let mut doc = AutoCommit::new();
        write_registry_entry(&mut doc, &id, &e).unwrap();
        assert_eq!(read_registry_entry(&doc, &id).unwrap(), e);
        let mut moved = e.clone();
        moved.addr = Some("10.1.2.3:7400".into());
        moved.crl = None;
        doc.commit();
        write_registry_entry(&mut doc, &id, &moved).unwrap();
        assert_eq!(read_registry_entry(&doc, &id).unwrap(), moved);
        // addr, crl_number and crl: three operations, nothing else.
        assert_eq!(doc.pending_ops(), 3);
        doc.commit();
        let mut off = moved.clone();
        off.note_clock(-600, Ts(1_795_000_000), None);
        write_registry_entry(&mut doc, &id, &off).unwrap();
        assert_eq!(read_registry_entry(&doc, &id).unwrap(), off);
        doc.put(ROOT, "clock_off", "yesterday").unwrap();
        let err = read_registry_entry(&doc, &id).unwrap_err().to_string();
        assert!(err.contains("clock_off"), "{err}");
        write_registry_entry(&mut doc, &id, &moved).unwrap();
        doc.commit();
        // Claiming another node's id, or a level its region does not have,
        // is refused.
        let other = DocId::parse("node:140212101:tw-102").unwrap();
        assert!(matches!(
            read_registry_entry(&doc, &other),
            Err(SchemaError::IdMismatch { .. })
        ));
        doc.put(ROOT, "level", "county").unwrap();
        let err = read_registry_entry(&doc, &id).unwrap_err().to_string();
        assert!(err.contains("level"), "{err}");
    }

    #[test]
    fn an_order_round_trips_and_copies_replied_and_closed_apart_merge() {
        use crate::order::tests::{event, order};
        let o = order();
        let id = DocId::parse("order:140212101:cn-212.1").unwrap();
        let mut county = AutoCommit::new();
        write_new_order(&mut county, &id, &o).unwrap();
        county.commit();
        assert_eq!(read_order(&county, &id).unwrap(), o);
        let mut town = county.fork();
        let reply = event(
            "tw-101.a.1",
            "2026-11-24 09:00",
            OrderAction::Reply {
                text: "已办结并向申请人致歉".into(),
            },
        );
        let close = event(
            "cn-212.b.1",
            "2026-11-25 09:00",
            OrderAction::Close {
                resolution: Resolution::Rectified,
                text: "整改到位".into(),
            },
        );
        write_order_event(&mut town, &reply).unwrap();
        write_order_event(&mut county, &close).unwrap();
        let mut a = county.fork();
        a.merge(&mut town).unwrap();
        let mut b = town.fork();
        b.merge(&mut county).unwrap();
        let (oa, ob) = (read_order(&a, &id).unwrap(), read_order(&b, &id).unwrap());
        assert_eq!(oa.events.len(), 2);
        let now = Ts::parse("2026-11-26 09:00").unwrap();
        assert_eq!(oa.view(now), ob.view(now));
        assert_eq!(oa.view(now).state, crate::order::OrderState::Closed);
    }

    #[test]
    fn an_order_that_goes_up_or_names_another_halls_case_is_refused() {
        let o = crate::order::tests::order();
        let id = DocId::parse("order:140212101:cn-212.1").unwrap();
        let mut doc = AutoCommit::new();
        write_new_order(&mut doc, &id, &o).unwrap();
        doc.put(ROOT, "issuer", "140212101").unwrap();
        let err = read_order(&doc, &id).unwrap_err().to_string();
        assert!(err.contains("issuer"), "{err}");
        doc.put(ROOT, "issuer", "140212").unwrap();
        doc.put(ROOT, "case", "case:140212102:B1-1").unwrap();
        let err = read_order(&doc, &id).unwrap_err().to_string();
        assert!(err.contains("case"), "{err}");
        doc.put(ROOT, "case", "case:140212101:A1-1").unwrap();
        doc.put(ROOT, "unit", "140212102").unwrap();
        let err = read_order(&doc, &id).unwrap_err().to_string();
        assert!(err.contains("unit"), "{err}");
        doc.put(ROOT, "unit", "140212101").unwrap();
        doc.put(ROOT, "card", "purple").unwrap();
        assert!(read_order(&doc, &id).is_err());
    }
}
