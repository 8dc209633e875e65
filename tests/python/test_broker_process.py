"""The `fjord start` process contract: startup line, overrides, clean shutdown,
and data surviving a restart."""

from __future__ import annotations

import resource
import signal

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import ConfigResource, ConfigSource, NewPartitions, NewTopic, ResourceType

from fjord_support import LISTEN_RE, ck_admin, ck_consume, ck_create_topic, ck_produce, ck_producer, unique_topic, wait_for


def test_startup_line(broker):
    assert len(broker.stdout_lines) >= 1
    line = broker.stdout_lines[0]
    m = LISTEN_RE.search(line)
    assert m and line.startswith("fjord listening on "), line
    assert m.group(1) == "127.0.0.1"
    assert 0 < int(m.group(2)) < 65536
    assert str(broker.data_dir) in line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_clean_shutdown_exit_code(broker_factory, sig):
    b = broker_factory()
    ck_produce(b.bootstrap, unique_topic("shutdown"), [{"value": b"x"}])
    assert b.stop(sig) == 0, b.log_tail()
    # Exactly one line on stdout over the whole life of the process.
    assert len(b.stdout_lines) == 1, b.stdout_lines


def test_data_survives_restart(broker_factory, tmp_path):
    data = tmp_path / "persist"
    topic = unique_topic("persist")
    b = broker_factory(data_dir=data, name="first")
    admin = ck_admin(b.bootstrap)
    ck_create_topic(admin, topic, partitions=2, config={"retention.ms": "86400000"})
    records = [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % 2, "headers": [("i", str(i).encode())]} for i in range(40)]
    ck_produce(b.bootstrap, topic, records, **{"compression.type": "lz4"})
    assert b.stop() == 0, b.log_tail()

    b2 = broker_factory(data_dir=data, name="second")
    admin2 = ck_admin(b2.bootstrap)
    wait_for(lambda: topic in admin2.list_topics(timeout=5).topics, what="topic after restart")
    got = ck_consume(b2.bootstrap, topic, [0, 1], expected=40)
    assert sorted((r.partition, r.key, r.value, tuple(r.headers)) for r in got) == sorted(
        (rec["partition"], rec["key"], rec["value"], tuple(rec["headers"])) for rec in records
    )
    # Offsets continue where they left off.
    reports = ck_produce(b2.bootstrap, topic, [{"value": b"after", "partition": 0}])
    assert reports == [(0, 20)]
    # Topic configs persist too.
    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin2.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    assert entries["retention.ms"].value == "86400000"
    assert b2.stop() == 0, b2.log_tail()


def test_acked_data_survives_sigkill(broker_factory, tmp_path):
    """A crash (SIGKILL, no clean shutdown) loses nothing that was acknowledged:
    the written log is recovered on the next start."""
    data = tmp_path / "crash"
    topic = unique_topic("crash")
    b = broker_factory(data_dir=data, name="first")
    ck_create_topic(ck_admin(b.bootstrap), topic, partitions=2)
    records = [{"key": f"k{i}".encode(), "value": f"v{i}".encode() * (i % 9 + 1)} for i in range(300)]
    reports = ck_produce(b.bootstrap, topic, records, acks="all", **{"compression.type": "snappy"})
    b.proc.kill()
    b.proc.wait(timeout=10)

    b2 = broker_factory(data_dir=data, name="second")
    got = ck_consume(b2.bootstrap, topic, [0, 1], expected=300)
    assert sorted((r.partition, r.offset, r.key, r.value) for r in got) == sorted(
        (p, o, rec["key"], rec["value"]) for rec, (p, o) in zip(records, reports)
    )
    more = ck_produce(b2.bootstrap, topic, [{"value": b"next", "partition": 0}])
    assert more == [(0, sum(1 for p, _ in reports if p == 0))]
    assert b2.stop() == 0, b2.log_tail()


def test_retention_deletes_old_segments(broker_factory):
    b = broker_factory(overrides={"log.retention.check.interval.ms": "200"})
    admin = ck_admin(b.bootstrap)
    topic = ck_create_topic(admin, unique_topic("retention"), config={"segment.bytes": "2048", "retention.ms": "1000"})
    ck_produce(b.bootstrap, topic, [{"value": b"r" * 200} for _ in range(60)], **{"linger.ms": 0})
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ret", "enable.auto.commit": False})
    try:
        lows = wait_for(
            lambda: (lambda w: w if w[0] > 0 else None)(c.get_watermark_offsets(TopicPartition(topic, 0), timeout=5, cached=False)),
            timeout=30,
            what="retention to advance the log start offset",
        )
    finally:
        c.close()
    low, high = lows
    # Time-based retention may remove every segment (Kafka rolls an expired active
    # segment first), so the log may now be empty: 0 < low <= high.
    assert high == 60 and 0 < low <= high
    assert ck_produce(b.bootstrap, topic, [{"value": b"fresh"}]) == [(0, 60)]
    got = ck_consume(b.bootstrap, topic, [0], expected=61 - low)
    assert got[0].offset == low and got[-1].value == b"fresh"


def test_deleted_topic_stays_deleted_after_restart(broker_factory, tmp_path):
    data = tmp_path / "deleted"
    topic = unique_topic("gone")
    b = broker_factory(data_dir=data, name="first")
    admin = ck_admin(b.bootstrap)
    ck_create_topic(admin, topic)
    ck_produce(b.bootstrap, topic, [{"value": b"x"}])
    admin.delete_topics([topic], operation_timeout=15)[topic].result(timeout=15)
    wait_for(lambda: topic not in admin.list_topics(timeout=5).topics, what="topic deleted")
    assert b.stop() == 0

    b2 = broker_factory(data_dir=data, name="second", overrides={"auto.create.topics.enable": "false"})
    assert topic not in ck_admin(b2.bootstrap).list_topics(timeout=10).topics


def test_deleted_data_waits_out_file_delete_delay_renamed(broker_factory, tmp_path):
    """Retention and DeleteTopics rename what they delete (`.deleted`) and remove it after
    file.delete.delay.ms, as Kafka does; a restart removes what a stop left renamed."""
    data = tmp_path / "delayed"
    b = broker_factory(data_dir=data, name="first", overrides={"log.retention.check.interval.ms": "200"})
    admin = ck_admin(b.bootstrap)
    topic = ck_create_topic(
        admin,
        unique_topic("delay"),
        config={"segment.bytes": "2048", "retention.ms": "1000", "file.delete.delay.ms": "600000"},
    )
    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    assert entries["file.delete.delay.ms"].value == "600000"
    ck_produce(b.bootstrap, topic, [{"value": b"d" * 200} for _ in range(30)], **{"linger.ms": 0})
    partition_dir = data / f"{topic}-0"
    wait_for(lambda: list(partition_dir.glob("*.log.deleted")), timeout=30, what="retention to rename segments")
    admin.delete_topics([topic], operation_timeout=15)[topic].result(timeout=15)
    renamed = wait_for(lambda: list(data.glob(f"{topic}-0.*.deleted")), what="the partition directory renamed")
    assert not partition_dir.exists() and len(renamed) == 1
    assert b.stop() == 0

    b2 = broker_factory(data_dir=data, name="second")
    wait_for(lambda: not list(data.glob(f"{topic}-0.*.deleted")), what="the renamed directory removed at start")
    assert b2.stop() == 0


def test_overrides_num_partitions_and_segment_bytes(broker_factory):
    b = broker_factory(overrides={"num.partitions": "3", "log.segment.bytes": "1048576"})
    admin = ck_admin(b.bootstrap)
    topic = unique_topic("auto3")
    ck_produce(b.bootstrap, topic, [{"value": b"x"}])
    md = wait_for(lambda: admin.list_topics(topic=topic, timeout=5).topics.get(topic), what="auto-created topic")
    assert len(md.partitions) == 3

    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    assert entries["segment.bytes"].value == "1048576"
    assert entries["segment.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG.value

    res = ConfigResource(ResourceType.BROKER, "1")
    entries = admin.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    assert entries["num.partitions"].value == "3"
    assert entries["num.partitions"].source == ConfigSource.STATIC_BROKER_CONFIG.value

    # Synonyms, read with kafka-python (confluent-kafka keys synonyms by name and so
    # folds the two log.segment.bytes layers into one).
    from kafka.admin import ConfigResource as KpResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient

    kadmin = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=15000)
    try:
        resp = kadmin.describe_configs(
            [KpResource(ConfigResourceType.TOPIC, topic, configs={"segment.bytes": None})], include_synonyms=True
        )
    finally:
        kadmin.close()
    (resource,) = resp[0].resources
    (entry,) = resource[4]
    assert entry[0:2] == ("segment.bytes", "1048576")
    synonyms = [tuple(syn) for syn in entry[5]]
    assert synonyms == [
        ("log.segment.bytes", "1048576", ConfigSource.STATIC_BROKER_CONFIG.value),
        ("log.segment.bytes", "1073741824", ConfigSource.DEFAULT_CONFIG.value),
    ]


def test_auto_create_disabled(broker_factory):
    b = broker_factory(overrides={"auto.create.topics.enable": "false"})
    admin = ck_admin(b.bootstrap)
    topic = unique_topic("noauto")
    p = ck_producer(b.bootstrap, **{"message.timeout.ms": 3000})
    errors = []
    p.produce(topic, value=b"x", on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._MSG_TIMED_OUT, KafkaError._UNKNOWN_TOPIC)
    assert topic not in admin.list_topics(timeout=5).topics
    # Explicit creation still works.
    ck_create_topic(admin, topic)
    ck_produce(b.bootstrap, topic, [{"value": b"y"}])
    assert [r.value for r in ck_consume(b.bootstrap, topic, [0], expected=1)] == [b"y"]


def test_message_max_bytes_override(broker_factory):
    b = broker_factory(overrides={"message.max.bytes": "20000"})
    admin = ck_admin(b.bootstrap)
    topic = ck_create_topic(admin, unique_topic("maxbytes"))
    ck_produce(b.bootstrap, topic, [{"value": b"s" * 1000}])

    p = ck_producer(b.bootstrap, **{"message.timeout.ms": 10000, "compression.type": "none"})
    errors = []
    p.produce(topic, value=bytes(range(256)) * 200, on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors[0]
    # The broker is still serving and the log is unchanged.
    got = ck_consume(b.bootstrap, topic, [0], expected=1)
    assert got[0].value == b"s" * 1000


def test_topic_max_message_bytes(bootstrap, admin):
    topic = ck_create_topic(admin, unique_topic("topicmax"), config={"max.message.bytes": "5000"})
    p = ck_producer(bootstrap, **{"message.timeout.ms": 10000})
    errors = []
    p.produce(topic, value=bytes(range(256)) * 40, on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors[0]
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "mx", "enable.auto.commit": False})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=15, cached=False) == (0, 0)
    finally:
        c.close()


def test_small_segments_roll(broker_factory):
    """With tiny segments the log rolls many times; reads span segments."""
    b = broker_factory(overrides={"log.segment.bytes": "16384"})
    admin = ck_admin(b.bootstrap)
    topic = ck_create_topic(admin, unique_topic("roll"))
    records = [{"value": (f"{i:05d}" * 40).encode()} for i in range(500)]  # ~100 KB
    ck_produce(b.bootstrap, topic, records, **{"batch.size": 4000, "linger.ms": 1})
    got = ck_consume(b.bootstrap, topic, [0], expected=500)
    assert [r.value for r in got] == [rec["value"] for rec in records]
    got = ck_consume(b.bootstrap, topic, [0], expected=100, start_offset=400)
    assert [r.offset for r in got] == list(range(400, 500))
    assert b.stop() == 0


def test_partitions_past_the_open_file_limit_are_refused_before_they_exist(broker_factory, tmp_path):
    """Each partition keeps its segment's three files open. A topic that would take the broker
    past its open-file limit is refused with POLICY_VIOLATION before it is committed: it does
    not half exist, and the broker still restarts on its data (opening the partitions of a
    committed topic past the limit would fail every start)."""
    data = tmp_path / "files"
    b = broker_factory(data_dir=data, name="limited", file_limit=400)
    admin = ck_admin(b.bootstrap)

    too_many = unique_topic("too-many")
    fut = admin.create_topics([NewTopic(too_many, num_partitions=200, replication_factor=1)])[too_many]
    with pytest.raises(KafkaException) as err:
        fut.result(timeout=20)
    assert err.value.args[0].code() == KafkaError.POLICY_VIOLATION, err.value
    assert "ulimit -n" in err.value.args[0].str(), err.value
    assert too_many not in admin.list_topics(timeout=5).topics

    fits = unique_topic("fits")
    ck_create_topic(admin, fits, partitions=10)
    # Growing it past the limit is refused the same way.
    fut = admin.create_partitions([NewPartitions(fits, 210)])[fits]
    with pytest.raises(KafkaException) as err:
        fut.result(timeout=20)
    assert err.value.args[0].code() == KafkaError.POLICY_VIOLATION, err.value
    assert len(admin.list_topics(topic=fits, timeout=5).topics[fits].partitions) == 10
    ck_produce(b.bootstrap, fits, [{"value": b"kept", "partition": 3}])
    assert b.stop() == 0, b.log_tail()

    b2 = broker_factory(data_dir=data, name="restarted", file_limit=400)
    got = ck_consume(b2.bootstrap, fits, [3], expected=1)
    assert [r.value for r in got] == [b"kept"]
    assert b2.stop() == 0, b2.log_tail()


def test_a_soft_open_file_limit_is_raised_to_the_hard_one(broker_factory):
    """Started under a soft limit of 400 files (the hard one as inherited), the broker raises
    its soft limit to the hard one before opening logs, so a topic of 200 partitions (600
    files) fits where the soft limit alone would have refused it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2000:
        pytest.skip(f"the hard open-file limit ({hard}) leaves no room above 400 to raise to")
    b = broker_factory(name="soft-limited", soft_file_limit=400)
    with open(f"/proc/{b.proc.pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files")).split()
    soft_now, hard_now = line[3], line[4]
    assert soft_now == hard_now and soft_now != "400", line
    wait_for(lambda: "raised the open-file limit" in b.log_tail(), what="the raise logged")
    admin = ck_admin(b.bootstrap)
    wide = unique_topic("wide")
    ck_create_topic(admin, wide, partitions=200)
    ck_produce(b.bootstrap, wide, [{"value": b"v", "partition": 199}])
    assert [r.value for r in ck_consume(b.bootstrap, wide, [199], expected=1)] == [b"v"]
