"""The whole-center view every worker serves.

Each worker writes, for the partitions it owns, the absolute minute cells and
a summary (live state, rejected, duplicates, offsets) to the compacted
*partials* topic. Every worker reads all of it back with a plain aiokafka
consumer (no group: every partition, from the beginning) into one
:class:`tables.rollup.Rollup` keyed by partition, so the snapshot it builds
is the whole center's, whichever partitions it owns, and rebalances change
nothing: a partition's values are replaced, never added twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from tables import snapshot
from tables.persist import decode_minute
from tables.rollup import Rollup
from tables.state import Config

log = logging.getLogger("kpi.view")


class CenterView:
    def __init__(self, cfg: Config, bootstrap: str, topic: str) -> None:
        self.cfg = cfg
        self.bootstrap = bootstrap
        self.topic = topic
        self.rollup = Rollup(cfg)
        self.summaries: dict[int, dict[str, Any]] = {}
        self.records = 0
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    def apply(self, key: bytes, value: bytes | None) -> None:
        part, _, what = key.decode().partition("|")
        p = int(part)
        if what == "S":
            if value is None:
                self.summaries.pop(p, None)
            else:
                self.summaries[p] = orjson.loads(value)
            return
        cells = decode_minute(value)[0] if value is not None else None
        self.rollup.replace(p, int(what), cells)

    def snapshot(self, clock_us: int) -> dict[str, Any]:
        windows = self.rollup.windows(clock_us)
        live = snapshot.merge_live([s["live"] for s in self.summaries.values()])
        rejected: dict[str, int] = {}
        duplicates = 0
        for s in self.summaries.values():
            for r, n in s["rej"].items():
                rejected[r] = rejected.get(r, 0) + n
            duplicates += s["dup"]
        self.rollup.expire(clock_us)
        return snapshot.build(self.cfg, clock_us, windows, live, rejected, duplicates)

    def offsets(self) -> dict[int, dict[str, int]]:
        """Per partition: input offsets the view includes (tests wait on these)."""
        return {p: s["o"] for p, s in self.summaries.items()}

    # --- the reader task ----------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kpi-view-reader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # shutting down
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

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
            bootstrap_servers=self.bootstrap,
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
                        self.apply(r.key, r.value)
                        self.records += 1
            if not self.ready.is_set():
                pos = {tp: await consumer.position(tp) for tp in tps}
                if all(pos[tp] >= end[tp] for tp in tps):
                    self.ready.set()
