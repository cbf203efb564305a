//! The holiday calendar: which local dates are working days.
//!
//! A date is a working day when the calendar marks it as a make-up working
//! day (调休上班), or when it is Monday to Friday and the calendar does not
//! mark it as a holiday. Years the calendar has no entries for fall back to
//! the weekend rule, and [`Calendar::covers`] lets callers warn about that.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::time::parse_date;

/// How the calendar overrides the weekday rule for one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DayKind {
    /// A public holiday or bridging day off (法定节假日 / 休).
    Holiday,
    /// A weekend day worked to make up a bridging day (调休上班 / 班).
    Workday,
}

impl DayKind {
    /// The name used in files and documents.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        }
    }

    /// Parses `holiday`/`休`/`假` or `workday`/`班`/`上班`.
    pub fn parse(s: &str) -> Option<DayKind> {
        match s.trim() {
            "holiday" | "休" | "假" | "休息" | "节假日" => Some(DayKind::Holiday),
            "workday" | "班" | "上班" | "调休上班" => Some(DayKind::Workday),
            _ => None,
        }
    }
}

/// One dated entry of a calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDay {
    /// The local date.
    pub date: NaiveDate,
    /// Day off or make-up working day.
    pub kind: DayKind,
    /// What the day is (春节, 国庆节 …).
    pub name: String,
}

/// An office-hours window on a working day, in seconds since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First second of the window.
    pub start: i64,
    /// First second after the window.
    pub end: i64,
}

/// The office hours used when a calendar names none: 09:00–12:00 and
/// 13:30–17:30 (seven hours a working day).
pub const DEFAULT_OFFICE_HOURS: &[Window] = &[
    Window {
        start: 9 * 3600,
        end: 12 * 3600,
    },
    Window {
        start: 13 * 3600 + 1800,
        end: 17 * 3600 + 1800,
    },
];

/// A calendar the clock can consult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    days: BTreeMap<NaiveDate, CalendarDay>,
    years: BTreeSet<i32>,
    office_hours: Vec<Window>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            days: BTreeMap::new(),
            years: BTreeSet::new(),
            office_hours: DEFAULT_OFFICE_HOURS.to_vec(),
        }
    }
}

impl Calendar {
    /// Adds one year of entries; `year` counts as covered even if it lists
    /// no entry.
    pub fn add_year(&mut self, year: i32, days: impl IntoIterator<Item = CalendarDay>) {
        self.years.insert(year);
        for d in days {
            self.days.insert(d.date, d);
        }
    }

    /// Replaces the office hours (used by working-hour limits).
    pub fn set_office_hours(&mut self, windows: Vec<Window>) {
        self.office_hours = windows;
    }

    /// The office-hours windows of a working day.
    pub fn office_hours(&self) -> &[Window] {
        &self.office_hours
    }

    /// Whether a date is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.days.get(&date).map(|d| d.kind) {
            Some(DayKind::Workday) => true,
            Some(DayKind::Holiday) => false,
            None => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// Whether the calendar has entries for a year.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// All dated entries, in date order.
    pub fn days(&self) -> impl Iterator<Item = &CalendarDay> {
        self.days.values()
    }
}

/// A line of a calendar file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses a calendar file: one `date,kind,name` line per entry, where kind is
/// `holiday` (休) or `workday` (班). Blank lines, `#` comments and a header
/// line are skipped. Every bad line is reported; a file with any bad line
/// yields no entries, so a half-read calendar is never stored.
pub fn parse_calendar_csv(text: &str) -> Result<Vec<CalendarDay>, Vec<LineError>> {
    let mut days = Vec::new();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim().trim_start_matches('\u{feff}');
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = l.split([',', '，', '\t']).map(str::trim).collect();
        if days.is_empty() && errors.is_empty() && matches!(fields[0], "date" | "日期") {
            continue;
        }
        let mut fail = |reason: String| errors.push(LineError { line, reason });
        if fields.len() < 2 {
            fail("expected date,kind[,name]".into());
            continue;
        }
        let Ok(date) = parse_date(fields[0]) else {
            fail(format!("{:?} is not a valid date (YYYY-MM-DD)", fields[0]));
            continue;
        };
        let Some(kind) = DayKind::parse(fields[1]) else {
            fail(format!(
                "{:?} is not a day kind: use holiday (休) or workday (班)",
                fields[1]
            ));
            continue;
        };
        if !seen.insert(date) {
            fail(format!("{date} is listed twice"));
            continue;
        }
        let name: String = fields
            .get(2)
            .copied()
            .unwrap_or("")
            .chars()
            .take(40)
            .collect();
        days.push(CalendarDay { date, kind, name });
    }
    if errors.is_empty() {
        Ok(days)
    } else {
        Err(errors)
    }
}

/// Parses office hours such as `09:00-12:00,13:30-17:30`.
pub fn parse_office_hours(s: &str) -> Result<Vec<Window>, String> {
    let hm = |t: &str| -> Option<i64> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 24 * 60)
            .then_some(h * 3600 + m * 60)
    };
    let mut out: Vec<Window> = Vec::new();
    for part in s.split([',', ';']).filter(|p| !p.trim().is_empty()) {
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| format!("{part:?} is not HH:MM-HH:MM"))?;
        let (Some(start), Some(end)) = (hm(a), hm(b)) else {
            return Err(format!("{part:?} is not HH:MM-HH:MM"));
        };
        if end <= start || out.last().is_some_and(|w| w.end > start) {
            return Err(format!(
                "{part:?} must end after it starts and after the previous window"
            ));
        }
        out.push(Window { start, end });
    }
    if out.is_empty() {
        return Err("no office-hours window given".into());
    }
    Ok(out)
}

/// Formats office hours as [`parse_office_hours`] reads them.
#[derive(Debug)]
pub struct OfficeHours<'a>(pub &'a [Window]);

impl fmt::Display for OfficeHours<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(
                f,
                "{:02}:{:02}-{:02}:{:02}",
                w.start / 3600,
                w.start % 3600 / 60,
                w.end / 3600,
                w.end % 3600 / 60
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn holidays_and_make_up_days_override_weekends() {
        let days = parse_calendar_csv(
            "date,kind,name\n2026-10-01,holiday,国庆节\n2026-10-10,班,国庆调休\n# note\n\n",
        )
        .unwrap();
        let mut cal = Calendar::default();
        cal.add_year(2026, days);
        assert!(!cal.is_working_day(d("2026-10-01")), "Thursday holiday");
        assert!(cal.is_working_day(d("2026-10-10")), "Saturday make-up day");
        assert!(!cal.is_working_day(d("2026-10-11")), "plain Sunday");
        assert!(cal.is_working_day(d("2026-10-12")), "plain Monday");
        assert!(cal.covers(2026));
        assert!(!cal.covers(2027));
    }

    #[test]
    fn bad_lines_are_all_reported() {
        let errs = parse_calendar_csv(
            "2026-02-30,holiday,x\n2026-01-01,maybe\n2026-01-02,休\n2026-01-02,班\nx",
        )
        .unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 4, 5]);
    }

    #[test]
    fn office_hours_parse_and_print() {
        let w = parse_office_hours("09:00-12:00,13:30-17:30").unwrap();
        assert_eq!(w, DEFAULT_OFFICE_HOURS);
        assert_eq!(OfficeHours(&w).to_string(), "09:00-12:00,13:30-17:30");
        for bad in [
            "",
            "9-12",
            "12:00-09:00",
            "09:00-12:00,11:00-13:00",
            "25:00-26:00",
        ] {
            assert!(parse_office_hours(bad).is_err(), "{bad} accepted");
        }
    }
}
