"""The center's local clock: day starts, report intervals, business time.

Buckets and windows are UTC minutes (:mod:`tables.windows`), but three things a
contact center talks about are local: where ``today`` starts (contract section
5), where a report interval starts (section 8) and which seconds fall inside
opening hours (section 6.3). All three must give the same microsecond in live
mode, in replay and in reports, also on the two days a year when the local
clock jumps, so they are decided here, once, from the IANA zone rules.

A local wall time that does not exist or exists twice is resolved one way for
day starts and for both ends of opening ranges: the first instant at which the
wall clock reaches it::

    spring forward, Europe/Madrid 2026-03-29 (02:00 CET -> 03:00 CEST)
      UTC    00:00       00:30      |01:00       01:30
      local  01:00 CET   01:30 CET  |03:00 CEST  03:30 CEST
                                     ^ "02:00".."02:59" (never shown) resolve here

    fall back, Europe/Madrid 2026-10-25 (03:00 CEST -> 02:00 CET)
      UTC    00:00       00:30      |01:00       01:30       02:00
      local  02:00 CEST  02:30 CEST |02:00 CET   02:30 CET   03:00 CET
                         ^ "02:30" resolves here (first occurrence)

Report intervals of 15m/30m/1h are the exception: they start at *every*
instant the wall clock shows an aligned time, so on the fall-back day both
02:30s above start an interval and every interval lasts 30 real minutes; the
aligned times inside a gap all start at the instant after it, where they merge.
A ``1d`` interval starts at the day starts.

Times are integer microseconds since the epoch (UTC). The module reads no clock
and does no I/O beyond the zone rules the standard library loads once.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tables.business import NEVER, BusinessTime, at_risk_amount
from tables.windows import MINUTE_US, US

__all__ = ["MINUTE_US", "NEVER", "US", "Calendar", "at_risk_amount", "merge_ranges"]

DAY_MINUTES: Final = 1440
INTERVAL_MINUTES: Final = {"15m": 15, "30m": 30, "1h": 60}
INTERVALS: Final = ("15m", "30m", "1h", "1d")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_US: Final = dt.timedelta(microseconds=1)


def _us(moment: dt.datetime) -> int:
    # timedelta // timedelta is exact, where .timestamp() goes through a float.
    return (moment - _EPOCH) // _ONE_US


def merge_ranges(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted ranges, overlapping and touching ones merged (overlaps count once)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _normal_hours(
    hours: Mapping[int, Sequence[tuple[int, int]]] | None,
) -> dict[int, tuple[tuple[int, int], ...]]:
    """Weekday -> merged ranges, closed weekdays left out."""
    out: dict[int, tuple[tuple[int, int], ...]] = {}
    for weekday, spans in (hours or {}).items():
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday {weekday} is not 0 (Monday) .. 6 (Sunday)")
        for start, end in spans:
            if not 0 <= start < end <= DAY_MINUTES:
                raise ValueError(f"opening range {start}-{end} is not 0 <= start < end <= 1440")
        if merged := merge_ranges(spans):
            out[weekday] = merged
    return out


class Calendar:
    """One center's time zone, day start, weekly opening hours and holidays.

    ``hours`` maps a weekday (0 = Monday .. 6 = Sunday) to opening ranges in
    minutes since local midnight, ``(start, end)`` holding ``start`` up to but
    not including ``end`` (1440 = 24:00, the next date's midnight); a weekday
    that is absent is closed. A holiday (``holidays``, or a date for which
    ``is_holiday`` is true) is closed for the whole local date. ``is_holiday``
    must be pure: its answers are cached.
    """

    def __init__(
        self,
        timezone: str = "UTC",
        day_start_minute: int = 0,
        hours: Mapping[int, Sequence[tuple[int, int]]] | None = None,
        holidays: Iterable[dt.date] = (),
        is_holiday: Callable[[dt.date], bool] | None = None,
    ) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone {timezone!r}") from exc
        if not 0 <= day_start_minute < DAY_MINUTES:
            raise ValueError(f"day start minute {day_start_minute} is not 0..1439")
        self.timezone = timezone
        self.day_start_minute = day_start_minute
        self.hours = _normal_hours(hours)
        self.holidays = frozenset(holidays)
        self.is_holiday = is_holiday
        self._day_start_of: Callable[[int], int] = lru_cache(maxsize=4096)(self._day_start_calc)
        self._starts_of: Callable[[int, int], tuple[int, ...]] = lru_cache(maxsize=1024)(
            self._starts_calc
        )
        self._business = BusinessTime(self._day_ranges, self._midnight, never_open=not self.hours)

    def __repr__(self) -> str:
        return (
            f"Calendar({self.timezone!r}, day_start_minute={self.day_start_minute}, "
            f"hours={self.hours!r}, holidays={len(self.holidays)})"
        )

    # -- wall time -> instants -------------------------------------------------------

    def _local(self, t_us: int) -> dt.datetime:
        return (_EPOCH + dt.timedelta(microseconds=t_us)).astimezone(self.zone)

    def _local_ordinal(self, t_us: int) -> int:
        return self._local(t_us).toordinal()

    def _instants(self, ordinal: int, minute: int) -> tuple[int, ...]:
        """Every instant at which the wall clock shows ``minute`` of the date, in order.

        PEP 495: ``fold=0`` reads a wall time with the offset in force before a
        transition, ``fold=1`` with the one after. In a fold the two give two real
        instants; in a gap they come out reversed, and neither is shown on the
        wall: then the answer is the transition itself, the first instant after
        the gap.
        """
        day = dt.date.fromordinal(ordinal + minute // DAY_MINUTES)
        minute %= DAY_MINUTES
        naive = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60)
        early = _us(naive.replace(tzinfo=self.zone))
        late = _us(naive.replace(tzinfo=self.zone, fold=1))
        if late == early:
            return (early,)
        if late > early:
            return (early, late)
        return (self._transition(late, early),)

    def _transition(self, before: int, after: int) -> int:
        """The first instant in ``(before, after]`` whose UTC offset differs from ``before``'s."""
        offset = self._local(before).utcoffset()
        while after - before > 1:
            middle = (before + after) // 2
            if self._local(middle).utcoffset() == offset:
                before = middle
            else:
                after = middle
        return after

    def _resolve(self, ordinal: int, minute: int) -> int:
        """The first instant the wall clock reaches ``minute`` (up to 1440) of the date."""
        return self._instants(ordinal, minute)[0]

    # -- today -----------------------------------------------------------------------

    def _day_start_calc(self, ordinal: int) -> int:
        return self._resolve(ordinal, self.day_start_minute)

    def day_start(self, t_us: int) -> int:
        """The most recent local day start at or before ``t_us``."""
        # The neighbours matter only where the wall clock crosses midnight backwards.
        ordinal = self._local_ordinal(t_us)
        return max(
            s for o in (ordinal - 1, ordinal, ordinal + 1) if (s := self._day_start_of(o)) <= t_us
        )

    def next_day_start(self, t_us: int) -> int:
        """The first local day start strictly after ``t_us``."""
        ordinal = self._local_ordinal(t_us)
        return min(
            s for o in range(ordinal - 1, ordinal + 3) if (s := self._day_start_of(o)) > t_us
        )

    def today_first_bucket(self, t_us: int) -> int:
        """First bucket of ``today`` as of ``t_us``: from the day start, at most 1440 buckets."""
        return max(self.day_start(t_us) // MINUTE_US, t_us // MINUTE_US - (DAY_MINUTES - 1))

    # -- report intervals ------------------------------------------------------------

    def _starts_calc(self, ordinal: int, step: int) -> tuple[int, ...]:
        found: set[int] = set()
        for minute in range(0, DAY_MINUTES, step):
            found.update(self._instants(ordinal, minute))
        return tuple(sorted(found))

    def _step(self, interval: str) -> int:
        try:
            return INTERVAL_MINUTES[interval]
        except KeyError:
            raise ValueError(
                f"unknown interval {interval!r}: one of {', '.join(INTERVALS)}"
            ) from None

    def interval_start(self, t_us: int, interval: str) -> int:
        """Start of the report interval (``15m``, ``30m``, ``1h``, ``1d``) holding ``t_us``."""
        if interval == "1d":
            return self.day_start(t_us)
        step = self._step(interval)
        ordinal = self._local_ordinal(t_us)
        best = NEVER * -1
        for o in (ordinal - 1, ordinal, ordinal + 1):
            starts = self._starts_of(o, step)
            i = bisect_right(starts, t_us)
            if i and starts[i - 1] > best:
                best = starts[i - 1]
        return best

    def next_interval_start(self, t_us: int, interval: str) -> int:
        """The first start of an interval of the same kind strictly after ``t_us``."""
        if interval == "1d":
            return self.next_day_start(t_us)
        step = self._step(interval)
        ordinal = self._local_ordinal(t_us)
        best = NEVER
        for o in range(ordinal - 1, ordinal + 3):
            starts = self._starts_of(o, step)
            i = bisect_right(starts, t_us)
            if i < len(starts) and starts[i] < best:
                best = starts[i]
        return best

    def local_iso(self, t_us: int) -> str:
        """``t_us`` as local ISO-8601 with its offset; a fraction only when there is one."""
        return self._local(t_us).isoformat()

    # -- business time ---------------------------------------------------------------

    def closed_on(self, day: dt.date) -> bool:
        """True when ``day`` is a holiday (closed all local day)."""
        return day in self.holidays or (self.is_holiday is not None and self.is_holiday(day))

    def _day_ranges(self, ordinal: int) -> list[tuple[int, int]]:
        day = dt.date.fromordinal(ordinal)
        spans = self.hours.get(day.weekday())
        if not spans or self.closed_on(day):
            return []
        return [(self._resolve(ordinal, s), self._resolve(ordinal, e)) for s, e in spans]

    def _midnight(self, ordinal: int) -> int:
        return self._resolve(ordinal, 0)

    def business_elapsed(self, start_us: int, end_us: int) -> int:
        """Microseconds of ``[start_us, end_us)`` inside opening hours; 0 when end <= start."""
        return self._business.elapsed(start_us, end_us)

    def business_reach(self, start_us: int, amount_us: int) -> int:
        """Smallest ``t >= start_us`` with ``business_elapsed(start_us, t) >= amount_us``.

        ``start_us`` for an amount of 0 or less, ``NEVER`` for a calendar that is
        never open. See :mod:`tables.business` for how breach and at-risk use it.
        """
        return self._business.reach(start_us, amount_us)
