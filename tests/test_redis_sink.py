"""The Redis sink against a real Redis: what a publish writes, and when.

A row's changed fields go out at once when an event changed it; a row moved only by
the clock (time in states, occupancy, longest wait: ``ticks`` in the catalogue) waits
for the next tick; every hash is written whole, with its TTL, every refresh period.
The sink's clock is injected, so the test decides when a tick is due.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
import redis

from stream_app.outputs.redis_sink import REFRESH_SECONDS, RedisSink, row_hash
from tables.kpis import TICKING

pytestmark = pytest.mark.stack


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def agent_row(answered: int, staffed: float, window: str = "15m") -> dict[str, Any]:
    return {"scope": "agent:a1", "window": window, "contacts_answered": answered,
            "staffed_seconds": staffed, "occupancy": None, "aht_seconds": 12.5}


def snap(as_of: str, *rows: dict[str, Any]) -> dict[str, Any]:
    return {"as_of": as_of, "rows": list(rows)}


def test_ticking_fields_wait_for_the_tick_and_events_go_out_at_once(redis_url: str) -> None:
    assert {"staffed_seconds", "occupancy", "longest_wait_seconds"} <= TICKING
    assert "contacts_answered" not in TICKING
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(f"{prefix}updates")
    clock = Clock()
    sink = RedisSink(redis_url, prefix, 3600, tick_seconds=1.0, monotonic=clock)
    key, other = f"{prefix}15m:agent:a1", f"{prefix}now:all"
    all_row = {"scope": "all", "window": "now", "contacts_waiting": 3}

    def stored(k: str) -> dict[str, str]:
        return {a.decode(): b.decode() for a, b in client.hgetall(k).items()}

    def feed() -> list[str]:
        out = []
        while (m := pubsub.get_message(timeout=0.2)) is not None:
            if m["type"] == "message":
                out.append(orjson.loads(m["data"])["key"])
        return out

    async def run() -> None:
        # First publish: every row whole, with its TTL, the snapshot key, a message each.
        s1 = snap("T1", agent_row(1, 10.0), all_row)
        assert await sink.publish(s1)
        assert stored(key) == row_hash(s1["rows"][0], "T1")
        assert 0 < client.ttl(key) <= 3600
        assert orjson.loads(client.get(f"{prefix}snapshot"))["as_of"] == "T1"
        assert sorted(feed()) == sorted([key, other])
        # 0.1 s later only the clock moved the agent's time: nothing written yet.
        clock.t += 0.1
        assert await sink.publish(snap("T2", agent_row(1, 10.1), all_row))
        assert stored(key) == row_hash(s1["rows"][0], "T1") and feed() == []
        # An event: the agent answered one more; the row goes out now, ticking field too.
        clock.t += 0.1
        s3 = snap("T3", agent_row(2, 10.2), all_row)
        assert await sink.publish(s3)
        assert stored(key) == row_hash(s3["rows"][0], "T3") and feed() == [key]
        # ... but the snapshot key waits for the tick like the ticking fields.
        assert orjson.loads(client.get(f"{prefix}snapshot"))["as_of"] == "T1"
        # At the tick, the clock-only change goes out, and the snapshot key.
        clock.t += 0.8
        s4 = snap("T4", agent_row(2, 11.0), all_row)
        assert await sink.publish(s4)
        assert stored(key) == row_hash(s4["rows"][0], "T4") and feed() == [key]
        assert orjson.loads(client.get(f"{prefix}snapshot"))["as_of"] == "T4"
        assert stored(other)["as_of"] == "T1"  # unchanged rows are left alone
        # A row that left the snapshot is deleted.
        clock.t += 1.0
        assert await sink.publish(snap("T5", agent_row(2, 11.0)))
        assert not client.exists(other)
        # A key lost on the Redis side comes back whole at the refresh.
        client.delete(key)
        clock.t += 1.0
        assert await sink.publish(snap("T6", agent_row(2, 11.0)))
        assert not client.exists(key)
        clock.t += REFRESH_SECONDS
        s7 = snap("T7", agent_row(2, 11.0))
        assert await sink.publish(s7)
        assert stored(key) == row_hash(s7["rows"][0], "T7") and client.ttl(key) > 0
        assert feed() == []  # rewritten, but nothing changed for a listener
        await sink.close()

    try:
        asyncio.run(run())
    finally:
        for k in client.scan_iter(f"{prefix}*"):
            client.delete(k)
        pubsub.close()
        client.close()


def test_a_redis_refusing_the_update_script_is_written_command_by_command(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    from stream_app.outputs import redis_sink

    monkeypatch.setattr(redis_sink, "UPDATE_SCRIPT", "return redis.error_reply('ERR refused')")
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(redis_url)
    clock = Clock()
    sink = RedisSink(redis_url, prefix, 3600, monotonic=clock)
    try:
        s2 = snap("T2", agent_row(2, 11.0))

        async def run() -> None:
            assert await sink.publish(snap("T1", agent_row(1, 10.0)))
            clock.t += 1.0
            assert await sink.publish(s2)
            await sink.close()

        with caplog.at_level("WARNING"):
            asyncio.run(run())
        got = {a.decode(): b.decode() for a, b in client.hgetall(f"{prefix}15m:agent:a1").items()}
        assert got == row_hash(s2["rows"][0], "T2")
        assert sum("refused the update script" in r.getMessage() for r in caplog.records) == 1
    finally:
        for k in client.scan_iter(f"{prefix}*"):
            client.delete(k)
        client.close()
