"""Sends a batch's writes to Kafka in order, then commits its input offsets.

A batch's writes start only after the previous batch's are done, which keeps
the changelog in batch order (:mod:`tables.changelog` relies on it) and holds
consumption while the broker is away: the same plan is sent again, all of it,
until it lands (the writes are idempotent: absolute values and tombstones).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from stream_app.worker.processor import Msg, Plan

log = logging.getLogger("kpi.worker")


class BatchWriter:
    def __init__(self, app: Any, bootstrap: str) -> None:
        self.app = app
        self.bootstrap = bootstrap
        self._task: asyncio.Task[None] | None = None
        self._down_logged = False

    async def submit(self, plan: Plan) -> None:
        """Write ``plan`` in the background, after the plan before it."""
        if self._task is not None:
            await self._task
        self._task = asyncio.create_task(self._write(plan), name="kpi-batch-writer")

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    async def _write(self, plan: Plan) -> None:
        delay = 1.0
        while True:
            try:
                for phase in (plan.first, plan.second, plan.third):
                    await self._send_all(phase)
                await self.app.consumer.commit_offsets(plan.offsets)
                if self._down_logged:
                    log.warning("broker reachable again; state writes resumed")
                    self._down_logged = False
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker may come back
                if not self._down_logged:
                    log.error(
                        "cannot write state to Kafka (%s); holding the batch and retrying. "
                        "Check that the broker at %s is up.",
                        exc,
                        self.bootstrap,
                    )
                    self._down_logged = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _send_all(self, msgs: list[Msg]) -> None:
        if not msgs:
            return
        producer = self.app.producer
        futs = []
        for topic, key, value, partition, headers in msgs:
            futs.append(await producer.send(topic, key, value, partition, None, headers))
        await producer.flush()
        for fut in futs:
            await fut  # raises if a write failed: the whole phase is sent again
