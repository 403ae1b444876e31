"""Time, buckets and windows (contract section 5). Pure integer maths.

Event time is kept as integer microseconds since the epoch so that sums of
durations are exact and replay and live agree to the last digit.

Buckets are whole minutes: ``bucket = floor(epoch_seconds / 60)``. A window
*as of* clock T covers the buckets from :meth:`Window.first` up to T's own
bucket. A window of N minutes covers the last N; ``today`` covers those from
the bucket of the most recent local day start, never more than 1440::

    clock T = 10:19:30 (UTC center, day start 06:00)      floor(T/60) = minute 10:19
    minute   06:00 ... 10:05 ... 10:15 ... 10:19 | 10:20 (future: not yet)
    5m                           [10:15 . 10:19]
    15m              [10:05 ........... 10:19]
    today    [06:00 ....................... 10:19]

An event stamped up to the allowed skew ahead of the clock lands in a future
bucket that no window covers until the clock gets there.
"""

from __future__ import annotations

from typing import Final, Protocol

US: Final = 1_000_000
MINUTE_US: Final = 60 * US
#: the most buckets ``today`` covers (the 25-hour day of a DST change loses its first hour)
DAY_BUCKETS: Final = 1440
TODAY: Final = "today"


class DayStarts(Protocol):
    def day_start(self, t_us: int) -> int: ...


class Window:
    """A window of the snapshot: which buckets it covers as of a clock minute."""

    def __init__(self, name: str, minutes: int, days: DayStarts | None = None) -> None:
        self.name = name
        #: the most buckets it ever covers
        self.minutes = minutes
        self.days = days

    def first(self, minute: int) -> int:
        """The first bucket covered when the clock is in bucket ``minute``."""
        days = self.days
        if days is None:
            return minute - self.minutes + 1
        start = days.day_start(minute * MINUTE_US + MINUTE_US - 1) // MINUTE_US
        return max(start, minute - DAY_BUCKETS + 1)


def fixed(name: str, minutes: int) -> Window:
    return Window(name, minutes)


def today(days: DayStarts) -> Window:
    return Window(TODAY, DAY_BUCKETS, days)
