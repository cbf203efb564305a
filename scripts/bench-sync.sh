#!/usr/bin/env bash
# Sync benchmark: a township and its county as two `hallsync run` processes
# on loopback. Initial sync of N case documents (10 fields + 8 events),
# incremental sync after one new event on 10% of them, and the initial sync
# through a relay capped at 4 Mbit/s, and a township rebuilt from its county.
# Prints a table.
#   BENCH_SYNC_N        document counts, comma-separated (default 10000,100000)
#   BENCH_SYNC_CAPPED_N documents for the capped run (default 10000; 0 skips)
#   BENCH_RESTORE_N     cases of the township rebuilt from its county with
#                       `hallsync restore --bundle`, on loopback and through
#                       the relay (default 50000; 0 skips)
#   BENCH_WRITERS       writers filling the township (default 16)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked -p hallsync --bench sync
