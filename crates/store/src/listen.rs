//! Listeners told, on the committing thread, that the durable feed grew:
//! how a running node hears of a write made on any thread the moment it is
//! durable, without the store knowing who listens or how they wait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

/// Called with the new durable sequence number; `false` removes it.
type Listener = Box<dyn Fn(u64) -> bool + Send + Sync>;

/// The listeners of one store.
#[derive(Default)]
pub(crate) struct Listeners {
    /// Whether there are any: a commit with none pays one atomic load.
    any: AtomicBool,
    /// Numbered, so one that asks to go can be found again.
    list: RwLock<(u64, Vec<(u64, Listener)>)>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .list
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .len();
        f.debug_struct("Listeners").field("count", &n).finish()
    }
}

impl Listeners {
    pub(crate) fn add(&self, listener: Listener) {
        let mut list = self.list.write().unwrap_or_else(PoisonError::into_inner);
        let (next, listeners) = &mut *list;
        *next += 1;
        listeners.push((*next, listener));
        self.any.store(true, Ordering::Release);
    }

    /// Tells every listener that the feed is durable up to `seq`; drops
    /// those that say they are done.
    pub(crate) fn tell(&self, seq: u64) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let done: Vec<u64> = self
            .list
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .iter()
            .filter(|(_, listener)| !listener(seq))
            .map(|(n, _)| *n)
            .collect();
        if done.is_empty() {
            return;
        }
        let mut list = self.list.write().unwrap_or_else(PoisonError::into_inner);
        list.1.retain(|(n, _)| !done.contains(n));
        self.any.store(!list.1.is_empty(), Ordering::Release);
    }
}
