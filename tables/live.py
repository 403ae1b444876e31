"""Live state (the ``now`` rows of contract section 6): per partition, merged per scope.

A partition's :class:`PartLive` holds only facts that do not depend on the
clock (how many contacts wait per queue and channel and since when, how many
tickets are open), so the live worker can write it once per batch and any
worker can turn it into ``now`` rows at its own clock later. :class:`CenterLive`
merges the parts of every partition and evaluates them at one clock; the
catalogue (:mod:`tables.kpis`) reads its :class:`ScopeLive` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tables.windows import US

ALL = "all"


@dataclass
class PartLive:
    """What one partition contributes to the ``now`` rows, clock-free."""

    #: (queue, channel, waiting, oldest offered ts in us)
    waiting: list[tuple[str, str, int, int]] = field(default_factory=list)
    #: (queue, channel, open tickets)
    open: list[tuple[str, str, int]] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return {"w": [list(w) for w in self.waiting], "t": [list(t) for t in self.open]}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> PartLive:
        return cls(
            [(q, ch, n, oldest) for q, ch, n, oldest in data.get("w", ())],
            [(q, ch, n) for q, ch, n in data.get("t", ())],
        )


@dataclass
class ScopeLive:
    """One scope's live values at a clock (what the catalogue's ``now`` KPIs read)."""

    waiting: int = 0
    oldest: int | None = None
    open_tickets: int = 0
    clock: int = 0

    @property
    def longest_wait(self) -> float:
        if self.oldest is None or self.waiting == 0:
            return 0.0
        return max(0, self.clock - self.oldest) / US

    def active(self) -> bool:
        """Live state that makes a ``now`` row exist on its own (section 7)."""
        return bool(self.waiting or self.open_tickets)


class CenterLive:
    """The merged live state of many partitions, at one clock."""

    def __init__(self, parts: list[PartLive], clock: int) -> None:
        self.clock = clock
        self.scopes: dict[str, ScopeLive] = {}
        for part in parts:
            for queue, channel, n, oldest in part.waiting:
                for scope in (ALL, "queue:" + queue, "channel:" + channel):
                    s = self.scope(scope)
                    s.waiting += n
                    if s.oldest is None or oldest < s.oldest:
                        s.oldest = oldest
            for queue, channel, n in part.open:
                for scope in (ALL, "queue:" + queue, "channel:" + channel):
                    self.scope(scope).open_tickets += n

    def scope(self, name: str) -> ScopeLive:
        s = self.scopes.get(name)
        if s is None:
            s = self.scopes[name] = ScopeLive(clock=self.clock)
        return s

    def get(self, name: str) -> ScopeLive:
        return self.scopes.get(name) or ScopeLive(clock=self.clock)

    def active_scopes(self) -> set[str]:
        return {name for name, s in self.scopes.items() if s.active()}
