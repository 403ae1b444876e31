"""Topics the worker needs besides the contract's, created before faust starts.

Faust creates its own changelog topic; the partials topic is ours and must be
compacted (only the latest value of each partition-minute matters) with the
configured partition count.
"""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream_app.kafka.topics import ensure_topics
from stream_app.settings import Settings

COMPACTED = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.1",
    "segment.ms": "600000",
}


async def ensure_worker_topics(settings: Settings) -> None:
    contract = [*settings.input_topics.values(), settings.dead_letter_topic, settings.alerts_topic]
    await ensure_topics(
        settings.kafka_bootstrap_servers, contract, settings.partitions, settings.replication_factor
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        partials = settings.topic(f"{settings.app_id}-partials")
        resp = await admin.create_topics(
            [
                NewTopic(
                    partials,
                    settings.partitions,
                    settings.replication_factor,
                    topic_configs=COMPACTED,
                )
            ],
            timeout_ms=30000,
        )
        for err in resp.topic_errors:
            if err[1] not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"cannot create {partials}: {err}")
    finally:
        await admin.close()


def ensure_worker_topics_sync(settings: Settings) -> None:
    asyncio.run(ensure_worker_topics(settings))
