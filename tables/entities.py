"""Entities and tunables of the lifecycle (contract sections 3-5): plain data, no logic
beyond the clock checks, shared by :mod:`tables.state` and the changelog codec."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from tables import aggregate as A
from tables.definitions import Definitions
from tables.windows import TODAY, US, Window, today

DUPLICATE: Final = "duplicate"
NO_AGENT: Final = ""

# Contact and ticket status codes (ordered: ``status >= ABANDONED`` means finished).
WAITING: Final = 0
ANSWERED: Final = 1
ABANDONED: Final = 2
CLOSED: Final = 3
OPEN: Final = 0
RESOLVED: Final = 1

#: The finest grain of a measurement, within a minute bucket: (queue, channel, agent,
#: product). Time in agent states uses two more shapes (see :mod:`tables.agents`).
CellKey = tuple[str, str, str, str]
#: minute bucket -> cell -> aggregate
Cells = dict[int, dict[CellKey, A.Agg]]
NO_PRODUCT: Final = ""

#: the windows of version 2, in row order
DEFAULT_WINDOWS: Final = ("5m", "15m", "1h", "24h", TODAY)


def window_minutes(name: str) -> int:
    """``"15m"`` -> 15, ``"1h"`` -> 60, ``"2d"`` -> 2880 (whole minutes)."""
    units = {"m": 1, "h": 60, "d": 1440}
    if name and name[-1] in units and name[:-1].isdigit():
        return int(name[:-1]) * units[name[-1]]
    raise ValueError(f"window {name!r}: use whole minutes, hours or days (15m, 1h, 2d) or today")


class Config:
    """The contract's tunables, in engine units (microseconds), and the center's definitions."""

    def __init__(
        self,
        windows: Sequence[str] = DEFAULT_WINDOWS,
        defs: Definitions | None = None,
        retention_us: int = 86_400 * US,
        skew_us: int = 300 * US,
        open_ttl_us: int = 7 * 86_400 * US,
        caps: dict[str, int] | None = None,
        max_message_bytes: int = 1_000_000,
    ) -> None:
        self.defs = defs or Definitions()
        self.calendar = self.defs.calendar()
        self.windows: tuple[Window, ...] = tuple(
            today(self.calendar) if name == TODAY else Window(name, window_minutes(name))
            for name in windows
        )
        self.window_names = tuple(w.name for w in self.windows)
        self.retention_us = retention_us
        self.skew_us = skew_us
        self.open_ttl_us = open_ttl_us
        #: a message larger than this is rejected ``too_large`` before it is decoded
        self.max_message_bytes = max_message_bytes
        #: the most buckets any window covers (minutes older than that are dropped)
        self.largest_window = max(w.minutes for w in self.windows)
        #: scope kind -> the most scopes of it in a snapshot (the rest fold into <kind>:other)
        self.caps: dict[str, int] = dict(caps or {})

    @property
    def sl_threshold_us(self) -> int:
        return self.defs.threshold_us

    @classmethod
    def from_settings(cls, s: Any, defs: Definitions | None = None) -> Config:
        return cls(
            windows=tuple(s.window_names),
            defs=defs,
            retention_us=s.retention_seconds * US,
            skew_us=s.skew_seconds * US,
            open_ttl_us=s.open_entity_ttl_seconds * US,
            caps={k: v for k, v in (("queue", s.max_queues), ("agent", s.max_agents),
                                    ("product", s.max_products)) if v > 0},
            max_message_bytes=s.max_message_bytes,
        )


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
    __slots__ = (
        "queue", "channel", "opened", "replied", "status", "last", "upto", "product", "policy",
        "instants",
    )

    def __init__(
        self, queue: str, channel: str, opened: int, product: str = NO_PRODUCT, policy: int = -1
    ) -> None:
        self.queue = queue
        self.channel = channel
        self.opened = opened
        self.replied = False
        self.status = OPEN
        self.last = opened
        self.upto = -1
        #: v2: the product it was opened with ("" none), the index of its SLA policy (-1 none)
        self.product = product
        self.policy = policy
        #: its SLA instants (tables.sla.SlaClock.instants), computed on first use: they
        #: depend on the policy and the opening alone. Derived, so not on the wire.
        self.instants: tuple[int, int, int, int] | None = None

    def to_wire(self) -> list[Any]:
        return [
            self.queue,
            self.channel,
            self.opened,
            self.replied,
            self.status,
            self.last,
            self.upto,
            self.product,
            self.policy,
        ]

    @classmethod
    def from_wire(cls, w: list[Any]) -> Ticket:
        t = cls(w[0], w[1], w[2])
        t.replied, t.status, t.last, t.upto = w[3], w[4], w[5], w[6]
        if len(w) > 7:  # written by version 1: no product, no policy
            t.product, t.policy = w[7], w[8]
        return t
