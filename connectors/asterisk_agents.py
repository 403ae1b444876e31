"""Queue members of an Asterisk ``queue_log`` as contract ``agent_state`` events.

Why a state machine and not a verb table: the log says what *happened* (a pause, a
connect, a call completed) and the contract wants what the agent *is*. An agent on a call
who pauses is still busy; one who completes a call is in wrap-up for ``--wrapup`` seconds
and then available unless something else happened first. So each member keeps flags
(logged in, queues, paused, calls in progress, wrap-up end) and every change re-derives
the state; an event is written only when state, queue list or pause reason changed.

Time only moves forward per agent: an event is stamped no earlier than the agent's
previous one (the contract rejects that as ``out_of_order``), and a pending end of
wrap-up is written only once time has passed it (:meth:`AgentBook.advance`) and nothing
else changed the agent first.
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field
from typing import Any

from connectors.base import Event, event, make_id

TAG = "ast"


@dataclass
class Agent:
    agent_id: str
    queues: list[str] = field(default_factory=list)
    agent_login: bool = False  # AGENTLOGIN (chan_agent/app_agent_pool) without a queue
    paused: bool = False
    reason: str | None = None
    calls: list[str] = field(default_factory=list)
    wrap_due: float | None = None
    wrap_origin: str | None = None
    emitted: list[Any] | None = None  # [state, queues, reason] last written
    last_ts: float = 0.0

    @property
    def logged_in(self) -> bool:
        return self.agent_login or bool(self.queues)

    def state(self) -> str:
        if not self.logged_in:
            return "offline"
        if self.calls:
            return "busy"
        if self.paused:
            return "paused"
        if self.wrap_due is not None:
            return "wrap_up"
        return "available"


class AgentBook:
    """Every member seen in the log, and the events their lines imply."""

    def __init__(self, wrapup: float = 0.0) -> None:
        self.wrapup = wrapup
        self.agents: dict[str, Agent] = {}
        self._due: list[tuple[float, str, str]] = []  # (due, agent, origin) lazily checked

    # --- the log's verbs ---------------------------------------------------------------
    def add_member(self, name: str, ts: float, queue: str | None, paused: bool,
                   key: str) -> list[Event]:
        agent = self._agent(name)
        if not agent.logged_in:
            agent.paused, agent.reason = paused, None
        self._join(agent, queue)
        return self._emit(agent, ts, key)

    def agent_login(self, name: str, ts: float, key: str) -> list[Event]:
        agent = self._agent(name)
        if not agent.logged_in:
            agent.paused, agent.reason = False, None
        agent.agent_login = True
        return self._emit(agent, ts, key)

    def remove_member(self, name: str, ts: float, queue: str | None, key: str) -> list[Event]:
        agent = self._agent(name)
        if queue is not None and queue in agent.queues:
            agent.queues.remove(queue)
        if not agent.logged_in:
            self._reset(agent)
        return self._emit(agent, ts, key)

    def logoff(self, name: str, ts: float, key: str) -> list[Event]:
        agent = self._agent(name)
        agent.agent_login = False
        agent.queues = []
        self._reset(agent)
        return self._emit(agent, ts, key)

    def pause(self, name: str, ts: float, queue: str | None, reason: str | None,
              key: str) -> list[Event]:
        agent = self._agent(name)
        if agent.logged_in:  # a pause never logs anyone in (Wazo pauses at logoff)
            self._join(agent, queue)
        agent.paused, agent.reason = True, reason
        agent.wrap_due = None  # a pause ends the wrap-up: the agent chose what comes next
        return self._emit(agent, ts, key)

    def unpause(self, name: str, ts: float, queue: str | None, key: str) -> list[Event]:
        agent = self._agent(name)
        if agent.logged_in:  # Wazo writes UNPAUSE lines right after a logoff
            self._join(agent, queue)
        agent.paused, agent.reason = False, None
        return self._emit(agent, ts, key)

    def connect(self, name: str, ts: float, queue: str | None, contact: str,
                key: str) -> list[Event]:
        agent = self._agent(name)
        self._join(agent, queue)
        if contact not in agent.calls:
            agent.calls.append(contact)
        agent.wrap_due = None
        return self._emit(agent, ts, key)

    def complete(self, name: str, ts: float, queue: str | None, contact: str,
                 key: str) -> list[Event]:
        agent = self._agent(name)
        self._join(agent, queue)
        if contact in agent.calls:
            agent.calls.remove(contact)
        if self.wrapup > 0 and not agent.calls:
            stamp = max(ts, agent.last_ts)
            agent.wrap_due, agent.wrap_origin = stamp + self.wrapup, key
            heapq.heappush(self._due, (agent.wrap_due, name, key))
        return self._emit(agent, ts, key)

    def restart(self, ts: float, key: str) -> list[Event]:
        """QUEUESTART: Asterisk restarted, every member is gone until the log shows it again
        (static and persistent members come back without an ADDMEMBER line)."""
        out: list[Event] = []
        for name in sorted(self.agents):
            agent = self.agents[name]
            agent.agent_login, agent.queues, agent.calls = False, [], []
            self._reset(agent)
            out += self._emit(agent, ts, key)
        return out

    def drop_call(self, contact: str) -> None:
        """A call forgotten without an end (stale): it no longer keeps anyone busy."""
        for agent in self.agents.values():
            if contact in agent.calls:
                agent.calls.remove(contact)

    # --- time ----------------------------------------------------------------------------
    def advance(self, now: float) -> list[Event]:
        """Write the ends of wrap-up that are due at ``now`` (the next line's time, or the
        end of input, or the tail's idle clock), oldest first."""
        out: list[Event] = []
        while self._due and self._due[0][0] <= now:
            due, name, origin = heapq.heappop(self._due)
            agent = self.agents.get(name)
            if agent is None or agent.wrap_due != due or agent.wrap_origin != origin:
                continue  # something else changed the agent first
            agent.wrap_due = agent.wrap_origin = None
            out += self._emit(agent, due, f"wrapend\x1f{origin}")
        return out

    def next_due(self) -> float | None:
        while self._due:
            due, name, origin = self._due[0]
            agent = self.agents.get(name)
            if agent is not None and agent.wrap_due == due and agent.wrap_origin == origin:
                return due
            heapq.heappop(self._due)
        return None

    # --- helpers ---------------------------------------------------------------------------
    def _agent(self, name: str) -> Agent:
        agent = self.agents.get(name)
        if agent is None:
            agent = self.agents[name] = Agent(name)
        return agent

    @staticmethod
    def _join(agent: Agent, queue: str | None) -> None:
        """A member taking a call in a queue is logged in to it: static members
        (queues.conf) and members re-added silently after a restart never get an ADDMEMBER
        line. Pauses only join when the member is already logged in somewhere."""
        if queue is not None and queue not in agent.queues:
            agent.queues.append(queue)

    @staticmethod
    def _reset(agent: Agent) -> None:
        agent.paused, agent.reason = False, None
        agent.wrap_due = agent.wrap_origin = None

    @staticmethod
    def _emit(agent: Agent, ts: float, key: str) -> list[Event]:
        state = agent.state()
        queues = sorted(agent.queues)
        reason = agent.reason if state == "paused" else None
        current = [state, queues, reason]
        if agent.emitted == current:
            return []
        agent.emitted = current
        stamp = max(ts, agent.last_ts)
        agent.last_ts = stamp
        return [event("agent_state", make_id(TAG, "agent", agent.agent_id, key), stamp,
                      agent_id=agent.agent_id, state=state, queues=queues, reason=reason)]

    # --- persistence (tail) -------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {"wrapup": self.wrapup, "agents": [asdict(a) for a in self.agents.values()]}

    @classmethod
    def load(cls, data: dict[str, Any], wrapup: float) -> AgentBook:
        book = cls(wrapup)
        for raw in data.get("agents", []):
            agent = Agent(**raw)
            book.agents[agent.agent_id] = agent
            if agent.wrap_due is not None and agent.wrap_origin is not None:
                heapq.heappush(book._due, (agent.wrap_due, agent.agent_id, agent.wrap_origin))
        return book
