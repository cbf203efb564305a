//! Value parsers for the command line's arguments.

use hallsync_model::case::{Outcome, Procedure};
use hallsync_model::order::{Card, Resolution, Rule, Verdict};
use hallsync_model::{CaseState, Level, NodeId, RegionCode, TimeLimit, Ts};

pub fn ts(s: &str) -> Result<Ts, String> {
    Ts::parse(s).map_err(|e| e.to_string())
}

/// A date, `YYYY-MM-DD`, checked and passed on as typed.
pub fn date(s: &str) -> Result<String, String> {
    hallsync_model::time::parse_date(s)
        .map(|d| d.to_string())
        .map_err(|e| e.to_string())
}

pub fn node(s: &str) -> Result<NodeId, String> {
    NodeId::parse(s).map_err(|e| e.to_string())
}

pub fn region(s: &str) -> Result<RegionCode, String> {
    RegionCode::parse(s).map_err(|e| e.to_string())
}

pub fn level(s: &str) -> Result<Level, String> {
    s.parse()
        .map_err(|e: hallsync_model::ids::IdError| e.to_string())
}

pub fn state(s: &str) -> Result<CaseState, String> {
    CaseState::parse(s).ok_or_else(|| format!("{s:?} is not a state: use a code 1-15 or a name such as received, accepted, handling, approved"))
}

pub fn limit(s: &str) -> Result<TimeLimit, String> {
    TimeLimit::parse(s).map_err(|e| e.to_string())
}

/// Parses one of a fixed set of names, listing them all when it fails.
fn named<T: Copy + std::fmt::Display>(what: &str, all: &[T], s: &str) -> Result<T, String> {
    all.iter()
        .copied()
        .find(|v| v.to_string() == s)
        .ok_or_else(|| {
            let names: Vec<String> = all.iter().map(T::to_string).collect();
            format!("{s:?} is not a {what}: use {}", names.join(", "))
        })
}

pub fn rule(s: &str) -> Result<Rule, String> {
    named("rule", Rule::ALL, s)
}

pub fn card(s: &str) -> Result<Card, String> {
    named("card", Card::ALL, s)
}

pub fn resolution(s: &str) -> Result<Resolution, String> {
    named("result", Resolution::ALL, s)
}

pub fn verdict(s: &str) -> Result<Verdict, String> {
    named("verdict", Verdict::ALL, s)
}

pub fn procedure(s: &str) -> Result<Procedure, String> {
    Procedure::parse(s).ok_or_else(|| format!("{s:?} is not a special procedure: use hearing, bidding, auction, testing, inspection, quarantine, appraisal or expert_review"))
}

pub fn outcome(s: &str) -> Result<Outcome, String> {
    Outcome::parse(s)
        .ok_or_else(|| format!("{s:?} is not an outcome: use approved, deficient or refused"))
}

pub fn role(s: &str) -> Result<hallsync_hall::operators::Role, String> {
    hallsync_hall::operators::Role::parse(s)
        .ok_or_else(|| format!("{s:?} is not a role: use clerk, reviewer, supervisor or admin"))
}

/// Yuan with at most two decimals, as fen.
pub fn yuan(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an amount in yuan such as 12.50");
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if frac.len() > 2
        || whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let w: i64 = whole.parse().map_err(|_| bad())?;
    let f: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    w.checked_mul(100)
        .and_then(|c| c.checked_add(f))
        .filter(|v| *v > 0)
        .ok_or_else(bad)
}
