"""Shared helpers for the Fjord interop suite.

Everything here is client-library glue: starting/stopping the broker
process, waiting on conditions with deadlines, and producing/consuming
with confluent-kafka and kafka-python into one comparable record shape.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import namedtuple
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"listening on (\S+):(\d+),")

# A record as read back by any client, normalised so results from different
# clients can be compared directly.  headers is a list of (str, bytes|None).
Rec = namedtuple("Rec", "partition offset key value headers timestamp")


# --------------------------------------------------------------------------
# generic helpers
# --------------------------------------------------------------------------


def unique_topic(hint: str = "t") -> str:
    """A fresh, legal topic name.  Only [a-z0-9-] so no '.'/'_' collisions."""
    clean = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:60] or "t"
    return f"{clean}-{uuid.uuid4().hex[:10]}"


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value or the deadline passes.

    Exceptions raised by the predicate count as "not yet" and the last one is
    reported if the deadline passes.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    last_val = None
    while True:
        try:
            last_val = predicate()
            if last_val:
                return last_val
            last_exc = None
        except Exception as exc:  # noqa: BLE001 - we re-report it below
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"last exception: {last_exc!r}" if last_exc else f"last value: {last_val!r}"
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; {detail}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# broker process
# --------------------------------------------------------------------------


def fjord_bin() -> Path:
    return Path(os.environ.get("FJORD_BIN", REPO_ROOT / "target" / "debug" / "fjord"))


class BrokerProcess:
    """One `fjord start` process on a data dir, listening on an ephemeral port."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        overrides: dict | None = None,
        file_limit: int | None = None,
        soft_file_limit: int | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.overrides = dict(overrides or {})
        # RLIMIT_NOFILE (soft and hard) for the broker process, when set.
        self.file_limit = file_limit
        # Only the soft RLIMIT_NOFILE, the hard one left as inherited.
        self.soft_file_limit = soft_file_limit
        self.proc: subprocess.Popen | None = None
        self.host: str | None = None
        self.port: int | None = None
        self.stdout_lines: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        self._log_file = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [str(fjord_bin()), "start", "--data-dir", str(self.data_dir)]
        overrides = {"listeners": "PLAINTEXT://127.0.0.1:0", **self.overrides}
        for key, value in overrides.items():
            cmd += ["--override", f"{key}={value}"]
        return cmd

    def start(self, timeout: float = 30.0) -> "BrokerProcess":
        binary = fjord_bin()
        if not binary.is_file():
            raise RuntimeError(
                f"fjord binary not found at {binary}; run `cargo build -p fjord-cli` "
                "or set FJORD_BIN"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")
        # FJORD_* variables are broker settings to fjord; FJORD_BIN is ours.
        env = {k: v for k, v in os.environ.items() if k != "FJORD_BIN"}
        cmd = self.command()
        if self.file_limit:
            limit = f"-n {int(self.file_limit)}"
        elif self.soft_file_limit:
            limit = f"-Sn {int(self.soft_file_limit)}"
        else:
            limit = None
        if limit:
            # Through the shell's ulimit, then exec (same pid): a preexec_fn is not safe in a
            # process with threads, and the client libraries run their own.
            cmd = ["bash", "-c", f'ulimit {limit} && exec "$0" "$@"', *cmd]
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise RuntimeError(
                    f"fjord did not print its listening line within {timeout}s\n"
                    f"stdout: {self.stdout_lines!r}\n{self.log_tail()}"
                )
            try:
                line = self._lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"fjord exited with {self.proc.returncode} before listening\n"
                        f"stdout: {self.stdout_lines!r}\n{self.log_tail()}"
                    )
                continue
            if line is None:
                continue
            m = LISTEN_RE.search(line)
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                return self

    def _drain_stdout(self):
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the broker and wait for it; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"fjord did not exit within {timeout}s of signal {sig}\n{self.log_tail()}"
                )
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, max_lines: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no broker log)"
        return "fjord stderr (tail):\n" + "\n".join(lines[-max_lines:])


# --------------------------------------------------------------------------
# confluent-kafka helpers
# --------------------------------------------------------------------------


def ck_admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def ck_topic_ready(admin, topic: str, partitions: int) -> bool:
    md = admin.list_topics(topic=topic, timeout=5)
    t = md.topics.get(topic)
    if t is None or t.error is not None or len(t.partitions) != partitions:
        return False
    return all(p.error is None and p.leader == 1 for p in t.partitions.values())


def ck_create_topic(admin, topic: str, partitions: int = 1, config: dict | None = None, timeout: float = 20.0):
    """Create a topic with confluent-kafka and wait until its metadata is complete."""
    from confluent_kafka.admin import NewTopic

    nt = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})
    futures = admin.create_topics([nt], operation_timeout=timeout, request_timeout=timeout)
    futures[topic].result(timeout=timeout)
    wait_for(lambda: ck_topic_ready(admin, topic, partitions), timeout, what=f"metadata for {topic}")
    return topic


def ck_producer(bootstrap: str, **overrides):
    from confluent_kafka import Producer

    conf = {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "message.timeout.ms": 30000,
    }
    conf.update(overrides)
    return Producer(conf)


def ck_produce(bootstrap: str, topic: str, records, timeout: float = 30.0, **producer_conf):
    """Produce records (dicts of Producer.produce kwargs) and return delivery reports.

    Fails if any record is not delivered.  Each report is (partition, offset).
    """
    producer = ck_producer(bootstrap, **producer_conf)
    reports: list = [None] * len(records)
    errors: list = []

    def make_cb(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                reports[i] = (msg.partition(), msg.offset())

        return cb

    for i, rec in enumerate(records):
        while True:
            try:
                producer.produce(topic, on_delivery=make_cb(i), **rec)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} messages still in the producer queue after {timeout}s"
    assert not errors, f"delivery errors: {errors[:5]}"
    return reports


def ck_consume(
    bootstrap: str,
    topic: str,
    partitions,
    expected: int,
    timeout: float = 30.0,
    start_offset=None,
    **consumer_conf,
) -> list[Rec]:
    """Read `partitions` of `topic` from the beginning (manual assignment, no group
    coordination) until `expected` records were read and every partition has
    reported end-of-partition after its last record."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": f"interop-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    conf.update(consumer_conf)
    consumer = Consumer(conf)
    start = OFFSET_BEGINNING if start_offset is None else start_offset
    parts = list(partitions)
    consumer.assign([TopicPartition(topic, p, start) for p in parts])
    out: list[Rec] = []
    at_eof = {p: False for p in parts}
    errors = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if len(out) >= expected and all(at_eof.values()):
                break
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_eof[msg.partition()] = True
                else:
                    errors.append(err)
                    if err.fatal():
                        break
                continue
            at_eof[msg.partition()] = False
            _ts_type, ts = msg.timestamp()
            out.append(
                Rec(msg.partition(), msg.offset(), msg.key(), msg.value(), list(msg.headers() or []), ts)
            )
    finally:
        consumer.close()
    assert len(out) == expected and all(at_eof.values()), (
        f"confluent consumer read {len(out)}/{expected} records from {topic} "
        f"(eof={at_eof}) in {timeout}s; errors: {errors[:5]}"
    )
    return out


# --------------------------------------------------------------------------
# kafka-python helpers
# --------------------------------------------------------------------------


def kp_producer(bootstrap: str, **overrides):
    from kafka import KafkaProducer

    conf = dict(bootstrap_servers=bootstrap, linger_ms=5, request_timeout_ms=30000)
    conf.update(overrides)
    return KafkaProducer(**conf)


def kp_produce(bootstrap: str, topic: str, records, timeout: float = 30.0, **producer_conf):
    """Produce records (dicts of KafkaProducer.send kwargs); returns [(partition, offset)]."""
    producer = kp_producer(bootstrap, **producer_conf)
    try:
        futures = [producer.send(topic, **rec) for rec in records]
        producer.flush(timeout=timeout)
        metas = [f.get(timeout=timeout) for f in futures]
    finally:
        producer.close(timeout=10)
    return [(m.partition, m.offset) for m in metas]


def kp_consume(bootstrap: str, topic: str, partitions, expected: int, timeout: float = 30.0, **consumer_conf) -> list[Rec]:
    """Read from the beginning with kafka-python (assign + seek, no group) until the
    position of every partition reaches its end offset."""
    from kafka import KafkaConsumer, TopicPartition

    conf = dict(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    conf.update(consumer_conf)
    consumer = KafkaConsumer(**conf)
    tps = [TopicPartition(topic, p) for p in partitions]
    out: list[Rec] = []
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(out) >= expected and all(consumer.position(tp) >= end[tp] for tp in tps):
                break
            batches = consumer.poll(timeout_ms=200)
            for _tp, msgs in batches.items():
                for m in msgs:
                    out.append(Rec(m.partition, m.offset, m.key, m.value, list(m.headers or []), m.timestamp))
    finally:
        consumer.close()
    assert len(out) == expected, (
        f"kafka-python consumer read {len(out)}/{expected} records from {topic} in {timeout}s "
        f"(end offsets {end})"
    )
    return out


def by_partition_offset(recs):
    return sorted(recs, key=lambda r: (r.partition, r.offset))
