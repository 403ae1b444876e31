"""Interval reports (contract v2 §8): every bucketed KPI per local interval and scope.

A report cuts time into intervals of 15m, 30m, 1h or 1d aligned to the
center's local clock (:meth:`tables.calendar.Calendar.interval_start`); an
interval covers the buckets from its start's up to the one before the next
start's, and has a row for each scope with a measurement in it::

    30m, Europe/Madrid           06:00+01  06:30+01  07:00+01  07:30+01
    buckets (UTC minutes)        |05:00 ... 05:29|05:30 ... 05:59|06:00 ...
    rows                         one per scope with a measurement in the interval

Offline the report reads its input like the replay (same pipeline, same
checks, same clock) and streams: an interval is *final* once it ends before
the clock minus the retention, because no event older than that is accepted
any more -- and time in agent states is moved into cells up to that same
horizon as the clock passes it (:meth:`tables.agents.AgentBook.settle`). So
memory holds the last day of intervals and the state, not the whole input.
At the end of the input the rest is flushed, open agent intervals counted up
to the clock. The live worker's ``/api/intervals`` builds today's intervals
from its whole-center view with the same :func:`interval_rows`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tables import aggregate as A
from tables import kpis
from tables.agents import overlay
from tables.clock import Clock, EventClock, FixedClock
from tables.entities import CellKey, Cells, Config
from tables.repeats import RepeatIndex
from tables.rollup import scopes_of
from tables.snapshot import scope_order
from tables.state import PartitionState
from tables.windows import MINUTE_US

Row = dict[str, Any]
#: minute -> the cells of that minute (every partition's, repeats included)
MinuteCells = Callable[[int], list[dict[CellKey, A.Agg]]]


def interval_rows(
    cfg: Config,
    starts: list[int],
    ends: list[int],
    cells_of: MinuteCells,
    agents: list[list[Any]],
    clock: int,
) -> list[Row]:
    """The report rows of the intervals ``[starts[i], ends[i])``: cells of their buckets,
    plus the time of open agent intervals up to ``clock``."""
    names = [str(i) for i in range(len(starts))]
    per: dict[str, dict[str, A.Agg]] = {name: {} for name in names}
    for name, start, end in zip(names, starts, ends, strict=True):
        scopes = per[name]
        for minute in range(start // MINUTE_US, -(-end // MINUTE_US)):
            for cells in cells_of(minute):
                _fold_scopes(scopes, cells)
    overlay(per, list(zip(names, starts, ends, strict=True)), agents, clock)
    rows: list[Row] = []
    ctx = kpis.Context(hourly_cost=cfg.defs.agent_hourly_cost)
    cal = cfg.calendar
    for name, start, end in zip(names, starts, ends, strict=True):
        scopes = per[name]
        head = {"interval_start": cal.local_iso(start), "interval_end": cal.local_iso(end)}
        for scope in sorted((s for s, a in scopes.items() if A.has_measurement(a)),
                            key=scope_order):
            rows.append({**head, "scope": scope,
                         **kpis.bucketed_row(scopes[scope], kpis.scope_kind(scope), ctx)})
    return rows


def _fold_scopes(scopes: dict[str, A.Agg], cells: dict[CellKey, A.Agg]) -> None:
    for key, agg in cells.items():
        for scope in scopes_of(*key):
            tgt = scopes.get(scope)
            if tgt is None:
                tgt = scopes[scope] = A.initialize()
            A.merge(tgt, agg)


class ReportEngine:
    """The replay's pipeline, cutting what it measures into local intervals as it goes."""

    def __init__(self, cfg: Config, interval: str, at_us: int | None = None) -> None:
        self.cfg = cfg
        self.interval = interval
        cfg.calendar.interval_start(0, interval)  # an unknown interval fails here
        self.clock: Clock = (
            FixedClock(cfg.retention_us, cfg.skew_us, at_us)
            if at_us is not None
            else EventClock(cfg.retention_us, cfg.skew_us)
        )
        self.state = PartitionState(cfg)
        self.state.agents.clip = False  # every minute is read, however old
        self.repeats = RepeatIndex(cfg.defs.repeat_window_us)
        self.minutes: Cells = {}
        self._now = self.clock.now
        self._minute = -1

    def feed(self, raw: bytes) -> None:
        self.state.feed(raw, self.clock)

    def feed_lines(self, lines: list[bytes]) -> Iterator[Row]:
        """JSONL lines (as the replay takes them); yields the rows that became final."""
        feed = self.state.feed
        clock = self.clock
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line or line.isspace():
                continue
            feed(line, clock)
            now = clock.now
            if now != self._now:
                self._now = now
                if now // MINUTE_US != self._minute:
                    self._minute = now // MINUTE_US
                    yield from self._tick(now)

    def _collect(self) -> None:
        for minute, cells in self.state.take_cells().items():
            store = self.minutes.setdefault(minute, {})
            for k, agg in cells.items():
                tgt = store.get(k)
                if tgt is None:
                    store[k] = agg
                else:
                    A.merge(tgt, agg)
        offers = self.state.contacts.offers
        for minute in self.state.contacts.take_offer_minutes():
            self.repeats.replace(0, minute, offers.get(minute))

    def _cells_of(self, minute: int) -> list[dict[CellKey, A.Agg]]:
        out = []
        cells = self.minutes.get(minute)
        if cells:
            out.append(cells)
        rep = self.repeats.cells(minute)
        if rep:
            out.append(rep)
        return out

    def _tick(self, clock: int) -> Iterator[Row]:
        horizon = clock - self.cfg.retention_us
        self.state.agents.settle(horizon)
        self._collect()
        yield from self._flush(horizon, clock, final=True)
        self.state.expire(clock)
        self.repeats.expire(horizon - self.cfg.defs.repeat_window_us)

    def _flush(self, horizon: int, clock: int, final: bool) -> Iterator[Row]:
        """Rows of the intervals with cells that end at or before ``horizon``; at the end
        (not ``final``), every interval up to the clock, open agent time included."""
        cal, interval = self.cfg.calendar, self.interval
        agents = [] if final else self.state.agents.live()
        open_starts = [e[3] for e in agents if e[1] != "offline" and e[3] < clock]
        while self.minutes or (not final and open_starts):
            firsts: list[int] = []
            if self.minutes:
                firsts.append(min(self.minutes) * MINUTE_US)
            if not final:
                firsts += open_starts
            start = cal.interval_start(min(firsts), interval)
            end = cal.next_interval_start(start, interval)
            if final and end > horizon:
                return
            yield from interval_rows(self.cfg, [start], [end], self._cells_of, agents, clock)
            for minute in [m for m in self.minutes if m * MINUTE_US < end]:
                del self.minutes[minute]
            open_starts = [max(s, end) for s in open_starts if end <= clock]

    def finish(self) -> Iterator[Row]:
        """Everything left, open agent intervals counted up to the clock."""
        if not self.clock.seen():
            return
        clock = self.clock.now
        self._collect()
        yield from self._flush(clock, clock, final=False)
