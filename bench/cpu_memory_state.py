#!/usr/bin/env python3
"""Broker CPU per GB for 1 GB of 100 B records, alternating runs whose page cache grows into
memory just touched ("warm") with runs that grow into memory the VM's host has taken back
("cold"), on one broker. Shows how much of the CPU figure is the machine's memory rather
than the broker (docs/performance.md, "A measurement trap").

    python3 bench/cpu_memory_state.py [--fjord target/release/fjord] [--pairs 3] [--gib 3]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fjord", default=os.path.join(R.ROOT, "target", "release", "fjord"))
    ap.add_argument("--pairs", type=int, default=3, help="warm/cold pairs of runs")
    ap.add_argument("--gib", type=float, default=3.0, help="GiB touched before a warm run")
    ap.add_argument("--records", type=int, default=10_000_000)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="fjord-cpu-mem-")
    broker = R.Broker(args.fjord, os.path.join(base, "data"), os.path.join(base, "broker.log"))
    log = open(os.path.join(base, "clients.log"), "wb")
    runs = {"warm": [], "cold": []}
    try:
        for i in range(2 * args.pairs):
            state = "warm" if i % 2 == 0 else "cold"
            R.settle_disk()
            if state == "warm":
                R.warm_guest_memory(args.gib, passes=1)
            _, w = R.run_client(args.fjord, broker, [
                "produce", "--topic", f"cpu-mem-{i}", "--num-records", str(args.records),
                "--record-size", "100", "--throughput", "-1", "--partitions", "1",
                "--producer-props", "acks=1", *R.PRODUCER_PROPS], log)
            per_gb = w["broker_cpu_s"] / (args.records * 100 / 1e9)
            runs[state].append(per_gb)
            print(f"run {i + 1}: {state}: {per_gb:.2f} broker CPU-s/GB "
                  f"(load {w['load_1m']:.2f}, others {w['others_cores']:.2f} cores)", flush=True)
    finally:
        broker.stop()
        log.close()
        shutil.rmtree(base, ignore_errors=True)
    for state, values in runs.items():
        print(f"{state}: median {statistics.median(values):.2f}, "
              f"range {min(values):.2f}-{max(values):.2f} CPU-s/GB over {len(values)} runs")


if __name__ == "__main__":
    main()
