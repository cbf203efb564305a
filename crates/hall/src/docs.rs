//! Raw documents: export as Automerge bytes, show as JSON, and import a
//! document file from another node (sneakernet when a link is down).

use hallsync_model::order::Source;
use hallsync_model::schema::{self, Record};
use hallsync_model::{DocId, Ts};
use hallsync_store::{lock, Pending};

use crate::replica::Incoming;
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
        self.import(bytes, now, Source::File)
    }

    /// [`Hall::import_doc`], for a file from `source`: a file, or the
    /// hall's own backup.
    pub(crate) fn import(
        &self,
        bytes: &[u8],
        now: Ts,
        source: Source<'_>,
    ) -> Result<DocId, HallError> {
        if bytes.len() > MAX_DOC_BYTES {
            return Err(HallError::BadInput(format!(
                "the file is {} bytes; a document file is at most {MAX_DOC_BYTES}",
                bytes.len()
            )));
        }
        let incoming = schema::load_outside(bytes).map_err(|e| {
            HallError::BadInput(format!(
                "not an Automerge document (truncated or another format): {e}"
            ))
        })?;
        let (id, _) = schema::read_record(&incoming, None).map_err(|e| {
            HallError::BadInput(format!("the file is not a valid hallsync record: {e}"))
        })?;
        self.check_scope(&id)?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let merged = self
            .merge_checked(&id, &mut l, Incoming::Whole(Box::new(incoming)))
            .map_err(HallError::BadInput)?;
        if let Record::Order(after) = &merged.record {
            let before = Self::order_of(&mut l, &id)?;
            after
                .check_received(before.as_ref(), &self.node.region, source)
                .map_err(|e| HallError::BadInput(format!("{id}: {e}")))?;
        }
        let cal = self.calendar()?;
        let (index, facts) = self.derived_of(&merged.record, &cal, now)?;
        let is_cal = matches!(merged.record, Record::Calendar(_) | Record::Rules(_));
        let is_node = matches!(merged.record, Record::Node(_));
        l.doc = merged.doc;
        l.record = Some(merged.record);
        self.persist(&mut [Pending {
            id: &id,
            loaded: &mut l,
            index,
            facts,
        }])?;
        drop(l);
        if is_node {
            self.registry_written();
        }
        if is_cal {
            self.standards_changed(now)?;
        }
        Ok(id)
    }
}
