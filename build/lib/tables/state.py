"""Lifecycle state and measurements of one input partition (contract sections 4-6).

``PartitionState.apply`` takes a decoded event that passed the stateless and
clock checks and either rejects it (duplicate, ``unknown_entity``,
``out_of_order``) or updates the entity and adds its measurement to exactly
one *cell*: the finest grain ``(bucket, queue, channel, agent)``. Scopes
(all / queue / channel / agent) are rolled up from cells later, when a
snapshot is built (:mod:`tables.rollup`), not per event.

Replay runs one ``PartitionState`` over the whole file; the live worker runs
one per Kafka partition (events of one entity share a key, so a partition).
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from tables import aggregate as A
from tables import sketch
from tables.entities import (  # noqa: F401 - re-exported: the state's vocabulary
    ABANDONED,
    ANSWERED,
    CLOSED,
    DUPLICATE,
    NO_AGENT,
    OPEN,
    RESOLVED,
    WAITING,
    CellKey,
    Cells,
    Config,
    Contact,
    Ticket,
    time_reason,
)
from tables.events import (
    OUT_OF_ORDER,
    UNKNOWN_ENTITY,
    ContactAbandoned,
    ContactAnswered,
    ContactClosed,
    ContactOffered,
    Event,
    SurveyResponse,
    SurveySent,
    TicketOpened,
    TicketReopened,
    TicketReplied,
    TicketResolved,
)
from tables.windows import MINUTE_US, US


class PartitionState:
    """Entities, seen event ids, pending measurement cells and rejection counts."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.contacts: dict[str, Contact] = {}
        self.tickets: dict[str, Ticket] = {}
        self.waiting: dict[str, Contact] = {}
        #: per (queue, channel): how many wait, and a heap of (offered, id) whose top,
        #: once stale entries are popped, is the oldest waiting contact.
        self.waiting_n: dict[tuple[str, str], int] = {}
        self.waiting_heap: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self.open_tickets: dict[tuple[str, str], int] = {}
        #: event_id -> event time (us); insertion order is roughly time order, which expiry uses.
        self.seen: dict[str, int] = {}
        #: measurements not yet rolled up: minute -> cell -> aggregate delta.
        self.cells: Cells = {}
        self._cell_minute = -1
        self._cell_map: dict[CellKey, A.Agg] = {}
        self.rejected: dict[str, int] = {}
        self.duplicates = 0
        #: (finish time, "c"/"t", id) in finish order, for forgetting finished entities.
        self.finished: deque[tuple[int, str, str]] = deque()
        #: Journal for the live changelog (None offline): entities changed and ids
        #: first seen since the last ``take_journal``.
        self.dirty: set[tuple[str, str]] | None = None
        self.new_ids: list[tuple[str, int]] | None = None
        #: offset of the message being applied (stamped on entities it changes)
        self.offset = -1
        #: live only: answered waits go here too, for the Prometheus histogram
        self.waits: list[tuple[str, str, float]] | None = None
        self._last_ttl_scan = 0

    # --- entry points ---------------------------------------------------------------------------
    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def apply(self, ev: Event, ts: int, clock: int) -> str | None:
        """Duplicate and lifecycle checks, then state + measurement. Returns the
        rejection reason (or ``DUPLICATE``), None when counted."""
        eid = ev.event_id
        seen = self.seen
        # One probe of the largest dict of the state (every id of the retention):
        # insert if new, and learn in the same step whether it was there.
        size = len(seen)
        prev = seen.setdefault(eid, ts)
        if len(seen) == size:
            if prev >= clock - self.cfg.retention_us:
                self.duplicates += 1
                return DUPLICATE
            # Seen before the retention: a new event as far as the contract goes.
            # Re-inserted so the dict's order stays the time order expiry relies on.
            del seen[eid]
            seen[eid] = ts
        # Recorded before the lifecycle checks: a redelivered message is a duplicate
        # whatever the first copy's fate was (contract: "a repeated event_id").
        if self.new_ids is not None:
            self.new_ids.append((eid, ts))
        # Exact types (the event structs have no subclasses), most frequent first:
        # compiled, each test is a pointer comparison where isinstance would ask the
        # msgspec metaclass, and the call that follows is a direct one.
        if type(ev) is ContactOffered:
            reason = self._offered(ev, ts, clock)
        elif type(ev) is ContactAnswered:
            reason = self._answered(ev, ts, clock)
        elif type(ev) is ContactClosed:
            reason = self._closed(ev, ts, clock)
        elif type(ev) is ContactAbandoned:
            reason = self._abandoned(ev, ts, clock)
        elif type(ev) is TicketOpened:
            reason = self._opened(ev, ts, clock)
        elif type(ev) is TicketReplied:
            reason = self._replied(ev, ts, clock)
        elif type(ev) is TicketResolved:
            reason = self._resolved(ev, ts, clock)
        elif type(ev) is SurveySent:
            reason = self._sent(ev, ts, clock)
        elif type(ev) is SurveyResponse:
            reason = self._response(ev, ts, clock)
        elif type(ev) is TicketReopened:
            reason = self._reopened(ev, ts, clock)
        else:
            raise TypeError(f"not an event: {type(ev).__name__}")
        if reason is not None:
            self.reject(reason)
        return reason

    def _cell(self, ts: int, queue: str, channel: str, agent: str) -> A.Agg:
        minute = ts // MINUTE_US
        if minute != self._cell_minute:  # most events fall in the same minute as the last one
            per_min = self.cells.get(minute)
            if per_min is None:
                per_min = self.cells[minute] = {}
            self._cell_minute, self._cell_map = minute, per_min
        key = (queue, channel, agent)
        cell = self._cell_map.get(key)
        if cell is None:
            cell = self._cell_map[key] = A.initialize()
        return cell

    def take_cells(self) -> Cells:
        cells, self.cells = self.cells, {}
        self._cell_minute = -1
        return cells

    # --- lookups (entities forgotten per the contract behave as never seen) ---------------------
    def _contact(self, cid: str, clock: int) -> Contact | None:
        c = self.contacts.get(cid)
        if c is None:
            return None
        if c.status >= ABANDONED:
            return c if c.last >= clock - self.cfg.retention_us else None
        return c if c.last >= clock - self.cfg.open_ttl_us else None

    def _ticket(self, tid: str, clock: int) -> Ticket | None:
        t = self.tickets.get(tid)
        if t is None:
            return None
        limit = self.cfg.retention_us if t.status == RESOLVED else self.cfg.open_ttl_us
        return t if t.last >= clock - limit else None

    def _touch(self, kind: str, key: str) -> None:
        if self.dirty is not None:
            self.dirty.add((kind, key))
            ent = (self.contacts if kind == "c" else self.tickets).get(key)
            if ent is not None:
                ent.upto = self.offset

    def start_journal(self) -> None:
        self.dirty, self.new_ids = set(), []

    def take_journal(self) -> tuple[list[list[Any]], list[tuple[str, int]]]:
        """Entity records ``[kind, id, wire-or-None]`` and new ids since the last call."""
        assert self.dirty is not None and self.new_ids is not None
        records: list[list[Any]] = []
        for kind, key in self.dirty:
            ent = (self.contacts if kind == "c" else self.tickets).get(key)
            records.append([kind, key, ent.to_wire() if ent is not None else None])
        ids = self.new_ids
        self.dirty, self.new_ids = set(), []
        return records, ids

    # --- waiting contacts -------------------------------------------------------------------------
    def wait_add(self, cid: str, c: Contact) -> None:
        self.waiting[cid] = c
        key = (c.queue, c.channel)
        self.waiting_n[key] = self.waiting_n.get(key, 0) + 1
        heap = self.waiting_heap.get(key)
        if heap is None:
            heap = self.waiting_heap[key] = []
        heapq.heappush(heap, (c.offered, cid))
        if len(heap) > 2 * self.waiting_n[key] + 64:
            # Mostly stale entries (answered, abandoned, moved): keep the live ones.
            # Amortised O(1) per push, and the heap stays within twice who waits.
            heap[:] = [e for e in heap if self._waits_at(e, key)]
            heapq.heapify(heap)

    def wait_del(self, cid: str) -> None:
        c = self.waiting.pop(cid, None)
        if c is None:
            return
        key = (c.queue, c.channel)
        left = self.waiting_n[key] - 1
        if left:
            self.waiting_n[key] = left
        else:  # nobody waits here: the heap holds only stale entries
            del self.waiting_n[key]
            del self.waiting_heap[key]

    def _waits_at(self, entry: tuple[int, str], key: tuple[str, str]) -> bool:
        c = self.waiting.get(entry[1])
        return c is not None and c.offered == entry[0] and c.queue == key[0] and c.channel == key[1]

    def _oldest(self, key: tuple[str, str]) -> int:
        heap = self.waiting_heap[key]
        while not self._waits_at(heap[0], key):
            heapq.heappop(heap)
        return heap[0][0]

    # --- contacts -------------------------------------------------------------------------------
    def _offered(self, ev: ContactOffered, ts: int, clock: int) -> str | None:
        cid = ev.contact_id
        old = self._contact(cid, clock)
        if old is not None and ts < old.last:
            return OUT_OF_ORDER
        self.wait_del(cid)  # offered again (or forgotten while waiting): a new life
        c = self.contacts[cid] = Contact(ev.queue, ev.channel, ts)
        self.wait_add(cid, c)
        self._touch("c", cid)
        self._cell(ts, ev.queue, ev.channel, NO_AGENT)[A.OFFERED] += 1
        return None

    def _answered(self, ev: ContactAnswered, ts: int, clock: int) -> str | None:
        cid = ev.contact_id
        c = self._contact(cid, clock)
        if c is None or c.status != WAITING:
            return UNKNOWN_ENTITY
        if ts < c.last:
            return OUT_OF_ORDER
        c.status, c.answered, c.agent, c.last = ANSWERED, ts, ev.agent_id, ts
        self.wait_del(cid)
        self._touch("c", cid)
        wait = ts - c.offered
        cell = self._cell(ts, c.queue, c.channel, ev.agent_id)
        cell[A.ANSWERED] += 1
        cell[A.WAIT_SUM] += wait
        if wait <= self.cfg.sl_threshold_us:
            cell[A.WITHIN_SL] += 1
        sketch.add(cell[A.WAIT_SK], wait / US)
        if self.waits is not None:
            self.waits.append((c.queue, c.channel, wait / US))
        return None

    def _abandoned(self, ev: ContactAbandoned, ts: int, clock: int) -> str | None:
        cid = ev.contact_id
        c = self._contact(cid, clock)
        if c is None or c.status != WAITING:
            return UNKNOWN_ENTITY
        if ts < c.last:
            return OUT_OF_ORDER
        c.status, c.last = ABANDONED, ts
        self.wait_del(cid)
        self.finished.append((ts, "c", cid))
        self._touch("c", cid)
        self._cell(ts, c.queue, c.channel, NO_AGENT)[A.ABANDONED] += 1
        return None

    def _closed(self, ev: ContactClosed, ts: int, clock: int) -> str | None:
        cid = ev.contact_id
        c = self._contact(cid, clock)
        if c is None or c.status != ANSWERED:
            return UNKNOWN_ENTITY
        if ts < c.last:
            return OUT_OF_ORDER
        c.status, c.last = CLOSED, ts
        self.finished.append((ts, "c", cid))
        self._touch("c", cid)
        cell = self._cell(ts, c.queue, c.channel, ev.agent_id or c.agent)
        cell[A.CLOSED] += 1
        cell[A.HANDLE_SUM] += ts - c.answered
        return None

    # --- tickets --------------------------------------------------------------------------------
    def _open_delta(self, t: Ticket, delta: int) -> None:
        key = (t.queue, t.channel)
        left = self.open_tickets.get(key, 0) + delta
        if left:
            self.open_tickets[key] = left
        else:
            self.open_tickets.pop(key, None)

    def _opened(self, ev: TicketOpened, ts: int, clock: int) -> str | None:
        tid = ev.ticket_id
        old = self._ticket(tid, clock)
        if old is not None:
            if ts < old.last:
                return OUT_OF_ORDER
            if old.status == OPEN:  # opened again: a new life for the same id
                self._open_delta(old, -1)
        t = self.tickets[tid] = Ticket(ev.queue, ev.channel, ts)
        self._open_delta(t, +1)
        self._touch("t", tid)
        self._cell(ts, ev.queue, ev.channel, NO_AGENT)[A.OPENED] += 1
        return None

    def _replied(self, ev: TicketReplied, ts: int, clock: int) -> str | None:
        tid = ev.ticket_id
        t = self._ticket(tid, clock)
        if t is None or t.status != OPEN:
            return UNKNOWN_ENTITY
        if ts < t.last:
            return OUT_OF_ORDER
        t.last = ts
        self._touch("t", tid)
        if not t.replied:  # only the first reply in the ticket's life is measured
            t.replied = True
            cell = self._cell(ts, t.queue, t.channel, ev.agent_id)
            cell[A.FIRST_REPLIES] += 1
            cell[A.FIRST_REPLY_SUM] += ts - t.opened
        return None

    def _resolved(self, ev: TicketResolved, ts: int, clock: int) -> str | None:
        tid = ev.ticket_id
        t = self._ticket(tid, clock)
        if t is None or t.status != OPEN:
            return UNKNOWN_ENTITY
        if ts < t.last:
            return OUT_OF_ORDER
        t.status, t.last = RESOLVED, ts
        self._open_delta(t, -1)
        self.finished.append((ts, "t", tid))
        self._touch("t", tid)
        cell = self._cell(ts, t.queue, t.channel, ev.agent_id or NO_AGENT)
        cell[A.RESOLVED] += 1
        took = ts - t.opened  # from the original opening, reopenings included
        cell[A.RESOLUTION_SUM] += took
        sketch.add(cell[A.RES_SK], took / US)
        if ev.contacts == 1:
            cell[A.FCR] += 1
        return None

    def _reopened(self, ev: TicketReopened, ts: int, clock: int) -> str | None:
        tid = ev.ticket_id
        t = self._ticket(tid, clock)
        if t is None or t.status != RESOLVED:
            return UNKNOWN_ENTITY
        if ts < t.last:
            return OUT_OF_ORDER
        t.status, t.last = OPEN, ts
        self._open_delta(t, +1)
        self._touch("t", tid)
        self._cell(ts, t.queue, t.channel, NO_AGENT)[A.REOPENED] += 1
        return None

    # --- surveys (no lifecycle) -----------------------------------------------------------------
    def _sent(self, ev: SurveySent, ts: int, clock: int) -> str | None:
        # An agent on survey_sent is not a measurement of the agent (section 7: sent is 0).
        self._cell(ts, ev.queue, ev.channel, NO_AGENT)[A.SENT] += 1
        return None

    def _response(self, ev: SurveyResponse, ts: int, clock: int) -> str | None:
        cell = self._cell(ts, ev.queue, ev.channel, ev.agent_id or NO_AGENT)
        score = ev.score
        if ev.kind == "csat":
            cell[A.CSAT_N] += 1
            if score >= 4:
                cell[A.CSAT_GOOD] += 1
        elif ev.kind == "nps":
            cell[A.NPS_N] += 1
            if score >= 9:
                cell[A.NPS_PRO] += 1
            elif score <= 6:
                cell[A.NPS_DET] += 1
        else:
            cell[A.CES_N] += 1
            cell[A.CES_SUM] += score
        return None

    # --- live state and expiry ------------------------------------------------------------------
    def live_state(self, clock: int) -> dict[str, list[Any]]:
        """scope -> [waiting, oldest offered ts or None, open tickets] (``now`` rows)."""
        out: dict[str, list[Any]] = {}

        def slot(scope: str) -> list[Any]:
            s = out.get(scope)
            if s is None:
                s = out[scope] = [0, None, 0]
            return s

        for key, n in self.waiting_n.items():
            oldest = self._oldest(key)
            for scope in ("all", "queue:" + key[0], "channel:" + key[1]):
                s = slot(scope)
                s[0] += n
                if s[1] is None or oldest < s[1]:
                    s[1] = oldest
        for (queue, channel), n in self.open_tickets.items():
            for scope in ("all", "queue:" + queue, "channel:" + channel):
                slot(scope)[2] += n
        return out

    def expire(self, clock: int) -> None:
        """Forget what the contract lets us forget, so memory stays flat."""
        cutoff = clock - self.cfg.retention_us
        fin = self.finished
        while fin and fin[0][0] < cutoff:
            when, kind, key = fin.popleft()
            store: dict[str, Any] = self.contacts if kind == "c" else self.tickets
            ent = store.get(key)
            # Only if it is still that same finished life (a ticket may be reopened).
            if (
                ent is not None
                and ent.last == when
                and (ent.status >= ABANDONED if kind == "c" else ent.status == RESOLVED)
            ):
                del store[key]
                self._touch(kind, key)
        dead = []
        for eid, ts in self.seen.items():
            if ts >= cutoff:
                break
            dead.append(eid)
        for eid in dead:
            del self.seen[eid]
        if clock - self._last_ttl_scan >= 3600 * US:
            self._last_ttl_scan = clock
            self._drop_idle(clock - self.cfg.open_ttl_us)

    def _drop_idle(self, horizon: int) -> None:
        for cid in [
            k for k, c in self.contacts.items() if c.status < ABANDONED and c.last < horizon
        ]:
            self.wait_del(cid)
            del self.contacts[cid]
            self._touch("c", cid)
        for tid in [k for k, t in self.tickets.items() if t.status == OPEN and t.last < horizon]:
            self._open_delta(self.tickets.pop(tid), -1)
            self._touch("t", tid)
