#!/usr/bin/env bash
# How long DeleteTopics takes for a topic holding 1 GB, on a fresh broker.
#
#   bench/delete_topic.sh FJORD RDKAFKA_PERFORMANCE [RUNS]
#
# Each run starts a broker on a fresh data dir, produces 1,000,000 x 1 KiB to a 1-partition
# topic with rdkafka_performance, syncs, then times `fjord topics --delete` and says whether
# the partition directory is left renamed `.deleted` (removed after file.delete.delay.ms).
# The measurement behind deleting topics' directories on a background thread
# (docs/design.md §8, session 12).
set -euo pipefail
F=$1; PERF=$2; RUNS=${3:-2}
for run in $(seq "$RUNS"); do
    D=$(mktemp -d /tmp/fjord-delete-topic.XXXX)
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$F" start --data-dir "$D" --override "listeners=PLAINTEXT://127.0.0.1:$PORT" >/dev/null 2>&1 &
    BP=$!
    for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
    "$F" topics --bootstrap-server "127.0.0.1:$PORT" --create --topic big --partitions 1 --replication-factor 1 >/dev/null
    "$PERF" -P -t big -p 0 -b "127.0.0.1:$PORT" -s 1024 -c 1000000 -a 1 -X linger.ms=5 >/dev/null 2>&1
    sync
    s=$(date +%s%N)
    "$F" topics --bootstrap-server "127.0.0.1:$PORT" --delete --topic big >/dev/null
    e=$(date +%s%N)
    left=$(find "$D" -maxdepth 1 -name 'big-0*.deleted' | wc -l)
    echo "run $run: DeleteTopics took $(( (e - s) / 1000000 )) ms; renamed directories left: $left"
    kill "$BP"; wait "$BP" 2>/dev/null || true
    rm -rf "$D"
done
