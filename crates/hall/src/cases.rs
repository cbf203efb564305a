//! Case operations: accepting, recording events, reading one case.

use hallsync_model::case::{Applicant, CaseClock, FeeRef, ItemRef};
use hallsync_model::schema::{self, Record};
use hallsync_model::{
    Calendar, Case, CaseEvent, CaseHeader, CaseView, DocId, DocKind, EventKind, ItemStatus, Ts,
};
use hallsync_store::{lock, Loaded, Pending};
use serde::{Deserialize, Serialize};

use crate::{Hall, HallError};

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

    pub(crate) fn case_of(loaded: &mut Loaded, id: &DocId) -> Result<Option<Case>, HallError> {
        fn held(r: &Record) -> Option<&Case> {
            match r {
                Record::Case(x) => Some(x),
                _ => None,
            }
        }
        Self::record_of(loaded, id, held, schema::read_case, Record::Case)
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
}
