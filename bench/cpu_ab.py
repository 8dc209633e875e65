#!/usr/bin/env python3
"""Broker CPU per GB of 100 B records for two builds, in alternating pairs, with the broker's
page cache recycling inside a memory cgroup (docs/performance.md, session 5).

    python3 bench/cpu_ab.py --before OLD_FJORD --after NEW_FJORD [--pairs 4] [--cgroup-mib 384]
        [--size 100] [--records 10000000]

Each run starts a fresh broker on a fresh data dir, moves it into a cgroup-v1 memory group
limited to --cgroup-mib, produces --warm-records records to a warm-up topic (so that the group's
page cache is full and recycles from then on, instead of growing into memory the VM's host has
taken back, which made the same binary read anywhere from 0.8 to 2.3 CPU-s/GB), then measures
one `fjord perf produce` of --records x 100 B, 1 partition, acks=1: broker utime + stime and
voluntary context switches from /proc. Pairs alternate the order (before/after, after/before).
Needs root and /sys/fs/cgroup/memory (cgroup v1); prints each run and the medians.

With --cgroup-mib 0 there is no cgroup and no warm-up topic: each run is a fresh broker taking
--records x --size B right after `sync(2)`, the page cache growing as it would on a new broker
(session 19 compared session 3's build with today's that way, 1 KiB and 100 B). The client is
always the --after build's `fjord perf produce`, so only the broker differs.
"""
import glob
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)

CGROUP = "/sys/fs/cgroup/memory/fjord-bench"


def voluntary_switches(pid):
    total = 0
    for status in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(status) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread ended between the listing and the read
    return total


def produce_args(topic, records, size):
    return ["produce", "--topic", topic, "--num-records", str(records), "--record-size", str(size),
            "--throughput", "-1", "--partitions", "1", "--producer-props", "acks=1",
            *R.PRODUCER_PROPS]


def one_run(fjord, args):
    client = args.after
    with R.fresh_broker(fjord, "fjord-cpu-ab-") as (broker, log):
        if args.cgroup_mib:
            with open(os.path.join(CGROUP, "cgroup.procs"), "w") as f:
                f.write(str(broker.pid))
            R.run_client(client, broker, produce_args("warm-up", args.warm_records, args.size),
                         log, settle=False)
        R.settle_disk()
        switches = voluntary_switches(broker.pid)
        doc, w = R.run_client(client, broker, produce_args("measured", args.records, args.size),
                              log, settle=False)
        switches = voluntary_switches(broker.pid) - switches
        return {
            "cpu_per_gb": w["broker_cpu_s"] / (args.records * args.size / 1e9),
            "records_per_s": doc.get("records_per_sec", 0.0),
            "switches": switches,
            "load": w["load_1m"],
            "others": w["others_cores"],
        }


def main():
    ap = R.ab_arguments(__doc__, pairs=4)
    ap.add_argument("--cgroup-mib", type=int, default=384)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--warm-records", type=int, default=5_000_000)
    args = ap.parse_args()
    if args.cgroup_mib:
        if not os.path.isdir(os.path.dirname(CGROUP)):
            sys.exit("needs the cgroup-v1 memory controller at /sys/fs/cgroup/memory")
        os.makedirs(CGROUP, exist_ok=True)
        with open(os.path.join(CGROUP, "memory.limit_in_bytes"), "w") as f:
            f.write(str(args.cgroup_mib << 20))
    runs = R.alternate_pairs(
        args.pairs, lambda which: one_run(getattr(args, which), args),
        lambda r: f"{r['cpu_per_gb']:.2f} broker CPU-s/GB, {r['records_per_s']:,.0f} records/s, "
                  f"{r['switches']} voluntary switches (load {r['load']:.2f}, "
                  f"others {r['others']:.2f} cores)")
    for which, rs in runs.items():
        cpu = [r["cpu_per_gb"] for r in rs]
        print(f"{which}: median {statistics.median(cpu):.2f} CPU-s/GB, range "
              f"{min(cpu):.2f}-{max(cpu):.2f}; median "
              f"{statistics.median(r['switches'] for r in rs):.0f} voluntary switches")
    wins = sum(a["cpu_per_gb"] < b["cpu_per_gb"] for a, b in zip(runs["after"], runs["before"]))
    print(f"after below before in {wins} of {args.pairs} pairs")


if __name__ == "__main__":
    main()
