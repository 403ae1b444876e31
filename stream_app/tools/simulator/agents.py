"""The agents on the floor: shifts, breaks, and who takes the next contact.

An agent's ``agent_state`` events must tell the same story as the contacts it
handles (busy exactly from its answer to its close, never two contacts at once,
never a contact while paused or logged out), or the occupancy and per-agent KPIs
built on them are fiction. So the agent is a small state machine driven by the same
event queue as the contacts, and every state change is emitted where it happens:

- login at the shift start (``available`` with its queue list), logout at the end;
- breaks, lunch, trainings and meetings (``paused`` with a reason) at planned times,
  but only between contacts: one that falls due during a contact starts when the
  wrap-up ends, and so does a logout;
- the routing rule of a plain ACD: a contact goes to the agent that has been idle
  longest among those serving its queue; a freed agent takes the contact that has
  waited longest among its queues (FIFO per queue).

``AgentFloor`` is mixed into the generator and shares its scheduler and random source.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from orjson import dumps

from stream_app.tools.simulator import staffing
from stream_app.tools.simulator.backoffice import Contact
from stream_app.tools.simulator.bad import WAITING
from stream_app.tools.simulator.staffing import DAY, EXTRA_PAUSE_P, EXTRA_REASONS, Shift

OFFLINE, AVAILABLE, BUSY, WRAP_UP, PAUSED = range(5)  # offline is 0: falsy = logged out
LOGOUT = "logout"  # the pending action that beats a pending break
BREAK_JITTER = 20 * 60  # s either way: breaks are staggered, not all at :00
LOGIN_EARLY, LOGIN_LATE = 5 * 60, 3 * 60
LOGOUT_EARLY, LOGOUT_LATE = 3 * 60, 8 * 60


class Agent:
    __slots__ = ("id", "queues", "shift", "speed", "mood", "state", "contact", "pending",
                 "pause_seq", "day", "last_ts", "tails", "paused_tails")

    def __init__(self, num: int, queues: tuple[int, ...], queue_names: list[str],
                 shift: Shift, speed: float, mood: float):
        self.id = f"agent-{num:03d}"
        self.queues, self.shift, self.speed, self.mood = queues, shift, speed, mood
        self.state = OFFLINE
        self.contact: Contact | None = None
        self.pending: tuple[float, str] | str | None = None
        self.pause_seq = 0
        self.day = 0.0  # nominal start of the current (or next) shift
        self.last_ts = -1.0  # of its last agent_state, for the out_of_order bad events
        # The state payloads never change: serialised once, spliced into each event.
        tail = {"agent_id": self.id, "state": ""}
        self.tails = [dumps({**tail, "state": s})[1:]
                      for s in ("offline", "available", "busy", "wrap_up")]
        self.tails.append(dumps({**tail, "state": "available",
                                 "queues": [queue_names[q] for q in queues]})[1:])
        self.paused_tails: dict[str, bytes] = {}

    def paused_tail(self, reason: str) -> bytes:
        tail = self.paused_tails.get(reason)
        if tail is None:
            tail = self.paused_tails[reason] = dumps(
                {"agent_id": self.id, "state": "paused", "reason": reason})[1:]
        return tail


LOGIN_TAIL = 4  # index in Agent.tails


class AgentFloor:
    """Mixin: agent steps (``_login``, ``_break``, ``_wrap_end``, ...) and routing."""

    # Provided by the generator.
    rng: random.Random
    agents: list[Agent]
    waiting: list[deque[Contact]]
    idle: list[OrderedDict[Agent, None]]
    _push: Callable[[float, int, Any], None]
    _emit_raw: Callable[[float, str, bytes], None]
    _answer: Callable[[float, Contact, Agent], None]
    LOGIN: int
    BREAK: int
    BREAK_END: int
    LOGOUT_: int

    def _state(self, t: float, agent: Agent, tail: bytes) -> None:
        agent.last_ts = t
        self._emit_raw(t, "agent_state", tail)

    # ---------------------------------------------------------------- shifts
    def _open_floor(self, t0: float) -> None:
        """Agents whose shift covers the start log in at once; the others when due."""
        rng = self.rng
        for agent in self.agents:
            shift = agent.shift
            day = (t0 - shift.start) // DAY * DAY + shift.start  # latest nominal start <= t0
            if t0 < day + shift.length:
                agent.day = day
                self._push(t0, self.LOGIN, agent)
            else:
                agent.day = day + DAY
                self._push(max(t0, agent.day - rng.uniform(-LOGIN_LATE, LOGIN_EARLY)),
                           self.LOGIN, agent)

    def _login(self, t: float, agent: Agent) -> None:
        rng, day, shift = self.rng, agent.day, agent.shift
        if rng.random() < staffing.ABSENCE_P:  # not coming today: try again tomorrow
            agent.day += DAY
            self._push(agent.day - rng.uniform(-LOGIN_LATE, LOGIN_EARLY), self.LOGIN, agent)
            return
        agent.state, agent.pending = AVAILABLE, None
        self._state(t, agent, agent.tails[LOGIN_TAIL])
        for off, length, reason in shift.breaks:
            due = day + off + rng.uniform(-BREAK_JITTER, BREAK_JITTER)
            if due + length > t:  # a shift under way when the stream starts: what is left
                self._push(max(due, t), self.BREAK, (agent, due + length - max(due, t), reason))
        if rng.random() < EXTRA_PAUSE_P:
            due = day + rng.uniform(3600, max(3600, shift.length - 5400))
            if due > t:
                length = rng.choice((1800, 2700, 3600))
                self._push(due, self.BREAK, (agent, length, rng.choice(EXTRA_REASONS)))
        end = day + shift.length + rng.uniform(-LOGOUT_EARLY, LOGOUT_LATE)
        self._push(max(end, t + 60), self.LOGOUT_, agent)
        self._ready(t, agent)

    def _logout(self, t: float, agent: Agent) -> None:
        state = agent.state
        if state in (BUSY, WRAP_UP):
            agent.pending = LOGOUT  # after this contact's wrap-up
        elif state:
            if state == AVAILABLE:
                self._unidle(agent)
            self._offline(t, agent)

    def _offline(self, t: float, agent: Agent) -> None:
        agent.state, agent.pending = OFFLINE, None
        agent.pause_seq += 1  # a break still running ends here: its end step is void
        self._state(t, agent, agent.tails[OFFLINE])
        agent.day += DAY
        login = agent.day - self.rng.uniform(-LOGIN_LATE, LOGIN_EARLY)
        self._push(max(login, t + 60), self.LOGIN, agent)

    # ---------------------------------------------------------------- breaks
    def _break(self, t: float, item: tuple[Agent, float, str]) -> None:
        agent, length, reason = item
        state = agent.state
        if state == AVAILABLE:
            self._unidle(agent)
            self._pause(t, agent, length, reason)
        elif state in (BUSY, WRAP_UP) and agent.pending is None:
            agent.pending = (length, reason)
        # paused already (a late break runs into the next one) or offline: skipped

    def _pause(self, t: float, agent: Agent, length: float, reason: str) -> None:
        agent.state = PAUSED
        agent.pause_seq += 1
        self._state(t, agent, agent.paused_tail(reason))
        self._push(t + length, self.BREAK_END, (agent, agent.pause_seq))

    def _break_end(self, t: float, item: tuple[Agent, int]) -> None:
        agent, seq = item
        if agent.state == PAUSED and agent.pause_seq == seq:
            agent.state = AVAILABLE
            self._state(t, agent, agent.tails[AVAILABLE])
            self._ready(t, agent)

    # ---------------------------------------------------------------- contacts
    def _wrap_end(self, t: float, agent: Agent) -> None:
        agent.contact = None
        pending = agent.pending
        if pending is None:
            agent.state = AVAILABLE
            self._state(t, agent, agent.tails[AVAILABLE])
            self._ready(t, agent)
        elif isinstance(pending, str):  # LOGOUT
            self._offline(t, agent)
        else:
            agent.pending = None
            self._pause(t, agent, *pending)

    def _ready(self, t: float, agent: Agent) -> None:
        """An available agent takes the longest-waiting contact of its queues, or idles."""
        best: deque[Contact] | None = None
        oldest = t
        waiting = self.waiting
        for q in agent.queues:
            line = waiting[q]
            while line and line[0].state != WAITING:  # abandoned ones leave lazily
                line.popleft()
            if line and line[0].last <= oldest:
                best, oldest = line, line[0].last
        if best is not None:
            self._answer(t, best.popleft(), agent)
            return
        idle = self.idle
        for q in agent.queues:
            idle[q][agent] = None  # at the end: the longest idle agent comes first

    def _unidle(self, agent: Agent) -> None:
        idle = self.idle
        for q in agent.queues:
            del idle[q][agent]
