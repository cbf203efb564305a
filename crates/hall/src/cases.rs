//! Case operations: accepting, recording events, reading and listing.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashSet};

use hallsync_model::case::{Applicant, CaseClock, FeeRef, ItemRef};
use hallsync_model::clock::{self, Meter};
use hallsync_model::schema::{self, Record};
use hallsync_model::time::DAY;
use hallsync_model::{
    Calendar, Case, CaseEvent, CaseHeader, CaseState, CaseView, DocId, DocKind, EventKind,
    ItemStatus, RegionCode, Ts,
};
use hallsync_store::{lock, IndexRecord, Loaded, Pending, Rederived, Term};
use serde::{Deserialize, Serialize};

use crate::{Hall, HallError};

/// How case records are derived from events. Raise it when a build derives
/// them differently: every store re-derives its records at the next open.
/// 1: events at the same time ordered by node, writer and counter (as a
/// number), not by their key as text. 2: the view notes whether a
/// conclusion names a certificate (for the delivery card). 3: cases and
/// orders carry their statistics facts. 4: the facts count a situation
/// still going on only as pending, never on its coming days. 5: anomaly
/// cards. 6: the index is the hall's own terms, with the time a card of the
/// case can first stand.
pub(crate) const DERIVATION: u32 = 6;

/// The fields the hall files a case under in the store's index.
pub mod field {
    /// The region of the hall that accepted it (listed by subtree).
    pub const REGION: u8 = b'r';
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

/// A new application at the window.
#[derive(Debug, Clone)]
pub struct NewCase {
    /// Implementation code of the item applied under.
    pub item_code: String,
    /// Case number; generated from the item code and date when absent.
    pub number: Option<String>,
    /// The applicant.
    pub applicant: Applicant,
    /// How it arrived (window, online, mobile, mail, agent).
    pub channel: String,
    /// The handler at the window.
    pub by: String,
    /// When it was received.
    pub at: Ts,
    /// Accept it at once (the usual case), or only record its receipt.
    pub accept: bool,
}

/// What is kept beside the index to list a case without loading it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Summary {
    header: CaseHeader,
    view: CaseView,
}

/// A case as listed: header, derived state and clock at the time asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRow {
    /// Document id.
    pub id: DocId,
    /// Fixed part.
    pub header: CaseHeader,
    /// Derived from the events.
    pub view: CaseView,
    /// Due times and time used, at the time asked.
    pub clock: CaseClock,
}

/// Which cases to list.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only cases in this state.
    pub state: Option<CaseState>,
    /// Only cases past their committed due time.
    pub overdue: bool,
    /// Only cases (not yet overdue) due within this many working days.
    pub due_within: Option<u32>,
    /// Only cases under this item.
    pub item: Option<String>,
    /// Include concluded, withdrawn and other closed cases.
    pub include_closed: bool,
    /// Only cases accepted by a hall in this region's subtree (at a hub).
    pub unit: Option<RegionCode>,
    /// Only cases received at or after this time.
    pub received_from: Option<Ts>,
    /// Only cases received before this time.
    pub received_before: Option<Ts>,
}

impl Hall {
    /// The calendar in force here: every year published by this hall's
    /// region or its ancestors, the nearer region winning a date both list.
    pub fn calendar(&self) -> Result<std::sync::Arc<Calendar>, HallError> {
        if let Some(c) = self.calendar.read().ok().and_then(|c| c.clone()) {
            return Ok(c);
        }
        let cal = std::sync::Arc::new(self.load_calendar()?);
        if let Ok(mut slot) = self.calendar.write() {
            *slot = Some(cal.clone());
        }
        Ok(cal)
    }

    fn case_of(loaded: &mut Loaded, id: &DocId) -> Result<Option<Case>, HallError> {
        fn held(r: &Record) -> Option<&Case> {
            match r {
                Record::Case(x) => Some(x),
                _ => None,
            }
        }
        Self::record_of(loaded, id, held, schema::read_case, Record::Case)
    }

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
            Term::Exact(field::REGION, header.region.as_str().as_bytes().to_vec()),
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

    /// The stem `IMPLCODE-YYYYMMDD-` of automatic case numbers for an item
    /// on a day, and the first sequence number past every number already
    /// held under it (an implementation code is at most 24 characters, so
    /// `STEM` plus `NNNN` fits the 50-character limit).
    fn next_case_number(&self, code: &str, at: Ts) -> Result<(String, u32), HallError> {
        let stem = format!("{code}-{}-", at.date().format("%Y%m%d"));
        let prefix = format!(
            "{}:{}:{stem}",
            DocKind::Case.as_str(),
            self.node.region.as_str()
        );
        let mut last: u32 = 0;
        for id in self.store.ids_with_prefix(&prefix) {
            let id = id?;
            if let Some(n) = id
                .as_str()
                .strip_prefix(&prefix)
                .and_then(|n| n.parse::<u32>().ok())
            {
                last = last.max(n);
            }
        }
        Ok((stem, last.saturating_add(1)))
    }

    /// Receives (and usually accepts) a new case.
    pub fn accept_case(&self, req: NewCase, now: Ts) -> Result<CaseRow, HallError> {
        let (_, item) = self.item(&req.item_code)?;
        let status = item.view().status;
        if status != ItemStatus::Published {
            return Err(HallError::ItemNotPublished {
                code: req.item_code,
                status,
            });
        }
        // An automatic number is the next past those held; when another
        // window takes it first, the next after that.
        let mut auto = match &req.number {
            Some(_) => None,
            None => Some(self.next_case_number(&item.content.impl_code, req.at)?),
        };
        let number = |auto: &Option<(String, u32)>| match auto {
            Some((stem, n)) => format!("{stem}{n:04}"),
            None => req.number.clone().unwrap_or_default(),
        };
        let c = &item.content;
        let header = CaseHeader {
            number: number(&auto),
            region: self.node.region.clone(),
            hall: self.node.id.clone(),
            item: ItemRef {
                impl_code: c.impl_code.clone(),
                name: c.name.clone(),
                version: item.version,
                category: c.category,
                agency: c.agency.clone(),
                statutory_limit: c.statutory_limit,
                committed_limit: c.committed_limit,
                case_type: c.case_type,
                disclosure: c.disclosure,
                fees: Some(c.fees.iter().map(FeeRef::of).collect()),
            },
            applicant: req.applicant,
            channel: req.channel,
        };
        let mut case = Case {
            header,
            events: Vec::new(),
        };
        let mut kinds = vec![EventKind::Received];
        if req.accept {
            kinds.push(EventKind::Accepted);
        }
        for kind in kinds {
            let event = CaseEvent {
                id: case.next_event_id(&self.node.id, self.actor_tag())?,
                at: req.at,
                by: req.by.trim().to_string(),
                node: self.node.id.clone(),
                kind,
            };
            case.check(&event, now)?;
            case.events.push(event);
        }
        loop {
            let id = self.doc_id(DocKind::Case, &case.header.number)?;
            let h = self.store.doc(&id)?;
            let mut l = lock(&h)?;
            if l.exists() {
                drop(l);
                match &mut auto {
                    Some((_, n)) if *n < 9_999 => {
                        *n += 1;
                        case.header.number = number(&auto);
                        continue;
                    }
                    _ => return Err(HallError::CaseExists(id.to_string())),
                }
            }
            let mut doc = self.new_doc();
            schema::write_new_case(&mut doc, &id, &case)
                .map_err(|e| HallError::BadInput(e.to_string()))?;
            doc.commit();
            l.doc = doc;
            return self.finish_case_write(&id, &mut l, case, now);
        }
    }

    fn finish_case_write(
        &self,
        id: &DocId,
        l: &mut Loaded,
        case: Case,
        now: Ts,
    ) -> Result<CaseRow, HallError> {
        let cal = self.calendar()?;
        let view = case.view();
        let clock = case.clock(&view, &cal, now);
        let (index, facts) = self.case_derived(&case.header, &view, &clock, &cal)?;
        let header = case.header.clone();
        l.record = Some(Record::Case(case));
        self.persist(&mut [Pending {
            id,
            loaded: l,
            index: Some(index),
            facts: Some(facts),
        }])?;
        Ok(CaseRow {
            id: id.clone(),
            header,
            view,
            clock,
        })
    }

    /// The id of a case given as a document id or as this hall's case
    /// number.
    /// At a hub, a number of a hall below names that hall's case when no
    /// case of the hub's own has it (and only one hall's does).
    pub fn case_id(&self, key: &str) -> Result<DocId, HallError> {
        if key.starts_with("case:") {
            let id = DocId::parse(key)?;
            if !self.store.contains(&id)? {
                return Err(HallError::UnknownCase(key.into()));
            }
            return Ok(id);
        }
        let own = self
            .doc_id(DocKind::Case, key)
            .map_err(|_| HallError::UnknownCase(key.into()))?;
        if self.store.contains(&own)? {
            return Ok(own);
        }
        let mut found = Vec::new();
        for id in self.store.ids(DocKind::Case) {
            let id = id?;
            if id.key() == key {
                found.push(id);
            }
        }
        match found.len() {
            0 => Err(HallError::UnknownCase(key.into())),
            1 => Ok(found.remove(0)),
            _ => Err(HallError::BadInput(format!(
                "case number {key} is used by more than one hall: give the id, one of {}",
                found
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Records an event on a case, after checking it fits.
    pub fn record_event(
        &self,
        key: &str,
        kind: EventKind,
        by: &str,
        at: Ts,
        now: Ts,
    ) -> Result<CaseRow, HallError> {
        let id = self.case_id(key)?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let mut case =
            Self::case_of(&mut l, &id)?.ok_or_else(|| HallError::UnknownCase(key.into()))?;
        let event = CaseEvent {
            id: case.next_event_id(&self.node.id, self.actor_tag())?,
            at,
            by: by.trim().to_string(),
            node: self.node.id.clone(),
            kind,
        };
        case.check(&event, now)?;
        if let Err(e) = schema::write_event(&mut l.doc, &event) {
            l.doc.rollback();
            return Err(HallError::BadInput(e.to_string()));
        }
        l.doc.commit();
        case.events.push(event);
        self.finish_case_write(&id, &mut l, case, now)
    }

    /// One case with its derived state at `now`.
    pub fn case(&self, key: &str, now: Ts) -> Result<(Case, CaseRow), HallError> {
        let id = self.case_id(key)?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let case = Self::case_of(&mut l, &id)?.ok_or_else(|| HallError::UnknownCase(key.into()))?;
        drop(l);
        let cal = self.calendar()?;
        let view = case.view();
        let clock = case.clock(&view, &cal, now);
        let row = CaseRow {
            id,
            header: case.header.clone(),
            view,
            clock,
        };
        Ok((case, row))
    }

    fn row_from_record(
        &self,
        id: DocId,
        rec: &IndexRecord,
        cal: &Calendar,
        now: Ts,
    ) -> Result<CaseRow, HallError> {
        let s = summary_of(&id, rec)?;
        Ok(row_from_summary(id, s, cal, now))
    }

    /// Cases matching `filter` at `now`, soonest due first (see
    /// [`list_order`]): every row built, then sorted.
    pub fn list_cases(&self, filter: &CaseFilter, now: Ts) -> Result<Vec<CaseRow>, HallError> {
        let mut rows = Vec::new();
        self.each_listed_case(filter, now, None, |row| rows.push(row))?;
        rows.sort_by(list_order);
        Ok(rows)
    }

    /// Calls `keep` with the row of every case `filter` lists, in no
    /// particular order; with `standing`, only of those a card can stand
    /// on by then (see [`field::STANDING`]).
    pub(crate) fn each_listed_case(
        &self,
        filter: &CaseFilter,
        now: Ts,
        standing: Option<Ts>,
        mut keep: impl FnMut(CaseRow),
    ) -> Result<(), HallError> {
        let cal = self.calendar()?;
        let horizon = horizon(filter, &cal, now);
        // Candidates from the index: indexed due times are the earliest a
        // case can fall due, so a range scan up to the bound never misses.
        let mut candidates: Option<BTreeSet<DocId>> = None;
        let mut narrow = |ids: Vec<DocId>| {
            let set: BTreeSet<DocId> = ids.into_iter().collect();
            candidates = Some(match candidates.take() {
                None => set,
                Some(c) => c.intersection(&set).cloned().collect(),
            });
        };
        if filter.overdue || horizon.is_some() {
            let bound = horizon.unwrap_or(now).0.saturating_add(1);
            narrow(
                self.store
                    .indexed_between(field::DUE, i64::MIN, bound)?
                    .into_iter()
                    .map(|(_, id)| id)
                    .collect(),
            );
        }
        if let Some(at) = standing {
            narrow(
                self.store
                    .indexed_between(field::STANDING, i64::MIN, at.0.saturating_add(1))?
                    .into_iter()
                    .map(|(_, id)| id)
                    .collect(),
            );
        }
        if let Some(s) = filter.state {
            narrow(self.store.indexed(field::STATE, &[s.code()])?);
        }
        if let Some(code) = &filter.item {
            narrow(self.store.indexed(field::ITEM, code.as_bytes())?);
        }
        let mut consider = |id: DocId, rec: IndexRecord| -> Result<(), HallError> {
            let row = row_from_summary(id.clone(), summary_of(&id, &rec)?, &cal, now);
            if keeps(filter, horizon, &row) {
                keep(row);
            }
            Ok(())
        };
        match candidates {
            Some(mut ids) => {
                // A case's id names its hall's region.
                if let Some(unit) = &filter.unit {
                    ids.retain(|id| unit.contains(id.region()));
                }
                for entry in self.store.index_records_of(ids) {
                    let (id, rec) = entry?;
                    consider(id, rec)?;
                }
            }
            None => {
                for entry in self.store.index_records("case:") {
                    let (id, rec) = entry?;
                    consider(id, rec)?;
                }
            }
        }
        Ok(())
    }

    /// The rows `offset..offset + limit` of [`Hall::list_cases`] and how
    /// many rows it holds, without building the rest when the list is of
    /// open cases only (no `overdue`, `due_within` or `item`; a `state`,
    /// if any, open): then the total comes from index counts and the rows
    /// from a walk of the due-time index in due order that stops once the
    /// page is complete. Indexed due times are lower bounds of the real
    /// ones (see ARCHITECTURE.md, "Index"), so a row is placed once the
    /// walk has passed its real due time; rows due later wait in a heap.
    /// Any other list is walked whole, keeping only the first
    /// `offset + limit` rows in list order, so memory stays bounded by the
    /// page's end, not the number of cases.
    pub fn list_cases_page(
        &self,
        filter: &CaseFilter,
        now: Ts,
        offset: usize,
        limit: usize,
    ) -> Result<CasePage, HallError> {
        let want = offset.saturating_add(limit);
        let walkable = !filter.include_closed
            && !filter.overdue
            && filter.due_within.is_none()
            && filter.item.is_none()
            && filter.unit.is_none()
            && filter.received_from.is_none()
            && filter.received_before.is_none()
            && filter.state.is_none_or(CaseState::is_open);
        if walkable {
            if let Some((total, rows)) = self.open_cases_in_due_order(filter, now, want)? {
                return Ok(CasePage {
                    total,
                    rows: rows.into_iter().skip(offset).collect(),
                });
            }
        }
        let mut total = 0;
        // A max-heap in list order: its top is the row that leaves first.
        let mut first: BinaryHeap<Listed> = BinaryHeap::new();
        self.each_listed_case(filter, now, None, |row| {
            total += 1;
            let fits = first.len() < want
                || first
                    .peek()
                    .is_some_and(|last| list_order(&row, &last.0).is_lt());
            if fits {
                first.push(Listed(row));
                if first.len() > want {
                    first.pop();
                }
            }
        })?;
        Ok(CasePage {
            total,
            rows: first
                .into_sorted_vec()
                .into_iter()
                .skip(offset)
                .map(|Listed(row)| row)
                .collect(),
        })
    }

    /// The first `want` open cases (in `filter`'s open state, if any) in
    /// list order, and how many there are; `None` when some open case has
    /// no due time in the index (the walk would miss it).
    fn open_cases_in_due_order(
        &self,
        filter: &CaseFilter,
        now: Ts,
        want: usize,
    ) -> Result<Option<(usize, Vec<CaseRow>)>, HallError> {
        let mut open = 0;
        for state in (1..=15).filter_map(CaseState::from_code) {
            if state.is_open() {
                open += self.count_cases_in(state)?;
            }
        }
        // Only open cases have an indexed due time, each at most one.
        if self.store.count_ordered(field::DUE)? != open {
            return Ok(None);
        }
        let members: Option<HashSet<DocId>> = match filter.state {
            Some(s) => Some(
                self.store
                    .indexed(field::STATE, &[s.code()])?
                    .into_iter()
                    .collect(),
            ),
            None => None,
        };
        let total = members.as_ref().map_or(open, HashSet::len);
        let cal = self.calendar()?;
        let mut waiting: BinaryHeap<Reverse<Listed>> = BinaryHeap::new();
        let mut rows = Vec::new();
        let mut seen = HashSet::new();
        for entry in self.store.indexed_from(field::DUE, i64::MIN) {
            let (indexed, id) = entry?;
            // Every case not yet walked falls due at `indexed` or later, so
            // a row due before that comes before all of them.
            while rows.len() < want
                && waiting.peek().is_some_and(|Reverse(Listed(r))| {
                    r.clock.committed_due.is_some_and(|d| d.0 < indexed)
                })
            {
                if let Some(Reverse(Listed(row))) = waiting.pop() {
                    rows.push(row);
                }
            }
            if rows.len() >= want {
                break;
            }
            if members.as_ref().is_some_and(|m| !m.contains(&id)) || !seen.insert(id.clone()) {
                continue;
            }
            if let Some(rec) = self.store.index_record(&id)? {
                let row = self.row_from_record(id, &rec, &cal, now)?;
                if keeps(filter, None, &row) {
                    waiting.push(Reverse(Listed(row)));
                }
            }
        }
        while rows.len() < want {
            match waiting.pop() {
                Some(Reverse(Listed(row))) => rows.push(row),
                None => break,
            }
        }
        Ok(Some((total, rows)))
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

/// One page of a case list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasePage {
    /// Cases on the whole list.
    pub total: usize,
    /// This page's rows, in list order.
    pub rows: Vec<CaseRow>,
}

/// The order of a case list: soonest committed due time first, cases with
/// none (not accepted yet) last; then by case number, then by id.
/// A case record's summary (header and view), as stored.
fn summary_of(id: &DocId, rec: &IndexRecord) -> Result<Summary, HallError> {
    postcard::from_bytes(&rec.summary).map_err(|e| {
        HallError::Store(hallsync_store::StoreError::Corrupt {
            key: id.to_string(),
            reason: format!("case summary: {e}"),
        })
    })
}

/// A case's row at `now`: its summary and its clock.
fn row_from_summary(id: DocId, s: Summary, cal: &Calendar, now: Ts) -> CaseRow {
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

fn list_order(a: &CaseRow, b: &CaseRow) -> Ordering {
    fn key(r: &CaseRow) -> (bool, Option<Ts>, &str, &str) {
        (
            r.clock.committed_due.is_none(),
            r.clock.committed_due,
            r.header.number.as_str(),
            r.id.as_str(),
        )
    }
    key(a).cmp(&key(b))
}

/// A row ordered by [`list_order`], for the heap.
struct Listed(CaseRow);

impl PartialEq for Listed {
    fn eq(&self, other: &Listed) -> bool {
        list_order(&self.0, &other.0) == Ordering::Equal
    }
}

impl Eq for Listed {}

impl PartialOrd for Listed {
    fn partial_cmp(&self, other: &Listed) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Listed {
    fn cmp(&self, other: &Listed) -> Ordering {
        list_order(&self.0, &other.0)
    }
}

/// The end of a "due within" window, if the filter has one.
fn horizon(filter: &CaseFilter, cal: &Calendar, now: Ts) -> Option<Ts> {
    filter.due_within.map(|n| {
        clock::advance(cal, Meter::WorkingDays, now, i64::from(n) * DAY).unwrap_or(Ts(i64::MAX))
    })
}

/// Whether `row`, a candidate the index gave, is on the list `filter`
/// asks for (`horizon`: the end of its "due within" window).
fn keeps(filter: &CaseFilter, horizon: Option<Ts>, row: &CaseRow) -> bool {
    let open = row.view.state.is_open();
    (filter.include_closed || open || filter.state.is_some())
        && (!filter.overdue || (open && row.clock.over_committed))
        && horizon.is_none_or(|h| {
            open && !row.clock.over_committed && row.clock.committed_due.is_some_and(|d| d <= h)
        })
        && filter
            .unit
            .as_ref()
            .is_none_or(|u| u.contains(&row.header.region))
        && filter
            .received_from
            .is_none_or(|t| row.view.received_at.is_some_and(|r| r >= t))
        && filter
            .received_before
            .is_none_or(|t| row.view.received_at.is_some_and(|r| r < t))
}
