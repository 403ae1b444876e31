"""`python -m stream_app replay` end to end against the contract example (subprocesses)."""

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
# The contract's example, as copied into the repo (so a lone clone can run the suite);
# the copy is checked against the contract checkout beside the repo when there is one.
EXAMPLES = Path(__file__).resolve().parent / "contract"
SHARED = ROOT.parent / "shared" / "contract" / "examples"
SMALL = EXAMPLES / "small.jsonl"
EXPECTED = EXAMPLES / "small.expected.json"


def test_the_copy_of_the_contract_example_is_current() -> None:
    if not SHARED.is_dir():
        pytest.skip("no contract checkout beside the repository to compare with")
    names = sorted(p.name for p in SHARED.iterdir())
    assert names and names == sorted(p.name for p in EXAMPLES.iterdir())
    for name in names:
        assert (EXAMPLES / name).read_bytes() == (SHARED / name).read_bytes(), name


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "stream_app", "replay", *args],
        input=stdin, capture_output=True, cwd=ROOT, env=env, timeout=60, check=False,
    )


def replay_json(*args: str, stdin: bytes | None = None) -> dict[str, Any]:
    proc = cli(*args, "--format", "json", stdin=stdin)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def row(snap: dict[str, Any], scope: str, window: str) -> dict[str, Any]:
    (found,) = [r for r in snap["rows"] if (r["scope"], r["window"]) == (scope, window)]
    return found


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return json.loads(EXPECTED.read_text())


@pytest.fixture(scope="module")
def from_file() -> dict[str, Any]:
    return replay_json(str(SMALL))


def test_json_matches_the_contract_example(from_file: dict[str, Any],
                                           expected: dict[str, Any]) -> None:
    # the version-1 expectation holds for every v1 row and KPI of the v2 snapshot
    assert diff_within(expected, from_file) == []
    assert from_file["as_of"] == "2026-11-22T10:19:30Z"  # the largest valid ts (e-0048)


def test_diff_is_not_blind(from_file: dict[str, Any], expected: dict[str, Any]) -> None:
    # The comparison used above does notice a changed count, rate and row.
    changed = json.loads(json.dumps(from_file))
    row(changed, "all", "5m")["contacts_offered"] += 1
    row(changed, "queue:billing", "1h")["asa_seconds"] = 99.0
    changed["rows"] = [r for r in changed["rows"] if r["scope"] != "agent:agent-cy"]
    assert len(diff_within(expected, changed)) == 2 + 4  # 2 values, 4 missing agent-cy rows
    assert diff(expected, from_file)  # the v2 snapshot has more than the v1 expectation


def test_table_format_shows_the_snapshot(from_file: dict[str, Any]) -> None:
    proc = cli(str(SMALL), "--format", "table")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    # One line per non-agent scope of the 15m window, with its offered count and SL.
    for scope in ("all", "queue:billing", "queue:tech", "channel:voice"):
        r15 = row(from_file, scope, "15m")
        line = next(line for line in lines if line.strip("│ ").startswith(scope + " "))
        cells = [c.strip() for c in line.split("│") if c.strip()]
        assert str(r15["contacts_offered"]) in cells, (scope, cells)
        sl = r15["service_level"]
        assert ("–" if sl is None else f"{sl:.1%}") in cells, (scope, cells)
    assert not any("agent:" in line for line in lines)
    assert "rejected: 7" in proc.stdout.decode()


def test_at_moves_as_of_and_windows(from_file: dict[str, Any]) -> None:
    later = replay_json(str(SMALL), "--at", "2026-11-22T10:29:30Z")  # 10 min after the last ts
    assert later["as_of"] == "2026-11-22T10:29:30Z"
    # 5m now covers 10:25..10:29: nothing happened then
    assert row(later, "all", "5m")["contacts_offered"] == 0
    assert row(from_file, "all", "5m")["contacts_offered"] == 3
    # 15m covers 10:15..10:29: c6 (10:15:30), c7 (10:17), c8 (10:18) offered
    assert row(later, "all", "15m")["contacts_offered"] == 3
    assert row(from_file, "all", "15m")["contacts_offered"] == 5
    # 24h holds everything in both
    assert row(later, "all", "24h") == row(from_file, "all", "24h")
    # c7 (offered 10:17:00) is still waiting: 10:29:30 - 10:17:00 = 750 s (150 s before)
    assert row(later, "all", "now")["longest_wait_seconds"] == 750.0
    assert row(from_file, "all", "now")["longest_wait_seconds"] == 150.0
    assert later["rejected"] == from_file["rejected"]


def test_at_in_the_past_makes_later_events_future() -> None:
    snap = replay_json(str(SMALL), "--at", "2026-11-22T10:05:00Z")
    # events after 10:10:00 (clock + 300 s skew) are future_ts: e-0024 .. e-0048 (25 events)
    # minus those rejected by an earlier check: e-0025 unknown_type, e-0033 out_of_range -> 23
    assert snap["rejected"]["future_ts"] == 23
    assert snap["as_of"] == "2026-11-22T10:05:00Z"


def test_stdin_gives_the_same_snapshot(from_file: dict[str, Any]) -> None:
    assert replay_json("-", stdin=SMALL.read_bytes()) == from_file


def test_bad_at_is_a_clear_error() -> None:
    proc = cli(str(SMALL), "--at", "tomorrow")
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "tomorrow" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["missing", "directory", "no permission"])
def test_unreadable_path_is_a_clear_error(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    if kind == "directory":
        path.mkdir()
    elif kind == "no permission":
        if os.geteuid() == 0:
            pytest.skip("running as root: a mode-000 file is still readable")
        path.write_text("{}\n")
        path.chmod(0)
    proc = cli(str(path), "--format", "json")
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "cannot read" in err and "events.jsonl" in err, err
    assert "Traceback" not in err, err
    assert proc.stdout == b""
