#!/usr/bin/env bash
# The test suite: unit and property tests, the SIGKILL crash test, and the
# end-to-end CLI tests through the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --workspace --locked "$@"
