//! What a case is filed under in the store's index (its terms and the
//! summary it is listed by), derived with its statistics facts in the same
//! write, and filed afresh when an older build, the calendar or the rules
//! change how.

use hallsync_model::case::CaseClock;
use hallsync_model::clock::{self, Meter};
use hallsync_model::schema::Record;
use hallsync_model::time::DAY;
use hallsync_model::{Calendar, Case, CaseHeader, CaseState, CaseView, DocId, DocKind, Ts};
use hallsync_store::{lock, IndexRecord, Rederived, Term};
use serde::{Deserialize, Serialize};

use crate::{CaseRow, Hall, HallError};

/// How case records are derived from events. Raise it when a build derives
/// them differently: every store re-derives its records at the next open.
/// 1: events at the same time ordered by node, writer and counter (as a
/// number), not by their key as text. 2: the view notes whether a
/// conclusion names a certificate (for the delivery card). 3: cases and
/// orders carry their statistics facts. 4: the facts count a situation
/// still going on only as pending, never on its coming days. 5: anomaly
/// cards. 6: the index is the hall's own terms, with the time a card of the
/// case can first stand and without its region. 7: the view notes
/// forwarding and filing (the anomalies of a case not forwarded or filed).
pub(crate) const DERIVATION: u32 = 7;

/// The fields the hall files a case under in the store's index (its
/// region is in its id).
pub mod field {
    /// The item's implementation code.
    pub const ITEM: u8 = b'i';
    /// The standard state code.
    pub const STATE: u8 = b's';
    /// The earliest its committed due time can be (open cases only).
    pub const DUE: u8 = b'u';
    /// The earliest instant a card of it can stand (cases whose situation
    /// goes on: see `cards::case_crossings`).
    pub const STANDING: u8 = b'w';
}

/// What is kept beside the index to list a case without loading it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Summary {
    header: CaseHeader,
    view: CaseView,
}

impl Hall {
    /// A case's derived data: what it is filed under in the index, and its
    /// statistics facts. `clock` is read at the time of the write; the
    /// indexed due time is the earliest its committed due time can be, and
    /// the standing time the earliest a card of it can stand (the first
    /// instant its facts count as pending), so range scans never miss it.
    pub(crate) fn case_derived(
        &self,
        header: &CaseHeader,
        view: &CaseView,
        clock: &CaseClock,
        cal: &Calendar,
    ) -> Result<(IndexRecord, Vec<u8>), HallError> {
        let due = if !view.state.is_open() {
            None
        } else if clock.committed_due.is_some() {
            clock.committed_due
        } else {
            // Not accepted yet: the clock can start no earlier than the end
            // of the five working days after receipt, so that is the
            // earliest the case can fall due.
            view.received_at.and_then(|r| {
                clock::advance(
                    cal,
                    Meter::WorkingDays,
                    clock::clock_start(header.item.committed_limit, r),
                    5 * DAY,
                )
            })
        };
        let facts = self.case_facts(header, view, cal)?;
        let standing = facts.standing_from();
        let summary = postcard::to_allocvec(&Summary {
            header: header.clone(),
            view: view.clone(),
        })
        .map_err(|e| HallError::BadInput(format!("could not summarise the case: {e}")))?;
        let mut terms = vec![
            Term::Exact(field::ITEM, header.item.impl_code.as_bytes().to_vec()),
            Term::Exact(field::STATE, vec![view.state.code()]),
        ];
        terms.extend(due.map(|t| Term::Ordered(field::DUE, t.0)));
        terms.extend(standing.map(|t| Term::Ordered(field::STANDING, t.0)));
        Ok((
            IndexRecord { terms, summary },
            crate::stats::encode(&facts)?,
        ))
    }

    /// How many cases are in `state`, counted from the index alone.
    pub fn count_cases_in(&self, state: CaseState) -> Result<usize, HallError> {
        Ok(self.store.count_indexed(field::STATE, &[state.code()])?)
    }

    /// The derived data of any record that has some: a case's index record
    /// and facts (its clock read at `now`), an order's facts.
    pub(crate) fn derived_of(
        &self,
        record: &Record,
        cal: &Calendar,
        now: Ts,
    ) -> Result<(Option<IndexRecord>, Option<Vec<u8>>), HallError> {
        match record {
            Record::Case(c) => {
                let view = c.view();
                let clock = c.clock(&view, cal, now);
                let (index, facts) = self.case_derived(&c.header, &view, &clock, cal)?;
                Ok((Some(index), Some(facts)))
            }
            Record::Order(o) => Ok((None, Some(Self::order_facts(o)?))),
            _ => Ok((None, None)),
        }
    }

    pub(crate) fn row_from_record(
        &self,
        id: DocId,
        rec: &IndexRecord,
        cal: &Calendar,
        now: Ts,
    ) -> Result<CaseRow, HallError> {
        let s = summary_of(&id, rec)?;
        Ok(row_from_summary(id, s, cal, now))
    }

    /// Re-derives every case's index record and the statistics facts of
    /// every case and order from their events, for a store whose derived
    /// data an older build made, and records [`DERIVATION`] with the last
    /// batch. Only what changes is rewritten. Each case record is made as
    /// at its case's last event (the time such a record was first made), so
    /// indexed due times stay lower bounds. Cut short, it is done again at
    /// the next open.
    pub(crate) fn rederive_cases(&self) -> Result<(), HallError> {
        let started = std::time::Instant::now();
        let cal = self.calendar()?;
        let mut batch = Rederiving::default();
        let ids = self
            .store
            .ids(DocKind::Case)
            .collect::<Result<Vec<_>, _>>()?;
        for id in ids {
            let h = self.store.doc(&id)?;
            let mut l = lock(&h)?;
            let Some(case) = Self::case_of(&mut l, &id)? else {
                continue;
            };
            drop(l);
            let view = case.view();
            let at = view.last_event_at.unwrap_or(Ts(0));
            let clock = case.clock(&view, &cal, at);
            let (index, facts) = self.case_derived(&case.header, &view, &clock, &cal)?;
            let index = (self.store.index_record(&id)?.as_ref() != Some(&index)).then_some(index);
            batch.push(self, id, index, facts)?;
        }
        let ids = self
            .store
            .ids(DocKind::Order)
            .collect::<Result<Vec<_>, _>>()?;
        for id in ids {
            let h = self.store.doc(&id)?;
            let mut l = lock(&h)?;
            let Some(order) = Self::order_of(&mut l, &id)? else {
                continue;
            };
            drop(l);
            batch.push(self, id, None, Self::order_facts(&order)?)?;
        }
        let (seen, changed) = (batch.seen, batch.changed + batch.updates.len());
        self.store.rederive(batch.updates, Some(DERIVATION))?;
        if seen > 0 {
            tracing::warn!(
                records = seen,
                changed,
                ms = started.elapsed().as_millis() as u64,
                "re-derived every case's state in the current event order and filed it in the index afresh, and the statistics of every case and order"
            );
        }
        Ok(())
    }

    /// Recomputes every case's index record (after the calendar or the
    /// rules changed, due times and the times cards can first stand may
    /// have moved) and statistics facts (time used is counted in working
    /// days); returns how many cases are open.
    pub(crate) fn reindex_cases(&self, now: Ts) -> Result<usize, HallError> {
        let cal = self.calendar()?;
        let mut batch = Rederiving::default();
        let mut open = 0;
        let ids = self
            .store
            .ids(DocKind::Case)
            .collect::<Result<Vec<_>, _>>()?;
        for id in ids {
            let Some(rec) = self.store.index_record(&id)? else {
                continue;
            };
            let row = self.row_from_record(id.clone(), &rec, &cal, now)?;
            open += usize::from(row.view.state.is_open());
            let (index, facts) = self.case_derived(&row.header, &row.view, &row.clock, &cal)?;
            let index = (index != rec).then_some(index);
            batch.push(self, id, index, facts)?;
        }
        self.store.rederive(batch.updates, None)?;
        Ok(open)
    }
}

/// Derived data being rewritten, in batches.
#[derive(Default)]
struct Rederiving {
    updates: Vec<Rederived>,
    seen: usize,
    changed: usize,
}

impl Rederiving {
    const BATCH: usize = 1_000;

    /// Queues a record's new derived data, if it changed; writes a full
    /// batch.
    fn push(
        &mut self,
        hall: &Hall,
        id: DocId,
        index: Option<IndexRecord>,
        facts: Vec<u8>,
    ) -> Result<(), HallError> {
        self.seen += 1;
        let facts = (hall.store.facts(&id)?.as_deref() != Some(&facts[..])).then_some(facts);
        if index.is_some() || facts.is_some() {
            self.updates.push(Rederived { id, index, facts });
        }
        if self.updates.len() >= Self::BATCH {
            self.changed += self.updates.len();
            hall.store
                .rederive(std::mem::take(&mut self.updates), None)?;
            tracing::info!(
                seen = self.seen,
                changed = self.changed,
                "re-deriving case records and statistics"
            );
        }
        Ok(())
    }
}

/// A case record's summary (header and view), as stored.
pub(crate) fn summary_of(id: &DocId, rec: &IndexRecord) -> Result<Summary, HallError> {
    postcard::from_bytes(&rec.summary).map_err(|e| {
        HallError::Store(hallsync_store::StoreError::Corrupt {
            key: id.to_string(),
            reason: format!("case summary: {e}"),
        })
    })
}

/// A case's row at `now`: its summary and its clock.
pub(crate) fn row_from_summary(id: DocId, s: Summary, cal: &Calendar, now: Ts) -> CaseRow {
    let case = Case {
        header: s.header,
        events: Vec::new(),
    };
    let clock = case.clock(&s.view, cal, now);
    CaseRow {
        id,
        header: case.header,
        view: s.view,
        clock,
    }
}
