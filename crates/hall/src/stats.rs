//! Statistics over a hall's subtree, from tallies kept in the same commit
//! as every case and order (`hallsync_store::Tally`), so a hub answers
//! without reading a case.
//!
//! Each record's facts (`hallsync_model::stats`) expand into tallies (the
//! `level` byte is the region's number of digits):
//!
//! - `b` level region 0 day: a unit's counts on a day, under the record's
//!   region and every ancestor from the city down;
//! - `i` level region 0 month item: an item's counts in a month, under the
//!   record's own region only (a hub sums the regions below it);
//! - `j` level region 0 day item: … on a day;
//! - `g` level region 0 item: gauges (open cases), own region only;
//! - `p` level region 0 instant item: the counts of situations still going
//!   on (an open case's coming cards), by the instant they count from,
//!   under the record's own region only: one key each, however many units
//!   and periods read it; a reader reads those of its regions up to `now`
//!   (as many as the cards standing there).
//!
//! A unit's period is read from its day tallies (at most 366 a year), an
//! item breakdown from whole months where it can and days elsewhere, each
//! plus the `p` counts whose instant lies in the period and has passed
//! `now`; no day after today is counted. Five tallies a counted day (three
//! ancestors, an item's month and day), rather than month and item tallies
//! under every ancestor, keep the write path light (see
//! docs/decisions.md). The open cases past due now are the `p` overdue
//! counts passed by `now`.

use std::collections::BTreeMap;
use std::sync::Arc;

use hallsync_model::calendar::Calendar;
use hallsync_model::case::{Case, CaseHeader, CaseView};
use hallsync_model::order::Order;
use hallsync_model::stats::{self, day_of, day_start, ix, month_of, Facts, Row};
use hallsync_model::{RegionCode, Ts};
use hallsync_store::{Tallier, Tally};

use crate::{Hall, HallError};

/// The version of the key layout and counters below; a store summed under
/// another is summed afresh at open.
const TALLIES: u32 = 4;

/// Region lengths (digits) tallied: city, county, township, village.
const LEVELS: [usize; 4] = [4, 6, 9, 12];

/// The tallier every hall's store is opened with.
pub(crate) fn tallier() -> Tallier {
    Tallier {
        version: TALLIES,
        delta: Arc::new(|old: Option<&[u8]>, new: &[u8]| {
            let decode = |b: &[u8]| postcard::from_bytes::<Facts>(b).map_err(|e| e.to_string());
            let new = decode(new)?;
            let old = old.map(decode).transpose()?;
            Ok(delta(old.as_ref(), &new))
        }),
    }
}

/// Sparse counters as a dense row.
fn dense(sparse: &[(u8, i64)]) -> Vec<i64> {
    let len = sparse
        .iter()
        .map(|(c, _)| usize::from(*c) + 1)
        .max()
        .unwrap_or(0);
    let mut row = vec![0; len];
    for (c, v) in sparse {
        row[usize::from(*c)] += v;
    }
    row
}

/// `a − b`, dense.
fn minus(a: &[(u8, i64)], b: &[(u8, i64)]) -> Vec<i64> {
    let mut row = dense(a);
    let other = dense(b);
    if row.len() < other.len() {
        row.resize(other.len(), 0);
    }
    for (r, o) in row.iter_mut().zip(other) {
        *r -= o;
    }
    row
}

/// An instant as key bytes, ordered as the instants are.
fn instant(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn unit_key(tag: u8, region: &str) -> Vec<u8> {
    let mut k = vec![tag, region.len() as u8];
    k.extend_from_slice(region.as_bytes());
    k.push(0);
    k
}

/// What facts changing from `old` to `new` add to the tallies: only the
/// days, gauges and pending instants that differ are expanded (a record's
/// unit and item never change, as its header is written once; if they
/// did, the old facts are taken away whole).
fn delta(old: Option<&Facts>, new: &Facts) -> Vec<Tally> {
    let empty = Facts::default();
    let old = match old {
        Some(o) if o.region == new.region && o.item == new.item => o,
        Some(o) => {
            let mut out = delta(None, new);
            out.extend(delta(
                Some(o),
                &Facts {
                    region: o.region.clone(),
                    item: o.item.clone(),
                    ..empty
                },
            ));
            return out;
        }
        None => &empty,
    };
    let mut days: Vec<(u32, Vec<i64>)> = Vec::new();
    let day_of = |f: &Facts, d: u32| -> Vec<(u8, i64)> {
        f.days
            .iter()
            .find(|(x, _)| *x == d)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    let mut all: Vec<u32> = old.days.iter().chain(&new.days).map(|(d, _)| *d).collect();
    all.sort_unstable();
    all.dedup();
    for d in all {
        let row = minus(&day_of(new, d), &day_of(old, d));
        if row.iter().any(|c| *c != 0) {
            days.push((d, row));
        }
    }
    let gauges = minus(&new.gauges, &old.gauges);
    let mut out = Vec::new();
    let ancestors = LEVELS
        .iter()
        .filter(|d| **d <= new.region.len())
        .map(|d| &new.region[..*d]);
    for unit in ancestors {
        for (day, counts) in &days {
            let mut key = unit_key(b'b', unit);
            key.extend_from_slice(&day.to_be_bytes());
            out.push(Tally {
                key,
                counts: counts.clone(),
            });
        }
    }
    let own = &new.region;
    for (day, counts) in &days {
        for (tag, period) in [(b'i', month_of(*day)), (b'j', *day)] {
            let mut key = unit_key(tag, own);
            key.extend_from_slice(&period.to_be_bytes());
            key.extend_from_slice(new.item.as_bytes());
            out.push(Tally {
                key,
                counts: counts.clone(),
            });
        }
    }
    if gauges.iter().any(|c| *c != 0) {
        let mut key = unit_key(b'g', own);
        key.extend_from_slice(new.item.as_bytes());
        out.push(Tally {
            key,
            counts: gauges,
        });
    }
    let pending = |f: &Facts, sign: i64, other: &Facts, out: &mut Vec<Tally>| {
        for p in f.pending.iter().filter(|p| !other.pending.contains(p)) {
            let (at, counter) = *p;
            let mut key = unit_key(b'p', &f.region);
            key.extend_from_slice(&instant(at));
            key.extend_from_slice(f.item.as_bytes());
            let mut counts = dense(&[(counter, 1)]);
            counts.iter_mut().for_each(|c| *c *= sign);
            out.push(Tally { key, counts });
        }
    };
    pending(new, 1, old, &mut out);
    pending(old, -1, new, &mut out);
    out
}

pub(crate) fn encode(f: &Facts) -> Result<Vec<u8>, HallError> {
    postcard::to_allocvec(f)
        .map_err(|e| HallError::BadInput(format!("could not encode the statistics facts: {e}")))
}

impl Hall {
    /// The statistics facts of a case, its clock read at its last event.
    pub(crate) fn case_facts(
        &self,
        header: &CaseHeader,
        view: &CaseView,
        cal: &Calendar,
    ) -> Result<Facts, HallError> {
        let case = Case {
            header: header.clone(),
            events: Vec::new(),
        };
        let at = view.last_event_at.unwrap_or(Ts(0));
        let clock = case.clock(view, cal, at);
        let thresholds = self.thresholds_for(&header.region)?;
        Ok(stats::case_facts(header, view, &clock, cal, &thresholds))
    }

    /// The statistics facts of an order.
    pub(crate) fn order_facts(order: &Order) -> Result<Vec<u8>, HallError> {
        encode(&stats::order_facts(order))
    }
}

/// How a statistics table is broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatsBy {
    /// One row: the unit.
    #[default]
    Total,
    /// A row per unit one level down (and the unit's own cases).
    Unit,
    /// A row per item.
    Item,
    /// A row per day.
    Day,
}

/// What to count.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    /// The unit (a region in this hall's subtree).
    pub unit: RegionCode,
    /// First day (inclusive), as a China date's instant.
    pub from: Ts,
    /// Last day (inclusive).
    pub to: Ts,
    /// The breakdown.
    pub by: StatsBy,
}

/// One row of a statistics table.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsLine {
    /// The row's key: a region code, an item's code, or a date
    /// (`YYYY-MM-DD`); for the unit's own cases in a breakdown by unit, the
    /// unit's code.
    pub key: String,
    /// Dated counts in the period.
    pub counts: Row,
    /// Open cases now.
    pub open: i64,
    /// Open cases past their committed due time now.
    pub overdue: i64,
}

/// A statistics table.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// The unit.
    pub unit: RegionCode,
    /// First and last day counted (the last capped at today).
    pub from: Ts,
    /// Last day counted.
    pub to: Ts,
    /// The whole unit.
    pub total: StatsLine,
    /// The breakdown (empty for [`StatsBy::Total`]), in key order.
    pub rows: Vec<StatsLine>,
}

/// A tally key's region and what follows its terminator.
fn split_key(k: &[u8]) -> Option<(&str, &[u8])> {
    let len = usize::from(*k.get(1)?);
    let region = std::str::from_utf8(k.get(2..2 + len)?).ok()?;
    let rest = k.get(3 + len..)?;
    Some((region, rest))
}

/// The first and last day of the month a day lies in.
fn month_bounds(day: u32) -> (u32, u32) {
    let month = month_of(day);
    let mut first = day;
    while first > 0 && month_of(first - 1) == month {
        first -= 1;
    }
    let mut last = day;
    while month_of(last + 1) == month {
        last += 1;
    }
    (first, last)
}

/// The days `[from, to]` as whole months (`true`) and runs of days within
/// a month (`false`), in order.
fn segments(from: u32, to: u32) -> Vec<(bool, u32, u32)> {
    let mut out = Vec::new();
    let mut day = from;
    while day <= to {
        let (first, last) = month_bounds(day);
        if day == first && last <= to {
            out.push((true, month_of(day), month_of(day)));
        } else {
            out.push((false, day, last.min(to)));
        }
        day = last.min(to) + 1;
    }
    out
}

/// Statistics rows being summed, by row key.
type Rows = BTreeMap<String, Row>;

impl Hall {
    /// Adds the tallies `tag` of exactly `region` for periods `[a, b]`,
    /// each to the row `row_of(tail after the period, period)`.
    fn sum_range(
        &self,
        tag: u8,
        region: &str,
        (a, b): (u32, u32),
        rows: &mut Rows,
        row_of: &dyn Fn(&[u8], u32) -> String,
    ) -> Result<(), HallError> {
        let at = |p: u32| {
            let mut k = unit_key(tag, region);
            k.extend_from_slice(&p.to_be_bytes());
            k
        };
        let to = at(b.saturating_add(1));
        for kv in self.store().tallies(&at(a), Some(&to)) {
            let (k, counts) = kv?;
            let Some((_, rest)) = split_key(&k) else {
                continue;
            };
            let Some(period) = rest.get(..4) else {
                continue;
            };
            let period = u32::from_be_bytes([period[0], period[1], period[2], period[3]]);
            rows.entry(row_of(&rest[4..], period))
                .or_default()
                .add(&counts, 1);
        }
        Ok(())
    }

    /// The regions at `digits` below `unit` that have day tallies.
    fn regions_below(&self, tag: u8, unit: &str, digits: usize) -> Result<Vec<String>, HallError> {
        let mut out: Vec<String> = Vec::new();
        let mut from = vec![tag, digits as u8];
        from.extend_from_slice(unit.as_bytes());
        let mut end = from.clone();
        end.push(0xff);
        // One key per region: after each, skip past the rest of its keys.
        loop {
            let Some(kv) = self.store().tallies(&from, Some(&end)).next() else {
                break;
            };
            let (k, _) = kv?;
            let Some((region, _)) = split_key(&k) else {
                break;
            };
            out.push(region.to_string());
            from = unit_key(tag, region);
            from.push(0xff);
        }
        Ok(out)
    }

    /// Adds, by item, the item tallies of every region at or below `unit`
    /// for the days `[from, to]`: whole months from month tallies, the
    /// rest from day tallies.
    fn sum_items(
        &self,
        unit: &str,
        (from, to): (u32, u32),
        rows: &mut Rows,
    ) -> Result<(), HallError> {
        let item = |tail: &[u8], _: u32| String::from_utf8_lossy(tail).into_owned();
        for digits in LEVELS.iter().copied().filter(|d| *d >= unit.len()) {
            for region in self.regions_below(b'i', unit, digits)? {
                for (whole, a, b) in segments(from, to) {
                    let tag = if whole { b'i' } else { b'j' };
                    self.sum_range(tag, &region, (a, b), rows, &item)?;
                }
            }
        }
        Ok(())
    }

    /// Adds the gauges of every region at or below `unit`, by the row
    /// `row_of(region, item)`.
    fn sum_gauges(
        &self,
        unit: &str,
        rows: &mut Rows,
        row_of: &dyn Fn(&str, &[u8]) -> String,
    ) -> Result<(), HallError> {
        for digits in LEVELS.iter().copied().filter(|d| *d >= unit.len()) {
            let mut prefix = vec![b'g', digits as u8];
            prefix.extend_from_slice(unit.as_bytes());
            for kv in self.store().tallies_with_prefix(&prefix) {
                let (k, counts) = kv?;
                if let Some((region, item)) = split_key(&k) {
                    rows.entry(row_of(region, item))
                        .or_default()
                        .add(&counts, 1);
                }
            }
        }
        Ok(())
    }

    /// The pending counts within `unit` that count from an instant in
    /// `[from, to]`: (region, item, instant, counts).
    fn passed(&self, unit: &str, from: Ts, to: Ts) -> Result<Vec<Passed>, HallError> {
        let mut out = Vec::new();
        for digits in LEVELS.iter().copied().filter(|d| *d >= unit.len()) {
            for region in self.regions_below(b'p', unit, digits)? {
                let at = |t: i64| {
                    let mut k = unit_key(b'p', &region);
                    k.extend_from_slice(&instant(t));
                    k
                };
                let end = at(to.0.saturating_add(1));
                for kv in self.store().tallies(&at(from.0), Some(&end)) {
                    let (k, counts) = kv?;
                    let Some((_, rest)) = split_key(&k) else {
                        continue;
                    };
                    let Some(t) = rest.get(..8) else { continue };
                    let t =
                        (u64::from_be_bytes(t.try_into().unwrap_or_default()) ^ (1 << 63)) as i64;
                    out.push(Passed {
                        region: region.clone(),
                        item: String::from_utf8_lossy(&rest[8..]).into_owned(),
                        day: day_of(Ts(t)),
                        counts,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Statistics of `q.unit` for the days `q.from..=q.to` (the last day
    /// capped at today), as of `now`; with the open cases, and those past
    /// their committed due time, now.
    pub fn stats(&self, q: &StatsQuery, now: Ts) -> Result<Stats, HallError> {
        if !self.node.region.contains(&q.unit) {
            return Err(HallError::OutOfScope {
                id: format!("the statistics of {}", q.unit),
                region: self.node.region.to_string(),
                why: "statistics cover the halls at or below this one",
            });
        }
        let unit = q.unit.as_str();
        if !LEVELS.contains(&unit.len()) {
            return Err(HallError::BadInput(format!(
                "statistics are kept for cities, counties, townships and villages; {unit} is a {}",
                q.unit.level()
            )));
        }
        let today = day_of(now);
        let (from, to) = (day_of(q.from), day_of(q.to).min(today));
        if from > day_of(q.to) {
            return Err(HallError::BadInput(format!(
                "the period ends before it begins: from {} is after to {}",
                q.from.date(),
                q.to.date()
            )));
        }
        let period = (from, to);
        let counted = from <= to;
        let none = |_: &[u8], _: u32| String::new();
        let mut total = Rows::new();
        let mut total_open = Rows::new();
        if counted {
            self.sum_range(b'b', unit, period, &mut total, &none)?;
        }
        self.sum_gauges(unit, &mut total_open, &|_, _| String::new())?;
        let mut rows = Rows::new();
        let mut open = Rows::new();
        let child = child_level(&q.unit);
        match (q.by, child) {
            (StatsBy::Total, _) | (StatsBy::Unit, None) => {}
            (StatsBy::Unit, Some(d)) => {
                if counted {
                    for region in self.regions_below(b'b', unit, d)? {
                        let name = |_: &[u8], _: u32| region.clone();
                        self.sum_range(b'b', &region, period, &mut rows, &name)?;
                    }
                }
                self.sum_gauges(unit, &mut open, &|region, _| {
                    if region.len() >= d {
                        region[..d].to_string()
                    } else {
                        region.to_string()
                    }
                })?;
                open.remove(unit);
            }
            (StatsBy::Item, _) => {
                if counted {
                    self.sum_items(unit, period, &mut rows)?;
                }
                self.sum_gauges(unit, &mut open, &|_, item| {
                    String::from_utf8_lossy(item).into_owned()
                })?;
            }
            (StatsBy::Day, _) => {
                if counted {
                    self.sum_range(b'b', unit, period, &mut rows, &|_, day| date_key(day))?;
                }
            }
        }
        let row_key = |p: &Passed| -> Option<String> {
            match (q.by, child) {
                (StatsBy::Unit, Some(d)) if p.region.len() >= d => Some(p.region[..d].to_string()),
                (StatsBy::Item, _) => Some(p.item.clone()),
                (StatsBy::Day, _) => Some(date_key(p.day)),
                _ => None,
            }
        };
        let mut total = total.remove("").unwrap_or_default();
        // Situations still going on count once `now` has passed their
        // instant; the open cases past due now whatever the period.
        let mut overdue: BTreeMap<String, i64> = BTreeMap::new();
        let mut total_overdue = 0;
        for p in self.passed(unit, Ts(i64::MIN / 2), now)? {
            let late = p.counts.get(ix::OVERDUE).copied().unwrap_or(0);
            total_overdue += late;
            let key = row_key(&p);
            if let Some(k) = &key {
                *overdue.entry(k.clone()).or_default() += late;
            }
            if !(counted && (from..=to).contains(&p.day)) {
                continue;
            }
            total.add(&p.counts, 1);
            if let Some(k) = key {
                rows.entry(k).or_default().add(&p.counts, 1);
            }
        }
        let total_open = total_open.remove("").unwrap_or_default().get(ix::OPEN);
        if q.by == StatsBy::Unit {
            // The unit's own cases: what its children do not account for.
            let mut own = total.clone();
            let mut own_open = total_open;
            let mut own_overdue = total_overdue;
            for (k, r) in &rows {
                own.add(&r.0, -1);
                own_open -= open.get(k).map_or(0, |o| o.get(ix::OPEN));
                own_overdue -= overdue.get(k).copied().unwrap_or(0);
            }
            if !own.is_empty() || own_open != 0 || own_overdue != 0 {
                rows.insert(unit.to_string(), own);
                let mut g = vec![0; ix::OPEN + 1];
                g[ix::OPEN] = own_open;
                open.insert(unit.to_string(), Row(g));
                overdue.insert(unit.to_string(), own_overdue);
            }
        }
        let mut keys: Vec<String> = rows.keys().chain(open.keys()).cloned().collect();
        keys.sort();
        keys.dedup();
        let lines = keys
            .into_iter()
            .map(|key| StatsLine {
                counts: rows.get(&key).cloned().unwrap_or_default(),
                open: open.get(&key).map_or(0, |o| o.get(ix::OPEN)),
                overdue: if q.by == StatsBy::Day {
                    0
                } else {
                    overdue.get(&key).copied().unwrap_or(0)
                },
                key,
            })
            .collect();
        Ok(Stats {
            unit: q.unit.clone(),
            from: day_start(from),
            to: day_start(to.max(from)),
            total: StatsLine {
                key: unit.to_string(),
                counts: total,
                open: total_open,
                overdue: total_overdue,
            },
            rows: lines,
        })
    }
}

/// A pending count whose instant has passed.
struct Passed {
    region: String,
    item: String,
    day: u32,
    counts: Vec<i64>,
}

fn child_level(unit: &RegionCode) -> Option<usize> {
    LEVELS.iter().copied().find(|d| *d > unit.as_str().len())
}

fn date_key(day: u32) -> String {
    day_start(day).date().format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn sum(tallies: &[Tally], sign: i64, into: &mut BTreeMap<Vec<u8>, Vec<i64>>) {
        for t in tallies {
            let row = into.entry(t.key.clone()).or_default();
            if row.len() < t.counts.len() {
                row.resize(t.counts.len(), 0);
            }
            for (r, c) in row.iter_mut().zip(&t.counts) {
                *r += c * sign;
            }
        }
        for row in into.values_mut() {
            while row.last() == Some(&0) {
                row.pop();
            }
        }
        into.retain(|_, r| !r.is_empty());
    }

    fn facts(
        region: &str,
        days: &[(u32, &[(u8, i64)])],
        open: i64,
        pending: &[(i64, u8)],
    ) -> Facts {
        Facts {
            region: region.into(),
            item: "X1".into(),
            gauges: if open == 0 {
                vec![]
            } else {
                vec![(ix::OPEN as u8, open)]
            },
            days: days.iter().map(|(d, r)| (*d, r.to_vec())).collect(),
            pending: pending.to_vec(),
        }
    }

    #[test]
    fn a_change_adds_what_the_new_facts_count_less_what_the_old_counted() {
        let open = facts(
            "140212101",
            &[(20_500, &[(0, 1), (1, 1)])],
            1,
            &[(1_771_000_000, 25), (1_771_000_000, 15)],
        );
        let done = facts(
            "140212101",
            &[(20_500, &[(0, 1), (1, 1)]), (20_503, &[(3, 1), (5, 1)])],
            0,
            &[(1_771_000_000, 25)],
        );
        let moved = facts("140213001", &[(20_501, &[(0, 1)])], 1, &[]);
        for (e, f) in [
            (&open, &done),
            (&done, &open),
            (&open, &moved),
            (&done, &done),
        ] {
            let mut expected = BTreeMap::new();
            sum(&delta(None, f), 1, &mut expected);
            sum(&delta(None, e), -1, &mut expected);
            let mut got = BTreeMap::new();
            sum(&delta(Some(e), f), 1, &mut got);
            assert_eq!(got, expected);
        }
        // Only the day that changed is expanded: under each ancestor, and
        // by item under the case's own region; one pending count is gone.
        let changed = delta(Some(&open), &done);
        let count = |tag: u8| changed.iter().filter(|t| t.key[0] == tag).count();
        assert_eq!(
            [
                count(b'b'),
                count(b'i'),
                count(b'j'),
                count(b'g'),
                count(b'p')
            ],
            [3, 1, 1, 1, 1]
        );
    }
}
