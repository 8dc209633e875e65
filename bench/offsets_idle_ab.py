#!/usr/bin/env python3
"""Idle broker CPU with many committed offsets, for two builds, in alternating pairs.

    .venv/bin/python bench/offsets_idle_ab.py --before OLD_FJORD --after NEW_FJORD [--pairs 3]
        [--groups 500] [--partitions 200] [--seconds 10]

Each run starts a fresh broker, creates a topic of --partitions partitions, commits an offset
for every partition in each of --groups groups (confluent-kafka, one consumer per group that
never joins it, so every group stays empty and its offsets are candidates for expiry), then
measures the broker's CPU over --seconds with no client connected. Needs confluent-kafka (the
test venv that `scripts/test.sh` makes). The measurement behind checking offsets for expiry
every `offsets.retention.check.interval.ms` instead of at every 100 ms group tick (session 19,
docs/performance.md).
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)

from confluent_kafka import Consumer, TopicPartition  # noqa: E402


def one_run(fjord, args):
    with R.fresh_broker(fjord, "fjord-offsets-idle-") as (broker, log):
        subprocess.run([fjord, "topics", "--bootstrap-server", broker.addr, "--create",
                        "--topic", "t", "--partitions", str(args.partitions)],
                       stdout=log, stderr=log, check=True)
        for g in range(args.groups):
            c = Consumer({"bootstrap.servers": broker.addr, "group.id": f"g{g}",
                          "enable.auto.commit": False})
            c.commit(offsets=[TopicPartition("t", p, 0) for p in range(args.partitions)],
                     asynchronous=False)
            c.close()
        time.sleep(2)  # the last consumers' connections close
        before = R.proc_cpu_seconds(broker.pid)
        time.sleep(args.seconds)
        used = R.proc_cpu_seconds(broker.pid) - before
        return {"ms_per_s": used * 1000 / args.seconds}


def main():
    ap = R.ab_arguments(__doc__, pairs=3)
    ap.add_argument("--groups", type=int, default=500)
    ap.add_argument("--partitions", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    offsets = args.groups * args.partitions
    runs = R.alternate_pairs(
        args.pairs, lambda which: one_run(getattr(args, which), args),
        lambda r: f"idle broker CPU {r['ms_per_s']:.1f} ms per s with {offsets:,} offsets")
    R.print_medians(runs, ("ms_per_s",), label="median")


if __name__ == "__main__":
    main()
