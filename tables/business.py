"""Business time as closed-form sums over opening ranges (contract section 6.3).

A ticket SLA on business hours asks two questions for every open ticket at
every snapshot: how much business time lies between the ticket's opening and
the clock (``elapsed``), and from which instant on a target is exceeded
(``reach``). Counting minutes would make both cost the length of the span, and
a ticket can stay open for weeks. Here both are prefix sums over sorted UTC
ranges, so a call costs a couple of binary searches however long the span.

The local rules (time zone, DST, holidays) live in :mod:`tables.calendar`; this
module sees only what it hands over: for each local date (by ordinal) its
opening ranges already resolved to UTC microseconds, and the UTC instant of its
local midnight. Dates are grouped in blocks of ``BLOCK_DAYS`` so that one cache
entry serves two months; the cache is bounded, so a long-running process that
walks through the years keeps a constant footprint.

Breach and at-risk become instants, so the live state only compares the
clock with a number it computed once per ticket::

    opened                                                          clock ->
    |====== open ======|...closed...|========= open =========|...closed...|====
    |<------------- target (business µs) ------------------->|
                                                             ^ reach(opened, target)
                                                               elapsed == target: not breached
                                                  reach(opened, target + 1) ^
                                    (1 µs after the next opening, not the range end)

    breached  <=> elapsed(opened, clock) >  target
              <=> elapsed(opened, clock) >= target + 1  <=> clock >= reach(opened, target + 1)
    at risk   <=> elapsed(opened, clock) >= share * target
              <=> clock >= reach(opened, at_risk_amount(target, share))

``elapsed(a, t)`` counts ``[a, t)`` and never decreases as ``t`` grows; ``reach``
is its smallest ``t`` with ``elapsed(a, t) >= amount``, which is exactly what
makes the two equivalences hold.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Final

from tables.windows import US

DAY_US: Final = 86_400 * US
NEVER: Final = 2**62
"""What ``reach`` answers for a calendar that is never open: later than any real clock."""

BLOCK_DAYS: Final = 64
# Ten years of consecutive closed dates: a calendar like that (every date a
# holiday, say) is taken as never open instead of being searched forever.
_CLOSED_BLOCKS_LIMIT: Final = 3660 // BLOCK_DAYS
_UNIX_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
# Dates the standard library can still name (a block may reach one date past).
MIN_US: Final = (dt.date(2, 1, 1).toordinal() - _UNIX_ORDINAL) * DAY_US
MAX_US: Final = (dt.date(9998, 12, 31).toordinal() - _UNIX_ORDINAL) * DAY_US


def at_risk_amount(target_us: int, share: float) -> int:
    """``ceil(share * target_us)``, with ``share`` read as the decimal it was written as.

    ``0.8 * 1_000_000`` must give 800000, not 800001: the float 0.8 is a hair
    above 4/5, so the exact product of the float would round the wrong way up.
    """
    return math.ceil(Fraction(repr(float(share))) * target_us)


class _Block:
    """The opening ranges of ``BLOCK_DAYS`` local dates, with prefix sums.

    ``cum[i]`` is the business time of the block up to ``ends[i]``: the business
    time before ``t`` is then one bisection away.
    """

    __slots__ = ("origin", "end", "starts", "ends", "cum", "total")

    def __init__(self, origin: int, end: int, ranges: Sequence[tuple[int, int]]) -> None:
        self.origin = origin
        self.end = end
        starts: list[int] = []
        ends: list[int] = []
        cum: list[int] = []
        total = 0
        for start, stop in ranges:
            if stop <= start:
                continue  # both ends inside one DST gap: nothing of it exists
            if ends and start <= ends[-1]:
                # Touching ranges (a 24:00 end and the next day's 00:00) become one.
                if stop > ends[-1]:
                    total += stop - ends[-1]
                    ends[-1] = stop
                    cum[-1] = total
                continue
            total += stop - start
            starts.append(start)
            ends.append(stop)
            cum.append(total)
        self.starts = tuple(starts)
        self.ends = tuple(ends)
        self.cum = tuple(cum)
        self.total = total

    def upto(self, t: int) -> int:
        """Business µs in ``[origin, t)``."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return self.cum[i] - max(0, self.ends[i] - t)

    def reach(self, amount: int) -> int:
        """Smallest ``t`` with ``upto(t) >= amount``, for ``0 < amount <= total``."""
        i = bisect_left(self.cum, amount)
        return self.ends[i] - (self.cum[i] - amount)


class BusinessTime:
    """Elapsed business time and its inverse over a calendar's resolved ranges.

    ``day_ranges(ordinal)`` gives the UTC ranges of one local date in order, each
    inside ``[midnight(ordinal), midnight(ordinal + 1)]``; ``midnight`` never
    decreases. Both must be pure: their answers are cached.
    """

    def __init__(
        self,
        day_ranges: Callable[[int], Sequence[tuple[int, int]]],
        midnight: Callable[[int], int],
        never_open: bool,
        cached_blocks: int = 256,
    ) -> None:
        self._day_ranges = day_ranges
        self._midnight = midnight
        self._never_open = never_open
        self._block: Callable[[int], _Block] = lru_cache(maxsize=cached_blocks)(self._build)

    def _build(self, index: int) -> _Block:
        first = index * BLOCK_DAYS
        ranges: list[tuple[int, int]] = []
        for ordinal in range(first, first + BLOCK_DAYS):
            ranges.extend(self._day_ranges(ordinal))
        return _Block(self._midnight(first), self._midnight(first + BLOCK_DAYS), ranges)

    def _locate(self, t: int) -> tuple[int, _Block]:
        if not MIN_US <= t <= MAX_US:
            raise ValueError(f"time {t} µs is outside the years 2..9998")
        # The UTC date is within a day of the local one: at most one step to correct.
        index = (t // DAY_US + _UNIX_ORDINAL) // BLOCK_DAYS
        block = self._block(index)
        while t < block.origin:
            index -= 1
            block = self._block(index)
        while t >= block.end:
            index += 1
            block = self._block(index)
        return index, block

    def elapsed(self, start_us: int, end_us: int) -> int:
        """Business µs in ``[start_us, end_us)``; 0 when ``end_us <= start_us``."""
        if end_us <= start_us or self._never_open:
            return 0
        first, block = self._locate(start_us)
        last, last_block = self._locate(end_us)
        if first == last:
            return block.upto(end_us) - block.upto(start_us)
        total = block.total - block.upto(start_us)
        for index in range(first + 1, last):
            total += self._block(index).total
        return total + last_block.upto(end_us)

    def reach(self, start_us: int, amount_us: int) -> int:
        """Smallest ``t >= start_us`` with ``elapsed(start_us, t) >= amount_us``.

        ``start_us`` when the amount is 0 or less; ``NEVER`` when the calendar
        is never open (no opening range on any weekday, or ten years in a row
        of closed dates).
        """
        if amount_us <= 0:
            return start_us
        if self._never_open:
            return NEVER
        index, block = self._locate(start_us)
        wanted = block.upto(start_us) + amount_us
        closed_blocks = 0
        while wanted > block.total:
            wanted -= block.total
            closed_blocks = closed_blocks + 1 if block.total == 0 else 0
            if closed_blocks > _CLOSED_BLOCKS_LIMIT:
                return NEVER
            index += 1
            block = self._block(index)
        return block.reach(wanted)
