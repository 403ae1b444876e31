"""A ticket breaches its SLA at its deadline with no new event: the live worker's clock
alone crosses the instant, on /api/snapshot and in /metrics.

The worker's clock is shifted (``KPI_CLOCK_OFFSET_SECONDS``) to a Tuesday 10:00 in
Madrid, inside the business hours of the test center, so the business-time policy
("standard": first reply within 1800 business seconds) runs at wall speed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import urllib.request
from zoneinfo import ZoneInfo

import pytest

from stream_app.tools.producer import produce_lines
from tables.snapshot import format_ts
from tests.livehelp import ROOT, Deployment

pytestmark = pytest.mark.stack
DEFS = ROOT / "tests" / "definitions" / "center.toml"


def _tuesday_ten() -> float:
    """Epoch seconds of the next Tuesday 10:00 in Madrid (not a holiday of the test file)."""
    madrid = ZoneInfo("Europe/Madrid")
    day = dt.datetime.now(madrid).date() + dt.timedelta(days=1)
    while day.weekday() != 1 or day.isoformat() in ("2026-12-08", "2026-12-25"):
        day += dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, 10, 0, tzinfo=madrid).timestamp()


def _now_row(snap: dict, scope: str) -> dict:
    return next(r for r in snap["rows"] if (r["scope"], r["window"]) == (scope, "now"))


def _metric(port: int, name: str, scope: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + "{") and f'scope="{scope}"' in line:
                return float(line.rsplit(" ", 1)[1])
    return None


def test_a_ticket_breaches_at_its_deadline_with_no_new_event(deployment: Deployment) -> None:
    offset = _tuesday_ten() - time.time()
    deployment.env["KPI_RULES_FILE"] = str(DEFS)
    deployment.env["KPI_CLOCK_OFFSET_SECONDS"] = str(offset)
    port = deployment.start_worker()
    deployment.wait_http(port)
    # Opened 1790 business seconds before the worker's now: breaches about 10 s later.
    opened = time.time() + offset - 1790
    event = {"event_id": "sla-1", "type": "ticket_opened", "ts": format_ts(int(opened * 1e6)),
             "ticket_id": "k-sla", "queue": "billing", "channel": "email", "priority": "normal",
             "product": "router"}
    asyncio.run(produce_lines(deployment.bootstrap, deployment.topics,
                              [json.dumps(event).encode()]))
    deployment.wait_caught_up(port)
    snap = deployment.get(port, "/api/snapshot")
    before = _now_row(snap, "queue:billing")
    assert (before["open_tickets"], before["tickets_sla_breached"],
            before["tickets_sla_at_risk"]) == (1, 0, 1), before
    assert _metric(port, "kpi_tickets_sla_breached", "billing") == 0.0
    deadline = opened + 1800
    assert time.time() + offset < deadline  # not breached yet by the worker's clock
    end = time.monotonic() + 30
    while time.monotonic() < end:
        snap = deployment.get(port, "/api/snapshot")
        if _now_row(snap, "queue:billing")["tickets_sla_breached"] == 1:
            break
        time.sleep(0.2)
    after = _now_row(snap, "queue:billing")
    assert (after["tickets_sla_breached"], after["tickets_sla_at_risk"]) == (1, 0), after
    # it breached at its deadline (within a publish or two), not later
    as_of = dt.datetime.fromisoformat(snap["as_of"].replace("Z", "+00:00")).timestamp()
    assert deadline <= as_of < deadline + 3, (deadline, as_of)
    for scope in ("all", "product:router", "channel:email"):
        assert _now_row(snap, scope)["tickets_sla_breached"] == 1, scope
    end = time.monotonic() + 10
    while time.monotonic() < end and _metric(port, "kpi_tickets_sla_breached", "billing") != 1.0:
        time.sleep(0.2)
    assert _metric(port, "kpi_tickets_sla_breached", "billing") == 1.0
