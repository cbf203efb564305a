//! The supervision rules a hub publishes for its subtree (DOMAIN §5): the
//! thresholds cards are raised at and the weights of the monthly
//! evaluation. A city's rules hold for every hall below it; a county may
//! tighten a threshold for its own subtree, never loosen it. The rules in
//! force for a case are the strictest of every record published at or
//! above its hall's region, so every level holding the same records
//! raises the same cards for it.

use serde::{Deserialize, Serialize};

use crate::cards::{CaseCard, Thresholds};
use crate::clock::{LimitUnit, TimeLimit};
use crate::evaluation::Weights;
use crate::ids::RegionCode;
use crate::order::{Card, Rule};
use crate::time::Ts;
use crate::valid::{self, Invalid};

/// The key every rules document has (`rules:REGION:supervision`).
pub const RULES_KEY: &str = "supervision";

/// One hub's published rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// The hub's region: the rules hold for its subtree.
    pub region: RegionCode,
    /// Raised at each publication.
    pub version: u32,
    /// When published.
    pub published_at: Ts,
    /// Who published them.
    pub published_by: String,
    /// The thresholds.
    pub thresholds: Thresholds,
    /// The evaluation's weights.
    pub weights: Weights,
    /// The orders this hub issues by itself. Its own choice: not inherited
    /// by the hubs below it.
    #[serde(default)]
    pub auto_orders: AutoOrders,
}

/// The cards a hub orders put right by itself (自动督办): an order as soon
/// as a card of a case below it reaches the level its rule names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoOrders {
    /// For each rule named, the lowest level of card that gets an order;
    /// a rule not named gets none.
    pub levels: Vec<(Rule, Card)>,
    /// How long the unit has to reply to such an order.
    pub reply_within: TimeLimit,
}

impl Default for AutoOrders {
    fn default() -> AutoOrders {
        AutoOrders {
            levels: Vec::new(),
            reply_within: TimeLimit::new(3, LimitUnit::WorkingDays),
        }
    }
}

/// The prefix of the per-rule names of [`AutoOrders`]' levels.
pub const AUTO_ORDER: &str = "auto_order.";
/// The name of [`AutoOrders::reply_within`].
pub const AUTO_ORDER_REPLY: &str = "auto_order_reply";

impl AutoOrders {
    /// Whether a hub at `here` orders `card`, standing at a case of `unit`,
    /// put right by itself: the case lies below it, the card still stands,
    /// and it is at or above the level named for its rule.
    pub fn calls_for(&self, here: &RegionCode, unit: &RegionCode, card: &CaseCard) -> bool {
        let rank = |c: Card| Card::ALL.iter().position(|x| *x == c);
        here.is_ancestor_of(unit)
            && card.until.is_none()
            && self
                .levels
                .iter()
                .any(|(r, least)| *r == card.rule && rank(card.card) >= rank(*least))
    }

    /// Sets one setting from text: `auto_order.RULE` to `notice`, `yellow`,
    /// `red` or `off`, or `auto_order_reply` to a time limit. `Ok(false)`:
    /// `name` is not one of these settings.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, String> {
        if name == AUTO_ORDER_REPLY {
            self.reply_within = TimeLimit::parse(value).map_err(|e| format!("{name}: {e}"))?;
            return Ok(true);
        }
        let Some(rule) = name.strip_prefix(AUTO_ORDER) else {
            return Ok(false);
        };
        let rule = Rule::parse(rule).ok_or_else(|| {
            let rules: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
            format!(
                "{name}: no rule {rule:?}; the rules are {}",
                rules.join(", ")
            )
        })?;
        self.levels.retain(|(r, _)| *r != rule);
        if value.trim() != "off" {
            if !crate::cards::derives(rule) {
                return Err(format!(
                    "{name}: no card of {rule} is ever raised from a case (complaints are not recorded as cases), so no order would be issued; issue one by hand with `hallsync order issue`"
                ));
            }
            let card = Card::parse(value.trim()).ok_or_else(|| {
                format!("{name}: {value:?} is not a level; use notice, yellow, red or off")
            })?;
            self.levels.push((rule, card));
            self.levels
                .sort_by_key(|(r, _)| Rule::ALL.iter().position(|x| x == r));
        }
        Ok(true)
    }

    /// The settings as (name, value) pairs, for showing and storing.
    pub fn values(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .levels
            .iter()
            .map(|(r, c)| (format!("{AUTO_ORDER}{r}"), c.to_string()))
            .collect();
        out.push((AUTO_ORDER_REPLY.into(), self.reply_within.to_string()));
        out
    }
}

/// Which way a threshold is stricter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stricter {
    /// A longer lead (a notice before a due time) warns earlier.
    Longer,
    /// A shorter wait raises the card sooner.
    Shorter,
}

/// A threshold's name (as typed and stored), how it is stricter, and how
/// to reach it.
type Field = (
    &'static str,
    Stricter,
    fn(&Thresholds) -> TimeLimit,
    fn(&mut Thresholds) -> &mut TimeLimit,
);

/// The time thresholds, by name.
const FIELDS: &[Field] = &[
    (
        "time_limit_notice",
        Stricter::Longer,
        |t| t.time_limit_notice,
        |t| &mut t.time_limit_notice,
    ),
    (
        "special_notice",
        Stricter::Longer,
        |t| t.special_notice,
        |t| &mut t.special_notice,
    ),
    (
        "special_red_over",
        Stricter::Shorter,
        |t| t.special_red_over,
        |t| &mut t.special_red_over,
    ),
    (
        "online_notice",
        Stricter::Shorter,
        |t| t.online_decision[0],
        |t| &mut t.online_decision[0],
    ),
    (
        "online_yellow",
        Stricter::Shorter,
        |t| t.online_decision[1],
        |t| &mut t.online_decision[1],
    ),
    (
        "online_red",
        Stricter::Shorter,
        |t| t.online_decision[2],
        |t| &mut t.online_decision[2],
    ),
    (
        "decision_silence",
        Stricter::Shorter,
        |t| t.decision_silence,
        |t| &mut t.decision_silence,
    ),
    (
        "delivery",
        Stricter::Shorter,
        |t| t.delivery,
        |t| &mut t.delivery,
    ),
    (
        "step_limit",
        Stricter::Shorter,
        |t| t.step_limit,
        |t| &mut t.step_limit,
    ),
    (
        "forward_limit",
        Stricter::Shorter,
        |t| t.forward_limit,
        |t| &mut t.forward_limit,
    ),
];

/// Thresholds added after rules were first published: a record without
/// one holds the default.
pub const ADDED_LATER: &[&str] = &["step_limit", "forward_limit"];

/// The names of the time thresholds, and `disclosure_red_times`.
pub fn threshold_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
    names.push("disclosure_red_times");
    names
}

/// The longest any time threshold may be.
const MAX_DAYS: u32 = 60;

/// The longest a notice may come before a due time: longer, and it warns
/// of nearly every case on the day it is accepted.
const MAX_LEAD_DAYS: u32 = 10;

/// `n` days, in the seconds a limit's budget counts (working days count
/// as days).
fn days(n: u32) -> i64 {
    i64::from(n) * LimitUnit::NaturalDays.seconds()
}

/// Whether a limit is at most [`MAX_DAYS`] days (working days counted as
/// days, hours to the second: 1441h is more than 60 days).
fn within_max(limit: TimeLimit) -> bool {
    limit.budget() <= days(MAX_DAYS)
}

/// Checks the time an order gives its unit to reply, named `name` in the
/// refusal: more than zero, at most [`MAX_DAYS`] days (or working days).
pub fn check_reply_within(name: &str, reply: TimeLimit) -> Result<(), Invalid> {
    if reply.amount == 0 || !within_max(reply) {
        return Err(Invalid::new(
            name,
            format!(
                "{reply}: must be more than zero and at most {MAX_DAYS} days (or working days)"
            ),
        ));
    }
    Ok(())
}

fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.0 == name)
}

/// Sets one threshold from text (`3wd`, `2d`, `24h`; or a number for
/// `disclosure_red_times`), checking only that it reads.
pub fn set_threshold(t: &mut Thresholds, name: &str, value: &str) -> Result<(), String> {
    if name == "disclosure_red_times" {
        t.disclosure_red_times = value
            .trim()
            .parse()
            .map_err(|_| format!("{name}: {value:?} is not a whole number"))?;
        return Ok(());
    }
    let f = field(name).ok_or_else(|| {
        format!(
            "no threshold {name:?}; the thresholds are {}, and the automatic orders are set with {AUTO_ORDER}RULE and {AUTO_ORDER_REPLY}",
            threshold_names().join(", ")
        )
    })?;
    *(f.3)(t) = TimeLimit::parse(value).map_err(|e| format!("{name}: {e}"))?;
    Ok(())
}

/// The thresholds as (name, value) pairs, for showing.
pub fn threshold_values(t: &Thresholds) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&str, String)> = FIELDS.iter().map(|f| (f.0, (f.2)(t).to_string())).collect();
    out.push(("disclosure_red_times", t.disclosure_red_times.to_string()));
    out
}

/// Whether `a` is at least as strict as `b` in direction `s`, when both
/// count time the same way (`None`: they do not, and cannot be compared).
fn at_least_as_strict(s: Stricter, a: TimeLimit, b: TimeLimit) -> Option<bool> {
    (a.unit.meter() == b.unit.meter()).then(|| match s {
        Stricter::Longer => a.budget() >= b.budget(),
        Stricter::Shorter => a.budget() <= b.budget(),
    })
}

impl Rules {
    /// Checks the record on its own: every threshold possible, the online
    /// levels in order, the weights adding up to 100. Only a city or a
    /// county publishes rules.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !matches!(self.region.as_str().len(), 4 | 6) {
            return Err(Invalid::new(
                "region",
                "rules are published by a city or a county hub".to_string(),
            ));
        }
        valid::text("published_by", &self.published_by, 60)?;
        let t = &self.thresholds;
        for (name, s, get, _) in FIELDS {
            let limit = get(t);
            if limit.amount == 0 {
                return Err(Invalid::new(*name, "must be more than zero".to_string()));
            }
            if !within_max(limit) {
                return Err(Invalid::new(
                    *name,
                    format!("{limit} is more than {MAX_DAYS} days: no card would ever be raised in time"),
                ));
            }
            if *s == Stricter::Longer && limit.budget() > days(MAX_LEAD_DAYS) {
                return Err(Invalid::new(
                    *name,
                    format!("a notice {limit} before the due time would warn of nearly every case on the day it is accepted; give at most {MAX_LEAD_DAYS} days (or working days)"),
                ));
            }
        }
        let [n, y, r] = t.online_decision;
        let ordered = n.unit.meter() == y.unit.meter()
            && y.unit.meter() == r.unit.meter()
            && n.budget() < y.budget()
            && y.budget() < r.budget();
        if !ordered {
            return Err(Invalid::new(
                "online_decision",
                format!("the notice ({n}), yellow ({y}) and red ({r}) levels must each come later than the one before, counted alike"),
            ));
        }
        if !(2..=10).contains(&t.disclosure_red_times) {
            return Err(Invalid::new(
                "disclosure_red_times",
                format!(
                    "{} is not 2 to 10 times the publication limit",
                    t.disclosure_red_times
                ),
            ));
        }
        check_reply_within(AUTO_ORDER_REPLY, self.auto_orders.reply_within)?;
        let w = &self.weights;
        let sum = w.on_time + w.speed_up + w.satisfaction + w.cards + w.orders;
        if sum != 100 {
            return Err(Invalid::new(
                "weights",
                format!("add up to {sum}; they must add up to 100"),
            ));
        }
        Ok(())
    }

    /// Every threshold of these rules (a county's) that loosens the rules
    /// above them (a city's), or counts time otherwise: each must be at
    /// least as strict, counted alike. Empty when none does.
    pub fn loosened(&self, above: &Rules) -> Vec<Invalid> {
        let (mine, theirs) = (&self.thresholds, &above.thresholds);
        let mut found = Vec::new();
        for (name, s, get, _) in FIELDS {
            let (a, b) = (get(mine), get(theirs));
            let reason = match at_least_as_strict(*s, a, b) {
                Some(true) => continue,
                Some(false) => format!(
                    "{a} is looser than the {b} that {} set; a county may only tighten a threshold",
                    above.region
                ),
                None => format!(
                    "{a} is counted otherwise than the {b} that {} set: use the same unit",
                    above.region
                ),
            };
            found.push(Invalid::new(*name, reason));
        }
        if mine.disclosure_red_times > theirs.disclosure_red_times {
            found.push(Invalid::new(
                "disclosure_red_times",
                format!(
                    "{} is looser than the {} that {} set",
                    mine.disclosure_red_times, theirs.disclosure_red_times, above.region
                ),
            ));
        }
        found
    }
}

/// The thresholds in force under a chain of published rules (any order):
/// DOMAIN §5's defaults where nothing is published; else the topmost
/// record's, tightened field by field by each record below it (where it
/// counts time alike), so a record below can never loosen one above.
pub fn in_force<'a>(chain: impl IntoIterator<Item = &'a Rules>) -> Thresholds {
    let mut chain: Vec<&Rules> = chain.into_iter().collect();
    chain.sort_by_key(|r| r.region.as_str().len());
    let mut records = chain.into_iter();
    let Some(top) = records.next() else {
        return Thresholds::default();
    };
    let mut t = top.thresholds.clone();
    for r in records {
        for (_, s, get, set) in FIELDS {
            let theirs = get(&r.thresholds);
            if at_least_as_strict(*s, theirs, get(&t)) == Some(true) {
                *set(&mut t) = theirs;
            }
        }
        t.disclosure_red_times = t
            .disclosure_red_times
            .min(r.thresholds.disclosure_red_times);
    }
    t
}

/// The weights in force at `region`: those of the nearest record at or
/// above it, else the defaults.
pub fn weights_in_force<'a>(chain: impl IntoIterator<Item = &'a Rules>) -> Weights {
    chain
        .into_iter()
        .max_by_key(|r| r.region.as_str().len())
        .map(|r| r.weights.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(region: &str) -> Rules {
        Rules {
            region: RegionCode::parse(region).unwrap(),
            version: 1,
            published_at: Ts(1_790_000_000),
            published_by: "市监察室".into(),
            thresholds: Thresholds::default(),
            weights: Weights::default(),
            auto_orders: AutoOrders::default(),
        }
    }

    #[test]
    fn a_hub_orders_by_itself_the_standing_cards_of_the_halls_below_at_the_level_set() {
        let mut a = AutoOrders::default();
        assert!(a.set("auto_order.case_time_limit", "yellow").unwrap());
        assert!(a.set("auto_order.disclosure", "red").unwrap());
        assert!(a.set("auto_order_reply", "2wd").unwrap());
        assert!(!a.set("delivery", "2d").unwrap());
        assert!(a
            .set("auto_order.nope", "red")
            .unwrap_err()
            .contains("case_time_limit"));
        assert!(a
            .set("auto_order.disclosure", "pink")
            .unwrap_err()
            .contains("off"));
        assert!(a
            .set("auto_order.complaint_reply", "notice")
            .unwrap_err()
            .contains("order issue"));
        assert!(a.set("auto_order.complaint_reply", "off").unwrap());
        let (county, town) = (
            RegionCode::parse("140212").unwrap(),
            RegionCode::parse("140212101").unwrap(),
        );
        let card = |rule: Rule, card: Card, until: Option<Ts>| CaseCard {
            rule,
            card,
            since: Ts(1_790_000_000),
            until,
            clears: String::new(),
        };
        assert!(a.calls_for(
            &county,
            &town,
            &card(Rule::CaseTimeLimit, Card::Yellow, None)
        ));
        assert!(a.calls_for(&county, &town, &card(Rule::CaseTimeLimit, Card::Red, None)));
        assert!(!a.calls_for(
            &county,
            &town,
            &card(Rule::CaseTimeLimit, Card::Notice, None)
        ));
        assert!(!a.calls_for(&county, &town, &card(Rule::Disclosure, Card::Yellow, None)));
        assert!(!a.calls_for(
            &county,
            &town,
            &card(Rule::CertificateDelivery, Card::Red, None)
        ));
        let ended = card(Rule::CaseTimeLimit, Card::Red, Some(Ts(1_790_000_100)));
        assert!(!a.calls_for(&county, &town, &ended));
        // Its own cases are not ordered: orders go down.
        assert!(!a.calls_for(
            &county,
            &county,
            &card(Rule::CaseTimeLimit, Card::Red, None)
        ));
        a.set("auto_order.case_time_limit", "off").unwrap();
        assert!(!a.calls_for(&county, &town, &card(Rule::CaseTimeLimit, Card::Red, None)));
        let mut r = rules("140212");
        r.auto_orders = a;
        r.validate().unwrap();
        for (reply, valid) in [
            ("0h", false),
            ("60d", true),
            ("1440h", true),
            ("1441h", false),
            ("61d", false),
            ("60wd", true),
            ("61wd", false),
        ] {
            r.auto_orders.set("auto_order_reply", reply).unwrap();
            assert_eq!(r.validate().is_ok(), valid, "{reply}");
        }
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .contains(AUTO_ORDER_REPLY));
        assert!(set_threshold(&mut r.thresholds, "auto_orders.red", "1d")
            .unwrap_err()
            .contains("auto_order."));
    }

    #[test]
    fn the_defaults_are_valid_and_impossible_thresholds_are_refused_with_a_reason() {
        rules("1402").validate().unwrap();
        let mut r = rules("1402");
        set_threshold(&mut r.thresholds, "delivery", "0d").unwrap();
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .contains("more than zero"));
        let mut r = rules("1402");
        set_threshold(&mut r.thresholds, "online_yellow", "6d").unwrap();
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .contains("later than the one before"));
        // Yellow and red at the same instant: no red card would ever add
        // anything.
        let mut r = rules("1402");
        set_threshold(&mut r.thresholds, "online_yellow", "5d").unwrap();
        set_threshold(&mut r.thresholds, "online_red", "5d").unwrap();
        assert!(r.validate().is_err());
        set_threshold(&mut r.thresholds, "online_red", "6d").unwrap();
        r.validate().unwrap();
        for lead in ["time_limit_notice", "special_notice"] {
            let mut r = rules("1402");
            set_threshold(&mut r.thresholds, lead, "11wd").unwrap();
            let e = r.validate().unwrap_err().to_string();
            assert!(e.contains(lead) && e.contains("at most 10 days"), "{e}");
            set_threshold(&mut r.thresholds, lead, "10wd").unwrap();
            r.validate().unwrap();
        }
        let mut r = rules("1402");
        set_threshold(&mut r.thresholds, "decision_silence", "90d").unwrap();
        assert!(r.validate().unwrap_err().to_string().contains("60 days"));
        let mut r = rules("1402");
        r.weights.cards = 20;
        assert!(r.validate().unwrap_err().to_string().contains("100"));
        assert!(rules("140212101").validate().is_err());
        assert!(set_threshold(&mut r.thresholds, "nope", "1d")
            .unwrap_err()
            .contains("delivery"));
        assert!(set_threshold(&mut r.thresholds, "delivery", "soon").is_err());
    }

    #[test]
    fn a_county_may_tighten_and_never_loosen() {
        let city = rules("1402");
        let mut county = rules("140212");
        set_threshold(&mut county.thresholds, "delivery", "2d").unwrap();
        set_threshold(&mut county.thresholds, "time_limit_notice", "3wd").unwrap();
        assert!(county.loosened(&city).is_empty());
        let t = in_force([&city, &county]);
        assert_eq!(t.delivery.to_string(), "2d");
        assert_eq!(t.time_limit_notice.to_string(), "3wd");
        let mut loose = rules("140212");
        set_threshold(&mut loose.thresholds, "delivery", "5d").unwrap();
        set_threshold(&mut loose.thresholds, "step_limit", "9wd").unwrap();
        let found: Vec<String> = loose
            .loosened(&city)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("looser") && found[0].contains("delivery"),
            "{found:?}"
        );
        assert!(found[1].contains("step_limit"), "{found:?}");
        // A looser record that arrived anyway changes nothing; the
        // topmost record may loosen DOMAIN §5's defaults.
        assert_eq!(in_force([&loose, &city]).delivery.to_string(), "3d");
        assert_eq!(in_force([&loose]).delivery.to_string(), "5d");
        assert_eq!(in_force([]).delivery.to_string(), "3d");
        let mut other = rules("140212");
        set_threshold(&mut other.thresholds, "delivery", "2wd").unwrap();
        assert!(other.loosened(&city)[0].to_string().contains("unit"));
    }
}
