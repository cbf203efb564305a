//! The holiday calendar: import and show.

use hallsync_hall::operators::Role;
use hallsync_hall::CalendarImport;
use hallsync_model::calendar::{parse_office_hours, CalendarDay, OfficeHours};
use hallsync_model::{DocId, RegionCode, Ts};
use serde::{Deserialize, Serialize};

use crate::{ApiError, Caller, Op, Service};

/// Largest calendar file, bytes.
pub const MAX_CALENDAR_BYTES: usize = 1 << 20;

/// Imports holidays and make-up working days (`date,kind,name` lines):
/// `POST /api/v1/calendar/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportCalendar {
    /// The calendar file's text.
    pub text: String,
    /// Office hours for working-hour limits, e.g. `09:00-12:00,13:30-17:30`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_hours: Option<String>,
}

impl Op for ImportCalendar {
    type Out = CalendarImport;
    const PATH: &'static str = "/calendar/import";
    const WRITE: bool = true;
    const MAX_BODY: usize = 2 * MAX_CALENDAR_BYTES;
    fn role(&self) -> Option<Role> {
        Some(Role::Admin)
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        if self.text.len() > MAX_CALENDAR_BYTES {
            return Err(ApiError::invalid(format!(
                "a calendar file is at most {} MiB",
                MAX_CALENDAR_BYTES >> 20
            )));
        }
        let hours = self
            .office_hours
            .as_deref()
            .map(parse_office_hours)
            .transpose()
            .map_err(|e| ApiError::invalid(format!("office hours: {e}")))?;
        Ok(svc.hall().import_calendar(&self.text, hours, now)?)
    }
}

/// Shows the calendar in force: `GET /api/v1/calendar`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowCalendar {
    /// Only this year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
}

/// One region's calendar year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarYearOut {
    /// Document id.
    pub id: DocId,
    /// The region that published it.
    pub region: RegionCode,
    /// The year.
    pub year: i32,
    /// Office hours.
    pub office_hours: String,
    /// Holidays and make-up working days.
    pub days: Vec<CalendarDay>,
}

impl Op for ShowCalendar {
    type Out = Vec<CalendarYearOut>;
    const PATH: &'static str = "/calendar";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, _: Ts) -> Result<Self::Out, ApiError> {
        Ok(svc
            .hall()
            .calendar_years()?
            .into_iter()
            .filter(|(_, y)| self.year.is_none_or(|only| y.year == only))
            .map(|(id, y)| CalendarYearOut {
                id,
                office_hours: OfficeHours(&y.office_hours).to_string(),
                region: y.region,
                year: y.year,
                days: y.days,
            })
            .collect())
    }
}
