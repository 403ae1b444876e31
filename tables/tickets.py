"""Tickets (cases, incidents): lifecycle, measurements, how many are open now.

Contract sections 3-4 and 6: a ticket is replied to or resolved only while
open, reopened only while resolved (and resolved again after that); only the
first reply of a ticket's life is measured, and a resolution counts from the
ticket's original opening, reopenings included. Version 2: a ticket opened
with a ``product`` measures into that product's scope too (the product is the
fourth field of its cells), and its SLA policy, taken at opening, decides
whether its first reply and resolution met their targets and when, as an open
ticket, it breaches (:mod:`tables.sla`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tables import aggregate as A
from tables import sketch
from tables.cells import CellBuffer, Journal
from tables.entities import NO_AGENT, OPEN, RESOLVED, Config, Ticket
from tables.events import (
    OUT_OF_ORDER,
    UNKNOWN_ENTITY,
    TicketOpened,
    TicketReopened,
    TicketReplied,
    TicketResolved,
)
from tables.sla import NO_POLICY, DeadlineIndex, SlaClock, running
from tables.ticketcsat import TicketProducts
from tables.windows import US

KIND = "t"


class TicketBook:
    def __init__(self, cfg: Config, cells: CellBuffer, journal: Journal) -> None:
        self.cfg = cfg
        self.cells = cells
        self.journal = journal
        self.tickets: dict[str, Ticket] = {}
        #: open tickets per (queue, channel, product)
        self.open: dict[tuple[str, str, str], int] = {}
        self.sla = SlaClock(cfg.defs)
        self.has_sla = bool(cfg.defs.sla)
        #: open tickets with a running target, by the minutes of their instants
        self.deadlines = DeadlineIndex()
        #: tickets opened with a product, by opening minute (CSAT per product)
        self.products = TicketProducts()
        #: (resolution time, id) in resolution order, for forgetting resolved tickets
        self.finished: deque[tuple[int, str]] = deque()

    def get(self, tid: str, clock: int) -> Ticket | None:
        """The ticket, unless the contract lets us treat it as forgotten."""
        t = self.tickets.get(tid)
        if t is None:
            return None
        limit = self.cfg.retention_us if t.status == RESOLVED else self.cfg.open_ttl_us
        return t if t.last >= clock - limit else None

    def _touch(self, tid: str, t: Ticket | None) -> None:
        self.journal.touch(KIND, tid, t)

    def _open_delta(self, t: Ticket, delta: int) -> None:
        key = (t.queue, t.channel, t.product)
        left = self.open.get(key, 0) + delta
        if left:
            self.open[key] = left
        else:
            self.open.pop(key, None)

    def _deadline(self, tid: str, t: Ticket) -> None:
        """Where this ticket stands among the open tickets with a running SLA target."""
        if t.policy == NO_POLICY:
            return
        if t.status != OPEN:
            self.deadlines.drop(tid)
            return
        breach, risk = running(self._instants(t), t.replied)
        self.deadlines.put(tid, (t.queue, t.channel, t.product), breach, risk)

    def _instants(self, t: Ticket) -> tuple[int, int, int, int]:
        instants = t.instants
        if instants is None:
            instants = t.instants = self.sla.instants(t.policy, t.opened)
        return instants

    # --- lifecycle ------------------------------------------------------------------------------
    def opened(self, ev: TicketOpened, ts: int, clock: int) -> str | None:
        tid = ev.ticket_id
        old = self.get(tid, clock)
        if old is not None:
            if ts < old.last:
                return OUT_OF_ORDER
            if old.status == OPEN:  # opened again: a new life for the same id
                self._open_delta(old, -1)
            if old.product:
                self.products.drop(tid, old.opened)
        product = ev.product or ""
        policy = self.sla.policy_for(ev.priority, ev.queue) if self.has_sla else NO_POLICY
        t = self.tickets[tid] = Ticket(ev.queue, ev.channel, ts, product, policy)
        self._open_delta(t, +1)
        self.deadlines.drop(tid)
        self._deadline(tid, t)
        if product:
            self.products.put(tid, ts, product)
        self._touch(tid, t)
        self.cells.at(ts, ev.queue, ev.channel, NO_AGENT, product)[A.OPENED] += 1
        return None

    def replied(self, ev: TicketReplied, ts: int, clock: int) -> str | None:
        tid = ev.ticket_id
        t = self.get(tid, clock)
        if t is None or t.status != OPEN:
            return UNKNOWN_ENTITY
        if ts < t.last:
            return OUT_OF_ORDER
        t.last = ts
        self._touch(tid, t)
        if not t.replied:  # only the first reply in the ticket's life is measured
            t.replied = True
            cell = self.cells.at(ts, t.queue, t.channel, ev.agent_id, t.product)
            cell[A.FIRST_REPLIES] += 1
            cell[A.FIRST_REPLY_SUM] += ts - t.opened
            within = self.sla.met(t.policy, self._instants(t), ts, True)
            if within is not None:
                cell[A.FR_SLA_N] += 1
                if within:
                    cell[A.FR_SLA_OK] += 1
            self._deadline(tid, t)
        return None

    def resolved(self, ev: TicketResolved, ts: int, clock: int) -> str | None:
        tid = ev.ticket_id
        t = self.get(tid, clock)
        if t is None or t.status != OPEN:
            return UNKNOWN_ENTITY
        if ts < t.last:
            return OUT_OF_ORDER
        t.status, t.last = RESOLVED, ts
        self._open_delta(t, -1)
        self.finished.append((ts, tid))
        self._deadline(tid, t)
        self._touch(tid, t)
        cell = self.cells.at(ts, t.queue, t.channel, ev.agent_id or NO_AGENT, t.product)
        cell[A.RESOLVED] += 1
        took = ts - t.opened  # from the original opening, reopenings included
        cell[A.RESOLUTION_SUM] += took
        sketch.add(cell[A.RES_SK], took / US)
        if ev.contacts == 1:
            cell[A.FCR] += 1
        within = self.sla.met(t.policy, self._instants(t), ts, False)
        if within is not None:
            cell[A.RES_SLA_N] += 1
            if within:
                cell[A.RES_SLA_OK] += 1
        return None

    def reopened(self, ev: TicketReopened, ts: int, clock: int) -> str | None:
        tid = ev.ticket_id
        t = self.get(tid, clock)
        if t is None or t.status != RESOLVED:
            return UNKNOWN_ENTITY
        if ts < t.last:
            return OUT_OF_ORDER
        t.status, t.last = OPEN, ts
        self._open_delta(t, +1)
        self._deadline(tid, t)
        self._touch(tid, t)
        self.cells.at(ts, t.queue, t.channel, NO_AGENT, t.product)[A.REOPENED] += 1
        return None

    def live(self) -> list[tuple[str, str, str, int]]:
        """(queue, channel, product, open tickets) of every group with open tickets."""
        return [(q, ch, p, n) for (q, ch, p), n in self.open.items()]

    # --- changelog records ------------------------------------------------------------------------
    def record(self, tid: str) -> list[Any]:
        t = self.tickets.get(tid)
        return [KIND, tid, t.to_wire() if t is not None else None]

    def records(self) -> list[list[Any]]:
        return [[KIND, k, t.to_wire()] for k, t in self.tickets.items()]

    def load(self, tid: str, wire: list[Any] | None) -> None:
        if wire is None:
            self.tickets.pop(tid, None)
        else:
            self.tickets[tid] = Ticket.from_wire(wire)

    def rebuild(self) -> None:
        self.open = {}
        self.deadlines = DeadlineIndex()
        self.products = TicketProducts()
        fin: list[tuple[int, str]] = []
        for tid, t in self.tickets.items():
            if t.product:
                self.products.put(tid, t.opened, t.product)
            if t.status == RESOLVED:
                fin.append((t.last, tid))
            else:
                self._open_delta(t, +1)
                self._deadline(tid, t)
        self.finished = deque(sorted(fin))

    # --- forgetting -------------------------------------------------------------------------------
    def expire(self, cutoff: int) -> None:
        fin = self.finished
        while fin and fin[0][0] < cutoff:
            when, tid = fin.popleft()
            t = self.tickets.get(tid)
            # Only if it is still that same resolved life (a ticket may be reopened).
            if t is not None and t.last == when and t.status == RESOLVED:
                del self.tickets[tid]
                self.products.drop(tid, t.opened)
                self._touch(tid, None)

    def drop_idle(self, horizon: int) -> None:
        for tid in [k for k, t in self.tickets.items() if t.status == OPEN and t.last < horizon]:
            t = self.tickets.pop(tid)
            self._open_delta(t, -1)
            self.deadlines.drop(tid)
            self.products.drop(tid, t.opened)
            self._touch(tid, None)
