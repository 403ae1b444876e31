"""The queue board's contract-v2 columns in a real Chromium against a real worker.

A center with SLA policies, per-queue service-level targets and an agent cost runs on
the real broker; agents log in and out, contacts come and go, tickets age past their
targets. The board must show every queue's staffing (logged in, available, on
contact, wrap-up, paused) and its breached / at-risk tickets exactly as /api/snapshot
says (red above zero breached, amber above zero at risk), each queue's own
service-level target from /api/definitions, the center's repeat-contact rate and cost
per contact, `today` in the window selector, and a link that downloads today's
30-minute intervals as CSV. Screenshot: test-artifacts/wallboard-staffing.png.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream_app.outputs.rules import Rule, load_rules
from tables import kpis
from tests.browserhelp import (
    ARTIFACTS,
    DASH,
    FOLLOW_S,
    TILES,
    Events,
    RequestLog,
    Rows,
    caught_up,
    chromium_page,
    fmt,
    produce,
    rgb,
    rows_of,
    settle,
    wait_board,
)
from tests.livehelp import ROOT, Deployment

pytestmark = pytest.mark.stack

# The center's definitions (contract §9): the board shows the thresholds; the SLA
# policy makes tickets breached (opened > 1 h ago, no reply) or at risk (past 80 % of it).
DEFINITIONS = """\
agent_hourly_cost = 30.0
at_risk_share = 0.8

[service_level]
threshold_seconds = 20
[service_level.thresholds]
"billing" = 30
"billing/chat" = 60
"*/email" = 3600

[[ticket_sla]]
name = "reply within the hour"
first_reply_seconds = 3600
resolution_seconds = 86400
"""
STAFFING = ["agents_logged_in", "agents_available", "agents_busy", "agents_wrap_up",
            "agents_paused"]
SLA = ["tickets_sla_breached", "tickets_sla_at_risk"]


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium_page(tmp_path_factory.mktemp("chromium-profile")) as page:
        yield page


class Center:
    def __init__(self, dep: Deployment, page: Any, port: int, rules: list[Rule]) -> None:
        self.dep, self.page, self.port, self.rules = dep, page, port, rules
        self.requests: RequestLog | None = None
        self.opened = 0.0

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait(self, window: str, what: str, deadline_s: float = 10) -> tuple[dict[str, Any], Any]:
        return wait_board(self.page, self.dep, self.port, self.rules, window, deadline_s, what,
                          until=_traffic_in)


def _traffic_in(rows: Rows) -> bool:
    now = rows.get(("queue:billing", "now")) or {}
    return now.get("agents_logged_in") == 3 and now.get("tickets_sla_breached") == 1


@pytest.fixture(scope="module")
def center(kafka_bootstrap: str, redis_url: str, browser_page: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Center]:
    tmp = tmp_path_factory.mktemp("wallboard-staffing")
    # definitions and the shipped rules in one file, as an operator would keep them
    path = tmp / "center.toml"
    path.write_text(DEFINITIONS + "\n"
                    + (ROOT / "stream_app" / "outputs" / "rules.default.toml").read_text())
    dep = Deployment(kafka_bootstrap, redis_url, tmp)
    try:
        port = dep.start_worker(KPI_RULES_FILE=str(path))
        dep.wait_http(port)
        _traffic(dep)
        caught_up(dep, port)
        yield Center(dep, browser_page, port, load_rules(path))
    finally:
        dep.stop_all()


def _traffic(dep: Deployment) -> None:
    """Six agents on three queues (one logged out again), handled contacts with repeat
    customers, and tickets at every stage of their SLA."""
    now = time.time()
    ev = Events()
    ev.agent("ann", "available", now - 900, queues=["billing"])
    ev.agent("ann", "busy", now - 300)
    ev.agent("bob", "available", now - 900, queues=["billing", "tech"])
    ev.agent("bob", "wrap_up", now - 60)
    ev.agent("cyd", "available", now - 800, queues=["billing", "sales"])
    ev.agent("dan", "available", now - 900, queues=["tech"])
    ev.agent("dan", "paused", now - 120, reason="lunch")
    ev.agent("eve", "available", now - 700, queues=["sales"])
    ev.agent("fay", "available", now - 900, queues=["billing"])
    ev.agent("fay", "offline", now - 400)
    ev.handled("billing", "ann", now - 600, wait=10, talk=120, customer="cust-1")
    ev.handled("billing", "fay", now - 500, wait=25, talk=60, customer="cust-2")
    ev.handled("tech", "bob", now - 450, wait=40, talk=200, customer="cust-1")  # a repeat
    ev.handled("sales", "eve", now - 400, wait=5, talk=90, customer="cust-3")
    ev.handled("billing", "ann", now - 290, wait=3, talk=100)
    ev.open_ticket("billing", now - 4000)                     # breached: no reply in 1 h
    ev.open_ticket("billing", now - 3000)                     # at risk: 3000 >= 0.8 * 3600
    ev.open_ticket("tech", now - 3100)                        # at risk
    ev.open_ticket("sales", now - 60)                         # neither
    produce(dep, ev.take())


# --- the tests, one step each ------------------------------------------------------------------
def test_staffing_and_sla_tiles_equal_the_snapshot(center: Center) -> None:
    page = center.page
    ARTIFACTS.mkdir(exist_ok=True)
    center.requests = RequestLog(page)
    center.opened = time.monotonic()
    page.goto(center.url())
    page.wait_for_selector('.tile[data-scope="queue:billing"][data-kpi="agents_busy"]',
                           timeout=15_000)
    snap, shown = center.wait("15m", "staffing")
    rows = rows_of(snap)
    # the catalogue makes them tiles, in its order, with its labels
    heads = page.eval_on_selector_all(".colhead", "es => es.map(e => e.dataset.kpi)")[1:]
    assert heads == [k for k, _, _ in TILES]
    assert set(STAFFING + SLA) <= set(heads)
    labels = page.eval_on_selector_all(".colhead span", "es => es.map(e => e.textContent)")
    assert labels == [k.label for k in kpis.board()]
    # what the events say, through the page
    want = {
        "all": (5, 2, 1, 1, 1, 1, 2),
        "queue:billing": (3, 1, 1, 1, 0, 1, 1),
        "queue:tech": (2, 0, 0, 1, 1, 0, 1),
        "queue:sales": (2, 2, 0, 0, 0, 0, 0),
    }
    for scope, numbers in want.items():
        texts = tuple(shown[(scope, kpi)][1] for kpi in STAFFING + SLA)
        assert texts == tuple(str(n) for n in numbers), (scope, texts)
        for kpi in STAFFING + SLA:
            assert shown[(scope, kpi)][0] == "now"
            assert rows[(scope, "now")][kpi] == int(shown[(scope, kpi)][1])
    assert shown[("queue:billing", "tickets_sla_breached")][2] == "breach"
    assert shown[("queue:billing", "tickets_sla_at_risk")][2] == "warn"
    # zero is never amber or red (the shipped sla-breached rule calls it "ok")
    assert shown[("queue:sales", "tickets_sla_breached")][2] in ("none", "ok")
    assert shown[("queue:sales", "tickets_sla_at_risk")][2] == "none"
    cell = '.tile[data-scope="queue:billing"][data-kpi="{}"]'
    red = rgb(page.eval_on_selector(cell.format("tickets_sla_breached"),
                                    "e => getComputedStyle(e).backgroundColor"))
    amber = rgb(page.eval_on_selector(cell.format("tickets_sla_at_risk"),
                                      "e => getComputedStyle(e).backgroundColor"))
    assert red[0] > 180 and red[1] < 90 and red[2] < 90, red
    assert amber[0] > 200 and amber[1] > 140 and amber[2] < 90, amber
    page.screenshot(path=str(ARTIFACTS / "wallboard-staffing.png"))


def _expected_target(defs: dict[str, Any], scope: str) -> str:
    """The page's target text, from /api/definitions (contract §6.1's precedence)."""
    def secs(v: float) -> str:
        s = round(v)
        if s < 120 or s % 60:
            return f"{s} s"
        m = s // 60
        if m % 60 == 0:
            return f"{m // 60} h"
        return f"{m} min" if m < 120 else f"{m // 60} h {m % 60} min"

    table = defs["thresholds"]
    if scope == "all":
        return f"SL target {secs(defs['threshold_seconds'])}" + (" default" if table else "")
    queue = scope.removeprefix("queue:")

    def threshold(channel: str) -> float:
        for key in (f"{queue}/{channel}", queue, f"*/{channel}"):
            if key in table:
                return float(table[key])
        return float(defs["threshold_seconds"])

    base = float(table.get(queue, defs["threshold_seconds"]))
    channels = sorted({k.rpartition("/")[2] for k in table if "/" in k})
    parts = [f"SL target {secs(base)}"]
    parts += [f"{c} {secs(threshold(c))}" for c in channels if threshold(c) != base]
    return " \u00b7 ".join(parts)


def test_each_queue_shows_its_service_level_target(center: Center) -> None:
    page = center.page
    defs = center.dep.get(center.port, "/api/definitions")
    assert defs["thresholds"] == {"billing": 30, "billing/chat": 60, "*/email": 3600}
    page.wait_for_selector('.target[data-scope="queue:billing"][data-target]', timeout=10_000)
    shown = dict(page.eval_on_selector_all(
        ".panel .target", "es => es.map(e => [e.dataset.scope, e.textContent])"))
    assert set(shown) == {"all", "queue:billing", "queue:sales", "queue:tech"}
    for scope, text in shown.items():
        assert text == _expected_target(defs, scope), scope
    # billing has its own 30 s (which beats "*/email"), and chat on billing is 60 s
    assert shown["queue:billing"] == "SL target 30 s \u00b7 chat 60 s"
    assert shown["queue:tech"] == "SL target 20 s \u00b7 email 1 h"
    assert shown["all"] == "SL target 20 s default"


def test_the_center_figures_follow_the_window(center: Center) -> None:
    """Repeat-contact rate and cost per contact of the `all` row, selected window."""
    page = center.page
    figure = '#center-figures .figure[data-kpi="{}"]'

    def read() -> dict[str, tuple[str, str]]:
        return {k: (page.get_attribute(figure.format(k), "data-window") or "",
                    page.text_content(figure.format(k) + " .value") or "")
                for k in ("repeat_contact_rate", "cost_per_contact")}

    def differences(window: str) -> list[str]:
        row = rows_of(center.dep.get(center.port, "/api/snapshot"))[("all", window)]
        shown = read()
        problems = []
        if shown["repeat_contact_rate"] != (window, fmt("percent", row["repeat_contact_rate"])):
            problems.append(f"repeat rate {shown} != {row['repeat_contact_rate']}")
        # staffed time, and so the cost, grows every second: the page is a poll behind us
        win, text = shown["cost_per_contact"]
        cost = row["cost_per_contact"]
        if win != window or text == DASH or abs(float(text) - cost) > 0.01 * cost + 0.01:
            problems.append(f"cost per contact {shown} != {cost}")
        return problems

    page.wait_for_selector(figure.format("cost_per_contact"), timeout=10_000)
    for window in ("15m", "1h"):
        page.click(f'#windows button[data-choice="{window}"]')
        settle(f"the center's figures ({window})", 10, page, lambda w=window: differences(w))
    # one repeat (cust-1 twice) of four contacts with a customer
    assert read()["repeat_contact_rate"][1] == "25.0%"
    assert read()["cost_per_contact"][1] not in ("", DASH)
    labels = page.eval_on_selector_all("#center-figures .figure-label",
                                       "es => es.map(e => e.textContent)")
    assert labels == [kpis.BY_NAME[k].label for k in ("repeat_contact_rate", "cost_per_contact")]


def test_today_is_in_the_window_selector(center: Center) -> None:
    page = center.page
    snap = center.dep.get(center.port, "/api/snapshot")
    windows = list(dict.fromkeys(r["window"] for r in snap["rows"] if r["window"] != "now"))
    assert windows == ["5m", "15m", "1h", "24h", "today"]
    buttons = page.eval_on_selector_all("#windows button", "es => es.map(e => e.textContent)")
    assert buttons == windows
    page.click('#windows button[data-choice="today"]')
    _, shown = center.wait("today", "window today")
    assert page.evaluate("location.hash") == "#w=today"
    assert page.text_content("#window-label") == "today"
    assert page.get_attribute('#windows button[data-choice="today"]', "aria-pressed") == "true"
    heads = page.eval_on_selector_all(".colhead small", "es => es.map(e => e.textContent)")
    assert heads == ["now" if live else "today" for _, live, _ in TILES]
    assert shown[("queue:billing", "contacts_waiting")][0] == "now"
    assert shown[("queue:billing", "service_level")][0] == "today"


def test_the_csv_link_downloads_todays_intervals(center: Center, tmp_path: Path) -> None:
    page = center.page
    link = page.locator("a#intervals-csv")
    assert link.get_attribute("href") == "api/intervals?interval=30m&format=csv"
    with page.expect_download(timeout=15_000) as info:
        link.click()
    download = info.value
    target = tmp_path / download.suggested_filename
    download.save_as(str(target))
    assert download.suggested_filename == "kpi-intervals-30m.csv"
    lines = target.read_text().splitlines()
    assert lines[0].startswith("interval_start,interval_end,scope"), lines[0]
    scopes = {line.split(",")[2] for line in lines[1:]}
    assert {"all", "queue:billing", "agent:ann"} <= scopes, scopes
    # fetched by the page's own loop (with the API token when the worker wants one)
    assert center.requests and center.requests.counts.get("intervals") == 1


def test_the_board_still_polls_one_request_at_a_time(center: Center) -> None:
    requests = center.requests
    assert requests and center.opened, "the first step did not run"
    polled_s = time.monotonic() - center.opened
    assert requests.max == 1, (requests.max, requests.counts)
    snapshots = requests.counts.get("snapshot", 0)
    assert 0.5 * polled_s <= snapshots <= 1.5 * polled_s + 2, (requests.counts, polled_s)
    # definitions are read once, not once a second
    assert requests.counts.get("definitions", 0) <= 2 + polled_s / 60, requests.counts
    assert not requests.errors, requests.errors


def test_a_login_shows_within_seconds(center: Center) -> None:
    """A new agent logs in on sales: the sales and center staffing tiles follow."""
    ev = Events()
    ev.agent("gus", "available", time.time() - 1, queues=["sales"])
    produce(center.dep, ev.take())
    t0 = time.monotonic()
    tile = '.tile[data-scope="{}"][data-kpi="{}"] .value'
    center.page.wait_for_function(
        "([a, b]) => document.querySelector(a).textContent === '3'"
        " && document.querySelector(b).textContent === '6'",
        arg=[tile.format("queue:sales", "agents_available"),
             tile.format("all", "agents_logged_in")],
        timeout=FOLLOW_S * 1000)
    assert time.monotonic() - t0 < FOLLOW_S
