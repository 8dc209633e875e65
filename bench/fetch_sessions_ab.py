#!/usr/bin/env python3
"""A consumer of many partitions with and without fetch sessions (KIP-227), on one broker.

    .venv/bin/python bench/fetch_sessions_ab.py --fjord target/release/fjord [--pairs 4]
        [--partitions 1000] [--rate 1000] [--seconds 10] [--size 100]

Needs kafka-python (the test venv, `scripts/test.sh` makes it): kafka-python uses fetch
sessions as the Java client does, and can turn them off (`enable_incremental_fetch_sessions`),
so one broker serves both sides and only the client's choice alternates. "before" is a
consumer without sessions, which is what every client got from Fjord before it made
sessions; "after" is one with them.

One fresh broker; a topic of --partitions partitions made first. Each run: a kafka-python
consumer is assigned every partition at its end, then `fjord perf produce` sends
--rate x --seconds records of --size bytes, keyed over all partitions, at a constant rate.
The run ends when the consumer has them all. Reported per run: the broker's utime + stime
from /proc over the run, the consumer's CPU seconds, its Fetch requests and end-to-end
latency (record timestamp -> poll, ms resolution) percentiles. Pairs alternate the order.
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)


def consume_run(fjord, broker, log, topic, partitions, rate, seconds, size, sessions):
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=broker.addr,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=500,
        enable_incremental_fetch_sessions=sessions,
    )
    count_fetches(consumer)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_end(*tps)
    for tp in tps:
        consumer.position(tp)  # resolve every position before the window opens
    # Reach the steady state (the session made, if any) before measuring.
    consumer.poll(timeout_ms=200)
    fetches0 = fetch_count(consumer)
    records = rate * seconds
    window = R.Window(broker.pid)
    cpu0 = time.process_time()
    producer = subprocess.Popen(
        [fjord, "perf", "produce", "--bootstrap-server", broker.addr, "--topic", topic,
         "--num-records", str(records), "--record-size", str(size), "--throughput", str(rate),
         "--keys", str(partitions), "--producer-props", "acks=1", "linger.ms=0"],
        stdout=log, stderr=log)
    latencies = []
    deadline = time.monotonic() + seconds * 3 + 30
    try:
        while len(latencies) < records and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=100).values():
                now_ms = time.time() * 1000
                latencies.extend(now_ms - m.timestamp for m in batch)
    finally:
        producer.wait(timeout=seconds * 3 + 60)
    client_cpu = time.process_time() - cpu0
    w = window.close(client_cpu)
    fetches = fetch_count(consumer) - fetches0
    consumer.close()
    if len(latencies) < records:
        raise RuntimeError(f"consumer got {len(latencies)} of {records} records")
    latencies.sort()

    def pct(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        "broker_cpu_s": w["broker_cpu_s"],
        "client_cpu_s": client_cpu,
        "fetches": fetches,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "load": w["load_1m"],
        "others": w["others_cores"],
    }


def count_fetches(consumer):
    """Counts the Fetch answers the consumer handles (kafka-python has no total metric): its
    fetcher looks the handler up on the instance each time it sends a Fetch."""
    fetcher = consumer._fetcher
    handle = fetcher._handle_fetch_response
    fetcher.answers = 0

    def counted(*args, **kwargs):
        fetcher.answers += 1
        return handle(*args, **kwargs)

    fetcher._handle_fetch_response = counted


def fetch_count(consumer):
    return consumer._fetcher.answers


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fjord", default=os.path.join(R.ROOT, "target", "release", "fjord"))
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=1000, help="records per second")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--size", type=int, default=100, help="record value bytes")
    args = ap.parse_args()
    topic = "sessions"
    with R.fresh_broker(args.fjord, "fjord-sessions-ab-") as (broker, log):
        R.run_client(args.fjord, broker, [
            "produce", "--topic", topic, "--num-records", "1", "--record-size", "10",
            "--partitions", str(args.partitions), "--producer-props", "acks=1"], log)

        def run(which):
            return consume_run(args.fjord, broker, log, topic, args.partitions, args.rate,
                               args.seconds, args.size, sessions=which == "after")

        def describe(r):
            return (f"broker {r['broker_cpu_s']:.2f} CPU-s, consumer {r['client_cpu_s']:.2f} "
                    f"CPU-s, {r['fetches']:.0f} fetches, p50 {r['p50_ms']:.1f} ms, "
                    f"p99 {r['p99_ms']:.1f} ms, load {r['load']:.2f}, "
                    f"others {r['others']:.2f} cores")

        print(f"{args.partitions} partitions, {args.rate} records/s of {args.size} B for "
              f"{args.seconds} s; before = no fetch session, after = fetch session", flush=True)
        runs = R.alternate_pairs(args.pairs, run, describe)
        R.print_medians(runs, ["broker_cpu_s", "client_cpu_s", "fetches", "p50_ms", "p99_ms"],
                        label="median")
        for which, rs in runs.items():
            print(f"{which}: median broker CPU-s per fetch "
                  f"{statistics.median(r['broker_cpu_s'] / max(r['fetches'], 1) for r in rs) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
