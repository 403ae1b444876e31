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
