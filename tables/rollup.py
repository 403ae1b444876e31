"""Rolling windows over minute buckets, and the roll-up of cells to scopes.

Per event only one *cell* ``(queue, channel, agent)`` of one minute bucket is
touched (:mod:`tables.state`). Cells are folded in here in batches: into the
minute store, and into a running sum per window and cell for the minute the
clock is in. When the clock moves on, the minutes that leave a window are
subtracted and the ones that enter are added::

    clock minute 100 -> 102, window 5m
    before:   [96 97 98 99 100]
    after:          [98 99 100 101 102]
    subtract 96, 97 (left)        add 101, 102 (entered: events stamped
                                  ahead of the clock within the skew)

A late cell for a minute still inside a window is added to the running sum
at once; one older than every window is dropped. Scopes (all, queue:*,
channel:*, agent:*) are summed from the running cells only when a snapshot
is read, so a busy minute costs one merge per touched cell, not per scope.
The per-scope sums are kept too, and a snapshot brings them up to date from the
cells that changed since the last one (``pending``, one delta per cell), not from
every running cell: a whole day of an 800-agent center is ~35,000 running cells,
a second of it a few hundred. The clock's own minute is in every window and is the
one partitions rewrite after every batch: its changes collect in one delta
(``fresh``) that goes into each window's sums when they are read or the clock moves,
not into every window at every rewrite. Everything is a sum, so the result equals merging
the window's minutes from scratch, which ``tests/test_rollup.py`` checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from tables import aggregate as A
from tables.agents import AGENT_TIME, QUEUE_TIME
from tables.entities import NO_AGENT, NO_PRODUCT, CellKey, Cells, Config
from tables.windows import MINUTE_US

ALL: Final = "all"
ScopeAggs = dict[str, A.Agg]
CellAggs = dict[CellKey, A.Agg]


def scopes_of(queue: str, channel: str, agent: str, product: str) -> tuple[str, ...]:
    """The scopes a cell counts in (contract section 6)."""
    if channel == AGENT_TIME:  # an agent's time in states: the center and the agent
        return (ALL, "agent:" + agent)
    if channel == QUEUE_TIME:  # the same time, for one queue of the interval's list
        return ("queue:" + queue,)
    out: tuple[str, ...] = (ALL, "queue:" + queue, "channel:" + channel)
    if agent != NO_AGENT:
        out += ("agent:" + agent,)
    if product != NO_PRODUCT:
        out += ("product:" + product,)
    return out


def _fold(dst: CellAggs, src: CellAggs, op: Callable[[A.Agg, A.Agg], None]) -> None:
    for key, agg in src.items():
        tgt = dst.get(key)
        if tgt is None:
            tgt = dst[key] = A.initialize()
        op(tgt, agg)


def _changed(old: CellAggs, new: CellAggs) -> tuple[CellAggs, CellAggs]:
    """The cells of ``old`` and ``new`` that differ (a cell missing on one side counts)."""
    gone = {k: agg for k, agg in old.items() if new.get(k) != agg}
    came = {k: agg for k, agg in new.items() if old.get(k) != agg}
    return gone, came


class Rollup:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        #: minute -> partition -> cell -> aggregate
        self.minutes: dict[int, dict[int, CellAggs]] = {}
        self.running: dict[str, CellAggs] = {w.name: {} for w in cfg.windows}
        #: per window: scope -> the sum of its running cells, as of the last ``windows``
        self.scoped: dict[str, ScopeAggs] = {w.name: {} for w in cfg.windows}
        #: per window: cell -> what changed in its running sum since then
        self.pending: dict[str, CellAggs] = {w.name: {} for w in cfg.windows}
        #: the clock minute ``running`` is valid for (None: not built yet)
        self.at: int | None = None
        #: cell -> what changed in the clock minute since ``running`` and ``pending`` last
        #: took it in (see ``_to_running``)
        self.fresh: CellAggs = {}
        self._scopes: dict[CellKey, tuple[str, ...]] = {}

    # --- feeding --------------------------------------------------------------------------------
    def add_cells(self, cells: Cells, sign: int = 1, partition: int = 0) -> None:
        """Fold cell aggregates in (``sign=-1`` takes them back out). ``cells`` is consumed."""
        op = A.merge if sign > 0 else A.subtract
        at = self.at
        for minute, per_cell in cells.items():
            if at is not None and minute <= at - self.cfg.largest_window:
                continue  # older than every window: nothing will ever read it
            parts = self.minutes.get(minute)
            if parts is None:
                parts = self.minutes[minute] = {}
            store = parts.get(partition)
            if store is None:
                if at is None and sign > 0:
                    # Nothing running yet (replay, start-up): hand the dict over as is.
                    parts[partition] = per_cell
                    continue
                store = parts[partition] = {}
            _fold(store, per_cell, op)
            self._to_running(minute, per_cell, op)

    def replace(self, partition: int, minute: int, cells: CellAggs | None,
                only: Iterable[CellKey] | None = None) -> None:
        """A partition's absolute cells of one minute (None: gone). The running
        windows move by the difference, so a value seen twice counts once. ``only``: the
        cells that may differ from the ones held (the caller knows; the rest are equal)."""
        parts = self.minutes.get(minute)
        old = parts.pop(partition, None) if parts is not None else None
        if cells is not None and (self.at is None or minute > self.at - self.cfg.largest_window):
            if parts is None:
                parts = self.minutes[minute] = {}
            parts[partition] = cells
            if old:
                # A partition rewrites its current minute after every batch, and a batch
                # touches a few of its cells: only those move the windows.
                if only is None:
                    old, cells = _changed(old, cells)
                else:
                    keys = list(only)
                    old = {k: old[k] for k in keys if k in old}
                    cells = {k: cells[k] for k in keys}
                if old:
                    self._to_running(minute, old, A.subtract, defer=True)
            self._to_running(minute, cells, A.merge, defer=True)
        else:
            if old:
                self._to_running(minute, old, A.subtract, defer=True)
            if parts is not None and not parts:
                del self.minutes[minute]

    def _to_running(self, minute: int, cells: CellAggs, op: Callable[[A.Agg, A.Agg], None],
                    defer: bool = False) -> None:
        at = self.at
        if at is None:
            return
        if defer and minute == at:
            # Every window holds the clock's minute, the one a partition rewrites after
            # every batch: its changes wait in one delta, folded into each window's sums
            # when read. (The replay adds a minute once: no use deferring it.)
            _fold(self.fresh, cells, A.add_delta if op is A.merge else A.subtract)
            return
        for w in self.cfg.windows:
            if w.first(at) <= minute <= at:
                _fold(self.running[w.name], cells, op)
                _fold(self.pending[w.name], cells, A.add_delta if op is A.merge else op)

    # --- windows --------------------------------------------------------------------------------
    def windows(self, clock_us: int) -> dict[str, ScopeAggs]:
        """Per-scope aggregates of every window as of ``clock_us``: new dicts, but the
        aggregates are the roll-up's own: copy one before changing it."""
        self._advance(clock_us // MINUTE_US)
        self._take_fresh()
        out: dict[str, ScopeAggs] = {}
        for name, pending in self.pending.items():
            scopes = self.scoped[name]
            if pending:
                self._to_scopes(scopes, pending, A.add_delta)
                for scope in [s for s, agg in scopes.items() if A.is_zero(agg)]:
                    del scopes[scope]
                self.pending[name] = {}
            out[name] = dict(scopes)
        return out

    def _to_scopes(self, scopes: ScopeAggs, cells: CellAggs,
                   op: Callable[[A.Agg, A.Agg], None]) -> None:
        for key, agg in cells.items():
            sc = self._scopes.get(key)
            if sc is None:
                sc = self._scopes[key] = scopes_of(*key)
            for scope in sc:
                tgt = scopes.get(scope)
                if tgt is None:
                    tgt = scopes[scope] = A.initialize()
                op(tgt, agg)

    def _take_fresh(self) -> None:
        fresh = self.fresh
        if fresh:
            for w in self.cfg.windows:
                _fold(self.running[w.name], fresh, A.add_delta)
                _fold(self.pending[w.name], fresh, A.add_delta)
            self.fresh = {}

    def _advance(self, minute: int) -> None:
        at = self.at
        if at == minute:
            return
        if at is None or minute < at or minute - at >= self.cfg.largest_window:
            self._rebuild(minute)
            return
        self._take_fresh()
        for w in self.cfg.windows:
            run = self.running[w.name]
            old_first, new_first = w.first(at), w.first(minute)
            if new_first < old_first:  # a window that grew backwards: start afresh
                self._rebuild(minute)
                return
            pending = self.pending[w.name]
            self._apply(run, range(old_first, min(new_first, at + 1)), A.subtract)
            self._apply(pending, range(old_first, min(new_first, at + 1)), A.subtract)
            self._apply(run, range(max(at + 1, new_first), minute + 1), A.merge)
            self._apply(pending, range(max(at + 1, new_first), minute + 1), A.add_delta)
            for key in [k for k, agg in run.items() if A.is_zero(agg)]:
                del run[key]
        self.at = minute

    def _apply(
        self, run: CellAggs, minutes: Iterable[int], op: Callable[[A.Agg, A.Agg], None]
    ) -> None:
        for m in minutes:
            parts = self.minutes.get(m)
            if parts:
                for per_cell in parts.values():
                    _fold(run, per_cell, op)

    def _rebuild(self, minute: int) -> None:
        # Newest minute first, one running sum, copied out as each window is complete:
        # every cell is merged once however many windows cover it. The scope sums grow
        # the same way, from each window's new minutes only: windows that cover the same
        # minutes (1 h, today and 24 h early in the day) share one roll-up to scopes.
        ordered = sorted(self.cfg.windows, key=lambda w: -w.first(minute))
        acc: CellAggs = {}
        scoped: ScopeAggs = {}
        done = minute + 1  # minutes >= done are in acc
        for w in ordered:
            first = w.first(minute)
            if first < done:
                seg: CellAggs = {}
                self._apply(seg, range(first, done), A.merge)
                done = first
                if seg:
                    self._to_scopes(scoped, seg, A.merge)
                    if acc:
                        _fold(acc, seg, A.merge)
                    else:
                        acc = seg
            self.running[w.name] = {k: A.copy(v) for k, v in acc.items()}
            self.scoped[w.name] = {k: A.copy(v) for k, v in scoped.items()}
            self.pending[w.name] = {}
        self.fresh = {}  # the minutes hold it already
        self.at = minute

    def expire(self, clock_us: int) -> None:
        """Drop minutes no window can reach any more (older than the largest window)."""
        if self.at is not None:
            self._advance(clock_us // MINUTE_US)
        horizon = clock_us // MINUTE_US - self.cfg.largest_window
        for m in [m for m in self.minutes if m <= horizon]:
            del self.minutes[m]
