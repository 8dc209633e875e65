#!/usr/bin/env python3
"""Consume throughput and broker CPU per GB read for two builds, in alternating pairs.

    python3 bench/consume_ab.py --before OLD_FJORD --after NEW_FJORD [--pairs 4] [--records 1000000]

Each run starts a fresh broker on a fresh data dir, produces --records x 1 KiB to a
1-partition topic (acks=1), waits for the disk to settle, then times one `fjord perf consume`
of them from the beginning, from the page cache: the client's fetch MB/s (after the first
record) and the broker's utime + stime from /proc per GB (10^9 bytes) read. Pairs alternate
the order (before/after, after/before). Prints each run and the medians.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)


def one_run(fjord, records):
    with R.fresh_broker(fjord, "fjord-consume-ab-") as (broker, log):
        R.run_client(fjord, broker, [
            "produce", "--topic", "c", "--num-records", str(records), "--record-size", "1024",
            "--throughput", "-1", "--partitions", "1", "--producer-props", "acks=1",
            *R.PRODUCER_PROPS], log)
        doc, w = R.run_client(fjord, broker, [
            "consume", "--topic", "c", "--messages", str(records)], log)
        return {
            "mb_per_s": doc["fetch_mb_per_sec"],
            "cpu_per_gb": w["broker_cpu_s"] / (records * 1024 / 1e9),
            "load": w["load_1m"],
            "others": w["others_cores"],
        }


def main():
    ap = R.ab_arguments(__doc__, pairs=4)
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    runs = R.alternate_pairs(
        args.pairs, lambda which: one_run(getattr(args, which), args.records),
        lambda r: f"{r['mb_per_s']:,.0f} MB/s, {r['cpu_per_gb']:.3f} broker CPU-s per GB read "
                  f"(load {r['load']:.2f}, others {r['others']:.2f} cores)")
    for which, rs in runs.items():
        mbs = [r["mb_per_s"] for r in rs]
        cpu = [r["cpu_per_gb"] for r in rs]
        print(f"{which}: median {statistics.median(mbs):,.0f} MB/s (range {min(mbs):,.0f}-"
              f"{max(mbs):,.0f}), median {statistics.median(cpu):.3f} CPU-s/GB read (range "
              f"{min(cpu):.3f}-{max(cpu):.3f})")


if __name__ == "__main__":
    main()
