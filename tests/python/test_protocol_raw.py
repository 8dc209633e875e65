"""Hand-encoded ApiVersions exchanges: what every client does first, at the
oldest (v0), newest-flexible (v3) and too-new versions."""

from __future__ import annotations

import os
import socket
import struct

import pytest

from fjord_support import ck_create_topic, ck_produce, wait_for

API_VERSIONS = 18

# API keys the broker is meant to serve (see the broker's contract).
REQUIRED_APIS = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    18: "ApiVersions",
    19: "CreateTopics",
    20: "DeleteTopics",
    21: "DeleteRecords",
    22: "InitProducerId",
    32: "DescribeConfigs",
    33: "AlterConfigs",
    35: "DescribeLogDirs",
    37: "CreatePartitions",
    44: "IncrementalAlterConfigs",
    60: "DescribeCluster",
    75: "DescribeTopicPartitions",
}


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def request(api_key: int, version: int, corr: int, body: bytes = b"", flexible: bool = False, client_id: str = "fjord-raw") -> bytes:
    cid = client_id.encode()
    header = struct.pack(">hhih", api_key, version, corr, len(cid)) + cid
    if flexible:
        header += uvarint(0)  # empty tagged fields
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)}/{n} bytes")
        buf += chunk
    return bytes(buf)


def recv_response(sock: socket.socket) -> tuple[int, bytes]:
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    frame = recv_exact(sock, size)
    (corr,) = struct.unpack(">i", frame[:4])
    return corr, frame[4:]  # ApiVersions responses always use response header v0


def parse_api_versions_v0(body: bytes) -> tuple[int, dict]:
    err, n = struct.unpack(">hi", body[:6])
    apis = {}
    pos = 6
    for _ in range(n):
        key, lo, hi = struct.unpack(">hhh", body[pos : pos + 6])
        apis[key] = (lo, hi)
        pos += 6
    return err, apis


def parse_api_versions_v3(body: bytes) -> tuple[int, dict, int]:
    (err,) = struct.unpack(">h", body[:2])
    n, pos = read_uvarint(body, 2)
    apis = {}
    for _ in range(n - 1):
        key, lo, hi = struct.unpack(">hhh", body[pos : pos + 6])
        pos += 6
        tags, pos = read_uvarint(body, pos)
        assert tags == 0
        apis[key] = (lo, hi)
    (throttle,) = struct.unpack(">i", body[pos : pos + 4])
    return err, apis, throttle


@pytest.fixture
def conn(broker):
    s = socket.create_connection((broker.host, broker.port), timeout=10)
    yield s
    s.close()


def test_api_versions_v0(conn):
    conn.sendall(request(API_VERSIONS, 0, 7))
    corr, body = recv_response(conn)
    assert corr == 7
    err, apis = parse_api_versions_v0(body)
    assert err == 0
    missing = {name for key, name in REQUIRED_APIS.items() if key not in apis}
    assert not missing, f"ApiVersions does not advertise {sorted(missing)}"
    for key, (lo, hi) in apis.items():
        assert 0 <= lo <= hi, (key, lo, hi)
    assert apis[API_VERSIONS][0] == 0 and apis[API_VERSIONS][1] >= 3


def test_api_versions_v3_flexible(conn):
    body = uvarint(len(b"fjord-raw") + 1) + b"fjord-raw" + uvarint(len(b"1.0") + 1) + b"1.0" + uvarint(0)
    conn.sendall(request(API_VERSIONS, 3, 8, body, flexible=True))
    corr, resp = recv_response(conn)
    assert corr == 8
    err, apis, throttle = parse_api_versions_v3(resp)
    assert err == 0 and throttle >= 0
    assert set(REQUIRED_APIS) <= set(apis)


def test_api_versions_too_new_version_downgrades(conn):
    """A client newer than the broker gets UNSUPPORTED_VERSION (35) with a v0 body
    listing what the broker does support, so it can retry at a lower version."""
    conn.sendall(request(API_VERSIONS, 127, 9, b"\x01\x01\x00", flexible=True))
    corr, body = recv_response(conn)
    assert corr == 9
    err, apis = parse_api_versions_v0(body)
    assert err == 35
    assert API_VERSIONS in apis


def test_old_clients_versions_are_served(conn):
    """Debian's librdkafka 2.0 and kafka-python pinned to 0.11-2.0 need these lows."""
    conn.sendall(request(API_VERSIONS, 0, 1))
    _, body = recv_response(conn)
    _, apis = parse_api_versions_v0(body)
    needed = {0: 3, 1: 4, 2: 1, 3: 1}  # Produce v3, Fetch v4, ListOffsets v1, Metadata v1
    for key, version in needed.items():
        lo, hi = apis[key]
        assert lo <= version <= hi, f"{REQUIRED_APIS[key]} serves v{lo}-v{hi}, not v{version}"


def test_pipelined_requests_answer_in_order(conn):
    conn.sendall(b"".join(request(API_VERSIONS, v, 100 + i) for i, v in enumerate([0, 1, 2, 0, 1, 2])))
    assert [recv_response(conn)[0] for _ in range(6)] == [100, 101, 102, 103, 104, 105]


def test_metadata_v1_brokers(conn, broker):
    """Metadata v1 (non-flexible, as in 0.10-era clients) with an empty topic
    array (no topics): the broker list is still complete."""
    conn.sendall(request(3, 1, 42, struct.pack(">i", 0)))
    corr, body = recv_response(conn)
    assert corr == 42
    (n_brokers,) = struct.unpack(">i", body[:4])
    assert n_brokers == 1
    pos = 4
    node_id, host_len = struct.unpack(">ih", body[pos : pos + 6])
    pos += 6
    host = body[pos : pos + host_len].decode()
    pos += host_len
    (port,) = struct.unpack(">i", body[pos : pos + 4])
    assert (node_id, host, port) == (1, broker.host, broker.port)


def read_string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack(">h", buf[pos : pos + 2])
    pos += 2
    return buf[pos : pos + n].decode(), pos + n


def describe_log_dirs_v1(host: str, port: int) -> list[dict]:
    """DescribeLogDirs v1 for all topics (v0, dropped by Kafka 4.0, is answered as v1 for
    kafka-python: test_kafka_python.py)."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(request(35, 1, 77, struct.pack(">i", -1)))
        corr, body = recv_response(s)
    assert corr == 77
    pos = 4  # throttle_time_ms
    (n_dirs,) = struct.unpack(">i", body[pos : pos + 4])
    pos += 4
    dirs = []
    for _ in range(n_dirs):
        (err,) = struct.unpack(">h", body[pos : pos + 2])
        log_dir, pos = read_string(body, pos + 2)
        (n_topics,) = struct.unpack(">i", body[pos : pos + 4])
        pos += 4
        topics = {}
        for _ in range(n_topics):
            name, pos = read_string(body, pos)
            (n_parts,) = struct.unpack(">i", body[pos : pos + 4])
            pos += 4
            parts = {}
            for _ in range(n_parts):
                idx, size, lag, future = struct.unpack(">iqq?", body[pos : pos + 21])
                pos += 21
                parts[idx] = size
            topics[name] = parts
        dirs.append({"error_code": err, "log_dir": log_dir, "topics": topics})
    assert pos == len(body), f"{len(body) - pos} trailing bytes in DescribeLogDirs v1 response"
    return dirs


def test_describe_log_dirs_reports_compressed_size(broker, admin, topic):
    """The log dir lists the topic, with a size showing that compressed batches
    were stored as sent (not decompressed)."""
    ck_create_topic(admin, topic, partitions=2)
    ck_produce(
        broker.bootstrap,
        topic,
        [{"value": b"a" * 1000, "partition": 0}] * 500,
        **{"compression.type": "gzip", "linger.ms": 100, "batch.num.messages": 10000},
    )

    def sizes():
        (d,) = describe_log_dirs_v1(broker.host, broker.port)
        assert d["error_code"] == 0
        return d["topics"].get(topic)

    parts = wait_for(sizes, what=f"{topic} in DescribeLogDirs")
    assert set(parts) == {0, 1}
    assert parts[1] == 0
    # 500 KB of highly compressible values: stored compressed, far smaller.
    assert 0 < parts[0] < 50_000, parts
    (d,) = describe_log_dirs_v1(broker.host, broker.port)
    assert os.path.isabs(d["log_dir"]) and os.path.isdir(d["log_dir"]), d["log_dir"]


def compact_str(s: str) -> bytes:
    b = s.encode()
    return uvarint(len(b) + 1) + b


class Reader:
    """Cursor over a flexible-version response body."""

    def __init__(self, buf: bytes, pos: int = 0):
        self.buf, self.pos = buf, pos

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        vals = struct.unpack(fmt, self.buf[self.pos : self.pos + size])
        self.pos += size
        return vals if len(vals) > 1 else vals[0]

    def uvarint(self) -> int:
        v, self.pos = read_uvarint(self.buf, self.pos)
        return v

    def compact_str(self):
        n = self.uvarint()
        if n == 0:
            return None
        s = self.buf[self.pos : self.pos + n - 1].decode()
        self.pos += n - 1
        return s

    def compact_int32s(self):
        n = self.uvarint()
        return None if n == 0 else [self.take(">i") for _ in range(n - 1)]

    def skip_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()


def describe_topic_partitions(host, port, topics, limit, cursor=None):
    body = uvarint(len(topics) + 1) + b"".join(compact_str(t) + uvarint(0) for t in topics)
    body += struct.pack(">i", limit)
    if cursor is None:
        body += struct.pack(">b", -1)
    else:
        body += struct.pack(">b", 1) + compact_str(cursor[0]) + struct.pack(">i", cursor[1]) + uvarint(0)
    body += uvarint(0)
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(request(75, 0, 5, body, flexible=True))
        corr, frame = recv_response(s)
    assert corr == 5
    r = Reader(frame)
    r.skip_tags()  # response header v1
    r.take(">i")  # throttle
    out = {}
    for _ in range(r.uvarint() - 1):
        err = r.take(">h")
        name = r.compact_str()
        topic_id = r.buf[r.pos : r.pos + 16]
        r.pos += 16
        r.take(">?")
        parts = []
        for _ in range(r.uvarint() - 1):
            perr, idx, leader, _epoch = r.take(">hiii")
            replicas, isr = r.compact_int32s(), r.compact_int32s()
            r.compact_int32s(), r.compact_int32s(), r.compact_int32s()
            r.skip_tags()
            parts.append((perr, idx, leader, replicas, isr))
        r.take(">i")  # authorized operations
        r.skip_tags()
        out[name] = {"error_code": err, "topic_id": topic_id, "partitions": parts}
    next_cursor = None
    if r.take(">b") != -1:
        next_cursor = (r.compact_str(), r.take(">i"))
        r.skip_tags()
    r.skip_tags()
    assert r.pos == len(frame), f"{len(frame) - r.pos} trailing bytes"
    return out, next_cursor


def test_describe_topic_partitions_paginates(broker, admin, topic):
    ck_create_topic(admin, topic, partitions=3)
    missing = topic + "-missing"
    topics, cursor = describe_topic_partitions(broker.host, broker.port, [topic], limit=2)
    t = topics[topic]
    assert t["error_code"] == 0 and t["topic_id"] != bytes(16)
    assert t["partitions"] == [(0, 0, 1, [1], [1]), (0, 1, 1, [1], [1])]
    assert cursor == (topic, 2)

    topics, cursor = describe_topic_partitions(broker.host, broker.port, [topic], limit=2, cursor=cursor)
    assert topics[topic]["partitions"] == [(0, 2, 1, [1], [1])]
    assert cursor is None

    topics, _ = describe_topic_partitions(broker.host, broker.port, [missing], limit=10)
    assert topics[missing]["error_code"] == 3  # UNKNOWN_TOPIC_OR_PARTITION
