#!/usr/bin/env bash
# Statistics benchmark: a city hub's statistics (the whole city, a county,
# a township) from its tallies, at 100,000 and then 1,000,000 cases written
# straight into its store.
#   BENCH_STATS_FIRST  cases at the first measurement (default 100000)
#   BENCH_STATS_CASES  cases at the second (default 1000000)
#   BENCH_STATS_RUNS   runs of each query (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked -p hallsync-hall --bench stats
