//! Time limits and the clock that measures them (DOMAIN §3).
//!
//! A limit is an amount of one of four units. Each unit counts time with a
//! [`Meter`]: natural days and hours count every second; working days count
//! the seconds of working days; working hours count the seconds inside
//! office hours on working days. A limit is a budget of metered seconds
//! (days × 86 400 or hours × 3 600), and the due time is the instant the
//! budget runs out, net of pauses. Finishing later than the due time by one
//! second is late.
//!
//! Day limits start counting at midnight after the day of acceptance (the
//! day itself is not counted, 民法典 art. 201), so "20 working days" ends at
//! 24:00 of the 20th working day after acceptance. A natural-day limit whose
//! last day is not a working day runs to the end of the next working day
//! (art. 203). Hour limits start at the instant of acceptance.

use std::fmt;

use chrono::Days;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::calendar::{Calendar, Window};
use crate::time::{Ts, DAY, HOUR};

/// The unit of a time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitUnit {
    /// 自然日.
    NaturalDays,
    /// 工作日.
    WorkingDays,
    /// 小时.
    NaturalHours,
    /// 工作小时 (office hours on working days).
    WorkingHours,
}

impl LimitUnit {
    /// The name stored in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitUnit::NaturalDays => "natural_days",
            LimitUnit::WorkingDays => "working_days",
            LimitUnit::NaturalHours => "natural_hours",
            LimitUnit::WorkingHours => "working_hours",
        }
    }

    /// Parses a stored unit name.
    pub fn parse(s: &str) -> Option<LimitUnit> {
        [
            LimitUnit::NaturalDays,
            LimitUnit::WorkingDays,
            LimitUnit::NaturalHours,
            LimitUnit::WorkingHours,
        ]
        .into_iter()
        .find(|u| u.as_str() == s)
    }

    /// Metered seconds in one unit.
    pub fn seconds(self) -> i64 {
        match self {
            LimitUnit::NaturalDays | LimitUnit::WorkingDays => DAY,
            LimitUnit::NaturalHours | LimitUnit::WorkingHours => HOUR,
        }
    }

    /// How this unit counts time.
    pub fn meter(self) -> Meter {
        match self {
            LimitUnit::NaturalDays | LimitUnit::NaturalHours => Meter::Natural,
            LimitUnit::WorkingDays => Meter::WorkingDays,
            LimitUnit::WorkingHours => Meter::OfficeHours,
        }
    }

    fn is_days(self) -> bool {
        self.seconds() == DAY
    }

    fn short(self) -> &'static str {
        match self {
            LimitUnit::NaturalDays => "d",
            LimitUnit::WorkingDays => "wd",
            LimitUnit::NaturalHours => "h",
            LimitUnit::WorkingHours => "wh",
        }
    }
}

/// How a unit counts seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meter {
    /// Every second.
    Natural,
    /// Every second of a working day.
    WorkingDays,
    /// Every second of office hours on a working day.
    OfficeHours,
}

/// A time limit such as 20 working days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeLimit {
    /// How many units.
    pub amount: u32,
    /// Which unit.
    pub unit: LimitUnit,
}

/// A time limit that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a time limit: write e.g. 20wd / 20个工作日, 30d / 30日, 24h / 24小时, 4wh / 4工作小时, or 即办")]
pub struct LimitError(pub String);

/// Longest limit accepted (ten years of days); longer is a typing error.
pub const MAX_LIMIT_AMOUNT: u32 = 3650;

impl TimeLimit {
    /// Builds a limit.
    pub fn new(amount: u32, unit: LimitUnit) -> TimeLimit {
        TimeLimit { amount, unit }
    }

    /// Parses the forms found in catalogues: `20个工作日`, `20工作日`, `30日`,
    /// `30天`, `30个自然日`, `24小时`, `4个工作小时`, `即办`, and the short
    /// forms `20wd`, `30d`, `24h`, `4wh`.
    pub fn parse(s: &str) -> Result<TimeLimit, LimitError> {
        let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let err = || LimitError(s.trim().to_string());
        if matches!(t.as_str(), "即办" | "即时办结" | "当场办结" | "0") {
            return Ok(TimeLimit::new(0, LimitUnit::WorkingDays));
        }
        let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
        let amount: u32 = digits.parse().map_err(|_| err())?;
        if amount > MAX_LIMIT_AMOUNT {
            return Err(err());
        }
        let rest = t[digits.len()..].trim_start_matches('个');
        let unit = match rest {
            "工作日" | "wd" | "working_days" => LimitUnit::WorkingDays,
            "日" | "天" | "自然日" | "d" | "natural_days" => LimitUnit::NaturalDays,
            "小时" | "h" | "natural_hours" => LimitUnit::NaturalHours,
            "工作小时" | "wh" | "working_hours" => LimitUnit::WorkingHours,
            _ => return Err(err()),
        };
        Ok(TimeLimit::new(amount, unit))
    }

    /// Checks the amount is one a catalogue can hold.
    pub fn validate(self) -> Result<(), String> {
        if self.amount > MAX_LIMIT_AMOUNT {
            return Err(format!(
                "{} is longer than {MAX_LIMIT_AMOUNT} {}",
                self.amount,
                self.unit.as_str()
            ));
        }
        Ok(())
    }

    /// The budget in metered seconds.
    pub fn budget(self) -> i64 {
        i64::from(self.amount) * self.unit.seconds()
    }

    /// Whether the limit counts whole days (so starts the day after).
    pub fn counts_days(self) -> bool {
        self.unit.is_days()
    }
}

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.short())
    }
}

/// How far the clock looks ahead before it gives up on a due time (a
/// calendar that marks every day a holiday must not hang the node).
const HORIZON_DAYS: u64 = 366 * 20;

fn windows(cal: &Calendar, meter: Meter, date: chrono::NaiveDate) -> &[Window] {
    const WHOLE_DAY: &[Window] = &[Window { start: 0, end: DAY }];
    match meter {
        Meter::Natural => WHOLE_DAY,
        _ if !cal.is_working_day(date) => &[],
        Meter::WorkingDays => WHOLE_DAY,
        Meter::OfficeHours => cal.office_hours(),
    }
}

/// Metered seconds in `[a, b)`.
pub fn measure(cal: &Calendar, meter: Meter, a: Ts, b: Ts) -> i64 {
    if b <= a {
        return 0;
    }
    if meter == Meter::Natural {
        return b.0 - a.0;
    }
    let mut total = 0;
    let mut date = a.date();
    let mut day = Ts::start_of(date);
    let last = Ts(b.0 - 1).date();
    while date <= last {
        for w in windows(cal, meter, date) {
            let s = a.max(day.plus(w.start));
            let e = b.min(day.plus(w.end));
            total += (e.0 - s.0).max(0);
        }
        let Some(next) = date.checked_add_days(Days::new(1)) else {
            break;
        };
        date = next;
        day = day.plus(DAY);
    }
    total
}

/// The first instant `t ≥ from` with `measure(from, t) == amount`, or `None`
/// when that lies beyond the look-ahead horizon.
pub fn advance(cal: &Calendar, meter: Meter, from: Ts, amount: i64) -> Option<Ts> {
    if amount <= 0 {
        return Some(from);
    }
    if meter == Meter::Natural {
        return Some(from.plus(amount));
    }
    let mut remaining = amount;
    let mut date = from.date();
    // Local days are all DAY long (China keeps no summer time).
    let mut day = Ts::start_of(date);
    for _ in 0..HORIZON_DAYS {
        for w in windows(cal, meter, date) {
            let s = from.max(day.plus(w.start));
            let e = day.plus(w.end);
            let span = e.0 - s.0;
            if span <= 0 {
                continue;
            }
            if span >= remaining {
                return Some(s.plus(remaining));
            }
            remaining -= span;
        }
        date = date.checked_add_days(Days::new(1))?;
        day = day.plus(DAY);
    }
    None
}

/// The last instant `t ≤ to` with `measure(t, to) == amount`, or `None`
/// when that lies beyond the look-back horizon.
pub fn retreat(cal: &Calendar, meter: Meter, to: Ts, amount: i64) -> Option<Ts> {
    if amount <= 0 {
        return Some(to);
    }
    if meter == Meter::Natural {
        return Some(Ts(to.0 - amount));
    }
    let mut remaining = amount;
    let mut date = to.date();
    let mut day = Ts::start_of(date);
    for _ in 0..HORIZON_DAYS {
        for w in windows(cal, meter, date).iter().rev() {
            let s = day.plus(w.start);
            let e = to.min(day.plus(w.end));
            let span = e.0 - s.0;
            if span <= 0 {
                continue;
            }
            if span >= remaining {
                return Some(Ts(e.0 - remaining));
            }
            remaining -= span;
        }
        date = date.checked_sub_days(Days::new(1))?;
        day = day.plus(-DAY);
    }
    None
}

/// A stretch of time during which the clock is stopped (a supplement after
/// acceptance, or a special procedure). `end` is `None` while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// When the clock stopped.
    pub start: Ts,
    /// When it started again.
    pub end: Option<Ts>,
}

impl Pause {
    fn end_or(self, now: Ts) -> Ts {
        self.end.unwrap_or(now.max(self.start))
    }
}

/// Pauses as a limit counted in days sees them: the day a pause begins
/// still counts (work was done on it) and the day it ends does not, so each
/// pause runs from the midnight after it began to the midnight after it
/// ended, and due times stay at 24:00. A pause still open is taken to end
/// at `now`. A pause that begins and ends on one day stops nothing.
pub fn whole_days(pauses: &[Pause], now: Ts) -> Vec<Pause> {
    let next_midnight = |t: Ts| {
        t.date()
            .checked_add_days(Days::new(1))
            .map_or(t, Ts::start_of)
    };
    pauses
        .iter()
        .map(|p| Pause {
            start: next_midnight(p.start),
            end: Some(next_midnight(p.end_or(now))),
        })
        .collect()
}

/// The instant the clock of a limit starts for a case accepted at `accepted`.
pub fn clock_start(limit: TimeLimit, accepted: Ts) -> Ts {
    if limit.counts_days() {
        accepted
            .date()
            .checked_add_days(Days::new(1))
            .map_or(accepted, Ts::start_of)
    } else {
        accepted
    }
}

/// Metered seconds of `limit`'s unit used between `start` and `end`, less
/// paused time. Open pauses are taken to last until `end`.
pub fn used(cal: &Calendar, unit: LimitUnit, start: Ts, end: Ts, pauses: &[Pause]) -> i64 {
    let meter = unit.meter();
    let paused: i64 = pauses
        .iter()
        .map(|p| measure(cal, meter, p.start.max(start), p.end_or(end).min(end)))
        .sum();
    measure(cal, meter, start, end) - paused
}

/// Metered seconds paused between `start` and `end`.
pub fn paused(cal: &Calendar, unit: LimitUnit, start: Ts, end: Ts, pauses: &[Pause]) -> i64 {
    measure(cal, unit.meter(), start, end) - used(cal, unit, start, end, pauses)
}

/// When a budget of `budget` metered seconds of `unit`, counted from `start`
/// and stopped during `pauses`, runs out. A pause still open is taken to end
/// at `now`, so while a case is paused this is the earliest the due time
/// can be. `None` if it lies beyond the look-ahead horizon.
pub fn due(
    cal: &Calendar,
    unit: LimitUnit,
    start: Ts,
    budget: i64,
    pauses: &[Pause],
    now: Ts,
) -> Option<Ts> {
    let meter = unit.meter();
    let mut sorted: Vec<Pause> = pauses.to_vec();
    sorted.sort_by_key(|p| p.start);
    let mut pos = start;
    let mut remaining = budget;
    for p in sorted {
        let seg = measure(cal, meter, pos, p.start);
        if seg >= remaining {
            break;
        }
        remaining -= seg;
        pos = pos.max(p.end_or(now));
    }
    let at = advance(cal, meter, pos, remaining)?;
    if unit == LimitUnit::NaturalDays && budget > 0 {
        let last = Ts(at.0 - 1).date();
        if !cal.is_working_day(last) {
            let mut d = last;
            for _ in 0..HORIZON_DAYS {
                d = d.checked_add_days(Days::new(1))?;
                if cal.is_working_day(d) {
                    return d.checked_add_days(Days::new(1)).map(Ts::start_of);
                }
            }
            return None;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse_calendar_csv;

    fn t(s: &str) -> Ts {
        Ts::parse(s).unwrap()
    }

    /// October 2026: National Day holiday 1–8 Oct, make-up days Sat 26 Sep
    /// and Sat 10 Oct.
    fn cal() -> Calendar {
        let mut c = Calendar::default();
        let mut text = String::from("2026-09-26,workday,调休\n2026-10-10,workday,调休\n");
        for d in 1..=8 {
            text.push_str(&format!("2026-10-{d:02},holiday,国庆节\n"));
        }
        c.add_year(2026, parse_calendar_csv(&text).unwrap());
        c
    }

    #[test]
    fn retreat_is_the_last_instant_a_measured_amount_before() {
        let c = cal();
        // Due at 24:00 on Mon 12 Oct: two working days before is 24:00 on
        // Sat 10 Oct (a make-up working day), past Sun 11; before the
        // holiday, 24:00 on Fri 9 Oct is three working days back.
        let due = t("2026-10-13 00:00");
        let two = retreat(&c, Meter::WorkingDays, due, 2 * DAY).unwrap();
        assert_eq!(two, t("2026-10-10 00:00"));
        assert_eq!(measure(&c, Meter::WorkingDays, two, due), 2 * DAY);
        let three = retreat(&c, Meter::WorkingDays, due, 3 * DAY).unwrap();
        assert_eq!(three, t("2026-10-09 00:00"));
        // Across the whole National Day holiday.
        let four = retreat(&c, Meter::WorkingDays, due, 4 * DAY).unwrap();
        assert_eq!(four, t("2026-09-30 00:00"));
        for (from, amount) in [
            (t("2026-09-25 15:30"), 7 * DAY),
            (t("2026-10-09 10:00"), DAY / 2),
        ] {
            let to = advance(&c, Meter::WorkingDays, from, amount).unwrap();
            let back = retreat(&c, Meter::WorkingDays, to, amount).unwrap();
            assert_eq!(measure(&c, Meter::WorkingDays, back, to), amount);
            assert!(back >= from, "{back} before {from}");
        }
        assert_eq!(
            retreat(&c, Meter::Natural, due, DAY),
            Some(t("2026-10-12 00:00"))
        );
        assert_eq!(retreat(&c, Meter::WorkingDays, due, 0), Some(due));
    }

    #[test]
    fn parses_catalogue_limits() {
        let cases = [
            ("20个工作日", TimeLimit::new(20, LimitUnit::WorkingDays)),
            ("20 工作日", TimeLimit::new(20, LimitUnit::WorkingDays)),
            ("30日", TimeLimit::new(30, LimitUnit::NaturalDays)),
            ("30天", TimeLimit::new(30, LimitUnit::NaturalDays)),
            ("24小时", TimeLimit::new(24, LimitUnit::NaturalHours)),
            ("4个工作小时", TimeLimit::new(4, LimitUnit::WorkingHours)),
            ("即办", TimeLimit::new(0, LimitUnit::WorkingDays)),
            ("5wd", TimeLimit::new(5, LimitUnit::WorkingDays)),
        ];
        for (s, want) in cases {
            assert_eq!(TimeLimit::parse(s).unwrap(), want, "{s}");
        }
        for bad in ["", "twenty days", "20周", "-3d", "99999d"] {
            assert!(TimeLimit::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn working_days_skip_holidays_and_count_make_up_days() {
        let c = cal();
        // Accepted Wed 30 Sep; counting starts Thu 1 Oct. Holidays 1–8 Oct,
        // Fri 9 is day 1, Sat 10 (make-up) day 2, Mon 12 day 3.
        let lim = TimeLimit::new(3, LimitUnit::WorkingDays);
        let start = clock_start(lim, t("2026-09-30 15:00"));
        assert_eq!(start, t("2026-10-01"));
        let due_at = due(&c, lim.unit, start, lim.budget(), &[], start).unwrap();
        assert_eq!(due_at, t("2026-10-13 00:00"));
    }

    #[test]
    fn one_second_over_is_over() {
        let c = cal();
        let lim = TimeLimit::new(1, LimitUnit::WorkingDays);
        let start = clock_start(lim, t("2026-11-23 10:00"));
        let due_at = due(&c, lim.unit, start, lim.budget(), &[], start).unwrap();
        assert_eq!(due_at, t("2026-11-25 00:00"));
        assert!(used(&c, lim.unit, start, due_at, &[]) <= lim.budget());
        assert!(used(&c, lim.unit, start, due_at.plus(1), &[]) > lim.budget());
    }

    #[test]
    fn pauses_move_the_due_time() {
        let c = cal();
        let lim = TimeLimit::new(5, LimitUnit::WorkingDays);
        // Accepted Mon 16 Nov, counting from Tue 17. Paused Wed 18 00:00 to
        // Fri 20 00:00: two working days stopped.
        let start = clock_start(lim, t("2026-11-16 09:00"));
        let pauses = [Pause {
            start: t("2026-11-18"),
            end: Some(t("2026-11-20")),
        }];
        let due_at = due(&c, lim.unit, start, lim.budget(), &pauses, start).unwrap();
        // Without pause: 17,18,19,20,23 → end of Mon 23. Plus two days → Wed 25.
        assert_eq!(due_at, t("2026-11-26 00:00"));
        assert_eq!(
            paused(&c, lim.unit, start, t("2026-11-24"), &pauses),
            2 * DAY
        );
        // An open pause counts until now; the due time is a lower bound.
        let open = [Pause {
            start: t("2026-11-18"),
            end: None,
        }];
        let lower = due(&c, lim.unit, start, lim.budget(), &open, t("2026-11-19")).unwrap();
        assert_eq!(lower, t("2026-11-25 00:00"));
        assert_eq!(used(&c, lim.unit, start, t("2026-11-19"), &open), DAY);
    }

    #[test]
    fn pause_after_budget_ran_out_changes_nothing() {
        let c = cal();
        let lim = TimeLimit::new(1, LimitUnit::WorkingDays);
        let start = clock_start(lim, t("2026-11-16 09:00"));
        let late_pause = [Pause {
            start: t("2026-11-20"),
            end: None,
        }];
        let due_at = due(
            &c,
            lim.unit,
            start,
            lim.budget(),
            &late_pause,
            t("2026-11-30"),
        )
        .unwrap();
        assert_eq!(due_at, t("2026-11-18 00:00"));
    }

    #[test]
    fn day_limits_count_pauses_in_whole_days() {
        let p = [Pause {
            start: t("2026-11-17 09:30"),
            end: Some(t("2026-11-20 16:00")),
        }];
        let days = whole_days(&p, t("2026-12-01"));
        assert_eq!(days[0].start, t("2026-11-18"));
        assert_eq!(days[0].end, Some(t("2026-11-21")));
        let same_day = [Pause {
            start: t("2026-11-17 09:30"),
            end: Some(t("2026-11-17 16:00")),
        }];
        let d = whole_days(&same_day, t("2026-12-01"));
        assert_eq!(d[0].start, d[0].end.unwrap());
        let open = [Pause {
            start: t("2026-11-17 09:30"),
            end: None,
        }];
        assert_eq!(
            whole_days(&open, t("2026-11-19 10:00"))[0].end,
            Some(t("2026-11-20"))
        );
    }

    #[test]
    fn natural_days_roll_over_a_holiday_end() {
        let c = cal();
        let lim = TimeLimit::new(3, LimitUnit::NaturalDays);
        // Accepted 28 Sep; counting 29, 30, 1 Oct → ends on a holiday, so it
        // runs to the end of the next working day, Fri 9 Oct.
        let start = clock_start(lim, t("2026-09-28 11:00"));
        let due_at = due(&c, lim.unit, start, lim.budget(), &[], start).unwrap();
        assert_eq!(due_at, t("2026-10-10 00:00"));
    }

    #[test]
    fn hours_natural_and_working() {
        let c = cal();
        let acc = t("2026-11-20 16:00"); // a Friday
        let nat = TimeLimit::new(24, LimitUnit::NaturalHours);
        let start = clock_start(nat, acc);
        assert_eq!(start, acc);
        assert_eq!(
            due(&c, nat.unit, start, nat.budget(), &[], acc),
            Some(t("2026-11-21 16:00"))
        );
        // Four office hours: 16:00–17:30 Friday (1.5 h), then Monday
        // 09:00–11:30.
        let wh = TimeLimit::new(4, LimitUnit::WorkingHours);
        assert_eq!(
            due(&c, wh.unit, acc, wh.budget(), &[], acc),
            Some(t("2026-11-23 11:30"))
        );
        assert_eq!(
            used(&c, wh.unit, acc, t("2026-11-23 10:00"), &[]),
            HOUR * 5 / 2
        );
    }

    #[test]
    fn an_all_holiday_calendar_does_not_hang() {
        let mut c = Calendar::default();
        c.set_office_hours(vec![]);
        let start = t("2026-01-01");
        assert_eq!(
            due(&c, LimitUnit::WorkingHours, start, HOUR, &[], start),
            None
        );
    }
}
