//! The hall as a replication [`Replica`]: the store's change feed, heads
//! and checkpoints, and validated merging of what a peer sends.

use automerge::{AutoCommit, ChangeHash};
use hallsync_model::schema::{self, Record};
use hallsync_model::{DocId, NodeId, Ts};
use hallsync_store::{lock, Loaded, Pending};
use hallsync_sync::{ApplyError, Entry, Hash, Payload, Replica};

use crate::{Hall, HallError};

/// What arrived for one document.
pub(crate) enum Incoming<'a> {
    /// A whole document (a file or a peer's saved form).
    Whole(Box<AutoCommit>),
    /// Changes on top of the stored copy.
    Changes(&'a [u8]),
}

/// A document merged with incoming bytes and checked, not yet stored.
pub(crate) struct Merged {
    pub(crate) doc: AutoCommit,
    pub(crate) record: Record,
}

impl Hall {
    /// Merges `incoming` into the stored copy (in a fork: the cached copy is
    /// untouched) and checks that the result is a complete, valid record
    /// with this id.
    pub(crate) fn merge_checked(
        &self,
        id: &DocId,
        stored: &mut Loaded,
        incoming: Incoming<'_>,
    ) -> Result<Merged, String> {
        let mut doc = match incoming {
            Incoming::Whole(mut whole) if stored.exists() => {
                let mut m = stored.doc.fork().with_actor(self.actor.clone());
                m.merge(&mut whole)
                    .map_err(|e| format!("{id} does not merge: {e}"))?;
                m
            }
            Incoming::Whole(whole) => whole.with_actor(self.actor.clone()),
            Incoming::Changes(bytes) if stored.exists() => {
                let mut m = stored.doc.fork().with_actor(self.actor.clone());
                m.load_incremental(bytes)
                    .map_err(|e| format!("{id}: the changes do not load: {e}"))?;
                m
            }
            Incoming::Changes(_) => {
                return Err(format!("{id}: changes were sent for a document not held"))
            }
        };
        if !doc.get_missing_deps(&[]).is_empty() {
            return Err(format!(
                "{id} is incomplete: it depends on changes that were not sent"
            ));
        }
        let (_, record) = schema::read_record(&doc, Some(id))
            .map_err(|e| format!("{id} would not be a valid record: {e}"))?;
        doc.commit();
        Ok(Merged { doc, record })
    }

    /// Stores merged documents (with their case index records) and the
    /// peer checkpoint in one durable commit.
    fn store_merged(
        &self,
        peer: &NodeId,
        docs: Vec<(DocId, Merged)>,
        guards: &mut [std::sync::MutexGuard<'_, Loaded>],
        checkpoint: Option<u64>,
        now: Ts,
    ) -> Result<bool, HallError> {
        let cal = self.calendar()?;
        let mut calendar_changed = false;
        let mut ids = Vec::with_capacity(docs.len());
        let mut cases = Vec::with_capacity(docs.len());
        for ((id, m), guard) in docs.into_iter().zip(guards.iter_mut()) {
            calendar_changed |= matches!(m.record, Record::Calendar(_));
            cases.push(match &m.record {
                Record::Case(c) => {
                    let view = c.view();
                    let clock = c.clock(&view, &cal, now);
                    Some(self.case_record(c, &view, &clock, &cal)?)
                }
                _ => None,
            });
            guard.doc = m.doc;
            guard.record = Some(m.record);
            ids.push(id);
        }
        let mut pending: Vec<Pending<'_>> = ids
            .iter()
            .zip(guards.iter_mut())
            .zip(cases)
            .map(|((id, guard), case)| Pending {
                id,
                loaded: guard,
                case,
            })
            .collect();
        self.store
            .persist_from(&mut pending, checkpoint.map(|c| (peer.as_str(), c)))?;
        Ok(calendar_changed)
    }
}

/// A hall seen by a replication session at one moment.
#[derive(Debug)]
pub struct HallReplica<'a> {
    /// The hall.
    pub hall: &'a Hall,
    /// The time used to index received cases.
    pub now: Ts,
}

fn local(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Replica for HallReplica<'_> {
    fn feed(&mut self, after: u64, limit: usize) -> Result<(Vec<Entry>, u64), String> {
        let store = self.hall.store();
        let (entries, scanned) = store
            .feed_entries(after, store.durable_seq(), limit)
            .map_err(local)?;
        Ok((
            entries
                .into_iter()
                .map(|e| Entry {
                    seq: e.seq,
                    id: e.id,
                    heads: e.heads.iter().map(|h| h.0).collect(),
                })
                .collect(),
            scanned,
        ))
    }

    fn feed_head(&self) -> u64 {
        self.hall.store().durable_seq()
    }

    fn heads(&mut self, id: &DocId) -> Result<Option<Vec<Hash>>, String> {
        Ok(self
            .hall
            .store()
            .heads(id)
            .map_err(local)?
            .map(|h| h.iter().map(|h| h.0).collect()))
    }

    fn whole(&mut self, id: &DocId) -> Result<Option<Vec<u8>>, String> {
        self.hall.store().stored_bytes(id).map_err(local)
    }

    fn changes_since(&mut self, id: &DocId, have: &[Hash]) -> Result<Vec<u8>, String> {
        let h = self.hall.store().doc(id).map_err(local)?;
        let mut l = lock(&h).map_err(local)?;
        let have: Vec<ChangeHash> = have
            .iter()
            .map(|h| ChangeHash(*h))
            .filter(|h| l.doc.get_change_by_hash(h).is_some())
            .collect();
        Ok(l.doc
            .get_changes(&have)
            .iter()
            .flat_map(|c| c.raw_bytes().iter().copied())
            .collect())
    }

    fn checkpoint(&mut self, peer: &NodeId) -> Result<u64, String> {
        self.hall
            .store()
            .peer_checkpoint(peer.as_str())
            .map_err(local)
    }

    fn apply(
        &mut self,
        peer: &NodeId,
        mut docs: Vec<(DocId, Payload)>,
        checkpoint: Option<u64>,
    ) -> Result<(), ApplyError> {
        let hall = self.hall;
        docs.retain(|(_, p)| !p.is_empty());
        // One lock order for every batch, so two sessions never deadlock.
        docs.sort_by(|a, b| a.0.cmp(&b.0));
        if docs.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(ApplyError::Rejected(
                "the same document twice in one batch".into(),
            ));
        }
        let handles = docs
            .iter()
            .map(|(id, _)| hall.store().doc(id))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApplyError::Local(e.to_string()))?;
        let mut guards = handles
            .iter()
            .map(lock)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApplyError::Local(e.to_string()))?;
        let mut merged = Vec::with_capacity(docs.len());
        for ((id, payload), guard) in docs.into_iter().zip(guards.iter_mut()) {
            hall.check_scope(&id)
                .map_err(|e| ApplyError::Rejected(e.to_string()))?;
            let incoming = match &payload {
                Payload::Whole(bytes) => {
                    Incoming::Whole(Box::new(AutoCommit::load(bytes).map_err(|e| {
                        ApplyError::Rejected(format!("{id}: not an Automerge document: {e}"))
                    })?))
                }
                Payload::Changes(bytes) => Incoming::Changes(bytes),
                Payload::Nothing => continue,
            };
            let m = hall
                .merge_checked(&id, guard, incoming)
                .map_err(ApplyError::Rejected)?;
            merged.push((id, m));
        }
        let calendar_changed = hall
            .store_merged(peer, merged, &mut guards, checkpoint, self.now)
            .map_err(|e| ApplyError::Local(e.to_string()))?;
        drop(guards);
        if calendar_changed {
            hall.calendar_changed(self.now)
                .map_err(|e| ApplyError::Local(e.to_string()))?;
        }
        Ok(())
    }
}
