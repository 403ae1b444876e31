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

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from stream_app.outputs.rules import Rule, load_rules
from stream_app.tools.producer import produce_lines
from tables import kpis
from tests.livehelp import ROOT, Deployment

pytestmark = pytest.mark.stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
DASH, MINUS = "\u2013", "\u2212"
# "within a few seconds": the worker publishes every 0.5 s here, the page polls every 1 s.
FOLLOW_S = 5.0

# The board's tiles, as the page reads them from /api/kpis: (kpi, live, format).
TILES = [(k.name, k.row == kpis.NOW, k.fmt) for k in kpis.board()]
RANK = {"none": 0, "ok": 1, "warn": 2, "breach": 3}
T = TypeVar("T")


# --- formatting and colouring, as the page does it -------------------------------------------
def _fixed(value: float, places: int) -> str:
    """JS Number.prototype.toFixed: the double's exact value, ties away from zero."""
    text = str(Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
    if text.startswith("-") and Decimal(text) == 0:
        text = text[1:]
    return text.replace("-", MINUS)


def fmt(kind: str, value: Any) -> str:
    if value is None:
        return DASH
    if kind == "percent":
        return _fixed(value * 100, 1) + "%"
    if kind == "score":
        return _fixed(value, 0)
    if kind == "duration":
        s = int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        h, m = divmod(s, 3600)
        m, sec = divmod(m, 60)
        return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
    return str(int(value))


def status(rules: list[Rule], scope: str, kpi: str, window: str, row: dict[str, Any] | None) -> str:
    best = "none"
    for rule in rules:
        if rule.kpi == kpi and rule.applies(scope, window):
            verdict = rule.status(row or {}) or "none"
            best = max(best, verdict, key=RANK.__getitem__)
    return best


Tiles = dict[tuple[str, str], tuple[str, str, str]]  # (scope, kpi) -> (window, text, status)
Rows = dict[tuple[str, str], dict[str, Any]]


def expected_tiles(snap: dict[str, Any], rules: list[Rule], window: str) -> Tiles:
    rows = {(r["scope"], r["window"]): r for r in snap["rows"]}
    scopes = ["all", *sorted({r["scope"] for r in snap["rows"] if r["scope"].startswith("queue:")})]
    out: Tiles = {}
    for scope in scopes:
        for kpi, live, kind in TILES:
            win = "now" if live else window
            row = rows.get((scope, win))
            value = row.get(kpi) if row else None
            out[(scope, kpi)] = (win, fmt(kind, value), status(rules, scope, kpi, win, row))
    return out


# --- events ----------------------------------------------------------------------------------
def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Events:
    """Contract events (EVENTS.md section 3), each entity's events in order."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.seq = itertools.count(1)
        self.lines: list[bytes] = []

    def _id(self, kind: str) -> str:
        return f"{kind}-{self.tag}-{next(self.seq)}"

    def emit(self, type_: str, at: float, **fields: Any) -> bytes:
        line = orjson.dumps({"event_id": self._id("ev"), "type": type_, "ts": iso(at), **fields})
        self.lines.append(line)
        return line

    def offer(self, queue: str, at: float, channel: str = "voice") -> str:
        cid = self._id("c")
        self.emit("contact_offered", at, contact_id=cid, queue=queue, channel=channel)
        return cid

    def answer(self, cid: str, at: float, agent: str = "agent-1") -> None:
        self.emit("contact_answered", at, contact_id=cid, agent_id=agent)

    def answered(self, queue: str, offered_at: float, wait: float, n: int = 1) -> None:
        for _ in range(n):
            self.answer(self.offer(queue, offered_at), offered_at + wait)

    def abandoned(self, queue: str, offered_at: float, wait: float) -> None:
        cid = self.offer(queue, offered_at)
        self.emit("contact_abandoned", offered_at + wait, contact_id=cid)

    def ticket(self, queue: str, at: float, contacts: int) -> None:
        tid = self._id("t")
        self.emit("ticket_opened", at, ticket_id=tid, queue=queue, channel="email")
        self.emit("ticket_resolved", at + 30, ticket_id=tid, contacts=contacts, agent_id="agent-2")

    def survey(self, queue: str, at: float, kind: str, score: int) -> None:
        self.emit("survey_response", at, survey_id=self._id("s"), kind=kind, score=score,
                  queue=queue, channel="voice")


# --- plumbing --------------------------------------------------------------------------------
def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run fn in another thread: the sync playwright API keeps an event loop running in
    this one, and the producer and the offset look-ups use asyncio.run."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def produce(dep: Deployment, lines: list[bytes]) -> None:
    off_loop(asyncio.run, produce_lines(dep.bootstrap, dep.topics, lines))


def read_tiles(page: Any) -> Tiles:
    raw = page.evaluate("""() => [...document.querySelectorAll('.tile')].map(t =>
        [t.dataset.scope, t.dataset.kpi, t.dataset.window, t.querySelector('.value').textContent,
         t.dataset.status])""")
    return {(s, k): (w, text, st) for s, k, w, text, st in raw}


def mismatches(shown: Tiles, want: Tiles, snap: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(shown) | set(want)):
        a, b = shown.get(key), want.get(key)
        # longest wait grows with the clock: the page's poll and ours are a second apart
        if (key[1] == "longest_wait_seconds" and a and b and a[0] == b[0]
                and abs(_seconds(a[1]) - _seconds(b[1])) <= 3):
            continue
        if a != b:
            out.append(f"{key}: page {a} != snapshot {b}")
    return out


def _seconds(text: str) -> int:
    if text == DASH:
        return -10**9
    total = 0
    for part in text.split(":"):
        total = total * 60 + int(part)
    return total


def wait_board(page: Any, dep: Deployment, port: int, rules: list[Rule], window: str,
               deadline_s: float, what: str,
               until: Callable[[Rows], bool] = lambda rows: True) -> tuple[dict[str, Any], Tiles]:
    """Until every tile equals a fresh /api/snapshot that satisfies ``until`` (given the
    rows by (scope, window)); returns that snapshot and the tiles."""
    start = time.monotonic()
    problems: list[str] = ["nothing read yet"]
    while time.monotonic() - start < deadline_s:
        snap = dep.get(port, "/api/snapshot")
        if not until({(r["scope"], r["window"]): r for r in snap["rows"]}):
            problems = ["the snapshot does not show the new events yet"]
            page.wait_for_timeout(100)
            continue
        shown = read_tiles(page)
        problems = mismatches(shown, expected_tiles(snap, rules, window), snap)
        if not problems:
            return snap, shown
        page.wait_for_timeout(100)
    raise AssertionError(f"{what}: board != snapshot after {deadline_s}s: {problems[:10]}\n"
                         f"{dep.logs()[-2000:]}")


def rgb(css: str) -> tuple[int, ...]:
    inside = css[css.index("(") + 1:css.index(")")]
    return tuple(int(float(x)) for x in inside.replace("/", ",").split(",")[:3])


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `infra/browser.sh ensure`", pytrace=False)
    from playwright.sync_api import ViewportSize, sync_playwright

    viewport: ViewportSize = {"width": 1920, "height": 1080}
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport=viewport,
        )
        try:
            yield context.new_page()
        finally:
            context.close()


class Board:
    """One worker with known traffic and one page on it, shared by the tests below, which
    run in file order (each a step of a supervisor's session; one failing hides none)."""

    def __init__(self, dep: Deployment, page: Any) -> None:
        self.dep, self.page = dep, page
        self.rules = load_rules()
        self.port = dep.start_worker()
        self.requests: dict[str, Any] = {"in_flight": 0, "max": 0, "snapshots": 0}
        self.errors: list[str] = []
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
    off_loop(b.dep.wait_caught_up, b.port)


# --- the tests, one step each ------------------------------------------------------------------
def test_first_paint_equals_the_snapshot(board: Board) -> None:
    dep, page, port, requests = board.dep, board.page, board.port, board.requests
    assert dep.get(port, "/api/rules"), "the worker serves no rules"
    ARTIFACTS.mkdir(exist_ok=True)

    def _sent(req: Any) -> None:
        if "/api/" in req.url:
            requests["in_flight"] += 1
            requests["max"] = max(requests["max"], requests["in_flight"])
            requests["snapshots"] += req.url.endswith("/api/snapshot")

    def _done(req: Any) -> None:
        if "/api/" in req.url:
            requests["in_flight"] -= 1

    page.on("request", _sent)
    page.on("requestfinished", _done)
    page.on("requestfailed", _done)
    page.on("pageerror", lambda exc: board.errors.append(str(exc)))

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
    live = sum(1 for _, live, _ in TILES if live)
    assert page.eval_on_selector_all(".colhead small", "es => es.map(e => e.textContent)") == \
        ["now"] * live + ["1h"] * (len(TILES) - live)
    page.screenshot(path=str(ARTIFACTS / "wallboard-1h.png"))

    page.goto(f"http://127.0.0.1:{port}/#w=5m")
    page.reload()
    board.wait("5m", 10, "window from the hash")
    assert page.get_attribute('#windows button[data-choice="5m"]', "aria-pressed") == "true"


def test_the_page_polls_one_request_at_a_time(board: Board) -> None:
    requests = board.requests
    assert board.opened, "the first-paint step did not run"
    polled_s = time.monotonic() - board.opened
    assert requests["max"] == 1, requests
    assert 0.5 * polled_s <= requests["snapshots"] <= 1.5 * polled_s + 2, (requests, polled_s)
    assert not board.errors, board.errors


def test_a_gone_worker_leaves_the_numbers_up_flagged_stale(board: Board) -> None:
    page = board.page
    board.dep.stop_all()
    page.wait_for_selector("#stale", state="visible", timeout=10_000)
    assert "stale" in (page.text_content("#stale") or "")
    sl = '.tile[data-scope="queue:sales"][data-kpi="service_level"]'
    assert page.text_content(f"{sl} .value") not in ("", DASH)
    page.screenshot(path=str(ARTIFACTS / "wallboard-stale.png"))
