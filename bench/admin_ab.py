#!/usr/bin/env python3
"""End-to-end latency while topics are created and deleted on a busy disk, for two builds, in
alternating pairs.

    python3 bench/admin_ab.py --before OLD_FJORD --after NEW_FJORD [--pairs 3]
        [--duration 15] [--partitions 16] [--load-rate 150000]

Each run starts a fresh broker and three clients at once:

* a loader, `fjord perf produce` of 1 KiB records at --load-rate records/s to its own topic,
  which keeps the disk busy writing back (so that an fsync waits behind it);
* an admin loop, `fjord topics --create` of a topic with --partitions partitions and
  `--delete` of it, over and over;
* `fjord perf e2e --rate 1000` on a third topic for --duration seconds.

Prints each run's e2e p50/p99/max and how long the admin calls took. A metadata fsync or a
partition directory's creation that holds up a runtime worker, or the partition map, shows as
e2e latency of the same size. The measurement behind running admin changes' file system work
off the runtime and outside the partition map's lock (docs/performance.md, session 11).
"""
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)


def admin_loop(fjord, addr, partitions, stop, took, log):
    """Creates and deletes a topic until `stop` is set; appends each call's seconds to
    `took`."""
    n = 0
    while not stop.is_set():
        topic = f"admin-{n}"
        for args in (["--create", "--partitions", str(partitions)], ["--delete"]):
            started = time.monotonic()
            subprocess.run([fjord, "topics", "--bootstrap-server", addr, "--topic", topic,
                            *args], stdout=log, stderr=log, check=True)
            took.append(time.monotonic() - started)
        n += 1


def one_run(fjord, duration, partitions, load_rate):
    with R.fresh_broker(fjord, "fjord-admin-ab-") as (broker, log):
        records = int(load_rate * (duration + 10))
        loader = subprocess.Popen(
            [fjord, "perf", "produce", "--topic", "load", "--num-records", str(records),
             "--record-size", "1024", "--throughput", str(load_rate),
             "--bootstrap-server", broker.addr, "--producer-props", "acks=1"],
            stdout=log, stderr=log)
        stop, took = threading.Event(), []
        admin = threading.Thread(target=admin_loop,
                                 args=(fjord, broker.addr, partitions, stop, took, log))
        admin.start()
        try:
            doc, w = R.run_client(fjord, broker, [
                "e2e", "--rate", "1000", "--duration", str(duration), "--topic", "e2e"],
                log, settle=False)
        finally:
            stop.set()
            admin.join()
            loader.kill()
            loader.wait()
        return {**doc["latency_ms"], "admin_calls": len(took),
                "admin_median_s": statistics.median(took) if took else 0.0,
                "admin_max_s": max(took, default=0.0), "load": w["load_1m"]}


def main():
    ap = R.ab_arguments(__doc__, pairs=3)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--load-rate", type=int, default=150000)
    args = ap.parse_args()
    runs = R.alternate_pairs(
        args.pairs,
        lambda which: one_run(getattr(args, which), args.duration, args.partitions,
                              args.load_rate),
        lambda r: f"e2e p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, max {r['max']:.2f} ms; "
                  f"{r['admin_calls']} admin calls, median {r['admin_median_s']:.2f} s, "
                  f"max {r['admin_max_s']:.2f} s (load {r['load']:.2f})")
    R.print_medians(runs, ("p50", "p99", "max"), "median e2e ms")


if __name__ == "__main__":
    main()
