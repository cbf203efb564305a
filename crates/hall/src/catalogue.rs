//! Catalogue operations: adding, importing, reviewing and reading items.

use hallsync_model::catalogue::{Item, ItemContent, ItemView, ReviewAction, ReviewRecord};
use hallsync_model::schema::{self, Record};
use hallsync_model::{DocId, DocKind, LogId, Ts};
use hallsync_store::{lock, Loaded, Pending};
use serde::{Deserialize, Serialize};

use crate::{Hall, HallError};

/// What writing an item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemChange {
    /// A new item, version 1, drafted.
    Created,
    /// Its content changed: a new version, back to draft.
    Revised,
    /// Same content as stored.
    Unchanged,
}

/// A spreadsheet row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowProblem {
    /// Line (CSV) or row (xlsx) number, 1-based.
    pub line: usize,
    /// The field at fault and why.
    pub reason: String,
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportReport {
    /// Items created.
    pub created: usize,
    /// Items revised.
    pub revised: usize,
    /// Items unchanged.
    pub unchanged: usize,
    /// Items approved and published by this import.
    pub published: usize,
    /// Rows refused.
    pub problems: Vec<RowProblem>,
}

/// Rows written per durable commit during an import.
const IMPORT_BATCH: usize = 64;

impl Hall {
    fn item_id(&self, code: &str) -> Result<DocId, HallError> {
        self.doc_id(DocKind::Item, code)
    }

    /// The typed item held by a loaded document.
    fn item_of(loaded: &mut Loaded, id: &DocId) -> Result<Option<Item>, HallError> {
        fn held(r: &Record) -> Option<&Item> {
            match r {
                Record::Item(x) => Some(x),
                _ => None,
            }
        }
        Self::record_of(loaded, id, held, schema::read_item, Record::Item)
    }

    fn review_record(
        &self,
        item: &Item,
        action: ReviewAction,
        by: &str,
        reason: &str,
        at: Ts,
    ) -> Result<ReviewRecord, HallError> {
        Ok(ReviewRecord {
            id: LogId::next(
                item.history.iter().map(|r| &r.id),
                &self.node.id,
                self.actor_tag(),
            )?,
            action,
            version: item.version,
            by: by.trim().to_string(),
            at,
            reason: reason.trim().to_string(),
            node: self.node.id.clone(),
        })
    }

    /// Applies content and review actions to one loaded item in memory.
    /// Nothing is written to disk here.
    fn stage_item(
        &self,
        loaded: &mut Loaded,
        id: &DocId,
        content: &ItemContent,
        by: &str,
        publish_by: Option<&str>,
        now: Ts,
    ) -> Result<(ItemChange, bool), HallError> {
        content
            .validate()
            .map_err(|e| HallError::BadInput(e.to_string()))?;
        let existing = Self::item_of(loaded, id)?;
        let (mut item, change) = match existing {
            None => (
                Item {
                    content: content.clone(),
                    version: 1,
                    history: Vec::new(),
                },
                ItemChange::Created,
            ),
            Some(i) if i.content == *content => (i, ItemChange::Unchanged),
            Some(mut i) => {
                i.content = content.clone();
                i.version += 1;
                (i, ItemChange::Revised)
            }
        };
        let mut actions = Vec::new();
        if change != ItemChange::Unchanged {
            actions.push((ReviewAction::Drafted, by));
        }
        if let Some(p) = publish_by {
            actions.push((ReviewAction::Approved, p));
            actions.push((ReviewAction::Published, p));
        }
        let mut published = false;
        let mut records = Vec::new();
        for (action, who) in actions {
            if action != ReviewAction::Drafted
                && item.view().status == hallsync_model::ItemStatus::Published
            {
                continue;
            }
            item.check(action, who, "")?;
            let r = self.review_record(&item, action, who, "", now)?;
            item.history.push(r.clone());
            records.push(r);
            published |= action == ReviewAction::Published;
        }
        if change == ItemChange::Unchanged && records.is_empty() {
            return Ok((change, false));
        }
        if !loaded.exists() {
            loaded.doc = self.new_doc();
        }
        let written = (|| {
            if change != ItemChange::Unchanged {
                schema::write_item_content(&mut loaded.doc, id, &item.content, item.version)?;
            }
            for r in &records {
                schema::write_review(&mut loaded.doc, r)?;
            }
            Ok::<(), automerge::AutomergeError>(())
        })();
        if let Err(e) = written {
            loaded.doc.rollback();
            return Err(HallError::BadInput(format!(
                "could not write item {id}: {e}"
            )));
        }
        loaded.doc.commit();
        loaded.record = Some(Record::Item(item));
        Ok((change, published))
    }

    /// Adds or revises one item as a draft.
    pub fn add_item(
        &self,
        content: &ItemContent,
        by: &str,
        now: Ts,
    ) -> Result<(DocId, ItemChange), HallError> {
        let id = self.item_id(&content.impl_code)?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let (change, _) = self
            .stage_item(&mut l, &id, content, by, None, now)
            .inspect_err(|_| self.store.evict(&id))?;
        self.persist(&mut [Pending {
            id: &id,
            loaded: &mut l,
            index: None,
            facts: None,
        }])?;
        Ok((id, change))
    }

    /// Imports parsed spreadsheet rows. Good rows are stored (in batches,
    /// each durable); bad rows are reported with their line and reason and
    /// change nothing. With `publish_by`, imported items are recorded as
    /// approved and published by that person (the spreadsheet is the legal
    /// office's published list).
    pub fn import_items(
        &self,
        rows: Vec<crate::import::ItemRow>,
        by: &str,
        publish_by: Option<&str>,
        now: Ts,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ImportReport, HallError> {
        let mut report = ImportReport::default();
        let total = rows.len();
        let mut seen = std::collections::HashMap::new();
        let mut good = Vec::new();
        for (line, row) in rows {
            match row {
                Err(e) => report.problems.push(RowProblem {
                    line,
                    reason: e.to_string(),
                }),
                Ok(c) => match seen.insert(c.impl_code.clone(), line) {
                    Some(first) => report.problems.push(RowProblem {
                        line,
                        reason: format!("impl_code: {} repeats line {first}", c.impl_code),
                    }),
                    None => good.push((line, c)),
                },
            }
        }
        let mut done = 0;
        for batch in good.chunks(IMPORT_BATCH) {
            let mut staged = Vec::new();
            for (line, content) in batch {
                let id = match self.item_id(&content.impl_code) {
                    Ok(id) => id,
                    Err(e) => {
                        report.problems.push(RowProblem {
                            line: *line,
                            reason: e.to_string(),
                        });
                        continue;
                    }
                };
                let h = self.store.doc(&id)?;
                staged.push((*line, id, h, content));
            }
            let mut guards = Vec::new();
            for (line, id, h, content) in &staged {
                let mut l = lock(h)?;
                match self.stage_item(&mut l, id, content, by, publish_by, now) {
                    Ok((change, published)) => {
                        match change {
                            ItemChange::Created => report.created += 1,
                            ItemChange::Revised => report.revised += 1,
                            ItemChange::Unchanged => report.unchanged += 1,
                        }
                        report.published += usize::from(published);
                        guards.push((id, l));
                    }
                    Err(e) => {
                        drop(l);
                        self.store.evict(id);
                        report.problems.push(RowProblem {
                            line: *line,
                            reason: e.to_string(),
                        });
                    }
                }
            }
            self.persist_all(&mut guards)?;
            done += batch.len();
            progress(done, total);
        }
        report.problems.sort_by_key(|p| p.line);
        Ok(report)
    }

    /// Records a review action on an item.
    pub fn review_item(
        &self,
        code: &str,
        action: ReviewAction,
        by: &str,
        reason: &str,
        now: Ts,
    ) -> Result<ItemView, HallError> {
        let id = self.find_item(code)?;
        if *id.region() != self.node.region {
            return Err(HallError::BadInput(format!(
                "{id} belongs to {}; only that hall reviews it",
                id.region()
            )));
        }
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let mut item =
            Self::item_of(&mut l, &id)?.ok_or_else(|| HallError::UnknownItem(code.into()))?;
        item.check(action, by, reason)?;
        let r = self.review_record(&item, action, by, reason, now)?;
        if let Err(e) = schema::write_review(&mut l.doc, &r) {
            l.doc.rollback();
            return Err(HallError::BadInput(e.to_string()));
        }
        l.doc.commit();
        item.history.push(r);
        let view = item.view();
        l.record = Some(Record::Item(item));
        self.persist(&mut [Pending {
            id: &id,
            loaded: &mut l,
            index: None,
            facts: None,
        }])?;
        Ok(view)
    }

    /// The id of an item by implementation code: this hall's own, or else
    /// the nearest ancestor's.
    pub fn find_item(&self, code: &str) -> Result<DocId, HallError> {
        let mut region = Some(self.node.region.clone());
        while let Some(r) = region {
            if let Ok(id) = DocId::new(DocKind::Item, &r, code) {
                if self.store.contains(&id)? {
                    return Ok(id);
                }
            } else {
                return Err(HallError::UnknownItem(code.into()));
            }
            region = r.parent();
        }
        Err(HallError::UnknownItem(code.into()))
    }

    /// One item by implementation code.
    pub fn item(&self, code: &str) -> Result<(DocId, Item), HallError> {
        let id = self.find_item(code)?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let item =
            Self::item_of(&mut l, &id)?.ok_or_else(|| HallError::UnknownItem(code.into()))?;
        Ok((id, item))
    }

    /// Every item this node holds, in id order.
    pub fn items(&self) -> Result<Vec<(DocId, Item)>, HallError> {
        let mut out = Vec::new();
        for id in self.store.ids(DocKind::Item) {
            let id = id?;
            let h = self.store.doc(&id)?;
            let mut l = lock(&h)?;
            if let Some(item) = Self::item_of(&mut l, &id)? {
                out.push((id, item));
            }
        }
        Ok(out)
    }
}
