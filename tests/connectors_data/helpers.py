"""Helpers shared by the connector tests: fixtures on disk, convert in memory, Kafka."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from connectors.base import Event
from connectors.convert import convert
from connectors.mapping import Options
from stream_app.kafka.client import client_kwargs
from stream_app.settings import Settings

DATA = Path(__file__).parent


def converted(source: str, *names: str, **kwargs: Any) -> list[Event]:
    out = io.BytesIO()
    convert(source, [str(DATA / n) if not Path(n).is_absolute() else n for n in names], out,
            options=kwargs.pop("options", Options()), **kwargs)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def write_jsonl(path: Path, events: list[Event]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def by_id(events: list[Event]) -> dict[str, Event]:
    """event_id -> event, checking that a repeated id always carries the same event."""
    out: dict[str, Event] = {}
    for ev in events:
        seen = out.setdefault(ev["event_id"], ev)
        assert seen == ev, f"two different events share the id {ev['event_id']}"
    return out


def read_topics(settings: Settings, topics: list[str], expect: int,
                timeout: float = 30.0, settle: float = 1.0) -> list[tuple[str, Any]]:
    """Every message of ``topics`` as (topic, record), until ``expect`` were read (then a
    little longer, to catch extras) or ``timeout``."""

    async def run() -> list[tuple[str, Any]]:
        consumer = AIOKafkaConsumer(*topics, **client_kwargs(settings), group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        out: list[tuple[str, Any]] = []
        deadline = time.monotonic() + timeout
        quiet_until: float | None = None
        try:
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for tp, records in batch.items():
                    out += [(tp.topic, r) for r in records]
                if len(out) >= expect:
                    quiet_until = quiet_until or time.monotonic() + settle
                    if time.monotonic() >= quiet_until:
                        break
        finally:
            await consumer.stop()
        return out

    return asyncio.run(run())


def events_of(records: list[tuple[str, Any]]) -> list[Event]:
    return [orjson.loads(r.value) for _, r in records]
