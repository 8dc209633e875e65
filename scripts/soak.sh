#!/usr/bin/env bash
# Soak test (issue 6): one broker holds 1,000 connections (100 acks=all producers,
# 100 group consumers, idle raw connections for the rest) for 10 minutes. Prints an
# RSS/connection sample every 5 s, then produce latency p50/p99/p99.9 and the RSS
# summary; fails on any client error or unbounded RSS growth. Not part of CI.
#
#   scripts/soak.sh                     the full run (SOAK_SECONDS=600), release build
#   SOAK_SECONDS=60 scripts/soak.sh     a short run
#
# Other knobs (environment): SOAK_RATE (records/s per producer, 20),
# SOAK_CONNECTIONS (1000), SOAK_PRODUCERS (100), SOAK_CONSUMERS (100).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${1:-}" in
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

# The test process holds ~1,000 sockets plus librdkafka's; so does the broker.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [[ $(ulimit -n) -lt 4096 ]]; then
    echo "soak: open-file limit $(ulimit -n) is too low (needs 4096)" >&2
    exit 1
fi

export SOAK_SECONDS="${SOAK_SECONDS:-600}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "soak: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), SOAK_SECONDS=$SOAK_SECONDS"
exec cargo test --release -p fjord-cli --test e2e -- \
    --ignored --exact soak::soak_1000_connections_100_producers_100_consumers --nocapture
