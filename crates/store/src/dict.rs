//! zstd for saved documents, with a dictionary trained on the store's own
//! documents.
//!
//! One hall's documents share most of their bytes: the schema's field
//! names, the hall's actor, its items, departments and staff. Compressed one
//! by one, a complete case still takes ~1.1 KB; with a dictionary trained on
//! a sample of the store's documents it takes a fraction of that.
//!
//! Once the change feed reaches [`crate::StoreOptions::dictionary_after`]
//! writes, and again each time it grows tenfold from the last training (so
//! the dictionary learns what later documents hold: a young store's cases
//! have few events), a background thread samples the stored documents,
//! trains a dictionary, stores it (`mdict:` + its number: a CRC, the feed
//! position it was trained at, the dictionary) and flushes sled; only then
//! do new saves use it. Every packed document names its dictionary (0:
//! none), and dictionaries are never deleted, so any stored value can
//! always be read; a document moves to the newest at its next compaction.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use zstd::zstd_safe::{self, CCtx, CDict, DCtx, DDict};

/// The key prefix of stored dictionaries.
pub(crate) const DICT_PREFIX: &[u8] = b"mdict:";

/// The size a trained dictionary is given.
const DICT_BYTES: usize = 16 << 10;

/// The most documents sampled to train one.
pub(crate) const SAMPLES: usize = 2_000;

/// zstd's level for saved documents.
const LEVEL: i32 = 3;

/// A dictionary ready for use.
pub(crate) struct Dict {
    number: u32,
    /// The feed position when it was trained.
    trained_at: u64,
    cdict: CDict<'static>,
    ddict: DDict<'static>,
}

impl Dict {
    fn new(number: u32, trained_at: u64, raw: &[u8]) -> Dict {
        Dict {
            number,
            trained_at,
            cdict: CDict::create(raw, LEVEL),
            ddict: DDict::create(raw),
        }
    }
}

/// The dictionaries a store holds, and when to train one.
#[derive(Default)]
pub(crate) struct Dicts {
    by_number: RwLock<BTreeMap<u32, Arc<Dict>>>,
    training: AtomicBool,
    /// No training before this feed position (set after a failed one).
    not_before: AtomicU64,
}

impl std::fmt::Debug for Dicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self.by_number.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Dicts")
            .field("numbers", &map.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

thread_local! {
    static CCTX: std::cell::RefCell<CCtx<'static>> = std::cell::RefCell::new(CCtx::create());
    static DCTX: std::cell::RefCell<DCtx<'static>> = std::cell::RefCell::new(DCtx::create());
}

/// A stored dictionary's value: CRC-32 of the rest, the feed position it
/// was trained at (both big-endian), then the dictionary.
pub(crate) fn stored_form(trained_at: u64, raw: &[u8]) -> Vec<u8> {
    let rest = [&trained_at.to_be_bytes()[..], raw].concat();
    [&crc32fast::hash(&rest).to_be_bytes()[..], &rest].concat()
}

impl Dicts {
    /// Reads the stored dictionaries: `(key, value)` pairs under
    /// [`DICT_PREFIX`], the value without its format byte.
    pub(crate) fn read<'a>(
        stored: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Dicts, String> {
        let mut by_number = BTreeMap::new();
        for (k, v) in stored {
            let number = k
                .strip_prefix(DICT_PREFIX)
                .and_then(|n| <[u8; 4]>::try_from(n).ok())
                .map(u32::from_be_bytes)
                .ok_or("a dictionary key is not a number")?;
            let (crc, rest) = v.split_at_checked(4).ok_or("short dictionary")?;
            if crc != crc32fast::hash(rest).to_be_bytes() {
                return Err(format!("dictionary {number} fails its checksum"));
            }
            let (at, raw) = rest.split_first_chunk::<8>().ok_or("short dictionary")?;
            let dict = Dict::new(number, u64::from_be_bytes(*at), raw);
            by_number.insert(number, Arc::new(dict));
        }
        Ok(Dicts {
            by_number: RwLock::new(by_number),
            ..Dicts::default()
        })
    }

    fn current(&self) -> Option<Arc<Dict>> {
        let map = self.by_number.read().unwrap_or_else(|e| e.into_inner());
        map.values().next_back().cloned()
    }

    fn numbered(&self, number: u32) -> Option<Arc<Dict>> {
        let map = self.by_number.read().unwrap_or_else(|e| e.into_inner());
        map.get(&number).cloned()
    }

    /// The number the next dictionary gets.
    pub(crate) fn next_number(&self) -> u32 {
        self.current().map_or(1, |d| d.number + 1)
    }

    /// Makes a stored (and flushed) dictionary the one new saves use.
    pub(crate) fn install(&self, number: u32, trained_at: u64, raw: &[u8]) {
        let mut map = self.by_number.write().unwrap_or_else(|e| e.into_inner());
        map.insert(number, Arc::new(Dict::new(number, trained_at, raw)));
    }

    /// Whether a dictionary should be trained now, the feed being at `seq`
    /// (first at `first`, then at ten times the last training); if so, the
    /// caller trains one and then calls [`Dicts::trained`].
    pub(crate) fn claim_training(&self, seq: u64, first: u64) -> bool {
        let due = match self.current() {
            _ if first == 0 => false,
            None => seq >= first,
            Some(d) => seq >= d.trained_at.max(first).saturating_mul(10),
        };
        due && seq >= self.not_before.load(Ordering::Relaxed)
            && !self.training.swap(true, Ordering::AcqRel)
    }

    /// Training ended; after a failed one (`ok` false) the next waits until
    /// the feed is `first` writes further on from `seq`.
    pub(crate) fn trained(&self, ok: bool, seq: u64, first: u64) {
        if !ok {
            self.not_before
                .store(seq.saturating_add(first), Ordering::Relaxed);
        }
        self.training.store(false, Ordering::Release);
    }

    /// Compresses a saved document: the dictionary's number (u32
    /// big-endian, 0 for none), then a zstd frame.
    pub(crate) fn pack(&self, saved: &[u8]) -> Result<Vec<u8>, String> {
        let dict = self.current();
        let number = dict.as_ref().map_or(0, |d| d.number);
        frame_after(&number.to_be_bytes(), saved, |c, out| match &dict {
            Some(d) => c.compress_using_cdict(out, saved, &d.cdict),
            None => c.compress(out, saved, LEVEL),
        })
    }

    /// Reads what [`Dicts::pack`] wrote, refusing a frame that claims more
    /// than `max` bytes.
    pub(crate) fn unpack(&self, packed: &[u8], max: u64) -> Result<Vec<u8>, String> {
        let (number, frame) = packed
            .split_first_chunk::<4>()
            .ok_or("shorter than its header")?;
        let number = u32::from_be_bytes(*number);
        let dict = match number {
            0 => None,
            n => Some(
                self.numbered(n)
                    .ok_or(format!("dictionary {n} is missing"))?,
            ),
        };
        decompress(frame, dict.as_deref(), max)
    }
}

/// `header`, then the zstd frame `compress` writes for `src` with this
/// thread's context.
fn frame_after(
    header: &[u8],
    src: &[u8],
    compress: impl FnOnce(&mut CCtx<'static>, &mut [u8]) -> zstd_safe::SafeResult,
) -> Result<Vec<u8>, String> {
    let mut out = vec![0; header.len() + zstd_safe::compress_bound(src.len())];
    out[..header.len()].copy_from_slice(header);
    let written = CCTX
        .with(|c| compress(&mut c.borrow_mut(), &mut out[header.len()..]))
        .map_err(|code| zstd_safe::get_error_name(code).to_string())?;
    out.truncate(header.len() + written);
    Ok(out)
}

/// Compresses `src` into one zstd frame, with no dictionary.
pub(crate) fn compress(src: &[u8], level: i32) -> Result<Vec<u8>, String> {
    frame_after(&[], src, |c, out| c.compress(out, src, level))
}

/// Decompresses one zstd frame (with its dictionary, if any), refusing one
/// that claims more than `max` bytes or delivers fewer than it claims.
pub(crate) fn decompress(frame: &[u8], dict: Option<&Dict>, max: u64) -> Result<Vec<u8>, String> {
    let size = zstd_safe::get_frame_content_size(frame);
    if size > max {
        return Err("its size is missing or too large".into());
    }
    let mut out = Vec::with_capacity(size as usize);
    DCTX.with(|d| {
        let mut d = d.borrow_mut();
        match dict {
            Some(dict) => d.decompress_using_ddict(&mut out, frame, &dict.ddict),
            None => d.decompress(&mut out, frame),
        }
    })
    .map_err(|code| zstd_safe::get_error_name(code).to_string())?;
    if out.len() as u64 != size {
        return Err("shorter than it says".into());
    }
    Ok(out)
}

/// Trains a dictionary on sample documents.
pub(crate) fn train(samples: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    zstd::dict::from_samples(samples, DICT_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionaries_are_trained_at_the_first_mark_then_at_each_tenfold() {
        let d = Dicts::default();
        assert!(!d.claim_training(4_999, 5_000));
        assert!(d.claim_training(5_000, 5_000));
        // One training at a time.
        assert!(!d.claim_training(5_001, 5_000));
        // A failed one is tried again further on.
        d.trained(false, 5_001, 5_000);
        assert!(!d.claim_training(9_999, 5_000));
        assert!(d.claim_training(10_001, 5_000));
        d.install(1, 10_001, b"a dictionary of raw content");
        d.trained(true, 10_001, 5_000);
        assert!(!d.claim_training(100_009, 5_000));
        assert!(d.claim_training(100_010, 5_000));
        assert!(!Dicts::default().claim_training(1 << 40, 0));
    }
}
