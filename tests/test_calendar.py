"""The center's local clock (tables.calendar, tables.business): contract sections 5, 6.3, 8.

Expected values are written as local ISO times with their offsets, so every
table reads like the wall clock an operator sees. The DST days used most:

    Europe/Madrid 2026-03-29, spring forward 02:00 CET -> 03:00 CEST (the day has 23 h)
      UTC    00:00       00:30      |01:00       01:30
      local  01:00+01    01:30+01   |03:00+02    03:30+02     02:00..02:59 never shown

    Europe/Madrid 2026-10-25, fall back 03:00 CEST -> 02:00 CET (the day has 25 h)
      UTC    00:00       00:30      |01:00       01:30        02:00
      local  02:00+02    02:30+02   |02:00+01    02:30+01     03:00+01
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.calendar import MINUTE_US, Calendar
from tests.calhelp import (
    ANCHORS,
    DAY_US,
    EPOCH,
    HOUR_US,
    MADRID,
    ZONE_NAMES,
    at,
    hm,
    rows,
)


def iso(text: str) -> str:
    """A local ISO time written short in a table, as ``local_iso`` writes it."""
    return dt.datetime.fromisoformat(text).isoformat()


# -- day starts ---------------------------------------------------------------------------

DAY_STARTS = rows("""
    # day start, clock, day_start(clock), next_day_start(clock)
    # 06:00 on the 23-hour day: 06:00+01 (Sat) .. 06:00+02 (Sun) is 23 real hours.
    06:00  2026-03-29T05:00+02:00  2026-03-28T06:00+01:00  2026-03-29T06:00+02:00
    06:00  2026-03-29T06:00+02:00  2026-03-29T06:00+02:00  2026-03-30T06:00+02:00
    # 07:00 on the 25-hour day; a clock in the repeated hour belongs to the day before.
    07:00  2026-10-25T12:00+01:00  2026-10-25T07:00+01:00  2026-10-26T07:00+01:00
    07:00  2026-10-25T02:30+01:00  2026-10-24T07:00+02:00  2026-10-25T07:00+01:00
    07:00  2026-10-25T06:59+01:00  2026-10-24T07:00+02:00  2026-10-25T07:00+01:00
    # 02:30 inside the gap: the day starts at the first instant after it, 03:00+02.
    #   01:59:59+01 | 03:00+02 <- day start of 2026-03-29
    02:30  2026-03-29T01:59:59+01:00  2026-03-28T02:30+01:00  2026-03-29T03:00+02:00
    02:30  2026-03-29T03:00+02:00  2026-03-29T03:00+02:00  2026-03-30T02:30+02:00
    02:30  2026-03-29T12:00+02:00  2026-03-29T03:00+02:00  2026-03-30T02:30+02:00
    # 02:30 inside the fold: its first occurrence; the second one does not restart the day.
    #   02:29:59+02 | 02:30+02 <- day start ... 02:30+01 (same day) ... 2026-10-26 02:30+01
    02:30  2026-10-25T02:29:59+02:00  2026-10-24T02:30+02:00  2026-10-25T02:30+02:00
    02:30  2026-10-25T02:30+02:00  2026-10-25T02:30+02:00  2026-10-26T02:30+01:00
    02:30  2026-10-25T02:30+01:00  2026-10-25T02:30+02:00  2026-10-26T02:30+01:00
    02:30  2026-10-25T02:45+01:00  2026-10-25T02:30+02:00  2026-10-26T02:30+01:00
""")


@pytest.mark.parametrize(("start", "clock", "day_start", "next_start"), DAY_STARTS)
def test_madrid_day_starts(start: str, clock: str, day_start: str, next_start: str) -> None:
    cal = Calendar(MADRID, hm(start))
    assert cal.local_iso(cal.day_start(at(clock))) == iso(day_start)
    assert cal.local_iso(cal.next_day_start(at(clock))) == iso(next_start)


def test_day_start_of_utc_default_is_utc_midnight() -> None:
    cal = Calendar()
    for t in (0, 1, DAY_US - 1, DAY_US, at("2026-11-22T10:00:03.250+00:00"), -1):
        assert cal.day_start(t) == t - t % DAY_US
        assert cal.next_day_start(t) == t - t % DAY_US + DAY_US
        assert cal.interval_start(t, "1d") == cal.day_start(t)


TODAY_CLIP = [
    # Day start 00:00 in Madrid. The 25-hour day 2026-10-25 starts at 00:00+02 (22:00Z
    # the day before); 1440 buckets after it is 23:00+01, so from there on its first
    # hour falls out of `today` one bucket a minute:
    #   00:00+02 ......................... 22:59+01 | 23:00+01 ... 23:59+01 | 00:00+01
    #   [bucket B ........ B+1439]  = 1440            B+1 .. B+1440           next day
    ("2026-10-25T22:59:30+01:00", "2026-10-25T00:00:00+02:00"),
    ("2026-10-25T23:00:00+01:00", "2026-10-25T00:01:00+02:00"),
    ("2026-10-25T23:59:59+01:00", "2026-10-25T01:00:00+02:00"),
    ("2026-10-26T00:00:00+01:00", "2026-10-26T00:00:00+01:00"),
    # The 23-hour day never reaches the clip.
    ("2026-03-29T23:59:59+02:00", "2026-03-29T00:00:00+01:00"),
    ("2026-10-25T12:00:00+01:00", "2026-10-25T00:00:00+02:00"),
]


@pytest.mark.parametrize(("clock", "first"), TODAY_CLIP)
def test_today_never_holds_more_than_1440_buckets(clock: str, first: str) -> None:
    cal = Calendar(MADRID)
    t = at(clock)
    got = cal.today_first_bucket(t)
    assert got == at(first) // MINUTE_US
    assert t // MINUTE_US - got + 1 <= 1440


# -- report intervals ---------------------------------------------------------------------

INTERVALS = rows("""
    # zone, interval, clock, interval_start(clock), next_interval_start(clock)
    # Madrid fall back, 30m: both 02:00s and both 02:30s start an interval of 30 minutes.
    #   02:00+02  02:30+02 | 02:00+01  02:30+01  03:00+01
    Madrid    30m  2026-10-25T02:10+02:00  2026-10-25T02:00+02:00  2026-10-25T02:30+02:00
    Madrid    30m  2026-10-25T02:40+02:00  2026-10-25T02:30+02:00  2026-10-25T02:00+01:00
    Madrid    30m  2026-10-25T02:10+01:00  2026-10-25T02:00+01:00  2026-10-25T02:30+01:00
    Madrid    30m  2026-10-25T02:40+01:00  2026-10-25T02:30+01:00  2026-10-25T03:00+01:00
    Madrid    1h   2026-10-25T02:40+02:00  2026-10-25T02:00+02:00  2026-10-25T02:00+01:00
    Madrid    15m  2026-10-25T02:50+02:00  2026-10-25T02:45+02:00  2026-10-25T02:00+01:00
    # Madrid spring forward: 02:00, 02:15 ... 02:45 do not exist and merge into 03:00+02.
    #   01:30+01  01:45+01 | 03:00+02  03:15+02
    Madrid    30m  2026-03-29T01:40+01:00  2026-03-29T01:30+01:00  2026-03-29T03:00+02:00
    Madrid    15m  2026-03-29T01:50+01:00  2026-03-29T01:45+01:00  2026-03-29T03:00+02:00
    Madrid    15m  2026-03-29T03:10+02:00  2026-03-29T03:00+02:00  2026-03-29T03:15+02:00
    Madrid    1h   2026-03-29T01:59+01:00  2026-03-29T01:00+01:00  2026-03-29T03:00+02:00
    Madrid    1d   2026-10-25T23:00+01:00  2026-10-25T00:00+02:00  2026-10-26T00:00+01:00
    # New York: fall back 02:00 EDT -> 01:00 EST; spring forward 02:00 EST -> 03:00 EDT.
    NewYork   1h   2026-11-01T01:30-04:00  2026-11-01T01:00-04:00  2026-11-01T01:00-05:00
    NewYork   1h   2026-11-01T01:30-05:00  2026-11-01T01:00-05:00  2026-11-01T02:00-05:00
    NewYork   1h   2026-03-08T01:30-05:00  2026-03-08T01:00-05:00  2026-03-08T03:00-04:00
    NewYork   15m  2026-06-15T10:07-04:00  2026-06-15T10:00-04:00  2026-06-15T10:15-04:00
    NewYork   1d   2026-06-15T00:00-04:00  2026-06-15T00:00-04:00  2026-06-16T00:00-04:00
    # Kathmandu, +05:45: local hours start at UTC :15.
    Kathmandu 1h   2026-06-15T10:07+05:45  2026-06-15T10:00+05:45  2026-06-15T11:00+05:45
    Kathmandu 30m  2026-06-15T10:31+05:45  2026-06-15T10:30+05:45  2026-06-15T11:00+05:45
    Kathmandu 15m  2026-06-15T00:14+05:45  2026-06-15T00:00+05:45  2026-06-15T00:15+05:45
    Kathmandu 1d   2026-06-15T05:44+05:45  2026-06-15T00:00+05:45  2026-06-16T00:00+05:45
    # Lord Howe, a 30-minute DST. Fall back 02:00+11 -> 01:30+10:30 (01:30..01:59 twice):
    #   01:00+11  01:30+11 | 01:30+10:30  02:00+10:30
    LordHowe  30m  2026-04-05T01:45+11:00  2026-04-05T01:30+11:00  2026-04-05T01:30+10:30
    LordHowe  30m  2026-04-05T01:45+10:30  2026-04-05T01:30+10:30  2026-04-05T02:00+10:30
    # ... no aligned hour in the repeated half hour: that hour interval lasts 90 minutes.
    LordHowe  1h   2026-04-05T01:45+11:00  2026-04-05T01:00+11:00  2026-04-05T02:00+10:30
    LordHowe  1h   2026-04-05T01:45+10:30  2026-04-05T01:00+11:00  2026-04-05T02:00+10:30
    # Spring forward 02:00+10:30 -> 02:30+11 (02:00..02:29 never shown): 02:00 -> 02:30+11.
    #   01:30+10:30 | 02:30+11  03:00+11
    LordHowe  1h   2026-10-04T01:45+10:30  2026-10-04T01:00+10:30  2026-10-04T02:30+11:00
    LordHowe  1h   2026-10-04T02:40+11:00  2026-10-04T02:30+11:00  2026-10-04T03:00+11:00
    LordHowe  30m  2026-10-04T01:45+10:30  2026-10-04T01:30+10:30  2026-10-04T02:30+11:00
    LordHowe  30m  2026-10-04T02:30+11:00  2026-10-04T02:30+11:00  2026-10-04T03:00+11:00
""")


@pytest.mark.parametrize(("zone", "interval", "clock", "start", "next_start"), INTERVALS)
def test_interval_starts(zone: str, interval: str, clock: str, start: str, next_start: str) -> None:
    cal = Calendar(ZONE_NAMES[zone])
    t = at(clock)
    assert cal.local_iso(cal.interval_start(t, interval)) == iso(start)
    assert cal.local_iso(cal.next_interval_start(t, interval)) == iso(next_start)


def test_kathmandu_hours_start_at_quarter_past_utc() -> None:
    cal = Calendar("Asia/Kathmandu")
    start = cal.interval_start(at("2026-06-15T10:07:00+05:45"), "1h")
    assert start % HOUR_US == 15 * MINUTE_US


def test_unknown_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="2h"):
        Calendar().interval_start(0, "2h")


ZONES = [MADRID, "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"]
YEAR_2026 = (at("2026-01-01T00:00:00+00:00"), at("2027-01-01T00:00:00+00:00"))


def offset(zone: str, t_us: int) -> dt.timedelta | None:
    return (EPOCH + dt.timedelta(microseconds=t_us)).astimezone(ZoneInfo(zone)).utcoffset()


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    interval=st.sampled_from(["15m", "30m", "1h"]),
    t=st.one_of(st.integers(*YEAR_2026), st.sampled_from(ANCHORS).map(lambda a: a + 3 * HOUR_US)),
)
def test_interval_start_is_an_aligned_wall_time_or_a_gap_end(
    zone: str, interval: str, t: int
) -> None:
    cal = Calendar(zone)
    step = {"15m": 15, "30m": 30, "1h": 60}[interval]
    start = cal.interval_start(t, interval)
    end = cal.next_interval_start(t, interval)
    assert start <= t < end
    assert cal.interval_start(start, interval) == start
    assert cal.interval_start(end - 1, interval) == start
    assert cal.next_interval_start(start, interval) == end
    local = dt.datetime.fromisoformat(cal.local_iso(start))
    aligned = (
        local.hour * 60 + local.minute
    ) % step == 0 and local.second == local.microsecond == 0
    assert aligned or offset(zone, start - 1) != offset(zone, start)
    # Cut at every aligned wall time: never longer than a step plus a DST shift.
    assert end - start <= (step + 60) * MINUTE_US


# -- local ISO ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "t", "text"),
    [
        ("UTC", 0, "1970-01-01T00:00:00+00:00"),
        ("UTC", at("2026-11-22T10:00:03.250+00:00"), "2026-11-22T10:00:03.250000+00:00"),
        (MADRID, at("2026-11-23T05:00:00+00:00"), "2026-11-23T06:00:00+01:00"),
        (MADRID, at("2026-10-25T01:30:00+00:00"), "2026-10-25T02:30:00+01:00"),
        ("Asia/Kathmandu", at("2026-06-15T04:15:00+00:00"), "2026-06-15T10:00:00+05:45"),
        ("America/New_York", 1, "1969-12-31T19:00:00.000001-05:00"),
    ],
)
def test_local_iso(zone: str, t: int, text: str) -> None:
    assert Calendar(zone).local_iso(t) == text


