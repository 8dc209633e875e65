"""Client quotas against real clients: set with `fjord configs --entity-type clients` (the
Python clients and librdkafka have no quota admin calls), enforced on confluent-kafka
producers and consumers, which see the broker's throttle time through `throttle_cb`.

Fjord measures a client's rate over at least 10 one-second windows, as Kafka does, so a
client may send about ten seconds' worth of its quota before it is throttled. After that
each response carries a throttle time and the broker mutes the connection for it (KIP-219):
the 300 kB here took 5-9 s where an unthrottled client needs milliseconds to a second. The
control clients use another client id and must not be throttled at all."""

from __future__ import annotations

import subprocess
import threading
import time

from fjord_support import ck_admin, ck_consume, ck_create_topic, ck_produce, fjord_bin, unique_topic

RATE = 25_000  # bytes per second
RECORD = 10_000  # bytes per value
COUNT = 30  # 300 kB: 12x the per-second quota, 1.2x what the 10 s window admits at once


def fjord_configs(bootstrap: str, *args: str) -> str:
    out = subprocess.run(
        [str(fjord_bin()), "configs", "--bootstrap-server", bootstrap, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"fjord configs {args}: {out.stderr}"
    return out.stdout


def set_quota(bootstrap: str, client_id: str, key: str) -> None:
    fjord_configs(
        bootstrap, "--alter", "--entity-type", "clients", "--entity-name", client_id, "--add-config", f"{key}={RATE}"
    )
    described = fjord_configs(bootstrap, "--describe", "--entity-type", "clients", "--entity-name", client_id)
    assert described.strip() == f"Quota configs for client-id '{client_id}' are {key}={float(RATE)}", described


class Throttles:
    """Collects confluent-kafka's throttle events (called from poll)."""

    def __init__(self):
        self.events: list[float] = []

    def __call__(self, event):
        if event.throttle_time > 0:
            self.events.append(event.throttle_time)


def test_producer_byte_rate_throttles_only_that_client(broker_factory):
    broker = broker_factory()
    bootstrap = broker.bootstrap
    topic = unique_topic("quota-produce")
    ck_create_topic(ck_admin(bootstrap), topic, 1)
    set_quota(bootstrap, "slow-producer", "producer_byte_rate")
    records = [{"value": bytes([i]) * RECORD} for i in range(COUNT)]

    # One record per request, so the producer has to come back many times.
    one_per_request = {"batch.num.messages": 1, "linger.ms": 0}
    fast = Throttles()
    started = time.monotonic()
    ck_produce(bootstrap, topic, records, **{"client.id": "fast-producer", "throttle_cb": fast}, **one_per_request)
    fast_s = time.monotonic() - started

    slow = Throttles()
    started = time.monotonic()
    reports = ck_produce(
        bootstrap, topic, records, timeout=90.0, **{"client.id": "slow-producer", "throttle_cb": slow}, **one_per_request
    )
    slow_s = time.monotonic() - started

    assert slow.events, "the producer over its quota saw no throttle time"
    assert not fast.events, f"another client id was throttled: {fast.events}"
    # Unthrottled this takes milliseconds; held to the quota, seconds.
    assert slow_s >= 2.0 and slow_s >= fast_s + 2.0, (slow_s, fast_s, slow.events)
    # Every record was acknowledged, in order, after the control producer's.
    assert [o for _, o in reports] == list(range(COUNT, 2 * COUNT))
    recs = ck_consume(bootstrap, topic, [0], 2 * COUNT)
    assert [r.value for r in recs] == [r["value"] for r in records] * 2


def test_consumer_byte_rate_throttles_only_that_client(broker_factory):
    broker = broker_factory()
    bootstrap = broker.bootstrap
    topic = unique_topic("quota-fetch")
    ck_create_topic(ck_admin(bootstrap), topic, 1)
    records = [{"value": bytes([i]) * RECORD} for i in range(COUNT)]
    # One record per batch: a fetch returns at least one whole batch, whatever its limits.
    ck_produce(bootstrap, topic, records, **{"batch.num.messages": 1})
    set_quota(bootstrap, "slow-consumer", "consumer_byte_rate")
    # One record per fetch, so the consumer has to come back many times.
    small_fetches = {
        "fetch.max.bytes": 12_000,
        "max.partition.fetch.bytes": 12_000,
        "message.max.bytes": 12_000,
    }

    results: dict = {}

    def read(client_id: str, throttles: Throttles):
        started = time.monotonic()
        recs = ck_consume(
            bootstrap, topic, [0], COUNT, timeout=90.0, **{"client.id": client_id, "throttle_cb": throttles}, **small_fetches
        )
        results[client_id] = (recs, time.monotonic() - started)

    slow, fast = Throttles(), Throttles()
    threads = [
        threading.Thread(target=read, args=("slow-consumer", slow)),
        threading.Thread(target=read, args=("fast-consumer", fast)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    (slow_recs, slow_s), (fast_recs, fast_s) = results["slow-consumer"], results["fast-consumer"]
    expected = [r["value"] for r in records]
    assert [r.value for r in slow_recs] == expected and [r.value for r in fast_recs] == expected
    assert slow.events, "the consumer over its quota saw no throttle time"
    assert not fast.events, f"another client id was throttled: {fast.events}"
    assert slow_s >= 2.0 and slow_s >= fast_s + 2.0, (slow_s, fast_s, slow.events)

    # Removing the quota lifts it: the same client reads everything again without throttling.
    fjord_configs(
        bootstrap,
        "--alter",
        "--entity-type",
        "clients",
        "--entity-name",
        "slow-consumer",
        "--delete-config",
        "consumer_byte_rate",
    )
    assert fjord_configs(bootstrap, "--describe", "--entity-type", "clients") == ""
    again = Throttles()
    recs = ck_consume(
        bootstrap, topic, [0], COUNT, **{"client.id": "slow-consumer", "throttle_cb": again}, **small_fetches
    )
    assert [r.value for r in recs] == expected
    assert not again.events, again.events
