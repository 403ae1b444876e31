"""What the worker makes sure of before faust starts, each failure said in one message.

1. The cluster answers over the configured security (:func:`check_connection`): a wrong
   password or an untrusted certificate ends the start-up within seconds saying which,
   instead of faust retrying a bootstrap for ever.
2. The topics exist: created when ``KPI_CREATE_TOPICS`` is true, else checked, and a missing
   one is named with what to do.
3. How large a message each topic the worker writes accepts (``max.message.bytes``, read
   from the broker): changelog chunks are cut below it, dead letters truncated to it, and
   the producer's batches kept under the smallest, so that no write is refused for its size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError

from stream_app.kafka.client import describe
from stream_app.kafka.connection import check_connection
from stream_app.kafka.topics import BROKER_DEFAULT_MAX_MESSAGE_BYTES, max_message_bytes
from stream_app.kafka.worker_topics import (
    TopicsError,
    changelog_topic,
    check_worker_topics,
    ensure_worker_topics,
    partials_topic,
)
from stream_app.settings import Settings

log = logging.getLogger("kpi.worker")

#: bytes kept free under a topic's limit for the key, headers and record-batch framing
HEADROOM = 1024


@dataclass(frozen=True)
class TopicLimits:
    """``max.message.bytes`` of the topics the worker writes, as the broker reported them."""

    by_topic: dict[str, int] = field(default_factory=dict)
    fallback: int = BROKER_DEFAULT_MAX_MESSAGE_BYTES

    def of(self, topic: str) -> int:
        return self.by_topic.get(topic, self.fallback)

    def value_budget(self, topic: str) -> int:
        """The most bytes one value written to ``topic`` may have."""
        return max(1024, self.of(topic) - HEADROOM)

    @property
    def smallest(self) -> int:
        return min(self.by_topic.values(), default=self.fallback)


def written_topics(settings: Settings) -> list[str]:
    return [
        changelog_topic(settings),
        partials_topic(settings),
        settings.dead_letter_topic,
        settings.alerts_topic,
    ]


async def preflight(settings: Settings, timeout: float = 10.0) -> TopicLimits:
    """Raises :class:`~stream_app.kafka.client.KafkaConnectionError` or
    :class:`~stream_app.kafka.worker_topics.TopicsError`, whose message says what to do."""
    log.info("connecting to %s", describe(settings))
    await check_connection(settings, timeout=timeout)
    try:
        if settings.create_topics:
            await ensure_worker_topics(settings)
        await check_worker_topics(settings)
    except KafkaError as exc:
        raise TopicsError(
            f"cannot create or describe the worker's topics on {describe(settings)} ({exc}). "
            "Where the app may not create topics, have them created and set "
            "KPI_CREATE_TOPICS=false; otherwise grant its principal CREATE and DESCRIBE."
        ) from exc
    names = written_topics(settings)
    try:
        found = await max_message_bytes(settings, names)
    except KafkaError as exc:
        found = {}
        log.warning("cannot read max.message.bytes of the topics (%s)", exc)
    unknown = [t for t in names if t not in found]
    if unknown:
        log.warning(
            "max.message.bytes unknown for %s (grant DESCRIBE_CONFIGS on them to read it); "
            "assuming the broker default of %d bytes",
            ", ".join(unknown), BROKER_DEFAULT_MAX_MESSAGE_BYTES,
        )
    limits = TopicLimits(found)
    log.info(
        "topics ready; max.message.bytes %s",
        ", ".join(f"{t}={limits.of(t)}" for t in names),
    )
    return limits
