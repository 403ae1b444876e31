"""Helpers of the calendar and business-time tests: times written as the wall clock reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from tables.calendar import US

HOUR_US = 3600 * US
DAY_US = 86_400 * US
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def at(iso: str) -> int:
    """Microseconds since the epoch of an ISO time with an offset."""
    return (dt.datetime.fromisoformat(iso) - EPOCH) // dt.timedelta(microseconds=1)


def hm(text: str) -> int:
    hh, mm = text.split(":")
    return int(hh) * 60 + int(mm)


def week(**days: Sequence[str]) -> dict[int, list[tuple[int, int]]]:
    """Opening hours from ``mon=["07:00-13:00", ...]``."""
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    out: dict[int, list[tuple[int, int]]] = {}
    for name, ranges in days.items():
        out[names.index(name)] = [(hm(r[:5]), hm(r[6:])) for r in ranges]
    return out


def rows(text: str) -> list[tuple[str, ...]]:
    """The rows of a table written as text: whitespace-separated columns, # comments."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(tuple(line.split()))
    return out


MADRID = "Europe/Madrid"
ZONE_NAMES = {
    "Madrid": MADRID,
    "NewYork": "America/New_York",
    "Kathmandu": "Asia/Kathmandu",
    "LordHowe": "Australia/Lord_Howe",
}


# The DST changes of each zone (UTC), so that random spans cross them often.
ZONE_ANCHORS = {
    "Europe/Madrid": [at("2026-03-29T01:00:00+00:00"), at("2026-10-25T01:00:00+00:00")],
    "America/New_York": [at("2026-03-08T07:00:00+00:00"), at("2026-11-01T06:00:00+00:00")],
    "Australia/Lord_Howe": [at("2026-04-04T15:00:00+00:00"), at("2026-10-03T15:30:00+00:00")],
    "Asia/Kathmandu": [at("2026-12-24T00:00:00+00:00")],
}
ANCHORS = [t for ts in ZONE_ANCHORS.values() for t in ts]
