"""Repeat contacts (contract v2 §6.4): a customer who comes back within the repeat window.

An accepted ``contact_offered`` B with a ``customer_id`` is a repeat when
another accepted offer A of the same customer has ``B.ts - W <= A.ts < B.ts``,
in any queue or channel. That is event time: the order in which A and B
arrive does not matter (a B that arrived first becomes a repeat when A
arrives), and the repeat is measured in B's bucket and B's scopes::

    W = 1 h        c9 (cust-4) 06:06:30      c5 (cust-4) 06:07:00
    arrival order: c5 first (no repeat yet), then c9: now c5 is a repeat
    B = c5: c5.ts - W = 05:07 <= c9.ts = 06:06:30 < c5.ts   -> repeat in 06:07, c5's queue

Contacts are keyed by contact, so a customer's contacts land on different
partitions. No partition can decide alone: each one keeps its accepted offers
(customer, ts, queue, channel) by minute, for the retention plus the window,
and writes the minutes that changed to the partials topic. Every worker folds
all partitions' offers into one :class:`RepeatIndex` (absolute per partition
and minute, so a rebalance or a re-sent batch counts nothing twice), which
turns them into repeat counts per minute and (queue, channel); the whole-center
roll-up reads those like one more partition. The replay feeds its own offers
through the same class, so live and replay find the same repeats.

Memory is bounded by the window: an offer older than the clock minus the
retention minus W can make no acceptable later offer a repeat and is dropped.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any

from tables import aggregate as A
from tables.entities import CellKey
from tables.windows import MINUTE_US

Offer = tuple[str, int, str, str]  # customer, ts, queue, channel
#: the partition number the repeat counts take in the roll-up
REPEAT_PARTITION = -1


class RepeatIndex:
    def __init__(self, window_us: int) -> None:
        self.window_us = window_us
        self._held: dict[tuple[int, int], list[Offer]] = {}
        #: customer -> sorted [(ts, queue, channel)]
        self.customers: dict[str, list[tuple[int, str, str]]] = {}
        #: minute -> (queue, channel) -> repeats
        self.counts: dict[int, dict[tuple[str, str], int]] = {}
        self.dirty: set[int] = set()

    def replace(self, partition: int, minute: int, offers: list[Offer] | None) -> None:
        """A partition's offers of one minute (None: gone), replacing what it had."""
        key = (partition, minute)
        old = self._held.pop(key, None)
        if old:
            if offers and len(offers) >= len(old) and offers[: len(old)] == old:
                # the same minute with offers appended (the usual case): add the new ones
                self._held[key] = list(offers)
                for offer in offers[len(old):]:
                    self._add(offer)
                return
            for offer in old:
                self._remove(offer)
        if offers:
            self._held[key] = list(offers)
            for offer in offers:
                self._add(offer)

    # An offer is a repeat when the latest earlier instant of its customer (strictly
    # earlier) is within the window. Adding or removing an offer at ``t`` changes that
    # for the offer itself and, when ``t`` is a new (or its last) instant, for the
    # offers at the customer's next instant after ``t`` only: any later one has an
    # earlier instant after ``t`` already.
    #
    #   seq:  10:00  10:20 [+10:40]  11:10  11:50     W = 1 h
    #   10:40 looks back to 10:20; 11:10's latest earlier instant becomes 10:40;
    #   11:50 still looks back to 11:10.

    def _count(self, ts: int, queue: str, channel: str, sign: int) -> None:
        minute = ts // MINUTE_US
        per = self.counts.setdefault(minute, {})
        left = per.get((queue, channel), 0) + sign
        if left:
            per[(queue, channel)] = left
        else:
            per.pop((queue, channel), None)
            if not per:
                del self.counts[minute]
        self.dirty.add(minute)

    def _next_group(self, seq: list[tuple[int, str, str]], i: int, was: int | None,
                    now: int | None) -> None:
        """The offers at the instant starting at ``seq[i]``: their latest earlier instant
        went from ``was`` to ``now`` (None: none); recount those whose status changed."""
        if i >= len(seq):
            return
        t = seq[i][0]
        w = self.window_us
        before = was is not None and was >= t - w
        after = now is not None and now >= t - w
        if before == after:
            return
        sign = 1 if after else -1
        while i < len(seq) and seq[i][0] == t:
            self._count(t, seq[i][1], seq[i][2], sign)
            i += 1

    def _add(self, offer: Offer) -> None:
        customer, ts, queue, channel = offer
        seq = self.customers.get(customer)
        if seq is None:
            seq = self.customers[customer] = []
        item = (ts, queue, channel)
        lo = bisect_left(seq, (ts,))  # the first offer at ts or later
        prev = seq[lo - 1][0] if lo > 0 else None
        if prev is not None and prev >= ts - self.window_us:
            self._count(ts, queue, channel, 1)
        if lo == len(seq) or seq[lo][0] != ts:  # a new instant: the next one looks back to it
            self._next_group(seq, lo, prev, ts)
        insort(seq, item)

    def _remove(self, offer: Offer) -> None:
        customer, ts, queue, channel = offer
        seq = self.customers[customer]
        i = bisect_left(seq, (ts, queue, channel))
        del seq[i]
        lo = bisect_left(seq, (ts,))
        prev = seq[lo - 1][0] if lo > 0 else None
        if prev is not None and prev >= ts - self.window_us:
            self._count(ts, queue, channel, -1)
        if lo == len(seq) or seq[lo][0] != ts:  # its instant is gone
            self._next_group(seq, lo, ts, prev)
        if not seq:
            del self.customers[customer]

    def cells(self, minute: int) -> dict[CellKey, A.Agg] | None:
        """The repeat counts of one minute as cells of the roll-up (None: none)."""
        per = self.counts.get(minute)
        if not per:
            return None
        out: dict[CellKey, A.Agg] = {}
        for (queue, channel), n in per.items():
            agg = A.initialize()
            agg[A.REPEATS] = n
            out[(queue, channel, "", "")] = agg
        return out

    def take_dirty(self) -> set[int]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    def expire(self, horizon: int) -> None:
        """Forget offers before ``horizon`` (their minutes' counts go too)."""
        limit = horizon // MINUTE_US
        for key in [k for k in self._held if k[1] < limit]:
            self.replace(key[0], key[1], None)


def wire(offers: list[Offer]) -> list[list[Any]]:
    return [list(o) for o in offers]


def unwire(data: list[list[Any]]) -> list[Offer]:
    return [(c, ts, q, ch) for c, ts, q, ch in data]
