//! A store being rebuilt (`hallsync restore`), until it has caught up with
//! its parent.
//!
//! A parent never offers a record back to the child it came from: that
//! child holds it. A rebuilt child does not, so while this node is being
//! rebuilt its sessions say so ([`hallsync_sync::Msg::RestoringHello`]) and
//! its peers offer it everything it may hold. A local record keeps the
//! restore across restarts: begun (by `restore --from` or `--bundle`), then
//! caught up (the whole of the parent's feed applied in one restoring
//! session), then noted in the node's registry entry and removed. Until it
//! is caught up, the node does not publish its registry entry: the old one,
//! with the periods its clock was off, comes from the parent first, and the
//! rebuilt node writes on top of it instead of beside it.

use std::sync::atomic::Ordering;

use hallsync_model::registry::{RestoreSource, Restored};
use hallsync_model::{NodeId, Ts};
use serde::{Deserialize, Serialize};

use crate::{Hall, HallError};

/// The local record of a restore under way (JSON).
const RESTORE_KEY: &[u8] = b"restore";

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    /// When the restore began (seconds).
    since: i64,
    /// `backup` or `parent`.
    source: String,
    /// Caught up, and from which node (empty: a node without a parent).
    caught_up_from: Option<String>,
}

/// A restore that has not yet been noted in the registry entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreState {
    /// Still fetching: what the parent holds for this node is not all here.
    Fetching {
        /// When it began.
        since: Ts,
        /// Where it began from.
        source: RestoreSource,
    },
    /// Everything is here; the registry entry notes it next.
    CaughtUp(Restored),
}

impl Hall {
    /// Marks this node's store as being rebuilt, from `now`: until a
    /// session with its parent has applied the whole of the parent's feed,
    /// it asks its peers for its own records too.
    pub fn begin_restore(&self, source: RestoreSource, now: Ts) -> Result<(), HallError> {
        self.put_marker(&Marker {
            since: now.0,
            source: source.as_str().to_string(),
            caught_up_from: None,
        })?;
        self.restoring.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the store is being rebuilt and has not caught up yet.
    pub fn restoring(&self) -> bool {
        self.restoring.load(Ordering::Acquire)
    }

    /// The restore not yet noted in the registry entry, if any.
    pub fn restore_state(&self) -> Result<Option<RestoreState>, HallError> {
        let Some(m) = self
            .store
            .local(RESTORE_KEY)?
            .into_iter()
            .find(|(key, _)| key == RESTORE_KEY)
        else {
            return Ok(None);
        };
        let bad = |why: String| HallError::BadInput(format!("the restore record: {why}"));
        let m: Marker = serde_json::from_slice(&m.1).map_err(|e| bad(e.to_string()))?;
        let source = RestoreSource::parse(&m.source)
            .ok_or_else(|| bad(format!("{:?} is no source", m.source)))?;
        let since = Ts(m.since);
        Ok(Some(match m.caught_up_from {
            None => RestoreState::Fetching { since, source },
            Some(from) => RestoreState::CaughtUp(Restored {
                at: since,
                source,
                from: if from.is_empty() {
                    None
                } else {
                    Some(NodeId::parse(&from).map_err(|e| bad(e.to_string()))?)
                },
            }),
        }))
    }

    /// Notes that the rebuilt store holds everything `from` (its parent;
    /// `None` for a node without one) holds for it. The registry entry
    /// records the restore when it is next published.
    pub fn restore_caught_up(&self, from: Option<&NodeId>) -> Result<(), HallError> {
        let Some(RestoreState::Fetching { since, source }) = self.restore_state()? else {
            return Ok(());
        };
        self.put_marker(&Marker {
            since: since.0,
            source: source.as_str().to_string(),
            caught_up_from: Some(from.map_or_else(String::new, |n| n.to_string())),
        })?;
        self.restoring.store(false, Ordering::Release);
        Ok(())
    }

    /// Forgets the restore once the registry entry has noted it.
    pub(crate) fn restore_noted(&self) -> Result<(), HallError> {
        self.store.put_local(&[(RESTORE_KEY, None)])?;
        Ok(())
    }

    /// Whether the stored restore record says the store is still fetching.
    pub(crate) fn restoring_at_open(&self) -> Result<bool, HallError> {
        Ok(matches!(
            self.restore_state()?,
            Some(RestoreState::Fetching { .. })
        ))
    }

    fn put_marker(&self, m: &Marker) -> Result<(), HallError> {
        let json = serde_json::to_vec(m).map_err(|e| HallError::BadInput(e.to_string()))?;
        self.store.put_local(&[(RESTORE_KEY, Some(&json))])?;
        Ok(())
    }
}
