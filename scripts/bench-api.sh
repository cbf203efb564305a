#!/usr/bin/env bash
# API benchmark: a city, a county and a township as three `hallsync run`
# processes on loopback. In one run, side by side: the store benchmark's
# workload through the library (before and after), the same complete cases
# through the township's API from concurrent clients (cases/s, the ratio,
# p50/p99 per write), propagation township → county → city while clients
# write, the console's first page at the county and its peak RSS. Prints
# one table.
#   BENCH_API_CASES        complete cases through the API (default 10000)
#   BENCH_API_CLIENTS      concurrent API clients (default 16)
#   BENCH_API_PROBES       propagation probes (default 1000)
#   BENCH_API_PROBE_EVERY  one acceptance in this many is a probe (default 4)
#   BENCH_API_COUNTY_CASES cases the county holds for the first page (default 100000)
#   BENCH_API_OPEN         how many of those are open (default 10000)
#   BENCH_API_PAGES        first-page requests timed (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked -p hallsync --bench api
