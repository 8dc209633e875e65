#!/usr/bin/env python3
"""Produce latency while DeleteRecords trims the same partition, for two builds, in
alternating pairs.

    python3 bench/delete_records_ab.py --before OLD_FJORD --after NEW_FJORD [--pairs 3]
        [--seconds 15] [--rate 100000] [--every-ms 250]

Each run starts a fresh broker, then at once:

* `fjord perf produce` of 1 KiB records at --rate records/s (constant rate, latency from the
  scheduled send) to a 1-partition topic, which also keeps the disk busy writing back;
* a loop sending DeleteRecords for that partition up to its high watermark every --every-ms,
  as Kafka Streams does for its repartition topics (raw protocol, DeleteRecords v0).

Prints each run's produce p50/p99/max and how long the DeleteRecords calls took. A
DeleteRecords that fsyncs its checkpoint under the partition's lock shows as produce latency of
the same size. The measurement behind making the new start durable off that lock
(docs/performance.md, session 12).
"""
import os
import socket
import statistics
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)
from commits import read_exactly, string  # noqa: E402

TOPIC = "trimmed"


def delete_records_request(correlation):
    """DeleteRecords v0 (request header v1): partition 0 of TOPIC up to the high watermark."""
    body = (struct.pack(">i", 1) + string(TOPIC) + struct.pack(">i", 1)
            + struct.pack(">iq", 0, -1) + struct.pack(">i", 30000))
    frame = struct.pack(">hhi", 21, 0, correlation) + string("bench-delete-records") + body
    return struct.pack(">i", len(frame)) + frame


def deleter(addr, every, stop, took):
    """Sends DeleteRecords every `every` seconds until `stop`; appends each call's seconds to
    `took` (the topic may not exist yet: those answers count too)."""
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    correlation = 0
    while not stop.wait(every):
        correlation += 1
        started = time.monotonic()
        sock.sendall(delete_records_request(correlation))
        (size,) = struct.unpack(">i", read_exactly(sock, 4))
        read_exactly(sock, size)
        took.append(time.monotonic() - started)
    sock.close()


def one_run(fjord, seconds, rate, every_ms):
    with R.fresh_broker(fjord, "fjord-delete-records-ab-") as (broker, log):
        stop, took = threading.Event(), []
        loop = threading.Thread(target=deleter, args=(broker.addr, every_ms / 1000, stop, took))
        loop.start()
        try:
            doc, w = R.run_client(fjord, broker, [
                "produce", "--topic", TOPIC, "--num-records", str(int(rate * seconds)),
                "--record-size", "1024", "--throughput", str(rate),
                "--producer-props", "acks=1"], log, settle=False)
        finally:
            stop.set()
            loop.join()
        lat = doc["latency_ms"]
        return {"p50": lat["p50"], "p99": lat["p99"], "max": lat["max"],
                "deletes": len(took), "delete_median_ms": 1000 * statistics.median(took or [0]),
                "delete_max_ms": 1000 * max(took, default=0.0), "load": w["load_1m"]}


def main():
    ap = R.ab_arguments(__doc__, pairs=3)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rate", type=int, default=100000)
    ap.add_argument("--every-ms", type=int, default=250)
    args = ap.parse_args()
    runs = R.alternate_pairs(
        args.pairs,
        lambda which: one_run(getattr(args, which), args.seconds, args.rate, args.every_ms),
        lambda r: f"produce p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, max {r['max']:.2f} ms;"
                  f" {r['deletes']} DeleteRecords, median {r['delete_median_ms']:.1f} ms, max "
                  f"{r['delete_max_ms']:.1f} ms (load {r['load']:.2f})")
    R.print_medians(runs, ("p50", "p99", "max", "delete_median_ms", "delete_max_ms"))


if __name__ == "__main__":
    main()
