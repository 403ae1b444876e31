"""CSAT per product: surveys that name a ticket, joined with the ticket's product.

The contract keeps survey KPIs out of product rows (section 6.4): a survey
carries a queue and a channel, not a product. But a post-sales team wants to
know how the customers of a breaking product feel, and a CSAT response that
names its ``ticket_id`` says which ticket, hence which product. This is that
join, shown on the products page beside the snapshot (never in it).

A survey and its ticket are keyed differently, so they sit on different
partitions -- the same problem as repeat contacts (:mod:`tables.repeats`), the
same answer: each partition writes what it knows by minute to the partials
topic (its CSAT responses that name a ticket, by the response's minute; its
tickets with a product, by their opening minute), and every worker's view folds
both into one :class:`ProductCsat`, replaced per partition and minute so a
rebalance or a re-sent batch counts nothing twice. A response is kept by its
event id, so applying it twice (re-processing after a crash) changes nothing.
"""

from __future__ import annotations

from typing import Any

from tables.windows import MINUTE_US

#: a CSAT response naming a ticket: event id -> (ts, ticket, good)
Refs = dict[str, tuple[int, str, bool]]


class CsatRefs:
    """One partition's CSAT responses that name a ticket, by minute."""

    def __init__(self) -> None:
        self.minutes: dict[int, Refs] = {}
        self.dirty: set[int] = set()

    def add(self, event_id: str, ts: int, ticket: str, good: bool) -> None:
        m = ts // MINUTE_US
        self.minutes.setdefault(m, {})[event_id] = (ts, ticket, good)
        self.dirty.add(m)

    def records(self) -> list[list[Any]]:
        return [[eid, ts, t, g] for per in self.minutes.values() for eid, (ts, t, g) in per.items()]

    def load(self, records: list[list[Any]]) -> None:
        for eid, ts, ticket, good in records:
            self.add(eid, ts, ticket, good)

    def wire(self, minute: int) -> list[list[Any]] | None:
        per = self.minutes.get(minute)
        return [[eid, ts, t, g] for eid, (ts, t, g) in sorted(per.items())] if per else None

    def take_dirty(self) -> set[int]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    def expire(self, horizon: int) -> None:
        for m in [m for m in self.minutes if m < horizon // MINUTE_US]:
            del self.minutes[m]
            self.dirty.add(m)


class TicketProducts:
    """One partition's tickets opened with a product, by opening minute (derived from the
    tickets themselves, so a restore rebuilds it)."""

    def __init__(self) -> None:
        self.minutes: dict[int, dict[str, str]] = {}
        self.dirty: set[int] = set()

    def put(self, ticket: str, opened: int, product: str) -> None:
        m = opened // MINUTE_US
        self.minutes.setdefault(m, {})[ticket] = product
        self.dirty.add(m)

    def drop(self, ticket: str, opened: int) -> None:
        m = opened // MINUTE_US
        per = self.minutes.get(m)
        if per is not None and per.pop(ticket, None) is not None:
            if not per:
                del self.minutes[m]
            self.dirty.add(m)

    def wire(self, minute: int) -> list[list[str]] | None:
        per = self.minutes.get(minute)
        return sorted([t, p] for t, p in per.items()) if per else None

    def take_dirty(self) -> set[int]:
        dirty, self.dirty = self.dirty, set()
        return dirty


class ProductCsat:
    """The whole center's join: CSAT per product over any range of minutes."""

    def __init__(self) -> None:
        self._refs: dict[tuple[int, int], list[list[Any]]] = {}
        self._products: dict[tuple[int, int], list[list[str]]] = {}
        self.product_of: dict[str, str] = {}

    def replace_refs(self, partition: int, minute: int, refs: list[list[Any]] | None) -> None:
        if refs:
            self._refs[(partition, minute)] = refs
        else:
            self._refs.pop((partition, minute), None)

    def replace_products(self, partition: int, minute: int,
                         pairs: list[list[str]] | None) -> None:
        for ticket, _ in self._products.pop((partition, minute), ()):
            self.product_of.pop(ticket, None)
        if pairs:
            self._products[(partition, minute)] = pairs
            for ticket, product in pairs:
                self.product_of[ticket] = product

    def counts(self, first_minute: int, last_minute: int) -> dict[str, tuple[int, int]]:
        """product -> (CSAT responses, good ones) of the responses in the minutes."""
        out: dict[str, tuple[int, int]] = {}
        for (_, minute), refs in self._refs.items():
            if not first_minute <= minute <= last_minute:
                continue
            for _, _, ticket, good in refs:
                product = self.product_of.get(ticket)
                if product is not None:
                    n, g = out.get(product, (0, 0))
                    out[product] = (n + 1, g + (1 if good else 0))
        return out

    def expire(self, horizon_minute: int) -> None:
        for key in [k for k in self._refs if k[1] < horizon_minute]:
            del self._refs[key]
