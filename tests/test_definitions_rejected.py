"""Every definitions file the contract refuses (section 9), refused whole, with a message
that names the file, the key (down to the array index) and the value found there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tables.calendar import US
from tables.definitions import (
    DefinitionsError,
    definitions_from_toml,
    parse_definitions,
)

ROOT = Path(__file__).resolve().parents[1]
HOUR_US = 3600 * US

# The contract's public example, copied into tests/contract so that a lone clone runs the
# suite; the copy is checked against the contract checkout beside the repository when there
# is one.
EXAMPLE = (ROOT / "tests" / "contract" / "v2.rules.toml").read_text()


# -- rejected files -----------------------------------------------------------------------

BROKEN = [
    # (file, the key path in the message, the value as the message shows it)
    ('colour = "red"', "colour", '"red"'),
    ("[extras]\nx = 1", "extras", "{x = 1}"),
    # time zone and day start
    ('timezone = "Mars/Olympus"', "timezone", '"Mars/Olympus"'),
    ('timezone = "Europe"', "timezone", '"Europe"'),
    ('timezone = ""', "timezone", '""'),
    ("timezone = 1", "timezone", "1"),
    ('day_start = "7:00"', "day_start", '"7:00"'),
    ('day_start = "24:00"', "day_start", '"24:00"'),
    ('day_start = "07:60"', "day_start", '"07:60"'),
    ('day_start = "07:00:00"', "day_start", '"07:00:00"'),
    ("day_start = 07:00:00", "day_start", "07:00:00"),
    ("day_start = 7", "day_start", "7"),
    # top-level numbers
    ("repeat_window_seconds = -1", "repeat_window_seconds", "-1"),
    ("repeat_window_seconds = 604801", "repeat_window_seconds", "604801"),
    ("repeat_window_seconds = 604800.5", "repeat_window_seconds", "604800.5"),
    ("repeat_window_seconds = true", "repeat_window_seconds", "true"),
    ('repeat_window_seconds = "3600"', "repeat_window_seconds", '"3600"'),
    ("agent_hourly_cost = -0.5", "agent_hourly_cost", "-0.5"),
    ("agent_hourly_cost = false", "agent_hourly_cost", "false"),
    ("agent_hourly_cost = inf", "agent_hourly_cost", "inf"),
    ("at_risk_share = 1.5", "at_risk_share", "1.5"),
    ("at_risk_share = -0.1", "at_risk_share", "-0.1"),
    ("at_risk_share = nan", "at_risk_share", "nan"),
    ("at_risk_share = true", "at_risk_share", "true"),
    ("at_risk_share = [0.8]", "at_risk_share", "[0.8]"),
    # service level
    ("service_level = 5", "service_level", "5"),
    ("[service_level]\ntreshold_seconds = 20", "service_level.treshold_seconds", "20"),
    ("[service_level]\nthreshold_seconds = -1", "service_level.threshold_seconds", "-1"),
    ("[service_level]\nthreshold_seconds = true", "service_level.threshold_seconds", "true"),
    ('[service_level]\nshort_abandon_seconds = "5"', "service_level.short_abandon_seconds", '"5"'),
    ("[service_level]\nshort_abandon_seconds = -inf", "service_level.short_abandon_seconds",
     "-inf"),
    ("[service_level]\nthresholds = 5", "service_level.thresholds", "5"),
    ('[service_level.thresholds]\n"tech/fax" = 3', 'service_level.thresholds."tech/fax"', "3"),
    ('[service_level.thresholds]\n"*" = 3', 'service_level.thresholds."*"', "3"),
    ('[service_level.thresholds]\n"*/*" = 3', 'service_level.thresholds."*/*"', "3"),
    ('[service_level.thresholds]\n"/voice" = 3', 'service_level.thresholds."/voice"', "3"),
    ('[service_level.thresholds]\n"tech/" = 3', 'service_level.thresholds."tech/"', "3"),
    ('[service_level.thresholds]\n"" = 3', 'service_level.thresholds.""', "3"),
    ('[service_level.thresholds]\n"billing" = -3', "service_level.thresholds.billing", "-3"),
    ('[service_level.thresholds]\n"billing" = true', "service_level.thresholds.billing", "true"),
    ('[service_level.thresholds]\n"billing" = "30"', "service_level.thresholds.billing", '"30"'),
    (f'[service_level.thresholds]\n"{"q" * 129}" = 1', "service_level.thresholds.qqq", "1"),
    # business hours
    ('business_hours = "9-5"', "business_hours", '"9-5"'),
    ('[business_hours]\nfunday = ["09:00-10:00"]', "business_hours.funday", '["09:00-10:00"]'),
    ('[business_hours]\nmon = "09:00-18:00"', "business_hours.mon", '"09:00-18:00"'),
    ('[business_hours]\nmon = ["9:00-18:00"]', "business_hours.mon[0]", '"9:00-18:00"'),
    ('[business_hours]\nmon = ["09:00-12:00", "13:00-25:00"]', "business_hours.mon[1]",
     '"13:00-25:00"'),
    ('[business_hours]\ntue = ["09:00-24:30"]', "business_hours.tue[0]", '"09:00-24:30"'),
    ('[business_hours]\nwed = ["18:00-09:00"]', "business_hours.wed[0]", '"18:00-09:00"'),
    ('[business_hours]\nthu = ["09:00-09:00"]', "business_hours.thu[0]", '"09:00-09:00"'),
    ('[business_hours]\nfri = ["09:60-10:00"]', "business_hours.fri[0]", '"09:60-10:00"'),
    ('[business_hours]\nsat = ["09:00 - 10:00"]', "business_hours.sat[0]", '"09:00 - 10:00"'),
    ("[business_hours]\nsun = [9]", "business_hours.sun[0]", "9"),
    ('[business_hours]\nholidays = "2026-12-25"', "business_hours.holidays", '"2026-12-25"'),
    ('[business_hours]\nholidays = ["2026-13-01"]', "business_hours.holidays[0]", '"2026-13-01"'),
    ('[business_hours]\nholidays = ["25/12/2026"]', "business_hours.holidays[0]", '"25/12/2026"'),
    ('[business_hours]\nholidays = ["20261225"]', "business_hours.holidays[0]", '"20261225"'),
    ("[business_hours]\nholidays = [20261225]", "business_hours.holidays[0]", "20261225"),
    (
        "[business_hours]\nholidays = [2026-01-06, 2026-12-25T00:00:00]",
        "business_hours.holidays[1]",
        "2026-12-25T00:00:00",
    ),
    ('[business_hours]\nholiday_country = "XX"', "business_hours.holiday_country", '"XX"'),
    ("[business_hours]\nholiday_country = 34", "business_hours.holiday_country", "34"),
    (
        '[business_hours]\nholiday_country = "ES"\nholiday_subdivision = "ZZ"',
        "business_hours.holiday_subdivision",
        '"ZZ"',
    ),
    ('[business_hours]\nholiday_subdivision = "MD"', "business_hours.holiday_subdivision", '"MD"'),
    # ticket SLA policies
    ("ticket_sla = 5", "ticket_sla", "5"),
    ('[ticket_sla]\nname = "a"', "ticket_sla", '{name = "a"}'),
    (
        '[[ticket_sla]]\nname = "a"\npriority = ["high"]\nfirst_reply_seconds = 1',
        "ticket_sla[0].priority",
        '["high"]',
    ),
    ("[[ticket_sla]]\nfirst_reply_seconds = 60", "ticket_sla[0].name",
     "{first_reply_seconds = 60}"),
    ('[[ticket_sla]]\nname = ""\nfirst_reply_seconds = 1', "ticket_sla[0].name", '""'),
    ("[[ticket_sla]]\nname = 5\nfirst_reply_seconds = 1", "ticket_sla[0].name", "5"),
    (
        '[[ticket_sla]]\nname = "a"\nfirst_reply_seconds = 1\n'
        '[[ticket_sla]]\nname = "a"\nresolution_seconds = 1',
        "ticket_sla[1].name",
        '"a"',
    ),
    ('[[ticket_sla]]\nname = "idle"\nbusiness_hours = true', "ticket_sla[0]", '{name = "idle"'),
    (
        '[[ticket_sla]]\nname = "a"\nfirst_reply_seconds = 1\n'
        '[[ticket_sla]]\nname = "b"\nfirst_reply_seconds = -1',
        "ticket_sla[1].first_reply_seconds",
        "-1",
    ),
    (
        '[[ticket_sla]]\nname = "a"\nresolution_seconds = true',
        "ticket_sla[0].resolution_seconds",
        "true",
    ),
    (
        '[[ticket_sla]]\nname = "a"\nresolution_seconds = "1h"',
        "ticket_sla[0].resolution_seconds",
        '"1h"',
    ),
    (
        '[[ticket_sla]]\nname = "a"\nfirst_reply_seconds = 1\npriorities = "high"',
        "ticket_sla[0].priorities",
        '"high"',
    ),
    (
        '[[ticket_sla]]\nname = "a"\nfirst_reply_seconds = 1\npriorities = ["high", ""]',
        "ticket_sla[0].priorities[1]",
        '""',
    ),
    (
        f'[[ticket_sla]]\nname = "a"\nfirst_reply_seconds = 1\nqueues = ["{"q" * 129}"]',
        "ticket_sla[0].queues[0]",
        '"qqqq',
    ),
    (
        '[[ticket_sla]]\nname = "a"\nfirst_reply_seconds = 1\nqueues = [1]',
        "ticket_sla[0].queues[0]",
        "1",
    ),
    (
        '[[ticket_sla]]\nname = "a"\nfirst_reply_seconds = 1\nbusiness_hours = "yes"',
        "ticket_sla[0].business_hours",
        '"yes"',
    ),
    (
        '[[ticket_sla]]\nname = "a"\nfirst_reply_seconds = 1\nbusiness_hours = 1',
        "ticket_sla[0].business_hours",
        "1",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "path", "value"), BROKEN, ids=[b[1] for b in BROKEN])
def test_broken_files_are_refused_with_key_and_value(text: str, path: str, value: str) -> None:
    with pytest.raises(DefinitionsError) as caught:
        definitions_from_toml(text, "defs.toml")
    message = str(caught.value)
    assert message.startswith(f"defs.toml: {path}"), message
    assert value in message.removeprefix(f"defs.toml: {path}"), message


def test_a_file_with_one_fault_builds_nothing() -> None:
    # Valid sections before the fault do not leak out as partial definitions.
    text = '[service_level]\nthreshold_seconds = 5\n[business_hours]\nmon = ["bad"]'
    with pytest.raises(DefinitionsError, match=r"business_hours\.mon\[0\]"):
        definitions_from_toml(text, "defs.toml")


def test_invalid_toml_names_the_file() -> None:
    with pytest.raises(DefinitionsError, match=r"^center\.toml: not valid TOML"):
        definitions_from_toml("timezone = ", "center.toml")


def test_a_mapping_that_is_not_a_table() -> None:
    with pytest.raises(DefinitionsError, match=r"^defs: "):
        parse_definitions([], "defs")  # type: ignore[arg-type]


def test_the_error_is_a_value_error() -> None:
    assert issubclass(DefinitionsError, ValueError)
