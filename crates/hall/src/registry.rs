//! The federation registry as this node holds it: its own entry, which it
//! writes, and the entries that replication brings (the halls below it, the
//! hubs above it).

use std::sync::atomic::Ordering;

use hallsync_model::registry::RegistryEntry;
use hallsync_model::schema::{self, Record};
use hallsync_model::{DocId, DocKind};
use hallsync_store::{lock, Pending};

use crate::{Hall, HallError};

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
    /// stored entry is written; `Ok(false)` when nothing did.
    pub fn publish_registry_entry(&self, entry: &RegistryEntry) -> Result<bool, HallError> {
        if entry.node != self.node.id || entry.region != self.node.region {
            return Err(HallError::BadInput(format!(
                "a node writes only its own registry entry: this is {} ({}), the entry is for {} ({})",
                self.node.id, self.node.region, entry.node, entry.region
            )));
        }
        entry.validate().map_err(|(field, why)| {
            HallError::BadInput(format!("registry entry {field}: {why}"))
        })?;
        let id = entry.doc_id()?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        if l.exists() {
            let stored =
                schema::read_registry_entry(&l.doc, &id).map_err(|e| HallError::schema(&id, e))?;
            if stored == *entry {
                return Ok(false);
            }
        } else {
            l.doc = self.new_doc();
        }
        if let Err(e) = schema::write_registry_entry(&mut l.doc, &id, entry) {
            l.doc.rollback();
            return Err(HallError::BadInput(e.to_string()));
        }
        l.doc.commit();
        l.record = Some(Record::Node(entry.clone()));
        self.persist(&mut [Pending {
            id: &id,
            loaded: &mut l,
            case: None,
            facts: None,
        }])?;
        drop(l);
        self.registry_written();
        Ok(true)
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
