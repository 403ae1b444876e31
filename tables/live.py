"""Live state (the ``now`` rows of contract section 6): per partition, merged per scope.

A partition's :class:`PartLive` holds only facts that do not depend on the
clock -- how many contacts wait per queue and channel and since when, how many
tickets are open per queue, channel and product, each agent's state, queues
and since when -- so the live worker can write it once per batch and any worker
can turn it into ``now`` rows at its own clock later. :class:`CenterLive`
merges the parts of every partition, and the SLA counts
(:class:`tables.sla.SlaCounter`), at one clock; the catalogue
(:mod:`tables.kpis`) reads its :class:`ScopeLive` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tables.agents import COUNTED, OFFLINE
from tables.clock import UNSET
from tables.windows import US

ALL = "all"


@dataclass
class PartLive:
    """What one partition contributes to the ``now`` rows, clock-free."""

    #: (queue, channel, waiting, oldest offered ts in us)
    waiting: list[tuple[str, str, int, int]] = field(default_factory=list)
    #: (queue, channel, product, open tickets)
    open: list[tuple[str, str, str, int]] = field(default_factory=list)
    #: [agent, state, queues, interval start, state since, recent closed intervals]
    agents: list[list[Any]] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return {
            "w": [list(w) for w in self.waiting],
            "t": [list(t) for t in self.open],
            "a": self.agents,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> PartLive:
        return cls(
            [(q, ch, n, oldest) for q, ch, n, oldest in data.get("w", ())],
            [(q, ch, p, n) for q, ch, p, n in data.get("t", ())],
            list(data.get("a", ())),
        )


@dataclass
class ScopeLive:
    """One scope's live values at a clock (what the catalogue's ``now`` KPIs read)."""

    clock: int = 0
    waiting: int = 0
    oldest: int | None = None
    open_tickets: int = 0
    #: logged in, available, busy, wrap-up, paused
    agents: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    #: for an agent's own row: when its current state began (UNSET: never set)
    since: int = UNSET
    sla_breached: int = 0
    sla_at_risk: int = 0

    @property
    def longest_wait(self) -> float:
        if self.oldest is None or self.waiting == 0:
            return 0.0
        return max(0, self.clock - self.oldest) / US

    @property
    def state_seconds(self) -> float | None:
        if self.since == UNSET:
            return None
        return max(0, self.clock - self.since) / US

    def active(self) -> bool:
        """Live state that makes a ``now`` row exist on its own (section 7): waiting
        contacts, open tickets, logged-in agents."""
        return bool(self.waiting or self.open_tickets or self.agents[0])


class CenterLive:
    """The merged live state of many partitions, at one clock."""

    def __init__(
        self,
        parts: list[PartLive],
        clock: int,
        sla: dict[tuple[str, str, str], tuple[int, int]] | None = None,
    ) -> None:
        self.clock = clock
        self.scopes: dict[str, ScopeLive] = {}
        for part in parts:
            for queue, channel, n, oldest in part.waiting:
                for scope in (ALL, "queue:" + queue, "channel:" + channel):
                    s = self.scope(scope)
                    s.waiting += n
                    if s.oldest is None or oldest < s.oldest:
                        s.oldest = oldest
            for queue, channel, product, n in part.open:
                for scope in _ticket_scopes(queue, channel, product):
                    self.scope(scope).open_tickets += n
            for aid, state, queues, _, since, _ in part.agents:
                self._agent(aid, state, queues, since)
        for (queue, channel, product), (breached, at_risk) in (sla or {}).items():
            for scope in _ticket_scopes(queue, channel, product):
                s = self.scope(scope)
                s.sla_breached += breached
                s.sla_at_risk += at_risk

    def _agent(self, aid: str, state: str, queues: list[str], since: int) -> None:
        own = self.scope("agent:" + aid)
        own.since = since
        if state == OFFLINE:
            return
        where = (ALL, "agent:" + aid, *("queue:" + q for q in queues))
        slot = COUNTED.index(state) + 1
        for scope in where:
            counts = self.scope(scope).agents
            counts[0] += 1
            counts[slot] += 1

    def scope(self, name: str) -> ScopeLive:
        s = self.scopes.get(name)
        if s is None:
            s = self.scopes[name] = ScopeLive(clock=self.clock)
        return s

    def get(self, name: str) -> ScopeLive:
        return self.scopes.get(name) or ScopeLive(clock=self.clock)

    def fold(self, names: list[str], into: str) -> None:
        """Merge the live state of ``names`` into one scope (a cardinality cap)."""
        target: ScopeLive | None = None
        for name in names:
            s = self.scopes.pop(name, None)
            if s is None:
                continue
            if target is None:
                target = self.scope(into)
            target.waiting += s.waiting
            if s.oldest is not None and (target.oldest is None or s.oldest < target.oldest):
                target.oldest = s.oldest
            target.open_tickets += s.open_tickets
            target.agents = [a + b for a, b in zip(target.agents, s.agents, strict=True)]
            target.sla_breached += s.sla_breached
            target.sla_at_risk += s.sla_at_risk

    def active_scopes(self) -> set[str]:
        return {name for name, s in self.scopes.items() if s.active()}


def _ticket_scopes(queue: str, channel: str, product: str) -> tuple[str, ...]:
    base = (ALL, "queue:" + queue, "channel:" + channel)
    return base + ("product:" + product,) if product else base
