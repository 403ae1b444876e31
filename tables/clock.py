"""Where the time of the contract's checks comes from (section 5), as an object.

The core never reads a clock: the caller hands it one of these.

* :class:`EventClock` -- the offline replay without ``--at``: the largest valid
  ``ts`` seen so far. It moves *before* the duplicate and lifecycle checks (so
  an event rejected as ``unknown_entity`` still tells the time), never on a
  ``too_late`` event, and nothing is ``future_ts``.
* :class:`FixedClock` -- ``replay --at``: fixed; ``future_ts`` applies.
* :class:`WallClock` -- the live worker: the wall-time value the live edge
  :meth:`~WallClock.set`\\ s once per batch; ``future_ts`` applies.

::

    EventClock     ts: 10:00 10:03 09:58 10:05 ...     now: 10:00 10:03 10:03 10:05
    FixedClock(T)  now = T for every event; ts > T + skew -> future_ts
    WallClock      now = the value set for the batch; same checks as FixedClock

``too_late`` compares an event with the clock *before* that event.
"""

from __future__ import annotations

from typing import Final

from tables.schema import FUTURE_TS, TOO_LATE

#: ``now`` of a clock that has seen no valid event yet (far below any real time,
#: yet small enough to stay a machine integer when compiled).
UNSET: Final = -(2**61)


class Clock:
    """The clock policy of one stream of events."""

    def __init__(self, retention_us: int, skew_us: int, now: int = UNSET) -> None:
        self.retention_us = retention_us
        self.skew_us = skew_us
        self.now = now

    def admit(self, ts: int) -> str | None:
        """``too_late`` / ``future_ts`` for an event at ``ts``, or None (and the clock
        moves, for a clock that follows the events)."""
        now = self.now
        if ts < now - self.retention_us:
            return TOO_LATE
        if ts > now + self.skew_us and now != UNSET:
            return FUTURE_TS
        return None

    def seen(self) -> bool:
        return self.now != UNSET


class FixedClock(Clock):
    """A clock fixed at one instant (``replay --at``)."""


class WallClock(Clock):
    """The live worker's clock: the live edge sets it, the core only reads it."""

    def set(self, now_us: int) -> None:
        self.now = now_us


class EventClock(Clock):
    """The replay clock: the largest valid ``ts`` seen so far; nothing is in the future."""

    def admit(self, ts: int) -> str | None:
        now = self.now
        if ts < now - self.retention_us:
            return TOO_LATE
        if ts > now:
            self.now = ts
        return None
