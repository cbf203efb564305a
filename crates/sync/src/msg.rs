//! Protocol messages and their wire form.
//!
//! A frame is one version byte followed by a postcard-encoded [`Msg`],
//! plain (version 1) or zstd-compressed (version 2, for messages of
//! [`COMPRESS_FROM`] bytes or more that shrink): batches of documents share
//! keys, actors and names, so a batch compresses well even though each
//! saved document is compressed on its own. Every
//! decoded message is checked against the bounds below before the session
//! acts on it; anything out of bounds is the peer's fault and ends the
//! session.

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks: 2 adds [`Msg::Refused`], 3
/// [`Msg::Clock`], 4 [`Msg::RestoringHello`].
pub const PROTOCOL: u16 = 4;

/// The oldest version this build still speaks with (a session uses the
/// lower of the two ends' versions).
pub const MIN_PROTOCOL: u16 = 1;

/// Longest reason given for a refused document (bytes).
pub const MAX_REASON_BYTES: usize = 1024;

/// Largest frame accepted (bytes).
pub const MAX_FRAME: usize = 16 << 20;

/// Largest document or change set carried for one document (bytes).
pub const MAX_DOC_BYTES: usize = 8 << 20;

/// Most documents in one offer.
pub const MAX_BATCH_DOCS: usize = 1024;

/// Most heads listed for one document.
pub const MAX_HEADS: usize = 64;

/// Longest node id or document id (bytes).
pub const MAX_ID_BYTES: usize = 160;

const PLAIN: u8 = 1;
const ZSTD: u8 = 2;

/// Messages this long or longer are compressed.
pub const COMPRESS_FROM: usize = 512;

/// zstd level: fast; the link, not the CPU, is the bottleneck only on slow
/// links, and level 3 costs little more there.
const LEVEL: i32 = 3;

/// An Automerge change hash.
pub type Hash = [u8; 32];

/// A protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// First message each way.
    Hello(Hello),
    /// The sender's feed entries in `(after, upto]` that the receiver may
    /// hold: each document once, with its heads.
    Offer {
        /// Batch number, unique within the session.
        batch: u64,
        /// Exclusive start of the feed range covered.
        after: u64,
        /// Inclusive end of the feed range covered.
        upto: u64,
        /// The sender's newest feed sequence number.
        head: u64,
        /// The documents, in feed order.
        #[serde(deserialize_with = "batch")]
        docs: Vec<OfferDoc>,
    },
    /// What the receiver needs of each offered document, in offer order.
    Want {
        /// The offer answered.
        batch: u64,
        /// One per offered document.
        #[serde(deserialize_with = "batch")]
        wants: Vec<Want>,
    },
    /// Part of the answer to a [`Msg::Want`]: payloads for the offered
    /// documents `start..start + docs.len()`.
    Data {
        /// The offer answered.
        batch: u64,
        /// Index of the first document in this part.
        start: u32,
        /// Whether this is the batch's last part.
        last: bool,
        /// One per document.
        #[serde(deserialize_with = "batch")]
        docs: Vec<Payload>,
    },
    /// The receiver has durably applied the sender's feed up to `upto`.
    Ack {
        /// The receiver's checkpoint of the sender's feed.
        upto: u64,
    },
    /// The sender ends the session.
    Bye {
        /// Why, for the peer's log.
        reason: String,
    },
    /// Documents of the receiver's feed the sender refused and set aside
    /// (protocol 2): acknowledged all the same, so the link carries on.
    Refused {
        /// The documents and why.
        #[serde(deserialize_with = "batch")]
        docs: Vec<RefusedDoc>,
    },
    /// The sender's wall clock when it sent this, in Unix milliseconds
    /// (protocol 3): sent once, after the peer's hello, so each end knows
    /// how far the other's clock is off its own.
    Clock {
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// Protocol 4: the first message of a node whose store is being rebuilt
    /// (`hallsync restore`), in place of [`Msg::Hello`]: it asks for every
    /// record it may hold, those that came from it included, which a
    /// sender otherwise never offers back to the peer they came from. A
    /// hello of its own, not a message after one, so that no offer can be
    /// made before the sender knows.
    RestoringHello(Hello),
}

/// What each end says first. `resume`: how far the sender has applied the
/// receiver's feed (the receiver offers from there); `head`: the sender's
/// own newest feed entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL`].
    pub protocol: u16,
    /// The sender's node id (must match its certificate).
    pub node: String,
    /// The identity of the sender's feed: sequence numbers count in it.
    pub feed: u64,
    /// The feed `resume` counts in; if it is not the receiver's current
    /// feed (its store was recreated), the receiver starts from 0.
    pub resume_feed: u64,
    /// The sender's checkpoint of the receiver's feed.
    pub resume: u64,
    /// The sender's newest feed sequence number.
    pub head: u64,
}

/// A document refused, as the peer is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedDoc {
    /// The document id.
    pub id: String,
    /// The heads of the version refused.
    #[serde(deserialize_with = "heads")]
    pub heads: Vec<Hash>,
    /// Why.
    pub reason: String,
}

/// One document in an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferDoc {
    /// The document id.
    pub id: String,
    /// Its heads at the sender.
    #[serde(deserialize_with = "heads")]
    pub heads: Vec<Hash>,
}

/// What the receiver needs of one offered document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Want {
    /// Nothing: it has the same heads.
    Nothing,
    /// The whole document: it does not have it.
    Whole,
    /// The changes after these heads (the receiver's).
    Since(#[serde(deserialize_with = "heads")] Vec<Hash>),
}

/// The data sent for one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Nothing to send.
    Nothing,
    /// The whole document in Automerge's saved (compressed) form.
    Whole(Vec<u8>),
    /// Automerge changes the receiver lacks.
    Changes(Vec<u8>),
}

impl Payload {
    /// Bytes carried.
    pub fn len(&self) -> usize {
        match self {
            Payload::Nothing => 0,
            Payload::Whole(b) | Payload::Changes(b) => b.len(),
        }
    }

    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A frame that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Longer than [`MAX_FRAME`].
    #[error("a frame of {0} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge(usize),
    /// Empty, an unknown frame version, or not a message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A message whose fields break the protocol's bounds.
    #[error("message out of bounds: {0}")]
    OutOfBounds(String),
}

/// Reads a sequence, keeping at most `max + 1` of its elements: the rest
/// are read and dropped. A list longer than its bound is refused by
/// [`check`] all the same, but without this a frame's list is built whole
/// first, and a list of small elements costs far more in memory than on
/// the wire: 16 MiB of `Want::Nothing` (one byte each), which a ~500-byte
/// zstd frame carries, made a vector of 800 MB.
fn at_most<'de, D, T>(d: D, max: usize) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T> {
        max: usize,
        kind: std::marker::PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a sequence")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let keep = self.max.saturating_add(1);
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(keep));
            while let Some(x) = seq.next_element::<T>()? {
                if out.len() < keep {
                    out.push(x);
                }
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded {
        max,
        kind: std::marker::PhantomData,
    })
}

fn batch<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    at_most(d, MAX_BATCH_DOCS)
}

fn heads<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
    at_most(d, MAX_HEADS)
}

/// Encodes a message as a frame body.
pub fn encode(msg: &Msg) -> Result<Vec<u8>, FrameError> {
    let plain =
        postcard::to_extend(msg, vec![PLAIN]).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if plain.len() < COMPRESS_FROM {
        return Ok(plain);
    }
    let mut packed = vec![ZSTD];
    packed.extend(
        zstd::block::compress(&plain[1..], LEVEL)
            .map_err(|e| FrameError::Malformed(format!("compressing: {e}")))?,
    );
    Ok(if packed.len() < plain.len() {
        packed
    } else {
        plain
    })
}

/// Decodes and bounds-checks a frame body.
pub fn decode(frame: &[u8]) -> Result<Msg, FrameError> {
    if frame.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(frame.len()));
    }
    let (version, body) = frame
        .split_first()
        .ok_or_else(|| FrameError::Malformed("empty frame".into()))?;
    let unpacked;
    let body = match *version {
        PLAIN => body,
        ZSTD => {
            // The size is checked before anything is allocated for it.
            let size = zstd::zstd_safe::get_frame_content_size(body);
            if size > MAX_FRAME as u64 {
                return Err(FrameError::Malformed(
                    "compressed frame without a valid size, or larger than the limit".into(),
                ));
            }
            unpacked = zstd::block::decompress(body, size as usize)
                .map_err(|e| FrameError::Malformed(format!("decompressing: {e}")))?;
            if unpacked.len() as u64 != size {
                return Err(FrameError::Malformed(
                    "compressed frame shorter than it says".into(),
                ));
            }
            &unpacked[..]
        }
        other => {
            return Err(FrameError::Malformed(format!(
                "unknown frame version {other}"
            )))
        }
    };
    let msg: Msg = postcard::from_bytes(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    check(&msg)?;
    Ok(msg)
}

fn bound(what: &str, n: usize, max: usize) -> Result<(), FrameError> {
    if n > max {
        return Err(FrameError::OutOfBounds(format!(
            "{what}: {n} exceeds the limit of {max}"
        )));
    }
    Ok(())
}

fn check(msg: &Msg) -> Result<(), FrameError> {
    match msg {
        Msg::Hello(Hello { node, .. }) | Msg::RestoringHello(Hello { node, .. }) => {
            bound("node id bytes", node.len(), MAX_ID_BYTES)
        }
        Msg::Offer {
            after, upto, docs, ..
        } => {
            if upto < after {
                return Err(FrameError::OutOfBounds(format!(
                    "offer range ({after}, {upto}] is backwards"
                )));
            }
            bound("documents in an offer", docs.len(), MAX_BATCH_DOCS)?;
            for d in docs {
                bound("document id bytes", d.id.len(), MAX_ID_BYTES)?;
                bound("heads of a document", d.heads.len(), MAX_HEADS)?;
            }
            Ok(())
        }
        Msg::Want { wants, .. } => {
            bound("answers in a want", wants.len(), MAX_BATCH_DOCS)?;
            for w in wants {
                if let Want::Since(h) = w {
                    bound("heads of a document", h.len(), MAX_HEADS)?;
                }
            }
            Ok(())
        }
        Msg::Data { start, docs, .. } => {
            bound(
                "documents in a data part",
                *start as usize + docs.len(),
                MAX_BATCH_DOCS,
            )?;
            for p in docs {
                bound("bytes for one document", p.len(), MAX_DOC_BYTES)?;
            }
            Ok(())
        }
        Msg::Ack { .. } | Msg::Clock { .. } => Ok(()),
        Msg::Bye { reason } => bound("reason bytes", reason.len(), 1024),
        Msg::Refused { docs } => {
            bound("refused documents", docs.len(), MAX_BATCH_DOCS)?;
            for d in docs {
                bound("document id bytes", d.id.len(), MAX_ID_BYTES)?;
                bound("heads of a document", d.heads.len(), MAX_HEADS)?;
                bound("reason bytes", d.reason.len(), MAX_REASON_BYTES)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Msg::Offer {
            batch: 7,
            after: 10,
            upto: 20,
            head: 30,
            docs: vec![OfferDoc {
                id: "case:330102001:a".into(),
                heads: vec![[1; 32]],
            }],
        };
        assert_eq!(decode(&encode(&m).unwrap()).unwrap(), m);
    }

    #[test]
    fn rejects_bad_frames() {
        assert!(matches!(decode(&[]), Err(FrameError::Malformed(_))));
        assert!(matches!(decode(&[9, 0]), Err(FrameError::Malformed(_))));
        let good = encode(&Msg::Ack { upto: 5 }).unwrap();
        assert!(decode(&good[..1]).is_err());
        let huge = vec![PLAIN; MAX_FRAME + 1];
        assert_eq!(decode(&huge), Err(FrameError::TooLarge(MAX_FRAME + 1)));
        let backwards = encode(&Msg::Offer {
            batch: 1,
            after: 5,
            upto: 4,
            head: 5,
            docs: vec![],
        })
        .unwrap();
        assert!(matches!(
            decode(&backwards),
            Err(FrameError::OutOfBounds(_))
        ));
        let many = encode(&Msg::Offer {
            batch: 1,
            after: 0,
            upto: 4,
            head: 5,
            docs: vec![
                OfferDoc {
                    id: "x".into(),
                    heads: vec![]
                };
                MAX_BATCH_DOCS + 1
            ],
        })
        .unwrap();
        assert!(matches!(decode(&many), Err(FrameError::OutOfBounds(_))));
    }

    #[test]
    fn large_messages_are_compressed_and_bombs_refused() {
        let m = Msg::Data {
            batch: 1,
            start: 0,
            last: true,
            docs: vec![Payload::Whole(b"the same bytes again ".repeat(100)); 20],
        };
        let f = encode(&m).unwrap();
        assert_eq!(f[0], ZSTD);
        assert!(f.len() < 2_000);
        assert_eq!(decode(&f).unwrap(), m);
        // A frame that would expand past the limit.
        let mut bomb = vec![ZSTD];
        bomb.extend(zstd::block::compress(&vec![0u8; MAX_FRAME + 10], 1).unwrap());
        assert!(matches!(decode(&bomb), Err(FrameError::Malformed(_))));
        // A truncated compressed frame.
        assert!(decode(&f[..f.len() / 2]).is_err());
    }

    /// Found with the `frame` fuzz harness's memory bound: a list of
    /// one-byte elements was decoded whole before its bound was checked.
    #[test]
    fn a_small_frame_with_a_huge_list_is_refused_without_building_it() {
        let n = 4_000_000u32;
        let mut body = vec![2, 0]; // Msg::Want, batch 0
        let mut len = n;
        while len >= 0x80 {
            body.push((len as u8) | 0x80);
            len >>= 7;
        }
        body.push(len as u8);
        body.resize(body.len() + n as usize, 0); // Want::Nothing, n times
        let mut frame = vec![ZSTD];
        frame.extend(zstd::block::compress(&body, 3).unwrap());
        assert!(frame.len() < 1_000, "{}", frame.len());
        // The vector kept is bounded: MAX_BATCH_DOCS + 1 wants, not 4M.
        let mut d = postcard::Deserializer::from_bytes(&body);
        let m = Msg::deserialize(&mut d).unwrap();
        assert!(matches!(&m, Msg::Want { wants, .. } if wants.len() == MAX_BATCH_DOCS + 1));
        assert!(matches!(decode(&frame), Err(FrameError::OutOfBounds(_))));
    }

    #[test]
    fn any_bytes_decode_or_fail_cleanly() {
        use proptest::prelude::*;
        proptest!(|(bytes in proptest::collection::vec(any::<u8>(), 0..256))| {
            let _ = decode(&bytes);
        });
    }
}
