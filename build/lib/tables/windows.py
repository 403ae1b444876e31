"""Time, buckets and windows (contract section 5). Pure integer maths.

Event time is kept as integer microseconds since the epoch so that sums of
durations are exact and replay and live agree to the last digit.

Buckets are whole minutes: ``bucket = floor(epoch_seconds / 60)``.
A window of N minutes *as of* clock T covers the N buckets ending with T's::

    clock T = 10:19:30                          floor(T/60) = minute 10:19
    minute   10:05 10:06 ... 10:15 ... 10:18 10:19 | 10:20 (future: not yet)
    5m                         [10:15 ........ 10:19]
    15m      [10:05 ...................... 10:19]

An event stamped up to the allowed skew ahead of the clock lands in a future
bucket that no window covers until the clock gets there.
"""

from __future__ import annotations

from typing import Final

US: Final = 1_000_000
MINUTE_US: Final = 60 * US


def bucket_of(ts_us: int) -> int:
    return ts_us // MINUTE_US


def window_buckets(clock_us: int, minutes: int) -> range:
    """The buckets a window of ``minutes`` covers as of ``clock_us``."""
    last = clock_us // MINUTE_US
    return range(last - minutes + 1, last + 1)


def first_bucket(clock_us: int, minutes: int) -> int:
    return clock_us // MINUTE_US - minutes + 1
