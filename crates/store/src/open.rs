//! Opening a store: sled, the format (older ones upgraded in place), the
//! write-ahead log checked and replayed, and what a crash or a full disk
//! may have left half-made.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use crate::cache::DocCache;
use crate::dict::{self, Dicts};
use crate::packed::{self, Blocks};
use crate::wal::{Mark, Op, RecoverError, Wal};
use crate::{
    corrupt, decode, doc_id, encode, seq_of, unversioned, versioned, Head, Store, StoreError,
    StoreOptions, Writer, DERIVED_KEY, FEED, FEED_ID_KEY, FORMAT, FORMAT_3, FORMAT_4, FORMAT_5,
    FORMAT_6, FORMAT_KEY, HEAD, INDEX, MARK_KEY,
};

/// Keys moved into blocks per step of an upgrade.
const UPGRADE_STEP: usize = 20_000;

/// A document's head as formats 3 to 6 kept it, with a case record whose
/// fields the store named; format 7 keeps the caller's terms instead.
#[derive(serde::Deserialize)]
struct HeadBefore7 {
    feed_seq: u64,
    chunks: Vec<u64>,
    case: Option<CaseBefore7>,
    heads: Vec<[u8; 32]>,
}

/// A case record before format 7, read only to be dropped: region, item,
/// category, department, state, accepted, due, concluded, summary.
pub(crate) type CaseBefore7 = (
    String,
    String,
    String,
    String,
    u8,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Vec<u8>,
);

/// Drops what a store before format 7 indexed (the case records in the
/// heads and their index entries) and the derived data's version, so the
/// caller files every document afresh at its next re-derivation. Every
/// step can be redone: a head without a record reads the same in both
/// formats, so an upgrade cut short resumes at the next open.
fn drop_old_index(db: &sled::Db, sled_dir: &Path, blocks: &Blocks) -> Result<(), StoreError> {
    let mut from = vec![HEAD];
    let mut heads = 0;
    loop {
        let step: Vec<(Vec<u8>, Vec<u8>)> = blocks
            .entries(from.clone(), Some(vec![HEAD + 1]))
            .take(UPGRADE_STEP)
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()?;
        let Some((last, _)) = step.last() else {
            break;
        };
        from = last.iter().copied().chain([0]).collect();
        let mut rewritten = Vec::new();
        for (k, v) in &step {
            let id = doc_id(&k[1..])?;
            let old: HeadBefore7 = decode(id.as_str(), v)?;
            if old.case.is_some() {
                let head = Head {
                    feed_seq: old.feed_seq,
                    chunks: old.chunks,
                    index: None,
                    heads: old.heads,
                };
                rewritten.push((k.clone(), encode(id.as_str(), &head)?));
            }
        }
        heads += rewritten.len();
        blocks.fold(
            rewritten
                .iter()
                .map(|(k, v)| (k.as_slice(), Some(v.as_slice()))),
        )?;
        flush(db, sled_dir)?;
    }
    loop {
        let step: Vec<Vec<u8>> = blocks
            .entries(vec![INDEX], Some(vec![INDEX + 1]))
            .take(UPGRADE_STEP)
            .map(|e| e.map(|(k, _)| k.to_vec()))
            .collect::<Result<_, _>>()?;
        if step.is_empty() {
            break;
        }
        blocks.fold(step.iter().map(|k| (k.as_slice(), None)))?;
        flush(db, sled_dir)?;
    }
    blocks.fold([(DERIVED_KEY, None)])?;
    flush(db, sled_dir)?;
    tracing::info!(
        heads,
        "upgrading the data directory: the case index is filed afresh"
    );
    Ok(())
}

/// The directory sled keeps its files in, inside the store's.
const SLED_DIR: &str = "sled";

/// Whether a sled key is one the store writes to sled directly rather than
/// into blocks.
pub(crate) fn direct(k: &[u8]) -> bool {
    k == FORMAT_KEY || k == FEED_ID_KEY || k == MARK_KEY || k.starts_with(dict::DICT_PREFIX)
}

/// Moves a format 3 or 4 store's keys (one sled key each) into blocks.
/// Every step can be redone, so an upgrade cut short resumes at the next
/// open; the format is marked once the log has been replayed too.
fn pack_into_blocks(
    db: &sled::Db,
    sled_dir: &Path,
    tree: &sled::Tree,
    blocks: &Blocks,
) -> Result<(), StoreError> {
    let mut moved = 0;
    loop {
        let step = tree
            .range(vec![packed::BLOCK + 1]..)
            .filter(|kv| kv.as_ref().map_or(true, |(k, _)| !direct(k)))
            .take(UPGRADE_STEP)
            .collect::<Result<Vec<_>, _>>()?;
        if step.is_empty() {
            return Ok(());
        }
        blocks.fold(step.iter().map(|(k, v)| (k.as_ref(), Some(v.as_ref()))))?;
        flush(db, sled_dir)?;
        for (k, _) in &step {
            tree.remove(k)?;
        }
        moved += step.len();
        tracing::info!(
            moved,
            "upgrading the data directory: keys packed into blocks"
        );
    }
}

/// Removes what sled leaves half-made when a write fails or the power goes
/// while it writes a snapshot: it writes `snap.<lsn>.generating` and renames
/// it once complete, but sled 0.34 takes the newest `snap.*` file as its
/// snapshot, and an empty or partial one stops every later open ("Read
/// corrupted data"). A file still called `.generating` is never the real
/// snapshot (that one was renamed, or the previous one stands).
fn remove_half_made(sled_dir: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(sled_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            tracing::warn!(file = %entry.path().display(), "removing a snapshot sled did not finish writing (the disk was full or the power went)");
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Flushes sled and makes what it wrote durable. sled 0.34's flush writes
/// with `sync_file_range` alone, which leaves the drive's cache (and, for
/// a file it just created or grew, the file's size and blocks) to chance on
/// a power cut; the store deletes log segments on the strength of this
/// flush, so it syncs sled's file and directory itself.
pub(crate) fn flush(db: &sled::Db, sled_dir: &Path) -> Result<(), StoreError> {
    db.flush()?;
    let sync = |p: &Path| std::fs::File::open(p).and_then(|f| f.sync_all());
    sync(&sled_dir.join("db"))
        .and_then(|()| sync(sled_dir))
        .map_err(|e| StoreError::io(sled_dir, e))
}

/// Opens sled in `dir`, waiting briefly for a previous holder to let go.
fn open_sled(path: &Path, options: &StoreOptions) -> Result<sled::Db, StoreError> {
    // sled reclaims the space of rewritten blocks only on its periodic
    // flusher thread (which moves what is still live out of mostly dead
    // segments); the store's own durability does not depend on it.
    let config = sled::Config::new()
        .path(path.join(SLED_DIR))
        .cache_capacity(options.sled_cache_bytes)
        .flush_every_ms(Some(500));
    // sled releases its file lock only when its last background thread
    // lets go of a closed database, a moment after the close returns: a
    // quick reopen (a restart) waits for that instead of failing.
    let patience = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(io))
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                if std::time::Instant::now() > patience {
                    return Err(StoreError::Locked(path.to_path_buf()));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(sled::Error::Io(e)) => return Err(StoreError::io(&path.join(SLED_DIR), e)),
            // sled names damage to its files as it finds it, at times as an
            // old version ("created using a sled version earlier than 0.29").
            Err(other) => {
                return Err(StoreError::DbDamaged(format!(
                    "sled cannot open them: {}",
                    match StoreError::from(other) {
                        StoreError::DbDamaged(why) | StoreError::Db(why) => why,
                        e => e.to_string(),
                    }
                )))
            }
        }
    }
}

impl Store {
    /// Creates a store in the directory `path`, or opens the one a creation
    /// cut short left there.
    pub fn create(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(path).map_err(|e| StoreError::io(path, e))?;
        Store::open_dir(path, options, true)
    }

    /// Opens the store in the directory `path`, replaying the write-ahead
    /// log over sled. A store that is not there (or whose files are gone)
    /// is reported, never replaced by an empty one.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        if !path.join(SLED_DIR).is_dir() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        Store::open_dir(path, options, false)
    }

    fn open_dir(path: &Path, options: StoreOptions, new: bool) -> Result<Store, StoreError> {
        let sled_dir = path.join(SLED_DIR);
        remove_half_made(&sled_dir).map_err(|e| StoreError::io(path, e))?;
        let db = open_sled(path, &options)?;
        let tree = db.open_tree("hallsync")?;
        let blocks = Arc::new(Blocks::new(tree.clone()));
        let format = match tree.get(FORMAT_KEY)?.as_deref() {
            None if !new => return Err(StoreError::Missing(path.to_path_buf())),
            None => None,
            Some([f @ (FORMAT | FORMAT_6 | FORMAT_5 | FORMAT_4 | FORMAT_3)]) => Some(*f),
            Some([found]) if *found > FORMAT => {
                return Err(StoreError::NewerFormat { found: *found })
            }
            Some([found]) => return Err(StoreError::OlderFormat { found: *found }),
            Some(other) => return Err(corrupt("meta/format", format!("unexpected {other:?}"))),
        };
        let started = std::time::Instant::now();
        if matches!(format, Some(FORMAT_4 | FORMAT_3)) {
            pack_into_blocks(&db, &sled_dir, &tree, &blocks)?;
        }
        let mark = match tree.get(MARK_KEY)? {
            Some(v) => {
                Some(Mark::decode(&v).ok_or_else(|| corrupt("meta/log mark", "not 16 bytes"))?)
            }
            None if format.is_some_and(|f| f >= FORMAT_6) => {
                return Err(corrupt(
                    "meta/log mark",
                    "it is missing, so the write-ahead log cannot be checked",
                ))
            }
            None => None,
        };
        // Log records carry sequence numbers since format 6.
        let legacy = format.is_some_and(|f| f < FORMAT_6);
        let recovered =
            Wal::recover(path, mark, legacy, options.accept_log_loss).map_err(|e| match e {
                RecoverError::Io(e) => StoreError::io(path, e),
                RecoverError::Lost(why) => StoreError::LogDamaged(why),
            })?;
        if !recovered.records.is_empty() {
            tracing::info!(
                records = recovered.records.len(),
                "replaying the write-ahead log"
            );
            let mut latest = BTreeMap::new();
            for op in recovered.records.iter().flatten() {
                match op {
                    Op::Put(k, v) => latest.insert(k.as_slice(), Some(v.as_slice())),
                    Op::Del(k) => latest.insert(k.as_slice(), None),
                };
            }
            blocks.fold(latest)?;
        }
        // The log goes on in a new segment, so a new record never lands
        // behind a torn tail. A spare segment holds what a checkpoint
        // covers, even when the memtable grew to twice its bound before one
        // started. The mark naming the new segment is written only once the
        // segment exists, and the old segments go once sled holds their
        // records and the mark.
        let spare = options.memtable_bytes.saturating_mul(2).min(64 << 20);
        let wal =
            Wal::start(path, recovered.next_segment, spare).map_err(|e| StoreError::io(path, e))?;
        tree.insert(
            MARK_KEY,
            &Mark {
                segment: recovered.next_segment,
                lsn: recovered.last_lsn,
            }
            .encode(),
        )?;
        let feed_id = match tree.get(FEED_ID_KEY)? {
            Some(v) => unversioned("meta/feed id", &v)?
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt("meta/feed id", "not 8 bytes"))?,
            None => {
                let id = rand::random::<u64>().max(1);
                tree.insert(FEED_ID_KEY, versioned(&id.to_be_bytes()))?;
                id
            }
        };
        if format.is_some_and(|f| f < FORMAT) {
            drop_old_index(&db, &sled_dir, &blocks)?;
        }
        tree.insert(FORMAT_KEY, &[FORMAT])?;
        flush(&db, &sled_dir)?;
        wal.remove_before(recovered.next_segment)
            .map_err(|e| StoreError::io(path, e))?;
        if let Some(old) = format.filter(|f| *f < FORMAT) {
            tracing::warn!(
                ms = started.elapsed().as_millis() as u64,
                "upgraded the data directory from store format {old} to {FORMAT} ({}{}{}the index filed afresh); hallsync builds older than this one can no longer open it",
                if old <= FORMAT_5 { "log records numbered, " } else { "" },
                if old <= FORMAT_4 { "records packed into blocks, " } else { "" },
                if old == FORMAT_3 { "saved documents compressed, " } else { "" },
            );
        }
        let last = match blocks.last_below(&[FEED + 1])? {
            Some((k, _)) if k.first() == Some(&FEED) => seq_of(&k)?,
            _ => 0,
        };
        let dicts = Dicts::read(
            tree.scan_prefix(dict::DICT_PREFIX)
                .collect::<Result<Vec<_>, _>>()?
                .iter()
                .map(|(k, v)| Ok((k.as_ref(), unversioned("meta/dictionary", v)?)))
                .collect::<Result<Vec<_>, StoreError>>()?,
        )
        .map_err(|e| corrupt("meta/dictionary", e))?;
        let cache = DocCache::new(options.cache_docs);
        let store = Store {
            db,
            sled_dir,
            tree,
            blocks,
            wal: Arc::new(wal),
            mem: Arc::default(),
            background: Mutex::new(None),
            dicts: Arc::new(dicts),
            trainer: Mutex::new(None),
            options,
            writer: Mutex::new(Writer {
                seq: last + 1,
                lsn: recovered.last_lsn + 1,
                rows: Default::default(),
            }),
            group: Arc::default(),
            durable_feed: AtomicU64::new(last),
            listeners: Default::default(),
            cache,
            feed_id,
            discarded: recovered.discarded,
            noted: Mutex::default(),
            notes_changed: AtomicU64::new(0),
        };
        let noted = crate::aside::noted(&store)?;
        *store.noted.lock().unwrap_or_else(|e| e.into_inner()) = noted;
        let rows = store.rows()?;
        store.writer.lock().unwrap_or_else(|e| e.into_inner()).rows = rows;
        store.rebuild_tallies_if_stale()?;
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_written_sled_snapshot_is_removed_and_a_finished_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("snap.0000000000001234.generating"), []).unwrap();
        std::fs::write(dir.path().join("snap.0000000000001000"), b"kept").unwrap();
        std::fs::write(dir.path().join("db"), b"kept").unwrap();
        remove_half_made(dir.path()).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["db", "snap.0000000000001000"]);
        remove_half_made(&dir.path().join("absent")).unwrap();
    }
}
