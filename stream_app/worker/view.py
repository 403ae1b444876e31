"""The whole-center view every worker serves: partials from Kafka into the pure fold.

A plain aiokafka consumer (no group: every partition, from the beginning) reads
the compacted partials topic and hands each record to the pure fold
(:mod:`tables.center`), which owns the format and the snapshot.

One record the fold cannot take (written by a newer or broken worker) must not break
every publish: it is skipped, counted (``skipped``) and logged once. A reader that keeps
failing logs once until it recovers; a missing READ permission is reported as an
unrecoverable error (see :mod:`stream_app.worker.health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_app.worker.health import Health, classify
from tables.center import Center
from tables.state import Config

log = logging.getLogger("kpi.view")


class CenterView:
    def __init__(
        self, cfg: Config, client: dict[str, Any], topic: str, health: Health | None = None
    ) -> None:
        self.center = Center(cfg)
        self.client = client
        self.topic = topic
        self.health = health
        self.records = 0
        #: partials records the fold could not take (skipped)
        self.skipped = 0
        self._down = False
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        #: partials records not read yet, as of the last fetch (None: not known). The
        #: summaries give the input offsets the view includes, but a summary may be read
        #: before the minute records of its batch (other partials partitions, larger
        #: records): only with nothing left to read does the view hold all it says.
        self.unread: int | None = None

    def snapshot(self, clock_us: int) -> dict[str, Any]:
        return self.center.snapshot(clock_us)

    def offsets(self) -> dict[int, dict[str, int]]:
        return self.center.offsets()

    # --- the reader task ----------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kpi-view-reader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None

    def apply(self, key: bytes, value: bytes | None) -> None:
        """One partials record into the fold; one it cannot take is skipped."""
        try:
            self.center.apply(key, value)
        except Exception as exc:  # noqa: BLE001 - one record must not break every publish
            self.skipped += 1
            if self.skipped == 1:
                log.error(
                    "partials record %r of %s cannot be read (%s: %s); skipped, the view "
                    "goes on without it (later ones are skipped silently and counted in "
                    "kpi_view_records_skipped_total). Is a worker of another version writing "
                    "to this topic?",
                    key, self.topic, type(exc).__name__, exc,
                )
            return
        self.records += 1

    async def _run(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving; the broker may be back soon
                kind = classify(exc)
                if kind is not None and self.health is not None:
                    self.health.report(
                        "view", kind,
                        f"cannot read the partials topic {self.topic} ({exc}): grant the "
                        "worker's principal READ and DESCRIBE on it; until then this worker "
                        "serves a stale whole-center view and retries every 2 s.",
                    )
                elif not self._down:
                    log.warning("partials reader: %s; retrying every 2 s", exc)
                self._down = True
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
            # Every record replaces its key's value whole, so of a key written several
            # times in one fetch only the last one is applied: a view that fell behind
            # (a busy loop, a start-up) catches up with fewer decodes, not more.
            latest: dict[bytes, bytes | None] = {}
            for recs in batch.values():
                for r in recs:
                    if r.key is not None:
                        latest.pop(r.key, None)
                        latest[r.key] = r.value
            for key, value in latest.items():
                self.apply(key, value)
            self.unread = await _unread(consumer, tps)
            if self._down:
                self._down = False
                log.warning("partials reader: reading again")
                if self.health is not None:
                    self.health.resolve("view")
            if not self.ready.is_set():
                pos = {tp: await consumer.position(tp) for tp in tps}
                if all(pos[tp] >= end[tp] for tp in tps):
                    self.ready.set()


async def _unread(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> int | None:
    """Records between the view's position and the high-water marks its fetches saw."""
    total = 0
    for tp in tps:
        end = consumer.highwater(tp)
        if end is None:
            return None
        total += max(0, end - await consumer.position(tp))
    return total
