"""The wallboard in a real headless Chromium against a real worker on the real broker.

Known events go in; the page must show exactly what /api/snapshot says (formatted
the way the page formats), follow new events within seconds, colour tiles by the
rules of /api/rules (mirrored here with stream_app.outputs.rules itself), switch windows
through the selector and the URL hash, and flag itself stale when the worker is gone.

The browser is Debian's chromium (``infra/browser.sh ensure``), driven by the
playwright package; ``playwright install`` is never needed. Screenshots go to
test-artifacts/wallboard-*.png.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stream_app.outputs.rules import load_rules
from tables import kpis
from tests.browserhelp import (
    ARTIFACTS,
    DASH,
    FOLLOW_S,
    TILES,
    Events,
    RequestLog,
    Rows,
    Tiles,
    caught_up,
    chromium_page,
    produce,
    rgb,
    wait_board,
)
from tests.livehelp import Deployment

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium_page(tmp_path_factory.mktemp("chromium-profile")) as page:
        yield page


class Board:
    """One worker with known traffic and one page on it, shared by the tests below, which
    run in file order (each a step of a supervisor's session; one failing hides none)."""

    def __init__(self, dep: Deployment, page: Any) -> None:
        self.dep, self.page = dep, page
        self.rules = load_rules()
        self.port = dep.start_worker()
        self.requests: RequestLog | None = None
        self.ev = Events()
        self.waiting: list[str] = []
        self.opened = 0.0
        self.shown_15m: Tiles = {}

    def wait(self, window: str, deadline: float, what: str,
             until: Callable[[Rows], bool] = lambda rows: True) -> tuple[dict[str, Any], Tiles]:
        return wait_board(self.page, self.dep, self.port, self.rules, window, deadline, what,
                          until=until)


@pytest.fixture(scope="module")
def board(kafka_bootstrap: str, redis_url: str, browser_page: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    dep = Deployment(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("wallboard"))
    try:
        b = Board(dep, browser_page)
        dep.wait_http(b.port)
        _known_traffic(b)
        yield b
    finally:
        dep.stop_all()


def _known_traffic(b: Board) -> None:
    """Traffic of the last two minutes in three queues, and some 40 minutes ago (1h != 15m)."""
    now = time.time()
    ev = b.ev
    ev.answered("billing", now - 90, wait=5, n=12)
    ev.abandoned("billing", now - 80, wait=30)
    b.waiting = [ev.offer("billing", now - 3) for _ in range(2)]
    ev.answered("tech", now - 100, wait=8, n=16)
    ev.answered("tech", now - 100, wait=45, n=3)        # 16/19 = 84 %: amber
    ev.answered("sales", now - 70, wait=12, n=4)
    ev.abandoned("sales", now - 60, wait=20)
    ev.answered("billing", now - 2400, wait=50, n=5)   # only in 1h and 24h
    for contacts in (1, 1, 2):
        ev.ticket("billing", now - 120, contacts)
    for score in (5, 4, 2):
        ev.survey("billing", now - 50, "csat", score)
    for score in (10, 9, 3, 7):
        ev.survey("sales", now - 50, "nps", score)
    ev.lines.append(ev.lines[0])                         # a duplicate
    ev.emit("contact_offered", now - 10, contact_id="c-bad", channel="voice")  # schema: no queue
    produce(b.dep, ev.lines)
    caught_up(b.dep, b.port)


# --- the tests, one step each ------------------------------------------------------------------
def test_first_paint_equals_the_snapshot(board: Board) -> None:
    dep, page, port = board.dep, board.page, board.port
    assert dep.get(port, "/api/rules"), "the worker serves no rules"
    ARTIFACTS.mkdir(exist_ok=True)
    board.requests = RequestLog(page)
    board.opened = time.monotonic()
    for path in ("/", "/assets/wallboard.js", "/assets/wallboard.css", "/api/kpis"):
        resp = page.request.get(f"http://127.0.0.1:{port}{path}")
        assert resp.ok, f"GET {path}: {resp.status} {resp.text()[:200]}\n{dep.logs()[-1500:]}"
    page.goto(f"http://127.0.0.1:{port}/")
    page.wait_for_selector('.tile[data-scope="queue:tech"][data-kpi="service_level"]',
                           timeout=15_000)
    snap, shown = board.wait("15m", 10, "first paint")
    assert {s for s, _ in shown} == {"all", "queue:billing", "queue:sales", "queue:tech"}
    assert shown[("queue:billing", "contacts_waiting")][1] == "2"
    assert shown[("queue:billing", "service_level")][1:] == ("92.3%", "ok")
    assert shown[("queue:tech", "service_level")][1:] == ("84.2%", "warn")
    assert shown[("queue:sales", "service_level")][1:] == ("80.0%", "none")  # 5 < min_samples
    assert shown[("queue:tech", "asa_seconds")][1] == "0:14"
    assert shown[("queue:billing", "fcr_rate")][1] == "66.7%"
    assert shown[("queue:sales", "nps")][1] == "25"
    assert shown[("queue:sales", "csat")][1] == DASH
    assert page.get_attribute("#duplicates", "data-value") == str(snap["duplicates"]) == "1"
    assert page.get_attribute("#rejected", "data-value") == "1", snap["rejected"]
    assert page.get_attribute('#windows button[data-choice="15m"]', "aria-pressed") == "true"
    assert page.is_hidden("#stale")
    assert page.query_selector("section#alerts") is not None
    # the column heads are the catalogue's labels
    heads = page.eval_on_selector_all(".colhead span", "es => es.map(e => e.textContent)")
    assert heads == [k.label for k in kpis.board()]
    warn_bg = rgb(page.eval_on_selector(
        '.tile[data-scope="queue:tech"][data-kpi="service_level"]',
        "e => getComputedStyle(e).backgroundColor"))
    assert warn_bg[0] > 200 and warn_bg[1] > 140 and warn_bg[2] < 90, warn_bg
    page.screenshot(path=str(ARTIFACTS / "wallboard-initial.png"))


def test_new_events_show_within_seconds(board: Board) -> None:
    """The two waiting contacts get answered, and three more."""
    ev = board.ev
    ev.lines = []
    later = time.time()
    for cid in board.waiting:
        ev.answer(cid, later)
    ev.answered("billing", later - 4, wait=2, n=3)
    produce(board.dep, ev.lines)
    t0 = time.monotonic()
    _, shown = board.wait(
        "15m", 30, "after new events",
        until=lambda rows: rows[("queue:billing", "now")]["contacts_waiting"] == 0
        and rows[("queue:billing", "15m")]["contacts_answered"] == 17)
    followed = time.monotonic() - t0
    assert shown[("queue:billing", "contacts_waiting")][1] == "0"
    assert shown[("all", "contacts_waiting")][1] == "0"
    assert followed < FOLLOW_S, f"the board took {followed:.1f}s to show new events"
    board.shown_15m = shown


def test_a_breach_turns_the_tile_red(board: Board) -> None:
    """Twelve 120 s waits in sales: 4/17 within 20 s, far below the 80 % target."""
    ev, page = board.ev, board.page
    ev.lines = []
    late = time.time()
    ev.answered("sales", late - 130, wait=120, n=12)
    produce(board.dep, ev.lines)
    sl = '.tile[data-scope="queue:sales"][data-kpi="service_level"]'
    page.wait_for_selector(f'{sl}[data-status="breach"]', timeout=FOLLOW_S * 1000)
    _, shown = board.wait(
        "15m", 10, "after the breach",
        until=lambda rows: rows[("queue:sales", "15m")]["contacts_answered"] == 16)
    assert shown[("queue:sales", "service_level")][1:] == ("23.5%", "breach")
    red = rgb(page.eval_on_selector(sl, "e => getComputedStyle(e).backgroundColor"))
    assert red[0] > 180 and red[1] < 90 and red[2] < 90, red
    page.screenshot(path=str(ARTIFACTS / "wallboard-breach.png"))
    board.shown_15m = shown


def test_the_window_selector_and_the_hash(board: Board) -> None:
    """1h adds the 40-minute-old contacts; the hash remembers the window."""
    page, port = board.page, board.port
    if not board.shown_15m:
        board.shown_15m = board.wait("15m", 10, "window 15m")[1]
    page.click('#windows button[data-choice="1h"]')
    _, shown_1h = board.wait("1h", 10, "window 1h")
    assert page.evaluate("location.hash") == "#w=1h"
    assert page.text_content("#window-label") == "last 1 h"
    assert shown_1h[("queue:billing", "asa_seconds")] != \
        board.shown_15m[("queue:billing", "asa_seconds")]
    assert shown_1h[("queue:sales", "service_level")][2] == "none"  # the SL rules are 15m rules
    assert page.eval_on_selector_all(".colhead small", "es => es.map(e => e.textContent)") == \
        ["now" if live else "1h" for _, live, _ in TILES]
    page.screenshot(path=str(ARTIFACTS / "wallboard-1h.png"))

    page.goto(f"http://127.0.0.1:{port}/#w=5m")
    page.reload()
    board.wait("5m", 10, "window from the hash")
    assert page.get_attribute('#windows button[data-choice="5m"]', "aria-pressed") == "true"


def test_the_page_polls_one_request_at_a_time(board: Board) -> None:
    requests = board.requests
    assert requests and board.opened, "the first-paint step did not run"
    polled_s = time.monotonic() - board.opened
    snapshots = requests.counts.get("snapshot", 0)
    assert requests.max == 1, (requests.max, requests.counts)
    assert 0.5 * polled_s <= snapshots <= 1.5 * polled_s + 2, (requests.counts, polled_s)
    assert not requests.errors, requests.errors


def test_a_gone_worker_leaves_the_numbers_up_flagged_stale(board: Board) -> None:
    page = board.page
    board.dep.stop_all()
    page.wait_for_selector("#stale", state="visible", timeout=10_000)
    assert "stale" in (page.text_content("#stale") or "")
    sl = '.tile[data-scope="queue:sales"][data-kpi="service_level"]'
    assert page.text_content(f"{sl} .value") not in ("", DASH)
    page.screenshot(path=str(ARTIFACTS / "wallboard-stale.png"))
