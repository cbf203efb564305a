//! The store's decoders of outside bytes, reachable by the fuzz harnesses
//! (`fuzz/`) and by nothing else: compiled only with the `fuzzing` feature,
//! hidden from the documentation, and not an API (it may change with any
//! commit). Everything here is a thin wrapper: the code under test is the
//! store's own.
//!
//! - the write-ahead log: [`parse_segment`], [`parse_legacy`], the writer
//!   ([`Log`]) and [`recover`] over a directory of segment files;
//! - sled's blocks: [`decode_block`], [`encode_block`] and a [`BlockTree`]
//!   that reads hostile blocks as the store does;
//! - stored values: saved documents ([`unpack_saved`]), heads
//!   ([`StoredHead`]), feed entries ([`parse_feed_value`]), the log's mark
//!   ([`decode_mark`]) and compression dictionaries ([`read_dicts`]).

use std::path::Path;

use crate::dict::Dicts;
use crate::packed::{self, BlockError, Blocks};
use crate::wal::{self, Mark, Op, Wal};
use crate::{Head, Store};

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One key operation of a log record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogOp {
    /// Set a key.
    Put(Vec<u8>, Vec<u8>),
    /// Delete a key.
    Del(Vec<u8>),
}

impl From<Op> for LogOp {
    fn from(op: Op) -> LogOp {
        match op {
            Op::Put(k, v) => LogOp::Put(k, v),
            Op::Del(k) => LogOp::Del(k),
        }
    }
}

impl From<&LogOp> for Op {
    fn from(op: &LogOp) -> Op {
        match op {
            LogOp::Put(k, v) => Op::Put(k.clone(), v.clone()),
            LogOp::Del(k) => Op::Del(k.clone()),
        }
    }
}

fn ops_out(ops: Vec<Op>) -> Vec<LogOp> {
    ops.into_iter().map(LogOp::from).collect()
}

/// Bytes before a log record's body.
pub const RECORD_HEADER: usize = wal::HEADER;

/// Bytes of a segment's head (its first record).
pub const SEGMENT_HEAD: usize = wal::HEAD;

/// What [`parse_segment`] finds, as the log's own parser reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A record: its LSN, the first LSN of its flush, and its operations.
    Record {
        /// Its log sequence number.
        lsn: u64,
        /// The first LSN of the flush that wrote it.
        group: u64,
        /// Its operations.
        ops: Vec<LogOp>,
    },
    /// A segment's first record: the length the file was made.
    Head {
        /// The length.
        size: u64,
    },
    /// A closed segment's last record, naming the next segment.
    Trailer {
        /// The next segment's number.
        next: u64,
    },
    /// Bytes that are no record.
    Damaged {
        /// Offset.
        at: usize,
        /// Length.
        len: usize,
        /// Whether they look like a write cut off by a crash.
        torn: bool,
    },
    /// The segment is not as it was made.
    Mangled(String),
}

/// The pieces of one segment file's bytes, in order.
pub fn parse_segment(bytes: &[u8]) -> Vec<Piece> {
    wal::parse_segment(bytes)
        .into_iter()
        .map(|p| match p {
            wal::Piece::Record { lsn, group, ops } => Piece::Record {
                lsn,
                group,
                ops: ops_out(ops),
            },
            wal::Piece::Head { size } => Piece::Head { size },
            wal::Piece::Trailer { next } => Piece::Trailer { next },
            wal::Piece::Damaged { at, len, torn } => Piece::Damaged { at, len, torn },
            wal::Piece::Mangled(why) => Piece::Mangled(why),
        })
        .collect()
}

/// The records of a segment of the format before record headers, and
/// whether it ends cleanly.
pub fn parse_legacy(bytes: &[u8]) -> (Vec<Vec<LogOp>>, bool) {
    let (records, clean) = wal::parse_legacy(bytes, Path::new("fuzz"));
    (records.into_iter().map(ops_out).collect(), clean)
}

/// The file name of segment `number` in a store's directory.
pub fn segment_file(number: u64) -> String {
    wal::segment_name(number)
}

/// Log record `lsn` holding `ops`, as a flush takes it (the flush completes
/// its header).
pub fn encode_record(ops: &[LogOp], lsn: u64) -> std::io::Result<Vec<u8>> {
    let ops: Vec<Op> = ops.iter().map(Op::from).collect();
    Wal::record(&ops, lsn).map(|(bytes, _)| bytes)
}

/// The log's writer, as the store drives it.
#[derive(Debug)]
pub struct Log(Wal);

impl Log {
    /// Starts the log in `dir` at a new segment `number`; segments made
    /// later are `spare_bytes` long.
    pub fn start(dir: &Path, number: u64, spare_bytes: usize) -> std::io::Result<Log> {
        Wal::start(dir, number, spare_bytes).map(Log)
    }

    /// Appends one flush (records from [`encode_record`], concatenated).
    pub fn write(&self, records: &mut [u8]) -> std::io::Result<()> {
        self.0.write(records)
    }

    /// Appends one flush and moves to the next segment; returns the number
    /// of the segment closed.
    pub fn write_and_rotate(&self, records: &mut [u8]) -> std::io::Result<u64> {
        self.0.write_and_rotate(records)
    }

    /// Makes the spare segment the next rotation takes.
    pub fn prepare_spare(&self) -> std::io::Result<()> {
        self.0.prepare_spare()
    }

    /// Deletes the segments before `number`.
    pub fn remove_before(&self, number: u64) -> std::io::Result<()> {
        self.0.remove_before(number)
    }
}

/// What [`recover`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Records to replay, oldest first.
    pub records: Vec<Vec<LogOp>>,
    /// The highest LSN used so far.
    pub last_lsn: u64,
    /// The number the next segment takes.
    pub next_segment: u64,
    /// What was discarded because the loss was accepted.
    pub discarded: Option<String>,
}

/// Why [`recover`] refused.
#[derive(Debug)]
pub enum RecoverError {
    /// A file could not be read.
    Io(std::io::Error),
    /// Acknowledged writes cannot be replayed.
    Lost(String),
}

/// Checks and reads the log in `dir` as opening a store does (`mark`:
/// the first segment still needed and the last LSN sled holds).
pub fn recover(
    dir: &Path,
    mark: Option<(u64, u64)>,
    legacy: bool,
    accept_loss: bool,
) -> Result<Recovered, RecoverError> {
    let mark = mark.map(|(segment, lsn)| Mark { segment, lsn });
    match Wal::recover(dir, mark, legacy, accept_loss) {
        Ok(r) => Ok(Recovered {
            records: r.records.into_iter().map(ops_out).collect(),
            last_lsn: r.last_lsn,
            next_segment: r.next_segment,
            discarded: r.discarded,
        }),
        Err(wal::RecoverError::Io(e)) => Err(RecoverError::Io(e)),
        Err(wal::RecoverError::Lost(why)) => Err(RecoverError::Lost(why)),
    }
}

/// The log's mark as stored in sled: `(segment, lsn)`.
pub fn decode_mark(bytes: &[u8]) -> Option<(u64, u64)> {
    Mark::decode(bytes).map(|m| (m.segment, m.lsn))
}

/// The stored form of a mark.
pub fn encode_mark(segment: u64, lsn: u64) -> [u8; 16] {
    Mark { segment, lsn }.encode()
}

fn block_error(e: BlockError) -> String {
    match e {
        BlockError::Db(e) => format!("sled: {e}"),
        BlockError::Damaged(bound, why) => {
            format!("block {}: {why}", String::from_utf8_lossy(&bound))
        }
    }
}

/// A block's entries (the stored value of the block bound by `bound`).
pub fn decode_block(bound: &[u8], value: &[u8]) -> Result<Vec<KeyValue>, String> {
    packed::decode(bound, value).map_err(block_error)
}

/// A block's stored value holding `entries` (in key order).
pub fn encode_block(entries: &[KeyValue]) -> Vec<u8> {
    packed::encode(entries)
}

/// A sled tree of blocks read and folded by the store's own code, with
/// blocks put in raw.
#[derive(Debug)]
pub struct BlockTree {
    _db: sled::Db,
    tree: sled::Tree,
    blocks: Blocks,
}

impl BlockTree {
    /// A tree in a temporary sled database (in memory, gone on drop).
    pub fn temporary() -> Result<BlockTree, String> {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(|e| e.to_string())?;
        let tree = db.open_tree("blocks").map_err(|e| e.to_string())?;
        Ok(BlockTree {
            blocks: Blocks::new(tree.clone()),
            tree,
            _db: db,
        })
    }

    /// Removes every block.
    pub fn clear(&self) -> Result<(), String> {
        self.tree.clear().map_err(|e| e.to_string())
    }

    /// Puts a block's stored value as it is.
    pub fn put_raw(&self, bound: &[u8], value: &[u8]) -> Result<(), String> {
        let key = [&[packed::BLOCK][..], bound].concat();
        self.tree
            .insert(key, value)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Every block's bound and stored value, in order.
    pub fn raw(&self) -> Result<Vec<KeyValue>, String> {
        self.tree
            .scan_prefix([packed::BLOCK])
            .map(|kv| {
                kv.map(|(k, v)| (k[1..].to_vec(), v.to_vec()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// A key's value.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.blocks.get(key).map_err(block_error)
    }

    /// The entry with the greatest key below `to`.
    pub fn last_below(&self, to: &[u8]) -> Result<Option<KeyValue>, String> {
        self.blocks.last_below(to).map_err(block_error)
    }

    /// The entries in `[from, to)`, up to the first error.
    pub fn entries(&self, from: &[u8], to: Option<&[u8]>) -> Result<Vec<KeyValue>, String> {
        self.blocks
            .entries(from.to_vec(), to.map(<[u8]>::to_vec))
            .map(|kv| {
                kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(block_error)
            })
            .collect()
    }

    /// Applies changes (ascending keys, each once), as a checkpoint does.
    pub fn fold(&self, changes: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), String> {
        self.blocks
            .fold(changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())))
            .map_err(block_error)
    }
}

/// Reads stored compression dictionaries: `(sled key, value without its
/// format byte)`.
pub fn read_dicts(stored: &[KeyValue]) -> Result<usize, String> {
    Dicts::read(stored.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
        .map(|d| d.next_number() as usize - 1)
}

/// The saved document in a stored `d` value, with the dictionaries
/// `dicts` (as for [`read_dicts`]).
pub fn unpack_saved(value: &[u8], dicts: &[KeyValue]) -> Result<Vec<u8>, String> {
    let dicts = Dicts::read(dicts.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))?;
    crate::unpack_saved("fuzz", value, &dicts)
        .map(|c| c.into_owned())
        .map_err(|e| e.to_string())
}

/// A saved document packed as the store stores it (no dictionary).
pub fn pack_saved(saved: &[u8]) -> Result<Vec<u8>, String> {
    crate::pack_saved("fuzz", saved, &Dicts::default()).map_err(|e| e.to_string())
}

/// A document's head (`h` value), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHead(Head);

impl StoredHead {
    /// Decodes a stored head.
    pub fn decode(value: &[u8]) -> Result<StoredHead, String> {
        crate::decode::<Head>("fuzz", value)
            .map(StoredHead)
            .map_err(|e| e.to_string())
    }

    /// Its stored form.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        crate::encode("fuzz", &self.0).map_err(|e| e.to_string())
    }
}

/// A feed entry's value: its document id, origin and bytes.
pub fn parse_feed_value(value: &[u8]) -> Result<(String, Option<String>, Vec<u8>), String> {
    crate::feed::parse_feed_value(value)
        .map(|f| (f.id.as_str().to_string(), f.origin, f.bytes.to_vec()))
        .map_err(|e| e.to_string())
}

/// A feed entry's stored value.
pub fn feed_value(id: &str, origin: Option<&str>, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let id = hallsync_model::DocId::parse(id).map_err(|e| e.to_string())?;
    Ok(crate::feed_value(&id, origin, bytes))
}

/// What sled holds for a store (after [`Store::checkpoint`]): every key
/// and value as stored, blocks (`B` + bound) and the keys kept directly.
pub fn sled_contents(store: &Store) -> Result<Vec<KeyValue>, String> {
    store
        .tree
        .iter()
        .map(|kv| {
            kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(|e| e.to_string())
        })
        .collect()
}
