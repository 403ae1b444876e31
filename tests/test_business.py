"""Business time (tables.business through tables.calendar): contract section 6.3.

Opening ranges are local times; every expected value is written as the wall clock
reads, with its offset (see tests/test_calendar.py for the DST days used).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tables.business import at_risk_amount
from tables.calendar import MINUTE_US, NEVER, Calendar
from tests.calhelp import (
    DAY_US,
    EPOCH,
    HOUR_US,
    MADRID,
    ZONE_ANCHORS,
    at,
    hm,
    week,
)

# -- business time ------------------------------------------------------------------------

# The v2 example: Monday split shift, Tuesday..Thursday 07-19, Friday 07-15.
EXAMPLE = week(
    mon=["07:00-13:00", "14:00-19:00"],
    tue=["07:00-19:00"],
    wed=["07:00-19:00"],
    thu=["07:00-19:00"],
    fri=["07:00-15:00"],
)
HOLIDAYS = [dt.date(2026, 12, 25), dt.date(2027, 1, 1)]

SPANS = [
    # (start, end, business hours) in Madrid with EXAMPLE; 2026-11-23 is a Monday.
    #   Mon  06:00 | 07:00 ==== 13:00 | 14:00 ==== 19:00 | closed
    ("2026-11-23T06:00:00+01:00", "2026-11-23T07:00:00+01:00", 0),
    ("2026-11-23T06:00:00+01:00", "2026-11-23T13:30:00+01:00", 6),
    ("2026-11-23T12:00:00+01:00", "2026-11-23T15:00:00+01:00", 2),
    ("2026-11-23T13:00:00+01:00", "2026-11-23T14:00:00+01:00", 0),
    ("2026-11-23T06:00:00+01:00", "2026-11-24T06:00:00+01:00", 11),
    # Mon..Sun: 11 + 12 + 12 + 12 + 8.
    ("2026-11-23T00:00:00+01:00", "2026-11-30T00:00:00+01:00", 55),
    # The week of Christmas: Friday 2026-12-25 is a holiday.
    ("2026-12-21T00:00:00+01:00", "2026-12-28T00:00:00+01:00", 47),
    ("2026-12-25T00:00:00+01:00", "2026-12-26T00:00:00+01:00", 0),
    # Friday 07-15 over the weekend into Monday.
    ("2026-11-27T14:00:00+01:00", "2026-11-30T08:00:00+01:00", 2),
    # Ends before starts: nothing.
    ("2026-11-24T12:00:00+01:00", "2026-11-23T12:00:00+01:00", 0),
]


@pytest.mark.parametrize(("start", "end", "hours"), SPANS)
def test_business_elapsed_with_split_shifts_and_a_holiday(start: str, end: str, hours: int) -> None:
    cal = Calendar(MADRID, hm("07:00"), EXAMPLE, HOLIDAYS)
    assert cal.business_elapsed(at(start), at(end)) == hours * HOUR_US


DST_RANGES = [
    # (sunday's range, day, business µs) in Madrid: both ends resolve like a day start.
    ("00:00-24:00", "2026-03-29", 23 * HOUR_US),  # 00:00+01 .. 00:00+02 next day
    ("00:00-24:00", "2026-10-25", 25 * HOUR_US),
    ("01:00-03:00", "2026-03-29", 1 * HOUR_US),  # 01:00+01 .. 03:00+02
    ("01:00-03:00", "2026-10-25", 3 * HOUR_US),  # 01:00+02 .. 03:00+01, the fold included
    ("02:30-04:00", "2026-03-29", 1 * HOUR_US),  # start in the gap: from 03:00+02
    ("02:30-04:00", "2026-10-25", 150 * MINUTE_US),  # 02:30+02 .. 04:00+01
    ("02:00-02:30", "2026-03-29", 0),  # wholly inside the gap
    ("02:00-02:30", "2026-10-25", 30 * MINUTE_US),  # first occurrence only
    ("00:00-02:30", "2026-10-25", 150 * MINUTE_US),  # ends at the first 02:30
]


@pytest.mark.parametrize(("span", "day", "expected"), DST_RANGES)
def test_business_ranges_across_dst(span: str, day: str, expected: int) -> None:
    cal = Calendar(MADRID, 0, week(sun=[span]))
    start = at(f"{day}T00:00:00+00:00") - DAY_US
    assert cal.business_elapsed(start, start + 3 * DAY_US) == expected


def test_a_range_ending_at_24_00_runs_into_the_next_opening() -> None:
    # Saturday 18:00-24:00 and Sunday 00:00-06:00 make one stretch of 12 hours:
    #   Sat 18:00 ====== 24:00|00:00 ====== Sun 06:00
    cal = Calendar(MADRID, 0, week(sat=["18:00-24:00"], sun=["00:00-06:00"]))
    sat = at("2026-11-28T18:00:00+01:00")
    assert cal.business_elapsed(sat - HOUR_US, sat + DAY_US) == 12 * HOUR_US
    assert cal.local_iso(cal.business_reach(sat, 6 * HOUR_US)) == "2026-11-29T00:00:00+01:00"
    assert cal.local_iso(cal.business_reach(sat, 6 * HOUR_US + 1)) == (
        "2026-11-29T00:00:00.000001+01:00"
    )
    assert cal.local_iso(cal.business_reach(sat, 12 * HOUR_US)) == "2026-11-29T06:00:00+01:00"
    assert cal.local_iso(cal.business_reach(sat, 12 * HOUR_US + 1)) == (
        "2026-12-05T18:00:00.000001+01:00"
    )


REACH = [
    # (start, amount, reach) with EXAMPLE in Madrid. A target that ends exactly at a
    # range end is reached there; one microsecond more jumps to the next opening:
    #   Mon 07:00 ======= 13:00 | lunch | 14:00 ======= 19:00 | night | Tue 07:00
    #                         ^ reach(6 h)       ^ reach(6 h + 1 µs) = 14:00:00.000001
    ("2026-11-23T07:00:00+01:00", 6 * HOUR_US, "2026-11-23T13:00:00+01:00"),
    ("2026-11-23T07:00:00+01:00", 6 * HOUR_US + 1, "2026-11-23T14:00:00.000001+01:00"),
    ("2026-11-23T07:00:00+01:00", 11 * HOUR_US, "2026-11-23T19:00:00+01:00"),
    ("2026-11-23T07:00:00+01:00", 11 * HOUR_US + 1, "2026-11-24T07:00:00.000001+01:00"),
    # From closed time: the clock starts at the next opening.
    ("2026-11-23T03:00:00+01:00", HOUR_US, "2026-11-23T08:00:00+01:00"),
    ("2026-11-23T13:10:00+01:00", HOUR_US, "2026-11-23T15:00:00+01:00"),
    # Friday 14:00 + 2 h: 1 h on Friday, the weekend is closed, 1 h on Monday.
    ("2026-11-27T14:00:00+01:00", 2 * HOUR_US, "2026-11-30T08:00:00+01:00"),
    # Thursday 2026-12-24 18:00 + 2 h skips Christmas Friday.
    ("2026-12-24T18:00:00+01:00", 2 * HOUR_US, "2026-12-28T08:00:00+01:00"),
    # Nothing to wait for.
    ("2026-11-23T03:00:00+01:00", 0, "2026-11-23T03:00:00+01:00"),
    ("2026-11-23T03:00:00+01:00", -5, "2026-11-23T03:00:00+01:00"),
]


@pytest.mark.parametrize(("start", "amount", "reach"), REACH)
def test_business_reach(start: str, amount: int, reach: str) -> None:
    cal = Calendar(MADRID, hm("07:00"), EXAMPLE, HOLIDAYS)
    got = cal.business_reach(at(start), amount)
    assert cal.local_iso(got) == reach
    if amount > 0:
        assert cal.business_elapsed(at(start), got) == amount
        assert cal.business_elapsed(at(start), got - 1) == amount - 1


def test_breach_and_at_risk_as_instants() -> None:
    # Opened Monday 12:00 with a 2 h business target, at-risk share 0.75:
    #   12:00 == 13:00 | lunch | 14:00 ==== 14:30 ==== 15:00 ==== 15:00:00.000001
    #                                       at risk    elapsed=2h  breached
    cal = Calendar(MADRID, 0, EXAMPLE)
    opened, target = at("2026-11-23T12:00:00+01:00"), 2 * HOUR_US
    breach = cal.business_reach(opened, target + 1)
    risk = cal.business_reach(opened, at_risk_amount(target, 0.75))
    assert cal.local_iso(breach) == "2026-11-23T15:00:00.000001+01:00"
    assert cal.local_iso(risk) == "2026-11-23T14:30:00+01:00"
    for clock in (risk - 1, risk, breach - 1, breach, breach + HOUR_US):
        elapsed = cal.business_elapsed(opened, clock)
        assert (elapsed > target) == (clock >= breach)
        assert (elapsed >= 0.75 * target) == (clock >= risk)


@pytest.mark.parametrize(
    ("target", "share", "amount"),
    [(1_000_000, 0.8, 800_000), (3, 0.5, 2), (7, 1.0, 7), (7, 0.0, 0), (10**15, 0.1, 10**14)],
)
def test_at_risk_amount_is_an_exact_ceiling(target: int, share: float, amount: int) -> None:
    assert at_risk_amount(target, share) == amount


def test_never_open_calendars() -> None:
    closed = Calendar(MADRID)
    assert closed.business_reach(0, 1) == NEVER
    assert closed.business_reach(0, 0) == 0
    assert closed.business_elapsed(0, 10 * DAY_US) == 0
    every_day_off = Calendar(MADRID, 0, EXAMPLE, is_holiday=lambda day: True)
    assert every_day_off.business_reach(at("2026-01-01T00:00:00+00:00"), 1) == NEVER
    assert every_day_off.business_elapsed(0, 30 * DAY_US) == 0


def test_years_of_business_time_and_times_before_1970() -> None:
    cal = Calendar("UTC", 0, week(mon=["00:00-24:00"]))
    # 1969-12-29 was a Monday.
    monday = at("1969-12-29T00:00:00+00:00")
    assert cal.business_elapsed(monday - 7 * DAY_US, monday + DAY_US) == 2 * DAY_US
    assert cal.business_elapsed(monday, monday + 520 * 7 * DAY_US) == 520 * DAY_US
    assert cal.business_reach(monday, 520 * DAY_US) == monday + 519 * 7 * DAY_US + DAY_US


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"day_start_minute": 1440}, "1440"),
        ({"hours": {7: [(0, 60)]}}, "weekday 7"),
        ({"hours": {0: [(600, 540)]}}, "600-540"),
        ({"hours": {0: [(0, 1441)]}}, "0-1441"),
    ],
)
def test_calendar_refuses_bad_arguments(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Calendar(**kwargs)  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------------

# Range ends on a half-hour grid, drawn often from the hours the clocks change in
# (all on Sundays here), so that ends fall into gaps and folds.
dst_minutes = st.sampled_from([60, 90, 120, 135, 150, 180, 210])
half_hours = st.integers(0, 48).map(lambda n: n * 30)
range_ends = st.one_of(dst_minutes, half_hours)
ranges = st.tuples(range_ends, range_ends).filter(lambda r: r[0] < r[1])
weekdays = st.one_of(st.just(6), st.integers(0, 6))
weekly = st.dictionaries(weekdays, st.lists(ranges, max_size=3), max_size=7)
holiday_sets = st.lists(
    st.integers(-4, 4).map(lambda n: dt.date(2026, 10, 25) + dt.timedelta(days=n)), max_size=3
)


class Case(NamedTuple):
    zone: str
    hours: dict[int, list[tuple[int, int]]]
    holidays: list[dt.date]
    start: int

    def calendar(self) -> Calendar:
        return Calendar(self.zone, 0, self.hours, self.holidays)


@st.composite
def cases(draw: st.DrawFn, spread_us: int) -> Case:
    """A calendar and a start within ``spread_us`` of one of its zone's DST changes."""
    zone = draw(st.sampled_from(sorted(ZONE_ANCHORS)))
    anchor = draw(st.sampled_from(ZONE_ANCHORS[zone]))
    day = (EPOCH + dt.timedelta(microseconds=anchor)).date()
    offsets = st.integers(-3, 3).map(lambda n: day + dt.timedelta(days=n))
    holidays = draw(st.lists(offsets, max_size=2))
    return Case(zone, draw(weekly), holidays, anchor + draw(st.integers(-spread_us, spread_us)))


@settings(max_examples=300, deadline=None)
@given(case=cases(4 * DAY_US), amount=st.integers(-10, 12 * DAY_US))
def test_reach_inverts_elapsed(case: Case, amount: int) -> None:
    cal, start = case.calendar(), case.start
    got = cal.business_reach(start, amount)
    if amount <= 0:
        assert got == start
    elif got < NEVER:
        assert cal.business_elapsed(start, got) == amount
        assert cal.business_elapsed(start, got - 1) < amount
    else:
        assert cal.business_elapsed(start, start + 30 * DAY_US) < amount


@settings(max_examples=300, deadline=None)
@given(case=cases(4 * DAY_US), b=st.integers(0, 3 * DAY_US), c=st.integers(0, 3 * DAY_US))
def test_elapsed_is_additive(case: Case, b: int, c: int) -> None:
    cal, a = case.calendar(), case.start
    mid, end = a + b, a + b + c
    whole = cal.business_elapsed(a, end)
    assert cal.business_elapsed(a, mid) + cal.business_elapsed(mid, end) == whole
    assert 0 <= whole <= end - a


def reference_elapsed(
    zone: str,
    hours: Mapping[int, Sequence[tuple[int, int]]],
    holidays: Sequence[dt.date],
    start: int,
    end: int,
) -> int:
    """Minute by minute, from the contract's words alone (minute-aligned start and end).

    An opening range of local date D runs from the first minute at which the wall clock
    reads D+start (or later, past a gap) up to the first at which it reads D+end.
    """
    tz = ZoneInfo(zone)
    lo = start - 2 * DAY_US
    minutes = range(lo, end + 2 * DAY_US, MINUTE_US)
    walls = [
        (EPOCH + dt.timedelta(microseconds=u)).astimezone(tz).replace(tzinfo=None) for u in minutes
    ]

    def first_reach(wall: dt.datetime) -> int:
        return next(lo + i * MINUTE_US for i, w in enumerate(walls) if w >= wall)

    open_minutes: set[int] = set()
    day = walls[0].date() + dt.timedelta(days=1)
    while day < walls[-1].date() - dt.timedelta(days=1):
        midnight = dt.datetime(day.year, day.month, day.day)
        if day not in holidays:
            for s, e in hours.get(day.weekday(), ()):
                a = first_reach(midnight + dt.timedelta(minutes=s))
                b = first_reach(midnight + dt.timedelta(minutes=e))
                open_minutes.update(range(a, b, MINUTE_US))
        day += dt.timedelta(days=1)
    return sum(MINUTE_US for u in range(start, end, MINUTE_US) if u in open_minutes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(2 * DAY_US), length=st.integers(0, 3 * 1440))
def test_elapsed_matches_a_minute_by_minute_reference(case: Case, length: int) -> None:
    start = case.start - case.start % MINUTE_US
    end = start + length * MINUTE_US
    expected = reference_elapsed(case.zone, case.hours, case.holidays, start, end)
    assert case.calendar().business_elapsed(start, end) == expected


def test_reference_agrees_on_the_dst_table() -> None:
    # The reference itself, checked on a case worked out by hand above.
    hours = week(sun=["02:30-04:00"])
    start = at("2026-10-24T00:00:00+00:00")
    assert reference_elapsed(MADRID, hours, [], start, start + 3 * DAY_US) == 150 * MINUTE_US
