#!/usr/bin/env python3
"""`fjord perf produce` itself, two builds, in alternating pairs against one broker.

    python3 bench/produce_tool_ab.py --before OLD_FJORD --after NEW_FJORD [--pairs 4]
        [--records 3000000] [--size 100]

One broker (the --after build) on a fresh data dir serves every run; each run produces
--records x --size B records to a topic of its own (1 partition, acks=1, the suite's producer
settings) with the build's `fjord perf produce --throughput -1`. Prints each run's records/s
and the client's CPU seconds, and the medians. The measurement behind queuing records through
a topic handle (docs/performance.md, session 13): with 100 B records the tool, not the
broker, is the limit.
"""
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)


def main():
    ap = R.ab_arguments(__doc__, pairs=4)
    ap.add_argument("--records", type=int, default=3_000_000)
    ap.add_argument("--size", type=int, default=100)
    args = ap.parse_args()
    topics = itertools.count()
    with R.fresh_broker(args.after, "fjord-produce-tool-ab-") as (broker, log):
        def run(which):
            doc, w = R.run_client(getattr(args, which), broker, [
                "produce", "--topic", f"t{next(topics)}", "--num-records", str(args.records),
                "--record-size", str(args.size), "--throughput", "-1", "--partitions", "1",
                "--producer-props", "acks=1", *R.PRODUCER_PROPS], log)
            return {"records_per_s": doc["records_per_sec"], "client_cpu_s": w["client_cpu_s"],
                    "load": w["load_1m"]}

        runs = R.alternate_pairs(
            args.pairs, run,
            lambda r: f"{r['records_per_s']:,.0f} records/s, client {r['client_cpu_s']:.2f} "
                      f"CPU-s (load {r['load']:.2f})")
    R.print_medians(runs, ("records_per_s", "client_cpu_s"), label="median")


if __name__ == "__main__":
    main()
