"""The glue between faust and the core: partitions in, batches out.

Faust hands over input records (through :mod:`stream_app.worker.transport`,
below its per-event path) and owns the group assignment and the table's
recovery. Here: a partition's store is rebuilt from the recovered table the
first time a record of it arrives; records are absorbed into the batch; the
batch closes at ``KPI_BATCH_MAX`` events or ``KPI_BATCH_WITHIN`` seconds and
its writes go to the batch writer while the next batch is absorbed. A worker that is
catching up (more than ``publisher.BEHIND`` messages behind: after a restart, an outage,
a rebalance) lets its batch run to ``KPI_BATCH_MAX`` (or ``BEHIND_WITHIN`` seconds):
every batch rewrites each minute it touched whole, for the view of every worker to
decode, so in a backlog ten batches of 10,000 events cost more than one of 100,000
(the bench's one worker on 1,000,000 events: ~30,300 -> ~32,000-33,800 events/s; on
600,000, ~32,600 -> ~47,000). Caught up, batches close on time again, so an event still
reaches the outputs within a fraction of a second.

On SIGTERM, :meth:`KpiHub.stop` writes and commits what was absorbed before the worker
leaves its group, so the next owner of the partitions starts exactly after it: nothing is
processed (or dead-lettered) twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from stream_app.settings import Settings
from stream_app.worker.gcpolicy import GcPolicy
from stream_app.worker.processor import LiveProcessor
from stream_app.worker.writer import BatchWriter
from tables.changelog import partition_items

log = logging.getLogger("kpi.worker")

#: while catching up, a batch closes at ``KPI_BATCH_MAX`` events or after this many seconds
BEHIND_WITHIN = 5.0


class KpiHub:
    def __init__(
        self,
        settings: Settings,
        table: Any,
        processor: LiveProcessor,
        writer: BatchWriter,
        clock: Callable[[], int],
    ) -> None:
        self.settings = settings
        self.table = table
        self.processor = processor
        self.writer = writer
        self.clock = clock
        self.input_topics = set(settings.input_topics.values())
        self.poll_timeout = min(1.0, settings.batch_within)
        self.gc = GcPolicy(settings.gc_freeze_seconds, settings.gc_full_seconds)
        self.pending = 0
        self.pending_since = 0.0
        self.lock = asyncio.Lock()
        #: whether the worker is catching up (set once the publisher, which knows the lag,
        #: exists): its batches then close on size, not on time
        self.behind: Callable[[], bool] = lambda: False

    def _ensure(self, partition: int) -> None:
        if partition in self.processor.stores:
            return
        raw: dict[Any, Any] = self.table.data.data  # faust's memory store, filled by recovery
        mine = partition_items(raw, partition)
        self.processor.load(partition, mine)
        for k in mine:  # our store holds it now; recovery refills it on the next assignment
            raw.pop(k, None)

    async def absorb(self, records: dict[Any, list[Any]]) -> list[tuple[Any, list[Any]]]:
        """Apply input records; anything else is returned for faust's own path."""
        others = []
        clock = self.clock()
        for tp, recs in records.items():
            if tp.topic not in self.input_topics:
                others.append((tp, recs))
                continue
            self._ensure(tp.partition)
            self.processor.absorb(
                tp.topic, tp.partition, [(r.offset, r.value) for r in recs], clock
            )
            self.writer.health.progressed()
            if not self.pending:
                self.pending_since = time.monotonic()
            self.pending += len(recs)
        return others

    async def maybe_persist(self) -> None:
        if not self.pending:
            return
        age = time.monotonic() - self.pending_since
        if (
            self.pending >= self.settings.batch_max
            or age >= BEHIND_WITHIN
            or (age >= self.settings.batch_within and not self.behind())
        ):
            await self.persist()

    async def persist(self) -> None:
        """Close the batch; its writes go out in the background, in batch order."""
        async with self.lock:
            self.processor.events += self.pending
            self.pending = 0
            self.gc.tick()
            plan = self.processor.prepare(self.clock())
            if plan is not None:
                await self.writer.submit(plan)

    async def drain(self) -> None:
        """Everything absorbed is written and committed."""
        await self.persist()
        await self.writer.wait()

    async def stop(self, timeout: float) -> None:
        """Graceful stop: the pending batch is written and committed, within ``timeout``."""
        self.writer.health.stopping = True
        absorbed, last = self.processor.events + self.pending, self.pending
        try:
            await asyncio.wait_for(self.drain(), timeout)
        except TimeoutError:
            log.error(
                "stopping: the last batch was not written within %.0f s (KPI_STOP_TIMEOUT); "
                "the next owner of its partitions processes it again", timeout,
            )
        else:
            # (warning: the one line a stop leaves at the default log level)
            log.warning(
                "stopping: all %d events this worker absorbed are written and committed "
                "(%d in the last batch)", absorbed, last,
            )

    async def on_revoked(self) -> None:
        """Before faust hands partitions away: everything applied is written; state dropped
        (it is rebuilt from the recovered table when partitions come back)."""
        await self.drain()
        self.processor.drop(list(self.processor.stores))
