"""The definitions file (tables.definitions): contract section 9 and its extension."""

from __future__ import annotations

import dataclasses
import datetime as dt
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tables.calendar import US
from tables.definitions import (
    Definitions,
    DefinitionsError,
    SlaPolicy,
    definitions_from_toml,
    parse_definitions,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED_EXAMPLE = ROOT.parent / "shared" / "contract" / "examples" / "v2.rules.toml"
HOUR_US = 3600 * US

# The contract's public example, copied into tests/contract so that a lone clone runs the
# suite; the copy is checked against the contract checkout beside the repository when there
# is one.
EXAMPLE = (ROOT / "tests" / "contract" / "v2.rules.toml").read_text()


def parse(text: str) -> Definitions:
    return definitions_from_toml(textwrap.dedent(text), "defs.toml")


@pytest.fixture(scope="module")
def example() -> Definitions:
    return definitions_from_toml(EXAMPLE, "v2.rules.toml")


def test_the_copy_of_the_contract_example_is_current() -> None:
    if not SHARED_EXAMPLE.is_file():
        pytest.skip("no contract checkout beside the repository to compare with")
    assert SHARED_EXAMPLE.read_text() == EXAMPLE


# -- the public example -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "channel", "seconds"),
    [
        ("billing", "voice", 30),  # "billing"
        ("tech", "chat", 60),  # "tech/chat"
        ("tech", "email", 3600),  # "*/email"
        ("billing", "email", 30),  # the queue beats */channel
        ("sales", "voice", 20),  # threshold_seconds
    ],
)
def test_example_thresholds(example: Definitions, queue: str, channel: str, seconds: int) -> None:
    assert example.threshold_for(queue, channel) == seconds * US


@pytest.mark.parametrize(
    ("priority", "queue", "index"),
    [
        ("high", "tech", 0),
        ("urgent", "sales", 0),
        ("normal", "billing", 1),
        (None, "tech", 1),
        ("low", "sales", -1),
        (None, "sales", -1),
    ],
)
def test_example_policies(
    example: Definitions, priority: str | None, queue: str, index: int
) -> None:
    assert example.policy_for(priority, queue) == index


def test_example_values(example: Definitions) -> None:
    assert example.timezone == "Europe/Madrid"
    assert example.day_start_minute == 7 * 60
    assert example.repeat_window_us == 3600 * US
    assert example.agent_hourly_cost == 30.0
    assert example.at_risk_share == 0.75
    assert example.short_abandon_us == 5 * US
    assert example.hours[0] == ((7 * 60, 13 * 60), (14 * 60, 19 * 60))
    assert 5 not in example.hours and 6 not in example.hours
    assert example.holidays == {dt.date(2026, 12, 25), dt.date(2027, 1, 1)}
    assert example.sla[0] == SlaPolicy(
        "urgent", frozenset({"urgent", "high"}), None, 900 * US, 3600 * US, False
    )
    assert example.sla[1] == SlaPolicy(
        "standard", None, frozenset({"billing", "tech"}), 1800 * US, None, True
    )


def test_example_calendar(example: Definitions) -> None:
    cal = example.calendar()
    assert cal is example.calendar()
    monday = 1_795_410_000 * US  # 2026-11-23T06:00:00+01:00
    assert cal.local_iso(monday) == "2026-11-23T06:00:00+01:00"
    assert cal.day_start(monday) == monday - 23 * HOUR_US  # Sunday 07:00
    assert cal.business_elapsed(monday, monday + 24 * HOUR_US) == 11 * HOUR_US
    friday = monday + 32 * 24 * HOUR_US  # 2026-12-25, a holiday
    assert cal.business_elapsed(friday, friday + 24 * HOUR_US) == 0


# -- defaults -----------------------------------------------------------------------------


def test_no_keys_at_all_is_version_1() -> None:
    for defs in (parse(""), parse_definitions({}), parse("# nothing\n"), Definitions()):
        assert defs == Definitions()
    defs = Definitions()
    assert defs.timezone == "UTC" and defs.day_start_minute == 0
    assert defs.threshold_for("any", "voice") == 20 * US
    assert defs.short_abandon_us == 0
    assert defs.repeat_window_us == 86_400 * US
    assert defs.agent_hourly_cost is None
    assert defs.at_risk_share == 0.8
    assert defs.sla == () and defs.policy_for("high", "tech") == -1
    assert defs.calendar().day_start(90_000 * US) == 86_400 * US
    assert defs.calendar().business_elapsed(0, 7 * 86_400 * US) == 0


def test_alert_rules_in_the_same_file_are_left_alone() -> None:
    text = """
        timezone = "Europe/Madrid"
        [[rule]]
        name = "service-level"
        kpi = "service_level"
        anything = "goes"
    """
    assert parse(text).timezone == "Europe/Madrid"
    with pytest.raises(DefinitionsError, match=r"defs\.toml: rule = .*unknown key"):
        definitions_from_toml(textwrap.dedent(text), "defs.toml", ignore=())
    assert parse_definitions({"extra": 1}, "x", ignore=("extra",)) == Definitions()


# -- values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("threshold_seconds = 0", 0),
        ("threshold_seconds = 15", 15 * US),
        ("threshold_seconds = 0.1", 100_000),
        ("threshold_seconds = 1.5", 1_500_000),
        ("threshold_seconds = 2.0000004", 2_000_000),
        ("threshold_seconds = 2.0000006", 2_000_001),
        ("threshold_seconds = 123456789012", 123456789012 * US),
    ],
)
def test_seconds_become_whole_microseconds(text: str, micros: int) -> None:
    assert parse(f"[service_level]\n{text}").threshold_us == micros


@given(st.floats(min_value=0, max_value=10**9, allow_nan=False))
def test_any_non_negative_float_of_seconds_is_rounded(seconds: float) -> None:
    defs = parse_definitions({"service_level": {"short_abandon_seconds": seconds}})
    assert defs.short_abandon_us == round(seconds * US)


def test_threshold_precedence() -> None:
    defs = parse(
        """
        [service_level]
        threshold_seconds = 10
        [service_level.thresholds]
        "billing/chat" = 1
        "billing" = 2
        "*/chat" = 3
        "a/b/voice" = 4
        """
    )
    assert defs.threshold_for("billing", "chat") == 1 * US
    assert defs.threshold_for("billing", "voice") == 2 * US
    assert defs.threshold_for("tech", "chat") == 3 * US
    assert defs.threshold_for("tech", "voice") == 10 * US
    assert defs.threshold_for("a/b", "voice") == 4 * US  # the channel is after the last "/"


def test_policy_matching() -> None:
    defs = parse(
        """
        [[ticket_sla]]
        name = "nothing"
        queues = []
        first_reply_seconds = 1
        [[ticket_sla]]
        name = "vip"
        priorities = ["vip"]
        resolution_seconds = 1
        [[ticket_sla]]
        name = "billing"
        queues = ["billing"]
        first_reply_seconds = 1
        [[ticket_sla]]
        name = "rest"
        first_reply_seconds = 0
        """
    )
    assert defs.policy_for("vip", "billing") == 1
    assert defs.policy_for(None, "billing") == 2  # no priority: not "vip"
    assert defs.policy_for("low", "billing") == 2
    assert defs.policy_for("low", "sales") == 3
    assert defs.policy_for(None, "") == 3
    assert defs.sla[3].first_reply_us == 0 and defs.sla[3].resolution_us is None
    assert defs.sla[0].queues == frozenset()


def test_business_hours_are_merged_and_holidays_read_both_ways() -> None:
    defs = parse(
        """
        [business_hours]
        mon = ["11:00-13:00", "09:00-12:00", "13:00-14:00", "16:00-17:00"]
        tue = []
        sat = ["00:00-24:00", "10:00-11:00"]
        holidays = ["2026-12-25", 2027-01-01, "2026-12-25"]
        """
    )
    assert dict(defs.hours) == {0: ((540, 840), (960, 1020)), 5: ((0, 1440),)}
    assert defs.holidays == {dt.date(2026, 12, 25), dt.date(2027, 1, 1)}


def test_public_holidays_by_country() -> None:
    defs = parse(
        """
        timezone = "Europe/Madrid"
        [business_hours]
        mon = ["00:00-24:00"]
        fri = ["00:00-24:00"]
        holiday_country = "ES"
        holiday_subdivision = "MD"
        holidays = ["2026-11-23"]
        """
    )
    assert (defs.holiday_country, defs.holiday_subdivision) == ("ES", "MD")
    cal = defs.calendar()
    assert cal.closed_on(dt.date(2026, 10, 12))  # national day, a Monday
    assert cal.closed_on(dt.date(2026, 11, 23))  # the explicit date
    assert not cal.closed_on(dt.date(2026, 10, 19))
    assert cal.closed_on(dt.date(2041, 10, 12))  # years come lazily
    oct_12 = 1_791_756_000 * US  # 2026-10-12T00:00:00+02:00
    assert cal.local_iso(oct_12) == "2026-10-12T00:00:00+02:00"
    assert cal.business_elapsed(oct_12, oct_12 + 48 * HOUR_US) == 0
    assert cal.business_elapsed(oct_12, oct_12 + 8 * 24 * HOUR_US) == 48 * HOUR_US


def test_definitions_are_read_only() -> None:
    defs = parse('[service_level.thresholds]\n"billing" = 30')
    with pytest.raises(dataclasses.FrozenInstanceError):
        defs.timezone = "Europe/Madrid"  # type: ignore[misc]
    with pytest.raises(TypeError):
        defs.thresholds["billing"] = 1  # type: ignore[index]
