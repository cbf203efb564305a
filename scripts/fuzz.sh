#!/usr/bin/env bash
# Long fuzz runs: coverage-guided libFuzzer on stable Rust.
#
#   scripts/fuzz.sh HARNESS [SECONDS]   # one harness (default 600 s)
#   scripts/fuzz.sh all [SECONDS]       # each in turn, SECONDS each
#   scripts/fuzz.sh list                # the harnesses
#
# Builds fuzz/src/bin/libfuzzer.rs with LLVM's SanitizerCoverage switched on
# through stable rustc flags (-Cpasses=sancov-module ...; no nightly, no
# cargo-fuzz) into target/fuzz/, then runs it niced on one core. libFuzzer
# learns new inputs into target/fuzz/corpus/HARNESS (seeded from
# fuzz/corpus/HARNESS, which it never writes), and writes every input that
# breaks the harness (crash-*, oom-*, timeout-*) straight into
# fuzz/regressions/HARNESS/, where the test suite replays it from then on.
# Debug a crash with:
#   cargo run -p hallsync-fuzz --example replay -- HARNESS FILE
#
# Needs a C++ compiler for libFuzzer's runtime (installed from Debian,
# g++, if missing). FUZZ_ARGS adds libFuzzer flags (e.g. FUZZ_ARGS=-jobs=2).
set -euo pipefail
cd "$(dirname "$0")/.."

harnesses="frame doc wal_segment wal_recover block stored csv xlsx"
usage() {
    echo "usage: scripts/fuzz.sh HARNESS|all|list [SECONDS]" >&2
    echo "harnesses: $harnesses" >&2
    exit 2
}
[ $# -ge 1 ] || usage
what=$1
seconds=${2:-600}
case "$what" in
    list) echo "$harnesses"; exit 0 ;;
    all) ;;
    *) [[ " $harnesses " == *" $what "* ]] || usage ;;
esac

if ! command -v c++ >/dev/null; then
    echo "== libFuzzer's runtime is C++: installing g++ from Debian"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && apt-get install -y -qq g++
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq g++
    fi
fi

host=$(rustc -vV | sed -n 's/^host: //p')
# Coverage instrumentation (what cargo-fuzz passes, minus the sanitizer,
# which needs nightly), debug assertions and overflow checks on, --cfg
# fuzzing for anyone who wants it. --target keeps these flags off build
# scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks --cfg fuzzing"
echo "== building the fuzz target (target/fuzz, release, instrumented)"
nice -n 10 cargo build --locked --release -p hallsync-fuzz --features libfuzzer \
    --bin hallsync-fuzz --target "$host" --target-dir target/fuzz
bin=target/fuzz/$host/release/hallsync-fuzz

run() {
    local h=$1
    local work=target/fuzz/corpus/$h
    mkdir -p "$work" "fuzz/regressions/$h"
    echo "== fuzzing $h for ${seconds}s (learned inputs: $work; crashes: fuzz/regressions/$h/)"
    # -rss_limit_mb: an input that makes one run hold more than 2 GiB is
    # an oom-* crash; -timeout: one that takes 10 s is a timeout-* crash.
    # shellcheck disable=SC2086
    HALLSYNC_FUZZ=$h nice -n 10 "$bin" "$work" "fuzz/corpus/$h" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="fuzz/regressions/$h/" -print_final_stats=1 \
        ${FUZZ_ARGS:-} 2>&1 | tee "target/fuzz/$h.log" | grep --line-buffered -v -E '^#[0-9]+\s+(NEW|REDUCE)' || true
    local found
    found=$(find "fuzz/regressions/$h" -newer "$bin" -type f | wc -l)
    echo "== $h: $found new input(s) in fuzz/regressions/$h/ (full log: target/fuzz/$h.log)"
}

if [ "$what" = all ]; then
    for h in $harnesses; do run "$h"; done
else
    run "$what"
fi
