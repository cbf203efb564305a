//! Statistics over a hall's subtree, from tallies kept in the same commit
//! as every case and order (`hallsync_store::Tally`), so a hub answers
//! without reading a case.
//!
//! Each record's facts (`hallsync_model::stats`) expand into tallies under
//! its region and every ancestor from the city down (the `level` byte is
//! the region's number of digits):
//!
//! - `a` level region 0 month: a unit's counts in a month;
//! - `b` level region 0 day: … on a day;
//! - `i` level region 0 month item: an item's counts in a unit and month;
//! - `j` level region 0 day item: … on a day;
//! - `g` level region 0 item: gauges (open cases) per unit and item;
//! - `p` instant region 0 item: the dated counts not reached yet when the
//!   record was written, by the instant they count from, under the record's
//!   own region only.
//!
//! A period is read from whole months where it can and days elsewhere; a
//! period that reaches today leaves out what `p` says is still ahead of
//! `now` today, and never counts a day after today.

use std::collections::BTreeMap;
use std::sync::Arc;

use hallsync_model::calendar::Calendar;
use hallsync_model::case::{Case, CaseHeader, CaseView};
use hallsync_model::order::Order;
use hallsync_model::schema::Record;
use hallsync_model::stats::{self, day_of, day_start, ix, month_of, Facts, Row};
use hallsync_model::{RegionCode, Ts};
use hallsync_store::{Tallier, Tally};

use crate::{Hall, HallError};

/// The version of the key layout and counters below; a store summed under
/// another is summed afresh at open.
const TALLIES: u32 = 1;

/// Region lengths (digits) tallied: city, county, township, village.
const LEVELS: [usize; 4] = [4, 6, 9, 12];

/// The tallier every hall's store is opened with.
pub(crate) fn tallier() -> Tallier {
    Tallier {
        version: TALLIES,
        expand: Arc::new(|bytes: &[u8]| {
            let facts: Facts = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
            Ok(expand(&facts))
        }),
    }
}

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

fn unit_key(tag: u8, region: &str) -> Vec<u8> {
    let mut k = vec![tag, region.len() as u8];
    k.extend_from_slice(region.as_bytes());
    k.push(0);
    k
}

fn expand(f: &Facts) -> Vec<Tally> {
    let mut out = Vec::new();
    let ancestors = LEVELS
        .iter()
        .filter(|d| **d <= f.region.len())
        .map(|d| &f.region[..*d]);
    for unit in ancestors {
        for (day, sparse) in &f.days {
            let counts = dense(sparse);
            let month = month_of(*day);
            for (tag, period) in [(b'a', month), (b'b', *day)] {
                let mut key = unit_key(tag, unit);
                key.extend_from_slice(&period.to_be_bytes());
                out.push(Tally {
                    key: key.clone(),
                    counts: counts.clone(),
                });
                key[0] = if tag == b'a' { b'i' } else { b'j' };
                key.extend_from_slice(f.item.as_bytes());
                out.push(Tally {
                    key,
                    counts: counts.clone(),
                });
            }
        }
        if !f.gauges.is_empty() {
            let mut key = unit_key(b'g', unit);
            key.extend_from_slice(f.item.as_bytes());
            out.push(Tally {
                key,
                counts: dense(&f.gauges),
            });
        }
    }
    for (at, counter) in &f.pending {
        let mut key = vec![b'p'];
        key.extend_from_slice(&((*at as u64) ^ (1 << 63)).to_be_bytes());
        key.extend_from_slice(f.region.as_bytes());
        key.push(0);
        key.extend_from_slice(f.item.as_bytes());
        out.push(Tally {
            key,
            counts: dense(&[(*counter, 1)]),
        });
    }
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
    ) -> Result<Vec<u8>, HallError> {
        let case = Case {
            header: header.clone(),
            events: Vec::new(),
        };
        let at = view.last_event_at.unwrap_or(Ts(0));
        let clock = case.clock(view, cal, at);
        let thresholds = self.thresholds_for(&header.region)?;
        encode(&stats::case_facts(header, view, &clock, cal, &thresholds))
    }

    /// The statistics facts of an order.
    pub(crate) fn order_facts(order: &Order) -> Result<Vec<u8>, HallError> {
        encode(&stats::order_facts(order))
    }

    /// The facts of any record that has them (cases and orders).
    pub(crate) fn facts_of(
        &self,
        record: &Record,
        cal: &Calendar,
    ) -> Result<Option<Vec<u8>>, HallError> {
        match record {
            Record::Case(c) => self.case_facts(&c.header, &c.view(), cal).map(Some),
            Record::Order(o) => Self::order_facts(o).map(Some),
            _ => Ok(None),
        }
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
    /// each to the row `row_of(tail after the period)`.
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

    /// Adds the dated tallies of `region` in `[from, to]` (`month`, `day`:
    /// the tags), from whole months where it can.
    fn sum_period(
        &self,
        (month, day): (u8, u8),
        region: &str,
        (from, to): (u32, u32),
        rows: &mut Rows,
        row_of: &dyn Fn(&[u8], u32) -> String,
    ) -> Result<(), HallError> {
        for (whole, a, b) in segments(from, to) {
            let tag = if whole { month } else { day };
            self.sum_range(tag, region, (a, b), rows, row_of)?;
        }
        Ok(())
    }

    /// The regions one level below `unit` that have tallies.
    fn children(&self, unit: &str, digits: usize) -> Result<Vec<String>, HallError> {
        let mut prefix = vec![b'g', digits as u8];
        prefix.extend_from_slice(unit.as_bytes());
        let mut out: Vec<String> = Vec::new();
        for tag in [b'a', b'g'] {
            prefix[0] = tag;
            for kv in self.store().tallies_with_prefix(&prefix) {
                let (k, _) = kv?;
                if let Some((region, _)) = split_key(&k) {
                    if !out.iter().any(|r| r == region) {
                        out.push(region.to_string());
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Adds the gauges of exactly `region`, by the row `row_of(item)`.
    fn sum_gauges(
        &self,
        region: &str,
        rows: &mut Rows,
        row_of: &dyn Fn(&[u8]) -> String,
    ) -> Result<(), HallError> {
        for kv in self.store().tallies_with_prefix(&unit_key(b'g', region)) {
            let (k, counts) = kv?;
            if let Some((_, item)) = split_key(&k) {
                rows.entry(row_of(item)).or_default().add(&counts, 1);
            }
        }
        Ok(())
    }

    /// The counts of today still ahead of `now` within `unit`: (region,
    /// item, counts).
    fn ahead(&self, unit: &str, now: Ts) -> Result<Vec<(String, String, Vec<i64>)>, HallError> {
        let bound = |t: i64| {
            let mut k = vec![b'p'];
            k.extend_from_slice(&((t as u64) ^ (1 << 63)).to_be_bytes());
            k
        };
        let end = day_start(day_of(now) + 1);
        let mut out = Vec::new();
        for kv in self.store().tallies(&bound(now.0 + 1), Some(&bound(end.0))) {
            let (k, counts) = kv?;
            let Some(rest) = k.get(9..) else { continue };
            let mut parts = rest.splitn(2, |b| *b == 0);
            let region = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let item = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            if region.starts_with(unit) {
                out.push((region, item, counts));
            }
        }
        Ok(out)
    }

    /// The first day `unit` has tallies for.
    fn first_day(&self, unit: &str) -> Result<Option<u32>, HallError> {
        let prefix = unit_key(b'a', unit);
        let Some(kv) = self.store().tallies_with_prefix(&prefix).next() else {
            return Ok(None);
        };
        let (k, _) = kv?;
        Ok(split_key(&k)
            .and_then(|(_, rest)| rest.get(..4))
            .map(|p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
            .map(|month| {
                let (year, m) = ((month / 12) as i32, month % 12 + 1);
                let date = chrono::NaiveDate::from_ymd_opt(year, m, 1).unwrap_or_default();
                day_of(Ts::start_of(date))
            }))
    }

    /// Statistics of `q.unit` for the days `q.from..=q.to` (the last day
    /// capped at today), as of `now`; and the cases overdue now.
    pub fn stats(&self, q: &StatsQuery, now: Ts) -> Result<Stats, HallError> {
        let mut table = self.stats_of_period(q, now)?;
        if q.by == StatsBy::Day {
            // Overdue now is not a day's figure: the whole unit's only.
            let all = StatsQuery {
                by: StatsBy::Total,
                ..q.clone()
            };
            table.total.overdue = self.overdue_now(&all, now)?.total.overdue;
        } else {
            let all = self.overdue_now(q, now)?;
            table.total.overdue = all.total.overdue;
            for line in &mut table.rows {
                line.overdue = all
                    .rows
                    .iter()
                    .find(|l| l.key == line.key)
                    .map_or(0, |l| l.overdue);
            }
        }
        Ok(table)
    }

    /// The open cases past due now, counted on the days they fell due.
    fn overdue_now(&self, q: &StatsQuery, now: Ts) -> Result<Stats, HallError> {
        let Some(first) = self.first_day(q.unit.as_str())? else {
            return self.stats_of_period(q, now);
        };
        let all = StatsQuery {
            from: day_start(first),
            to: now,
            ..q.clone()
        };
        let mut t = self.stats_of_period(&all, now)?;
        t.total.overdue = t.total.counts.get(ix::OVERDUE);
        for line in &mut t.rows {
            line.overdue = line.counts.get(ix::OVERDUE);
        }
        Ok(t)
    }

    fn stats_of_period(&self, q: &StatsQuery, now: Ts) -> Result<Stats, HallError> {
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
            return Err(HallError::BadInput(
                "the period ends before it begins (--from is after --to)".into(),
            ));
        }
        let period = (from, to);
        let counted = from <= to;
        let none = |_: &[u8], _: u32| String::new();
        let mut total = Rows::new();
        let mut total_open = Rows::new();
        if counted {
            self.sum_period((b'a', b'b'), unit, period, &mut total, &none)?;
        }
        self.sum_gauges(unit, &mut total_open, &|_| String::new())?;
        let mut rows = Rows::new();
        let mut open = Rows::new();
        let child = child_level(&q.unit);
        match (q.by, child) {
            (StatsBy::Total, _) | (StatsBy::Unit, None) => {}
            (StatsBy::Unit, Some(d)) => {
                for region in self.children(unit, d)? {
                    let name = |_: &[u8], _: u32| region.clone();
                    if counted {
                        self.sum_period((b'a', b'b'), &region, period, &mut rows, &name)?;
                    }
                    self.sum_gauges(&region, &mut open, &|_| region.clone())?;
                }
            }
            (StatsBy::Item, _) => {
                let item = |tail: &[u8], _: u32| String::from_utf8_lossy(tail).into_owned();
                if counted {
                    self.sum_period((b'i', b'j'), unit, period, &mut rows, &item)?;
                }
                self.sum_gauges(unit, &mut open, &|tail| {
                    String::from_utf8_lossy(tail).into_owned()
                })?;
            }
            (StatsBy::Day, _) => {
                if counted {
                    self.sum_range(b'b', unit, period, &mut rows, &|_, day| date_key(day))?;
                }
            }
        }
        let mut total = total.remove("").unwrap_or_default();
        if counted && to == today {
            for (region, item, counts) in self.ahead(unit, now)? {
                total.add(&counts, -1);
                let key = match (q.by, child) {
                    (StatsBy::Unit, Some(d)) if region.len() >= d => Some(region[..d].to_string()),
                    (StatsBy::Item, _) => Some(item),
                    (StatsBy::Day, _) => Some(date_key(today)),
                    _ => None,
                };
                if let Some(r) = key.and_then(|k| rows.get_mut(&k)) {
                    r.add(&counts, -1);
                }
            }
        }
        let total_open = total_open.remove("").unwrap_or_default().get(ix::OPEN);
        if q.by == StatsBy::Unit {
            // The unit's own cases: what its children do not account for.
            let mut own = total.clone();
            let mut own_open = total_open;
            for (k, r) in &rows {
                own.add(&r.0, -1);
                own_open -= open.get(k).map_or(0, |o| o.get(ix::OPEN));
            }
            if !own.is_empty() || own_open != 0 {
                rows.insert(unit.to_string(), own);
                let mut g = vec![0; ix::OPEN + 1];
                g[ix::OPEN] = own_open;
                open.insert(unit.to_string(), Row(g));
            }
        }
        let keys: Vec<String> = rows.keys().chain(open.keys()).cloned().collect();
        let mut lines: Vec<StatsLine> = Vec::new();
        for key in keys {
            if lines.iter().any(|l| l.key == key) {
                continue;
            }
            lines.push(StatsLine {
                counts: rows.get(&key).cloned().unwrap_or_default(),
                open: open.get(&key).map_or(0, |o| o.get(ix::OPEN)),
                overdue: 0,
                key,
            });
        }
        lines.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Stats {
            unit: q.unit.clone(),
            from: day_start(from),
            to: day_start(to.max(from)),
            total: StatsLine {
                key: unit.to_string(),
                counts: total,
                open: total_open,
                overdue: 0,
            },
            rows: lines,
        })
    }
}

fn child_level(unit: &RegionCode) -> Option<usize> {
    LEVELS.iter().copied().find(|d| *d > unit.as_str().len())
}

fn date_key(day: u32) -> String {
    day_start(day).date().format("%Y-%m-%d").to_string()
}
