//! The holiday calendar: importing a year and assembling the calendar the
//! clock uses.

use std::collections::BTreeMap;

use hallsync_model::calendar::{parse_calendar_csv, Calendar, Window, DEFAULT_OFFICE_HOURS};
use hallsync_model::schema::{self, CalendarYear, Record};
use hallsync_model::{DocId, DocKind, Ts};
use hallsync_store::lock;
use serde::{Deserialize, Serialize};

use crate::{Hall, HallError};

/// What a calendar import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarImport {
    /// Years written, each with its number of dated entries.
    pub years: Vec<(i32, usize)>,
    /// Open cases whose due times were recomputed.
    pub cases_reindexed: usize,
}

impl Hall {
    /// Calendar years visible here (this region's and its ancestors'),
    /// farthest region first.
    pub fn calendar_years(&self) -> Result<Vec<(DocId, CalendarYear)>, HallError> {
        let mut out = Vec::new();
        for id in self.store.ids(DocKind::Cal) {
            let id = id?;
            if !id.region().contains(&self.node.region) {
                continue;
            }
            let h = self.store.doc(&id)?;
            let l = lock(&h)?;
            let year = schema::read_calendar(&l.doc, &id).map_err(|e| HallError::schema(&id, e))?;
            out.push((id, year));
        }
        out.sort_by_key(|(id, y)| (id.region().as_str().len(), y.year));
        Ok(out)
    }

    pub(crate) fn load_calendar(&self) -> Result<Calendar, HallError> {
        let mut cal = Calendar::default();
        for (_, year) in self.calendar_years()? {
            cal.set_office_hours(year.office_hours.clone());
            cal.add_year(year.year, year.days);
        }
        Ok(cal)
    }

    /// Imports a calendar file (`date,kind,name` lines) for this region,
    /// replacing the years it lists. A file with any bad line changes
    /// nothing. Open cases are re-indexed, as their due times may move.
    pub fn import_calendar(
        &self,
        text: &str,
        office_hours: Option<Vec<Window>>,
        now: Ts,
    ) -> Result<CalendarImport, HallError> {
        let days = parse_calendar_csv(text).map_err(|errors| {
            HallError::BadInput(format!(
                "the calendar was not imported; fix these lines:\n{}",
                errors
                    .iter()
                    .map(|e| format!("  {e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ))
        })?;
        if days.is_empty() {
            return Err(HallError::BadInput(
                "the calendar file lists no dates".into(),
            ));
        }
        let mut by_year: BTreeMap<i32, Vec<_>> = BTreeMap::new();
        for d in days {
            by_year.entry(chrono_year(d.date)).or_default().push(d);
        }
        let mut staged = Vec::new();
        for (year, days) in &by_year {
            let id = self.doc_id(DocKind::Cal, &year.to_string())?;
            staged.push((id.clone(), self.store.doc(&id)?, *year, days.clone()));
        }
        let mut guards = Vec::new();
        for (id, h, year, days) in &staged {
            let mut l = lock(h)?;
            let hours = match (&office_hours, &l.record) {
                (Some(w), _) => w.clone(),
                (None, Some(Record::Calendar(old))) => old.office_hours.clone(),
                (None, _) if l.exists() => schema::read_calendar(&l.doc, id)
                    .map(|c| c.office_hours)
                    .unwrap_or_else(|_| DEFAULT_OFFICE_HOURS.to_vec()),
                (None, _) => DEFAULT_OFFICE_HOURS.to_vec(),
            };
            let cy = CalendarYear {
                region: self.node.region.clone(),
                year: *year,
                office_hours: hours,
                days: days.clone(),
            };
            if !l.exists() {
                l.doc = self.new_doc();
            }
            if let Err(e) = schema::write_calendar(&mut l.doc, id, &cy) {
                l.doc.rollback();
                drop(l);
                for (id, _, _, _) in &staged {
                    self.store.evict(id);
                }
                return Err(HallError::BadInput(e.to_string()));
            }
            l.doc.commit();
            l.record = Some(Record::Calendar(cy));
            guards.push((id, l));
        }
        self.persist_all(&mut guards)?;
        drop(guards);
        let cases_reindexed = self.standards_changed(now)?;
        Ok(CalendarImport {
            years: by_year.iter().map(|(y, d)| (*y, d.len())).collect(),
            cases_reindexed,
        })
    }
}

impl Hall {
    /// After a calendar or rules document changed: forget the cached
    /// calendar and rules, recompute the due times of open cases and the
    /// statistics of every case. Returns how many open cases there are.
    pub(crate) fn standards_changed(&self, now: Ts) -> Result<usize, HallError> {
        if let Ok(mut slot) = self.calendar.write() {
            *slot = None;
        }
        if let Ok(mut slot) = self.rules.write() {
            *slot = None;
        }
        self.reindex_cases(now)
    }
}

fn chrono_year(d: chrono::NaiveDate) -> i32 {
    chrono::Datelike::year(&d)
}
