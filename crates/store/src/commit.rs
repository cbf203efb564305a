//! Group commit: a write is acknowledged only after a flush that began after
//! it was applied; writers waiting at the same time share one flush.

use std::sync::{Condvar, Mutex};

use crate::StoreError;

#[derive(Debug, Default)]
struct State {
    /// Highest sequence number applied to the database.
    written: u64,
    /// Highest sequence number known to be on disk.
    durable: u64,
    /// Whether a flush is running.
    flushing: bool,
    /// A flush failed: nothing more is acknowledged.
    failed: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    cv: Condvar,
}

impl GroupCommit {
    /// A group commit whose data up to `seq` is already on disk.
    pub(crate) fn starting_at(seq: u64) -> GroupCommit {
        let g = GroupCommit::default();
        {
            let mut s = g.lock();
            s.written = seq;
            s.durable = seq;
        }
        g
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few integers updated in single statements; a panic
        // elsewhere cannot leave it half-written, so a poisoned lock is safe
        // to keep using.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn check(&self) -> Result<(), StoreError> {
        match &self.lock().failed {
            Some(e) => Err(StoreError::Durability(e.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn written(&self, seq: u64) {
        let mut s = self.lock();
        s.written = s.written.max(seq);
    }

    pub(crate) fn durable(&self) -> u64 {
        self.lock().durable
    }

    /// Waits until `seq` is durable, running a flush if none is under way.
    pub(crate) fn wait_durable(
        &self,
        seq: u64,
        flush: impl Fn() -> Result<(), sled::Error>,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        loop {
            if let Some(e) = &s.failed {
                return Err(StoreError::Durability(e.clone()));
            }
            if s.durable >= seq {
                return Ok(());
            }
            if !s.flushing {
                s.flushing = true;
                let target = s.written;
                drop(s);
                let result = flush();
                s = self.lock();
                s.flushing = false;
                match result {
                    Ok(()) => s.durable = s.durable.max(target),
                    Err(e) => s.failed = Some(e.to_string()),
                }
                self.cv.notify_all();
            } else {
                s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}
