//! Append-only histories: what a change may do to a record.
//!
//! A case's header and events, an order's header and events, and an item's
//! review records are written once. A catalogue item's content changes only
//! as a new version, drafted in the same change, so a published version is
//! never altered in place. A calendar and a registry entry may be rewritten,
//! but never given another identity. These rules are checked over the
//! changes themselves, not over the state they leave: an event time moved
//! and then moved back, or hidden behind a concurrent write, is still found.
//!
//! A history breaking a rule is refused whole, naming the field, the change
//! and its author (the actor, and the node when the document's log keys tie
//! that actor to one).

use std::collections::{HashMap, HashSet};

use automerge::{AutoCommit, ObjType, ReadDoc, ROOT};
use serde_json::Value;

use crate::ids::LogId;
use crate::schema::{
    CAL_SCHEMA, CASE_SCHEMA, ITEM_SCHEMA, NODE_SCHEMA, ORDER_SCHEMA, RULES_SCHEMA,
};

/// What the schema lets a later change do to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Written by one operation, never again, never deleted.
    Once,
    /// Rewritten only with the value it already holds.
    Same,
    /// An item's version: each write raises it.
    Version,
    /// An item's content: written only in a change that raises the version
    /// and drafts that version.
    Content,
    /// Anything.
    Free,
}

/// The kinds of record, by their `schema` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Case,
    Order,
    Item,
    Calendar,
    Registry,
    Rules,
}

impl Kind {
    fn of(schema: &str) -> Option<Kind> {
        Some(match schema {
            CASE_SCHEMA => Kind::Case,
            ORDER_SCHEMA => Kind::Order,
            ITEM_SCHEMA => Kind::Item,
            CAL_SCHEMA => Kind::Calendar,
            NODE_SCHEMA => Kind::Registry,
            RULES_SCHEMA => Kind::Rules,
            _ => return None,
        })
    }

    /// The rule for the field at `path` (keys from the root).
    fn rule(self, path: &[String]) -> Rule {
        let top = path.first().map_or("", String::as_str);
        match self {
            Kind::Case | Kind::Order => Rule::Once,
            Kind::Item => match top {
                "schema" | "id" | "impl_code" => Rule::Same,
                "version" => Rule::Version,
                "review" => Rule::Once,
                _ => Rule::Content,
            },
            Kind::Calendar => match top {
                "schema" | "id" | "region" | "year" => Rule::Same,
                _ => Rule::Free,
            },
            Kind::Registry => match top {
                "schema" | "id" | "node" | "region" => Rule::Same,
                _ => Rule::Free,
            },
            Kind::Rules => match top {
                "schema" | "id" | "region" => Rule::Same,
                "version" => Rule::Version,
                _ => Rule::Free,
            },
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Case => "a case's header and events are written once",
            Kind::Order => "an order's header and events are written once",
            Kind::Item => "an item's review records are written once",
            Kind::Calendar => "a calendar keeps its identity",
            Kind::Registry => "a registry entry keeps its identity",
            Kind::Rules => "rules keep their hub, and each publication raises their version",
        }
    }
}

/// One operation, as Automerge's expanded form gives it.
struct Op {
    action: String,
    obj: String,
    /// The map key; `None` for a list position.
    key: Option<String>,
    value: Value,
    pred: Vec<String>,
}

impl Op {
    fn read(op: &impl serde::Serialize) -> Result<Op, String> {
        let v = serde_json::to_value(op).map_err(|e| format!("an operation does not read: {e}"))?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Op {
            action: text("action").ok_or("an operation without an action")?,
            obj: text("obj").ok_or("an operation without an object")?,
            key: text("key"),
            value: serde_json::json!([v.get("datatype"), v.get("value")]),
            pred: v
                .get("pred")
                .and_then(Value::as_array)
                .map(|p| {
                    p.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    fn makes(&self) -> bool {
        self.action.starts_with("make")
    }
}

/// A change's author, for messages.
struct Author<'a> {
    actor: String,
    seq: u64,
    nodes: &'a HashMap<String, String>,
}

impl std::fmt::Display for Author<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short: String = self.actor.chars().take(16).collect();
        write!(f, "change {} of actor {short}", self.seq)?;
        match self.nodes.get(&self.actor) {
            Some(node) => write!(f, " (node {node})"),
            None => Ok(()),
        }
    }
}

/// The walk over a document's history.
#[derive(Default)]
struct Walk {
    /// Object id → its path from the root.
    objects: HashMap<String, Vec<String>>,
    /// Operation id → the value it put.
    values: HashMap<String, Value>,
    /// Object id and key → the value first put there.
    written: HashMap<(String, String), Value>,
}

/// Checks that no change in `doc`'s history breaks its schema's
/// append-only rules (see the module's text). A document without a known
/// `schema` passes: reading it as a record refuses it.
pub fn check_append_only(doc: &mut AutoCommit) -> Result<(), String> {
    let kind = match doc.get(ROOT, "schema") {
        Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
            automerge::ScalarValue::Str(s) => Kind::of(s),
            _ => None,
        },
        _ => None,
    };
    let Some(kind) = kind else {
        return Ok(());
    };
    if matches!(kind, Kind::Case | Kind::Order) && untouched(doc) {
        return Ok(());
    }
    walk(doc, kind)
}

/// Checks every change of `doc`'s history against `kind`'s rules.
fn walk(doc: &mut AutoCommit, kind: Kind) -> Result<(), String> {
    let changes: Vec<automerge::Change> = doc.get_changes(&[]).into_iter().cloned().collect();
    let expanded = std::panic::catch_unwind(|| {
        changes
            .iter()
            .map(automerge::Change::decode)
            .collect::<Vec<_>>()
    })
    .map_err(|_| "a change does not decode".to_string())?;
    let mut walk = Walk::default();
    walk.objects.insert("_root".into(), Vec::new());
    for change in &expanded {
        if let Err(broken) = walk.change(kind, change) {
            let author = Author {
                actor: change.actor_id.to_hex_string(),
                seq: change.seq,
                nodes: &actors_to_nodes(&expanded),
            };
            return Err(format!("{author} {broken}"));
        }
    }
    Ok(())
}

/// Whether every operation in `doc`'s history still shows in it, every
/// object being a map or a list. An operation that overwrote or deleted a value,
/// and the value it replaced, no longer show, and of two concurrent
/// writes of one key only one shows; so then nothing was ever written
/// twice or deleted, and a write-once record passes without its changes
/// being decoded, at a fraction of the cost.
fn untouched(doc: &mut AutoCommit) -> bool {
    let ops: usize = doc.get_changes(&[]).iter().map(|c| c.len()).sum();
    let mut shown = 0;
    let mut objects = vec![(ROOT, ObjType::Map)];
    while let Some((obj, kind)) = objects.pop() {
        let values: Vec<(automerge::Value<'_>, automerge::ObjId)> = match kind {
            ObjType::Map => doc.map_range(&obj, ..).map(|i| (i.value, i.id)).collect(),
            ObjType::List => doc.list_range(&obj, ..).map(|i| (i.value, i.id)).collect(),
            _ => return false,
        };
        for (value, id) in values {
            shown += 1;
            match value {
                automerge::Value::Object(kind @ (ObjType::Map | ObjType::List)) => {
                    objects.push((id, kind))
                }
                automerge::Value::Object(_) => return false,
                automerge::Value::Scalar(_) => {}
            }
        }
    }
    shown == ops
}

/// Which node each actor wrote log entries as (`NODE.ACTOR8.N` keys under
/// `events` or `review`).
fn actors_to_nodes(changes: &[automerge::ExpandedChange]) -> HashMap<String, String> {
    let mut nodes = HashMap::new();
    for change in changes {
        let actor = change.actor_id.to_hex_string();
        for op in &change.operations {
            let Ok(op) = Op::read(op) else { continue };
            let Some(key) = op.key.as_deref().filter(|_| op.makes()) else {
                continue;
            };
            if let Ok(id) = LogId::parse(key) {
                if actor.starts_with(id.actor_tag()) {
                    nodes.insert(actor.clone(), id.node().as_str().to_owned());
                }
            }
        }
    }
    nodes
}

impl Walk {
    /// Checks one change; an error reads after its author ("… writes
    /// events.x.at again: …").
    fn change(&mut self, kind: Kind, change: &automerge::ExpandedChange) -> Result<(), String> {
        let actor = change.actor_id.to_hex_string();
        let start = change.start_op.get();
        // An item's content written in this change, the versions it
        // raised the item to, and the versions it drafted.
        let mut content: Option<String> = None;
        let mut raised: Vec<i64> = Vec::new();
        let mut drafts: HashMap<String, (Option<String>, Option<i64>)> = HashMap::new();
        // Objects this change made: a list made here (a case's fees) is
        // filled here, once.
        let mut made_here: HashSet<String> = HashSet::new();
        for (i, raw) in change.operations.iter().enumerate() {
            let op = Op::read(raw)?;
            let id = format!("{}@{actor}", start + i as u64);
            let Some(parent) = self.objects.get(&op.obj).cloned() else {
                return Err("writes into an object its history never made".into());
            };
            let Some(key) = op.key.clone() else {
                // A list position: lists of content hold them, and a
                // write-once list takes its elements in the change that
                // made it, never after.
                let filled_once =
                    made_here.contains(&op.obj) && op.pred.is_empty() && op.action != "del";
                if filled_once || matches!(kind.rule(&parent), Rule::Content | Rule::Free) {
                    if op.makes() {
                        made_here.insert(id.clone());
                        self.objects.insert(id, parent);
                    }
                    continue;
                }
                return Err(format!(
                    "writes a list position in {}, which is not a list",
                    show(&parent)
                ));
            };
            let mut path = parent.clone();
            path.push(key.clone());
            if op.makes() {
                made_here.insert(id.clone());
                self.objects.insert(id.clone(), path.clone());
            }
            self.values.insert(id, op.value.clone());
            let slot = (op.obj.clone(), key.clone());
            let first = self.written.get(&slot).cloned();
            let field = show(&path);
            let rewrite = first.is_some() || !op.pred.is_empty();
            if op.action == "del" && kind.rule(&path) != Rule::Free {
                return Err(format!("deletes {field}: {}", kind.what()));
            }
            match kind.rule(&path) {
                Rule::Once if rewrite => {
                    return Err(format!("writes {field} again: {}", kind.what()))
                }
                Rule::Same if rewrite => {
                    let before = first
                        .as_ref()
                        .into_iter()
                        .chain(op.pred.iter().filter_map(|p| self.values.get(p)));
                    if op.makes() || before.into_iter().any(|b| *b != op.value) {
                        return Err(format!("changes {field}: {}", kind.what()));
                    }
                }
                Rule::Version => {
                    let new = op.value.get(1).and_then(Value::as_i64);
                    let old = op
                        .pred
                        .iter()
                        .filter_map(|p| self.values.get(p))
                        .filter_map(|v| v.get(1).and_then(Value::as_i64))
                        .max();
                    match new {
                        Some(n) if old.is_none_or(|o| n > o) => raised.push(n),
                        _ => {
                            return Err("sets the item's version without raising it: a published version is never altered".into())
                        }
                    }
                }
                Rule::Content => {
                    content.get_or_insert(field);
                }
                Rule::Once | Rule::Same | Rule::Free => {}
            }
            if kind == Kind::Item && parent.len() == 2 && parent[0] == "review" {
                let entry = drafts.entry(op.obj.clone()).or_default();
                match key.as_str() {
                    "action" => {
                        entry.0 = op.value.get(1).and_then(Value::as_str).map(str::to_owned)
                    }
                    "version" => entry.1 = op.value.get(1).and_then(Value::as_i64),
                    _ => {}
                }
            }
            self.written.entry(slot).or_insert(op.value);
        }
        if let Some(field) = content {
            let drafted = |v: i64| {
                drafts
                    .values()
                    .any(|(a, n)| a.as_deref() == Some("drafted") && *n == Some(v))
            };
            if !raised.iter().any(|&v| drafted(v)) {
                return Err(format!(
                    "changes {field} without drafting a new version: a published version is never altered"
                ));
            }
        }
        Ok(())
    }
}

/// A path as `events.<id>.at`.
fn show(path: &[String]) -> String {
    if path.is_empty() {
        "the document's root".into()
    } else {
        path.join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ObjType};

    fn with_actor(n: u8) -> AutoCommit {
        AutoCommit::new().with_actor(ActorId::from(vec![n; 16]))
    }

    /// A case as the hall writes it: header, then one event per change.
    fn case() -> AutoCommit {
        let mut doc = with_actor(1);
        doc.put(ROOT, "schema", CASE_SCHEMA).unwrap();
        doc.put(ROOT, "number", "A1").unwrap();
        let events = doc.put_object(ROOT, "events", ObjType::Map).unwrap();
        let e = doc
            .put_object(&events, "tw-101.01010101.1", ObjType::Map)
            .unwrap();
        doc.put(&e, "kind", "received").unwrap();
        doc.put(&e, "at", automerge::ScalarValue::Timestamp(1_000))
            .unwrap();
        doc.commit();
        let e = doc
            .put_object(&events, "tw-101.01010101.2", ObjType::Map)
            .unwrap();
        doc.put(&e, "kind", "accepted").unwrap();
        doc.commit();
        doc
    }

    fn event(doc: &AutoCommit, key: &str) -> automerge::ObjId {
        let (_, events) = doc.get(ROOT, "events").unwrap().unwrap();
        doc.get(&events, key).unwrap().unwrap().1
    }

    #[test]
    fn a_case_written_by_appending_passes_both_ways() {
        let mut doc = case();
        assert!(untouched(&mut doc));
        assert_eq!(walk(&mut doc, Kind::Case), Ok(()));
    }

    /// Every rewrite the tests below make is also seen by the quick count,
    /// so the walk that names it runs.
    fn refused(doc: &mut AutoCommit) -> String {
        assert!(!untouched(doc));
        check_append_only(doc).unwrap_err()
    }

    /// [`case`] whose item lists fees, as the hall writes the header.
    fn case_with_fees() -> AutoCommit {
        let mut doc = with_actor(1);
        doc.put(ROOT, "schema", CASE_SCHEMA).unwrap();
        let item = doc.put_object(ROOT, "item", ObjType::Map).unwrap();
        let fees = doc.put_object(&item, "fees", ObjType::List).unwrap();
        for (i, name) in ["工本费", "测绘费"].into_iter().enumerate() {
            let f = doc.insert_object(&fees, i, ObjType::Map).unwrap();
            doc.put(&f, "name", name).unwrap();
            doc.put(&f, "max_fen", 500_i64).unwrap();
        }
        doc.put_object(ROOT, "events", ObjType::Map).unwrap();
        doc.commit();
        doc
    }

    fn fees(doc: &AutoCommit) -> automerge::ObjId {
        let (_, item) = doc.get(ROOT, "item").unwrap().unwrap();
        doc.get(&item, "fees").unwrap().unwrap().1
    }

    #[test]
    fn an_items_fees_are_written_with_the_case_and_never_after() {
        let mut doc = case_with_fees();
        assert!(untouched(&mut doc));
        assert_eq!(walk(&mut doc, Kind::Case), Ok(()));
        let (_, events) = doc.get(ROOT, "events").unwrap().unwrap();
        let e = doc
            .put_object(&events, "tw-101.01010101.1", ObjType::Map)
            .unwrap();
        doc.put(&e, "kind", "received").unwrap();
        doc.commit();
        assert_eq!(check_append_only(&mut doc), Ok(()));
        // Another fee added later, or one taken away: refused.
        let mut added = doc.fork().with_actor(ActorId::from(vec![9; 16]));
        let list = fees(&added);
        let f = added.insert_object(&list, 2, ObjType::Map).unwrap();
        added.put(&f, "name", "加急费").unwrap();
        added.commit();
        assert!(walk(&mut added, Kind::Case)
            .unwrap_err()
            .contains("writes a list position in item.fees"));
        let mut removed = doc.fork().with_actor(ActorId::from(vec![9; 16]));
        let list = fees(&removed);
        removed.delete(&list, 0).unwrap();
        removed.commit();
        assert!(refused(&mut removed).contains("item.fees"));
        let mut changed = doc.fork().with_actor(ActorId::from(vec![9; 16]));
        let list = fees(&changed);
        let (_, first) = changed.get(&list, 0).unwrap().unwrap();
        changed.put(&first, "max_fen", 50_000_i64).unwrap();
        changed.commit();
        assert!(refused(&mut changed).contains("writes item.fees.max_fen again"));
    }

    #[test]
    fn moving_an_events_time_is_refused_naming_field_and_author() {
        let mut doc = case().fork().with_actor(ActorId::from(vec![9; 16]));
        let e = event(&doc, "tw-101.01010101.1");
        doc.put(&e, "at", automerge::ScalarValue::Timestamp(8 * 86_400_000))
            .unwrap();
        doc.commit();
        let err = refused(&mut doc);
        assert!(err.contains("events.tw-101.01010101.1.at"), "{err}");
        assert!(err.contains("actor 0909090909090909"), "{err}");
    }

    #[test]
    fn the_author_is_named_by_node_when_its_log_keys_say_which() {
        let mut doc = case();
        let e = event(&doc, "tw-101.01010101.2");
        doc.put(&e, "kind", "refused").unwrap();
        doc.commit();
        let err = refused(&mut doc);
        assert!(err.contains("(node tw-101)"), "{err}");
    }

    #[test]
    fn deleting_an_event_is_refused() {
        let mut doc = case();
        let (_, events) = doc.get(ROOT, "events").unwrap().unwrap();
        doc.delete(&events, "tw-101.01010101.1").unwrap();
        doc.commit();
        let err = refused(&mut doc);
        assert!(err.contains("deletes events.tw-101.01010101.1"), "{err}");
    }

    #[test]
    fn a_concurrent_write_of_the_same_field_is_refused() {
        let mut base = case();
        let mut forger = base.fork().with_actor(ActorId::from(vec![7; 16]));
        let mut honest = base.fork();
        // Both write the header field without seeing the other: neither
        // overwrites, yet one value would hide the other.
        forger.put(ROOT, "channel", "online").unwrap();
        forger.commit();
        honest.put(ROOT, "channel", "window").unwrap();
        honest.commit();
        honest.merge(&mut forger).unwrap();
        let err = refused(&mut honest);
        assert!(err.contains("channel again"), "{err}");
    }

    #[test]
    fn an_edit_moved_back_later_is_still_found() {
        let mut doc = case();
        let e = event(&doc, "tw-101.01010101.1");
        doc.put(&e, "at", automerge::ScalarValue::Timestamp(5_000))
            .unwrap();
        doc.commit();
        doc.put(&e, "at", automerge::ScalarValue::Timestamp(1_000))
            .unwrap();
        doc.commit();
        refused(&mut doc);
    }

    fn item(version: i64, name: &str, draft: bool, doc: &mut AutoCommit) {
        doc.put(ROOT, "schema", ITEM_SCHEMA).unwrap();
        doc.put(ROOT, "version", version).unwrap();
        doc.put(ROOT, "name", name).unwrap();
        let review = match doc.get(ROOT, "review").unwrap() {
            Some((_, r)) => r,
            None => doc.put_object(ROOT, "review", ObjType::Map).unwrap(),
        };
        if draft {
            let r = doc
                .put_object(&review, format!("ct-02.01010101.{version}"), ObjType::Map)
                .unwrap();
            doc.put(&r, "action", "drafted").unwrap();
            doc.put(&r, "version", version).unwrap();
        }
        doc.commit();
    }

    #[test]
    fn an_item_changes_only_as_a_new_drafted_version() {
        let mut doc = with_actor(1);
        item(1, "first", true, &mut doc);
        item(2, "second", true, &mut doc);
        assert_eq!(check_append_only(&mut doc), Ok(()));

        let mut same_version = doc.fork();
        same_version.put(ROOT, "name", "quietly changed").unwrap();
        same_version.commit();
        let err = check_append_only(&mut same_version).unwrap_err();
        assert!(err.contains("changes name without drafting"), "{err}");

        let mut undrafted = doc.fork();
        item(3, "third", false, &mut undrafted);
        assert!(check_append_only(&mut undrafted).is_err());

        let mut lowered = doc.fork();
        item(1, "back", true, &mut lowered);
        let err = check_append_only(&mut lowered).unwrap_err();
        assert!(err.contains("without raising it"), "{err}");
    }

    #[test]
    fn a_calendar_may_be_rewritten_but_keeps_its_identity() {
        let mut doc = with_actor(1);
        doc.put(ROOT, "schema", CAL_SCHEMA).unwrap();
        doc.put(ROOT, "region", "1402").unwrap();
        doc.put(ROOT, "office_hours", "09:00-17:00").unwrap();
        doc.commit();
        doc.put(ROOT, "region", "1402").unwrap();
        doc.put(ROOT, "office_hours", "08:30-17:30").unwrap();
        doc.commit();
        assert_eq!(check_append_only(&mut doc), Ok(()));
        doc.put(ROOT, "region", "1403").unwrap();
        doc.commit();
        let err = check_append_only(&mut doc).unwrap_err();
        assert!(err.contains("changes region"), "{err}");
    }
}
