//! Raw documents: export as Automerge bytes, show as JSON, and import a
//! document file from another node (sneakernet when a link is down).

use automerge::AutoCommit;
use hallsync_model::schema::{self, Record};
use hallsync_model::{DocId, Ts};
use hallsync_store::{lock, Pending};

use crate::{Hall, HallError};

/// Largest document file accepted by [`Hall::import_doc`].
pub const MAX_DOC_BYTES: usize = 8 << 20;

impl Hall {
    /// The document as Automerge save bytes, readable by any Automerge
    /// implementation.
    pub fn export_doc(&self, id: &DocId) -> Result<Vec<u8>, HallError> {
        self.store
            .save(id)?
            .ok_or_else(|| HallError::UnknownDoc(id.to_string()))
    }

    /// The document as JSON, exactly as Automerge holds it.
    pub fn show_doc(&self, id: &DocId) -> Result<serde_json::Value, HallError> {
        let h = self.store.doc(id)?;
        let l = lock(&h)?;
        if !l.exists() {
            return Err(HallError::UnknownDoc(id.to_string()));
        }
        serde_json::to_value(automerge::AutoSerde::from(&l.doc))
            .map_err(|e| HallError::BadInput(format!("{id} cannot be shown as JSON: {e}")))
    }

    /// Merges a document file (Automerge bytes) into the store. The file
    /// must be a complete, valid hallsync record within this hall's scope,
    /// and the merged result must still be valid; otherwise nothing is
    /// stored.
    pub fn import_doc(&self, bytes: &[u8], now: Ts) -> Result<DocId, HallError> {
        if bytes.len() > MAX_DOC_BYTES {
            return Err(HallError::BadInput(format!(
                "the file is {} bytes; a document file is at most {MAX_DOC_BYTES}",
                bytes.len()
            )));
        }
        let mut incoming = AutoCommit::load(bytes).map_err(|e| {
            HallError::BadInput(format!(
                "not an Automerge document (truncated or another format): {e}"
            ))
        })?;
        if !incoming.get_missing_deps(&[]).is_empty() {
            return Err(HallError::BadInput(
                "the document is incomplete: it depends on changes it does not contain".into(),
            ));
        }
        let (id, _) = schema::read_record(&incoming, None).map_err(|e| {
            HallError::BadInput(format!("the file is not a valid hallsync record: {e}"))
        })?;
        self.check_scope(&id)?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let mut merged = if l.exists() {
            let mut m = l.doc.fork().with_actor(l.doc.get_actor().clone());
            m.merge(&mut incoming)
                .map_err(|e| HallError::BadInput(format!("the document does not merge: {e}")))?;
            m
        } else {
            incoming.with_actor(self.actor.clone())
        };
        let (_, record) = schema::read_record(&merged, Some(&id)).map_err(|e| {
            HallError::BadInput(format!(
                "merged with what is stored, {id} would not be valid: {e}"
            ))
        })?;
        let case = match &record {
            Record::Case(c) => {
                let cal = self.calendar()?;
                let view = c.view();
                let clock = c.clock(&view, &cal, now);
                Some(self.case_record(c, &view, &clock, &cal)?)
            }
            _ => None,
        };
        let is_cal = matches!(record, Record::Calendar(_));
        merged.commit();
        l.doc = merged;
        l.record = Some(record);
        self.store.persist(&mut [Pending {
            id: &id,
            loaded: &mut l,
            case,
        }])?;
        drop(l);
        if is_cal {
            if let Ok(mut slot) = self.calendar.write() {
                *slot = None;
            }
            self.reindex_open_cases(now)?;
        }
        Ok(id)
    }
}
