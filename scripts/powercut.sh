#!/usr/bin/env bash
# The long power-cut run (issue 13): HALLSYNC_POWERCUT_ROUNDS simulated power
# cuts (default 200) for each mode, clean and torn, on the power-cut test
# filesystem (crates/powercut, FUSE). Needs root and /dev/fuse. Release build:
# every cut reloads every acknowledged case, which a debug build does slowly.
#   HALLSYNC_POWERCUT_SEED   reproduce a run (each mode prints its seed)
#   HALLSYNC_POWERCUT_FLUSH  `file`: strict POSIX flushes instead of ext4's
# A failure names its round, seed and cut, and keeps the disk as the cut left
# it (a data directory to open with hallsync).
set -euo pipefail
cd "$(dirname "$0")/.."
export HALLSYNC_POWERCUT_ROUNDS=${HALLSYNC_POWERCUT_ROUNDS:-200}
exec cargo test --release --locked -p hallsync-hall --test powercut "$@" -- --nocapture --test-threads=1
