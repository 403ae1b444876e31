"""The producer against the real broker: every line arrives, byte for byte, on its
family's topic with its contract key, and one entity's events stay in order on one
partition (the contract's ordering promise the worker's lifecycle checks rely on).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from stream_app.settings import get_settings
from stream_app.tools.producer import ProduceError, produce_lines, run_produce, start_producer
from stream_app.tools.routing import route
from stream_app.tools.simulator.run import generate_events

PARTITIONS = 4
Record = tuple[int, bytes | None, bytes]  # partition, key, value (in offset order)


async def consume_all(bootstrap: str, topics: list[str], expected: int,
                      timeout: float = 60.0) -> dict[str, list[Record]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    got: dict[str, list[Record]] = defaultdict(list)
    try:
        consumer.assign([TopicPartition(t, p) for t in topics for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        deadline, n = time.monotonic() + timeout, 0
        while n < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for tp, records in batches.items():
                for r in records:
                    got[tp.topic].append((tp.partition, r.key, r.value))
                n += len(records)
        # Anything beyond the expected count would be a double send: look a bit longer.
        extra = await consumer.getmany(timeout_ms=1000)
        assert not any(extra.values()), "more records than lines sent"
    finally:
        await consumer.stop()
    return got


def check_delivery(lines: list[bytes], topics: dict[str, str],
                   got: dict[str, list[Record]]) -> None:
    """Right topic, right key, right partition, and per-key order as in the file."""
    expected: dict[tuple[str, bytes | None], list[bytes]] = defaultdict(list)
    for line in lines:
        family, key = route(line)
        expected[(topics[family], key)].append(line)
    received: dict[tuple[str, bytes | None], list[bytes]] = defaultdict(list)
    partitions: dict[tuple[str, bytes | None], set[int]] = defaultdict(set)
    # Records of one partition in offset order; per key that is the production order.
    for topic, records in got.items():
        for partition in range(PARTITIONS):
            for p, key, value in records:
                if p == partition:
                    received[(topic, key)].append(value)
                    partitions[(topic, key)].add(p)
    assert set(received) == set(expected)
    partitioner = DefaultPartitioner()
    for (topic, key), values in expected.items():
        if key is None:  # bad lines: on the contact topic, any partition, no order promise
            assert topic == topics["contact"]
            assert sorted(received[(topic, key)]) == sorted(values)
            continue
        assert received[(topic, key)] == values, (topic, key)
        assert partitions[(topic, key)] == {
            partitioner(key, list(range(PARTITIONS)), list(range(PARTITIONS)))}


@pytest.fixture
def lines() -> list[bytes]:
    # Ten minutes at 40/s ending now (so nothing is too late for a worker that might read
    # them), with 5 % bad lines: unkeyed, non-JSON, duplicates, ...
    return list(generate_events(40, 600, 31, time.time() - 600, 0.05))


def test_produce_lines_routes_keys_and_keeps_entity_order(
        kafka_bootstrap: str, unique_name: str, make_topics: Callable[..., list[str]],
        lines: list[bytes]) -> None:
    topics = {f: f"{f}-events-{unique_name}" for f in ("contact", "ticket", "survey", "agent")}
    make_topics(list(topics.values()), PARTITIONS)
    counts = asyncio.run(produce_lines(kafka_bootstrap, topics, [*lines, b""]))
    assert sum(counts.values()) == len(lines)  # the empty line is skipped
    assert set(counts) == set(topics.values())
    got = asyncio.run(consume_all(kafka_bootstrap, list(topics.values()), len(lines)))
    assert {t: len(r) for t, r in got.items()} == counts
    check_delivery(lines, topics, got)
    assert sum(1 for line in lines if route(line)[1] is None) > 0


def test_produce_command_reads_a_file_with_settings_topics(
        kafka_bootstrap: str, unique_name: str, make_topics: Callable[..., list[str]],
        lines: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("KPI_TOPIC_PREFIX", f"{unique_name}-")
    get_settings.cache_clear()
    try:
        topics = get_settings().input_topics
        make_topics(list(topics.values()), PARTITIONS)
        path = tmp_path / "events.jsonl"
        # Empty lines are skipped, CRLF endings stripped; no newline after the last line.
        body = b"\n".join(lines[:100]) + b"\n\n" + b"\r\n".join(lines[100:])
        path.write_bytes(body)
        run_produce([path])
        assert f"produced {len(lines):,} lines" in capsys.readouterr().err
        got = asyncio.run(consume_all(kafka_bootstrap, list(topics.values()), len(lines)))
        check_delivery(lines, topics, got)
    finally:
        get_settings.cache_clear()


def test_unreachable_broker_says_what_to_do() -> None:
    with pytest.raises(ProduceError, match="make stack"):
        asyncio.run(start_producer("127.0.0.1:1"))
