"""Interop with kafka-python (pure Python client, its own protocol code)."""

from __future__ import annotations

import logging
import os

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidRequestError,
    InvalidTopicError,
    OffsetOutOfRangeError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from fjord_support import ck_consume, ck_create_topic, ck_produce, kp_consume, kp_produce, wait_for

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


@pytest.fixture
def kadmin(bootstrap):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    yield client
    client.close()


def kp_create(kadmin, topic, partitions=1, configs=None):
    resp = kadmin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs or {})], timeout_ms=15000)
    check_topic_errors(resp)
    return topic


def check_topic_errors(resp):
    """Raise the typed error of the first failing topic in a Create/DeleteTopics response."""
    entries = resp.topic_errors if hasattr(resp, "topic_errors") else resp.topic_error_codes
    for entry in entries:
        name, code = entry[0], entry[1]
        if code != 0:
            raise for_code(code)(f"{name}: {entry[2:] if len(entry) > 2 else ''}")


def kp_topics(kadmin):
    return set(kadmin.list_topics())


def test_api_version_autodetect(bootstrap):
    """kafka-python guesses the broker version from ApiVersions; it must land on a
    version with message format v2 (>= 0.11) and zstd support (>= 2.1)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        assert producer.config["api_version"] >= (2, 1), producer.config["api_version"]
    finally:
        producer.close()


def test_produce_consume_from_beginning(bootstrap, kadmin, topic):
    kp_create(kadmin, topic)
    wait_for(lambda: topic in kp_topics(kadmin), what="topic in metadata")
    records = [{"key": f"k{i}".encode(), "value": f"v{i}".encode()} for i in range(50)]
    assert kp_produce(bootstrap, topic, records) == [(0, i) for i in range(50)]
    got = kp_consume(bootstrap, topic, [0], expected=50)
    assert [(r.offset, r.key, r.value) for r in got] == [(i, f"k{i}".encode(), f"v{i}".encode()) for i in range(50)]
    # ...and the other client sees the same thing.
    assert [(r.offset, r.key, r.value) for r in ck_consume(bootstrap, topic, [0], expected=50)] == [
        (r.offset, r.key, r.value) for r in got
    ]


# acks=0 is covered with confluent-kafka only: kafka-python 2.2.x never flushes
# an acks=0 ProduceRequest to the socket (KafkaClient.send() only tracks
# connections whose future is not yet done, and acks=0 futures complete at once),
# so nothing reaches any broker.
@pytest.mark.parametrize("acks", [1, "all"])
def test_produce_acks(bootstrap, admin, topic, acks):
    ck_create_topic(admin, topic)
    records = [{"value": f"{acks}-{i}".encode()} for i in range(10)]
    kp_produce(bootstrap, topic, records, acks=acks)
    assert [r.value for r in kp_consume(bootstrap, topic, [0], expected=10)] == [r["value"] for r in records]


def test_headers_and_nulls(bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    headers = [("a", b"1"), ("a", b"2"), ("empty", b"")]
    records = [
        {"key": None, "value": b"no key", "headers": headers},
        {"key": b"tomb", "value": None},
        {"key": b"", "value": b""},  # empty is not null
        # (kafka-python refuses a record with both key and value null)
    ]
    kp_produce(bootstrap, topic, records)
    want = [(None, b"no key", headers), (b"tomb", None, []), (b"", b"", [])]
    got = kp_consume(bootstrap, topic, [0], expected=3)
    assert [(r.key, r.value, r.headers) for r in got] == want
    got_ck = ck_consume(bootstrap, topic, [0], expected=3)
    assert [(r.key, r.value, r.headers) for r in got_ck] == want


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c or "none")
def test_compressed_batches_round_trip(bootstrap, admin, topic, codec):
    ck_create_topic(admin, topic, partitions=2)
    records = [
        {"key": f"key-{i % 5}".encode(), "value": (f"kp {codec} {i} " * (1 + i % 11)).encode(), "headers": [("n", str(i).encode())]}
        for i in range(250)
    ]
    reports = kp_produce(bootstrap, topic, records, compression_type=codec, linger_ms=50, batch_size=64 * 1024)
    sent = {(p, o): rec for rec, (p, o) in zip(records, reports)}
    for reader in (kp_consume, ck_consume):
        got = reader(bootstrap, topic, [0, 1], expected=len(records))
        assert {(r.partition, r.offset) for r in got} == set(sent)
        for r in got:
            rec = sent[(r.partition, r.offset)]
            assert (r.key, r.value, r.headers) == (rec["key"], rec["value"], rec["headers"])


def test_same_key_same_partition_across_clients(bootstrap, admin, topic):
    """Both clients use murmur2 here, so a key lands on the same partition whichever
    client produced it, and the broker must keep it there."""
    ck_create_topic(admin, topic, partitions=5)
    keys = [f"acct-{i}".encode() for i in range(25)]
    kp_reports = kp_produce(bootstrap, topic, [{"key": k, "value": b"kp"} for k in keys])
    ck_reports = ck_produce(bootstrap, topic, [{"key": k, "value": b"ck"} for k in keys], partitioner="murmur2_random")
    assert [p for p, _ in kp_reports] == [p for p, _ in ck_reports]
    got = kp_consume(bootstrap, topic, range(5), expected=50)
    where = {}
    for r in got:
        where.setdefault(r.key, set()).add(r.partition)
    assert all(len(v) == 1 for v in where.values())


def test_incremental_fetch_sessions(bootstrap, admin, topic, caplog):
    """kafka-python opens a KIP-227 fetch session (a full fetch at epoch 0) and then sends
    incremental fetches. Records produced to one partition at a time while it reads come back
    in answers naming only that partition, and every record arrives exactly once and in
    order, as with a consumer without sessions."""
    caplog.set_level(logging.DEBUG, logger="kafka.consumer.fetcher")
    ck_create_topic(admin, topic, partitions=6)
    records = [{"key": f"k{i}".encode(), "value": f"a{i}".encode()} for i in range(300)]
    reports = ck_produce(bootstrap, topic, records)
    tps = [TopicPartition(topic, p) for p in range(6)]

    def consumer(**conf):
        c = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            **conf,
        )
        c.assign(tps)
        c.seek_to_beginning(*tps)
        return c

    def read(c, got, want, what):
        def poll():
            for batch in c.poll(timeout_ms=100).values():
                got.extend((m.partition, m.offset, m.value) for m in batch)
            return len(got) >= want

        wait_for(poll, timeout=30, what=what)

    with_sessions = consumer()
    got = []
    try:
        read(with_sessions, got, 300, "the first 300 records")
        for r in range(6):
            more = [{"partition": r, "value": f"r{r}-{i}".encode()} for i in range(20)]
            reports += ck_produce(bootstrap, topic, more)
            records += more
            read(with_sessions, got, len(records), f"round {r}, on partition {r}")
        sessions = [h.next_metadata for h in with_sessions._fetcher._session_handlers.values()]
        assert any(m.session_id != 0 and m.epoch > 6 for m in sessions), [(m.session_id, m.epoch) for m in sessions]
    finally:
        with_sessions.close()
    want = sorted((p, o, rec["value"]) for (p, o), rec in zip(reports, records))
    assert len(got) == len(want)
    assert sorted(got) == want
    for p in range(6):
        offsets = [o for (q, o, _) in got if q == p]
        assert offsets == sorted(offsets)
    # kafka-python logs each answer: (node, session, partitions answered, partitions implied).
    fetcher = [r for r in caplog.records if r.name == "kafka.consumer.fetcher"]
    incremental = [r.args for r in fetcher if r.msg.startswith("Node %s sent an incremental fetch response for session")]
    assert any(a[2:] == (1, 5) for a in incremental), incremental
    refused = [r.getMessage() for r in fetcher if "unable to process" in r.msg or "invalid" in r.msg]
    assert refused == []

    without = consumer(enable_incremental_fetch_sessions=False)
    plain = []
    try:
        read(without, plain, len(want), "all records without a session")
    finally:
        without.close()
    assert sorted(plain) == want


def test_end_and_beginning_offsets_and_offsets_for_times(bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=2)
    base = 1_650_000_000_000
    kp_produce(bootstrap, topic, [{"value": b"x", "partition": 0, "timestamp_ms": base + i * 10} for i in range(8)])
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        assert consumer.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert consumer.end_offsets([tp0, tp1]) == {tp0: 8, tp1: 0}
        found = consumer.offsets_for_times({tp0: base + 25, tp1: base})
        assert found[tp0].offset == 3 and found[tp0].timestamp == base + 30
        assert found[tp1] is None
        assert consumer.offsets_for_times({tp0: base + 10_000})[tp0] is None
    finally:
        consumer.close()


def test_idempotent_producer(bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    records = [{"value": f"i{i}".encode()} for i in range(100)]
    reports = kp_produce(bootstrap, topic, records, enable_idempotence=True, acks="all")
    assert reports == [(0, i) for i in range(100)]
    assert [r.value for r in kp_consume(bootstrap, topic, [0], expected=100)] == [r["value"] for r in records]


def test_admin_create_describe_delete(bootstrap, kadmin, topic):
    kp_create(kadmin, topic, partitions=2)
    wait_for(lambda: topic in kp_topics(kadmin), what="topic listed")
    desc = kadmin.describe_topics([topic])
    assert len(desc) == 1 and desc[0]["topic"] == topic and desc[0]["error_code"] == 0
    assert sorted(p["partition"] for p in desc[0]["partitions"]) == [0, 1]
    assert all(p["leader"] == 1 and p["replicas"] == [1] for p in desc[0]["partitions"])

    with pytest.raises(TopicAlreadyExistsError):
        kp_create(kadmin, topic)

    check_topic_errors(kadmin.delete_topics([topic], timeout_ms=15000))
    wait_for(lambda: topic not in kp_topics(kadmin), what="topic gone")
    with pytest.raises(UnknownTopicOrPartitionError):
        check_topic_errors(kadmin.delete_topics([topic], timeout_ms=15000))


def test_admin_validate_only(kadmin, topic):
    resp = kadmin.create_topics([NewTopic(topic, 3, 1)], timeout_ms=15000, validate_only=True)
    check_topic_errors(resp)
    assert topic not in kp_topics(kadmin)


@pytest.mark.parametrize("name", ["bad/name", "y" * 250, ".", "with space"])
def test_admin_invalid_topic_name(kadmin, name):
    with pytest.raises(InvalidTopicError):
        check_topic_errors(kadmin.create_topics([NewTopic(name, 1, 1)], timeout_ms=15000))


@pytest.mark.parametrize(
    "partitions,rf,errors",
    [
        (0, 1, (InvalidPartitionsError, InvalidRequestError)),
        (-5, 1, (InvalidPartitionsError, InvalidRequestError)),
        (1, 2, (InvalidReplicationFactorError,)),
        (1, 0, (InvalidReplicationFactorError, InvalidRequestError)),
    ],
)
def test_admin_invalid_counts(kadmin, topic, partitions, rf, errors):
    with pytest.raises(errors):
        check_topic_errors(kadmin.create_topics([NewTopic(topic, partitions, rf)], timeout_ms=15000))
    assert topic not in kp_topics(kadmin)


def test_admin_describe_and_alter_configs(kadmin, topic):
    kp_create(kadmin, topic, configs={"retention.ms": "123456"})
    resp = kadmin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    (resource,) = resp[0].resources
    assert resource[0] == 0, resource  # error_code
    entries = {e[0]: e for e in resource[4]}
    assert entries["retention.ms"][1] == "123456"
    assert "cleanup.policy" in entries and "segment.bytes" in entries

    resp = kadmin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "654321"})])
    assert all(r[0] == 0 for r in resp.resources), resp
    resp = kadmin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": None})])
    entries = {e[0]: e for e in resp[0].resources[0][4]}
    assert entries["retention.ms"][1] == "654321"


def test_admin_create_partitions(bootstrap, kadmin, topic):
    kp_create(kadmin, topic, partitions=2)
    resp = kadmin.create_partitions({topic: NewPartitions(total_count=5)}, timeout_ms=15000)
    assert all(r[1] == 0 for r in resp.topic_errors), resp  # (kafka-python raises on errors)

    def partition_count():
        d = kadmin.describe_topics([topic])
        return len(d[0]["partitions"]) if d and d[0]["error_code"] == 0 else 0

    wait_for(lambda: partition_count() == 5, what="5 partitions")
    kp_produce(bootstrap, topic, [{"value": b"p4", "partition": 4}])
    assert [(r.partition, r.value) for r in kp_consume(bootstrap, topic, range(5), expected=1)] == [(4, b"p4")]

    with pytest.raises(InvalidPartitionsError):
        kadmin.create_partitions({topic: NewPartitions(total_count=3)}, timeout_ms=15000)


def test_admin_delete_records(bootstrap, kadmin, topic):
    kp_create(kadmin, topic)
    wait_for(lambda: topic in kp_topics(kadmin), what="topic listed")
    kp_produce(bootstrap, topic, [{"value": str(i).encode()} for i in range(6)])
    tp = TopicPartition(topic, 0)
    result = kadmin.delete_records({tp: 2})
    assert result[tp]["low_watermark"] == 2
    got = kp_consume(bootstrap, topic, [0], expected=4)
    assert [r.offset for r in got] == [2, 3, 4, 5]
    with pytest.raises(OffsetOutOfRangeError):
        kadmin.delete_records({tp: 100})


def test_admin_describe_log_dirs(bootstrap, kadmin, broker, topic):
    """kafka-python's admin client sends DescribeLogDirs v0 only (Kafka 4.0 dropped it; Fjord
    serves it as the identical v1): the partition's size is its segment file's."""
    kp_create(kadmin, topic)
    wait_for(lambda: topic in kp_topics(kadmin), what="topic listed")
    kp_produce(bootstrap, topic, [{"value": b"x" * 100} for _ in range(5)])
    got = kadmin.describe_log_dirs().to_object()
    (log_dir,) = got["log_dirs"]
    assert log_dir["error_code"] == 0
    assert os.path.realpath(log_dir["log_dir"]) == os.path.realpath(broker.data_dir)
    (entry,) = [t for t in log_dir["topics"] if t["name"] == topic]
    (part,) = entry["partitions"]
    segment = os.path.join(log_dir["log_dir"], f"{topic}-0", "00000000000000000000.log")
    assert part["partition_index"] == 0 and part["partition_size"] == os.path.getsize(segment) > 500


def test_admin_describe_cluster(kadmin, broker):
    cluster = kadmin.describe_cluster()
    assert cluster["controller_id"] == 1
    assert [(b["node_id"], b["host"], b["port"]) for b in cluster["brokers"]] == [(1, broker.host, broker.port)]


@pytest.mark.parametrize("api_version", [(0, 11), (1, 0), (2, 0)])
def test_older_protocol_versions(bootstrap, admin, topic, api_version):
    """Pinning an old api_version makes kafka-python use old request versions
    (Produce v3/v5, Fetch v4-v7, Metadata v4/v5...), as older clients do."""
    ck_create_topic(admin, topic)
    records = [{"key": b"old", "value": f"{api_version}-{i}".encode(), "headers": [("h", b"v")]} for i in range(5)]
    kp_produce(bootstrap, topic, records, api_version=api_version)
    got = kp_consume(bootstrap, topic, [0], expected=5, api_version=api_version)
    assert [(r.key, r.value, r.headers) for r in got] == [(r["key"], r["value"], r["headers"]) for r in records]
