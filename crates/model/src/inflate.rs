//! A bound on what Automerge bytes from outside inflate to, checked before
//! Automerge reads them.
//!
//! Automerge 0.6 inflates a compressed change chunk, and a document's
//! deflated columns, to the end before any size or checksum test: a 65 KB
//! file of one compressed change held ~256 MiB while it loaded (deflate
//! expands up to ~1,000-fold). This walk reads only the chunk headers and a
//! document's column table, the same way Automerge does, and inflates what
//! is compressed into a sink, counting, until the budget is spent.
//!
//! It refuses only on the budget. Bytes it cannot parse are left to
//! Automerge, which parses the same headers first and fails at the same
//! place, before it inflates anything after it.

use std::io::Read;

/// Most bytes the compressed parts of one load may inflate to: twice the
/// largest saved document a store keeps.
pub const MAX_INFLATED: u64 = 16 << 20;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const COMPRESSED_CHANGE: u8 = 2;
/// The bit of a column's specification that marks it deflated.
const DEFLATED: u64 = 0b1000;
/// Bytes of a change hash.
const HASH: usize = 32;

/// Refuses `bytes` (Automerge chunks) whose compressed parts inflate to
/// more than `budget` bytes in all.
pub fn check(bytes: &[u8], budget: u64) -> Result<(), String> {
    let mut left = budget;
    let mut r = Reader(bytes);
    while !r.0.is_empty() {
        let Some((kind, body)) = r.chunk() else {
            return Ok(());
        };
        let spent = match kind {
            COMPRESSED_CHANGE => inflated(body, left),
            DOCUMENT => match deflated_columns(body) {
                Some(columns) => {
                    let mut spent = 0;
                    for column in columns {
                        spent += inflated(column, left - spent.min(left));
                        if spent > left {
                            break;
                        }
                    }
                    spent
                }
                None => return Ok(()),
            },
            _ => 0,
        };
        if spent > left {
            return Err(format!(
                "its compressed parts inflate to more than {} MiB",
                budget >> 20
            ));
        }
        left -= spent;
    }
    Ok(())
}

/// Bytes `data` inflates to, counted up to `limit + 1`; what does not
/// inflate counts as far as it went (Automerge refuses it).
fn inflated(data: &[u8], limit: u64) -> u64 {
    let mut inflater = flate2::read::DeflateDecoder::new(data).take(limit.saturating_add(1));
    let mut buf = [0u8; 16 << 10];
    let mut total = 0;
    while let Ok(n @ 1..) = inflater.read(&mut buf) {
        total += n as u64;
    }
    total
}

/// The deflated columns of a document chunk's body, or `None` if its
/// header does not parse.
fn deflated_columns(body: &[u8]) -> Option<Vec<&[u8]>> {
    let mut r = Reader(body);
    for _ in 0..r.uleb()? {
        let len = r.uleb()?;
        r.take(len)?;
    }
    let heads = r.uleb()?;
    r.take(heads.checked_mul(HASH as u64)?)?;
    let mut specs = Vec::new();
    for _ in 0..2 {
        for _ in 0..r.uleb()? {
            let (spec, len) = (r.uleb()?, r.uleb()?);
            specs.push((spec, len));
        }
    }
    let mut columns = Vec::new();
    for (spec, len) in specs {
        let data = r.take(len)?;
        if spec & DEFLATED != 0 {
            columns.push(data);
        }
    }
    Some(columns)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// An unsigned LEB128 number of at most 64 bits.
    fn uleb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first()?;
            value |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A chunk: its type and body.
    fn chunk(&mut self) -> Option<(u8, &'a [u8])> {
        if self.take(4)? != MAGIC {
            return None;
        }
        self.take(4)?;
        let kind = *self.take(1)?.first()?;
        let len = self.uleb()?;
        Some((kind, self.take(len)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn uleb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A compressed change chunk whose body is `zeros` zero bytes deflated.
    fn bomb(zeros: usize) -> Vec<u8> {
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut deflater, &vec![0u8; zeros]).unwrap();
        let body = deflater.finish().unwrap();
        let mut chunk = MAGIC.to_vec();
        chunk.extend([0; 4]);
        chunk.push(COMPRESSED_CHANGE);
        uleb(body.len() as u64, &mut chunk);
        chunk.extend(body);
        chunk
    }

    #[test]
    fn a_compressed_change_inflating_past_the_budget_is_refused() {
        let b = bomb(40 << 20);
        assert!(b.len() < 100 << 10, "{} bytes", b.len());
        assert!(check(&b, MAX_INFLATED).unwrap_err().contains("16 MiB"));
        assert!(check(&bomb(1 << 20), MAX_INFLATED).is_ok());
        // The budget is for the whole load, not each chunk.
        let two = [bomb(10 << 20), bomb(10 << 20)].concat();
        assert!(check(&two, MAX_INFLATED).is_err());
    }

    #[test]
    fn real_documents_pass_whether_saved_compressed_or_not() {
        let mut doc = automerge::AutoCommit::new();
        for i in 0..2_000 {
            doc.put(
                automerge::ROOT,
                format!("k{i}"),
                "the same text, again and again",
            )
            .unwrap();
        }
        let saved = doc.save();
        assert!(check(&saved, MAX_INFLATED).is_ok());
        let (_, columns) = Reader(&saved).chunk().unwrap();
        assert!(
            !deflated_columns(columns).unwrap().is_empty(),
            "the test document should have deflated columns"
        );
        // Its deflated columns count against the budget.
        assert!(check(&saved, 100).is_err());
        assert!(check(&doc.save_nocompress(), 100).is_ok());
        let changes = doc.save_after(&[]);
        assert!(check(&changes, MAX_INFLATED).is_ok());
    }

    #[test]
    fn what_does_not_parse_is_left_to_automerge() {
        for bytes in [&b""[..], b"junk", &MAGIC[..], &bomb(1 << 20)[..20]] {
            assert!(check(bytes, 0).is_ok());
        }
    }
}
