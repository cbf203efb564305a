//! The federation registry as this node holds it: its own entry, which it
//! writes, and the entries that replication brings (the halls below it, the
//! hubs above it).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use hallsync_model::case::CaseEvent;
use hallsync_model::registry::{RegistryEntry, CLOCK_TOLERANCE_SECS};
use hallsync_model::schema::{self, Record};
use hallsync_model::{DocId, DocKind, LogId, NodeId, Ts};
use hallsync_store::{lock, Pending};
use serde::{Deserialize, Serialize};

use crate::{Hall, HallError, RestoreState};

/// An event stamped while its node's clock was off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockFlag {
    /// The event.
    pub event: LogId,
    /// The node that stamped it.
    pub node: NodeId,
    /// How far that node's clock was ahead of its parent's (negative:
    /// behind), in seconds.
    pub ahead_secs: i64,
}

/// The local record of the last time this node's clock was seen right
/// against its parent's (seconds, big-endian).
const CLOCK_RIGHT_KEY: &[u8] = b"clock-right";

/// Checks a revocation list (DER) a registry entry carries: `Ok` with its
/// CRL number only if the federation CA signed it.
pub type CrlCheck = Box<dyn Fn(&[u8]) -> Result<u64, String> + Send + Sync>;

/// The check installed with [`Hall::set_crl_check`].
pub(crate) struct CrlChecker(pub(crate) CrlCheck);

impl std::fmt::Debug for CrlChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CrlChecker")
    }
}

impl Hall {
    /// From now on, a registry entry (received or imported) whose
    /// revocation list fails `check`, or whose stated CRL number differs
    /// from the list's own, is refused. A running node sets this from its
    /// bundle's CA certificate.
    pub fn set_crl_check(&self, check: CrlCheck) {
        // Set once per open hall; a second call keeps the first check.
        let _ = self.crl_check.set(CrlChecker(check));
    }

    /// Refuses a record whose revocation list does not pass the check.
    pub(crate) fn check_registry_record(&self, record: &Record) -> Result<(), String> {
        let (Record::Node(e), Some(check)) = (record, self.crl_check.get()) else {
            return Ok(());
        };
        let Some(crl) = &e.crl else {
            return Ok(());
        };
        match (check.0)(&crl.der) {
            Ok(n) if n == crl.number => Ok(()),
            Ok(n) => Err(format!(
                "the registry entry of {} says its revocation list is number {}, but the list is number {n}",
                e.node, crl.number
            )),
            Err(why) => Err(format!(
                "the registry entry of {} carries a revocation list that is refused: {why}",
                e.node
            )),
        }
    }

    /// Counts registry writes (this node's own and received ones) since
    /// the node opened: when it moves, [`Hall::registry`] may have changed.
    pub fn registry_version(&self) -> u64 {
        self.registry_writes.load(Ordering::Acquire)
    }

    pub(crate) fn registry_written(&self) {
        self.registry_writes.fetch_add(1, Ordering::AcqRel);
    }

    /// Writes this node's own registry entry. Only what differs from the
    /// stored entry is written; `Ok(false)` when nothing did. The clock
    /// periods and the restores are the hall's to keep ([`Hall::note_clock`],
    /// [`Hall::restore_caught_up`]): the stored ones stay, whatever `entry`
    /// holds. While the store is being rebuilt nothing is written: the old
    /// entry comes from the parent first.
    pub fn publish_registry_entry(&self, entry: &RegistryEntry) -> Result<bool, HallError> {
        let caught_up = match self.restore_state()? {
            Some(RestoreState::Fetching { .. }) => return Ok(false),
            Some(RestoreState::CaughtUp(r)) => Some(r),
            None => None,
        };
        let changed = self.update_own_entry(|stored| {
            let mut e = entry.clone();
            e.clock_off = stored.map(|s| s.clock_off.clone()).unwrap_or_default();
            e.restored = stored.map(|s| s.restored.clone()).unwrap_or_default();
            if let Some(r) = caught_up.clone() {
                e.note_restored(r);
            }
            Some(e)
        })?;
        if caught_up.is_some() {
            self.restore_noted()?;
        }
        Ok(changed)
    }

    /// Notes what a session with this node's parent (or an ancestor it fell
    /// back on) found: this node's clock `ahead_secs` ahead of the peer's,
    /// at `now` on this node's clock. A clock off by more than five minutes
    /// opens a period in this node's registry entry, from the last time
    /// it was seen right; a clock right again closes it. Every level then
    /// flags the events this node stamped within it. `Ok(Some(true))` when
    /// the entry changed; `Ok(None)` for a node with no entry yet (a
    /// running node publishes it within a second of starting: ask again).
    pub fn note_clock(&self, ahead_secs: i64, now: Ts) -> Result<Option<bool>, HallError> {
        let last_right = self
            .store
            .local(CLOCK_RIGHT_KEY)?
            .into_iter()
            .find(|(key, _)| key == CLOCK_RIGHT_KEY)
            .and_then(|(_, value)| <[u8; 8]>::try_from(value.as_slice()).ok())
            .map(|b| Ts(i64::from_be_bytes(b)));
        let mut held = false;
        let changed = self.update_own_entry(|stored| {
            held = stored.is_some();
            let mut e = stored?.clone();
            e.note_clock(ahead_secs, now, last_right).then_some(e)
        })?;
        if !held {
            return Ok(None);
        }
        if ahead_secs.abs() <= CLOCK_TOLERANCE_SECS {
            self.store
                .put_local(&[(CLOCK_RIGHT_KEY, Some(&now.0.to_be_bytes()))])?;
        }
        Ok(Some(changed))
    }

    /// Rewrites this node's own entry, under its document's lock, to what
    /// `change` makes of the stored one (`None`: leave it).
    fn update_own_entry(
        &self,
        change: impl FnOnce(Option<&RegistryEntry>) -> Option<RegistryEntry>,
    ) -> Result<bool, HallError> {
        let id = DocId::new(DocKind::Node, &self.node.region, self.node.id.as_str())?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let stored = if l.exists() {
            Some(schema::read_registry_entry(&l.doc, &id).map_err(|e| HallError::schema(&id, e))?)
        } else {
            None
        };
        let Some(entry) = change(stored.as_ref()) else {
            return Ok(false);
        };
        if entry.node != self.node.id || entry.region != self.node.region {
            return Err(HallError::BadInput(format!(
                "a node writes only its own registry entry: this is {} ({}), the entry is for {} ({})",
                self.node.id, self.node.region, entry.node, entry.region
            )));
        }
        entry.validate().map_err(|(field, why)| {
            HallError::BadInput(format!("registry entry {field}: {why}"))
        })?;
        match &stored {
            Some(s) if *s == entry => return Ok(false),
            Some(_) => {}
            None => l.doc = self.new_doc(),
        }
        if let Err(e) = schema::write_registry_entry(&mut l.doc, &id, &entry) {
            l.doc.rollback();
            return Err(HallError::BadInput(e.to_string()));
        }
        l.doc.commit();
        l.record = Some(Record::Node(entry));
        self.persist(&mut [Pending {
            id: &id,
            loaded: &mut l,
            index: None,
            facts: None,
        }])?;
        drop(l);
        self.registry_written();
        Ok(true)
    }

    /// The nodes whose registry entries say their clock was once off,
    /// with their entries.
    pub(crate) fn clocks_off(&self) -> Result<HashMap<NodeId, RegistryEntry>, HallError> {
        Ok(self
            .registry()?
            .into_iter()
            .filter(|e| !e.clock_off.is_empty())
            .map(|e| (e.node.clone(), e))
            .collect())
    }

    /// The events among `events` that their node stamped while its clock
    /// was off its parent's (as its registry entry says), each with how far
    /// ahead that clock was (negative: behind), in seconds.
    pub fn clock_off_events(&self, events: &[CaseEvent]) -> Result<Vec<ClockFlag>, HallError> {
        let off = self.clocks_off()?;
        Ok(events
            .iter()
            .filter_map(|e| {
                let p = off.get(&e.node)?.clock_off_at(e.at)?;
                Some(ClockFlag {
                    event: e.id.clone(),
                    node: e.node.clone(),
                    ahead_secs: p.ahead_secs,
                })
            })
            .collect())
    }

    /// Every registry entry this node holds, by document id.
    pub fn registry(&self) -> Result<Vec<RegistryEntry>, HallError> {
        let ids = self
            .store
            .ids(DocKind::Node)
            .collect::<Result<Vec<DocId>, _>>()?;
        ids.iter()
            .map(|id| {
                let h = self.store.doc(id)?;
                let l = lock(&h)?;
                if let Some(Record::Node(e)) = &l.record {
                    return Ok(e.clone());
                }
                schema::read_registry_entry(&l.doc, id).map_err(|e| HallError::schema(id, e))
            })
            .collect()
    }
}
