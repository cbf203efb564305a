//! Lists of cases: the candidates the index gives for a filter, each row
//! built from its summary and clock at the time asked; pages of open cases
//! walked in due order.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashSet};

use hallsync_model::clock::{self, Meter};
use hallsync_model::time::DAY;
use hallsync_model::{Calendar, CaseState, DocId, DocKind, RegionCode, Ts};
use hallsync_store::IndexRecord;

use crate::filing::{field, row_from_summary, summary_of};
use crate::{CaseRow, Hall, HallError};

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

/// One page of a case list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasePage {
    /// Cases on the whole list.
    pub total: usize,
    /// This page's rows, in list order.
    pub rows: Vec<CaseRow>,
}

impl Hall {
    /// Cases matching `filter` at `now`, soonest due first (see
    /// [`list_order`]): every row built, then sorted.
    pub fn list_cases(&self, filter: &CaseFilter, now: Ts) -> Result<Vec<CaseRow>, HallError> {
        let mut rows = Vec::new();
        self.each_listed_case(filter, now, false, |row| rows.push(row))?;
        rows.sort_by(list_order);
        Ok(rows)
    }

    /// Calls `keep` with the row of every case `filter` lists, in no
    /// particular order; with `standing`, only of those a card can stand
    /// on at `now` (see [`field::STANDING`]).
    pub(crate) fn each_listed_case(
        &self,
        filter: &CaseFilter,
        now: Ts,
        standing: bool,
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
        if standing {
            narrow(
                self.store
                    .indexed_between(field::STANDING, i64::MIN, now.0.saturating_add(1))?
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
                let cases = format!("{}:", DocKind::Case.as_str());
                for entry in self.store.index_records(&cases) {
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
        self.each_listed_case(filter, now, false, |row| {
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
}

/// The order of a case list: soonest committed due time first, cases with
/// none (not accepted yet) last; then by case number, then by id.
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
