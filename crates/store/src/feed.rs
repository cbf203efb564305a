//! The change feed: each write of a document takes the next sequence
//! number; a peer asks for what came after the sequence number it reached
//! (its checkpoint).

use automerge::ChangeHash;
use hallsync_model::DocId;

use crate::*;

/// How far one node has applied another's change feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The identity of the feed counted in (0: none yet).
    pub feed: u64,
    /// The sequence number reached.
    pub seq: u64,
}

/// A document's newest entry in the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Its sequence number.
    pub seq: u64,
    /// The document.
    pub id: DocId,
    /// The document's Automerge heads as of this entry.
    pub heads: Vec<ChangeHash>,
    /// The peer whose copy this entry is exactly (it came from that peer
    /// and nothing was added here): no need to offer it back.
    pub origin: Option<String>,
}

/// A feed entry: the doc id, the origin (the peer whose state this entry
/// is exactly, or empty), then the chunk's bytes (none for a marker).
pub(crate) fn feed_value(id: &DocId, origin: Option<&str>, bytes: &[u8]) -> Vec<u8> {
    let idb = id.as_str().as_bytes();
    let ob = origin.unwrap_or("").as_bytes();
    let mut v = Vec::with_capacity(3 + idb.len() + ob.len() + bytes.len());
    v.push(VALUES);
    v.push(idb.len() as u8);
    v.extend_from_slice(idb);
    v.push(ob.len() as u8);
    v.extend_from_slice(ob);
    v.extend_from_slice(bytes);
    v
}

/// A parsed feed entry value.
pub(crate) struct FeedValue<'a> {
    pub(crate) id: DocId,
    pub(crate) origin: Option<String>,
    pub(crate) bytes: &'a [u8],
}

/// The changes chunk `seq` holds, checked to be `id`'s.
pub(crate) fn chunk_changes<'a>(id: &DocId, seq: u64, v: &'a [u8]) -> Result<&'a [u8], StoreError> {
    let FeedValue {
        id: owner, bytes, ..
    } = parse_feed_value(v)?;
    if owner != *id {
        return Err(corrupt(
            id.as_str(),
            format!("chunk {seq} belongs to {owner}"),
        ));
    }
    Ok(bytes)
}

pub(crate) fn parse_feed_value(v: &[u8]) -> Result<FeedValue<'_>, StoreError> {
    pub(crate) fn field(rest: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
        let (&n, rest) = rest
            .split_first()
            .ok_or_else(|| corrupt("feed", "short entry"))?;
        let n = usize::from(n);
        if rest.len() < n {
            return Err(corrupt("feed", "short entry"));
        }
        Ok(rest.split_at(n))
    }
    let rest = unversioned("feed", v)?;
    let (id, rest) = field(rest)?;
    let (origin, bytes) = field(rest)?;
    let origin = std::str::from_utf8(origin).map_err(|_| corrupt("feed", "origin is not text"))?;
    Ok(FeedValue {
        id: doc_id(id)?,
        origin: (!origin.is_empty()).then(|| origin.to_string()),
        bytes,
    })
}

impl Store {
    /// Feed entries after `after`: (sequence number, doc id), oldest first,
    /// at most `limit`. Each document appears once, at its newest change.
    pub fn feed_since(&self, after: u64, limit: usize) -> Result<Vec<(u64, DocId)>, StoreError> {
        Ok(self
            .feed_entries(after, u64::MAX, limit)?
            .0
            .into_iter()
            .map(|e| (e.seq, e.id))
            .collect())
    }

    /// Feed entries in `(after, upto]` with the document's heads, oldest
    /// first, at most `limit`; each document once, at its newest change.
    /// Also returns how far the scan got: every entry up to it was seen.
    pub fn feed_entries(
        &self,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<(Vec<FeedEntry>, u64), StoreError> {
        let mut out = Vec::new();
        let end = match upto.checked_add(1) {
            Some(n) => feed_key(n),
            None => key(FEED + 1, &[]),
        };
        let mut scanned = upto;
        for kv in self
            .mem
            .range(&self.blocks, feed_key(after.saturating_add(1)), Some(end))
        {
            let (k, v) = kv?;
            let seq = seq_of(&k)?;
            if out.len() >= limit {
                scanned = seq - 1;
                break;
            }
            let FeedValue { id, origin, .. } = parse_feed_value(&v)?;
            if let Some(h) = self.head(&id)?.filter(|h| h.feed_seq == seq) {
                out.push(FeedEntry {
                    seq,
                    id,
                    heads: h.heads.into_iter().map(ChangeHash).collect(),
                    origin,
                });
            }
        }
        Ok((out, scanned))
    }

    /// How far this node has applied `peer`'s change feed (zero: nothing
    /// yet).
    pub fn peer_checkpoint(&self, peer: &str) -> Result<Checkpoint, StoreError> {
        let Some(v) = self.get(&peer_key(peer))? else {
            return Ok(Checkpoint::default());
        };
        let v = unversioned("peer checkpoint", &v)?;
        let (feed, seq) = (v.get(..8), v.get(8..16));
        match (feed, seq, v.len()) {
            (Some(f), Some(s), 16) => Ok(Checkpoint {
                feed: u64::from_be_bytes(f.try_into().unwrap_or_default()),
                seq: u64::from_be_bytes(s.try_into().unwrap_or_default()),
            }),
            _ => Err(corrupt("peer checkpoint", "not 16 bytes")),
        }
    }

    /// This store's feed identity (random, fixed at creation).
    pub fn feed_id(&self) -> u64 {
        self.feed_id
    }
}
