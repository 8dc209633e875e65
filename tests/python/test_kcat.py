"""Debian's kcat (librdkafka 2.0.x): an older client that negotiates lower
protocol versions than current librdkafka/kafka-python do."""

from __future__ import annotations

import json
import re
import subprocess
import threading

import pytest

from fjord_support import ck_consume, ck_create_topic, ck_produce, kp_consume, kp_produce, wait_for

FMT = "%k:%s:%p:%o\\n"


def kcat(kcat_bin, bootstrap, *args, input: str | bytes | None = None, timeout: float = 60.0, check: bool = True):
    cmd = [kcat_bin, "-b", bootstrap, *args]
    proc = subprocess.run(
        cmd,
        input=input.encode() if isinstance(input, str) else input,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
        assert "ERROR" not in err, f"{cmd} reported errors:\n{err}"
    return out, err


def kcat_consume(kcat_bin, bootstrap, topic, *extra, fmt=FMT):
    out, _ = kcat(kcat_bin, bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-f", fmt, *extra)
    return out


def test_kcat_version_is_old_librdkafka(kcat_bin):
    out = subprocess.run([kcat_bin, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10).stdout.decode()
    m = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", out)
    assert m, out
    # Not a requirement of the broker, but this suite is meant to exercise an
    # older client; make it visible if the distro package moves on.
    print("kcat built on librdkafka", m.group(0))


def test_kcat_list_metadata(kcat_bin, bootstrap, broker, admin, topic):
    ck_create_topic(admin, topic, partitions=3)
    out, _ = kcat(kcat_bin, bootstrap, "-L")
    assert " 1 brokers:" in out
    assert re.search(rf"^\s+broker 1 at {re.escape(broker.host)}:{broker.port}\b", out, re.M), out
    block = re.search(rf'topic "{re.escape(topic)}" with (\d+) partitions:\n((?:\s+partition .*\n?)+)', out)
    assert block, out
    assert block.group(1) == "3"
    lines = [line.strip() for line in block.group(2).strip().splitlines()]
    assert lines == [f"partition {p}, leader 1, replicas: 1, isrs: 1" for p in range(3)]


def test_kcat_list_metadata_json(kcat_bin, bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=2)
    out, _ = kcat(kcat_bin, bootstrap, "-L", "-J", "-t", topic)
    md = json.loads(out)
    assert [b["id"] for b in md["brokers"]] == [1]
    (t,) = md["topics"]
    assert t["topic"] == topic and "error" not in t
    assert [(p["partition"], p["leader"]) for p in t["partitions"]] == [(0, 1), (1, 1)]


def test_kcat_produce_then_consume_from_beginning(kcat_bin, bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    kcat(kcat_bin, bootstrap, "-P", "-t", topic, "-K:", input="k1:v1\nk2:v2\nk3:hello world\n")
    out = kcat_consume(kcat_bin, bootstrap, topic)
    assert out == "k1:v1:0:0\nk2:v2:0:1\nk3:hello world:0:2\n"
    # The modern clients read what kcat wrote.
    got = ck_consume(bootstrap, topic, [0], expected=3)
    assert [(r.key, r.value) for r in got] == [(b"k1", b"v1"), (b"k2", b"v2"), (b"k3", b"hello world")]


def test_kcat_reads_what_modern_clients_wrote(kcat_bin, bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    ck_produce(bootstrap, topic, [{"key": b"a", "value": b"from-confluent"}])
    kp_produce(bootstrap, topic, [{"key": b"b", "value": b"from-kafka-python"}])
    assert kcat_consume(kcat_bin, bootstrap, topic) == "a:from-confluent:0:0\nb:from-kafka-python:0:1\n"


def test_kcat_auto_creates_topic_on_produce(kcat_bin, bootstrap, topic):
    kcat(kcat_bin, bootstrap, "-P", "-t", topic, "-K:", input="x:1\n")
    assert kcat_consume(kcat_bin, bootstrap, topic) == "x:1:0:0\n"


def test_kcat_multi_partition(kcat_bin, bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=3)
    for p in range(3):
        kcat(kcat_bin, bootstrap, "-P", "-t", topic, "-p", str(p), "-K:", input=f"p{p}a:x\np{p}b:y\n")
    out = kcat_consume(kcat_bin, bootstrap, topic)
    assert sorted(out.splitlines()) == sorted(f"p{p}{k}:{v}:{p}:{o}" for p in range(3) for o, (k, v) in enumerate([("a", "x"), ("b", "y")]))
    out, _ = kcat(kcat_bin, bootstrap, "-C", "-t", topic, "-p", "1", "-o", "beginning", "-e", "-f", FMT)
    assert out == "p1a:x:1:0\np1b:y:1:1\n"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kcat_compressed_produce(kcat_bin, bootstrap, admin, topic, codec):
    ck_create_topic(admin, topic)
    lines = [f"key{i}:{codec} line {i} " + "z" * (i % 40) for i in range(200)]
    kcat(kcat_bin, bootstrap, "-P", "-t", topic, "-K:", "-z", codec, "-X", "linger.ms=100", input="\n".join(lines) + "\n")
    out = kcat_consume(kcat_bin, bootstrap, topic)
    assert out.splitlines() == [f"{line}:0:{i}" for i, line in enumerate(lines)]
    got = kp_consume(bootstrap, topic, [0], expected=200)
    assert [f"{r.key.decode()}:{r.value.decode()}" for r in got] == lines


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kcat_reads_compressed_batches(kcat_bin, bootstrap, admin, topic, codec):
    ck_create_topic(admin, topic)
    values = [f"{codec}-{i}-" + "q" * (i % 50) for i in range(150)]
    ck_produce(bootstrap, topic, [{"key": b"k", "value": v.encode()} for v in values], **{"compression.type": codec, "linger.ms": 50})
    out = kcat_consume(kcat_bin, bootstrap, topic)
    assert out.splitlines() == [f"k:{v}:0:{i}" for i, v in enumerate(values)]


def test_kcat_headers(kcat_bin, bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    kcat(kcat_bin, bootstrap, "-P", "-t", topic, "-K:", "-H", "h1=v1", "-H", "h2=", input="k:with headers\n")
    out = kcat_consume(kcat_bin, bootstrap, topic, fmt="%k:%s:%h\\n")
    assert out == "k:with headers:h1=v1,h2=\n"
    got = ck_consume(bootstrap, topic, [0], expected=1)
    assert got[0].headers == [("h1", b"v1"), ("h2", b"")]


def test_kcat_offsets_from_end_and_by_time(kcat_bin, bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    base = 1_600_000_000_000
    ck_produce(bootstrap, topic, [{"key": str(i).encode(), "value": b"v", "timestamp": base + i * 100} for i in range(10)])
    # Relative offset from the end uses ListOffsets(latest).
    out, _ = kcat(kcat_bin, bootstrap, "-C", "-t", topic, "-o", "-3", "-e", "-f", "%k:%o\\n")
    assert out == "7:7\n8:8\n9:9\n"
    # Query by timestamp uses ListOffsets with a timestamp.
    out, _ = kcat(kcat_bin, bootstrap, "-Q", "-t", f"{topic}:0:{base + 450}")
    assert re.search(rf"{re.escape(topic)} \[0\] offset 5\b", out), out
    # Timestamps are delivered as produced.
    out = kcat_consume(kcat_bin, bootstrap, topic, fmt="%k:%T\\n")
    assert out.splitlines() == [f"{i}:{base + i * 100}" for i in range(10)]


def test_kcat_null_key_and_empty_value(kcat_bin, bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    ck_produce(bootstrap, topic, [{"key": None, "value": b"nokey"}, {"key": b"tomb", "value": None}])
    # -Z prints NULL for null keys/values.
    out = kcat_consume(kcat_bin, bootstrap, topic, "-Z", fmt="%k|%s|%o\\n")
    assert out == "NULL|nokey|0\ntomb|NULL|1\n"


def test_kcat_idempotent_producer(kcat_bin, bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    lines = [f"k{i}:v{i}" for i in range(50)]
    kcat(kcat_bin, bootstrap, "-P", "-t", topic, "-K:", "-X", "enable.idempotence=true", input="\n".join(lines) + "\n")
    out = kcat_consume(kcat_bin, bootstrap, topic)
    assert out.splitlines() == [f"{line}:0:{i}" for i, line in enumerate(lines)]


def test_kcat_consume_waits_for_new_data(kcat_bin, bootstrap, admin, topic):
    """A tailing kcat (no -e) receives records produced after it reached the end."""
    ck_create_topic(admin, topic)
    proc = subprocess.Popen(
        [kcat_bin, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-c", "2", "-f", FMT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stderr_lines: list[str] = []

    def read_stderr():
        for line in proc.stderr:
            stderr_lines.append(line.decode(errors="replace"))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("Reached end of topic" in line for line in stderr_lines), what="kcat to reach the end")
        ck_produce(bootstrap, topic, [{"key": b"late", "value": b"1"}])
        ck_produce(bootstrap, topic, [{"key": b"late", "value": b"2"}])
        proc.wait(timeout=60)  # -c 2: exits after two records
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    assert proc.returncode == 0, "".join(stderr_lines)
    assert out.decode() == "late:1:0:0\nlate:2:0:1\n"
