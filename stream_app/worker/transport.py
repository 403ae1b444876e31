"""Faust's aiokafka consumer, with batches of our input topics handed below the per-event path.

Stock faust runs ``wait_first(callback(message), ...)`` per message, which caps a
worker at a few thousand events/s. Here ``_drain_messages`` takes each fetched
record batch and hands the records of the three input topics, as they are
(offset and raw bytes), to the live processor in one call. Everything else
(faust's own topics) still goes through the stock callback. Assignment,
rebalancing, table recovery and the web server stay faust's.

Like faust's own ``getmany``, a fetch that a rebalance overtook is dropped, never
applied (see ``BatchConsumer._deliverable``): its records may belong to partitions
being revoked, or arrive before their state is recovered. The loop also tells the
worker's health whether it runs: a fetcher that died leaves a worker that answers
HTTP but consumes nothing, which ``/healthz`` must report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream_app.worker.health import classify

log = logging.getLogger("kpi.consumer")


class BatchConsumer(faust_aiokafka.Consumer):
    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs a broker
        hub = self.app.kpi  # type: ignore[attr-defined]
        callback = self.callback
        to_message = self._to_message
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        health = hub.writer.health
        health.fetcher_started()
        error: BaseException | None = None
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, active = await self._wait_next_records(hub.poll_timeout)
                if records and not self.should_stop:
                    records = await self._deliverable(records, active)
                    others = await hub.absorb(records)
                    for tp, recs in others:
                        for rec in recs:
                            await callback(to_message(tp, rec))
                await hub.maybe_persist()
        except self.consumer_stopped_errors as exc:
            if self.transport.app.should_stop:
                return
            error = exc
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            error = exc
            raise
        finally:
            health.fetcher_stopped(error)

    async def _deliverable(
        self, records: Mapping[Any, list[Any]], active: set[Any] | None
    ) -> Mapping[Any, list[Any]]:
        """What faust's own ``getmany`` would deliver of a fetch. A rebalance that began
        while the fetch waited stopped the flow: the records may be of partitions being
        revoked, or come before their state is recovered (a store built from the table then
        would start empty). Faust drops them and seeks back to the committed offsets; so do
        we. Records of partitions paused meanwhile are dropped as well (faust seeks them back
        when it resumes them)."""
        if not self.flow_active:
            await self.perform_seek()
            return {}
        if active is None:
            return records
        buffered = self._buffered_partitions
        return {tp: recs for tp, recs in records.items() if tp in active or tp in buffered}

    async def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> Exception | None:
        """Commit next-offsets of our input partitions; a failure is logged and returned, not
        raised: the state is idempotent, so a lost commit only means re-reading a batch."""
        if not offsets:
            return None
        # The aiokafka consumer lives on faust's consumer thread and its event loop:
        # the commit must run there.
        error: Exception | None = await self._thread.call_thread(
            _commit_quietly, self._thread, offsets
        )
        return error


async def _commit_quietly(thread: Any, offsets: dict[tuple[str, int], int]) -> Exception | None:
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
        return None
    except Exception as exc:  # noqa: BLE001 - faust's own commit would crash the worker here
        if classify(exc) is None:  # (an unrecoverable one is the writer's to report, once)
            log.warning("offset commit failed (%s); the next batch commits again", exc)
        return exc


class Transport(faust_aiokafka.Transport):
    Consumer = BatchConsumer
