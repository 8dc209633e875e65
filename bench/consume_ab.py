#!/usr/bin/env python3
"""Consume throughput and broker CPU per GB read for two builds, in alternating pairs.

    python3 bench/consume_ab.py --before OLD_FJORD --after NEW_FJORD [--pairs 4] [--records 1000000]
        [--clients-only] [--group] [--producer-props K=V ...]

Each run starts a fresh broker on a fresh data dir, produces --records x 1 KiB to a
1-partition topic (acks=1), waits for the disk to settle, then times one `fjord perf consume`
of them from the beginning, from the page cache: the client's fetch MB/s (after the first
record), the broker's utime + stime from /proc per GB (10^9 bytes) read, and the client's
CPU seconds. Pairs alternate the order (before/after, after/before). Prints each run and the
medians.

With --clients-only the change is in `fjord perf consume` itself: one broker (the --after
build) and one produced topic serve every run, and only the consuming binary alternates, so
that the memory state of fresh data does not differ between the two (session 13).
With --group each consume joins a group of its own (`--group`), as Kafka's tool does.
--producer-props are added to the producing run's (e.g. batch.size=16384, the Java
producer's default, for a topic of small batches; librdkafka's default makes ~1 MB batches).
"""
import itertools
import contextlib
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)


def produce(fjord, broker, log, records, props=()):
    R.run_client(fjord, broker, [
        "produce", "--topic", "c", "--num-records", str(records), "--record-size", "1024",
        "--throughput", "-1", "--partitions", "1", "--producer-props", "acks=1",
        *R.PRODUCER_PROPS, *props], log)


GROUPS = itertools.count()


def consume(fjord, broker, log, records, group=False):
    extra = ["--group", f"consume-ab-{os.getpid()}-{next(GROUPS)}"] if group else []
    doc, w = R.run_client(fjord, broker, [
        "consume", "--topic", "c", "--messages", str(records), *extra], log)
    return {
        "mb_per_s": doc["fetch_mb_per_sec"],
        "cpu_per_gb": w["broker_cpu_s"] / (records * 1024 / 1e9),
        "client_cpu_s": w["client_cpu_s"],
        "load": w["load_1m"],
        "others": w["others_cores"],
    }


def one_run(fjord, records, group, props):
    with R.fresh_broker(fjord, "fjord-consume-ab-") as (broker, log):
        produce(fjord, broker, log, records, props)
        return consume(fjord, broker, log, records, group)


def main():
    ap = R.ab_arguments(__doc__, pairs=4)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--clients-only", action="store_true",
                    help="one broker and topic for all runs; only the consumer alternates")
    ap.add_argument("--group", action="store_true",
                    help="consume as a member of a new group each run")
    ap.add_argument("--producer-props", nargs="+", default=[], metavar="K=V",
                    help="added to the producer's properties (e.g. batch.size=16384)")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        if args.clients_only:
            broker, log = stack.enter_context(R.fresh_broker(args.after, "fjord-consume-ab-"))
            produce(args.after, broker, log, args.records, args.producer_props)

            def run(which):
                return consume(getattr(args, which), broker, log, args.records, args.group)
        else:
            def run(which):
                return one_run(getattr(args, which), args.records, args.group,
                               args.producer_props)
        runs = R.alternate_pairs(
            args.pairs, run,
            lambda r: f"{r['mb_per_s']:,.0f} MB/s, {r['cpu_per_gb']:.3f} broker CPU-s per GB "
                      f"read, client {r['client_cpu_s']:.2f} CPU-s (load {r['load']:.2f}, "
                      f"others {r['others']:.2f} cores)")
    for which, rs in runs.items():
        mbs = [r["mb_per_s"] for r in rs]
        cpu = [r["cpu_per_gb"] for r in rs]
        client = [r["client_cpu_s"] for r in rs]
        print(f"{which}: median {statistics.median(mbs):,.0f} MB/s (range {min(mbs):,.0f}-"
              f"{max(mbs):,.0f}), median {statistics.median(cpu):.3f} CPU-s/GB read (range "
              f"{min(cpu):.3f}-{max(cpu):.3f}), client median {statistics.median(client):.2f} "
              f"CPU-s (range {min(client):.2f}-{max(client):.2f})")


if __name__ == "__main__":
    main()
