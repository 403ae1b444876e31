"""The live processor: batches of raw records -> partition state -> changelog, exactly once.

One ``PartitionRuntime`` per input partition number ``p`` holds the same
:class:`tables.state.PartitionState` the offline replay uses, fed with the
records of ``contact-events[p]``, ``ticket-events[p]`` and ``survey-events[p]``.
Faust's assignor gives those three and partition ``p`` of the state table's
changelog to one worker, so the state is local and recovery is faust's.

Per batch (see :mod:`tables.persist` for why this order makes re-processing
after a crash exact):

1. apply every record (decode -> validate -> one cell update);
2. send dead letters and the partial aggregates other workers read; flush;
3. send M, R, L, A to the changelog partition ``p``; flush;
4. commit the input offsets.

The processor only computes the writes (:meth:`LiveProcessor.prepare`); the
worker sends them, and sends the same plan again if the broker is away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tables import aggregate as A
from tables import persist
from tables.events import decode, to_us
from tables.persist import Offsets, Restored
from tables.state import (
    DUPLICATE,
    Cells,
    Config,
    Contact,
    PartitionState,
    Ticket,
    time_reason,
)
from tables.windows import MINUTE_US

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


@dataclass
class PartitionRuntime:
    partition: int
    state: PartitionState
    applied: Offsets
    processed: Offsets
    minutes: Cells
    minute_offsets: dict[int, Offsets]
    counters_offsets: Offsets
    recover_upto: Offsets
    log_seq: int
    checkpoint_seq: int
    log_keys: list[bytes]
    checkpoint_keys: list[bytes]
    dirty_minutes: set[int] = field(default_factory=set)
    dead_minutes: set[int] = field(default_factory=set)
    counters_dirty: bool = False
    logs_since_checkpoint: int = 0

    @classmethod
    def from_restored(cls, p: int, r: Restored) -> PartitionRuntime:
        r.state.start_journal()
        return cls(
            p,
            r.state,
            dict(r.applied),
            dict(r.applied),
            r.minutes,
            r.minute_offsets,
            r.counters_offsets,
            r.recover_upto,
            r.log_seq,
            r.checkpoint_seq,
            r.log_keys,
            r.checkpoint_keys,
        )


class LiveProcessor:
    def __init__(
        self,
        cfg: Config,
        topics: dict[str, str],
        changelog_topic: str,
        partials_topic: str,
        dead_letter_topic: str,
        clock: Any,
        checkpoint_every: int = 1500,
    ) -> None:
        self.cfg = cfg
        self.family_of = {t: f for f, t in topics.items()}
        self.topic_of = dict(topics)
        self.changelog_topic = changelog_topic
        self.partials_topic = partials_topic
        self.dead_letter_topic = dead_letter_topic
        self.clock = clock  # () -> microseconds
        self.checkpoint_every = checkpoint_every
        self.runtimes: dict[int, PartitionRuntime] = {}
        self.dead_letters: list[tuple[bytes, str, str, int, int]] = []
        self.touched: set[int] = set()
        self.events = 0
        self.rejected_total: dict[str, int] = {}
        self.duplicates_total = 0
        self._by_class: dict[type, int] = {}
        #: newest event time applied (us), for the event-to-publish latency
        self.newest_ts = 0
        #: (queue, channel, wait seconds) of answered contacts, for the wait histogram
        self.waits: list[tuple[str, str, float]] = []

    @property
    def events_by_type(self) -> dict[str, int]:
        """Valid events seen, by type (running totals)."""
        return {c.__struct_config__.tag: n for c, n in self._by_class.items()}  # type: ignore[attr-defined]

    def take_waits(self) -> dict[tuple[str, str], list[float]]:
        out: dict[tuple[str, str], list[float]] = {}
        for queue, channel, wait in self.waits:
            out.setdefault((queue, channel), []).append(wait)
        self.waits.clear()
        return out

    # --- state loading ----------------------------------------------------------------------
    def load(self, partition: int, items: dict[bytes, bytes]) -> PartitionRuntime:
        rt = PartitionRuntime.from_restored(partition, persist.restore(self.cfg, partition, items))
        self.runtimes[partition] = rt
        log.info(
            "partition %d restored: %d contacts, %d tickets, %d ids, applied %s",
            partition,
            len(rt.state.contacts),
            len(rt.state.tickets),
            len(rt.state.seen),
            rt.applied,
        )
        return rt

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.runtimes.pop(p, None)
            self.touched.discard(p)

    # --- processing -------------------------------------------------------------------------
    def absorb(
        self, topic: str, partition: int, records: Iterable[tuple[int, bytes | None]], clock: int
    ) -> None:
        """Apply ``(offset, value)`` records of one input topic-partition, in order."""
        family = self.family_of[topic]
        rt = self.runtimes[partition]
        state = rt.state
        done = rt.processed.get(family, -1)
        gate_to = rt.recover_upto.get(family, -1)
        cfg = self.cfg
        last = done
        by_type = self._by_class
        state.waits = self.waits
        newest = self.newest_ts
        for offset, raw in records:
            if offset <= done:
                continue  # applied before a restart: everything it did is stored
            last = offset
            if raw is None:
                raw = b""
            if offset <= gate_to:
                self._absorb_gated(rt, family, topic, offset, raw, clock)
                continue
            state.offset = offset
            ev = decode(raw)
            if isinstance(ev, str):
                state.reject(ev)
                self.dead_letters.append((raw, ev, topic, partition, offset))
                continue
            by_type[ev.__class__] = by_type.get(ev.__class__, 0) + 1
            ts = to_us(ev.ts)
            if ts > newest:
                newest = ts
            reason = time_reason(ts, clock, cfg, True)
            if reason is None:
                reason = state.apply(ev, ts, clock)
                if reason is None:
                    continue
                if reason == DUPLICATE:
                    self.duplicates_total += 1
                    continue
            else:
                state.reject(reason)
            self.dead_letters.append((raw, reason, topic, partition, offset))
        self.newest_ts = newest
        if last > done:
            rt.processed[family] = last
            self.touched.add(partition)

    def _absorb_gated(
        self, rt: PartitionRuntime, family: str, topic: str, offset: int, raw: bytes, clock: int
    ) -> None:
        """Re-process one message of the batch a crash interrupted (see tables.persist)."""
        state = rt.state
        state.offset = offset
        ev = decode(raw)
        ent: Contact | Ticket | None = None
        if not isinstance(ev, str):
            cid = getattr(ev, "contact_id", None) if family == "contact" else None
            tid = getattr(ev, "ticket_id", None) if family == "ticket" else None
            if cid is not None:
                ent = state.contacts.get(cid)
            elif tid is not None:
                ent = state.tickets.get(tid)
        if ent is not None and ent.upto >= offset:
            # Its entity, and therefore its counts, were stored: only the id is missing.
            state.seen[ev.event_id] = to_us(ev.ts)  # type: ignore[union-attr]
            return
        saved = (state.cells, state.rejected, state.duplicates)
        state.cells, state.rejected, state.duplicates = {}, {}, 0
        state._cell_minute = -1
        reason: str | None
        if isinstance(ev, str):
            reason = ev
            state.reject(ev)
        else:
            ts = to_us(ev.ts)
            reason = time_reason(ts, clock, self.cfg, True)
            if reason is None:
                reason = state.apply(ev, ts, clock)
            else:
                state.reject(reason)
        scratch_cells, scratch_rej, scratch_dup = state.cells, state.rejected, state.duplicates
        state.cells, state.rejected, state.duplicates = saved
        state._cell_minute = -1
        for minute, cells in scratch_cells.items():
            if rt.minute_offsets.get(minute, {}).get(family, -1) >= offset:
                continue  # this minute was stored with the message counted
            per_min = state.cells.setdefault(minute, {})
            for k, agg in cells.items():
                A.merge(per_min.setdefault(k, A.initialize()), agg)
        if rt.counters_offsets.get(family, -1) < offset:
            for r, n in scratch_rej.items():
                state.rejected[r] = state.rejected.get(r, 0) + n
            state.duplicates += scratch_dup
            if reason is not None and reason != DUPLICATE:
                self.dead_letters.append((raw, reason, topic, rt.partition, offset))

    # --- persisting -------------------------------------------------------------------------
    def _fold(self, rt: PartitionRuntime, clock: int) -> None:
        """Pending cells -> the partition's absolute minute cells; expiry."""
        for minute, cells in rt.state.take_cells().items():
            store = rt.minutes.setdefault(minute, {})
            for k, agg in cells.items():
                tgt = store.get(k)
                if tgt is None:
                    store[k] = agg
                else:
                    A.merge(tgt, agg)
            rt.dirty_minutes.add(minute)
        horizon = clock // MINUTE_US - self.cfg.largest_window
        for minute in [m for m in rt.minutes if m <= horizon]:
            del rt.minutes[minute]
            rt.minute_offsets.pop(minute, None)
            rt.dirty_minutes.discard(minute)
            rt.dead_minutes.add(minute)
        rt.state.expire(clock)

    def partial_summary(self, rt: PartitionRuntime, clock: int) -> bytes:
        st = rt.state
        return orjson.dumps(
            {
                "live": st.live_state(clock),
                "rej": st.rejected,
                "dup": st.duplicates,
                "o": rt.processed,
            }
        )

    def prepare(self) -> Plan | None:
        """Everything the batch changed, as the writes to make, in the safe order."""
        clock = self.clock()
        touched = [self.runtimes[p] for p in sorted(self.touched) if p in self.runtimes]
        self.touched = set()
        if not touched and not self.dead_letters:
            return None
        plan = Plan()
        for rt in touched:
            self._fold(rt, clock)
        # 1. dead letters and partials (read by every worker): must land before the changelog.
        for raw, reason, topic, partition, offset in self.dead_letters:
            plan.first.append(
                (
                    self.dead_letter_topic,
                    None,
                    raw,
                    None,
                    [
                        ("reason", reason.encode()),
                        ("source_topic", topic.encode()),
                        ("source_partition", str(partition).encode()),
                        ("source_offset", str(offset).encode()),
                    ],
                )
            )
            self.rejected_total[reason] = self.rejected_total.get(reason, 0) + 1
        self.dead_letters = []
        for rt in touched:
            p = rt.partition
            for m in rt.dirty_minutes:
                plan.first.append(
                    (
                        self.partials_topic,
                        persist.key(p, m),
                        persist.encode_minute(rt.minutes[m], rt.processed),
                        None,
                        None,
                    )
                )
            for m in rt.dead_minutes:
                plan.first.append((self.partials_topic, persist.key(p, m), None, None, None))
            plan.first.append(
                (
                    self.partials_topic,
                    persist.key(p, "S"),
                    self.partial_summary(rt, clock),
                    None,
                    None,
                )
            )
        # 2. the changelog, in the order M, R, L, A (see tables.persist).
        for rt in touched:
            p, o = rt.partition, dict(rt.processed)
            out = plan.second
            for m in rt.dirty_minutes:
                # A stored value may include messages beyond ``processed`` (while the
                # batch a crash cut short is re-processed): offsets only ever grow.
                mo = rt.minute_offsets[m] = _maxed(rt.minute_offsets.get(m), o)
                out.append(
                    (
                        self.changelog_topic,
                        persist.key("M", p, m),
                        persist.encode_minute(rt.minutes[m], mo),
                        p,
                        None,
                    )
                )
            for m in rt.dead_minutes:
                out.append((self.changelog_topic, persist.key("M", p, m), None, p, None))
            rt.dirty_minutes, rt.dead_minutes = set(), set()
            co = rt.counters_offsets = _maxed(rt.counters_offsets, o)
            out.append(
                (
                    self.changelog_topic,
                    persist.key("R", p),
                    persist.encode_counters(rt.state.rejected, rt.state.duplicates, co),
                    p,
                    None,
                )
            )
            records, ids = rt.state.take_journal()
            if records or ids:
                rt.log_seq += 1
                for i, chunk in enumerate(persist.encode_log(records, ids, o)):
                    k = persist.key("L", p, f"{rt.log_seq:012d}", i)
                    rt.log_keys.append(k)
                    out.append((self.changelog_topic, k, chunk, p, None))
                rt.logs_since_checkpoint += 1
            out.append((self.changelog_topic, persist.key("A", p), orjson.dumps({"o": o}), p, None))
            for family, off in o.items():
                plan.offsets[(self.topic_of[family], p)] = off + 1
            rt.applied = o
        # 3. only after A: a checkpoint must not hold ids of a batch not applied yet. At
        # most one partition per batch: encoding a whole partition holds the event loop,
        # and all partitions tend to come due together.
        due = [rt for rt in touched if rt.logs_since_checkpoint >= self.checkpoint_every]
        if due:
            plan.third.extend(self._checkpoint(max(due, key=lambda r: r.logs_since_checkpoint)))
        return plan

    def _checkpoint(self, rt: PartitionRuntime) -> list[Msg]:
        """Whole-partition snapshot; then the logs and the older checkpoint it replaces go."""
        p = rt.partition
        rt.checkpoint_seq += 1
        out: list[Msg] = []
        new_keys = []
        for i, chunk in enumerate(persist.encode_checkpoint(rt.state)):
            k = persist.key("K", p, rt.checkpoint_seq, i)
            new_keys.append(k)
            out.append((self.changelog_topic, k, chunk, p, None))
        out.append(
            (
                self.changelog_topic,
                persist.key("K", p),
                orjson.dumps(
                    {"seq": rt.checkpoint_seq, "log": rt.log_seq, "chunks": len(new_keys)}
                ),
                p,
                None,
            )
        )
        for k in rt.log_keys + rt.checkpoint_keys:
            out.append((self.changelog_topic, k, None, p, None))
        rt.log_keys, rt.checkpoint_keys = [], new_keys
        rt.logs_since_checkpoint = 0
        return out


def _maxed(old: Offsets | None, new: Offsets) -> Offsets:
    if not old:
        return dict(new)
    out = dict(old)
    for f, off in new.items():
        if off > out.get(f, -1):
            out[f] = off
    return out


def wall_clock_us(offset_s: float = 0.0) -> int:
    return int((time.time() + offset_s) * 1_000_000)
