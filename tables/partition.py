"""One input partition as the live worker keeps it: state, stored offsets, batch writes.

A :class:`PartitionStore` owns its recovery: :meth:`PartitionStore.restore`
rebuilds the state from what the changelog holds (:mod:`tables.changelog`),
and :meth:`PartitionStore.absorb` re-processes the batch a crash cut short so
that nothing is lost or counted twice (the rules are in the changelog
module's docstring). Per batch it folds the pending cells into its absolute
minute cells and says what to write, as ``(key, value)`` pairs: the partials
every worker's view reads, then the changelog writes in the order M, R, L, A,
and now and then a checkpoint. Sending them is the worker's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tables import aggregate as A
from tables import changelog as C
from tables.changelog import Offsets
from tables.clock import Clock
from tables.entities import DUPLICATE, CellKey, Cells, Config
from tables.schema import INTERNAL_ERROR
from tables.state import PartitionState
from tables.windows import MINUTE_US

#: one write: key, value (None: tombstone)
Write = tuple[bytes, bytes | None]
#: one rejected message: offset, raw value, reason
DeadLetter = tuple[int, bytes, str]


@dataclass
class FeedStats:
    """What the worker reports about processing (running totals, per worker)."""

    by_type: dict[type, int] = field(default_factory=dict)
    duplicates: int = 0
    #: newest event time applied (us), for the event-to-publish latency
    newest_ts: int = 0


def _covered(o: Offsets, applied: Offsets) -> bool:
    return all(off <= applied.get(f, -1) for f, off in o.items())


def _bump(upto: Offsets, o: Offsets) -> None:
    for f, off in o.items():
        if off > upto.get(f, -1):
            upto[f] = off


def _maxed(old: Offsets | None, new: Offsets) -> Offsets:
    out = dict(old or {})
    _bump(out, new)
    return out


class PartitionStore:
    def __init__(self, cfg: Config, partition: int, state: PartitionState, st: C.Stored) -> None:
        self.cfg = cfg
        self.partition = partition
        self.state = state
        #: offsets whose writes all went out (A), and offsets absorbed so far
        self.applied: Offsets = dict(st.applied)
        self.processed: Offsets = dict(st.applied)
        self.minutes: Cells = st.minutes
        self.minute_offsets = st.minute_offsets
        self.counters_offsets = st.counters_offsets
        #: highest offset per family any stored value includes (gating stops above it)
        self.recover_upto: Offsets = dict(st.applied)
        self.log_seq = st.log_seq
        self.checkpoint_seq = st.checkpoint_seq
        self.log_keys = st.log_keys
        self.checkpoint_keys = st.checkpoint_keys
        self.dirty_minutes: set[int] = set()
        self.dead_minutes: set[int] = set()
        #: minute -> cell -> its wire entry: a batch re-encodes its minutes whole (absolute
        #: values), but converts only the cells it touched
        self.wire: dict[int, dict[CellKey, list[Any]]] = {}
        #: minute -> the entries changed since its last partials record (None: rebuilt)
        self.changes: dict[int, dict[CellKey, list[Any]] | None] = {}
        #: minute -> its encoded entries, from the batch's partials to its changelog
        self._cells_json: dict[int, bytes] = {}
        #: (partition, minute), value, changes of the partials records of the last batch,
        #: for this process's own view (tables.own)
        self.hints: list[tuple[tuple[int, int], bytes, dict[CellKey, list[Any]] | None]] = []
        self.logs_since_checkpoint = 0
        self.touched = False

    @classmethod
    def restore(cls, cfg: Config, partition: int, items: dict[bytes, bytes]) -> PartitionStore:
        """Rebuild partition ``partition`` from the changelog's key/values of it."""
        st = C.read(partition, items)
        state = PartitionState(cfg)
        state.load_records(st.checkpoint_records)
        state.load_ids(st.checkpoint_ids)
        state.load_offers(st.checkpoint_offers)
        state.load_refs(st.checkpoint_refs)
        store = cls(cfg, partition, state, st)
        for o in st.minute_offsets.values():
            _bump(store.recover_upto, o)
        for records, ids, offers, refs, o in st.logs:
            state.load_records(records)
            # An offer belongs to its contact's change: both are in this log or neither.
            state.load_offers(offers)
            # A response is kept by its event id: one applied again changes nothing.
            state.load_refs(refs)
            _bump(store.recover_upto, o)
            # Ids of a batch that never completed are left out: re-processing that
            # batch must not find its own messages already "seen".
            if _covered(o, store.applied):
                state.load_ids(ids)
        if st.counters is not None:
            state.load_counts(*st.counters)
            _bump(store.recover_upto, st.counters_offsets)
        state.rebuild()
        state.start_journal()
        return store

    # --- processing ---------------------------------------------------------------------------
    def absorb(
        self,
        family: str,
        records: Iterable[tuple[int, bytes | None]],
        clock: Clock,
        stats: FeedStats,
    ) -> list[DeadLetter]:
        """Apply ``(offset, value)`` records of one input topic of this partition, in order;
        returns the messages to dead-letter."""
        state = self.state
        done = self.processed.get(family, -1)
        gate_to = self.recover_upto.get(family, -1)
        dead: list[DeadLetter] = []
        last = done
        by_type = stats.by_type
        newest = stats.newest_ts
        for offset, value in records:
            if offset <= done:
                continue  # applied before a restart: everything it did is stored
            last = offset
            raw = value if value is not None else b""
            try:
                if offset <= gate_to:
                    reason = self._gated(family, offset, raw, clock)
                    if reason is not None:
                        dead.append((offset, raw, reason))
                    continue
                state.set_offset(offset)
                verdict = state.feed(raw, clock)
            except Exception as exc:  # noqa: BLE001 - one record must not stop its partition
                # A bug met by this record: it is dead-lettered, the rest goes on. The reason
                # carries the exception ("internal_error:KeyError: 'x'"); the worker splits it
                # into the reason and an ``exception`` header.
                dead.append((offset, raw, f"{INTERNAL_ERROR}:{type(exc).__name__}: {exc}"))
                continue
            ev = state.last
            if ev is not None:
                by_type[ev.__class__] = by_type.get(ev.__class__, 0) + 1
                if verdict is None and state.last_ts > newest:
                    newest = state.last_ts
            if verdict is None:
                continue
            if verdict == DUPLICATE:
                stats.duplicates += 1
                continue
            dead.append((offset, raw, verdict))
        stats.newest_ts = newest
        if last > done:
            self.processed[family] = last
            self.touched = True
        return dead

    def _gated(self, family: str, offset: int, raw: bytes, clock: Clock) -> str | None:
        """Re-process one message of the batch a crash interrupted (see tables.changelog);
        returns the reason to dead-letter it again, if its rejection was not stored."""
        state = self.state
        state.set_offset(offset)
        if state.stored_before(raw, offset):
            return None  # its entity, and therefore its counts, were stored
        verdict, cells, rejected, duplicates = state.feed_isolated(raw, clock)
        state.buffer.add(
            {
                m: c
                for m, c in cells.items()
                # a minute stored with the message counted keeps what it has
                if self.minute_offsets.get(m, {}).get(family, -1) < offset
            }
        )
        if self.counters_offsets.get(family, -1) >= offset:
            return None
        state.add_counts(rejected, duplicates)
        return None if verdict is None or verdict == DUPLICATE else verdict

    # --- the batch's writes -------------------------------------------------------------------
    def fold(self, clock_us: int) -> None:
        """Pending cells -> the absolute minute cells; expiry."""
        for minute, cells in self.state.take_cells().items():
            store = self.minutes.get(minute)
            if store is None:
                store = self.minutes[minute] = {}
            wire = self.wire.get(minute)
            changed = self.changes.get(minute, {}) if wire is not None else None
            for k, agg in cells.items():
                tgt = store.get(k)
                if tgt is None:
                    store[k] = tgt = agg
                else:
                    A.merge(tgt, agg)
                if wire is not None:
                    entry = wire[k] = C.wire_cell(k, tgt)
                    if changed is not None:
                        changed[k] = entry
            self.changes[minute] = changed
            self.dirty_minutes.add(minute)
        horizon = clock_us // MINUTE_US - self.cfg.largest_window
        for minute in [m for m in self.minutes if m <= horizon]:
            del self.minutes[minute]
            self.wire.pop(minute, None)
            self.changes.pop(minute, None)
            self.minute_offsets.pop(minute, None)
            self.dirty_minutes.discard(minute)
            self.dead_minutes.add(minute)
        self.state.expire(clock_us)

    def _wire(self, minute: int) -> dict[CellKey, list[Any]]:
        wire = self.wire.get(minute)
        if wire is None:  # restored from the changelog: every cell once
            cells = self.minutes[minute]
            wire = self.wire[minute] = {k: C.wire_cell(k, agg) for k, agg in cells.items()}
        return wire

    def partials(self) -> list[Write]:
        """What every worker's view reads of this partition (after :meth:`fold`)."""
        p = self.partition
        out: list[Write] = []
        self.hints = []
        self._cells_json = {}
        for m in self.dirty_minutes:
            cells_json = self._cells_json[m] = orjson.dumps(list(self._wire(m).values()))
            cells = C.encode_cells_json(cells_json, self.processed)
            out.append((C.partials_key(p, m), cells))
            self.hints.append(((p, m), cells, self.changes.pop(m, None)))
        out += [(C.partials_key(p, m), None) for m in self.dead_minutes]
        offers = self.state.contacts.offers
        for m in self.state.contacts.take_offer_minutes():
            per = offers.get(m)
            value = C.encode_offers(per) if per else None
            out.append((C.partials_key(p, C.OFFERS, m), value))
        deadlines = self.state.tickets.deadlines
        for m in deadlines.take_dirty():
            recs = deadlines.records(m)
            value = C.encode_deadlines(recs) if recs else None
            out.append((C.partials_key(p, C.DEADLINES, m), value))
        refs = self.state.csat_refs
        for m in refs.take_dirty():
            wire = refs.wire(m)
            out.append((C.partials_key(p, C.CSAT_REFS, m), C.encode_list(wire) if wire else None))
        products = self.state.tickets.products
        for m in products.take_dirty():
            pairs = products.wire(m)
            out.append((C.partials_key(p, C.PRODUCTS, m), C.encode_list(pairs) if pairs else None))
        summary = C.Summary(
            self.state.live_part(), self.state.rejected, self.state.duplicates, self.processed
        )
        out.append((C.partials_key(p, C.SUMMARY), C.encode_summary(summary)))
        return out

    def changelog(self) -> list[Write]:
        """The changelog writes of the batch, in the order M, R, L, A (see tables.changelog).
        Afterwards everything absorbed counts as applied."""
        p, o = self.partition, dict(self.processed)
        out: list[Write] = []
        for m in self.dirty_minutes:
            # A stored value may include messages beyond ``processed`` (while the
            # batch a crash cut short is re-processed): offsets only ever grow.
            mo = self.minute_offsets[m] = _maxed(self.minute_offsets.get(m), o)
            cells_json = self._cells_json.get(m)
            value = (C.encode_wire(self._wire(m), mo) if cells_json is None
                     else C.encode_cells_json(cells_json, mo))
            out.append((C.key("M", p, m), value))
        out += [(C.key("M", p, m), None) for m in self.dead_minutes]
        self.dirty_minutes, self.dead_minutes = set(), set()
        self._cells_json = {}
        co = self.counters_offsets = _maxed(self.counters_offsets, o)
        out.append(
            (C.key("R", p), C.encode_counters(self.state.rejected, self.state.duplicates, co))
        )
        records, ids, offers = self.state.take_journal()
        refs = self.state.journal.take_refs()
        if records or ids or offers or refs:
            self.log_seq += 1
            for i, chunk in enumerate(C.encode_log(records, ids, offers, refs, o)):
                k = C.key("L", p, f"{self.log_seq:012d}", i)
                self.log_keys.append(k)
                out.append((k, chunk))
            self.logs_since_checkpoint += 1
        out.append((C.key("A", p), C.encode_applied(o)))
        self.applied = o
        self.touched = False
        return out

    def checkpoint(self) -> list[Write]:
        """Whole-partition snapshot; then the logs and the older checkpoint it replaces go.
        Only after A: a checkpoint must not hold ids of a batch not applied yet."""
        p = self.partition
        self.checkpoint_seq += 1
        records, ids, offers = self.state.records()
        refs = self.state.csat_refs.records()
        out: list[Write] = []
        new_keys = []
        for i, chunk in enumerate(C.encode_checkpoint(records, ids, offers, refs)):
            k = C.key("K", p, self.checkpoint_seq, i)
            new_keys.append(k)
            out.append((k, chunk))
        out.append(
            (C.key("K", p), C.encode_checkpoint_header(self.checkpoint_seq, self.log_seq,
                                                       len(new_keys)))
        )
        out += [(k, None) for k in self.log_keys + self.checkpoint_keys]
        self.log_keys, self.checkpoint_keys = [], new_keys
        self.logs_since_checkpoint = 0
        return out
