//! The bounded document cache.
//!
//! Architecture invariant: at most one [`Loaded`] exists per document id.
//! An entry still held by a caller (its `Arc` is shared) is never evicted;
//! when every entry is in use the cache grows past its bound until they are
//! released.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use hallsync_model::DocId;
use lru::LruCache;

use crate::{DocHandle, Loaded, StoreError};

#[derive(Debug)]
pub(crate) struct DocCache {
    inner: Mutex<LruCache<DocId, DocHandle>>,
    bound: usize,
}

impl DocCache {
    pub(crate) fn new(bound: usize) -> DocCache {
        DocCache {
            inner: Mutex::new(LruCache::unbounded()),
            bound: NonZeroUsize::new(bound).map_or(1, NonZeroUsize::get),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, LruCache<DocId, DocHandle>>, StoreError> {
        self.inner.lock().map_err(|_| StoreError::Corrupt {
            key: "document cache".into(),
            reason: "a thread panicked while holding it".into(),
        })
    }

    /// The cached handle, or a new one made by `load`. Loading happens under
    /// the cache lock, which keeps the one-handle-per-document invariant
    /// simple; loads are short (one document).
    pub(crate) fn get_or_load(
        &self,
        id: &DocId,
        load: impl FnOnce() -> Result<Loaded, StoreError>,
    ) -> Result<DocHandle, StoreError> {
        let mut c = self.lock()?;
        if let Some(h) = c.get(id) {
            return Ok(Arc::clone(h));
        }
        let h = Arc::new(Mutex::new(load()?));
        c.put(id.clone(), Arc::clone(&h));
        let mut evicted = Vec::new();
        while c.len() > self.bound {
            let idle = c
                .iter()
                .rev()
                .find(|(_, h)| Arc::strong_count(h) == 1)
                .map(|(k, _)| k.clone());
            match idle.and_then(|k| c.pop(&k)) {
                Some(e) => evicted.push(e),
                None => break,
            }
        }
        // Freeing a loaded document takes a while: not under the lock.
        drop(c);
        drop(evicted);
        Ok(h)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().map_or(0, |c| c.len())
    }

    pub(crate) fn remove(&self, id: &DocId) {
        if let Ok(mut c) = self.lock() {
            c.pop(id);
        }
    }
}
