"""The whole-center view every worker serves: partials from Kafka into the pure fold.

A plain aiokafka consumer (no group: every partition, from the beginning) reads
the compacted partials topic and hands each record to the pure fold
(:mod:`tables.center`), which owns the format and the snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from tables.center import Center
from tables.state import Config

log = logging.getLogger("kpi.view")


class CenterView:
    def __init__(self, cfg: Config, client: dict[str, Any], topic: str) -> None:
        self.center = Center(cfg)
        self.client = client
        self.topic = topic
        self.records = 0
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    def snapshot(self, clock_us: int) -> dict[str, Any]:
        return self.center.snapshot(clock_us)

    def offsets(self) -> dict[int, dict[str, int]]:
        return self.center.offsets()

    # --- the reader task ----------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kpi-view-reader")

    async def _run(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving; the broker may be back soon
                log.warning("partials reader: %s; retrying in 2 s", exc)
                if self._consumer is not None:
                    with contextlib.suppress(Exception):
                        await self._consumer.stop()
                    self._consumer = None
                await asyncio.sleep(2)

    async def _consume(self) -> None:
        consumer = self._consumer = AIOKafkaConsumer(
            **self.client,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
            max_poll_records=2000,
        )
        await consumer.start()
        parts = None
        for _ in range(60):
            parts = await consumer._client.fetch_all_metadata()  # noqa: SLF001
            found = parts.partitions_for_topic(self.topic)
            if found:
                parts = found
                break
            await asyncio.sleep(1)
        if not parts:
            raise RuntimeError(f"topic {self.topic} not found")
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                for r in recs:
                    if r.key is not None:
                        self.center.apply(r.key, r.value)
                        self.records += 1
            if not self.ready.is_set():
                pos = {tp: await consumer.position(tp) for tp in tps}
                if all(pos[tp] >= end[tp] for tp in tps):
                    self.ready.set()
