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
        let mut ids = self
            .import_many(&[bytes], now, source)
            .map_err(|(_, e)| e)?;
        Ok(ids.remove(0))
    }

    /// [`Hall::import`] for several document files in one durable commit:
    /// all are stored, or none when one fails; `Err` gives that one's place
    /// in `files`. Ids in the order of `files`.
    pub(crate) fn import_many(
        &self,
        files: &[&[u8]],
        now: Ts,
        source: Source<'_>,
    ) -> Result<Vec<DocId>, (usize, HallError)> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let mut parsed = Vec::with_capacity(files.len());
        for (at, bytes) in files.iter().enumerate() {
            let (id, doc) = self.outside(bytes).map_err(|e| (at, e))?;
            parsed.push((at, id, doc));
        }
        // One lock order for every batch, as the replica takes them.
        parsed.sort_by(|a, b| a.1.cmp(&b.1));
        if let Some(w) = parsed.windows(2).find(|w| w[0].1 == w[1].1) {
            let why = format!("{} is in the batch twice", w[1].1);
            return Err((w[1].0, HallError::BadInput(why)));
        }
        // Before any document lock: loading the calendar locks the stored
        // calendar documents, which this batch may hold.
        let cal = self.calendar().map_err(|e| (parsed[0].0, e))?;
        let handles = parsed
            .iter()
            .map(|(at, id, _)| self.store.doc(id).map_err(|e| (*at, e.into())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut guards = handles
            .iter()
            .zip(&parsed)
            .map(|(h, (at, ..))| lock(h).map_err(|e| (*at, e.into())))
            .collect::<Result<Vec<_>, _>>()?;
        // Everything checked before anything loaded is changed.
        let mut derived = Vec::with_capacity(parsed.len());
        for ((at, id, incoming), l) in parsed.iter_mut().zip(guards.iter_mut()) {
            let incoming = std::mem::take(incoming);
            let merged = self
                .merge_checked(id, l, Incoming::Whole(Box::new(incoming)))
                .map_err(|e| (*at, HallError::BadInput(e)))?;
            if let Record::Order(after) = &merged.record {
                let before = Self::order_of(l, id).map_err(|e| (*at, e))?;
                after
                    .check_received(before.as_ref(), &self.node.region, source)
                    .map_err(|e| (*at, HallError::BadInput(format!("{id}: {e}"))))?;
            }
            let (index, facts) = self
                .derived_of(&merged.record, &cal, now)
                .map_err(|e| (*at, e))?;
            derived.push((merged, index, facts));
        }
        let (mut standards, mut registry) = (false, false);
        let mut pending = Vec::with_capacity(parsed.len());
        for (((_, id, _), l), (merged, index, facts)) in
            parsed.iter().zip(guards.iter_mut()).zip(derived)
        {
            standards |= matches!(merged.record, Record::Calendar(_) | Record::Rules(_));
            registry |= matches!(merged.record, Record::Node(_));
            l.doc = merged.doc;
            l.record = Some(merged.record);
            pending.push(Pending {
                id,
                loaded: l,
                index,
                facts,
            });
        }
        let first = parsed[0].0;
        self.persist(&mut pending).map_err(|e| (first, e))?;
        drop(pending);
        drop(guards);
        if registry {
            self.registry_written();
        }
        if standards {
            self.standards_changed(now).map_err(|e| (first, e))?;
        }
        let mut ids: Vec<(usize, DocId)> = parsed.into_iter().map(|(at, id, _)| (at, id)).collect();
        ids.sort_by_key(|(at, _)| *at);
        Ok(ids.into_iter().map(|(_, id)| id).collect())
    }

    /// A document file read and checked as far as it can be alone: its
    /// size, its form, a valid record, within this hall's scope.
    fn outside(&self, bytes: &[u8]) -> Result<(DocId, automerge::AutoCommit), HallError> {
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
        Ok((id, incoming))
    }
}
