//! The store's values (`crates/store/src/lib.rs`, `dict.rs`): what sled
//! hands back is read as outside bytes, since a damaged disk or a copied
//! directory can hold anything.
//!
//! The first byte picks the decoder; the rest is the value:
//! 0. a saved document (`d`): it unpacks within [`SAVED_ALLOC_LIMIT`], and
//!    packs and unpacks back to itself;
//! 1. a saved document with a dictionary: a length (u16 LE), that many
//!    bytes read as stored dictionary 1 (its checksum made right), then the
//!    document: same invariants;
//! 2. a document's head (`h`): decodes, encodes, and decodes the same;
//! 3. a feed entry (`c`): parses, and what it is written back as parses
//!    the same;
//! 4. the log's mark: decodes only from 16 bytes, and encodes back to them.

use hallsync_store::fuzzing::{
    decode_mark, encode_mark, feed_value, pack_saved, parse_feed_value, read_dicts, unpack_saved,
    StoredHead,
};

/// What unpacking a saved document may hold allocated at once: the store
/// refuses documents that claim more than 64 MiB, and the dictionary's
/// tables.
pub const SAVED_ALLOC_LIMIT: u64 = (64 << 20) + (16 << 20);

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&which, value)) = data.split_first() else {
        return;
    };
    let limit = SAVED_ALLOC_LIMIT + 64 * data.len() as u64;
    match which % 5 {
        0 => {
            let saved = crate::bounded("unpacking a saved document", limit, || {
                unpack_saved(value, &[])
            });
            if let Ok(saved) = saved {
                round_trip(&saved);
            }
        }
        1 => {
            let Some((len, rest)) = value.split_first_chunk::<2>() else {
                return;
            };
            let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
            let (dict, value) = rest.split_at(len);
            // The stored form: CRC-32 of the rest, then the rest.
            let stored = [&crc32fast::hash(dict).to_be_bytes()[..], dict].concat();
            let dicts = [(b"mdict:\0\0\0\x01".to_vec(), stored)];
            let read = crate::bounded("reading a dictionary", limit, || read_dicts(&dicts));
            if read.is_ok() {
                let saved = crate::bounded("unpacking a saved document", limit, || {
                    unpack_saved(value, &dicts)
                });
                if let Ok(saved) = saved {
                    round_trip(&saved);
                }
            }
        }
        2 => {
            let Ok(head) = crate::bounded("decoding a head", limit, || StoredHead::decode(value))
            else {
                return;
            };
            let again = head
                .encode()
                .unwrap_or_else(|e| panic!("a head that decoded does not encode: {e}"));
            assert_eq!(
                StoredHead::decode(&again),
                Ok(head),
                "a head changes through encode and decode"
            );
        }
        3 => {
            let Ok((id, origin, bytes)) =
                crate::bounded("parsing a feed entry", limit, || parse_feed_value(value))
            else {
                return;
            };
            let again = feed_value(&id, origin.as_deref(), &bytes)
                .unwrap_or_else(|e| panic!("a feed entry's id {id:?} does not parse again: {e}"));
            // Not byte for byte: an id is written back canonical
            // (`case:4300:x` reads as `case:43:x`).
            assert_eq!(
                parse_feed_value(&again),
                Ok((id, origin, bytes)),
                "a feed entry changes when written back"
            );
        }
        _ => match decode_mark(value) {
            Some((segment, lsn)) => assert_eq!(&encode_mark(segment, lsn)[..], value),
            None => assert_ne!(value.len(), 16, "a 16-byte mark does not decode"),
        },
    }
}

fn round_trip(saved: &[u8]) {
    let packed = pack_saved(saved)
        .unwrap_or_else(|e| panic!("an unpacked document does not pack again: {e}"));
    assert_eq!(
        unpack_saved(&packed, &[]).as_deref(),
        Ok(saved),
        "a saved document changes through pack and unpack"
    );
}
