"""The local stack is real and behaves as the worker relies on.

These guard the infrastructure itself: if one fails, every Kafka/Redis test
after it would fail for reasons that have nothing to do with the code.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream_app.kafka.topics import topic_partitions
from stream_app.settings import get_settings

N_MESSAGES = 100
N_KEYS = 10
TIMEOUT = 60.0


def test_kafka_roundtrip_keeps_keys_and_per_key_order(kafka_bootstrap, make_topics, unique_name):
    topic = f"test-stack-roundtrip-{unique_name}"
    make_topics([topic], partitions=4)
    assert asyncio.run(topic_partitions(kafka_bootstrap, [topic])) == {topic: 4}

    sent = [
        (f"key-{i % N_KEYS}".encode(), f"{i % N_KEYS}:{i // N_KEYS}".encode())
        for i in range(N_MESSAGES)
    ]

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            futures = [await producer.send(topic, key=k, value=v) for k, v in sent]
            await producer.flush()
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def consume() -> list[tuple[bytes, bytes, int]]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=f"test-stack-{unique_name}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        got: list[tuple[bytes, bytes, int]] = []
        try:
            deadline = time.monotonic() + TIMEOUT
            while len(got) < N_MESSAGES and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    got.extend((r.key, r.value, r.partition) for r in records)
            # Nothing beyond what was sent may show up (no duplicates).
            extra = await consumer.getmany(timeout_ms=1000)
            got.extend((r.key, r.value, r.partition) for rs in extra.values() for r in rs)
        finally:
            await consumer.stop()
        return got

    async def roundtrip() -> list[tuple[bytes, bytes, int]]:
        await produce()
        return await consume()

    got = asyncio.run(asyncio.wait_for(roundtrip(), TIMEOUT + 30))

    assert len(got) == N_MESSAGES, f"consumed {len(got)} of {N_MESSAGES}"
    assert sorted((k, v) for k, v, _ in got) == sorted(sent)

    per_key_values: dict[bytes, list[bytes]] = defaultdict(list)
    per_key_partitions: dict[bytes, set[int]] = defaultdict(set)
    for key, value, partition in got:
        per_key_values[key].append(value)
        per_key_partitions[key].add(partition)
    for key, values in per_key_values.items():
        assert values == [v for k, v in sent if k == key], f"order broken for {key!r}"
        assert len(per_key_partitions[key]) == 1, f"{key!r} spread over partitions"
    # The keys really were spread by the partitioner, not all sent to one partition.
    assert len({p for _, _, p in got}) > 1


def test_redis_set_get_and_pubsub(redis_url, unique_name):
    import redis.asyncio as aioredis

    key = f"test:stack:{unique_name}"
    channel = f"test:stack:chan:{unique_name}"

    async def scenario() -> tuple[object, list[object]]:
        client = aioredis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        pubsub = client.pubsub()
        try:
            await client.set(key, b"hello", ex=60)
            value = await client.get(key)

            await pubsub.subscribe(channel)
            # The subscription is active once its confirmation has arrived;
            # a PUBLISH before that would be lost.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                msg = await pubsub.get_message(timeout=1.0)
                if msg and msg["type"] == "subscribe":
                    break
            receivers = [await client.publish(channel, f"m{i}".encode()) for i in range(3)]
            assert receivers == [1, 1, 1]

            received: list[object] = []
            deadline = time.monotonic() + 10
            while len(received) < 3 and time.monotonic() < deadline:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg and msg["type"] == "message":
                    received.append(msg["data"])
            return value, received
        finally:
            await client.delete(key)
            await pubsub.aclose()
            await client.aclose()

    value, received = asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
    assert value == b"hello"
    assert received == [b"m0", b"m1", b"m2"]


def test_contract_topics_exist_with_configured_partitions(kafka_bootstrap):
    # Checked without creating anything: `make stack` / `make test` must have made them.
    settings = get_settings()
    names = [*settings.input_topics.values(), settings.dead_letter_topic, settings.alerts_topic]
    assert len(set(names)) == 6
    found = asyncio.run(asyncio.wait_for(topic_partitions(kafka_bootstrap, names), TIMEOUT))
    missing = sorted(set(names) - set(found))
    assert not missing, f"contract topics missing: {missing} (infra/stack.sh up creates them)"
    assert found == {name: settings.partitions for name in names}
