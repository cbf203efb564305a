//! Fuzz harnesses: one per decoder of bytes from outside the process.
//!
//! | harness        | decoder                                                    |
//! |----------------|------------------------------------------------------------|
//! | `frame`        | a replication frame (`hallsync_sync::msg::decode`)          |
//! | `doc`          | a document: Automerge load, the strict schema reader, and a hall's document import |
//! | `wal_segment`  | the bytes of one write-ahead log segment (both formats)    |
//! | `wal_recover`  | recovery over a directory of segments, written by the real writer, then damaged |
//! | `block`        | sled's blocks: one block's value, and a tree of blocks read and folded |
//! | `stored`       | stored values: saved documents, heads, feed entries, the log's mark, dictionaries |
//! | `csv`          | catalogue CSV (`read_csv`, `items_from_table`), the calendar CSV and office hours |
//! | `xlsx`         | a spreadsheet file read by `read_table`                    |
//!
//! Each harness takes any bytes and panics only when an invariant breaks:
//! not just "no panic" but what must hold of what decodes (it round-trips,
//! validates, re-reads the same), of what recovery returns (only records
//! that were written, in order), and of memory (what one decode allocates
//! is bounded). The same functions run under libFuzzer (`scripts/fuzz.sh`)
//! and in the test suite (`tests/short.rs`: each harness's regressions,
//! corpus and a few thousand deterministic mutations).
//!
//! Corpora live in `fuzz/corpus/<harness>/` (made from real data by
//! `examples/make_corpus.rs`), and every input that once broke a harness
//! in `fuzz/regressions/<harness>/`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::{Path, PathBuf};

pub mod block;
pub mod doc;
pub mod frame;
pub mod mutate;
pub mod stored;
pub mod table;
pub mod wal;

/// One harness.
#[derive(Debug, Clone, Copy)]
pub struct Harness {
    /// Its name (the directory names under `corpus/` and `regressions/`).
    pub name: &'static str,
    /// Runs one input; panics when an invariant breaks.
    pub run: fn(&[u8]),
    /// Mutations the short run in the test suite tries.
    pub short_run: usize,
}

/// Every harness.
pub const HARNESSES: &[Harness] = &[
    Harness {
        name: "frame",
        run: frame::run,
        short_run: 3000,
    },
    Harness {
        name: "doc",
        run: doc::run,
        short_run: 600,
    },
    Harness {
        name: "wal_segment",
        run: wal::segment,
        short_run: 3000,
    },
    Harness {
        name: "wal_recover",
        run: wal::recover,
        short_run: 2000,
    },
    Harness {
        name: "block",
        run: block::run,
        short_run: 4000,
    },
    Harness {
        name: "stored",
        run: stored::run,
        short_run: 6000,
    },
    Harness {
        name: "csv",
        run: table::csv,
        short_run: 1000,
    },
    Harness {
        name: "xlsx",
        run: table::xlsx,
        short_run: 1000,
    },
];

/// The harness called `name`.
pub fn harness(name: &str) -> Option<&'static Harness> {
    HARNESSES.iter().find(|h| h.name == name)
}

/// This crate's directory (corpora and regressions are under it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of a directory, sorted by name, but for hidden ones such as
/// `.keep` (none if it is missing).
pub fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect();
    found.sort();
    found
}

/// Runs `f`, returning what it returns and the most bytes it (this thread)
/// held allocated at once.
pub fn measured<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let mut out = None;
    let info = allocation_counter::measure(|| out = Some(f()));
    match out {
        Some(v) => (v, info.bytes_max),
        None => unreachable!("measure runs the closure"),
    }
}

/// Runs `f` and checks that it never held more than `limit` bytes
/// allocated at once.
pub fn bounded<T>(what: &str, limit: u64, f: impl FnOnce() -> T) -> T {
    let (out, peak) = measured(f);
    assert!(
        peak <= limit,
        "{what} held {peak} bytes allocated at once, over its bound of {limit}"
    );
    out
}

/// A scratch directory for harnesses that need files: in memory
/// (`/dev/shm`) where there is one, so syncs cost nothing.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let made = if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("hallsync-fuzz")
            .tempdir_in(shm)
    } else {
        tempfile::Builder::new().prefix("hallsync-fuzz").tempdir()
    };
    made.unwrap_or_else(|e| panic!("cannot make a scratch directory: {e}"))
}
