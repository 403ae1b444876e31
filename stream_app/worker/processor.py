"""The live processor: batches of raw records -> partition stores -> the writes of a batch.

One :class:`tables.partition.PartitionStore` per input partition number ``p``
holds the same :class:`tables.state.PartitionState` the offline replay uses,
fed with the records of every input topic's partition ``p``. Faust's assignor
gives those and partition ``p`` of the state table's changelog to one worker,
so the state is local and recovery is faust's.

Per batch (see :mod:`tables.changelog` for why this order makes re-processing
after a crash exact):

1. apply every record (the core's one pipeline);
2. send dead letters and the partials other workers read; flush;
3. send M, R, L, A to the changelog partition ``p``; flush;
4. commit the input offsets.

A dead letter keeps the original bytes, cut to what the dead-letter topic accepts (with an
``original_size`` header) so that one huge message cannot hold the partition; a record whose
processing raised is dead-lettered ``internal_error`` with an ``exception`` header.

The processor only computes the writes (:meth:`LiveProcessor.prepare`), as
Kafka messages; the batch writer sends them, and sends the same plan again if
the broker is away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tables.clock import WallClock
from tables.partition import FeedStats, PartitionStore, Write
from tables.schema import INTERNAL_ERROR
from tables.state import Config

log = logging.getLogger("kpi.live")

#: one write: topic, key, value (None: tombstone), partition (None: by key), headers
Msg = tuple[str, bytes | None, bytes | None, int | None, list[tuple[str, bytes]] | None]


@dataclass
class Plan:
    """The writes of one batch, in three flush-separated phases, and the commit after."""

    first: list[Msg] = field(default_factory=list)
    second: list[Msg] = field(default_factory=list)
    third: list[Msg] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    #: (phase, index) of the writes already acknowledged (a retry skips them)
    sent: set[tuple[int, int]] = field(default_factory=set)


class LiveProcessor:
    def __init__(
        self,
        cfg: Config,
        topics: dict[str, str],
        changelog_topic: str,
        partials_topic: str,
        dead_letter_topic: str,
        checkpoint_every: int = 1500,
        dead_letter_max_bytes: int = 1_000_000,
    ) -> None:
        self.cfg = cfg
        self.family_of = {t: f for f, t in topics.items()}
        self.topic_of = dict(topics)
        self.changelog_topic = changelog_topic
        self.partials_topic = partials_topic
        self.dead_letter_topic = dead_letter_topic
        self.checkpoint_every = checkpoint_every
        #: a dead letter's value is cut to this many bytes (the topic's limit, less headroom)
        self.dead_letter_max_bytes = dead_letter_max_bytes
        #: told of every minute record before it is sent, with the cells it changed: this
        #: process's view then need not decode it whole (tables.own)
        self.on_partials: Callable[[tuple[int, int], bytes, Any], None] | None = None
        self._internal_logged: set[str] = set()
        self.clock = WallClock(cfg.retention_us, cfg.skew_us)
        self.stores: dict[int, PartitionStore] = {}
        self.dead_letters: list[Msg] = []
        self.stats = FeedStats()
        self.events = 0
        self.rejected_total: dict[str, int] = {}
        #: (queue, channel, wait seconds) of answered contacts, for the wait histogram
        self.waits: list[tuple[str, str, float]] = []

    @property
    def events_by_type(self) -> dict[str, int]:
        """Valid events seen, by type (running totals)."""
        return {
            c.__struct_config__.tag: n  # type: ignore[attr-defined]
            for c, n in self.stats.by_type.items()
        }

    @property
    def duplicates_total(self) -> int:
        return self.stats.duplicates

    @property
    def newest_ts(self) -> int:
        return self.stats.newest_ts

    def take_waits(self) -> dict[tuple[str, str], list[float]]:
        out: dict[tuple[str, str], list[float]] = {}
        for queue, channel, wait in self.waits:
            out.setdefault((queue, channel), []).append(wait)
        self.waits.clear()
        return out

    # --- state loading ----------------------------------------------------------------------
    def load(self, partition: int, items: dict[bytes, bytes]) -> PartitionStore:
        store = PartitionStore.restore(self.cfg, partition, items)
        store.state.contacts.waits = self.waits
        self.stores[partition] = store
        log.info(
            "partition %d restored: %d contacts, %d tickets, %d ids, applied %s",
            partition,
            len(store.state.contacts.contacts),
            len(store.state.tickets.tickets),
            len(store.state.seen),
            store.applied,
        )
        return store

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.stores.pop(p, None)

    # --- processing -------------------------------------------------------------------------
    def absorb(
        self, topic: str, partition: int, records: Iterable[tuple[int, bytes | None]], clock: int
    ) -> None:
        """Apply ``(offset, value)`` records of one input topic-partition, in order, at the
        wall-clock time ``clock`` (us) the live edge read for this batch."""
        self.clock.set(clock)
        store = self.stores[partition]
        for offset, raw, reason in store.absorb(
            self.family_of[topic], records, self.clock, self.stats
        ):
            reason, _, error = reason.partition(":")
            headers = [
                ("reason", reason.encode()),
                ("source_topic", topic.encode()),
                ("source_partition", str(partition).encode()),
                ("source_offset", str(offset).encode()),
            ]
            if reason == INTERNAL_ERROR:
                headers.append(("exception", error.encode()[:500]))
                self._log_internal(error, topic, partition, offset)
            if len(raw) > self.dead_letter_max_bytes:
                headers.append(("original_size", str(len(raw)).encode()))
                raw = raw[: self.dead_letter_max_bytes]
            self.dead_letters.append((self.dead_letter_topic, None, raw, None, headers))
            self.rejected_total[reason] = self.rejected_total.get(reason, 0) + 1

    def _log_internal(self, error: str, topic: str, partition: int, offset: int) -> None:
        kind = error.partition(":")[0]
        if kind in self._internal_logged:
            return  # once per exception type: the dead letters carry every occurrence
        self._internal_logged.add(kind)
        log.error(
            "processing %s[%d]@%d raised %s: the record is dead-lettered with reason "
            "internal_error and processing goes on. This is a bug: report it with the dead "
            "letter (header 'exception').",
            topic, partition, offset, error,
        )

    # --- persisting -------------------------------------------------------------------------
    def prepare(self, clock: int) -> Plan | None:
        """Everything the batch changed, as the writes to make, in the safe order."""
        touched = [self.stores[p] for p in sorted(self.stores) if self.stores[p].touched]
        if not touched and not self.dead_letters:
            return None
        plan = Plan()
        for store in touched:
            store.fold(clock)
        # 1. dead letters and partials (read by every worker): must land before the changelog.
        plan.first, self.dead_letters = self.dead_letters, []
        for store in touched:
            plan.first += self._msgs(self.partials_topic, store.partials(), None)
            if self.on_partials is not None:
                for key, value, changes in store.hints:
                    self.on_partials(key, value, changes)
        # 2. the changelog, in the order M, R, L, A (see tables.changelog).
        for store in touched:
            p = store.partition
            plan.second += self._msgs(self.changelog_topic, store.changelog(), p)
            for family, off in store.applied.items():
                plan.offsets[(self.topic_of[family], p)] = off + 1
        # 3. only after A: a checkpoint must not hold ids of a batch not applied yet. At
        # most one partition per batch: encoding a whole partition holds the event loop,
        # and all partitions tend to come due together.
        due = [s for s in touched if s.logs_since_checkpoint >= self.checkpoint_every]
        if due:
            store = max(due, key=lambda s: s.logs_since_checkpoint)
            plan.third = self._msgs(self.changelog_topic, store.checkpoint(), store.partition)
        return plan

    @staticmethod
    def _msgs(topic: str, writes: list[Write], partition: int | None) -> list[Msg]:
        return [(topic, k, v, partition, None) for k, v in writes]


def wall_clock_us(offset_s: float = 0.0) -> int:
    return int((time.time() + offset_s) * 1_000_000)
