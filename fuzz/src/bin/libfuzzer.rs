//! The libFuzzer target: one binary for every harness, which one named by
//! `HALLSYNC_FUZZ` (`scripts/fuzz.sh` sets it). Built only with the
//! `libfuzzer` feature and coverage instrumentation, by `scripts/fuzz.sh`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static RUN: OnceLock<fn(&[u8])> = OnceLock::new();

fuzz_target!(
    init: {
        let name = std::env::var("HALLSYNC_FUZZ").unwrap_or_default();
        match hallsync_fuzz::harness(&name) {
            Some(h) => {
                let _ = RUN.set(h.run);
            }
            None => {
                let names: Vec<&str> = hallsync_fuzz::HARNESSES.iter().map(|h| h.name).collect();
                eprintln!("set HALLSYNC_FUZZ to one of: {}", names.join(" "));
                std::process::exit(2);
            }
        }
    },
    |data: &[u8]| {
        if let Some(run) = RUN.get() {
            run(data);
        }
    }
);
