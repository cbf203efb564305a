//! A test filesystem for power cuts: a FUSE passthrough over a backing
//! directory that models a disk with a volatile write cache under ext4
//! (`data=ordered`, barriers on), as on a hall PC. SIGKILL keeps the page
//! cache; a power cut does not. Mounted over a temporary directory, it lets
//! a test kill a writer and then [`PowerCut::cut`] the power: what the
//! writer made durable stays, the rest is gone (or, in torn mode, partly
//! written).
//!
//! The backing directory holds, at every moment, exactly what the disk
//! would hold if the power went then; everything else lives in the layer's
//! memory and is what processes see through the mount on top of it.
//!
//! # The model
//!
//! **File data** is kept in 4 KiB pages. A page written but not yet made
//! durable is held in memory (reads through the mount see it): it is *in
//! the disk's cache*, and survives only a flush. Every write reaches the
//! layer as the process makes it: the mount does not use FUSE's writeback
//! cache, under which the kernel writes a `sync_file_range` range back to
//! the layer asynchronously, so a later `fsync` of another file can arrive
//! first, an order a real disk never shows (sled's snapshot, synced after
//! its log was `sync_file_range`d, then points past log data the cut
//! dropped: the first long run, with the writeback cache, failed that way).
//! What a flush covers is chosen by [`Flush`]:
//!
//! - [`Flush::Disk`] (the default, and what ext4 does): every `fsync`,
//!   `fdatasync` and directory `fsync` ends in a cache flush of the whole
//!   disk (the journal commit's pre-flush, or an explicit one when there is
//!   nothing to commit), so the pages of *every* file become durable, not
//!   just the synced one's. This is what makes sled's `Db::flush` durable
//!   on ext4: it only calls `sync_file_range` (which writes to the disk's
//!   cache and flushes nothing), and its data is made durable by the next
//!   flush anyone issues, such as the store's log `fdatasync` or its
//!   directory `fsync` after deleting log segments.
//! - [`Flush::File`] (strict POSIX): only the synced file's pages. Under it
//!   sled's `Db::flush` makes nothing durable; only sled's own periodic
//!   `fsync` does, and the store, which deletes log segments once sled's
//!   flush returns, loses acknowledged writes at the first cut (the hall's
//!   ignored `strict_posix_power_cuts_lose_no_acknowledged_write`).
//!
//! Pages past a file's durable size wait for the journal (below), which
//! commits sizes; a synced file's own pages are all durable after its sync.
//!
//! **Names and sizes** (create, mkdir, unlink, rmdir, rename, truncation and
//! growth) go into one ordered journal, as ext4's metadata does, and become
//! durable only together, at a *commit*, in the order they were made: after
//! a cut the tree is as it was at the last commit, never a later operation
//! without an earlier one. A commit also writes, before the sizes it
//! commits, the data that lies past each file's old size (`data=ordered`:
//! a grown file never shows a tail it did not have). A commit happens
//! where ext4 forces one:
//!
//! - `fsync` of a directory with a pending change in it;
//! - `fsync` of a file with any pending change (written, resized, renamed
//!   or created since the last commit: ext4 logs the file's times too);
//! - `fdatasync` of a file that was created or resized since the last
//!   commit — but not of one only renamed, or only overwritten inside its
//!   size (a preallocated log): then the disk is flushed and nothing is
//!   committed, and a rename not followed by a directory `fsync` is lost.
//!
//! This is the strict part: a new name or rename is durable only once
//! something commits the journal, and a writer that renames a file, then
//! only `fdatasync`s it, loses the rename. It is also where the model
//! follows ext4 rather than POSIX: POSIX asks for `fsync` of the directory
//! itself, while ext4's journal is global, so any commit (another file's
//! `fsync` included) makes every earlier name durable. sled 0.34 never
//! syncs a directory: it creates `db`, `conf`, `blobs/` and snapshots
//! (written, synced, renamed from `*.generating`) and relies on later
//! commits; under strict POSIX those names could vanish, on ext4 they
//! cannot once anything commits, which its own periodic `fsync` of `db`
//! does within half a second. So the model commits as ext4 does.
//!
//! Not modelled: ext4's periodic journal commit (every 5 s): the cut
//! always falls where no more was committed than the syncs forced, which is
//! the worst case for names and sizes; attributes (mode, times) are not
//! kept across a cut; hard links, symlinks and special files are not
//! supported. Written data is in the disk's cache at once, so data never
//! synced is made durable by the next flush anywhere, where ext4 might have
//! kept it in the page cache for up to 30 s. For sled's log (`db`) this is
//! exact, as sled follows every write of it with `sync_file_range`; it is
//! lenient for files written with no sync at all: sled's `conf` and blob
//! files (the power-cut test counts the blob files; it has seen none).
//!
//! **A cut** ([`PowerCut::cut`]) waits for every file to be closed (kill the
//! writers first), unmounts, drops the journal's pending entries and every
//! unsynced page, and mounts again. With [`Cut::Torn`] a random subset of
//! the unsynced pages inside each file's durable size (each with
//! probability 1/2, from a seeded generator so a failure reproduces) is
//! written to the backing file first: a disk that wrote part of its cache,
//! out of order, before the power went. The journal is never torn.
//!
//! Mounting needs `/dev/fuse` and the right to call `mount(2)` (root): the
//! crate uses `fuser` without libfuse or `fusermount`. Callers skip when
//! [`PowerCut::mount`] fails.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod disk;
mod fs;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use disk::Disk;

/// What one `fsync`, `fdatasync` or directory `fsync` flushes out of the
/// disk's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flush {
    /// Every file's pages: ext4 flushes the whole disk cache on every sync.
    #[default]
    Disk,
    /// The synced file's pages only (strict POSIX).
    File,
}

/// How the power goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Everything not durable is lost.
    Clean,
    /// A random subset of the unsynced pages (inside each file's durable
    /// size) reached the disk; the rest is lost.
    Torn {
        /// Seeds the choice of pages.
        seed: u64,
    },
}

/// What a cut dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Unsynced pages lost.
    pub pages_lost: usize,
    /// Unsynced pages that reached the disk anyway (torn mode).
    pub pages_kept: usize,
    /// Journal entries (names) lost.
    pub journal_entries_lost: usize,
}

/// A mounted power-cut filesystem. Dropping it unmounts.
#[derive(Debug)]
pub struct PowerCut {
    disk: Arc<Mutex<Disk>>,
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
}

/// How long a cut waits for files to be closed.
const CLOSE_PATIENCE: Duration = Duration::from_secs(20);

impl PowerCut {
    /// Mounts the layer over `backing` (whose content is taken as durable)
    /// at `mountpoint`, an empty directory.
    pub fn mount(backing: &Path, mountpoint: &Path, flush: Flush) -> io::Result<PowerCut> {
        let disk = Arc::new(Mutex::new(Disk::load(backing, flush)?));
        let session = fs::mount(Arc::clone(&disk), mountpoint)?;
        Ok(PowerCut {
            disk,
            session: Some(session),
            mountpoint: mountpoint.to_path_buf(),
        })
    }

    /// Where the layer is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts the power and brings the disk back: waits until no file on the
    /// mount is open (every writer must be dead or done), unmounts, drops
    /// what is not durable (see [`Cut`]) and mounts again.
    pub fn cut(&mut self, cut: Cut) -> io::Result<CutReport> {
        let deadline = Instant::now() + CLOSE_PATIENCE;
        while self.disk().handles > 0 {
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{} files are still open on the mount: kill the writers before cutting the power",
                    self.disk().handles
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.disk().powered = false;
        if let Some(session) = self.session.take() {
            session.umount_and_join()?;
        }
        let report = self.disk().cut(match cut {
            Cut::Clean => None,
            Cut::Torn { seed } => Some(seed),
        })?;
        self.session = Some(fs::mount(Arc::clone(&self.disk), &self.mountpoint)?);
        Ok(report)
    }

    /// Unmounts, keeping what is durable and what is not alike in the
    /// backing directory's state as it stands (nothing more is written).
    pub fn unmount(mut self) -> io::Result<()> {
        match self.session.take() {
            Some(session) => session.umount_and_join(),
            None => Ok(()),
        }
    }
}

impl Drop for PowerCut {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}

#[cfg(test)]
mod tests;
