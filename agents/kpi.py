"""The Faust agent on the input topics.

Declaring it subscribes the worker to the contract's input topics and lets
faust's assignor give partition ``p`` of all of them, together with partition
``p`` of the state table's changelog, to one worker (they are co-partitioned:
same partition count).

The records themselves never reach this agent's body: the consumer hands
whole record batches to the processor below faust's per-event path
(:mod:`stream_app.worker.transport`), which is what makes a worker fast. A
record that did arrive here would be a wiring bug, and is logged as one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stream_app.settings import Settings
    from stream_app.worker.app import KpiApp

log = logging.getLogger("kpi.agent")


def register(app: KpiApp, settings: Settings) -> Any:
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
        async for event in stream.events():
            log.error(
                "a record of %s reached faust's per-event path; it is not processed. "
                "The batch transport (stream_app.worker.transport) is not installed.",
                event.message.tp,
            )

    return kpi_events
