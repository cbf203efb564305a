//! Documents set aside in replication: one a peer sent that this node
//! refused, or one this node sent that a peer refused. A refused document
//! does not stop a link; it is noted here, with the reason, until a later
//! version is accepted (or, for one a peer refused, until it changes here),
//! so both ends can show it.
//!
//! Each note is a logical key `mq` + direction + peer + `\0` + document id,
//! whose value is the refused heads, the reason and when. The store keeps
//! the set of noted keys in memory, so a commit can clear a note without a
//! lookup per document.

use std::collections::BTreeSet;

use automerge::ChangeHash;
use hallsync_model::DocId;
use serde::{Deserialize, Serialize};

use crate::wal::Op;
use crate::{corrupt, decode, doc_id, encode, Store, StoreError};

const PREFIX: &[u8] = b"mq";

/// Which way a set-aside document went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// The peer sent it; this node refused it.
    Refused,
    /// This node sent it; the peer refused it.
    RefusedByPeer,
}

impl Direction {
    fn tag(self) -> u8 {
        match self {
            Direction::Refused => b'i',
            Direction::RefusedByPeer => b'o',
        }
    }

    fn of(tag: u8) -> Option<Direction> {
        match tag {
            b'i' => Some(Direction::Refused),
            b'o' => Some(Direction::RefusedByPeer),
            _ => None,
        }
    }
}

/// A document set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Which way it went.
    pub direction: Direction,
    /// The peer (node id).
    pub peer: String,
    /// The document.
    pub id: DocId,
    /// The heads of the version refused.
    pub heads: Vec<ChangeHash>,
    /// Why it was refused.
    pub reason: String,
    /// When (Unix seconds).
    pub at: i64,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    heads: Vec<[u8; 32]>,
    reason: String,
    at: i64,
}

/// Whether a key is a note's.
pub(crate) fn is_note(k: &[u8]) -> bool {
    k.starts_with(PREFIX)
}

pub(crate) fn key(direction: Direction, peer: &str, id: &DocId) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.push(direction.tag());
    k.extend_from_slice(peer.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

/// The operation that notes `a`.
pub(crate) fn put(a: &SetAside) -> Result<Op, StoreError> {
    let k = key(a.direction, &a.peer, &a.id);
    let v = encode(
        "set-aside note",
        &Stored {
            heads: a.heads.iter().map(|h| h.0).collect(),
            reason: a.reason.clone(),
            at: a.at,
        },
    )?;
    Ok(Op::Put(k, v))
}

fn parse(k: &[u8], v: &[u8]) -> Result<SetAside, StoreError> {
    let bad = || corrupt("set-aside note", "malformed key");
    let rest = k.strip_prefix(PREFIX).ok_or_else(bad)?;
    let (&tag, rest) = rest.split_first().ok_or_else(bad)?;
    let direction = Direction::of(tag).ok_or_else(bad)?;
    let cut = rest.iter().position(|&b| b == 0).ok_or_else(bad)?;
    let peer = std::str::from_utf8(&rest[..cut]).map_err(|_| bad())?;
    let stored: Stored = decode("set-aside note", v)?;
    Ok(SetAside {
        direction,
        peer: peer.to_string(),
        id: doc_id(&rest[cut + 1..])?,
        heads: stored.heads.into_iter().map(ChangeHash).collect(),
        reason: stored.reason,
        at: stored.at,
    })
}

/// The keys of every note, read at open.
pub(crate) fn noted(store: &Store) -> Result<BTreeSet<Vec<u8>>, StoreError> {
    store.scan(PREFIX).map(|kv| kv.map(|(k, _)| k)).collect()
}

impl Store {
    /// A number that changes whenever a note is written or deleted.
    pub fn set_aside_generation(&self) -> u64 {
        self.notes_changed
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Every document set aside, in either direction.
    pub fn set_aside(&self) -> Result<Vec<SetAside>, StoreError> {
        self.scan(PREFIX)
            .map(|kv| kv.and_then(|(k, v)| parse(&k, &v)))
            .collect()
    }

    /// Notes documents this node sent that a peer refused, durably.
    pub fn note_refused_by_peer(&self, notes: &[SetAside]) -> Result<(), StoreError> {
        let ops = notes.iter().map(put).collect::<Result<Vec<_>, _>>()?;
        self.commit_raw(ops)
    }

    /// Forgets notes (e.g. of documents that have changed since a peer
    /// refused them), durably.
    pub fn forget_set_aside(&self, notes: &[SetAside]) -> Result<(), StoreError> {
        let ops = notes
            .iter()
            .map(|a| Op::Del(key(a.direction, &a.peer, &a.id)))
            .collect();
        self.commit_raw(ops)
    }
}
