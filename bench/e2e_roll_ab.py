#!/usr/bin/env python3
"""End-to-end latency across segment rolls, for two builds, in alternating pairs.

    python3 bench/e2e_roll_ab.py --before OLD_FJORD --after NEW_FJORD [--pairs 4]
        [--rate 51200] [--duration 10] [--segment-mib 100] [--retention-mib M] [--partitions P]

Each run starts a fresh broker whose segments roll every --segment-mib MiB
(`log.segment.bytes`), then runs `fjord perf e2e` at --rate 1 KiB records/s for --duration
seconds, so the partition rolls several times while the producer and the consumer are busy
(at 50 MB/s and 100 MiB segments, about every 2 s). Prints each run's p50/p99/p99.9/max and
the medians. The measurement behind moving the roll's fsync off the partition lock
(docs/performance.md, session 10). With --retention-mib the partition also keeps only about M
MiB (`log.retention.bytes`, checked every second), so segments are deleted during the run
(session 12: deleted segments' files removed off the partition's lock). Each run also
reports the client's CPU and the TCP segments the machine sent during it (`OutSegs` of
/proc/net/snmp: both sides of both connections, on an otherwise idle machine); with
--segment-mib 1024 (the default segment size) that is the measurement behind corking fetch
answers (session 13). With --partitions P the e2e topic has P partitions (records spread over
them by librdkafka's partitioner, the consumer fetching all of them): with 1,000 at 1,000
msg/s every fetch names 1,000 partitions, the measurement behind session 16's cheaper
partition lookups.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)


def one_run(fjord, rate, duration, segment_bytes, retention_bytes=None, partitions=1):
    overrides = [f"log.segment.bytes={segment_bytes}"]
    if retention_bytes is not None:
        overrides += [f"log.retention.bytes={retention_bytes}",
                      "log.retention.check.interval.ms=1000"]
    with R.fresh_broker(fjord, "fjord-e2e-roll-ab-", overrides) as (broker, log):
        # Made before the measured window: creating 1,000 partitions is not what it measures.
        subprocess.run([fjord, "topics", "--bootstrap-server", broker.addr, "--create",
                        "--topic", "fjord-perf-e2e", "--partitions", str(partitions)],
                       stdout=log, stderr=log, check=True)
        segments_out = tcp_segments_out()
        doc, w = R.run_client(fjord, broker, [
            "e2e", "--rate", str(rate), "--duration", str(duration),
            "--partitions", str(partitions)], log, settle=False)
        segments_out = tcp_segments_out() - segments_out
        partition_dir = os.path.join(os.path.dirname(log.name), "data", "fjord-perf-e2e-0")
        segments = len([f for f in os.listdir(partition_dir)
                        if f.endswith(".log") and f != "spare.log"])
        return {**doc["latency_ms"], "segments": segments, "load": w["load_1m"],
                "others": w["others_cores"], "broker_cpu_s": w["broker_cpu_s"],
                "client_cpu_s": w["client_cpu_s"], "tcp_segments_k": segments_out / 1000}


def tcp_segments_out():
    """TCP segments this machine has sent (`Tcp: OutSegs` in /proc/net/snmp)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("OutSegs")])


def main():
    ap = R.ab_arguments(__doc__, pairs=4)
    ap.add_argument("--rate", type=int, default=51200)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--segment-mib", type=int, default=100)
    ap.add_argument("--retention-mib", type=int)
    ap.add_argument("--partitions", type=int, default=1)
    args = ap.parse_args()
    runs = R.alternate_pairs(
        args.pairs,
        lambda which: one_run(getattr(args, which), args.rate, args.duration,
                              args.segment_mib * R.MIB,
                              args.retention_mib and args.retention_mib * R.MIB,
                              args.partitions),
        lambda r: f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, p99.9 {r['p99_9']:.2f} ms, "
                  f"max {r['max']:.2f} ms, {r['segments']} log segments, broker "
                  f"{r['broker_cpu_s']:.1f} CPU-s, client {r['client_cpu_s']:.1f} CPU-s, "
                  f"{r['tcp_segments_k']:.0f} k TCP segments (load {r['load']:.2f}, "
                  f"others {r['others']:.2f} cores)")
    R.print_medians(runs, ("p50", "p99", "p99_9", "max"))
    R.print_medians(runs, ("broker_cpu_s", "client_cpu_s", "tcp_segments_k"), label="median")


if __name__ == "__main__":
    main()
