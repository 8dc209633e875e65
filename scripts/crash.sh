#!/usr/bin/env bash
# Crash-safety harness (issue 6): kill -9s and simulated power losses against a real
# broker, checking that no acknowledged record is lost (see docs/crash-and-soak.md).
# CI runs 3 iterations as part of the e2e tests; this runs the long mode.
#
#   scripts/crash.sh                    50 iterations, a fresh seed (printed)
#   scripts/crash.sh 200                200 iterations
#   CRASH_SEED=123 scripts/crash.sh 50  replay the choices of a failed run
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${1:-}" in
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
esac

export CRASH_ITERATIONS="${1:-${CRASH_ITERATIONS:-50}}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
exec cargo test -p fjord-cli --test e2e -- \
    --exact crash::crash_loop_loses_no_acknowledged_record --nocapture
