"""The Faust agent on the three input topics.

Declaring it subscribes the worker to ``contact-events``, ``ticket-events`` and
``survey-events`` and lets faust's assignor give partition ``p`` of all three,
together with partition ``p`` of the state table's changelog, to one worker.

With the fast path on (the default, ``KPI_FAST_PATH=1``) the consumer hands
record batches to the processor below faust's per-event path
(:mod:`stream_app.worker.transport`) and this agent's body sees nothing. With it off,
records arrive here one event at a time and are batched with ``take_events``
into the very same processor: the reference path, slower, kept to compare.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stream_app.settings import Settings
    from stream_app.worker.app import KpiApp, KpiHub


def register(app: KpiApp, hub: KpiHub, settings: Settings) -> Any:
    topics = app.topic(
        *settings.input_topics.values(),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    # concurrency=1: more would let faust commit past unprocessed messages (faust #606).
    @app.agent(topics, concurrency=1, name="kpi-events")
    async def kpi_events(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within):
            by_tp: dict[Any, list[Any]] = defaultdict(list)
            for event in events:
                by_tp[event.message.tp].append(event.message)
            await hub.absorb(by_tp, from_agent=True)
            await hub.drain()  # written before faust acks (and may commit) these events

    return kpi_events
