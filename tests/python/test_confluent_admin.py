"""Admin API interop with confluent-kafka's AdminClient."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from fjord_support import ck_consume, ck_create_topic, ck_produce, ck_topic_ready, unique_topic, wait_for

# Topic configs every Kafka broker reports for a topic.
CORE_TOPIC_CONFIGS = {
    "cleanup.policy",
    "compression.type",
    "max.message.bytes",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
}


def error_code(exc: BaseException):
    """The KafkaError code carried by an admin future's exception."""
    assert isinstance(exc, KafkaException), repr(exc)
    return exc.args[0].code()


def topic_exists(admin, topic: str) -> bool:
    return topic in admin.list_topics(timeout=5).topics


def describe_topic_configs(admin, topic: str) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res], request_timeout=15)[res].result(timeout=15)


def test_create_describe_delete_topic(admin, topic):
    ck_create_topic(admin, topic, partitions=3)
    assert topic_exists(admin, topic)

    desc = admin.describe_topics(TopicCollection([topic]), request_timeout=15)[topic].result(timeout=15)
    assert desc.name == topic
    assert [p.id for p in desc.partitions] == [0, 1, 2]
    for p in desc.partitions:
        assert p.leader.id == 1
        assert [r.id for r in p.replicas] == [1]
        assert [r.id for r in p.isr] == [1]

    admin.delete_topics([topic], operation_timeout=15)[topic].result(timeout=15)
    wait_for(lambda: not topic_exists(admin, topic), what=f"{topic} to disappear")

    # A second delete of the same topic reports UNKNOWN_TOPIC_OR_PART.
    with pytest.raises(KafkaException) as ei:
        admin.delete_topics([topic], operation_timeout=15)[topic].result(timeout=15)
    assert error_code(ei.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_recreated_topic_starts_empty(bootstrap, admin, topic):
    from confluent_kafka import Consumer

    ck_create_topic(admin, topic)
    ck_produce(bootstrap, topic, [{"value": b"old"}] * 5)
    admin.delete_topics([topic], operation_timeout=15)[topic].result(timeout=15)
    wait_for(lambda: not topic_exists(admin, topic), what=f"{topic} to disappear")

    # The broker may still be finishing the deletion; retry creation until accepted.
    def create():
        try:
            ck_create_topic(admin, topic)
            return True
        except KafkaException as exc:
            if error_code(exc) == KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            raise

    wait_for(create, what=f"re-creating {topic}")
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "re", "enable.auto.commit": False})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=15, cached=False) == (0, 0)
    finally:
        c.close()
    ck_produce(bootstrap, topic, [{"value": b"new"}])
    assert [r.value for r in ck_consume(bootstrap, topic, [0], expected=1)] == [b"new"]


def test_create_existing_topic_fails(admin, topic):
    ck_create_topic(admin, topic)
    fut = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=15)[topic]
    with pytest.raises(KafkaException) as ei:
        fut.result(timeout=15)
    assert error_code(ei.value) == KafkaError.TOPIC_ALREADY_EXISTS


def test_create_validate_only(admin, topic):
    admin.create_topics([NewTopic(topic, 2, 1)], validate_only=True, operation_timeout=15)[topic].result(timeout=15)
    assert not topic_exists(admin, topic)
    # validate_only still validates.
    fut = admin.create_topics([NewTopic("bad/name", 1, 1)], validate_only=True, operation_timeout=15)["bad/name"]
    with pytest.raises(KafkaException) as ei:
        fut.result(timeout=15)
    assert error_code(ei.value) == KafkaError.TOPIC_EXCEPTION


@pytest.mark.parametrize("name", ["bad/name", "x" * 250, ".", "..", "spaces are bad", "t\u00e9st"])
def test_invalid_topic_names_rejected(admin, name):
    fut = admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=15)[name]
    with pytest.raises(KafkaException) as ei:
        fut.result(timeout=15)
    assert error_code(ei.value) == KafkaError.TOPIC_EXCEPTION
    assert name not in admin.list_topics(timeout=5).topics


def test_longest_legal_topic_name(admin):
    name = unique_topic("long")
    name = name + "x" * (249 - len(name))
    assert len(name) == 249
    ck_create_topic(admin, name)


@pytest.mark.parametrize("partitions,rf", [(0, 1), (1, 3), (1, 0)])
def test_invalid_partition_or_replication_counts(admin, topic, partitions, rf):
    fut = admin.create_topics([NewTopic(topic, partitions, rf)], operation_timeout=15)[topic]
    with pytest.raises(KafkaException) as ei:
        fut.result(timeout=15)
    assert error_code(ei.value) in (
        KafkaError.INVALID_PARTITIONS,
        KafkaError.INVALID_REPLICATION_FACTOR,
        KafkaError.INVALID_REQUEST,
    )
    assert not topic_exists(admin, topic)


def test_create_with_broker_defaults(admin, topic):
    """num_partitions / replication_factor -1 mean "use the broker defaults"."""
    admin.create_topics([NewTopic(topic)], operation_timeout=15)[topic].result(timeout=15)
    wait_for(lambda: ck_topic_ready(admin, topic, 1), what=f"{topic} with num.partitions=1 partitions")


def test_create_with_configs_and_describe_sources(admin, topic):
    configs = {"retention.ms": "3600000", "cleanup.policy": "compact", "max.message.bytes": "200000"}
    ck_create_topic(admin, topic, config=configs)
    entries = describe_topic_configs(admin, topic)

    missing = CORE_TOPIC_CONFIGS - set(entries)
    assert not missing, f"describe_configs lacks {sorted(missing)}; got {sorted(entries)}"
    for key, value in configs.items():
        e = entries[key]
        assert e.value == value, (key, e.value)
        assert e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, (key, e.source)
        assert not e.is_default
    for key in CORE_TOPIC_CONFIGS - set(configs):
        e = entries[key]
        assert e.source in (ConfigSource.DEFAULT_CONFIG.value, ConfigSource.STATIC_BROKER_CONFIG.value), (key, e.source)
        assert e.value is not None
    assert entries["segment.bytes"].value.isdigit()
    assert entries["compression.type"].value == "producer"


def test_create_with_invalid_config_fails(admin, topic):
    for bad in ({"retention.ms": "not-a-number"}, {"cleanup.policy": "sometimes"}, {"no.such.config": "1"}):
        fut = admin.create_topics([NewTopic(topic, 1, 1, config=bad)], operation_timeout=15)[topic]
        with pytest.raises(KafkaException) as ei:
            fut.result(timeout=15)
        assert error_code(ei.value) in (KafkaError.INVALID_CONFIG, KafkaError.INVALID_REQUEST), bad
        assert not topic_exists(admin, topic)


def test_describe_configs_of_unknown_topic(admin, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    with pytest.raises(KafkaException) as ei:
        admin.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    assert error_code(ei.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_incremental_alter_configs(admin, topic):
    ck_create_topic(admin, topic, config={"retention.ms": "1000000"})
    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("retention.ms", "2000000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    entries = describe_topic_configs(admin, topic)
    assert entries["retention.ms"].value == "2000000"
    assert entries["segment.bytes"].value == "1048576"
    assert entries["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)],
    )
    admin.incremental_alter_configs([res])[res].result(timeout=15)
    entries = describe_topic_configs(admin, topic)
    assert entries["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert entries["retention.ms"].value == "604800000"
    assert entries["segment.bytes"].value == "1048576"  # untouched


def test_incremental_alter_invalid_value_rejected(admin, topic):
    ck_create_topic(admin, topic)
    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)],
    )
    with pytest.raises(KafkaException) as ei:
        admin.incremental_alter_configs([res])[res].result(timeout=15)
    assert error_code(ei.value) in (KafkaError.INVALID_CONFIG, KafkaError.INVALID_REQUEST)
    assert describe_topic_configs(admin, topic)["retention.ms"].value == "604800000"


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")
def test_legacy_alter_configs_replaces_all(admin, topic):
    ck_create_topic(admin, topic, config={"retention.ms": "1000000"})
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"cleanup.policy": "compact"})
    admin.alter_configs([res])[res].result(timeout=15)
    entries = describe_topic_configs(admin, topic)
    assert entries["cleanup.policy"].value == "compact"
    assert entries["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # AlterConfigs (non-incremental) replaces the whole dynamic set.
    assert entries["retention.ms"].value == "604800000"
    assert entries["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def test_create_partitions(bootstrap, admin, topic):
    ck_create_topic(admin, topic, partitions=1)
    admin.create_partitions([NewPartitions(topic, 3)], operation_timeout=15)[topic].result(timeout=15)
    wait_for(lambda: ck_topic_ready(admin, topic, 3), what="3 partitions in metadata")

    ck_produce(bootstrap, topic, [{"value": b"p2", "partition": 2}, {"value": b"p0", "partition": 0}])
    got = ck_consume(bootstrap, topic, [0, 1, 2], expected=2)
    assert sorted((r.partition, r.value) for r in got) == [(0, b"p0"), (2, b"p2")]

    # Shrinking (or not growing) is refused.
    for n in (2, 3):
        fut = admin.create_partitions([NewPartitions(topic, n)], operation_timeout=15)[topic]
        with pytest.raises(KafkaException) as ei:
            fut.result(timeout=15)
        assert error_code(ei.value) == KafkaError.INVALID_PARTITIONS


def test_create_partitions_validate_only(admin, topic):
    ck_create_topic(admin, topic, partitions=1)
    admin.create_partitions([NewPartitions(topic, 4)], validate_only=True, operation_timeout=15)[topic].result(timeout=15)
    assert len(admin.list_topics(topic=topic, timeout=5).topics[topic].partitions) == 1


def test_create_partitions_unknown_topic(admin, topic):
    fut = admin.create_partitions([NewPartitions(topic, 2)], operation_timeout=15)[topic]
    with pytest.raises(KafkaException) as ei:
        fut.result(timeout=15)
    assert error_code(ei.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_delete_records(bootstrap, admin, topic):
    from confluent_kafka import Consumer

    ck_create_topic(admin, topic, partitions=2)
    ck_produce(bootstrap, topic, [{"value": str(i).encode(), "partition": 0} for i in range(10)])
    ck_produce(bootstrap, topic, [{"value": str(i).encode(), "partition": 1} for i in range(3)])

    futs = admin.delete_records([TopicPartition(topic, 0, 4), TopicPartition(topic, 1, -1)], request_timeout=15)
    lows = {tp.partition: f.result(timeout=15).low_watermark for tp, f in futs.items()}
    assert lows == {0: 4, 1: 3}  # -1 means "up to the high watermark"

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dr", "enable.auto.commit": False})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=15, cached=False) == (4, 10)
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=15, cached=False) == (3, 3)
    finally:
        c.close()
    got = ck_consume(bootstrap, topic, [0, 1], expected=6)
    assert [(r.partition, r.offset, r.value) for r in got] == [(0, i, str(i).encode()) for i in range(4, 10)]

    # Beyond the high watermark is an error.
    fut = admin.delete_records([TopicPartition(topic, 0, 11)], request_timeout=15)
    with pytest.raises(KafkaException) as ei:
        list(fut.values())[0].result(timeout=15)
    assert error_code(ei.value) == KafkaError.OFFSET_OUT_OF_RANGE


def test_describe_cluster(admin, broker):
    desc = admin.describe_cluster(request_timeout=15).result(timeout=15)
    assert desc.cluster_id
    assert desc.controller is not None and desc.controller.id == 1
    assert [(n.id, n.host, n.port) for n in desc.nodes] == [(1, broker.host, broker.port)]


def test_describe_topics_unknown(admin, topic):
    fut = admin.describe_topics(TopicCollection([topic]), request_timeout=15)[topic]
    with pytest.raises(KafkaException) as ei:
        fut.result(timeout=15)
    assert error_code(ei.value) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker_configs(admin):
    res = ConfigResource(ResourceType.BROKER, "1")
    entries = admin.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    for key in ("num.partitions", "auto.create.topics.enable", "log.segment.bytes", "message.max.bytes"):
        assert key in entries, f"broker config {key} missing; got {sorted(entries)[:40]}"
    assert entries["num.partitions"].value == "1"
    assert entries["auto.create.topics.enable"].value == "true"
