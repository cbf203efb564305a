//! A node's backup (`hallsync backup`) and its restore on a new data
//! directory (`hallsync restore --from`).
//!
//! A backup file is `MAGIC`, then frames of one kind byte, a 4-byte
//! big-endian length and the payload: the node (`n`, JSON: id, name,
//! region, level, when taken), each document as stored (`d`: a 2-byte id
//! length, the id, the Automerge bytes), each of the node's own records
//! (`l`: operators with their password hashes, a rules draft …; a 2-byte
//! key length, the key, the value), and an end (`e`, JSON: the counts), so
//! a truncated file is told from a whole one. Documents are read one at a
//! time while the node works on: each is whole as of the moment it is read,
//! and all those durable when the backup began are in it.
//!
//! A restore makes a new node with the same identity and a new Automerge
//! actor (the old one may have written changes after the backup that its
//! parent holds; reusing it would make two different changes with one
//! name), then takes every document in through the checks of
//! `doc import`. It refuses a directory that holds a node, and leaves
//! nothing behind when it fails.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use hallsync_model::order::Source;
use hallsync_model::registry::RestoreSource;
use hallsync_model::{DocId, Level, NodeId, RegionCode, Ts};
use hallsync_store::StoreOptions;
use serde::{Deserialize, Serialize};

use crate::{Hall, HallError, NODE_FILE, RESTORE_PARTIAL_DIR, STORE_DIR};

/// The first bytes of every backup file.
const MAGIC: &[u8] = b"HALLSYNC BACKUP 1\n";
/// The largest frame a backup may hold (a document is far smaller).
const MAX_FRAME: usize = 64 << 20;

/// What a backup holds, and what a restore brought back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    /// The node backed up.
    pub node: NodeId,
    /// Its region.
    pub region: RegionCode,
    /// When the backup was taken.
    pub taken_at: Ts,
    /// Documents.
    pub documents: u64,
    /// The node's own records.
    pub local_records: u64,
}

#[derive(Serialize, Deserialize)]
struct NodeFrame {
    id: NodeId,
    name: String,
    region: RegionCode,
    level: Level,
    taken_at: Ts,
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct EndFrame {
    documents: u64,
    local_records: u64,
}

fn frame(w: &mut impl Write, kind: u8, parts: &[&[u8]]) -> std::io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len)
        .ok()
        .filter(|l| *l as usize <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other(format!("a frame of {len} bytes is too large")))?;
    w.write_all(&[kind])?;
    w.write_all(&len.to_be_bytes())?;
    parts.iter().try_for_each(|p| w.write_all(p))
}

/// A 2-byte length, then the bytes.
fn short(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("a key of more than 65,535 bytes"))?;
    let mut v = len.to_be_bytes().to_vec();
    v.extend_from_slice(bytes);
    Ok(v)
}

fn bad(reason: impl Into<String>) -> HallError {
    HallError::BadInput(format!("not a usable hallsync backup: {}", reason.into()))
}

/// Reads the next frame; `None` at the end of the input.
fn next_frame(r: &mut impl Read) -> Result<Option<(u8, Vec<u8>)>, HallError> {
    let mut kind = [0u8; 1];
    match r.read(&mut kind) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(bad(format!("reading it failed: {e}"))),
    }
    let mut len = [0u8; 4];
    r.read_exact(&mut len)
        .map_err(|_| bad("it ends inside a frame (truncated)"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(bad(format!(
            "a frame claims {len} bytes, more than the {MAX_FRAME} a backup holds"
        )));
    }
    let mut payload = Vec::new();
    r.take(len as u64)
        .read_to_end(&mut payload)
        .map_err(|e| bad(format!("reading it failed: {e}")))?;
    if payload.len() != len {
        return Err(bad("it ends inside a frame (truncated)"));
    }
    Ok(Some((kind[0], payload)))
}

/// Splits a 2-byte-length-prefixed part off `payload`.
fn split_short(payload: &[u8]) -> Result<(&[u8], &[u8]), HallError> {
    let (len, rest) = payload
        .split_first_chunk::<2>()
        .ok_or_else(|| bad("a frame is too short"))?;
    let len = u16::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad("a frame is too short for the key it names"));
    }
    Ok(rest.split_at(len))
}

/// Documents of a backup stored in one commit, at most.
const BATCH_DOCS: usize = 256;
/// Bytes of a backup's documents stored in one commit, at most (about).
const BATCH_BYTES: usize = 8 << 20;

/// A backup's documents read and not yet stored.
#[derive(Default)]
struct Batch {
    docs: Vec<(DocId, Vec<u8>)>,
    bytes: usize,
}

impl Hall {
    /// Stores `batch` in one commit, checked as an import checks it, and
    /// empties it; how many it held.
    fn restore_batch(&self, batch: &mut Batch, now: Ts) -> Result<u64, HallError> {
        let docs = std::mem::take(batch).docs;
        if docs.is_empty() {
            return Ok(0);
        }
        let files: Vec<&[u8]> = docs.iter().map(|(_, b)| b.as_slice()).collect();
        let stored = self
            .import_many(&files, now, Source::Own)
            .map_err(|(at, e)| {
                HallError::BadInput(format!("the backup's {} was refused: {e}", docs[at].0))
            })?;
        if let Some(((named, _), stored)) = docs.iter().zip(&stored).find(|((n, _), s)| n != *s) {
            return Err(bad(format!("the frame of {named} holds {stored}")));
        }
        Ok(docs.len() as u64)
    }

    /// Writes a backup of this node to `w`: every document as stored and
    /// the node's own records, while the node works on.
    pub fn backup(&self, w: &mut impl Write, now: Ts) -> Result<BackupSummary, HallError> {
        let write = |e: std::io::Error| HallError::BadInput(format!("writing the backup: {e}"));
        w.write_all(MAGIC).map_err(write)?;
        let node = NodeFrame {
            id: self.node.id.clone(),
            name: self.node.name.clone(),
            region: self.node.region.clone(),
            level: self.node.level,
            taken_at: now,
        };
        let json = serde_json::to_vec(&node).map_err(|e| bad(e.to_string()))?;
        frame(w, b'n', &[&json]).map_err(write)?;
        let mut end = EndFrame {
            documents: 0,
            local_records: 0,
        };
        let ids = self
            .store
            .ids_with_prefix("")
            .collect::<Result<Vec<_>, _>>()?;
        for id in ids {
            let Some(bytes) = self.store.stored_bytes(&id)? else {
                continue;
            };
            let key = short(id.as_str().as_bytes()).map_err(write)?;
            frame(w, b'd', &[&key, &bytes]).map_err(write)?;
            end.documents += 1;
        }
        for (key, value) in self.store.local(b"")? {
            let key = short(&key).map_err(write)?;
            frame(w, b'l', &[&key, &value]).map_err(write)?;
            end.local_records += 1;
        }
        let json = serde_json::to_vec(&end).map_err(|e| bad(e.to_string()))?;
        frame(w, b'e', &[&json]).map_err(write)?;
        w.flush().map_err(write)?;
        Ok(BackupSummary {
            node: node.id,
            region: node.region,
            taken_at: now,
            documents: end.documents,
            local_records: end.local_records,
        })
    }

    /// Makes a node in `dir` from the backup `r` (see the module's text).
    /// `dir` must hold no node. The node is built in a directory of its own
    /// inside `dir` and moved into place whole at the end (its `node.toml`
    /// last), so a restore that fails, or is cut short even by a signal,
    /// leaves no node behind, and the next one starts afresh.
    pub fn restore(
        dir: &Path,
        r: &mut impl Read,
        options: StoreOptions,
        now: Ts,
    ) -> Result<(Hall, BackupSummary), HallError> {
        if dir.join(NODE_FILE).exists() {
            return Err(HallError::AlreadyInitialised(dir.to_path_buf()));
        }
        let fresh_dir = !dir.exists();
        let partial = dir.join(RESTORE_PARTIAL_DIR);
        let made = fs::remove_dir_all(&partial)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .map_err(crate::io(&partial))
            .and_then(|()| Self::restore_into(&partial, r, options.clone(), now));
        let summary = match made {
            Ok((hall, summary)) => {
                drop(hall);
                summary
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&partial);
                if fresh_dir {
                    let _ = fs::remove_dir(dir);
                }
                return Err(e);
            }
        };
        move_in(&partial, dir)?;
        Ok((Hall::open(dir, options)?, summary))
    }

    fn restore_into(
        dir: &Path,
        r: &mut impl Read,
        options: StoreOptions,
        now: Ts,
    ) -> Result<(Hall, BackupSummary), HallError> {
        let node = header(r)?;
        let hall = Hall::init(dir, node.id, &node.name, node.region, node.level, options)?;
        let mut got = EndFrame {
            documents: 0,
            local_records: 0,
        };
        let mut locals: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut batch = Batch::default();
        let end = loop {
            let Some((kind, payload)) = next_frame(r)? else {
                return Err(bad("it ends before its last frame (truncated)"));
            };
            match kind {
                b'd' => {
                    let (id, bytes) = split_short(&payload)?;
                    let named = std::str::from_utf8(id)
                        .ok()
                        .and_then(|s| DocId::parse(s).ok())
                        .ok_or_else(|| bad("a document frame names no valid document id"))?;
                    batch.docs.push((named, bytes.to_vec()));
                    batch.bytes += bytes.len();
                    if batch.docs.len() >= BATCH_DOCS || batch.bytes >= BATCH_BYTES {
                        got.documents += hall.restore_batch(&mut batch, now)?;
                    }
                }
                b'l' => {
                    let (key, value) = split_short(&payload)?;
                    locals.push((key.to_vec(), value.to_vec()));
                    got.local_records += 1;
                }
                b'e' => {
                    break serde_json::from_slice::<EndFrame>(&payload)
                        .map_err(|e| bad(format!("its end frame: {e}")))?
                }
                other => return Err(bad(format!("an unknown frame kind {other:#04x}"))),
            }
        };
        got.documents += hall.restore_batch(&mut batch, now)?;
        if r.read(&mut [0u8; 1])
            .map_err(|e| bad(format!("reading it failed: {e}")))?
            != 0
        {
            return Err(bad("it goes on after its end"));
        }
        if end != got {
            return Err(bad(format!(
                "it says it holds {} documents and {} records of the node's own, but holds {} and {}",
                end.documents, end.local_records, got.documents, got.local_records
            )));
        }
        let records: Vec<(&[u8], Option<&[u8]>)> = locals
            .iter()
            .map(|(k, v)| (k.as_slice(), Some(v.as_slice())))
            .collect();
        hall.store.put_local(&records)?;
        // What the dead PC wrote after the backup is at its parent, which
        // would not offer it back to the node it came from unless asked.
        hall.begin_restore(RestoreSource::Backup, now)?;
        let summary = BackupSummary {
            node: hall.node.id.clone(),
            region: hall.node.region.clone(),
            taken_at: node.taken_at,
            documents: got.documents,
            local_records: got.local_records,
        };
        Ok((hall, summary))
    }
}

/// The node a backup is of, read from its beginning.
pub fn backed_up_node(r: &mut impl Read) -> Result<NodeId, HallError> {
    header(r).map(|n| n.id)
}

fn header(r: &mut impl Read) -> Result<NodeFrame, HallError> {
    let mut magic = vec![0u8; MAGIC.len()];
    if r.read_exact(&mut magic).is_err() || magic != MAGIC {
        return Err(bad(
            "it does not begin as a backup written by `hallsync backup`",
        ));
    }
    match next_frame(r)? {
        Some((b'n', json)) => {
            serde_json::from_slice(&json).map_err(|e| bad(format!("its node frame: {e}")))
        }
        _ => Err(bad("it does not name the node it backs up")),
    }
}

/// Moves the node built in `partial` into `dir`: its store, then its
/// `node.toml` (a directory with `node.toml` always has its store; a store
/// without one is a creation cut short, which `Hall::init` makes afresh
/// too).
fn move_in(partial: &Path, dir: &Path) -> Result<(), HallError> {
    use crate::io;
    let store = dir.join(STORE_DIR);
    if store.exists() {
        fs::remove_dir_all(&store).map_err(io(&store))?;
    }
    fs::rename(partial.join(STORE_DIR), &store).map_err(io(&store))?;
    let node = dir.join(NODE_FILE);
    fs::rename(partial.join(NODE_FILE), &node).map_err(io(&node))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    fs::remove_dir_all(partial).map_err(io(partial))
}
