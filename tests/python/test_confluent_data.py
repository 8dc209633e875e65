"""Produce/consume interop with confluent-kafka (librdkafka)."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from fjord_support import (
    by_partition_offset,
    ck_consume,
    ck_create_topic,
    ck_produce,
    ck_producer,
    kp_consume,
    unique_topic,
    wait_for,
)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def test_produce_consume_from_beginning(bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=1)
    records = [{"key": f"k{i}".encode(), "value": f"value-{i}".encode()} for i in range(100)]
    reports = ck_produce(bootstrap, topic, records)
    assert reports == [(0, i) for i in range(100)]

    got = ck_consume(bootstrap, topic, [0], expected=100)
    assert [r.offset for r in got] == list(range(100))
    assert [(r.key, r.value) for r in got] == [(rec["key"], rec["value"]) for rec in records]


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_produce_acks(bootstrap, admin, topic, acks):
    ck_create_topic(admin, topic, partitions=1)
    records = [{"value": f"acks-{acks}-{i}".encode()} for i in range(20)]
    reports = ck_produce(bootstrap, topic, records, acks=acks)
    if acks != "0":
        assert [o for _p, o in reports] == list(range(20))
    got = ck_consume(bootstrap, topic, [0], expected=20)
    assert [r.value for r in got] == [rec["value"] for rec in records]


def test_keyed_records_stick_to_a_partition(bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=6)
    keys = [f"user-{i}".encode() for i in range(30)]
    records = [{"key": k, "value": f"{k.decode()}#{n}".encode()} for n in range(4) for k in keys]
    reports = ck_produce(bootstrap, topic, records)

    placed: dict[bytes, set] = {}
    for rec, (partition, _offset) in zip(records, reports):
        placed.setdefault(rec["key"], set()).add(partition)
    assert all(len(ps) == 1 for ps in placed.values()), placed
    assert len({next(iter(ps)) for ps in placed.values()}) > 1, "30 keys all hashed to one partition"

    got = ck_consume(bootstrap, topic, range(6), expected=len(records))
    for rec in got:
        assert {rec.partition} == placed[rec.key]
    # Per key, the read order is the produce order.
    for k in keys:
        assert [r.value for r in by_partition_offset(got) if r.key == k] == [
            f"{k.decode()}#{n}".encode() for n in range(4)
        ]


def test_headers_round_trip(bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    headers = [("trace", b"abc123"), ("dup", b"first"), ("dup", b"second"), ("empty", b""), ("null", None), ("utf8-\u00e9", b"\xff\x00\x01")]
    ck_produce(bootstrap, topic, [{"key": b"h", "value": b"with headers", "headers": headers}, {"value": b"no headers"}])

    got = ck_consume(bootstrap, topic, [0], expected=2)
    assert got[0].headers == headers
    assert got[1].headers == []
    got_kp = kp_consume(bootstrap, topic, [0], expected=2)
    assert got_kp[0].headers == headers
    assert got_kp[1].headers == []


def test_null_key_and_null_value(bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    records = [
        {"key": None, "value": b"no key"},
        {"key": b"tombstone", "value": None},
        {"key": None, "value": None},
        {"key": b"", "value": b""},  # empty is not null
        {"key": b"k", "value": b"v"},
    ]
    ck_produce(bootstrap, topic, records)
    expected = [(None, b"no key"), (b"tombstone", None), (None, None), (b"", b""), (b"k", b"v")]
    assert [(r.key, r.value) for r in ck_consume(bootstrap, topic, [0], expected=5)] == expected
    assert [(r.key, r.value) for r in kp_consume(bootstrap, topic, [0], expected=5)] == expected


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_round_trip(bootstrap, admin, topic, codec):
    """Compressed batches pass through the broker and read back with both clients."""
    ck_create_topic(admin, topic, partitions=2)
    records = [
        {"key": f"key-{i % 7}".encode(), "value": (f"payload {i} " * (1 + i % 13)).encode(), "headers": [("i", str(i).encode())]}
        for i in range(300)
    ]
    # A large linger and batch size so the codec is applied to multi-record batches.
    reports = ck_produce(
        bootstrap, topic, records, **{"compression.type": codec, "linger.ms": 50, "batch.num.messages": 1000}
    )
    sent = {(p, o): rec for rec, (p, o) in zip(records, reports)}

    for reader in (ck_consume, kp_consume):
        got = reader(bootstrap, topic, [0, 1], expected=len(records))
        assert {(r.partition, r.offset) for r in got} == set(sent)
        for r in got:
            rec = sent[(r.partition, r.offset)]
            assert (r.key, r.value, r.headers) == (rec["key"], rec["value"], rec["headers"])


def test_timestamps_and_offsets_for_times(bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    base = 1_700_000_000_000
    records = [{"value": f"t{i}".encode(), "timestamp": base + i * 1000} for i in range(10)]
    ck_produce(bootstrap, topic, records)

    got = ck_consume(bootstrap, topic, [0], expected=10)
    assert [r.timestamp for r in got] == [base + i * 1000 for i in range(10)]

    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "oft", "enable.auto.commit": False})
    try:
        res = c.offsets_for_times([TopicPartition(topic, 0, base + 3500)], timeout=15)
        assert res[0].error is None and res[0].offset == 4
        res = c.offsets_for_times([TopicPartition(topic, 0, base)], timeout=15)
        assert res[0].offset == 0
        res = c.offsets_for_times([TopicPartition(topic, 0, base - 1)], timeout=15)
        assert res[0].offset == 0
        # Nothing at or after the timestamp: the broker answers offset -1.
        res = c.offsets_for_times([TopicPartition(topic, 0, base + 60_000)], timeout=15)
        assert res[0].offset == -1
    finally:
        c.close()


def test_watermarks_match_record_count(bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=3)
    per_partition = {0: 5, 1: 0, 2: 17}
    records = [{"value": b"x", "partition": p} for p, n in per_partition.items() for _ in range(n)]
    ck_produce(bootstrap, topic, records)

    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm", "enable.auto.commit": False})
    try:
        for p, n in per_partition.items():
            assert c.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False) == (0, n)
    finally:
        c.close()


def test_admin_list_offsets(bootstrap, admin, topic):
    from confluent_kafka.admin import OffsetSpec

    ck_create_topic(admin, topic, partitions=2)
    ck_produce(bootstrap, topic, [{"value": b"a", "partition": 1}] * 7)
    for spec, want in ((OffsetSpec.earliest(), {0: 0, 1: 0}), (OffsetSpec.latest(), {0: 0, 1: 7})):
        futs = admin.list_offsets({TopicPartition(topic, p): spec for p in (0, 1)}, request_timeout=15)
        got = {tp.partition: f.result(timeout=15).offset for tp, f in futs.items()}
        assert got == want


def test_idempotent_producer(bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=2)
    records = [{"key": f"k{i % 5}".encode(), "value": f"idem-{i}".encode()} for i in range(200)]
    reports = ck_produce(bootstrap, topic, records, **{"enable.idempotence": True, "acks": "all"})
    got = ck_consume(bootstrap, topic, [0, 1], expected=200)
    # Exactly once, contiguous offsets per partition.
    for p in (0, 1):
        offs = [r.offset for r in got if r.partition == p]
        assert offs == list(range(len(offs)))
    assert sorted(r.value for r in got) == sorted(rec["value"] for rec in records)
    assert sorted(reports) == sorted((r.partition, r.offset) for r in got)


def test_produce_to_explicit_partitions(bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=4)
    records = [{"value": f"p{p}-{i}".encode(), "partition": p} for p in range(4) for i in range(3)]
    ck_produce(bootstrap, topic, records)
    got = ck_consume(bootstrap, topic, range(4), expected=12)
    for r in got:
        assert r.value.startswith(f"p{r.partition}-".encode())


def test_consume_from_middle_offset(bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    ck_produce(bootstrap, topic, [{"value": str(i).encode()} for i in range(10)])
    got = ck_consume(bootstrap, topic, [0], expected=4, start_offset=6)
    assert [(r.offset, r.value) for r in got] == [(i, str(i).encode()) for i in range(6, 10)]


def test_large_record(bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    big = bytes(range(256)) * 2048  # 512 KiB, below the 1 MiB defaults
    ck_produce(bootstrap, topic, [{"value": big}, {"value": b"after"}])
    got = ck_consume(bootstrap, topic, [0], expected=2)
    assert got[0].value == big and got[1].value == b"after"


def test_produce_to_unknown_partition_fails(bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=1)
    p = ck_producer(bootstrap, **{"message.timeout.ms": 5000})
    errors = []
    p.produce(topic, value=b"x", partition=5, on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() in (KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART)


def test_auto_create_on_produce(bootstrap, admin, topic):
    """auto.create.topics.enable defaults to true: producing creates the topic."""
    ck_produce(bootstrap, topic, [{"value": b"auto"}])
    md = wait_for(lambda: admin.list_topics(topic=topic, timeout=5).topics.get(topic), what="auto-created topic")
    assert md.error is None
    assert len(md.partitions) >= 1
    got = ck_consume(bootstrap, topic, list(md.partitions), expected=1)
    assert got[0].value == b"auto"


def test_metadata_lists_single_broker(bootstrap, broker, admin):
    md = admin.list_topics(timeout=10)
    assert list(md.brokers) == [1]
    b = md.brokers[1]
    assert (b.host, b.port) == (broker.host, broker.port)
    assert md.controller_id == 1
    assert md.cluster_id


def test_many_small_batches_interleaved_partitions(bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=3)
    records = [{"value": f"{i}".encode(), "partition": i % 3} for i in range(3000)]
    ck_produce(bootstrap, topic, records, **{"linger.ms": 0})
    got = ck_consume(bootstrap, topic, range(3), expected=3000, timeout=60)
    for p in range(3):
        vals = [int(r.value) for r in by_partition_offset(got) if r.partition == p]
        assert vals == list(range(p, 3000, 3))


def test_produce_error_surface_is_clean(bootstrap):
    """Invalid topic names are refused rather than crashing the broker."""
    p = ck_producer(bootstrap, **{"message.timeout.ms": 5000})
    errors = []
    try:
        p.produce("bad/name", value=b"x", on_delivery=lambda err, msg: errors.append(err))
    except KafkaException as exc:  # librdkafka may refuse locally
        errors.append(exc.args[0])
    p.flush(15)
    assert errors and errors[0] is not None


def test_log_append_time_topic(bootstrap, admin, topic):
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer

    ck_create_topic(admin, topic, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    ck_produce(bootstrap, topic, [{"value": b"old", "timestamp": 1_000_000_000_000}] * 3)
    after = int(time.time() * 1000)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "lat", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        msgs = []
        deadline = time.monotonic() + 20
        while len(msgs) < 3 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                msgs.append(m)
    finally:
        c.close()
    assert len(msgs) == 3
    for m in msgs:
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000


def test_compacted_topic_rejects_null_keys(bootstrap, admin, topic):
    ck_create_topic(admin, topic, config={"cleanup.policy": "compact"})
    ck_produce(bootstrap, topic, [{"key": b"k", "value": b"keyed"}])
    p = ck_producer(bootstrap, **{"message.timeout.ms": 10000, "retries": 0})
    errors = []
    p.produce(topic, value=b"no key", on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() in (KafkaError.INVALID_RECORD, KafkaError.INVALID_MSG), errors[0]
    assert [r.value for r in ck_consume(bootstrap, topic, [0], expected=1)] == [b"keyed"]


def test_fetch_returns_batch_larger_than_fetch_limits(bootstrap, admin, topic):
    """A record bigger than the consumer's fetch limits is still delivered (KIP-74)."""
    ck_create_topic(admin, topic)
    big = b"B" * 300_000
    ck_produce(bootstrap, topic, [{"value": big}, {"value": b"small"}])
    got = ck_consume(
        bootstrap, topic, [0], expected=2, **{"max.partition.fetch.bytes": 1024, "fetch.max.bytes": 1024, "message.max.bytes": 1000}
    )
    assert [len(r.value) for r in got] == [300_000, 5]


def test_record_sets_spanning_segments_reach_every_client(kcat_bin, bootstrap, admin, topic):
    """Fetch responses whose record sets are sent from the segment files (sendfile: sets of
    4 KiB and more, here spanning several 64 KiB segments) arrive intact in every client."""
    import subprocess

    ck_create_topic(admin, topic, config={"segment.bytes": "65536"})
    records = [{"value": f"{i:06d}".encode() + b"v" * 200} for i in range(2000)]
    ck_produce(bootstrap, topic, records, **{"batch.num.messages": 50})
    expected = [r["value"] for r in records]

    assert [r.value for r in ck_consume(bootstrap, topic, [0], expected=2000)] == expected

    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTP

    kc = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = KpTP(topic, 0)
        kc.assign([tp])
        kc.seek_to_beginning(tp)
        seen = []
        deadline = time.monotonic() + 30
        while len(seen) < 2000 and time.monotonic() < deadline:
            for msgs in kc.poll(timeout_ms=200).values():
                seen.extend(m.value for m in msgs)
        assert seen == expected
    finally:
        kc.close()

    out = subprocess.run(
        [kcat_bin, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%s\\n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=True,
    ).stdout
    assert out.split(b"\n")[:-1] == expected


def test_concurrent_producers_get_distinct_offsets(bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    results = {}

    def run(n):
        results[n] = ck_produce(bootstrap, topic, [{"value": f"{n}-{i}".encode()} for i in range(400)], **{"linger.ms": 1})

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == [0, 1, 2, 3]
    offsets = sorted(o for reps in results.values() for _p, o in reps)
    assert offsets == list(range(1600))
    got = ck_consume(bootstrap, topic, [0], expected=1600)
    # Each producer's records stay in its own send order.
    for n in range(4):
        assert [r.value for r in got if r.value.startswith(f"{n}-".encode())] == [f"{n}-{i}".encode() for i in range(400)]


def test_one_producer_many_topics(bootstrap, admin):
    topics = [ck_create_topic(admin, unique_topic(f"multi{i}")) for i in range(3)]
    p = ck_producer(bootstrap, **{"linger.ms": 50})
    errors = []
    for i in range(30):
        p.produce(topics[i % 3], value=str(i).encode(), on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0 and not errors
    for n, t in enumerate(topics):
        assert [int(r.value) for r in ck_consume(bootstrap, t, [0], expected=10)] == list(range(n, 30, 3))


@pytest.mark.parametrize("codec", ["none", "lz4"])
def test_start_inside_a_batch(kcat_bin, bootstrap, admin, topic, codec):
    """Starting at an offset in the middle of a (compressed) batch yields exactly
    the records from that offset on, with every client."""
    import subprocess

    ck_create_topic(admin, topic)
    base = 1_690_000_000_000
    records = [{"key": b"k", "value": f"r{i}".encode(), "timestamp": base + i} for i in range(100)]
    ck_produce(bootstrap, topic, records, **{"compression.type": codec, "linger.ms": 200, "batch.num.messages": 1000})

    got = ck_consume(bootstrap, topic, [0], expected=50, start_offset=50)
    assert [r.offset for r in got] == list(range(50, 100))

    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTP

    kc = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = KpTP(topic, 0)
        kc.assign([tp])
        kc.seek(tp, 73)
        seen = []
        deadline = time.monotonic() + 20
        while len(seen) < 27 and time.monotonic() < deadline:
            for msgs in kc.poll(timeout_ms=200).values():
                seen.extend(m.offset for m in msgs)
        assert seen == list(range(73, 100))
    finally:
        kc.close()

    out = subprocess.run(
        [kcat_bin, "-b", bootstrap, "-C", "-t", topic, "-o", "95", "-e", "-f", "%o:%s\\n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=True,
    ).stdout.decode()
    assert out == "".join(f"{i}:r{i}\n" for i in range(95, 100))


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_offsets_for_times_inside_a_batch(bootstrap, admin, topic, codec):
    """ListOffsets by timestamp names the exact record, also inside a compressed
    batch (Kafka decompresses the batch to find it)."""
    from confluent_kafka import Consumer

    ck_create_topic(admin, topic)
    base = 1_690_000_000_000
    records = [{"value": f"r{i}".encode(), "timestamp": base + i * 10} for i in range(100)]
    ck_produce(bootstrap, topic, records, **{"compression.type": codec, "linger.ms": 200, "batch.num.messages": 1000})
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "oftb", "enable.auto.commit": False})
    try:
        for target, want in ((base + 420, 42), (base + 425, 43), (base, 0), (base + 990, 99)):
            (res,) = c.offsets_for_times([TopicPartition(topic, 0, target)], timeout=15)
            assert res.offset == want, f"timestamp {target}: offset {res.offset}, want {want}"
    finally:
        c.close()


@pytest.mark.parametrize("reset", ["earliest", "latest"])
def test_out_of_range_offset_resets(bootstrap, admin, topic, reset):
    """Fetching past the end gets OFFSET_OUT_OF_RANGE; the client then resets."""
    from confluent_kafka import Consumer

    ck_create_topic(admin, topic)
    ck_produce(bootstrap, topic, [{"value": str(i).encode()} for i in range(10)])
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "oor",
            "enable.auto.commit": False,
            "auto.offset.reset": reset,
            "enable.partition.eof": True,
        }
    )
    try:
        c.assign([TopicPartition(topic, 0, 1000)])
        first = None
        produced = False
        deadline = time.monotonic() + 20
        while first is None and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error() is None:
                first = (m.offset(), m.value())
            elif m.error().code() == KafkaError._PARTITION_EOF and not produced:
                # Reset to the end happened: a new record is the next one delivered.
                ck_produce(bootstrap, topic, [{"value": b"new"}])
                produced = True
        assert first == ((0, b"0") if reset == "earliest" else (10, b"new"))
    finally:
        c.close()


def test_consume_below_log_start_after_delete_records(bootstrap, admin, topic):
    ck_create_topic(admin, topic)
    ck_produce(bootstrap, topic, [{"value": str(i).encode()} for i in range(10)])
    futs = admin.delete_records([TopicPartition(topic, 0, 6)], request_timeout=15)
    assert list(futs.values())[0].result(timeout=15).low_watermark == 6
    # Offset 2 is now below the log start: the broker answers OFFSET_OUT_OF_RANGE and
    # the consumer resets to the earliest offset (6).
    got = ck_consume(bootstrap, topic, [0], expected=4, start_offset=2)
    assert [r.offset for r in got] == [6, 7, 8, 9]


def test_many_partitions(bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=64)
    ck_produce(bootstrap, topic, [{"value": str(p).encode(), "partition": p} for p in range(64)])
    got = ck_consume(bootstrap, topic, range(64), expected=64)
    assert sorted((r.partition, int(r.value)) for r in got) == [(p, p) for p in range(64)]
