"""Agent states (contract v2 §3, §6.2): each agent's intervals, and time in state per minute.

An agent's state is a step function of event time. Each accepted
``agent_state`` that changes the state or the queue list closes the current
*interval* at its ``ts`` and opens a new one; one that changes neither is
still accepted (it moves the clock, its id is remembered, it is the previous
event for ``out_of_order``) but changes no interval. Any state may follow any
state: there is no ``unknown_entity`` here.

Time is spread over the 1-minute buckets an interval overlaps, in exact
integer microseconds, into two kinds of cells::

    interval [05:58:25, 06:02:25) busy, queues [billing, tech], agent ann
    bucket   05:58    05:59   06:00   06:01   06:02
    time     35 s     60 s    60 s    60 s    25 s     -> ("", AGENT_TIME, "ann", "")
                                                        -> ("billing", QUEUE_TIME, "", "")
                                                        -> ("tech",    QUEUE_TIME, "", "")

The first counts in ``all`` and ``agent:ann``, the others in one queue each
(:func:`scopes_of` in :mod:`tables.rollup`). A closed interval goes into
cells when the event that closes it is applied, so the live changelog stores
it exactly like any other measurement. The interval still open is not in any
cell: it runs up to the clock, which only the snapshot knows, so
:func:`overlay` adds it then -- a state held for an hour fills 60 buckets
without one event per minute. Time after the clock never counts: an interval
closed by an event stamped ahead of the clock (within the skew) is kept in the
agent's ``recent`` list until the clock has passed its end, and :func:`overlay`
takes its part after the clock back out.
"""

from __future__ import annotations

from typing import Any, Final

from tables import aggregate as A
from tables.cells import CellBuffer, Journal
from tables.clock import UNSET
from tables.events import OUT_OF_ORDER, AgentState
from tables.windows import MINUTE_US

KIND: Final = "a"
#: the channel field of an agent-time cell (no real channel can take these values)
AGENT_TIME: Final = "~agent"
QUEUE_TIME: Final = "~queue"
OFFLINE: Final = "offline"
STATE_SLOT: Final = {
    "available": A.AVAILABLE_US,
    "busy": A.BUSY_US,
    "wrap_up": A.WRAP_UP_US,
    "paused": A.PAUSED_US,
}
#: live counts per scope, in this order
COUNTED: Final = ("available", "busy", "wrap_up", "paused")

#: how far behind the clock an interval's end must be to need no correction at a snapshot
RECENT_MARGIN_US: Final = 5_000_000

#: a closed interval: start, end, state, queues
Interval = tuple[int, int, str, tuple[str, ...]]


class Agent:
    __slots__ = ("state", "queues", "start", "state_since", "last", "recent", "upto")

    def __init__(self) -> None:
        self.state = OFFLINE  # the state before the first accepted agent_state
        self.queues: tuple[str, ...] = ()
        #: start of the part of the current interval not yet in any cell
        self.start = UNSET
        #: start of the current state (UNSET: no agent_state ever set it)
        self.state_since = UNSET
        #: ts of the last accepted agent_state (out_of_order compares with it)
        self.last = UNSET
        #: closed intervals that may still end after some snapshot's clock
        self.recent: list[Interval] = []
        self.upto = -1

    def to_wire(self) -> list[Any]:
        return [
            self.state,
            list(self.queues),
            self.start,
            self.state_since,
            self.last,
            [[s, e, st, list(q)] for s, e, st, q in self.recent],
            self.upto,
        ]

    @classmethod
    def from_wire(cls, w: list[Any]) -> Agent:
        a = cls()
        a.state, a.queues, a.start, a.state_since, a.last = w[0], tuple(w[1]), w[2], w[3], w[4]
        a.recent = [(s, e, st, tuple(q)) for s, e, st, q in w[5]]
        a.upto = w[6]
        return a


def spread(buffer: CellBuffer, agent: str, start: int, end: int, state: str,
           queues: tuple[str, ...], sign: int = 1) -> None:
    """Time of ``[start, end)`` in ``state`` into the buckets it overlaps (``sign=-1``
    takes it back out)."""
    slot = STATE_SLOT.get(state)
    if slot is None or end <= start:  # offline, or nothing
        return
    t = start
    while t < end:
        nxt = min(end, (t // MINUTE_US + 1) * MINUTE_US)
        dur = (nxt - t) * sign
        cell = buffer.at(t, "", AGENT_TIME, agent, "")
        cell[A.STAFFED_US] += dur
        cell[slot] += dur
        for q in queues:
            qc = buffer.at(t, q, QUEUE_TIME, "", "")
            qc[A.STAFFED_US] += dur
            qc[slot] += dur
        t = nxt


class AgentBook:
    def __init__(self, skew_us: int, buffer: CellBuffer, journal: Journal) -> None:
        self.skew_us = skew_us
        self.buffer = buffer
        self.journal = journal
        self.agents: dict[str, Agent] = {}
        #: minutes before this are never written (older than every window); None: all
        self.floor_minute: int | None = None
        #: False for the interval report, which reads every minute however old
        self.clip = True

    def state(self, ev: AgentState, ts: int, clock: int) -> str | None:
        aid = ev.agent_id
        a = self.agents.get(aid)
        if a is None:
            a = self.agents[aid] = Agent()
        elif ts < a.last:
            return OUT_OF_ORDER
        queues = a.queues if ev.queues is None else tuple(sorted(set(ev.queues)))
        first = a.last == UNSET
        a.last = ts
        if ev.state != a.state or queues != a.queues:
            if a.state != OFFLINE and a.start != UNSET:
                self._close(aid, a, a.start, ts)
            if ev.state != a.state or first:
                a.state_since = ts
            a.state, a.queues, a.start = ev.state, queues, ts
        elif first:
            a.state_since = ts
        # An interval that ended before the clock counts whole at any later snapshot:
        # only those that may end after some snapshot's clock are kept (a margin for
        # workers whose wall clocks differ a little).
        cutoff = clock - RECENT_MARGIN_US
        if a.recent and a.recent[0][1] <= cutoff:
            a.recent = [iv for iv in a.recent if iv[1] > cutoff]
        self.journal.touch(KIND, aid, a)
        return None

    def _close(self, aid: str, a: Agent, start: int, end: int) -> None:
        a.recent.append((start, end, a.state, a.queues))
        floor = self.floor_minute
        if floor is not None:
            start = max(start, floor * MINUTE_US)
        spread(self.buffer, aid, start, end, a.state, a.queues)

    def settle(self, horizon: int) -> None:
        """Move the time of open intervals before ``horizon`` into cells (the interval
        report: no later event can change the past beyond the retention)."""
        for aid, a in self.agents.items():
            if a.state != OFFLINE and a.start != UNSET and a.start < horizon:
                spread(self.buffer, aid, a.start, horizon, a.state, a.queues)
                a.start = horizon

    def live(self) -> list[list[Any]]:
        """Every agent whose state was ever set: what the now rows and the open-interval
        overlay need (clock-free)."""
        return [
            [aid, a.state, list(a.queues), a.start, a.state_since,
             [[s, e, st, list(q)] for s, e, st, q in a.recent]]
            for aid, a in self.agents.items()
            if a.state_since != UNSET
        ]

    # --- changelog records ------------------------------------------------------------------------
    def record(self, aid: str) -> list[Any]:
        a = self.agents.get(aid)
        return [KIND, aid, a.to_wire() if a is not None else None]

    def records(self) -> list[list[Any]]:
        return [[KIND, k, a.to_wire()] for k, a in self.agents.items()]

    def load(self, aid: str, wire: list[Any] | None) -> None:
        if wire is None:
            self.agents.pop(aid, None)
        else:
            self.agents[aid] = Agent.from_wire(wire)


def overlap(start: int, end: int, lo: int, hi: int) -> int:
    return max(0, min(end, hi) - max(start, lo))


def pieces(
    agent: list[Any], lo: int, hi: int, clock: int
) -> list[tuple[str, tuple[str, ...], int]]:
    """What an agent's live entry adds to ``[lo, hi)`` as of ``clock``, as
    ``(state, queues, microseconds)``: its open interval up to the clock (positive),
    and the part after the clock of recent closed intervals (negative: the cells hold
    all of them, the contract counts none of it yet)."""
    _, state, queues, start, _, recent = agent
    out: list[tuple[str, tuple[str, ...], int]] = []
    if state != OFFLINE and start != UNSET:
        d = overlap(start, clock, lo, hi)
        if d:
            out.append((state, tuple(queues), d))
    for s, e, st, q in recent:
        if e > clock and st != OFFLINE:
            d = overlap(max(s, clock), e, lo, hi)
            if d:
                out.append((st, tuple(q), -d))
    return out


def overlay(
    windows: dict[str, dict[str, A.Agg]],
    spans: list[tuple[str, int, int]],
    entries: list[list[Any]],
    clock: int,
) -> None:
    """Add the time of open intervals up to ``clock`` (and take back the part after it of
    recent closed ones) to per-scope aggregates: ``windows[name][scope]`` for each
    ``(name, lo, hi)`` of ``spans``, the time range each covers."""
    for name, lo, hi in spans:
        scopes = windows.setdefault(name, {})
        # the aggregates may be the roll-up's own (Rollup.windows): changed on a copy
        mine: set[str] = set()
        for entry in entries:
            aid = entry[0]
            for state, queues, d in pieces(entry, lo, hi, clock):
                slot = STATE_SLOT[state]
                for scope in ("all", "agent:" + aid, *("queue:" + q for q in queues)):
                    if scope not in mine:
                        mine.add(scope)
                        old = scopes.get(scope)
                        scopes[scope] = A.initialize() if old is None else A.copy(old)
                    agg = scopes[scope]
                    agg[A.STAFFED_US] += d
                    agg[slot] += d
