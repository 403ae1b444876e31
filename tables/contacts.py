"""Contacts (calls, chats, emails, messages): lifecycle, measurements, who waits now.

Contract sections 3-4 and 6: a contact is answered or abandoned at most once,
and only after it was offered; it is closed at most once, and only after it
was answered. Each handler returns the rejection reason or None, and on
success adds the contact's measurement to one cell of the shared buffer.

Who waits is kept incrementally (a count per queue and channel, and a lazy
heap of offer times whose top, once stale entries are popped, is the oldest
waiting contact), so the ``now`` rows cost nothing per event and a snapshot
does not scan the contacts.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from tables import aggregate as A
from tables import sketch
from tables.cells import CellBuffer, Journal
from tables.entities import ABANDONED, ANSWERED, CLOSED, NO_AGENT, WAITING, Config, Contact
from tables.events import (
    OUT_OF_ORDER,
    UNKNOWN_ENTITY,
    ContactAbandoned,
    ContactAnswered,
    ContactClosed,
    ContactOffered,
)
from tables.windows import MINUTE_US, US

KIND = "c"


class ContactBook:
    def __init__(self, cfg: Config, cells: CellBuffer, journal: Journal) -> None:
        self.cfg = cfg
        self.cells = cells
        self.journal = journal
        self.contacts: dict[str, Contact] = {}
        self.waiting: dict[str, Contact] = {}
        #: per (queue, channel): how many wait, and a heap of (offered, id)
        self.waiting_n: dict[tuple[str, str], int] = {}
        self.waiting_heap: dict[tuple[str, str], list[tuple[int, str]]] = {}
        #: (finish time, id) in finish order, for forgetting finished contacts
        self.finished: deque[tuple[int, str]] = deque()
        #: live only: answered waits go here too, for the Prometheus histogram
        self.waits: list[tuple[str, str, float]] | None = None
        defs = cfg.defs
        self.short_abandon_us = defs.short_abandon_us
        self._threshold_for = defs.threshold_for
        self._thresholds: dict[tuple[str, str], int] = {}
        #: accepted offers with a customer, (customer, ts, queue, channel), by minute:
        #: what repeat contacts are found from (tables.repeats), kept for the repeat window
        self.offers: dict[int, list[tuple[str, int, str, str]]] = {}
        #: minutes whose offers changed since the last take_offer_minutes
        self.offer_dirty: set[int] = set()

    def get(self, cid: str, clock: int) -> Contact | None:
        """The contact, unless the contract lets us treat it as forgotten."""
        c = self.contacts.get(cid)
        if c is None:
            return None
        if c.status >= ABANDONED:
            return c if c.last >= clock - self.cfg.retention_us else None
        return c if c.last >= clock - self.cfg.open_ttl_us else None

    def _touch(self, cid: str, c: Contact | None) -> None:
        self.journal.touch(KIND, cid, c)

    # --- lifecycle ------------------------------------------------------------------------------
    def offered(self, ev: ContactOffered, ts: int, clock: int) -> str | None:
        cid = ev.contact_id
        old = self.get(cid, clock)
        if old is not None and ts < old.last:
            return OUT_OF_ORDER
        self.wait_del(cid)  # offered again (or forgotten while waiting): a new life
        c = self.contacts[cid] = Contact(ev.queue, ev.channel, ts)
        self.wait_add(cid, c)
        self._touch(cid, c)
        cell = self.cells.at(ts, ev.queue, ev.channel, NO_AGENT)
        cell[A.OFFERED] += 1
        if ev.customer_id is not None:
            cell[A.OFFERED_CUST] += 1
            offer = (ev.customer_id, ts, ev.queue, ev.channel)
            self.add_offer(offer)
            self.journal.offer(offer)
        return None

    def add_offer(self, offer: tuple[str, int, str, str]) -> None:
        minute = offer[1] // MINUTE_US
        per = self.offers.get(minute)
        if per is None:
            per = self.offers[minute] = []
        per.append(offer)
        self.offer_dirty.add(minute)

    def take_offer_minutes(self) -> set[int]:
        dirty, self.offer_dirty = self.offer_dirty, set()
        return dirty

    def threshold(self, queue: str, channel: str) -> int:
        """The service-level threshold of a contact (section 6.1), looked up once per
        queue and channel."""
        key = (queue, channel)
        t = self._thresholds.get(key)
        if t is None:
            t = self._thresholds[key] = self._threshold_for(queue, channel)
        return t

    def answered(self, ev: ContactAnswered, ts: int, clock: int) -> str | None:
        cid = ev.contact_id
        c = self.get(cid, clock)
        if c is None or c.status != WAITING:
            return UNKNOWN_ENTITY
        if ts < c.last:
            return OUT_OF_ORDER
        c.status, c.answered, c.agent, c.last = ANSWERED, ts, ev.agent_id, ts
        self.wait_del(cid)
        self._touch(cid, c)
        wait = ts - c.offered
        cell = self.cells.at(ts, c.queue, c.channel, ev.agent_id)
        cell[A.ANSWERED] += 1
        cell[A.WAIT_SUM] += wait
        if wait <= self.threshold(c.queue, c.channel):
            cell[A.WITHIN_SL] += 1
        sketch.add(cell[A.WAIT_SK], wait / US)
        if self.waits is not None:
            self.waits.append((c.queue, c.channel, wait / US))
        return None

    def abandoned(self, ev: ContactAbandoned, ts: int, clock: int) -> str | None:
        cid = ev.contact_id
        c = self.get(cid, clock)
        if c is None or c.status != WAITING:
            return UNKNOWN_ENTITY
        if ts < c.last:
            return OUT_OF_ORDER
        c.status, c.last = ABANDONED, ts
        self.wait_del(cid)
        self.finished.append((ts, cid))
        self._touch(cid, c)
        cell = self.cells.at(ts, c.queue, c.channel, NO_AGENT)
        wait = ts - c.offered
        if wait < self.short_abandon_us:  # a short abandon counts nowhere else
            cell[A.SHORT_ABANDONED] += 1
        else:
            cell[A.ABANDONED] += 1
            cell[A.ABANDON_SUM] += wait
        return None

    def closed(self, ev: ContactClosed, ts: int, clock: int) -> str | None:
        cid = ev.contact_id
        c = self.get(cid, clock)
        if c is None or c.status != ANSWERED:
            return UNKNOWN_ENTITY
        if ts < c.last:
            return OUT_OF_ORDER
        c.status, c.last = CLOSED, ts
        self.finished.append((ts, cid))
        self._touch(cid, c)
        cell = self.cells.at(ts, c.queue, c.channel, ev.agent_id or c.agent)
        cell[A.CLOSED] += 1
        cell[A.HANDLE_SUM] += ts - c.answered
        return None

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

    def oldest(self, key: tuple[str, str]) -> int:
        heap = self.waiting_heap[key]
        while not self._waits_at(heap[0], key):
            heapq.heappop(heap)
        return heap[0][0]

    def live(self) -> list[tuple[str, str, int, int]]:
        """(queue, channel, waiting, oldest offered) of every queue and channel with waiters."""
        return [(q, ch, n, self.oldest((q, ch))) for (q, ch), n in self.waiting_n.items()]

    # --- changelog records ------------------------------------------------------------------------
    def record(self, cid: str) -> list[Any]:
        c = self.contacts.get(cid)
        return [KIND, cid, c.to_wire() if c is not None else None]

    def records(self) -> list[list[Any]]:
        return [[KIND, k, c.to_wire()] for k, c in self.contacts.items()]

    def load(self, cid: str, wire: list[Any] | None) -> None:
        if wire is None:
            self.contacts.pop(cid, None)
        else:
            self.contacts[cid] = Contact.from_wire(wire)

    def rebuild(self) -> None:
        """Who waits and the expiry order, from the contacts alone."""
        self.waiting, self.waiting_n, self.waiting_heap = {}, {}, {}
        fin: list[tuple[int, str]] = []
        for cid, con in self.contacts.items():
            if con.status == WAITING:
                self.wait_add(cid, con)
            elif con.status >= ABANDONED:
                fin.append((con.last, cid))
        self.finished = deque(sorted(fin))

    # --- forgetting -------------------------------------------------------------------------------
    def expire(self, cutoff: int) -> None:
        """Forget contacts finished before ``cutoff`` (clock minus the retention)."""
        fin = self.finished
        while fin and fin[0][0] < cutoff:
            when, cid = fin.popleft()
            c = self.contacts.get(cid)
            # Only if it is still that same finished life (an id may be offered again).
            if c is not None and c.last == when and c.status >= ABANDONED:
                del self.contacts[cid]
                self._touch(cid, None)

    def expire_offers(self, horizon: int) -> None:
        """Offers before ``horizon`` can make no later contact a repeat any more."""
        for minute in [m for m in self.offers if m < horizon // MINUTE_US]:
            del self.offers[minute]
            self.offer_dirty.add(minute)

    def drop_idle(self, horizon: int) -> None:
        """Unfinished contacts idle since before ``horizon``: producers forgot them."""
        for cid in [
            k for k, c in self.contacts.items() if c.status < ABANDONED and c.last < horizon
        ]:
            self.wait_del(cid)
            del self.contacts[cid]
            self._touch(cid, None)
