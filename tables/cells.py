"""Where measurements go, and what the live changelog must store: shared by the entity books.

Each event that counts adds to exactly one *cell* of one minute bucket: the
finest grain ``(queue, channel, agent, product)`` of the contract's scopes
(:class:`CellBuffer`). Scopes are summed from cells only when a snapshot is
read (:mod:`tables.rollup`), never per event.

The :class:`Journal` records, while the live worker runs, which entities a
batch changed (and stamps them with the input offset that changed them) and
which event ids it saw, so a batch's changelog write is one redo log instead
of one write per event. Offline it stays off and costs one attribute test.
"""

from __future__ import annotations

from typing import Any

from tables import aggregate as A
from tables.entities import CellKey, Cells
from tables.windows import MINUTE_US


class CellBuffer:
    """Measurements not yet rolled up: minute -> cell -> aggregate delta."""

    def __init__(self) -> None:
        self.cells: Cells = {}
        self._minute = -1
        self._map: dict[CellKey, A.Agg] = {}

    def at(self, ts: int, queue: str, channel: str, agent: str, product: str = "") -> A.Agg:
        """The aggregate of the cell an event at ``ts`` measures into."""
        minute = ts // MINUTE_US
        if minute != self._minute:  # most events fall in the same minute as the last one
            per_min = self.cells.get(minute)
            if per_min is None:
                per_min = self.cells[minute] = {}
            self._minute, self._map = minute, per_min
        key = (queue, channel, agent, product)
        cell = self._map.get(key)
        if cell is None:
            cell = self._map[key] = A.initialize()
        return cell

    def take(self) -> Cells:
        cells, self.cells = self.cells, {}
        self._minute = -1
        return cells

    def swap(self, cells: Cells) -> Cells:
        """Put ``cells`` in place and hand back what was there (isolated re-processing)."""
        old, self.cells = self.cells, cells
        self._minute = -1
        return old

    def add(self, cells: Cells) -> None:
        """Merge cell deltas in."""
        for minute, per_min in cells.items():
            store = self.cells.get(minute)
            if store is None:
                store = self.cells[minute] = {}
            for k, agg in per_min.items():
                tgt = store.get(k)
                if tgt is None:
                    store[k] = agg
                else:
                    A.merge(tgt, agg)
        self._minute = -1


class Journal:
    """Entities changed and ids first seen since the last :meth:`take` (live only)."""

    def __init__(self) -> None:
        self.active = False
        #: input offset of the message being applied: stamped on the entities it changes
        self.offset = -1
        self.dirty: set[tuple[str, str]] = set()
        self.ids: list[tuple[str, int]] = []
        #: offers with a customer, (customer, ts, queue, channel): repeat contacts' input
        self.offers: list[tuple[str, int, str, str]] = []
        #: CSAT responses naming a ticket, [event id, ts, ticket, good]: CSAT per product
        self.refs: list[list[Any]] = []

    def start(self) -> None:
        self.active = True
        self.dirty, self.ids, self.offers, self.refs = set(), [], [], []

    def touch(self, kind: str, key: str, entity: Any) -> None:
        if self.active:
            self.dirty.add((kind, key))
            if entity is not None:
                entity.upto = self.offset

    def seen(self, event_id: str, ts: int) -> None:
        if self.active:
            self.ids.append((event_id, ts))

    def offer(self, offer: tuple[str, int, str, str]) -> None:
        if self.active:
            self.offers.append(offer)

    def ref(self, ref: list[Any]) -> None:
        if self.active:
            self.refs.append(ref)

    def take(
        self,
    ) -> tuple[set[tuple[str, str]], list[tuple[str, int]], list[tuple[str, int, str, str]]]:
        dirty, ids, offers = self.dirty, self.ids, self.offers
        self.dirty, self.ids, self.offers = set(), [], []
        return dirty, ids, offers

    def take_refs(self) -> list[list[Any]]:
        refs, self.refs = self.refs, []
        return refs
