"""The definitions file (contract section 9): the settings that change KPI numbers.

Time zone, day start, service-level thresholds, short abandons, the repeat
window, cost per hour, business hours and ticket SLA policies all move KPI
values, so they live in one file that live mode, replay and reports read
alike. A broken file must stop the processor at start with a message that
names the key and its value: a typo that silently fell back to a default
would publish wrong numbers that look right. Hence every unknown key is an
error at every level, and the file is validated whole before anything is
built from it (never half applied). Every key is optional; the defaults
reproduce contract version 1 (``today`` in UTC).

Messages start with the file's name, then the key path and the value, e.g.
``defs.toml: ticket_sla[1].first_reply_seconds = -5: must not be negative``.
Array indexes in paths count from 0, as in jq and as ``policy_for`` counts.

The same file carries the alert rules under ``[[rule]]``, which another
module parses; the top-level keys in ``ignore`` are left to it.

A ticket SLA policy on business hours is accepted even when no opening range
is defined anywhere (the contract lets every day be closed): its elapsed time
then stays 0 and it never breaches.

Extension beyond the contract: public holidays by country. ::

    [business_hours]
    holiday_country = "ES"          # ISO 3166 code known to the `holidays` package
    holiday_subdivision = "MD"      # optional, one of that country's subdivisions

closes the public holidays of that country (and subdivision), as listed by the
``holidays`` package, next to the explicit ``holidays`` dates. The package
computes the holidays of each year when first asked, so a calendar that runs
for years needs no list of dates.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tables.calendar import Calendar, merge_ranges
from tables.tomlread import Reader, key_path
from tables.windows import US

CHANNELS: Final = frozenset({"voice", "chat", "email", "messaging", "social"})
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_REPEAT_WINDOW_SECONDS: Final = 604_800
MAX_NAME_CHARS: Final = 128

_TOP_KEYS: Final = (
    "timezone",
    "day_start",
    "repeat_window_seconds",
    "agent_hourly_cost",
    "at_risk_share",
    "service_level",
    "business_hours",
    "ticket_sla",
)
_SERVICE_LEVEL_KEYS: Final = ("threshold_seconds", "short_abandon_seconds", "thresholds")
_BUSINESS_KEYS: Final = (*WEEKDAYS, "holidays", "holiday_country", "holiday_subdivision")
_POLICY_KEYS: Final = (
    "name",
    "priorities",
    "queues",
    "first_reply_seconds",
    "resolution_seconds",
    "business_hours",
)
_DAY_START = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_RANGE = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class DefinitionsError(ValueError):
    """A definitions file that cannot be used; the message names the key and its value."""


@dataclass(frozen=True)
class SlaPolicy:
    """One ``[[ticket_sla]]`` table; ``None`` matches anything, an empty set nothing."""

    name: str
    priorities: frozenset[str] | None = None
    queues: frozenset[str] | None = None
    first_reply_us: int | None = None
    resolution_us: int | None = None
    business_hours: bool = False

    def matches(self, priority: str | None, queue: str) -> bool:
        if self.priorities is not None and (priority is None or priority not in self.priorities):
            return False
        return self.queues is None or queue in self.queues


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Definitions:
    """The parsed file; every default reproduces contract version 1 (+ ``today`` in UTC).

    Built by :func:`parse_definitions`, which validates; the mappings are read-only.
    """

    timezone: str = "UTC"
    day_start_minute: int = 0
    repeat_window_us: int = 86_400 * US
    agent_hourly_cost: float | None = None
    at_risk_share: float = 0.8
    threshold_us: int = 20 * US
    short_abandon_us: int = 0
    thresholds: Mapping[str, int] = field(default_factory=_empty)
    hours: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=_empty)
    holidays: frozenset[dt.date] = frozenset()
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    sla: tuple[SlaPolicy, ...] = ()

    def threshold_for(self, queue: str, channel: str) -> int:
        """Service-level threshold (µs): queue/channel, then queue, then */channel, then default."""
        found = self.thresholds
        for key in (f"{queue}/{channel}", queue, f"*/{channel}"):
            if key in found:
                return found[key]
        return self.threshold_us

    def public(self) -> dict[str, Any]:
        """What a page shows of the definitions (seconds, names): time zone, day start,
        service-level targets, SLA policies."""
        return {
            "timezone": self.timezone,
            "day_start": f"{self.day_start_minute // 60:02d}:{self.day_start_minute % 60:02d}",
            "threshold_seconds": self.threshold_us / US,
            "short_abandon_seconds": self.short_abandon_us / US,
            "thresholds": {k: v / US for k, v in self.thresholds.items()},
            "at_risk_share": self.at_risk_share,
            "agent_hourly_cost": self.agent_hourly_cost,
            "repeat_window_seconds": self.repeat_window_us / US,
            "sla": [
                {
                    "name": p.name,
                    "priorities": sorted(p.priorities) if p.priorities is not None else None,
                    "queues": sorted(p.queues) if p.queues is not None else None,
                    "first_reply_seconds": None if p.first_reply_us is None
                    else p.first_reply_us / US,
                    "resolution_seconds": None if p.resolution_us is None
                    else p.resolution_us / US,
                    "business_hours": p.business_hours,
                }
                for p in self.sla
            ],
        }

    def policy_for(self, priority: str | None, queue: str) -> int:
        """Index of the first matching SLA policy in file order, -1 when none matches."""
        for index, policy in enumerate(self.sla):
            if policy.matches(priority, queue):
                return index
        return -1

    def calendar(self) -> Calendar:
        """The center's calendar, built on first use and kept (its caches are worth keeping)."""
        built: Calendar | None = self.__dict__.get("_calendar")
        if built is None:
            is_holiday: Callable[[dt.date], bool] | None = None
            if self.holiday_country is not None:
                is_holiday = _country_holidays(
                    self.holiday_country, self.holiday_subdivision
                ).__contains__
            built = Calendar(
                self.timezone, self.day_start_minute, self.hours, self.holidays, is_holiday
            )
            object.__setattr__(self, "_calendar", built)  # frozen: a cache, not state
        return built


@lru_cache(maxsize=32)
def _country_holidays(country: str, subdivision: str | None) -> Any:
    import holidays  # only files that use the extension need the package

    return holidays.country_holidays(country, subdiv=subdivision)


# -- the sections -----------------------------------------------------------------------


def _minute(hh: str, mm: str) -> int:
    return int(hh) * 60 + int(mm)


def _day_start(read: Reader, value: Any) -> int:
    match = _DAY_START.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        read.fail("day_start", value, 'must be a local time "HH:MM" from 00:00 to 23:59')
    return _minute(*match.groups())


def _zone(read: Reader, value: Any) -> str:
    name = read.string(value, "timezone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        read.fail("timezone", value, "unknown time zone (an IANA name such as Europe/Madrid)")
    return name


def _service_level(read: Reader, value: Any) -> tuple[int, int, dict[str, int]]:
    table = read.table(value, "service_level", _SERVICE_LEVEL_KEYS)
    threshold = 20 * US
    if "threshold_seconds" in table:
        threshold = read.micros(table["threshold_seconds"], "service_level.threshold_seconds")
    short = 0
    if "short_abandon_seconds" in table:
        short = read.micros(table["short_abandon_seconds"], "service_level.short_abandon_seconds")
    thresholds: dict[str, int] = {}
    path = "service_level.thresholds"
    raw = table.get("thresholds", {})
    if not isinstance(raw, Mapping):
        read.fail(path, raw, "must be a table of seconds by queue/channel")
    for key, seconds in raw.items():
        where = f"{path}.{key_path(key)}"
        queue, slash, channel = str(key).rpartition("/")
        if not slash:
            queue, channel = str(key), ""
        if queue == "*" and not slash:
            read.fail(where, seconds, 'a bare "*" is not a key: the default is threshold_seconds')
        if slash and channel not in CHANNELS:
            read.fail(where, seconds, f"channel must be one of {', '.join(sorted(CHANNELS))}")
        if not queue:
            read.fail(where, seconds, 'key must be "<queue>", "<queue>/<channel>" or "*/<channel>"')
        if len(queue) > MAX_NAME_CHARS:
            read.fail(where, seconds, f"a queue name has 1 to {MAX_NAME_CHARS} characters")
        thresholds[str(key)] = read.micros(seconds, where)
    return threshold, short, thresholds


def _range(read: Reader, value: Any, path: str) -> tuple[int, int]:
    if not isinstance(value, str):
        read.fail(path, value, 'must be a string "HH:MM-HH:MM"')
    match = _RANGE.fullmatch(value)
    if match is None:
        read.fail(path, value, 'must be an opening range "HH:MM-HH:MM"')
    h1, m1, h2, m2 = match.groups()
    if int(m1) >= 60 or int(m2) >= 60:
        read.fail(path, value, "minutes must be 00 to 59")
    start, end = _minute(h1, m1), _minute(h2, m2)
    if end > 1440:
        read.fail(path, value, "a range ends at 24:00 at the latest")
    if start >= end:
        read.fail(path, value, "a range must start before it ends")
    return start, end


def _holiday(read: Reader, value: Any, path: str) -> dt.date:
    # A TOML date is a date; a TOML date-time is a datetime, a subclass: not a whole date.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            read.fail(path, value, "is not a date of the calendar")
    read.fail(path, value, 'must be a date, "YYYY-MM-DD" or a TOML date')


def _business_hours(
    read: Reader, value: Any
) -> tuple[dict[int, tuple[tuple[int, int], ...]], frozenset[dt.date], str | None, str | None]:
    table = read.table(value, "business_hours", _BUSINESS_KEYS)
    hours: dict[int, tuple[tuple[int, int], ...]] = {}
    for weekday, day in enumerate(WEEKDAYS):
        if day not in table:
            continue
        path = f"business_hours.{day}"
        spans = table[day]
        if not isinstance(spans, list):
            read.fail(path, spans, 'must be a list of ranges "HH:MM-HH:MM"')
        merged = merge_ranges([_range(read, s, f"{path}[{i}]") for i, s in enumerate(spans)])
        if merged:
            hours[weekday] = merged
    dates = table.get("holidays", [])
    if not isinstance(dates, list):
        read.fail("business_hours.holidays", dates, "must be a list of dates")
    holidays = frozenset(
        _holiday(read, d, f"business_hours.holidays[{i}]") for i, d in enumerate(dates)
    )
    country = subdivision = None
    if "holiday_country" in table:
        country = read.string(table["holiday_country"], "business_hours.holiday_country")
    if "holiday_subdivision" in table:
        path = "business_hours.holiday_subdivision"
        subdivision = read.string(table["holiday_subdivision"], path)
        if country is None:
            read.fail(path, subdivision, "needs business_hours.holiday_country")
    if country is not None:
        # The package raises assorted errors for names it does not know.
        try:
            _country_holidays(country, None)
        except ImportError:
            read.fail("business_hours.holiday_country", country, "needs the package holidays")
        except Exception:
            read.fail("business_hours.holiday_country", country, "unknown country")
        try:
            _country_holidays(country, subdivision)
        except Exception:
            read.fail(
                "business_hours.holiday_subdivision", subdivision, f"not a subdivision of {country}"
            )
    return hours, holidays, country, subdivision


def _policy(read: Reader, value: Any, path: str) -> SlaPolicy:
    table = read.table(value, path, _POLICY_KEYS)
    if "name" not in table:
        read.missing(f"{path}.name", table, "a policy needs a name")
    name = read.string(table["name"], f"{path}.name")
    priorities = queues = None
    if "priorities" in table:
        priorities = read.names(table["priorities"], f"{path}.priorities", MAX_NAME_CHARS)
    if "queues" in table:
        queues = read.names(table["queues"], f"{path}.queues", MAX_NAME_CHARS)
    first_reply = resolution = None
    if "first_reply_seconds" in table:
        first_reply = read.micros(table["first_reply_seconds"], f"{path}.first_reply_seconds")
    if "resolution_seconds" in table:
        resolution = read.micros(table["resolution_seconds"], f"{path}.resolution_seconds")
    if first_reply is None and resolution is None:
        read.fail(path, table, "a policy needs first_reply_seconds and/or resolution_seconds")
    business = table.get("business_hours", False)
    if not isinstance(business, bool):
        read.fail(f"{path}.business_hours", business, "must be true or false")
    return SlaPolicy(name, priorities, queues, first_reply, resolution, business)


def _policies(read: Reader, value: Any) -> tuple[SlaPolicy, ...]:
    if not isinstance(value, list):
        read.fail("ticket_sla", value, "must be [[ticket_sla]] tables")
    policies: list[SlaPolicy] = []
    for i, item in enumerate(value):
        policy = _policy(read, item, f"ticket_sla[{i}]")
        if any(p.name == policy.name for p in policies):
            read.fail(f"ticket_sla[{i}].name", policy.name, "used by an earlier policy")
        policies.append(policy)
    return tuple(policies)


def parse_definitions(
    data: Mapping[str, Any], origin: str = "definitions", ignore: Collection[str] = ("rule",)
) -> Definitions:
    """Validated definitions from parsed TOML; ``DefinitionsError`` names what is wrong."""
    read = Reader(origin, DefinitionsError)
    if not isinstance(data, Mapping):
        read.fail("(file)", data, "must be a table")
    table = read.table({k: v for k, v in data.items() if k not in ignore}, "", _TOP_KEYS)
    out: dict[str, Any] = {}
    if "timezone" in table:
        out["timezone"] = _zone(read, table["timezone"])
    if "day_start" in table:
        out["day_start_minute"] = _day_start(read, table["day_start"])
    if "repeat_window_seconds" in table:
        raw = table["repeat_window_seconds"]
        if read.number(raw, "repeat_window_seconds") > MAX_REPEAT_WINDOW_SECONDS:
            read.fail("repeat_window_seconds", raw, "must be at most 604800 (7 days)")
        out["repeat_window_us"] = read.micros(raw, "repeat_window_seconds")
    if "agent_hourly_cost" in table:
        out["agent_hourly_cost"] = float(
            read.number(table["agent_hourly_cost"], "agent_hourly_cost")
        )
    if "at_risk_share" in table:
        share = read.number(table["at_risk_share"], "at_risk_share")
        if share > 1:
            read.fail("at_risk_share", share, "must be from 0 to 1")
        out["at_risk_share"] = float(share)
    if "service_level" in table:
        threshold, short, thresholds = _service_level(read, table["service_level"])
        out.update(threshold_us=threshold, short_abandon_us=short)
        out["thresholds"] = MappingProxyType(thresholds)
    if "business_hours" in table:
        hours, holidays, country, subdivision = _business_hours(read, table["business_hours"])
        out.update(hours=MappingProxyType(hours), holidays=holidays)
        out.update(holiday_country=country, holiday_subdivision=subdivision)
    if "ticket_sla" in table:
        out["sla"] = _policies(read, table["ticket_sla"])
    return Definitions(**out)


def definitions_from_toml(
    text: str, origin: str, ignore: Collection[str] = ("rule",)
) -> Definitions:
    """Parse and validate the text of a definitions file named ``origin``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionsError(f"{origin}: not valid TOML: {exc}") from exc
    return parse_definitions(data, origin, ignore)
