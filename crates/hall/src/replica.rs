//! The hall as a replication [`Replica`]: the store's change feed, heads
//! and checkpoints, and validated merging of what a peer sends.

use automerge::{AutoCommit, ChangeHash};
use hallsync_model::calendar::Calendar;
use hallsync_model::order::Source;
use hallsync_model::schema::{self, Record};
use hallsync_model::{DocId, NodeId, RegionCode, Ts};
use hallsync_store::{lock, Checkpoint, Direction, IndexRecord, Loaded, Pending, SetAside};
use hallsync_sync::msg::MAX_DOC_BYTES;
use hallsync_sync::{
    ApplyError, Endpoint, Entry, Hash, Payload, Position, Received, Refusal, Replica,
};

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
                schema::apply_outside(&mut m, bytes)
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
        schema::check_history(&mut doc).map_err(|e| format!("{id}: {e}"))?;
        hallsync_model::history::check_append_only(&mut doc)
            .map_err(|e| format!("{id} is refused: {e}"))?;
        let (_, record) = schema::read_record(&doc, Some(id))
            .map_err(|e| format!("{id} would not be a valid record: {e}"))?;
        self.check_registry_record(&record)?;
        if let Record::Rules(r) = &record {
            self.check_received_rules(r)?;
        }
        doc.commit();
        Ok(Merged { doc, record })
    }

    /// Checks and merges what a peer at region `from` sent for one
    /// document, and works out its case index record; touches nothing
    /// stored.
    fn prepare_incoming(
        &self,
        received: &mut Received,
        stored: &mut Loaded,
        cal: &Calendar,
        now: Ts,
        from: &RegionCode,
    ) -> Result<Prepared, ApplyError> {
        let id = &received.id;
        let payload = std::mem::replace(&mut received.payload, Payload::Nothing);
        self.check_scope(id)
            .map_err(|e| ApplyError::Rejected(e.to_string()))?;
        if !hallsync_model::scope::accepts_from(&self.node.region, from, id) {
            return Err(ApplyError::Rejected(format!(
                "{id}: a hall at {from} may not change a record of {}; it is changed where it belongs and comes down from there",
                id.region()
            )));
        }
        let (mut merged, saved_form) = match payload {
            Payload::Whole(bytes) => {
                let doc = schema::load_outside(&bytes).map_err(|e| {
                    ApplyError::Rejected(format!("{id}: not an Automerge document: {e}"))
                })?;
                let fresh = !stored.exists();
                let m = self
                    .merge_checked(id, stored, Incoming::Whole(Box::new(doc)))
                    .map_err(ApplyError::Rejected)?;
                (m, fresh.then_some(bytes))
            }
            Payload::Changes(bytes) => (
                self.merge_checked(id, stored, Incoming::Changes(&bytes))
                    .map_err(ApplyError::Rejected)?,
                None,
            ),
            Payload::Nothing => {
                return Err(ApplyError::Rejected(format!("{id}: an empty payload")))
            }
        };
        if let Record::Order(after) = &merged.record {
            let before =
                Self::order_of(stored, id).map_err(|e| ApplyError::Local(e.to_string()))?;
            after
                .check_received(before.as_ref(), &self.node.region, Source::Peer(from))
                .map_err(|e| ApplyError::Rejected(format!("{id}: {e}")))?;
        }
        let mut heads: Vec<Hash> = merged.doc.get_heads().iter().map(|h| h.0).collect();
        heads.sort_unstable();
        received.heads.sort_unstable();
        let exact = heads == received.heads;
        let (case, facts) = self
            .derived_of(&merged.record, cal, now)
            .map_err(|e| ApplyError::Local(e.to_string()))?;
        Ok(Prepared {
            merged,
            case,
            facts,
            saved_form,
            exact,
        })
    }
}

impl Hall {
    /// The documents set aside in replication, both ways, newest first. A
    /// note that a peer refused a document is dropped here once the
    /// document has changed since (the new version is offered again).
    pub fn set_aside(&self) -> Result<Vec<SetAside>, HallError> {
        let mut current = Vec::new();
        let mut stale = Vec::new();
        for note in self.store.set_aside()? {
            let changed = note.direction == Direction::RefusedByPeer && {
                let mut heads = self.store.heads(&note.id)?.unwrap_or_default();
                let mut refused = note.heads.clone();
                heads.sort_unstable();
                refused.sort_unstable();
                heads != refused
            };
            if changed {
                stale.push(note);
            } else {
                current.push(note);
            }
        }
        if !stale.is_empty() {
            self.store.forget_set_aside(&stale)?;
        }
        current.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.cmp(&b.id)));
        Ok(current)
    }
}

/// One received document, checked and ready to store.
struct Prepared {
    merged: Merged,
    case: Option<IndexRecord>,
    /// The statistics facts, for cases and orders.
    facts: Option<Vec<u8>>,
    /// The peer's bytes, stored as they are when the document is new here.
    saved_form: Option<Vec<u8>>,
    /// The merged document has exactly the peer's heads.
    exact: bool,
}

/// Batches smaller than this are checked on the session's own thread.
const PARALLEL_FROM: usize = 32;

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
    fn restoring(&self) -> bool {
        self.hall.restoring()
    }
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
                    origin: e.origin,
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
        let store = self.hall.store();
        match store.stored_bytes(id).map_err(local)? {
            // The store keeps documents without Automerge's column
            // compression; one too large for a message that way may still
            // fit in Automerge's compressed form.
            Some(bytes) if bytes.len() > MAX_DOC_BYTES => store.save(id).map_err(local),
            stored => Ok(stored),
        }
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

    fn feed_id(&self) -> u64 {
        self.hall.store().feed_id()
    }
    fn wall_clock_ms(&self) -> i64 {
        self.now.millis()
    }

    fn checkpoint(&mut self, peer: &NodeId) -> Result<Position, String> {
        let c = self
            .hall
            .store()
            .peer_checkpoint(peer.as_str())
            .map_err(local)?;
        Ok(Position {
            feed: c.feed,
            seq: c.seq,
        })
    }

    fn apply(
        &mut self,
        peer: &Endpoint,
        mut docs: Vec<Received>,
        checkpoint: Option<Position>,
    ) -> Result<Vec<Refusal>, ApplyError> {
        let hall = self.hall;
        docs.retain(|r| !r.payload.is_empty());
        // One lock order for every batch, so two sessions never deadlock.
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        if docs.windows(2).any(|w| w[0].id == w[1].id) {
            return Err(ApplyError::Rejected(
                "the same document twice in one batch".into(),
            ));
        }
        // Before any document lock: loading the calendar locks the stored
        // calendar documents, which this batch may hold.
        let cal = hall
            .calendar()
            .map_err(|e| ApplyError::Local(e.to_string()))?;
        let handles = docs
            .iter()
            .map(|r| hall.store().doc(&r.id))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApplyError::Local(e.to_string()))?;
        let mut guards = handles
            .iter()
            .map(lock)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApplyError::Local(e.to_string()))?;
        let now = self.now;
        let mut work: Vec<(&mut Received, &mut Loaded)> = docs
            .iter_mut()
            .zip(guards.iter_mut())
            .map(|(r, g)| (r, &mut **g))
            .collect();
        // Loading and checking dominate a batch's cost and need no lock
        // but the documents' own: spread them over the cores.
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4);
        let chunk = if work.len() < PARALLEL_FROM {
            work.len().max(1)
        } else {
            work.len().div_ceil(workers)
        };
        let checked: Vec<Result<Prepared, ApplyError>> = std::thread::scope(|s| {
            let handles: Vec<_> = work
                .chunks_mut(chunk)
                .map(|part| {
                    let cal = &cal;
                    let from = &peer.region;
                    s.spawn(move || {
                        part.iter_mut()
                            .map(|(r, l)| hall.prepare_incoming(r, l, cal, now, from))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join().unwrap_or_else(|_| {
                        vec![Err(ApplyError::Local("a checker panicked".into()))]
                    })
                })
                .collect()
        });
        drop(work);
        // A document that fails its checks is set aside (its copy here left
        // as it was); the rest of the batch is stored. A local failure
        // fails the batch.
        let mut refused = Vec::new();
        let mut calendar_changed = false;
        let mut registry_changed = false;
        let mut pending: Vec<Pending<'_>> = Vec::with_capacity(docs.len());
        for ((r, outcome), guard) in docs.iter().zip(checked).zip(guards.iter_mut()) {
            let p = match outcome {
                Ok(p) => p,
                Err(ApplyError::Rejected(reason)) => {
                    refused.push(Refusal {
                        id: r.id.clone(),
                        heads: r.heads.clone(),
                        reason,
                    });
                    continue;
                }
                Err(e @ ApplyError::Local(_)) => return Err(e),
            };
            calendar_changed |= matches!(p.merged.record, Record::Calendar(_) | Record::Rules(_));
            registry_changed |= matches!(p.merged.record, Record::Node(_));
            match p.saved_form {
                Some(bytes) => guard.adopt(p.merged.doc, bytes),
                None => guard.doc = p.merged.doc,
            }
            guard.record = Some(p.merged.record);
            if p.exact {
                guard.set_origin(peer.id.as_str());
            }
            pending.push(Pending {
                id: &r.id,
                loaded: guard,
                index: p.case,
                facts: p.facts,
            });
        }
        for r in &refused {
            tracing::warn!(document = %r.id, "set aside a record {} sent: {}; the link carries on with the rest", peer.id, r.reason);
        }
        let notes: Vec<SetAside> = refused
            .iter()
            .map(|r| SetAside {
                direction: Direction::Refused,
                peer: peer.id.to_string(),
                id: r.id.clone(),
                heads: r.heads.iter().map(|h| ChangeHash(*h)).collect(),
                reason: r.reason.clone(),
                at: now.0,
            })
            .collect();
        hall.store()
            .persist_from(
                &mut pending,
                peer.id.as_str(),
                checkpoint.map(|c| Checkpoint {
                    feed: c.feed,
                    seq: c.seq,
                }),
                &notes,
            )
            .map_err(|e| ApplyError::Local(e.to_string()))?;
        drop(pending);
        drop(guards);
        if registry_changed {
            hall.registry_written();
        }
        if calendar_changed {
            hall.standards_changed(self.now)
                .map_err(|e| ApplyError::Local(e.to_string()))?;
        }
        Ok(refused)
    }

    fn refused_by_peer(&mut self, peer: &Endpoint, refused: Vec<Refusal>) -> Result<(), String> {
        for r in &refused {
            tracing::warn!(document = %r.id, "{} set aside a record this hall sent: {}; correct the record (or withdraw the case) and it is sent again", peer.id, r.reason);
        }
        let notes: Vec<SetAside> = refused
            .into_iter()
            .map(|r| SetAside {
                direction: Direction::RefusedByPeer,
                peer: peer.id.to_string(),
                id: r.id,
                heads: r.heads.into_iter().map(ChangeHash).collect(),
                reason: r.reason,
                at: self.now.0,
            })
            .collect();
        self.hall
            .store()
            .note_refused_by_peer(&notes)
            .map_err(local)
    }
}
