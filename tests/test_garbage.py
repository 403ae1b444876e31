"""10,000 random byte strings and malformed JSON objects among good events: the worker
never crashes, every bad message lands in the dead-letter topic with its reason and
its original bytes, and the good events around them are all counted."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_app.tools.producer import produce_lines
from stream_app.tools.simulator.run import generate_events
from tables.events import REASONS
from tests.livehelp import Deployment
from tests.test_live import _check_against_replay

pytestmark = pytest.mark.stack


def _garbage(rng: random.Random, good: list[bytes], n: int) -> list[bytes]:
    out: list[bytes] = []
    while len(out) < n:
        kind = rng.randrange(5)
        if kind == 0:  # random bytes (no newline: the replay file is line-based)
            b = bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
        elif kind == 1:  # a good event cut short
            g = rng.choice(good)
            b = g[: rng.randint(1, len(g) - 1)]
        elif kind == 2:  # a JSON value that is not an object
            b = orjson.dumps(
                rng.choice([[1, 2], 3, "x", None, True, [{"type": "contact_offered"}]])
            )
        elif kind == 3:  # a good event with one field mangled
            obj = orjson.loads(rng.choice(good))
            field = rng.choice(sorted(obj))
            obj[field] = rng.choice([None, 12, "", [], {"a": 1}, "z" * 200, -1])
            b = orjson.dumps(obj)
        else:  # an object of the wrong shape
            b = orjson.dumps({"event_id": str(rng.random()), "type": rng.choice(["x", 1, None])})
        b = b.replace(b"\n", b" ").replace(b"\r", b" ")
        if b.strip():
            out.append(b)
    return out


async def _dead_letters(dep: Deployment, expected: int, deadline: float) -> list[tuple[bytes, str]]:
    topic = f"{dep.prefix}kpi-dead-letters"
    consumer = AIOKafkaConsumer(bootstrap_servers=dep.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(dep.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got: list[tuple[bytes, str]] = []
        end = time.monotonic() + deadline
        while len(got) < expected and time.monotonic() < end:
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                for r in recs:
                    headers = dict(r.headers)
                    got.append((r.value, headers["reason"].decode()))
                    assert {"source_topic", "source_partition", "source_offset"} <= set(headers)
        return got
    finally:
        await consumer.stop()


def test_ten_thousand_bad_messages_never_crash_and_all_dead_letter(deployment: Deployment) -> None:
    rng = random.Random(31)
    good = list(
        generate_events(
            rate=10, duration=900, seed=31, start_epoch=time.time() - 900, bad_share=0.0
        )
    )
    bad = _garbage(rng, good, 10_000)
    rng.shuffle(bad)
    # Interleave: the bad ones land between good events of the same partitions.
    mixed = []
    for i, g in enumerate(good):
        mixed.append(g)
        mixed.extend(bad[i * len(bad) // len(good) : (i + 1) * len(bad) // len(good)])
    port = deployment.start_worker()
    deployment.wait_http(port)
    asyncio.run(produce_lines(deployment.bootstrap, deployment.topics, mixed))
    deployment.wait_caught_up(port, deadline_s=240)
    assert deployment.alive()
    live = _check_against_replay(deployment, port, mixed, min_reasons=2)
    rejected = sum(live["rejected"].values())
    # Every garbage message is refused, or (a mangled copy of a good event that is still
    # valid) dropped as a duplicate of it.
    assert rejected + live["duplicates"] >= 10_000
    letters = asyncio.run(_dead_letters(deployment, rejected, 60))
    assert len(letters) == rejected
    by_reason = Counter(reason for _, reason in letters)
    assert dict(by_reason) == live["rejected"]
    assert set(by_reason) <= set(REASONS)
    bad_set = set(bad)
    # The original bytes, untouched.
    assert sum(1 for value, _ in letters if value in bad_set) >= 10_000 - live["duplicates"]
