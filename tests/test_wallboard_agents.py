"""The agents page in a real Chromium against a real worker on the real broker.

Agents log in on queues, take and close contacts, pause and log out. The page must
list exactly the logged-in agents of /api/agents (state, queues, time in state
counting up between polls) sorted by state then name, with today's answered
contacts, today's AHT and the last hour's occupancy of each agent's own
/api/snapshot rows, and a header with the count per state. A pause must turn the
agent's row to the pause colour within about a second (measured, asserted < 2 s).
Screenshots: test-artifacts/agents-*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stream_app.outputs.rules import Rule, load_rules
from tables import kpis
from tests.browserhelp import (
    ARTIFACTS,
    DASH,
    FOLLOW_S,
    Events,
    RequestLog,
    caught_up,
    chromium_page,
    fmt,
    long_today,
    produce,
    rgb,
    rows_of,
    seconds_of,
    settle,
    status,
)
from tests.livehelp import Deployment

pytestmark = pytest.mark.stack

# agents.js: the logged-in states in the order rows are sorted, and its per-agent columns
STATES = ["available", "busy", "wrap_up", "paused"]
COLUMNS = [("contacts_answered", "today"), ("aht_seconds", "today"), ("occupancy", "1h")]
# a pause is amber/orange: much red, some green, little blue (--paused in wallboard.css)
PAUSE_RGB = (245, 158, 11)
PAUSE_LIMIT_S = 2.0
# a target on agents' occupancy, so the page's rule colours are checked on agent rows too
OCCUPANCY_RULE = """
[[rule]]
name = "agent-occupancy"
kpi = "occupancy"
window = "1h"
scope = "agent:*"
op = ">"
threshold = 0.9
warn = 0.5
"""


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium_page(tmp_path_factory.mktemp("chromium-profile")) as page:
        yield page


class Floor:
    def __init__(self, dep: Deployment, page: Any, port: int, rules: list[Rule]) -> None:
        self.dep, self.page, self.port, self.rules = dep, page, port, rules
        self.requests: RequestLog | None = None
        self.opened = 0.0
        self.pause_s: float | None = None

    def get(self, path: str) -> Any:
        return self.dep.get(self.port, path)


@pytest.fixture(scope="module")
def floor(kafka_bootstrap: str, redis_url: str, browser_page: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floor]:
    tmp = tmp_path_factory.mktemp("wallboard-agents")
    dep = Deployment(kafka_bootstrap, redis_url, tmp)
    try:
        path = long_today(tmp, 3, OCCUPANCY_RULE)
        port = dep.start_worker(KPI_RULES_FILE=str(path))
        dep.wait_http(port)
        _traffic(dep)
        caught_up(dep, port)
        yield Floor(dep, browser_page, port, load_rules(path))
    finally:
        dep.stop_all()


def _traffic(dep: Deployment) -> None:
    """Seven agents: every state, one logged out again, one with no queue, names that sort
    by number (agent-2 before agent-10), contacts in the last 40 minutes."""
    now = time.time()
    ev = Events()
    ev.agent("agent-10", "available", now - 2400, queues=["billing"])
    ev.agent("agent-2", "available", now - 2400, queues=["billing", "tech"])
    ev.agent("zoe", "available", now - 1800, queues=["sales"])
    ev.agent("zoe", "busy", now - 200)
    ev.agent("amy", "available", now - 2400, queues=["tech"])
    ev.agent("amy", "wrap_up", now - 30)
    ev.agent("max", "available", now - 1500, queues=["billing"])
    ev.agent("max", "paused", now - 400, reason="training")
    ev.agent("ida", "available", now - 2000, queues=["sales"])
    ev.agent("ida", "offline", now - 900)
    ev.agent("nul", "available", now - 100)
    for i in range(3):
        ev.handled("billing", "agent-10", now - 2000 + 300 * i, wait=8, talk=120 + 30 * i)
    ev.handled("tech", "agent-2", now - 1000, wait=4, talk=400)
    ev.handled("sales", "zoe", now - 600, wait=20, talk=300)
    ev.handled("tech", "amy", now - 500, wait=15, talk=440)
    ev.handled("sales", "ida", now - 1200, wait=5, talk=100)
    produce(dep, ev.take())


Rows = list[dict[str, Any]]


def read_rows(page: Any) -> Rows:
    return list(page.evaluate("""() => [...document.querySelectorAll('#agents-body tr')].map(tr =>
        ({agent: tr.dataset.agent, state: tr.dataset.state,
          label: tr.querySelector('.badge').textContent,
          time: tr.querySelector('[data-kpi="state_seconds"]').textContent,
          queues: tr.querySelector('[data-field="queues"]').textContent,
          cells: [...tr.querySelectorAll('td[data-window]')].map(td =>
            [td.dataset.kpi, td.dataset.window, td.textContent, td.dataset.status])}))"""))


def expected_rows(agents: dict[str, Any], snap: dict[str, Any], rules: list[Rule]) -> Rows:
    rows = rows_of(snap)

    def key(a: dict[str, Any]) -> tuple[int, list[Any]]:
        # agents.js sorts names "numerically" (Intl.Collator numeric: agent-2 < agent-10)
        parts = [int(p) if p.isdigit() else p.lower()
                 for p in re.split(r"(\d+)", a["agent"])]
        return STATES.index(a["state"]), parts

    out = []
    for a in sorted((a for a in agents["agents"] if a["state"] != "offline"), key=key):
        cells = []
        for kpi, win in COLUMNS:
            scope = f"agent:{a['agent']}"
            row = rows.get((scope, win))
            cells.append([kpi, win, fmt(kpis.BY_NAME[kpi].fmt, row.get(kpi) if row else None),
                          status(rules, scope, kpi, win, row)])
        out.append({"agent": a["agent"], "state": a["state"],
                    "label": kpis.BY_NAME[f"agents_{a['state']}"].label,
                    "time": a["state_seconds"], "queues": ", ".join(a["queues"]) or DASH,
                    "cells": cells})
    return out


def compare(shown: Rows, want: Rows) -> list[str]:
    problems = []
    if [r["agent"] for r in shown] != [r["agent"] for r in want]:
        problems.append(f"order: page {[r['agent'] for r in shown]} "
                        f"!= api {[r['agent'] for r in want]}")
    for a, b in zip(shown, want, strict=False):
        for field in ("state", "label", "queues", "cells"):
            if a[field] != b[field]:
                problems.append(f"{b['agent']} {field}: page {a[field]!r} != api {b[field]!r}")
        # time in state counts up on the page; ours is a request apart
        if abs(seconds_of(a["time"]) - b["time"]) > 3:
            problems.append(f"{b['agent']} time in state: page {a['time']} != api {b['time']:.0f}")
    return problems


def wait_page(floor: Floor, what: str, deadline_s: float = 10) -> tuple[Rows, dict[str, Any]]:
    got: dict[str, Any] = {}

    def check() -> list[str]:
        agents, snap = floor.get("/api/agents"), floor.get("/api/snapshot")
        got.update(agents=agents, snap=snap, shown=read_rows(floor.page))
        return compare(got["shown"], expected_rows(agents, snap, floor.rules))

    settle(what, deadline_s, floor.page, check, floor.dep.logs)
    return got["shown"], got


# --- the tests, one step each ------------------------------------------------------------------
def test_the_page_equals_the_api(floor: Floor) -> None:
    page = floor.page
    ARTIFACTS.mkdir(exist_ok=True)
    floor.requests = RequestLog(page)
    floor.opened = time.monotonic()
    resp = page.request.get(f"http://127.0.0.1:{floor.port}/agents")
    assert resp.ok and "text/html" in resp.headers["content-type"], resp.status
    page.goto(f"http://127.0.0.1:{floor.port}/agents")
    page.wait_for_selector('#agents-body tr[data-agent="zoe"]', timeout=15_000)
    shown, got = wait_page(floor, "first paint")
    # the events, through the page: offline ida is gone, the order is state then name
    assert [(r["agent"], r["state"]) for r in shown] == [
        ("agent-2", "available"), ("agent-10", "available"), ("nul", "available"),
        ("zoe", "busy"), ("amy", "wrap_up"), ("max", "paused")]
    by = {r["agent"]: r for r in shown}
    assert by["agent-10"]["cells"][0][:3] == ["contacts_answered", "today", "3"]
    assert by["agent-10"]["cells"][1][:3] == ["aht_seconds", "today", "2:30"]  # 120, 150, 180
    assert by["agent-2"]["queues"] == "billing, tech"
    assert by["nul"]["queues"] == DASH
    assert by["max"]["cells"][0][2] == "0"
    assert 395 <= seconds_of(by["max"]["time"]) <= 470
    occupancy = rows_of(got["snap"])[("agent:zoe", "1h")]["occupancy"]
    assert by["zoe"]["cells"][2] == ["occupancy", "1h", fmt("percent", occupancy), "ok"]
    assert occupancy is not None and 0 < occupancy < 1
    # the column heads are the catalogue's labels
    heads = page.eval_on_selector_all("#agents-head th[data-window]",
                                      "es => es.map(e => e.firstChild.textContent)")
    assert heads == [kpis.BY_NAME[k].label for k, _ in COLUMNS]
    assert page.is_hidden("#stale")
    page.screenshot(path=str(ARTIFACTS / "agents-initial.png"))


def counts(page: Any) -> dict[str, str]:
    return dict(page.eval_on_selector_all(
        "#state-counts [data-state-count]",
        "es => es.map(e => [e.dataset.stateCount, e.querySelector('.n').textContent])"))


def test_the_header_counts_agents_per_state(floor: Floor) -> None:
    def check() -> list[str]:
        now = rows_of(floor.get("/api/snapshot"))[("all", "now")]
        want = {"logged_in": str(now["agents_logged_in"]),
                **{s: str(now[f"agents_{s}"]) for s in STATES}}
        shown = counts(floor.page)
        return [] if shown == want else [f"page {shown} != snapshot {want}"]

    settle("state counts", 10, floor.page, check, floor.dep.logs)
    assert counts(floor.page) == {"logged_in": "6", "available": "3", "busy": "1",
                                  "wrap_up": "1", "paused": "1"}
    labels = floor.page.eval_on_selector_all("#state-counts .what",
                                             "es => es.map(e => e.textContent)")
    assert labels == [kpis.BY_NAME[f"agents_{s}"].label for s in ["logged_in", *STATES]]


def test_time_in_state_counts_up_between_polls(floor: Floor) -> None:
    """With the API unreachable for three seconds, the times still tick every second."""
    page = floor.page
    cell = '#agents-body tr[data-agent="max"] [data-kpi="state_seconds"]'
    page.route("**/api/**", lambda route: route.abort())
    try:
        page.wait_for_timeout(1200)  # a poll in flight when the route went up lands first
        seen = []
        for _ in range(13):
            seen.append(seconds_of(page.text_content(cell) or DASH))
            page.wait_for_timeout(250)
    finally:
        page.unroute("**/api/**")
    steps = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    assert all(s in (0, 1) for s in steps), seen
    assert 2 <= seen[-1] - seen[0] <= 4, seen


def test_a_pause_turns_the_row_amber_within_a_second(floor: Floor) -> None:
    page = floor.page
    wait_page(floor, "before the pause")
    row = '#agents-body tr[data-agent="agent-2"]'
    assert page.get_attribute(row, "data-state") == "available"
    green = rgb(page.eval_on_selector(f"{row} .badge", "e => getComputedStyle(e).backgroundColor"))
    assert green[1] > 150 and green[0] < 120, green
    ev = Events()
    ev.agent("agent-2", "paused", time.time(), reason="break")
    sent = time.monotonic()
    produce(floor.dep, ev.take())
    t0 = time.monotonic()
    page.wait_for_function(
        """([sel, want]) => {
             const tr = document.querySelector(sel);
             if (!tr || tr.dataset.state !== 'paused') return false;
             const m = getComputedStyle(tr.querySelector('.badge')).backgroundColor
               .match(/\\d+/g).map(Number);
             return m.slice(0, 3).every((v, i) => Math.abs(v - want[i]) <= 8);
           }""",
        arg=[row, list(PAUSE_RGB)], polling="raf", timeout=FOLLOW_S * 1000)
    floor.pause_s = time.monotonic() - t0
    print(f"pause to colour: {floor.pause_s:.2f} s after the event was in Kafka "
          f"({time.monotonic() - sent:.2f} s with the producer's own start)")
    page.screenshot(path=str(ARTIFACTS / "agents-paused.png"))
    assert floor.pause_s < PAUSE_LIMIT_S, f"the pause took {floor.pause_s:.2f}s to show"
    # and the row moved among the paused, time in state restarted, the header followed
    shown, _ = wait_page(floor, "after the pause")
    assert [(r["agent"], r["state"]) for r in shown][-2:] == [
        ("agent-2", "paused"), ("max", "paused")]
    assert seconds_of(next(r for r in shown if r["agent"] == "agent-2")["time"]) <= 5
    settle("paused count", 5, page,
           lambda: [] if counts(page)["paused"] == "2" else [f"counts {counts(page)}"])


def test_a_logout_removes_the_row(floor: Floor) -> None:
    ev = Events()
    ev.agent("nul", "offline", time.time())
    produce(floor.dep, ev.take())
    floor.page.wait_for_selector('#agents-body tr[data-agent="nul"]', state="detached",
                                 timeout=FOLLOW_S * 1000)
    shown, _ = wait_page(floor, "after the logout")
    assert "nul" not in {r["agent"] for r in shown}
    assert counts(floor.page)["logged_in"] == "5"


def test_the_page_polls_one_request_at_a_time(floor: Floor) -> None:
    requests = floor.requests
    assert requests and floor.opened, "the first step did not run"
    polled_s = time.monotonic() - floor.opened
    assert requests.max == 1, (requests.max, requests.counts)
    # about one of each per second (three seconds of it blocked by the counting test)
    for path in ("agents", "snapshot"):
        n = requests.counts.get(path, 0)
        assert 0.4 * polled_s <= n <= 1.5 * polled_s + 2, (requests.counts, polled_s)
    assert not requests.errors, requests.errors


def test_a_gone_worker_leaves_the_rows_up_flagged_stale(floor: Floor) -> None:
    page = floor.page
    floor.dep.stop_all()
    page.wait_for_selector("#stale", state="visible", timeout=10_000)
    assert page.locator("#agents-body tr").count() == 5
    page.screenshot(path=str(ARTIFACTS / "agents-stale.png"))
