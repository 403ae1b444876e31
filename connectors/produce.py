"""Sending contract events (and dead letters) to Kafka, for ``tail`` and ``gateway``.

Every event goes to its family's topic with the contract's key (``route``), through one
idempotent producer with ``acks=all``: a send that reports success is on every replica,
and the producer's own retries cannot duplicate or reorder an entity's events.
Enqueueing is separate from waiting (:meth:`KafkaSink.enqueue` returns the delivery
futures) so a caller can fix the order of several sends under a lock, then wait outside
it - many webhooks then share one round trip to the broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from connectors.base import ConnectorError, Event, dumps
from stream_app.kafka.client import client_kwargs
from stream_app.settings import Settings
from stream_app.tools.routing import route

log = logging.getLogger("kpi.connectors")
HINT = "is Kafka running? start it with `make stack` or set KAFKA_BOOTSTRAP_SERVERS"


class KafkaSink:
    def __init__(self, settings: Settings, linger_ms: int = 5) -> None:
        self.settings = settings
        self.topics = settings.input_topics
        self.dead_letter_topic = settings.dead_letter_topic
        self._producer = AIOKafkaProducer(
            **client_kwargs(settings), acks="all", enable_idempotence=True,
            linger_ms=linger_ms, request_timeout_ms=15000, max_batch_size=256 * 1024)
        self.sent = 0

    async def start(self, check_timeout: float = 15.0) -> None:
        quiet = logging.getLogger("aiokafka")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # its connection errors would repeat ours
        try:
            await self._producer.start()
        except (KafkaConnectionError, OSError) as exc:
            await self._producer.stop()
            raise ConnectorError(f"cannot reach Kafka at "
                                 f"{self.settings.kafka_bootstrap_servers} ({exc}): {HINT}") \
                from exc
        finally:
            quiet.setLevel(level)
        for topic in sorted({*self.topics.values(), self.dead_letter_topic}):
            try:
                parts = await asyncio.wait_for(self._producer.partitions_for(topic),
                                               check_timeout)
            except (TimeoutError, KafkaError):
                parts = None
            if not parts:
                await self._producer.stop()
                raise ConnectorError(
                    f"topic {topic!r} is missing on {self.settings.kafka_bootstrap_servers}: "
                    "create the contract topics with `make stack` (or check KPI_TOPIC_PREFIX "
                    "/ KPI_TOPIC_* settings)")

    async def stop(self) -> None:
        await self._producer.stop()

    async def enqueue(self, events: Iterable[Event]) -> list[asyncio.Future[Any]]:
        futures = []
        for ev in events:
            raw = dumps(ev)
            family, key = route(raw)
            futures.append(await self._producer.send(self.topics[family], raw, key=key))
        return futures

    async def enqueue_dead_letter(self, body: bytes, source: str, reason: str,
                                  detail: str | None) -> asyncio.Future[Any]:
        headers = [("reason", reason.encode()), ("source", source.encode())]
        if detail:
            headers.append(("detail", detail.encode()[:200]))
        return await self._producer.send(self.dead_letter_topic, body, headers=headers)

    async def send(self, events: Iterable[Event]) -> int:
        """Send and wait until every event is acknowledged; returns how many."""
        futures = await self.enqueue(events)
        if futures:
            await asyncio.gather(*futures)
        self.sent += len(futures)
        return len(futures)
