//! Identifiers: region codes and levels (GB/T 2260 plus township and
//! village groups), node ids and document ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The administrative level of a region or of the hall that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// 省 (two digits).
    Province,
    /// 市 (four digits).
    City,
    /// 县/区 (six digits).
    County,
    /// 乡/镇/街道 (nine digits).
    Township,
    /// 村/社区 (twelve digits).
    Village,
}

impl Level {
    /// Number of digits of a canonical region code at this level.
    pub fn digits(self) -> usize {
        match self {
            Level::Province => 2,
            Level::City => 4,
            Level::County => 6,
            Level::Township => 9,
            Level::Village => 12,
        }
    }

    fn from_digits(n: usize) -> Option<Level> {
        [
            Level::Province,
            Level::City,
            Level::County,
            Level::Township,
            Level::Village,
        ]
        .into_iter()
        .find(|l| l.digits() == n)
    }

    /// The English name used in configuration files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Township => "township",
            Level::Village => "village",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "province" | "省" => Ok(Level::Province),
            "city" | "市" => Ok(Level::City),
            "county" | "district" | "县" | "区" => Ok(Level::County),
            "township" | "town" | "street" | "乡" | "镇" | "街道" => Ok(Level::Township),
            "village" | "村" => Ok(Level::Village),
            other => Err(IdError::UnknownLevel(other.to_string())),
        }
    }
}

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// A region code must be 2, 4, 6, 9 or 12 decimal digits.
    #[error("region code {0:?} must be 2, 4, 6, 9 or 12 digits (e.g. 140212 or 140212101)")]
    RegionShape(String),
    /// The first two digits are not a province of GB/T 2260.
    #[error("region code {0:?} does not start with a province code of GB/T 2260")]
    RegionProvince(String),
    /// A zero group is followed by a non-zero one (e.g. `140012`).
    #[error("region code {0:?} has an all-zero group before a non-zero one")]
    RegionGap(String),
    /// An unknown level name.
    #[error("unknown level {0:?}: use city, county or township")]
    UnknownLevel(String),
    /// A node id that is not 1–32 characters of `a-z`, `0-9` and `-`.
    #[error("node id {0:?} must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit")]
    NodeId(String),
    /// A document id of the wrong shape.
    #[error("document id {0:?} is not of the form KIND:REGION:KEY (KIND is item, case, cal, node or order; KEY is 1-64 of A-Z a-z 0-9 . _ -)")]
    DocId(String),
    /// A log entry's key of the wrong shape.
    #[error("log entry key {0:?} is not of the form NODE.ACTOR.N (ACTOR 1-32 of a-z 0-9, N a counter from 1)")]
    LogId(String),
}

const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];

/// Digit groups of a region code: province, city, county, township, village.
const GROUPS: [(usize, usize); 5] = [(0, 2), (2, 4), (4, 6), (6, 9), (9, 12)];

/// A validated administrative region code in canonical form: its decimal
/// digits with trailing all-zero groups dropped, so `140200` (Datong city)
/// is `1402` and the subtree of a region is exactly the codes it prefixes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(String);

impl RegionCode {
    /// Parses a region code as written in GB/T 2260 (`140200`), with a
    /// township group (`140212101`) or a village group, or in canonical form.
    pub fn parse(s: &str) -> Result<RegionCode, IdError> {
        let s = s.trim();
        if !s.bytes().all(|b| b.is_ascii_digit()) || Level::from_digits(s.len()).is_none() {
            return Err(IdError::RegionShape(s.to_string()));
        }
        let province: u8 = s[0..2]
            .parse()
            .map_err(|_| IdError::RegionShape(s.into()))?;
        if !PROVINCES.contains(&province) {
            return Err(IdError::RegionProvince(s.to_string()));
        }
        let groups: Vec<&str> = GROUPS
            .iter()
            .filter(|(_, end)| *end <= s.len())
            .map(|&(a, b)| &s[a..b])
            .collect();
        let is_zero = |g: &str| g.bytes().all(|b| b == b'0');
        let kept = groups.len() - groups.iter().rev().take_while(|g| is_zero(g)).count();
        if kept == 0 || groups[..kept].iter().any(|g| is_zero(g)) {
            return Err(IdError::RegionGap(s.to_string()));
        }
        Ok(RegionCode(s[..GROUPS[kept - 1].1].to_string()))
    }

    /// The canonical digits (trailing zero groups dropped).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The level of the region.
    pub fn level(&self) -> Level {
        Level::from_digits(self.0.len()).unwrap_or(Level::Village)
    }

    /// Checks that the region is a `level` code, with a message naming
    /// both if it is not.
    pub fn check_level(&self, level: Level) -> Result<(), String> {
        if self.level() == level {
            Ok(())
        } else {
            Err(format!(
                "region {self} is a {} code but the level is {level}",
                self.level()
            ))
        }
    }

    /// Whether `other` is this region or lies inside it.
    pub fn contains(&self, other: &RegionCode) -> bool {
        other.0.starts_with(&self.0)
    }

    /// Whether this region is a strict ancestor of `other`.
    pub fn is_ancestor_of(&self, other: &RegionCode) -> bool {
        self.contains(other) && self.0.len() < other.0.len()
    }

    /// The enclosing region, or `None` for a province.
    pub fn parent(&self) -> Option<RegionCode> {
        let idx = GROUPS.iter().position(|g| g.1 == self.0.len())?;
        (idx > 0).then(|| RegionCode(self.0[..GROUPS[idx - 1].1].to_string()))
    }

    /// The code as printed on official lists: six digits down to county
    /// level (`140200`), nine for a township, twelve for a village.
    pub fn display_code(&self) -> String {
        if self.0.len() <= 6 {
            format!("{:0<6}", self.0)
        } else {
            self.0.clone()
        }
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_code())
    }
}

impl FromStr for RegionCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegionCode::parse(s)
    }
}

impl TryFrom<String> for RegionCode {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RegionCode::parse(&s)
    }
}

impl From<RegionCode> for String {
    fn from(r: RegionCode) -> String {
        r.0
    }
}

/// The id of a hall node: 1–32 characters of `a-z`, `0-9` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    /// Validates a node id.
    pub fn parse(s: &str) -> Result<NodeId, IdError> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(NodeId(s.to_string()))
        } else {
            Err(IdError::NodeId(s.to_string()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NodeId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::parse(s)
    }
}

impl TryFrom<String> for NodeId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        NodeId::parse(&s)
    }
}

impl From<NodeId> for String {
    fn from(n: NodeId) -> String {
        n.0
    }
}

/// The kind of record a document holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    /// A power catalogue item (事项).
    Item,
    /// A case (办件).
    Case,
    /// One year of a region's holiday calendar.
    Cal,
    /// A node's entry in the federation registry.
    Node,
    /// A supervision order (督办), filed under the supervised hall's region.
    Order,
    /// A hub's supervision rules (thresholds and evaluation weights).
    Rules,
}

impl DocKind {
    /// The prefix used in document ids.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Item => "item",
            DocKind::Case => "case",
            DocKind::Cal => "cal",
            DocKind::Node => "node",
            DocKind::Order => "order",
            DocKind::Rules => "rules",
        }
    }

    fn parse(s: &str) -> Option<DocKind> {
        match s {
            "item" => Some(DocKind::Item),
            "case" => Some(DocKind::Case),
            "cal" => Some(DocKind::Cal),
            "node" => Some(DocKind::Node),
            "order" => Some(DocKind::Order),
            "rules" => Some(DocKind::Rules),
            _ => None,
        }
    }
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key of a log entry (a case event, a review record, an order event):
/// `NODE.ACTOR.N`, the node that wrote it, the writer's actor tag (1-32 of
/// `a-z 0-9`; hallsync writes the first 8 hex digits of the data
/// directory's actor id) and that writer's counter (1, 2, …, no leading
/// zeros). Keys order by (node, actor, counter), the counter as a number,
/// so every level sorts entries at the same time the same way (`.10` comes
/// after `.9`, not before `.2`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LogId {
    node: NodeId,
    actor: String,
    n: u64,
}

/// Longest actor tag in a log entry's key.
pub const ACTOR_TAG_MAX: usize = 32;

impl LogId {
    /// The key of the `n`th entry written by `node` with actor tag `actor`.
    pub fn new(node: &NodeId, actor: &str, n: u64) -> Result<LogId, IdError> {
        LogId::parse(&format!("{node}.{actor}.{n}"))
    }

    /// Parses and validates a log entry's key.
    pub fn parse(s: &str) -> Result<LogId, IdError> {
        let bad = || IdError::LogId(s.chars().take(120).collect());
        let mut parts = s.split('.');
        let (Some(node), Some(actor), Some(n), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let node = NodeId::parse(node).map_err(|_| bad())?;
        let actor_ok = !actor.is_empty()
            && actor.len() <= ACTOR_TAG_MAX
            && actor
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let n_ok = !n.is_empty()
            && n.len() <= 19
            && !n.starts_with('0')
            && n.bytes().all(|b| b.is_ascii_digit());
        if !actor_ok || !n_ok {
            return Err(bad());
        }
        Ok(LogId {
            node,
            actor: actor.to_string(),
            n: n.parse().map_err(|_| bad())?,
        })
    }

    /// The node that wrote the entry.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The leading hex digits of the writer's actor id.
    pub fn actor_tag(&self) -> &str {
        &self.actor
    }

    /// The key the next entry written by `node` with actor tag `actor`
    /// should take: one past the highest counter that writer has used among
    /// `existing`.
    pub fn next<'a>(
        existing: impl Iterator<Item = &'a LogId>,
        node: &NodeId,
        actor: &str,
    ) -> Result<LogId, IdError> {
        let last = existing
            .filter(|k| k.node == *node && k.actor == actor)
            .map(|k| k.n)
            .max()
            .unwrap_or(0);
        LogId::new(node, actor, last + 1)
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.node, self.actor, self.n)
    }
}

impl FromStr for LogId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogId::parse(s)
    }
}

impl TryFrom<String> for LogId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        LogId::parse(&s)
    }
}

impl From<LogId> for String {
    fn from(id: LogId) -> String {
        id.to_string()
    }
}

/// Longest key part of a document id.
pub const DOC_KEY_MAX: usize = 64;

/// A document id, `KIND:REGION:KEY`, e.g. `case:140212101:XK0001-20261123-0001`.
/// The region is canonical, so every level derives the same id for the same
/// record, and the id alone says which subtree may see the record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocId {
    text: String,
    kind: DocKind,
    region: RegionCode,
}

impl DocId {
    /// Builds an id from its parts; the key is validated.
    pub fn new(kind: DocKind, region: &RegionCode, key: &str) -> Result<DocId, IdError> {
        DocId::parse(&format!("{}:{}:{}", kind.as_str(), region.as_str(), key))
    }

    /// Parses and validates a document id.
    pub fn parse(s: &str) -> Result<DocId, IdError> {
        let bad = || IdError::DocId(s.chars().take(120).collect());
        let mut parts = s.splitn(3, ':');
        let kind = parts.next().and_then(DocKind::parse).ok_or_else(bad)?;
        let region = parts
            .next()
            .and_then(|r| RegionCode::parse(r).ok())
            .ok_or_else(bad)?;
        let key = parts.next().ok_or_else(bad)?;
        let key_ok = !key.is_empty()
            && key.len() <= DOC_KEY_MAX
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !key_ok {
            return Err(bad());
        }
        Ok(DocId {
            text: format!("{}:{}:{}", kind.as_str(), region.as_str(), key),
            kind,
            region,
        })
    }

    /// The record kind.
    pub fn kind(&self) -> DocKind {
        self.kind
    }

    /// The region the record belongs to.
    pub fn region(&self) -> &RegionCode {
        &self.region
    }

    /// The key part (case number, implementation code, year …).
    pub fn key(&self) -> &str {
        let skip = self.kind.as_str().len() + self.region.as_str().len() + 2;
        &self.text[skip..]
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for DocId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocId::parse(s)
    }
}

impl TryFrom<String> for DocId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DocId::parse(&s)
    }
}

impl From<DocId> for String {
    fn from(d: DocId) -> String {
        d.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    #[test]
    fn region_codes_are_canonical_and_nest() {
        assert_eq!(rc("140200").as_str(), "1402");
        assert_eq!(rc("140200").level(), Level::City);
        assert_eq!(rc("140212").level(), Level::County);
        assert_eq!(rc("140212000").as_str(), "140212");
        assert_eq!(rc("140212101").level(), Level::Township);
        assert!(rc("1402").is_ancestor_of(&rc("140212")));
        assert!(rc("140212").is_ancestor_of(&rc("140212101")));
        assert!(!rc("140212").is_ancestor_of(&rc("140212")));
        assert!(rc("140212").contains(&rc("140212")));
        assert!(!rc("140212").contains(&rc("140213101")));
        assert_eq!(rc("140212101").parent(), Some(rc("140212")));
        assert_eq!(rc("14").parent(), None);
        assert_eq!(rc("1402").to_string(), "140200");
        assert_eq!(rc("140212101").to_string(), "140212101");
    }

    #[test]
    fn log_keys_order_by_node_actor_and_the_counter_as_a_number() {
        let k = |s: &str| LogId::parse(s).unwrap();
        assert!(k("tw-101.abcd1234.2") < k("tw-101.abcd1234.10"));
        assert!(k("tw-101.abcd1234.99") < k("tw-101.abcd1234.100"));
        // A node that prefixes another sorts first, whatever follows it
        // ('-' sorts before '.' as text).
        assert!(k("tw.a.1") < k("tw-1.a.1"));
        assert_eq!(k("cn-212.0f.7").to_string(), "cn-212.0f.7");
        let node = NodeId::parse("tw-101").unwrap();
        let existing = [k("tw-101.a.9"), k("tw-101.a.10"), k("tw-101.b.40")];
        assert_eq!(
            LogId::next(existing.iter(), &node, "a").unwrap(),
            k("tw-101.a.11")
        );
        assert_eq!(
            LogId::next(existing.iter(), &node, "c").unwrap(),
            k("tw-101.c.1")
        );
        for bad in [
            "", "a.1", "tw.a.1.2", "tw.a.01", "tw.a.0", "tw.A.1", "tw..1", "-x.a.1", "tw.a.",
            "tw.a.x1",
        ] {
            assert!(LogId::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn malformed_region_codes_are_refused() {
        for bad in [
            "", "1", "14021", "1402121", "abc123", "990000", "140012", "14a212",
        ] {
            assert!(RegionCode::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(matches!(
            RegionCode::parse("140012"),
            Err(IdError::RegionGap(_))
        ));
    }

    #[test]
    fn doc_ids_round_trip_and_refuse_junk() {
        let d = DocId::parse("case:140212101:XK-20261123.0001").unwrap();
        assert_eq!(d.kind(), DocKind::Case);
        assert_eq!(d.region(), &rc("140212101"));
        assert_eq!(d.key(), "XK-20261123.0001");
        let canon = DocId::parse("item:140200:X1").unwrap();
        assert_eq!(canon.as_str(), "item:1402:X1");
        for bad in [
            "case:140212101:",
            "thing:140212:a",
            "case:1402x:a",
            "case:140212:a b",
            "case:140212:a:b",
        ] {
            assert!(DocId::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(DocId::parse(&format!("case:14:{}", "a".repeat(65))).is_err());
    }

    #[test]
    fn node_ids() {
        assert!(NodeId::parse("tw-101").is_ok());
        for bad in ["", "-x", "Tw", "a_b", &"a".repeat(33)] {
            assert!(NodeId::parse(bad).is_err());
        }
    }
}
