"""The live engine on the real broker gives exactly the offline replay's snapshot:
one worker, two workers, workers killed with SIGKILL, and a broker restart."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time

import pytest

from stream_app.tools.producer import produce_lines
from stream_app.tools.simulator.run import generate_events
from tables.compare import diff
from tests.livehelp import ROOT, Deployment

pytestmark = pytest.mark.stack
# Every live test runs with a center's full definitions (Madrid's day from 06:00,
# per-queue targets, short abandons, business hours, two SLA policies, a one-hour
# repeat window, a cost), so every kind of v2 state goes through crashes and rebalances.
DEFS = ROOT / "tests" / "definitions" / "center.toml"


@pytest.fixture(autouse=True)
def _definitions(deployment: Deployment) -> None:
    deployment.env["KPI_RULES_FILE"] = str(DEFS)


def _events(seconds: float, rate: float, seed: int) -> list[bytes]:
    # Event times end now: the live clock and the replay clock then agree on every
    # too_late / future_ts verdict (the bad ones are hours away from any boundary).
    return list(
        generate_events(
            rate=rate,
            duration=seconds,
            seed=seed,
            start_epoch=time.time() - seconds,
            bad_share=0.03,
        )
    )


def _produce(dep: Deployment, lines: list[bytes]) -> None:
    asyncio.run(produce_lines(dep.bootstrap, dep.topics, lines))


def _check_against_replay(
    dep: Deployment, port: int, lines: list[bytes], min_reasons: int = 6
) -> dict:
    path = dep.tmp / "input.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    live = dep.get(port, "/api/snapshot")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "stream_app",
            "replay",
            str(path),
            "--at",
            live["as_of"],
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
        env={**dep.env},
    )
    expected = json.loads(out.stdout)
    problems = diff(expected, live)
    assert not problems, f"{len(problems)} differences, first: {problems[:8]}"
    # Non-trivial: the input really exercised counts, rejections and duplicates, and every
    # kind of v2 state: agent time, repeats across partitions, SLA policies, products.
    totals = next(r for r in live["rows"] if r["scope"] == "all" and r["window"] == "24h")
    assert totals["contacts_offered"] > 100
    assert live["duplicates"] > 0 and len(live["rejected"]) >= min_reasons
    if dep.env.get("KPI_RULES_FILE") == str(DEFS):
        _every_kind_of_v2_state(live, totals)
    return live


def _every_kind_of_v2_state(live: dict, totals: dict) -> None:
    """The input exercised agent time, repeats across partitions, SLA policies, products."""
    assert totals["staffed_seconds"] > 0 and totals["occupancy"] is not None
    assert totals["repeat_contacts"] > 0 and totals["cost_per_contact"] is not None
    assert totals["first_reply_sla_rate"] is not None
    scopes = {r["scope"] for r in live["rows"]}
    assert any(s.startswith("product:") for s in scopes)
    assert any(s.startswith("agent:") for s in scopes)
    now = next(r for r in live["rows"] if r["scope"] == "all" and r["window"] == "now")
    assert now["agents_logged_in"] > 0


def test_one_worker_equals_replay(deployment: Deployment) -> None:
    lines = _events(900, 12, seed=11)
    port = deployment.start_worker()
    deployment.wait_http(port)
    _produce(deployment, lines)
    deployment.wait_caught_up(port)
    _check_against_replay(deployment, port, lines)


def test_two_workers_share_partitions_and_both_serve_the_whole_center(
    deployment: Deployment,
) -> None:
    lines = _events(900, 12, seed=12)
    a = deployment.start_worker()
    b = deployment.start_worker()
    deployment.wait_http(a)
    deployment.wait_http(b)
    _produce(deployment, lines)
    deployment.wait_caught_up(a)
    deployment.wait_caught_up(b)
    owned_a = set(deployment.get(a, "/api/status")["owned_partitions"])
    owned_b = set(deployment.get(b, "/api/status")["owned_partitions"])
    assert owned_a and owned_b and not owned_a & owned_b, (owned_a, owned_b)
    _check_against_replay(deployment, a, lines)
    _check_against_replay(deployment, b, lines)


def _wait_events(dep: Deployment, port: int, at_least: int, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if dep.get(port, "/api/status")["events"] >= at_least:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"worker did not reach {at_least} events:\n{dep.logs()}")


def test_sigkill_mid_stream_twice_then_restart_is_exact(deployment: Deployment) -> None:
    lines = _events(1800, 40, seed=13)  # ~72k events: a kill lands mid-stream
    rng = random.Random(13)
    _produce(deployment, lines)
    for fraction in (0.25, 0.6):
        port = deployment.start_worker()
        deployment.wait_http(port)
        # status.events counts this process only: kill it part-way through what is left.
        _wait_events(deployment, port, int(len(lines) * fraction * rng.uniform(0.5, 1.0)))
        deployment.kill(port)
    port = deployment.start_worker()
    deployment.wait_http(port)
    deployment.wait_caught_up(port, deadline_s=300)
    _check_against_replay(deployment, port, lines)


def _kafka_script(*args: str) -> None:
    subprocess.run(
        [str(ROOT / "infra" / "kafka.sh"), *args],
        check=True,
        cwd=ROOT,
        env={**os.environ, "KAFKA_KEEP_DATA": "1"},
        timeout=180,
    )


def test_broker_away_for_20s_worker_waits_and_recovers(deployment: Deployment) -> None:
    if not (ROOT / ".run" / "kafka" / "kafka.pid").exists():
        pytest.skip(
            "the broker was provided from outside (KAFKA_BOOTSTRAP_SERVERS): "
            "this test restarts the broker it started itself"
        )
    lines = _events(1200, 20, seed=14)
    half = len(lines) // 2
    port = deployment.start_worker()
    deployment.wait_http(port)
    _produce(deployment, lines[:half])
    _kafka_script("stop")
    try:
        time.sleep(20)
        assert deployment.alive(), f"worker died while the broker was away:\n{deployment.logs()}"
    finally:
        _kafka_script("start")
    _produce(deployment, lines[half:])
    deployment.wait_caught_up(port, deadline_s=300)
    assert deployment.alive()
    _check_against_replay(deployment, port, lines)


def test_a_second_worker_joining_mid_stream_loses_and_doubles_nothing(
    deployment: Deployment,
) -> None:
    lines = _events(1800, 30, seed=15)
    third = len(lines) // 3
    a = deployment.start_worker()
    deployment.wait_http(a)
    _produce(deployment, lines[:third])
    _wait_events(deployment, a, third // 2)
    b = deployment.start_worker()  # rebalance while A is mid-stream
    _produce(deployment, lines[third : 2 * third])
    deployment.wait_http(b)
    _produce(deployment, lines[2 * third :])
    deployment.wait_caught_up(a, deadline_s=300)
    deployment.wait_caught_up(b, deadline_s=300)
    owned = [set(deployment.get(p, "/api/status")["owned_partitions"]) for p in (a, b)]
    assert owned[0] and owned[1] and not owned[0] & owned[1], owned
    _check_against_replay(deployment, a, lines)
    _check_against_replay(deployment, b, lines)
