//! Instants and local dates.
//!
//! Every hall keeps China Standard Time (UTC+8, no daylight saving), so the
//! local date of an instant is the same at every level of the federation.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Seconds east of UTC of China Standard Time.
const CST_OFFSET_SECS: i32 = 8 * 3600;

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in an hour.
pub const HOUR: i64 = 3_600;

/// The earliest time a record may carry: 2000-01-01 00:00 China Standard
/// Time. Times outside [`EARLIEST`, [`LATEST`]) are refused on write and on
/// read: a clock measured across centuries would take minutes.
pub const EARLIEST: Ts = Ts(946_656_000);
/// The first time a record may not carry: 2100-01-01 00:00 China Standard
/// Time.
pub const LATEST: Ts = Ts(4_102_416_000);

/// China Standard Time; checked when the crate is compiled.
const CST: FixedOffset = match FixedOffset::east_opt(CST_OFFSET_SECS) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// An instant, in whole seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ts(pub i64);

/// A date or time the user typed that is not one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a valid date or time: use YYYY-MM-DD, 'YYYY-MM-DD HH:MM[:SS]' (China Standard Time) or RFC 3339")]
pub struct TimeError(pub String);

/// A date the user typed that is not one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a date: use YYYY-MM-DD (or YYYY/MM/DD, YYYYMMDD, YYYY年MM月DD日)")]
pub struct DateError(pub String);

impl Ts {
    /// Midnight (00:00 CST) at the start of `date`.
    pub fn start_of(date: NaiveDate) -> Ts {
        Ts::from_local(date.and_time(NaiveTime::MIN))
    }

    /// The instant of a local (CST) date and time.
    pub fn from_local(dt: NaiveDateTime) -> Ts {
        Ts(dt.and_utc().timestamp() - i64::from(CST_OFFSET_SECS))
    }

    /// The local date this instant falls on.
    pub fn date(self) -> NaiveDate {
        self.local().date_naive()
    }

    /// The local date and time.
    pub fn local(self) -> DateTime<FixedOffset> {
        DateTime::from_timestamp(self.0, 0)
            .unwrap_or(DateTime::<chrono::Utc>::MIN_UTC)
            .with_timezone(&CST)
    }

    /// Seconds since local midnight.
    pub fn second_of_day(self) -> i64 {
        (self.0 + i64::from(CST_OFFSET_SECS)).rem_euclid(DAY)
    }

    /// Milliseconds since the epoch, as Automerge timestamps store them.
    pub fn millis(self) -> i64 {
        self.0.saturating_mul(1000)
    }

    /// From Automerge milliseconds (rounded down to the second).
    pub fn from_millis(ms: i64) -> Ts {
        Ts(ms.div_euclid(1000))
    }

    /// This instant plus `secs` seconds.
    pub fn plus(self, secs: i64) -> Ts {
        Ts(self.0.saturating_add(secs))
    }

    /// Parses what a user types: a date (its midnight), a local date and
    /// time, or an RFC 3339 instant with an offset.
    pub fn parse(s: &str) -> Result<Ts, TimeError> {
        let t = s.trim();
        let err = || TimeError(t.to_string());
        if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
            return Ok(Ts(dt.timestamp()));
        }
        for fmt in [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
                return Ok(Ts::from_local(dt));
            }
        }
        parse_date(t).map(Ts::start_of).map_err(|_| err())
    }

    /// The year of the local date.
    pub fn year(self) -> i32 {
        self.date().year()
    }
}

/// Parses a `YYYY-MM-DD` date (also `YYYY/MM/DD` and `YYYYMMDD`, as found in
/// spreadsheets), refusing impossible ones such as `2026-02-30`.
pub fn parse_date(s: &str) -> Result<NaiveDate, DateError> {
    let t = s.trim();
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
        .ok_or_else(|| DateError(t.to_string()))
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.local();
        if l.format("%S").to_string() == "00" {
            write!(f, "{}", l.format("%Y-%m-%d %H:%M"))
        } else {
            write!(f, "{}", l.format("%Y-%m-%d %H:%M:%S"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_and_offset_times() {
        let a = Ts::parse("2026-11-23 09:30").unwrap();
        let b = Ts::parse("2026-11-23T01:30:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2026-11-23 09:30");
        assert_eq!(Ts::parse("2026-11-23").unwrap().second_of_day(), 0);
        assert_eq!(a.date(), NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
    }

    #[test]
    fn refuses_impossible_dates() {
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "yesterday",
            "2026-11-23 25:00",
            "",
        ] {
            assert!(Ts::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(parse_date("2026-02-29").is_err());
        assert!(parse_date("2028-02-29").is_ok());
    }

    #[test]
    fn millis_round_trip() {
        let t = Ts(1_790_000_000);
        assert_eq!(Ts::from_millis(t.millis()), t);
        assert_eq!(Ts::from_millis(-1), Ts(-1));
    }
}
