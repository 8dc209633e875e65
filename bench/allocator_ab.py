#!/usr/bin/env python3
"""librdkafka's own consume tool with the C library's malloc and with another allocator, in
alternating pairs against one broker (docs/performance.md, session 15).

    python3 bench/allocator_ab.py --fjord FJORD --reference-client RDKAFKA_PERFORMANCE
        --preload /usr/lib/x86_64-linux-gnu/libmimalloc.so.2 [--pairs 5] [--records 1000000]

One broker (FJORD) on a fresh data dir; --records x 1 KiB produced once to a 1-partition
topic; then `rdkafka_performance -C` reads them from the beginning, alternately as is and
with LD_PRELOAD=--preload. Prints each run's MB/s (2^20 bytes, from the tool's last total
line) and client CPU, and the medians. `fjord` itself links mimalloc in place of malloc; this
shows the same effect on a librdkafka client that does not.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)
import consume_ab  # noqa: E402


def consume(tool, broker, log, records, preload):
    env = dict(os.environ, LD_PRELOAD=preload) if preload else None
    mb_per_s, w = R.rdkafka_consume(tool, broker, log, "c", records, env=env)
    return {"mb_per_s": mb_per_s, "client_cpu_s": w["client_cpu_s"], "load": w["load_1m"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fjord", required=True)
    ap.add_argument("--reference-client", required=True, help="rdkafka_performance")
    ap.add_argument("--preload", required=True, help="the allocator's shared library")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    with R.fresh_broker(args.fjord, "fjord-allocator-ab-") as (broker, log):
        consume_ab.produce(args.fjord, broker, log, args.records)
        runs = R.alternate_pairs(
            args.pairs,
            lambda which: consume(args.reference_client, broker, log, args.records,
                                  args.preload if which == "after" else None),
            lambda r: (f"{r['mb_per_s']:,.0f} MB/s, client {r['client_cpu_s']:.2f} CPU-s "
                       f"(load {r['load']:.2f})"))
    print("before = the C library's malloc, after = LD_PRELOAD " + args.preload)
    R.print_medians(runs, ["mb_per_s", "client_cpu_s"], label="median")


if __name__ == "__main__":
    main()
