#!/usr/bin/env python3
"""Offset commits under `log.flush.interval.messages=1` (every commit fsynced before it is
acknowledged) from several connections at once: commits/s and latency, to measure commits
joining the offsets partition's group commit (session 6) against an fsync per commit inline,
under the coordinator's lock (before).

    python3 bench/commits.py [--fjord target/release/fjord] [--connections 8] [--seconds 5]
        [--groups same|distinct] [--repeat 3]

Each connection sends OffsetCommit v2 requests (generation -1: a simple consumer's commit,
one partition) one at a time, the next after the answer, for --seconds. `same`: every
connection commits for one group (one partition of __consumer_offsets); `distinct`: a group
each. Raw protocol over a socket, so it needs no client library.
"""
import argparse
import os
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)

TOPIC = "commits"


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def commit_request(correlation, group, offset):
    """OffsetCommit v2 (request header v1) for partition 0 of TOPIC."""
    body = (string(group) + struct.pack(">i", -1) + string("") + struct.pack(">q", -1)
            + struct.pack(">i", 1) + string(TOPIC)
            + struct.pack(">i", 1) + struct.pack(">iq", 0, offset) + struct.pack(">h", -1))
    header = struct.pack(">hhi", 8, 2, correlation) + string("bench-commits")
    frame = header + body
    return struct.pack(">i", len(frame)) + frame


def read_exactly(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        out += chunk
    return bytes(out)


def error_code(response):
    """The one partition's error code in an OffsetCommit v2 response body."""
    pos = 4  # correlation id
    pos += 4  # topics
    (name_len,) = struct.unpack_from(">h", response, pos)
    pos += 2 + name_len + 4 + 4  # name, partitions, partition index
    (code,) = struct.unpack_from(">h", response, pos)
    return code


def committer(addr, group, deadline, out):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies, correlation = [], 0
    while time.monotonic() < deadline:
        correlation += 1
        sent = time.monotonic()
        sock.sendall(commit_request(correlation, group, correlation))
        (size,) = struct.unpack(">i", read_exactly(sock, 4))
        response = read_exactly(sock, size)
        latencies.append(time.monotonic() - sent)
        code = error_code(response)
        if code != 0:
            raise RuntimeError(f"commit answered error {code}")
    sock.close()
    out.append(latencies)


def one_run(args, base, i):
    broker = R.Broker(args.fjord, os.path.join(base, f"data{i}"),
                      os.path.join(base, "broker.log"),
                      overrides=["log.flush.interval.messages=1"])
    log = open(os.path.join(base, "clients.log"), "ab")
    try:
        subprocess.run([args.fjord, "topics", "--bootstrap-server", broker.addr, "--create",
                        "--topic", TOPIC, "--partitions", "1"], check=True, stdout=log,
                       stderr=log)
        # One commit per group first, so that every group exists before the window.
        groups = [f"g{c}" if args.groups == "distinct" else "g"
                  for c in range(args.connections)]
        for g in set(groups):
            committer(broker.addr, g, 0, [])
        R.settle_disk()
        window = R.Window(broker.pid)
        own = resource.getrusage(resource.RUSAGE_SELF)
        results = []
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=committer, args=(broker.addr, g, deadline, results))
                   for g in groups]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        now = resource.getrusage(resource.RUSAGE_SELF)
        w = window.close(now.ru_utime + now.ru_stime - own.ru_utime - own.ru_stime)
        if len(results) != len(threads):
            raise RuntimeError("a committer failed (see above)")
        lat = sorted(x for r in results for x in r)
        return {
            "commits_per_s": len(lat) / args.seconds,
            "p50_ms": lat[len(lat) // 2] * 1e3,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3,
            "broker_cpu_s": w["broker_cpu_s"],
            "load": w["load_1m"],
            "others": w["others_cores"],
        }
    finally:
        broker.stop()
        log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fjord", default=os.path.join(R.ROOT, "target", "release", "fjord"))
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--groups", choices=["same", "distinct"], default="same")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="fjord-commits-")
    try:
        runs = []
        for i in range(args.repeat):
            r = one_run(args, base, i)
            runs.append(r)
            print(f"run {i + 1}: {r['commits_per_s']:,.0f} commits/s, p50 {r['p50_ms']:.2f} ms, "
                  f"p99 {r['p99_ms']:.2f} ms, broker {r['broker_cpu_s']:.2f} CPU-s "
                  f"(load {r['load']:.2f}, others {r['others']:.2f} cores)", flush=True)
        best = statistics.median(r["commits_per_s"] for r in runs)
        print(f"median {best:,.0f} commits/s over {args.repeat} runs "
              f"({args.connections} connections, groups {args.groups})")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
