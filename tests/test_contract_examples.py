"""The contract's public examples, reproduced exactly by the replay command (subprocesses).

Every example input comes with its expected output (``tests/contract``, a copy of
the contract's ``examples`` checked against it by ``test_replay_cli``): quantiles
within the sketch's error, everything else exact, rows in the contract's order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tables.compare import diff, diff_within

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = Path(__file__).resolve().parent / "contract"


def replay(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "stream_app", "replay", *args, "--format", "json"],
        capture_output=True, cwd=ROOT, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def expected(name: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return out


def test_small_under_v2_defaults() -> None:
    got = replay(str(EXAMPLES / "small.jsonl"), env={"KPI_RULES_FILE": ""})
    assert diff(expected("small.v2.expected.json"), got) == []


def test_small_keeps_every_v1_value() -> None:
    got = replay(str(EXAMPLES / "small.jsonl"), env={"KPI_RULES_FILE": ""})
    assert diff_within(expected("small.expected.json"), got) == []


@pytest.mark.parametrize("how", ["--definitions", "KPI_RULES_FILE"])
def test_v2_with_its_definitions(how: str) -> None:
    rules = str(EXAMPLES / "v2.rules.toml")
    if how == "--definitions":
        got = replay(str(EXAMPLES / "v2.jsonl"), "--definitions", rules)
    else:
        got = replay(str(EXAMPLES / "v2.jsonl"), env={"KPI_RULES_FILE": rules})
    assert diff(expected("v2.expected.json"), got) == []


def test_v2_without_its_definitions_differs() -> None:
    # the comparison is not blind: Madrid's today, thresholds, SLA, cost all move values
    got = replay(str(EXAMPLES / "v2.jsonl"), env={"KPI_RULES_FILE": ""})
    problems = diff(expected("v2.expected.json"), got)
    assert any("service_level" in p for p in problems)
    assert any("cost_per_contact" in p for p in problems)
    assert any("tickets_sla_breached" in p for p in problems)


def report(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "stream_app", "report", *args],
        capture_output=True, cwd=ROOT, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "KPI_RULES_FILE": ""},
    )


def test_v2_thirty_minute_report() -> None:
    proc = report(str(EXAMPLES / "v2.jsonl"), "--definitions", str(EXAMPLES / "v2.rules.toml"),
                  "--interval", "30m", "--format", "json")
    assert proc.returncode == 0, proc.stderr.decode()
    got = json.loads(proc.stdout)
    want = expected("v2.report-30m.expected.json")
    key = [(r["interval_start"], r["scope"]) for r in want["rows"]]
    assert [(r["interval_start"], r["scope"]) for r in got["rows"]] == key
    for w, g in zip(want["rows"], got["rows"], strict=True):
        as_snapshot = [{**r, "window": r["interval_start"]} for r in (w, g)]
        assert diff({"rows": [as_snapshot[0]]}, {"rows": [as_snapshot[1]]}) == []


def test_report_csv_is_ready_for_a_spreadsheet() -> None:
    import csv
    import io

    proc = report(str(EXAMPLES / "v2.jsonl"), "--definitions", str(EXAMPLES / "v2.rules.toml"),
                  "--interval", "1h", "--format", "csv")
    assert proc.returncode == 0, proc.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(proc.stdout.decode())))
    assert rows[0]["interval_start"] == "2026-11-23T06:00:00+01:00"
    assert rows[0]["interval_end"] == "2026-11-23T07:00:00+01:00"
    first = next(r for r in rows if r["scope"] == "all"
                 and r["interval_start"] == "2026-11-23T07:00:00+01:00")
    assert first["contacts_offered"] == "8" and first["nps"] == ""  # null is an empty cell
    assert float(first["service_level"]) == 0.5


def test_report_rejects_an_unknown_interval() -> None:
    proc = report(str(EXAMPLES / "v2.jsonl"), "--interval", "2h")
    assert proc.returncode != 0 and b"2h" in proc.stderr
