#!/usr/bin/env bash
# The e2e tail after gigabytes of produce (docs/performance.md, "The tail at 100 MB/s"):
# for each run, a fresh broker takes 4 x 1,000,000 x 1 KiB (about 4 GB, acks=1), then
# `fjord perf e2e` runs at 100 MB/s for 10 s; prints the dirty page cache before the e2e run
# and its result line. The release build and the data dir's file system are what is measured.
#
#   bench/e2e_tail.sh [RUNS] [FJORD]      defaults: 4 runs, target/release/fjord
set -euo pipefail
RUNS="${1:-4}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FJORD="${2:-$ROOT/target/release/fjord}"
mkdir -p "$ROOT/target"
for run in $(seq "$RUNS"); do
    data="$(mktemp -d "$ROOT/target/e2e-tail.XXXXXX")"
    out="$data.out"
    RUST_LOG=warn "$FJORD" start --data-dir "$data" \
        --override listeners=PLAINTEXT://127.0.0.1:0 >"$out" 2>"$data.err" &
    broker=$!
    for _ in $(seq 100); do grep -q "listening on" "$out" && break; sleep 0.1; done
    addr="$(sed -n 's/.*listening on \([^,]*\).*/\1/p' "$out" | head -1 | tr -d ' ')"
    for t in a b c d; do
        "$FJORD" perf produce --topic "w$t" --partitions 1 --num-records 1000000 \
            --record-size 1024 --throughput -1 --bootstrap-server "$addr" \
            --producer-props acks=1 >/dev/null 2>&1
    done
    dirty="$(awk '/^Dirty:/ {print $2}' /proc/meminfo)"
    line="$("$FJORD" perf e2e --topic e2e --rate 102400 --duration 10 --record-size 1024 \
        --bootstrap-server "$addr" 2>/dev/null | tail -1)"
    echo "run $run: dirty ${dirty} kB before e2e; $line"
    kill "$broker"
    wait "$broker" || true
    rm -rf "$data" "$out" "$data.err"
done
