"""Topics the worker needs, created (or, with ``KPI_CREATE_TOPICS=false``, checked) before
faust starts.

The worker creates the contract topics, the partials topic and the state table's changelog
itself rather than leaving the changelog to faust: the changelog's ``max.message.bytes``
must be known before the first batch is written (:mod:`stream_app.kafka.preflight`), and
where the app may not create topics at all, one clear message naming every missing topic
beats faust's warning per topic followed by a worker that consumes nothing. Both compacted
topics keep only the latest value of each key.
"""

from __future__ import annotations

import asyncio

from stream_app.kafka.topics import ensure_topics, topic_partitions
from stream_app.settings import Settings

COMPACTED = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.1",
    "segment.ms": "600000",
}


class TopicsError(RuntimeError):
    """The cluster lacks topics the worker needs, or they disagree; the message says what to do."""


def partials_topic(settings: Settings) -> str:
    return settings.topic(f"{settings.app_id}-partials")


def changelog_topic(settings: Settings) -> str:
    """The faust table's changelog: faust names it ``<app id>-<table>-changelog``."""
    return settings.topic(f"{settings.app_id}-kpi-state-changelog")


def contract_topics(settings: Settings) -> list[str]:
    return [*settings.input_topics.values(), settings.dead_letter_topic, settings.alerts_topic]


def compacted_topics(settings: Settings) -> list[str]:
    return [partials_topic(settings), changelog_topic(settings)]


async def ensure_worker_topics(settings: Settings) -> None:
    """Create every topic the worker uses that is missing (existing ones are left as they are)."""
    p, rf = settings.partitions, settings.replication_factor
    await ensure_topics(settings, contract_topics(settings), p, rf)
    await ensure_topics(settings, compacted_topics(settings), p, rf, configs=COMPACTED)


async def check_worker_topics(settings: Settings) -> None:
    """Every topic exists, and the input topics and the changelog are co-partitioned."""
    needed = contract_topics(settings) + compacted_topics(settings)
    counts = await topic_partitions(settings, needed)
    missing = [t for t in needed if t not in counts]
    if missing:
        compacted = [t for t in missing if t in compacted_topics(settings)]
        note = (
            f" ({', '.join(compacted)}: cleanup.policy=compact)" if compacted else ""
        )
        raise TopicsError(
            f"KPI_CREATE_TOPICS=false and {len(missing)} topic(s) are missing: "
            f"{', '.join(missing)}. Have them created with {settings.partitions} partitions"
            f"{note}, or set KPI_CREATE_TOPICS=true to let the worker create them."
        )
    together = [*settings.input_topics.values(), changelog_topic(settings)]
    if len({counts[t] for t in together}) > 1:
        found = ", ".join(f"{t}: {counts[t]}" for t in together)
        raise TopicsError(
            f"the input topics and the changelog must have equal partition counts ({found}): "
            "faust gives partition p of all of them to one worker. Recreate or repartition "
            "them to one count, and set KPI_PARTITIONS to it."
        )


def ensure_worker_topics_sync(settings: Settings) -> None:
    asyncio.run(ensure_worker_topics(settings))
