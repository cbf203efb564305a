//! Group commit: a write is acknowledged only after a sync of the log that
//! began after its record was appended; writers waiting at the same time
//! share one sync.

use std::sync::{Condvar, Mutex};

use crate::StoreError;

#[derive(Debug, Default)]
struct State {
    /// Commits logged so far (each commit's ticket is its number).
    written: u64,
    /// Commits known to be on disk.
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

    /// Records a failure that leaves the store unsafe to write to, and
    /// returns it as an error.
    pub(crate) fn fail(&self, reason: String) -> StoreError {
        let mut s = self.lock();
        s.failed.get_or_insert(reason.clone());
        self.cv.notify_all();
        StoreError::Durability(reason)
    }

    /// Counts a commit whose log record has been appended; returns its
    /// ticket for [`GroupCommit::wait_durable`].
    pub(crate) fn written(&self) -> u64 {
        let mut s = self.lock();
        s.written += 1;
        s.written
    }

    /// Waits until the commit `seq` is durable, running a sync if none is
    /// under way.
    pub(crate) fn wait_durable(
        &self,
        seq: u64,
        flush: impl Fn() -> std::io::Result<()>,
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
