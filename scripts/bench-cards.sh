#!/usr/bin/env bash
# Supervision cards benchmark: the standing cards of a county hub holding
# 100,000 open cases of its townships, listed as the desk and
# `hallsync warning list` do, beside the listing that reads every case.
#   BENCH_CARDS_OPEN  open cases the county holds (default 100000)
#   BENCH_CARDS_RUNS  runs of each listing (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked -p hallsync-hall --bench cards
