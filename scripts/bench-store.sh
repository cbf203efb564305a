#!/usr/bin/env bash
# Store benchmark: complete cases (accept + 8 events, each write durable
# before it is acknowledged), disk bytes per case, reopen time, peak RSS.
#   BENCH_CASES   cases to write (default 100000)
#   BENCH_WRITERS concurrent writers sharing log syncs (default 16)
#   BENCH_SPREAD  cases each writer advances together (default 1; e.g. 200
#                 spreads each case's writes over many checkpoints)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked -p hallsync-hall --bench store
