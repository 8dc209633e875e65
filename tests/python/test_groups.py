"""Consumer groups from Python: confluent-kafka and kafka-python commit, stop, and resume
exactly after the committed offset — also across a broker restart."""

import uuid

from fjord_support import ck_create_topic, ck_admin, ck_produce, kp_producer, wait_for

GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}


def _ck_group_consumer(bootstrap, group, **extra):
    from confluent_kafka import Consumer

    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    conf.update(extra)
    return Consumer(conf)


def _ck_read(consumer, n, timeout=60.0):
    got = []

    def step():
        msg = consumer.poll(0.2)
        if msg is not None:
            assert msg.error() is None, msg.error()
            got.append(msg)
        return len(got) >= n

    wait_for(step, timeout, interval=0, what=f"{n} records")
    return got


def _check_resume_confluent(bootstrap_before, bootstrap_after, topic, group, restart=None, **extra):
    c = _ck_group_consumer(bootstrap_before, group, **extra)
    c.subscribe([topic])
    first = _ck_read(c, 30)
    assert [m.offset() for m in first] == list(range(30))
    c.commit(message=first[-1], asynchronous=False)
    c.close()
    bootstrap = restart() if restart else bootstrap_after
    c = _ck_group_consumer(bootstrap, group, **extra)
    c.subscribe([topic])
    rest = _ck_read(c, 1)
    assert rest[0].offset() == 30, "resumes exactly after the committed offset"
    assert rest[0].value() == b"v30"
    c.close()


def test_confluent_kafka_group_commits_and_resumes(bootstrap, topic):
    admin = ck_admin(bootstrap)
    ck_create_topic(admin, topic, 1)
    ck_produce(bootstrap, topic, [{"value": f"v{i}".encode()} for i in range(50)])
    _check_resume_confluent(bootstrap, bootstrap, topic, f"ck-{uuid.uuid4().hex[:8]}")


def test_confluent_kafka_kip848_group_commits_and_resumes(broker_factory, topic):
    b = broker_factory({"group.consumer.heartbeat.interval.ms": "500"})
    ck_create_topic(ck_admin(b.bootstrap), topic, 1)
    ck_produce(b.bootstrap, topic, [{"value": f"v{i}".encode()} for i in range(50)])
    c_extra = {"group.protocol": "consumer"}
    group = f"ck848-{uuid.uuid4().hex[:8]}"
    from confluent_kafka import Consumer

    def consumer():
        return Consumer({
            "bootstrap.servers": b.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **c_extra,
        })

    c = consumer()
    c.subscribe([topic])
    first = _ck_read(c, 30)
    c.commit(message=first[-1], asynchronous=False)
    c.close()
    c = consumer()
    c.subscribe([topic])
    assert _ck_read(c, 1)[0].offset() == 30
    c.close()


def test_committed_offsets_survive_broker_restart_confluent(broker_factory, topic):
    b = broker_factory(GROUP_OVERRIDES)
    ck_create_topic(ck_admin(b.bootstrap), topic, 1)
    ck_produce(b.bootstrap, topic, [{"value": f"v{i}".encode()} for i in range(50)])
    state = {"broker": b}

    def restart():
        data = state["broker"].data_dir
        assert state["broker"].stop() == 0
        state["broker"] = broker_factory(GROUP_OVERRIDES, data_dir=data)
        return state["broker"].bootstrap

    _check_resume_confluent(b.bootstrap, None, topic, f"ckr-{uuid.uuid4().hex[:8]}", restart=restart)


def test_kafka_python_group_commits_and_resumes(broker_factory, topic):
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata, TopicPartition

    b = broker_factory(GROUP_OVERRIDES)
    ck_create_topic(ck_admin(b.bootstrap), topic, 1)
    p = kp_producer(b.bootstrap)
    for i in range(50):
        p.send(topic, f"v{i}".encode())
    p.flush(30)
    p.close()
    group = f"kp-{uuid.uuid4().hex[:8]}"

    def consumer(bootstrap):
        return KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
            consumer_timeout_ms=60000,
        )

    c = consumer(b.bootstrap)
    got = []
    for msg in c:
        got.append(msg)
        if len(got) == 30:
            break
    assert [m.offset for m in got] == list(range(30))
    tp = TopicPartition(topic, 0)
    c.commit({tp: OffsetAndMetadata(30, "kp-meta", -1)})
    assert c.committed(tp) == 30
    c.close()
    # Restart the broker: the commit is durable.
    data = b.data_dir
    assert b.stop() == 0
    b2 = broker_factory(GROUP_OVERRIDES, data_dir=data)
    c = consumer(b2.bootstrap)
    first = next(iter(c))
    assert first.offset == 30 and first.value == b"v30"
    c.close()
