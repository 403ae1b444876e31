"""Entities and tunables of the lifecycle (contract sections 3-5): plain data, no logic
beyond the clock checks, shared by :mod:`tables.state` and the changelog codec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from tables import aggregate as A
from tables.windows import US

DUPLICATE: Final = "duplicate"
NO_AGENT: Final = ""

# Contact and ticket status codes (ordered: ``status >= ABANDONED`` means finished).
WAITING: Final = 0
ANSWERED: Final = 1
ABANDONED: Final = 2
CLOSED: Final = 3
OPEN: Final = 0
RESOLVED: Final = 1

#: The finest grain of a measurement, within a minute bucket: (queue, channel, agent).
CellKey = tuple[str, str, str]
#: minute bucket -> cell -> aggregate
Cells = dict[int, dict[CellKey, A.Agg]]


@dataclass(frozen=True)
class Config:
    """The contract's tunables, in engine units (microseconds)."""

    windows: tuple[tuple[str, int], ...] = (("5m", 5), ("15m", 15), ("1h", 60), ("24h", 1440))
    retention_us: int = 86_400 * US
    skew_us: int = 300 * US
    sl_threshold_us: int = 20 * US
    open_ttl_us: int = 7 * 86_400 * US

    @classmethod
    def from_settings(cls, s: Any) -> Config:
        return cls(
            windows=tuple(s.window_minutes.items()),
            retention_us=s.retention_seconds * US,
            skew_us=s.skew_seconds * US,
            sl_threshold_us=round(s.sl_threshold_seconds * US),
            open_ttl_us=s.open_entity_ttl_seconds * US,
        )

    @property
    def largest_window(self) -> int:
        return max(m for _, m in self.windows)


class Contact:
    __slots__ = ("queue", "channel", "offered", "answered", "agent", "status", "last", "upto")

    def __init__(self, queue: str, channel: str, offered: int) -> None:
        self.queue = queue
        self.channel = channel
        self.offered = offered
        self.answered = 0
        self.agent = NO_AGENT
        self.status = WAITING
        self.last = offered
        #: source offset of the last event applied (live idempotency; -1 offline)
        self.upto = -1

    def to_wire(self) -> list[Any]:
        return [
            self.queue,
            self.channel,
            self.offered,
            self.answered,
            self.agent,
            self.status,
            self.last,
            self.upto,
        ]

    @classmethod
    def from_wire(cls, w: list[Any]) -> Contact:
        c = cls(w[0], w[1], w[2])
        c.answered, c.agent, c.status, c.last, c.upto = w[3], w[4], w[5], w[6], w[7]
        return c


class Ticket:
    __slots__ = ("queue", "channel", "opened", "replied", "status", "last", "upto")

    def __init__(self, queue: str, channel: str, opened: int) -> None:
        self.queue = queue
        self.channel = channel
        self.opened = opened
        self.replied = False
        self.status = OPEN
        self.last = opened
        self.upto = -1

    def to_wire(self) -> list[Any]:
        return [
            self.queue,
            self.channel,
            self.opened,
            self.replied,
            self.status,
            self.last,
            self.upto,
        ]

    @classmethod
    def from_wire(cls, w: list[Any]) -> Ticket:
        t = cls(w[0], w[1], w[2])
        t.replied, t.status, t.last, t.upto = w[3], w[4], w[5], w[6]
        return t
