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
        // libFuzzer's hook aborts on any panic, even one caught. Automerge
        // 0.6 panics on some malformed input, which hallsync catches
        // (`schema::load_outside`): let those unwind, quietly. One not
        // caught still reaches libFuzzer, which aborts.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_automerge = info
                .location()
                .is_some_and(|l| l.file().contains("/automerge-"));
            if !in_automerge {
                abort(info);
            }
        }));
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
