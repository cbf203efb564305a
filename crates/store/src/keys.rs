//! The store's logical keys (a one-byte prefix, then the rest) and the
//! framing of its values: a format byte, and saved documents compressed.

use std::borrow::Cow;

use hallsync_model::DocId;
use serde::{Deserialize, Serialize};

use crate::dict::{self, Dicts};
use crate::{StoreError, FORMAT_3, FORMAT_4, MAX_SAVED, VALUES};

pub(crate) const DOC: u8 = b'd';

pub(crate) const HEAD: u8 = b'h';

pub(crate) const FEED: u8 = b'c';

pub(crate) const INDEX: u8 = b'x';

/// This node's own records (never replicated).
pub(crate) const LOCAL: u8 = b'l';

pub(crate) const FORMAT_KEY: &[u8] = b"mformat";

pub(crate) const FEED_ID_KEY: &[u8] = b"mfeedid";

/// The log's mark (see `wal.rs`), written to sled directly.
pub(crate) const MARK_KEY: &[u8] = b"mwalmark";

pub(crate) const PEER_PREFIX: &[u8] = b"mpeer:";

/// The version of the derived data, a logical key.
pub(crate) const DERIVED_KEY: &[u8] = b"mderived";

pub(crate) fn key(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(rest.len() + 1);
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

pub(crate) fn feed_key(seq: u64) -> Vec<u8> {
    key(FEED, &seq.to_be_bytes())
}

pub(crate) fn peer_key(peer: &str) -> Vec<u8> {
    let mut k = PEER_PREFIX.to_vec();
    k.extend_from_slice(peer.as_bytes());
    k
}

pub(crate) fn versioned(payload: &[u8]) -> Vec<u8> {
    key(VALUES, payload)
}

pub(crate) fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.into(),
        reason: reason.into(),
    }
}

pub(crate) fn unversioned<'a>(key: &str, v: &'a [u8]) -> Result<&'a [u8], StoreError> {
    match v.split_first() {
        Some((&(VALUES | FORMAT_4 | FORMAT_3), rest)) => Ok(rest),
        Some((other, _)) => Err(corrupt(key, format!("unknown value format {other}"))),
        None => Err(corrupt(key, "empty value")),
    }
}

/// A saved document as stored: zstd-compressed (see `dict.rs`), which makes
/// Automerge's own column compression unnecessary (see
/// [`Loaded::prepare`]).
pub(crate) fn pack_saved(key: &str, saved: &[u8], dicts: &Dicts) -> Result<Vec<u8>, StoreError> {
    // What could not be read back is not written.
    if saved.len() as u64 > MAX_SAVED {
        return Err(StoreError::TooLarge {
            key: key.to_string(),
            bytes: saved.len(),
        });
    }
    dicts
        .pack(saved)
        .map(|packed| versioned(&packed))
        .map_err(|e| StoreError::Durability(format!("could not compress {key}: {e}")))
}

/// The saved document in a stored value (format 3 kept it as it was,
/// format 4 as a zstd frame with no dictionary).
pub(crate) fn unpack_saved<'a>(
    key: &str,
    v: &'a [u8],
    dicts: &Dicts,
) -> Result<Cow<'a, [u8]>, StoreError> {
    let saved = match v.split_first() {
        Some((&FORMAT_3, rest)) => return Ok(Cow::Borrowed(rest)),
        Some((&FORMAT_4, frame)) => dict::decompress(frame, None, MAX_SAVED),
        Some((&VALUES, packed)) => dicts.unpack(packed, MAX_SAVED),
        Some((other, _)) => return Err(corrupt(key, format!("unknown value format {other}"))),
        None => return Err(corrupt(key, "empty value")),
    };
    saved
        .map(Cow::Owned)
        .map_err(|e| corrupt(key, format!("saved document: {e}")))
}

pub(crate) fn encode<T: Serialize>(key: &str, v: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(v)
        .map(|b| versioned(&b))
        .map_err(|e| corrupt(key, e.to_string()))
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(key: &str, v: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(unversioned(key, v)?).map_err(|e| corrupt(key, e.to_string()))
}

/// Orders signed times as bytes.
pub(crate) fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn doc_id(key: &[u8]) -> Result<DocId, StoreError> {
    std::str::from_utf8(key)
        .ok()
        .and_then(|s| DocId::parse(s).ok())
        .ok_or_else(|| corrupt(&String::from_utf8_lossy(key), "not a document id"))
}

pub(crate) fn seq_of(k: &[u8]) -> Result<u64, StoreError> {
    k.get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("feed", "a sequence number is not 8 bytes"))
}
