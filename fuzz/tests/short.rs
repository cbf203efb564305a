//! The short run of every fuzz harness, in the test suite: each replays
//! its regressions (every input that once broke it) and its corpus, then
//! runs deterministic mutations of the corpus (not coverage guided; the
//! long runs are `scripts/fuzz.sh`). An input that fails is written to
//! `target/fuzz-failures/<harness>/` to be replayed or kept.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use hallsync_fuzz::mutate::{mutant, Rng};
use hallsync_fuzz::{files, harness, root};

fn short_run(name: &str) {
    let h = harness(name).unwrap();
    let started = Instant::now();
    let regressions = files(&root().join("regressions").join(name));
    let corpus = files(&root().join("corpus").join(name));
    assert!(!corpus.is_empty(), "fuzz/corpus/{name} is empty");
    let try_one = |what: &str, input: &[u8]| {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (h.run)(input))) {
            let dir = root().join("../target/fuzz-failures").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{:08x}", crc32(input)));
            std::fs::write(&file, input).unwrap();
            eprintln!(
                "{name}: {what} failed; the input is in {} ({} bytes)",
                file.display(),
                input.len()
            );
            std::panic::resume_unwind(panic);
        }
    };
    for (path, input) in regressions.iter().chain(&corpus) {
        try_one(&path.display().to_string(), input);
    }
    // Seeded by the harness's name, so each run tries the same mutants.
    let mut rng = Rng::new(crc32(name.as_bytes()).into());
    for i in 0..h.short_run {
        let (_, seed) = &corpus[rng.below(corpus.len())];
        let (_, other) = &corpus[rng.below(corpus.len())];
        let input = mutant(&mut rng, seed, other);
        try_one(&format!("mutant {i}"), &input);
    }
    eprintln!(
        "{name}: {} regressions, {} corpus inputs and {} mutants in {:.1?}",
        regressions.len(),
        corpus.len(),
        h.short_run,
        started.elapsed()
    );
}

fn crc32(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b);
    h.finalize()
}

#[test]
fn frame() {
    short_run("frame");
}

#[test]
fn doc() {
    short_run("doc");
}

#[test]
fn wal_segment() {
    short_run("wal_segment");
}

#[test]
fn wal_recover() {
    short_run("wal_recover");
}

#[test]
fn block() {
    short_run("block");
}

#[test]
fn stored() {
    short_run("stored");
}

#[test]
fn csv() {
    short_run("csv");
}

#[test]
fn xlsx() {
    short_run("xlsx");
}

#[test]
fn every_harness_is_run_here() {
    let names: Vec<&str> = hallsync_fuzz::HARNESSES.iter().map(|h| h.name).collect();
    assert_eq!(
        names,
        [
            "frame",
            "doc",
            "wal_segment",
            "wal_recover",
            "block",
            "stored",
            "csv",
            "xlsx"
        ]
    );
}
