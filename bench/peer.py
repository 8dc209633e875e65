#!/usr/bin/env python3
"""Fjord against another Kafka-compatible broker on this machine, in alternating pairs.

    python3 bench/peer.py --fjord target/release/fjord --reference-client PATH \\
        --peer 'COMMAND with {port} (and {dir}, a fresh directory)' [--pairs 3] \\
        [--e2e-rates 1000,102400]

The issue's produce targets are "at least that of an in-memory, non-durable Rust peer broker
measured with librdkafka's standard perf tool on this machine". This measures both brokers
the same way, one fresh broker per run, the two taking turns so that the machine's drift
(docs/performance.md) falls on both:

* produce 200,000 x 1 KiB and 1,000,000 x 100 B to a 1-partition topic, acks=1, with
  librdkafka's rdkafka_performance (the suite's reference rows), then consume them from the
  beginning with the same tool (`-C`);
* `fjord perf e2e` at each of --e2e-rates 1 KiB records/s for 10 s (a librdkafka producer and
  consumer; latency from the scheduled send to receipt);
* the broker's CPU seconds (from /proc) and peak RSS over each of those.

The peer is any command that starts a broker listening on 127.0.0.1:{port}; topics are
created through the Kafka admin API (`fjord topics --create`). Prints every run and the
medians; --json FILE also writes them.
"""
import argparse
import contextlib
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the suite's helpers)

PRODUCE = [(200_000, 1024), (1_000_000, 100)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


class AnyBroker:
    """A broker started from a command line; `addr`, `pid` and `hwm_kib` as run.Broker has."""

    def __init__(self, argv, log):
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log,
                                     env=dict(os.environ, RUST_LOG="warn"))
        self.pid = self.proc.pid

    def hwm_kib(self):
        return R.proc_status_kib(self.pid, "VmHWM")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def started(which, args):
    base = tempfile.mkdtemp(prefix=f"fjord-peer-{which}-")
    port = free_port()
    data = os.path.join(base, "data")
    os.makedirs(data)
    if which == "fjord":
        argv = [args.fjord, "start", "--data-dir", data,
                "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}"]
    else:
        argv = shlex.split(args.peer.format(port=port, dir=data))
    with open(os.path.join(base, "broker.log"), "wb") as log:
        broker = AnyBroker(argv, log)
        try:
            wait_for_port(port, broker.proc)
            broker.addr = f"127.0.0.1:{port}"
            yield broker, log
        finally:
            broker.stop()
            shutil.rmtree(base, ignore_errors=True)


def create_topic(fjord, broker, topic, log):
    subprocess.run([fjord, "topics", "--bootstrap-server", broker.addr, "--create", "--topic",
                    topic, "--partitions", "1", "--replication-factor", "1"],
                   check=True, stdout=log, stderr=log, timeout=60)


def produce(args, broker, log, records, size):
    topic = f"peer-{size}b"
    create_topic(args.fjord, broker, topic, log)
    cmd = [args.reference_client, "-P", "-t", topic, "-p", "0", "-b", broker.addr,
           "-s", str(size), "-c", str(records), "-a", "1", "-X", "linger.ms=5"]
    R.settle_disk()
    R.reset_peak_rss(broker.pid)
    cpu0 = R.proc_cpu_seconds(broker.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    cpu = R.proc_cpu_seconds(broker.pid) - cpu0
    log.write((out.stdout + out.stderr).encode())
    line = next((l for l in out.stdout.splitlines() if " msgs/s and " in l), None)
    if line is None:
        raise RuntimeError(f"rdkafka_performance printed no result:\n{out.stdout}{out.stderr}")
    rate = float(line.split(" msgs/s and ")[0].rsplit(" ", 1)[1])
    result = {f"produce_{size}b_mb_s": rate * size / R.MIB,
              f"produce_{size}b_rec_s": rate,
              f"produce_{size}b_cpu_s_per_gb": cpu / (records * size / 1e9),
              f"produce_{size}b_peak_rss_mib": broker.hwm_kib() / 1024}
    result.update(consume(args, broker, log, topic, records, size))
    return result


def consume(args, broker, log, topic, records, size):
    """The records just produced, from the beginning, with rdkafka_performance -C."""
    cmd = [args.reference_client, "-C", "-t", topic, "-p", "0", "-b", broker.addr,
           "-o", "beginning", "-c", str(records)]
    cpu0 = R.proc_cpu_seconds(broker.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    cpu = R.proc_cpu_seconds(broker.pid) - cpu0
    log.write((out.stdout + out.stderr).encode())
    line = next((l for l in out.stdout.splitlines()
                 if f"{records} messages" in l and " consumed in " in l), None)
    if line is None:
        raise RuntimeError(f"rdkafka_performance -C printed no result:\n{out.stdout}{out.stderr}")
    rate = float(line.split(" msgs/s")[0].rsplit(" ", 1)[1])
    return {f"consume_{size}b_mb_s": rate * size / R.MIB,
            f"consume_{size}b_cpu_s_per_gb": cpu / (records * size / 1e9)}


def e2e(args, broker, log, rate):
    topic = f"peer-e2e-{rate}"
    create_topic(args.fjord, broker, topic, log)
    cpu0 = R.proc_cpu_seconds(broker.pid)
    R.reset_peak_rss(broker.pid)
    try:
        doc, _ = R.run_client(args.fjord, broker, [
            "e2e", "--rate", str(rate), "--duration", "10", "--topic", topic], log,
            settle=False)
    except RuntimeError as e:
        # A broker that falls behind: the tool gives up 10 s after the last send, prints what
        # it measured and exits 1. Its figures count only the records that arrived.
        doc = json.loads(str(e).strip().splitlines()[-1])
    lat = doc["latency_ms"]
    return {f"e2e_{rate}_p50_ms": lat["p50"], f"e2e_{rate}_p99_ms": lat["p99"],
            f"e2e_{rate}_max_ms": lat["max"],
            f"e2e_{rate}_received_pct": 100.0 * doc["received"] / max(1, doc["sent"]),
            f"e2e_{rate}_broker_cpu_s": R.proc_cpu_seconds(broker.pid) - cpu0,
            f"e2e_{rate}_peak_rss_mib": broker.hwm_kib() / 1024}


def one_run(which, args):
    result = {"load_1m": R.loadavg()}
    with started(which, args) as (broker, log):
        for records, size in PRODUCE:
            result.update(produce(args, broker, log, int(records * args.scale), size))
        for rate in args.e2e_rates:
            result.update(e2e(args, broker, log, rate))
        result["idle_rss_mib"] = R.proc_status_kib(broker.pid, "VmRSS") / 1024
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fjord", required=True)
    ap.add_argument("--reference-client", required=True, metavar="RDKAFKA_PERFORMANCE")
    ap.add_argument("--peer", required=True, metavar="COMMAND")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the record counts")
    ap.add_argument("--e2e-rates", default="1000,102400",
                    type=lambda s: [int(r) for r in s.split(",") if r])
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    args.fjord = os.path.abspath(args.fjord)
    runs = {"fjord": [], "peer": []}
    for i in range(args.pairs):
        for which in (["fjord", "peer"] if i % 2 == 0 else ["peer", "fjord"]):
            r = one_run(which, args)
            runs[which].append(r)
            print(f"pair {i + 1} {which}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()),
                  flush=True)
    keys = [k for k in runs["fjord"][0] if k != "load_1m"]
    print(f"\n{'median (range)':<32}{'fjord':>26}{'peer':>26}")
    for k in keys:
        cells = []
        for which in ("fjord", "peer"):
            v = [r[k] for r in runs[which]]
            cells.append(f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})")
        print(f"{k:<32}{cells[0]:>26}{cells[1]:>26}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peer": args.peer, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
