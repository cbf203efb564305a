//! Checkpoints: the memtable folded into sled blocks in the background, the
//! log trimmed to what is not yet in them, and the compression
//! dictionaries trained on what was written.

use std::path::PathBuf;
use std::sync::{Arc, MutexGuard};
use std::thread::JoinHandle;

use crate::commit::GroupCommit;
use crate::mem::{Mem, Table};
use crate::packed::Blocks;
use crate::wal::{Mark, Wal};
use crate::*;

/// What a checkpoint needs, apart from the store (so it can run on its own
/// thread).
pub(crate) struct Checkpointer {
    db: sled::Db,
    sled_dir: PathBuf,
    tree: sled::Tree,
    blocks: Arc<Blocks>,
    wal: Arc<Wal>,
    mem: Arc<Mem>,
    group: Arc<GroupCommit>,
}

impl Checkpointer {
    /// [`Checkpointer::write_out`], then the spare log segment for the next
    /// checkpoint, while writers carry on. (A checkpoint on close makes
    /// none: a one-off command would write one for nothing.)
    pub(crate) fn in_background(&self, frozen: &Table, mark: Mark) {
        self.write_out(frozen, mark);
        if let Err(e) = self.wal.prepare_spare() {
            tracing::warn!(error = %e, "could not prepare the next write-ahead log segment; it will be made when needed, and syncing it will cost more");
        }
    }

    /// Applies a frozen memtable to sled with the log's `mark`, flushes it,
    /// deletes the log segments before the mark's and forgets the table. A
    /// failure stops the store accepting writes (the frozen table stays
    /// readable).
    pub(crate) fn write_out(&self, frozen: &Table, mark: Mark) {
        let started = std::time::Instant::now();
        let changes = frozen
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_ref().map(Val::as_slice)));
        let result = self
            .blocks
            .fold(changes)
            .map_err(StoreError::from)
            .and_then(|()| Ok(self.tree.insert(MARK_KEY, &mark.encode()).map(drop)?))
            .and_then(|()| open::flush(&self.db, &self.sled_dir))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                self.wal
                    .remove_before(mark.segment)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => {
                self.mem.drop_frozen();
                tracing::debug!(
                    keys = frozen.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "checkpoint written"
                );
            }
            Err(e) => {
                let e = self.group.fail(format!("a checkpoint failed: {e}"));
                tracing::error!(error = %e, "the store stops accepting writes");
            }
        }
    }
}

/// Trains a dictionary on a sample of the stored documents, stores it,
/// flushes sled, and only then lets new saves use it.
pub(crate) fn train_dictionary(
    db: &sled::Db,
    sled_dir: &Path,
    tree: &sled::Tree,
    blocks: &Blocks,
    mem: &Mem,
    dicts: &Dicts,
    seq: u64,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut samples = Vec::new();
    for kv in mem.prefix(blocks, &[DOC]).take(dict::SAMPLES) {
        let (k, v) = kv.map_err(|e| StoreError::from(e).to_string())?;
        let name = String::from_utf8_lossy(&k[1..]);
        let saved = unpack_saved(&name, &v, dicts).map_err(|e| e.to_string())?;
        samples.push(saved.into_owned());
    }
    let raw = dict::train(&samples)
        .map_err(|e| format!("zstd could not train on {} documents: {e}", samples.len()))?;
    let number = dicts.next_number();
    let mut k = dict::DICT_PREFIX.to_vec();
    k.extend_from_slice(&number.to_be_bytes());
    tree.insert(k, versioned(&dict::stored_form(seq, &raw)))
        .map_err(StoreError::from)
        .and_then(|_| open::flush(db, sled_dir))
        .map_err(|e| format!("could not store it: {e}"))?;
    dicts.install(number, seq, &raw);
    tracing::info!(
        dictionary = number,
        feed = seq,
        samples = samples.len(),
        bytes = raw.len(),
        ms = started.elapsed().as_millis() as u64,
        "trained a compression dictionary for saved documents"
    );
    Ok(())
}

impl Store {
    /// Starts training a compression dictionary in the background when one
    /// is due, the feed being at `seq` (see `dict.rs`).
    pub(crate) fn maybe_train(&self, seq: u64) {
        let first = self.options.dictionary_after;
        if !self.dicts.claim_training(seq, first) {
            return;
        }
        let mut slot = self.trainer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = slot.take() {
            // The previous one has finished: it released the claim.
            let _ = done.join();
        }
        let (db, sled_dir, tree, blocks, mem, dicts) = (
            self.db.clone(),
            self.sled_dir.clone(),
            self.tree.clone(),
            Arc::clone(&self.blocks),
            Arc::clone(&self.mem),
            Arc::clone(&self.dicts),
        );
        let spawned = std::thread::Builder::new()
            .name("hallsync-dictionary".into())
            .spawn(move || {
                let trained = train_dictionary(&db, &sled_dir, &tree, &blocks, &mem, &dicts, seq);
                if let Err(e) = &trained {
                    tracing::warn!(error = %e, "could not train a compression dictionary; documents stay compressed as they are, and training is tried again later");
                }
                dicts.trained(trained.is_ok(), seq, first);
            });
        match spawned {
            Ok(handle) => *slot = Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "could not start a thread to train a compression dictionary");
                self.dicts.trained(false, seq, first);
            }
        }
    }

    pub(crate) fn checkpoint_due(&self, factor: usize) -> bool {
        // The memtable counts every log record it holds, so it reaches its
        // bound no later than the log segment written since the last
        // checkpoint does.
        self.mem.active_bytes() > self.options.memtable_bytes.max(1) * factor
    }

    /// Starts a background checkpoint when one is due. If the previous one
    /// is still running, writers go on unless the memtable has grown to
    /// twice its bound, when they wait for it (so memory stays bounded when
    /// sled cannot keep up).
    pub(crate) fn maybe_checkpoint(&self) -> Result<(), StoreError> {
        if !self.checkpoint_due(1) {
            return Ok(());
        }
        let mut running = self.background_job();
        if running.as_ref().is_some_and(|j| !j.is_finished()) && !self.checkpoint_due(2) {
            return Ok(());
        }
        self.finish_background(&mut running)?;
        if !self.checkpoint_due(1) {
            // Another writer just started one.
            return Ok(());
        }
        if let Some((frozen, mark)) = self.freeze()? {
            let job = self.checkpointer();
            let spawned = std::thread::Builder::new()
                .name("hallsync-checkpoint".into())
                .spawn(move || job.in_background(&frozen, mark));
            match spawned {
                Ok(handle) => *running = Some(handle),
                Err(e) => {
                    return Err(self
                        .group
                        .fail(format!("could not start a checkpoint thread: {e}")))
                }
            }
        }
        Ok(())
    }

    pub(crate) fn checkpointer(&self) -> Checkpointer {
        Checkpointer {
            db: self.db.clone(),
            sled_dir: self.sled_dir.clone(),
            tree: self.tree.clone(),
            blocks: Arc::clone(&self.blocks),
            wal: Arc::clone(&self.wal),
            mem: Arc::clone(&self.mem),
            group: Arc::clone(&self.group),
        }
    }

    pub(crate) fn background_job(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        // Holds only a thread handle: a panic cannot leave it half-set.
        self.background.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the running background checkpoint, if any.
    pub(crate) fn finish_background(
        &self,
        running: &mut Option<JoinHandle<()>>,
    ) -> Result<(), StoreError> {
        if let Some(job) = running.take() {
            if job.join().is_err() {
                return Err(self.group.fail("the checkpoint thread panicked".into()));
            }
        }
        self.group.check()
    }

    /// Under the writer lock: closes the log's current segment (every record
    /// in it is then durable) and freezes the memtable; returns the frozen
    /// table, and the log's mark once sled holds it.
    pub(crate) fn freeze(&self) -> Result<Option<(Arc<Table>, Mark)>, StoreError> {
        let next = self
            .writer
            .lock()
            .map_err(|_| StoreError::Durability("a writer panicked during a commit".into()))?;
        self.group.check()?;
        if self.mem.active_bytes() == 0 {
            // Nothing committed since the last checkpoint: the current
            // segment holds no record, and stays the current one.
            return Ok(None);
        }
        let closed = self
            .group
            .flush_all(|records| self.wal.write_and_rotate(records))?;
        let mark = Mark {
            segment: closed + 1,
            lsn: next.lsn - 1,
        };
        Ok(self.mem.freeze().map(|t| (t, mark)))
    }

    /// Writes everything committed so far into sled, flushes it and deletes
    /// the log it covered; returns once done.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let mut running = self.background_job();
        self.finish_background(&mut running)?;
        if let Some((frozen, mark)) = self.freeze()? {
            self.checkpointer().write_out(&frozen, mark);
        }
        self.group.check()
    }
}
