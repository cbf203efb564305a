//! Replication frames (`hallsync_sync::msg`).
//!
//! Invariants: decoding any bytes returns a message or an error, and holds
//! at most the frame's bounds in memory (the frame, its decompressed body
//! and what they carry: [`ALLOC_LIMIT`]); a message that decodes is within
//! the protocol's bounds, encodes, and decodes back to itself. The same
//! bytes are also read as a recipe for a message (structure-aware): one
//! within the bounds must survive encode∘decode unchanged.

use arbitrary::{Result, Unstructured};
use hallsync_sync::msg::{
    self, Msg, OfferDoc, Payload, RefusedDoc, Want, MAX_BATCH_DOCS, MAX_FRAME, MAX_HEADS,
    MAX_ID_BYTES, MAX_REASON_BYTES,
};

/// What decoding one frame may hold allocated at once: the frame's body
/// decompressed (at most [`MAX_FRAME`]), the bytes the message carries (no
/// more than that again), and the message's own structure within its
/// bounds.
pub const ALLOC_LIMIT: u64 = 2 * MAX_FRAME as u64 + (8 << 20);

/// Runs one input.
pub fn run(data: &[u8]) {
    let decoded = crate::bounded("decoding a frame", ALLOC_LIMIT, || msg::decode(data));
    if let Ok(m) = decoded {
        round_trip(&m, "a decoded message");
    }
    if let Ok(m) = recipe(&mut Unstructured::new(data)) {
        if within_bounds(&m) {
            round_trip(&m, "a message within the bounds");
        }
    }
}

fn round_trip(m: &Msg, what: &str) {
    let frame = msg::encode(m).unwrap_or_else(|e| panic!("{what} does not encode: {e}"));
    assert!(frame.len() <= MAX_FRAME || !within_bounds(m));
    match msg::decode(&frame) {
        Ok(back) => assert_eq!(&back, m, "{what} changed through encode and decode"),
        Err(e) if frame.len() > MAX_FRAME => {
            assert!(matches!(e, msg::FrameError::TooLarge(_)), "{e}")
        }
        Err(e) => panic!("{what} was encoded to a frame that does not decode: {e}"),
    }
}

/// Whether a message keeps the bounds `decode` checks.
fn within_bounds(m: &Msg) -> bool {
    let heads = |h: &[msg::Hash]| h.len() <= MAX_HEADS;
    let id = |s: &str| s.len() <= MAX_ID_BYTES;
    match m {
        Msg::Hello(msg::Hello { node, .. }) | Msg::RestoringHello(msg::Hello { node, .. }) => {
            id(node)
        }
        Msg::Offer {
            after, upto, docs, ..
        } => {
            after <= upto
                && docs.len() <= MAX_BATCH_DOCS
                && docs.iter().all(|d| id(&d.id) && heads(&d.heads))
        }
        Msg::Want { wants, .. } => {
            wants.len() <= MAX_BATCH_DOCS
                && wants.iter().all(|w| match w {
                    Want::Since(h) => heads(h),
                    _ => true,
                })
        }
        Msg::Data { start, docs, .. } => {
            (*start as usize).saturating_add(docs.len()) <= MAX_BATCH_DOCS
                && docs.iter().all(|p| p.len() <= msg::MAX_DOC_BYTES)
        }
        Msg::Ack { .. } | Msg::Clock { .. } => true,
        Msg::Bye { reason } => reason.len() <= MAX_REASON_BYTES,
        Msg::Refused { docs } => {
            docs.len() <= MAX_BATCH_DOCS
                && docs
                    .iter()
                    .all(|d| id(&d.id) && heads(&d.heads) && d.reason.len() <= MAX_REASON_BYTES)
        }
    }
}

fn hashes(u: &mut Unstructured<'_>) -> Result<Vec<msg::Hash>> {
    let n = u.int_in_range(0..=MAX_HEADS + 1)?;
    (0..n).map(|_| u.arbitrary()).collect()
}

fn text(u: &mut Unstructured<'_>, max: usize) -> Result<String> {
    let s: String = u.arbitrary()?;
    Ok(s.chars().take(max).collect())
}

fn hello(u: &mut Unstructured<'_>) -> Result<msg::Hello> {
    Ok(msg::Hello {
        protocol: u.arbitrary()?,
        node: text(u, MAX_ID_BYTES + 8)?,
        feed: u.arbitrary()?,
        resume_feed: u.arbitrary()?,
        resume: u.arbitrary()?,
        head: u.arbitrary()?,
    })
}

/// A message built from the input's bytes (structure-aware).
fn recipe(u: &mut Unstructured<'_>) -> Result<Msg> {
    let count = |u: &mut Unstructured<'_>| u.int_in_range(0..=8usize);
    Ok(match u.int_in_range(0..=8u8)? {
        0 => Msg::Hello(hello(u)?),
        7 => Msg::RestoringHello(hello(u)?),
        1 => Msg::Offer {
            batch: u.arbitrary()?,
            after: u.arbitrary()?,
            upto: u.arbitrary()?,
            head: u.arbitrary()?,
            docs: (0..count(u)?)
                .map(|_| {
                    Ok(OfferDoc {
                        id: text(u, 200)?,
                        heads: hashes(u)?,
                    })
                })
                .collect::<Result<_>>()?,
        },
        2 => Msg::Want {
            batch: u.arbitrary()?,
            wants: (0..count(u)?)
                .map(|_| {
                    Ok(match u.int_in_range(0..=2u8)? {
                        0 => Want::Nothing,
                        1 => Want::Whole,
                        _ => Want::Since(hashes(u)?),
                    })
                })
                .collect::<Result<_>>()?,
        },
        3 => Msg::Data {
            batch: u.arbitrary()?,
            start: u.int_in_range(0..=MAX_BATCH_DOCS as u32 + 1)?,
            last: u.arbitrary()?,
            docs: (0..count(u)?)
                .map(|_| {
                    // Some large and repetitive, so frames get compressed.
                    let bytes: Vec<u8> = u.arbitrary()?;
                    let times = u.int_in_range(1..=64usize)?;
                    let bytes = bytes.repeat(times);
                    Ok(match u.int_in_range(0..=2u8)? {
                        0 => Payload::Nothing,
                        1 => Payload::Whole(bytes),
                        _ => Payload::Changes(bytes),
                    })
                })
                .collect::<Result<_>>()?,
        },
        4 => Msg::Ack {
            upto: u.arbitrary()?,
        },
        5 => Msg::Bye {
            reason: text(u, MAX_REASON_BYTES + 8)?,
        },
        6 => Msg::Clock {
            at_ms: u.arbitrary()?,
        },
        _ => Msg::Refused {
            docs: (0..count(u)?)
                .map(|_| {
                    Ok(RefusedDoc {
                        id: text(u, 200)?,
                        heads: hashes(u)?,
                        reason: text(u, 64)?,
                    })
                })
                .collect::<Result<_>>()?,
        },
    })
}
