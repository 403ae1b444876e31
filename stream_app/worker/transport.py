"""Faust's aiokafka consumer, with batches of our input topics handed below the per-event path.

Stock faust runs ``wait_first(callback(message), ...)`` per message, which caps a
worker at a few thousand events/s. Here ``_drain_messages`` takes each fetched
record batch and hands the records of the three input topics, as they are
(offset and raw bytes), to the live processor in one call. Everything else
(faust's own topics) still goes through the stock callback. Assignment,
rebalancing, table recovery and the web server stay faust's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger("kpi.consumer")


class BatchConsumer(faust_aiokafka.Consumer):
    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs a broker
        hub = self.app.kpi  # type: ignore[attr-defined]
        callback = self.callback
        to_message = self._to_message
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, _ = await self._wait_next_records(hub.poll_timeout)
                if records and not self.should_stop:
                    others = await hub.absorb(records)
                    for tp, recs in others:
                        for rec in recs:
                            await callback(to_message(tp, rec))
                await hub.maybe_persist()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> bool:
        """Commit next-offsets of our input partitions; a failure is logged, not fatal:
        the state is idempotent, so a lost commit only means re-reading a batch."""
        if not offsets:
            return True
        # The aiokafka consumer lives on faust's consumer thread and its event loop:
        # the commit must run there.
        ok: bool = await self._thread.call_thread(_commit_quietly, self._thread, offsets)
        return ok


async def _commit_quietly(thread: Any, offsets: dict[tuple[str, int], int]) -> bool:
    try:
        consumer = thread._ensure_consumer()  # noqa: SLF001
        assigned = consumer.assignment()
        commit = {
            TopicPartition(t, p): OffsetAndMetadata(o, "")
            for (t, p), o in offsets.items()
            if TopicPartition(t, p) in assigned
        }
        if commit:
            await consumer.commit(commit)
        return True
    except Exception as exc:  # noqa: BLE001 - faust's own commit would crash the worker here
        log.warning("offset commit failed (%s); the next batch commits again", exc)
        return False


class Transport(faust_aiokafka.Transport):
    Consumer = BatchConsumer
