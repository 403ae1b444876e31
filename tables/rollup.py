"""Roll-up of cells to scopes, and rolling windows over minute buckets.

Per event only one *cell* ``(bucket, queue, channel, agent)`` is touched
(:mod:`tables.state`). Here cells are folded into per-minute, per-scope
aggregates, and each window keeps a running sum per scope for the minute the
clock is in. When the clock moves on, the minutes that leave a window are
subtracted and the ones that enter are added::

    clock minute 100 -> 102, window 5m
    before:   [96 97 98 99 100]
    after:          [98 99 100 101 102]
    subtract 96, 97 (left)        add 101, 102 (entered: events stamped
                                  ahead of the clock within the skew)

A late cell for a minute still inside a window is added to the running sum
at once; one outside every window only reaches the minute store.
Everything is a sum, so the result equals merging the window's minutes from
scratch (``tests/test_rollup.py`` checks both ways agree).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from tables import aggregate as A
from tables.state import NO_AGENT, CellKey, Config
from tables.windows import MINUTE_US

ALL: Final = "all"
ScopeAggs = dict[str, A.Agg]


def scopes_of(queue: str, channel: str, agent: str) -> tuple[str, ...]:
    base = (ALL, "queue:" + queue, "channel:" + channel)
    return base + ("agent:" + agent,) if agent != NO_AGENT else base


class Rollup:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.minutes: dict[int, ScopeAggs] = {}
        self.running: dict[str, ScopeAggs] = {name: {} for name, _ in cfg.windows}
        #: the clock minute ``running`` is valid for (None: not built yet)
        self.at: int | None = None
        self._scopes: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def _scopes_of(self, key: tuple[str, str, str]) -> tuple[str, ...]:
        s = self._scopes.get(key)
        if s is None:
            s = self._scopes[key] = scopes_of(*key)
        return s

    # --- feeding --------------------------------------------------------------------------------
    def add_cells(self, cells: dict[CellKey, A.Agg], sign: int = 1) -> None:
        """Fold cell aggregates in (``sign=-1`` takes them back out)."""
        op = A.merge if sign > 0 else A.subtract
        at = self.at
        horizon = None if at is None else at - self.cfg.largest_window + 1
        for (minute, queue, channel, agent), agg in cells.items():
            if horizon is not None and minute < horizon:
                continue  # outside every window: nothing will ever read it
            per_min = self.minutes.get(minute)
            if per_min is None:
                per_min = self.minutes[minute] = {}
            scopes = self._scopes_of((queue, channel, agent))
            for scope in scopes:
                tgt = per_min.get(scope)
                if tgt is None:
                    tgt = per_min[scope] = A.initialize()
                op(tgt, agg)
            if at is None:
                continue
            for name, n in self.cfg.windows:
                if at - n < minute <= at:
                    run = self.running[name]
                    for scope in scopes:
                        tgt = run.get(scope)
                        if tgt is None:
                            tgt = run[scope] = A.initialize()
                        op(tgt, agg)

    # --- windows --------------------------------------------------------------------------------
    def windows(self, clock_us: int) -> dict[str, ScopeAggs]:
        """Running per-scope aggregates of every window as of ``clock_us``."""
        self._advance(clock_us // MINUTE_US)
        return self.running

    def _advance(self, minute: int) -> None:
        at = self.at
        if at == minute:
            return
        if at is None or minute < at or minute - at >= self.cfg.largest_window:
            self._rebuild(minute)
            return
        for name, n in self.cfg.windows:
            run = self.running[name]
            self._apply(run, range(at - n + 1, min(minute - n + 1, at + 1)), A.subtract)
            self._apply(run, range(max(at + 1, minute - n + 1), minute + 1), A.merge)
            for scope in [s for s, agg in run.items() if A.is_zero(agg)]:
                del run[scope]
        self.at = minute

    def _apply(self, run: ScopeAggs, minutes: Iterable[int], op: object) -> None:
        for m in minutes:
            per_min = self.minutes.get(m)
            if not per_min:
                continue
            for scope, agg in per_min.items():
                tgt = run.get(scope)
                if tgt is None:
                    tgt = run[scope] = A.initialize()
                op(tgt, agg)  # type: ignore[operator]

    def _rebuild(self, minute: int) -> None:
        for name, n in self.cfg.windows:
            run: ScopeAggs = {}
            self._apply(run, range(minute - n + 1, minute + 1), A.merge)
            self.running[name] = run
        self.at = minute

    def expire(self, clock_us: int) -> None:
        """Drop minutes no window can reach any more (older than the largest window)."""
        self._advance(clock_us // MINUTE_US)
        horizon = clock_us // MINUTE_US - max(
            self.cfg.largest_window, self.cfg.retention_us // MINUTE_US
        )
        for m in [m for m in self.minutes if m <= horizon]:
            del self.minutes[m]
