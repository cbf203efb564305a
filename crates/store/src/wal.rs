//! The write-ahead log: the store's atomicity and durability.
//!
//! Each commit appends one record listing the exact key writes and deletes
//! it makes, and is acknowledged once the log is synced (`fdatasync`,
//! shared by concurrent writers). sled then receives plain inserts and
//! removes and is flushed only at checkpoints, after which the log is
//! emptied. On open, the records after the last checkpoint are replayed in
//! order: each operation is a blind put or delete of one key, so replaying
//! over any partly applied state yields exactly the state the log describes.
//!
//! Record: `[len u32 LE][crc32 u32 LE][postcard Vec<Op>]`. A torn or
//! damaged tail (a record whose sync never completed, so never
//! acknowledged) ends the replay.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// One key operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Op {
    /// Set a key.
    Put(Vec<u8>, Vec<u8>),
    /// Delete a key.
    Del(Vec<u8>),
}

/// Largest record accepted when replaying (a commit of many documents).
const MAX_RECORD: usize = 256 << 20;

#[derive(Debug)]
pub(crate) struct Wal {
    file: File,
    size: AtomicU64,
}

impl Wal {
    /// Opens the log, returning it and the records it holds.
    pub(crate) fn open(path: &Path) -> std::io::Result<(Wal, Vec<Vec<Op>>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut records = Vec::new();
        let mut pos = 0;
        while let Some(header) = bytes.get(pos..pos + 8) {
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let Some(body) = bytes
                .get(pos + 8..pos + 8 + len)
                .filter(|_| len <= MAX_RECORD)
            else {
                break;
            };
            if crc32fast::hash(body) != crc {
                break;
            }
            match postcard::from_bytes::<Vec<Op>>(body) {
                Ok(ops) => records.push(ops),
                Err(_) => break,
            }
            pos += 8 + len;
        }
        if pos < bytes.len() {
            tracing::warn!(
                kept = pos,
                dropped = bytes.len() - pos,
                "the write-ahead log ends in an incomplete record (a write cut off before it was acknowledged); ignoring it"
            );
        }
        file.seek(SeekFrom::End(0))?;
        let wal = Wal {
            file,
            size: AtomicU64::new(bytes.len() as u64),
        };
        Ok((wal, records))
    }

    /// Appends a record (not yet synced). Callers serialise appends.
    pub(crate) fn append(&self, ops: &[Op]) -> std::io::Result<()> {
        let body = postcard::to_allocvec(ops).map_err(std::io::Error::other)?;
        let len = u32::try_from(body.len()).map_err(std::io::Error::other)?;
        let mut rec = Vec::with_capacity(body.len() + 8);
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        rec.extend_from_slice(&body);
        (&self.file).write_all(&rec)?;
        self.size.fetch_add(rec.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Makes every appended record durable.
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Bytes in the log.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// Empties the log (after a checkpoint made its records redundant).
    pub(crate) fn reset(&self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.size.store(0, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        {
            let (wal, recs) = Wal::open(&path).unwrap();
            assert!(recs.is_empty());
            wal.append(&[Op::Put(b"a".to_vec(), b"1".to_vec())])
                .unwrap();
            wal.append(&[Op::Del(b"a".to_vec()), Op::Put(b"b".to_vec(), vec![2; 300])])
                .unwrap();
            wal.sync().unwrap();
        }
        let full = std::fs::read(&path).unwrap();
        let first = 8 + u32::from_le_bytes(full[..4].try_into().unwrap()) as usize;
        for cut in [full.len() - 1, full.len() - 200, first + 3] {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (_, recs) = Wal::open(&path).unwrap();
            assert_eq!(recs.len(), 1, "cut at {cut}");
        }
        let mut flipped = full.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(Wal::open(&path).unwrap().1.len(), 1);
        std::fs::write(&path, &full).unwrap();
        let (wal, recs) = Wal::open(&path).unwrap();
        assert_eq!(recs.len(), 2);
        wal.reset().unwrap();
        assert_eq!(Wal::open(&path).unwrap().1.len(), 0);
    }
}
