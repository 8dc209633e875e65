#!/usr/bin/env python3
"""Produce under `flush.messages=1` (an fsync before every acknowledgement) with several
producers at once: records/s and latency, to measure group commit (one fsync covering every
append that arrived while the previous one ran) against fsyncing each append under the
partition lock.

    python3 bench/flush.py [--fjord target/release/fjord] [--producers 4] [--records 20000]
        [--record-size 1024] [--partitions 1] [--repeat 3]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)

PROPS = ["acks=all", "linger.ms=0", "compression.codec=none"]


def one_run(args, broker, topic, log):
    """Creates `topic` with flush.messages=1, runs the producers at once; returns a summary."""
    subprocess.run([args.fjord, "topics", "--bootstrap-server", broker.addr, "--create",
                    "--topic", topic, "--partitions", str(args.partitions),
                    "--config", "flush.messages=1"], check=True, stdout=log, stderr=log)
    R.settle_disk()
    window = R.Window(broker.pid)
    outs = [tempfile.TemporaryFile() for _ in range(args.producers)]
    started = time.monotonic()
    procs = [subprocess.Popen(
        [args.fjord, "perf", "produce", "--topic", topic, "--num-records", str(args.records),
         "--record-size", str(args.record_size), "--throughput", "-1",
         "--producer-props", *PROPS, "--bootstrap-server", broker.addr, "--json"],
        stdout=out, stderr=log) for out in outs]
    client_cpu = 0.0
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        client_cpu += usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"producer exited {status}")
    elapsed = time.monotonic() - started
    w = window.close(client_cpu)
    docs = []
    for out in outs:
        out.seek(0)
        docs.append(R.json.loads(out.read().decode().strip().splitlines()[-1]))
        out.close()
    total = args.producers * args.records
    return {
        "records_per_s": total / elapsed,
        "p50_ms": statistics.median(d["latency_ms"]["p50"] for d in docs),
        "p99_ms": max(d["latency_ms"]["p99"] for d in docs),
        "broker_cpu_s": w["broker_cpu_s"],
        "load": w["load_1m"],
        "others": w["others_cores"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fjord", default=os.path.join(R.ROOT, "target", "release", "fjord"))
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--records", type=int, default=20_000, help="records per producer")
    ap.add_argument("--record-size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="fjord-flush-", dir=os.path.join(R.ROOT, "target"))
    broker = R.Broker(args.fjord, os.path.join(base, "data"), os.path.join(base, "broker.log"))
    log = open(os.path.join(base, "clients.log"), "wb")
    runs = []
    try:
        for i in range(args.repeat):
            r = one_run(args, broker, f"flush-{i}", log)
            runs.append(r)
            print(f"run {i + 1}: {r['records_per_s']:,.0f} records/s, p50 {r['p50_ms']:.2f} ms, "
                  f"worst p99 {r['p99_ms']:.2f} ms, broker {r['broker_cpu_s']:.2f} CPU-s "
                  f"(load {r['load']:.2f}, others {r['others']:.2f} cores)", flush=True)
    finally:
        broker.stop()
        log.close()
        shutil.rmtree(base, ignore_errors=True)
    rates = [r["records_per_s"] for r in runs]
    print(f"{args.producers} producers x {args.records} x {args.record_size} B, "
          f"{args.partitions} partition(s), flush.messages=1, {' '.join(PROPS)}: median "
          f"{statistics.median(rates):,.0f} records/s (range {min(rates):,.0f}-{max(rates):,.0f})")


if __name__ == "__main__":
    main()
