"""What the wallboard's browser tests share: Chromium, the page's number formats
mirrored in Python, contract events stamped close to now, and producing them.

The pages format every value with one function (common.js ``format``); :func:`fmt`
is its mirror, so a test compares the exact text a person reads with the
snapshot's number. Chromium is Debian's (``infra/browser.sh ensure``), driven by the
playwright package; ``playwright install`` is never needed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from stream_app.outputs.rules import Rule
from stream_app.tools.producer import produce_lines
from tables import kpis
from tests.livehelp import ROOT, Deployment

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
DASH, MINUS = "\u2013", "\u2212"
# "within a few seconds": the worker publishes every 0.5 s here, the pages poll every 1 s.
FOLLOW_S = 5.0

T = TypeVar("T")
Rows = dict[tuple[str, str], dict[str, Any]]  # (scope, window) -> snapshot row


# --- formatting, as the pages do it (common.js) ------------------------------------------------
def _fixed(value: float, places: int) -> str:
    """JS Number.prototype.toFixed: the double's exact value, ties away from zero."""
    text = str(Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
    if text.startswith("-") and Decimal(text) == 0:
        text = text[1:]
    return text.replace("-", MINUS)


def duration(seconds: float) -> str:
    s = int(Decimal(seconds).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    h, m = divmod(s, 3600)
    m, sec = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fmt(kind: str, value: Any) -> str:
    if value is None:
        return DASH
    if kind == "percent":
        return _fixed(value * 100, 1) + "%"
    if kind == "score":
        return _fixed(value, 0)
    if kind == "duration":
        return duration(value)
    if kind in ("decimal", "money"):
        return _fixed(value, 2)
    return str(int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def seconds_of(text: str) -> int:
    """ "1:02:03" -> 3723; a dash -> a large negative number (never close to a time)."""
    if text == DASH:
        return -10**9
    total = 0
    for part in text.split(":"):
        total = total * 60 + int(part)
    return total


def rgb(css: str) -> tuple[int, ...]:
    inside = css[css.index("(") + 1:css.index(")")]
    return tuple(int(float(x)) for x in inside.replace("/", ",").split(",")[:3])


def rows_of(snap: dict[str, Any]) -> Rows:
    return {(r["scope"], r["window"]): r for r in snap["rows"]}


# --- events ----------------------------------------------------------------------------------
def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Events:
    """Contract events (EVENTS.md section 3), each entity's events in order. The worker's
    clock is the wall clock, so tests stamp them seconds to hours before now."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.seq = itertools.count(1)
        self.lines: list[bytes] = []

    def _id(self, kind: str) -> str:
        return f"{kind}-{self.tag}-{next(self.seq)}"

    def take(self) -> list[bytes]:
        """The lines made so far, and a fresh start for the next batch."""
        lines, self.lines = self.lines, []
        return lines

    def emit(self, type_: str, at: float, **fields: Any) -> bytes:
        line = orjson.dumps({"event_id": self._id("ev"), "type": type_, "ts": iso(at), **fields})
        self.lines.append(line)
        return line

    def offer(self, queue: str, at: float, channel: str = "voice",
              customer: str | None = None) -> str:
        cid = self._id("c")
        extra = {"customer_id": customer} if customer else {}
        self.emit("contact_offered", at, contact_id=cid, queue=queue, channel=channel, **extra)
        return cid

    def answer(self, cid: str, at: float, agent: str = "agent-1") -> None:
        self.emit("contact_answered", at, contact_id=cid, agent_id=agent)

    def close(self, cid: str, at: float) -> None:
        self.emit("contact_closed", at, contact_id=cid)

    def answered(self, queue: str, offered_at: float, wait: float, n: int = 1,
                 agent: str = "agent-1") -> None:
        for _ in range(n):
            self.answer(self.offer(queue, offered_at), offered_at + wait, agent)

    def handled(self, queue: str, agent: str, offered_at: float, wait: float, talk: float,
                customer: str | None = None) -> None:
        """Offered, answered by ``agent`` after ``wait`` s, closed ``talk`` s later."""
        cid = self.offer(queue, offered_at, customer=customer)
        self.answer(cid, offered_at + wait, agent)
        self.close(cid, offered_at + wait + talk)

    def abandoned(self, queue: str, offered_at: float, wait: float) -> None:
        cid = self.offer(queue, offered_at)
        self.emit("contact_abandoned", offered_at + wait, contact_id=cid)

    def ticket(self, queue: str, at: float, contacts: int, product: str | None = None,
               resolve_after: float = 30) -> None:
        tid = self.open_ticket(queue, at, product)
        self.emit("ticket_resolved", at + resolve_after, ticket_id=tid, contacts=contacts,
                  agent_id="agent-2")

    def open_ticket(self, queue: str, at: float, product: str | None = None,
                    channel: str = "email") -> str:
        tid = self._id("t")
        extra = {"product": product} if product else {}
        self.emit("ticket_opened", at, ticket_id=tid, queue=queue, channel=channel, **extra)
        return tid

    def survey(self, queue: str, at: float, kind: str, score: int) -> None:
        self.emit("survey_response", at, survey_id=self._id("s"), kind=kind, score=score,
                  queue=queue, channel="voice")

    def agent(self, agent: str, state: str, at: float, queues: list[str] | None = None,
              reason: str | None = None) -> None:
        extra: dict[str, Any] = {}
        if queues is not None:
            extra["queues"] = queues
        if reason is not None:
            extra["reason"] = reason
        self.emit("agent_state", at, agent_id=agent, state=state, **extra)


# --- plumbing --------------------------------------------------------------------------------
def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run fn in another thread: the sync playwright API keeps an event loop running in
    this one, and the producer and the offset look-ups use asyncio.run."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def produce(dep: Deployment, lines: list[bytes]) -> None:
    off_loop(asyncio.run, produce_lines(dep.bootstrap, dep.topics, lines))


def long_today(tmp: Path, hours: float = 3, extra: str = "") -> Path:
    """A definitions file whose local day started ``hours`` ago (UTC, minute-aligned),
    so "today" holds every event of a test whatever the hour it runs at; ``extra`` is
    more TOML (tables) after it. No ``[[rule]]``: the pages then colour nothing by rules."""
    start = datetime.fromtimestamp(time.time() - hours * 3600, UTC)
    path = tmp / "definitions.toml"
    path.write_text(f'timezone = "UTC"\nday_start = "{start:%H:%M}"\n{extra}')
    return path


def caught_up(dep: Deployment, port: int) -> None:
    off_loop(dep.wait_caught_up, port)


@contextmanager
def chromium_page(profile: Path) -> Iterator[Any]:
    """A 1920x1080 page of a fresh headless Chromium (a wall TV's resolution)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `infra/browser.sh ensure`", pytrace=False)
    from playwright.sync_api import ViewportSize, sync_playwright

    viewport: ViewportSize = {"width": 1920, "height": 1080}
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport=viewport, accept_downloads=True,
        )
        try:
            yield context.new_page()
        finally:
            context.close()


class RequestLog:
    """The page's API requests: how many were in flight at once, and how many of each."""

    def __init__(self, page: Any) -> None:
        self.in_flight = 0
        self.max = 0
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.started = time.monotonic()
        page.on("request", self._sent)
        page.on("requestfinished", self._done)
        page.on("requestfailed", self._done)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _sent(self, req: Any) -> None:
        if "/api/" in req.url:
            self.in_flight += 1
            self.max = max(self.max, self.in_flight)
            path = req.url.split("/api/", 1)[1].split("?", 1)[0]
            self.counts[path] = self.counts.get(path, 0) + 1

    def _done(self, req: Any) -> None:
        if "/api/" in req.url:
            self.in_flight -= 1


def settle(what: str, deadline_s: float, page: Any, check: Callable[[], list[str]],
           logs: Callable[[], str] = lambda: "") -> None:
    """Until ``check`` finds no problem (it returns them); fails with the last ones."""
    start = time.monotonic()
    problems = ["nothing checked yet"]
    while time.monotonic() - start < deadline_s:
        problems = check()
        if not problems:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"{what} after {deadline_s}s: {problems[:10]}\n{logs()[-2000:]}")


# --- the queue board (wallboard.js), mirrored --------------------------------------------------
# The board's tiles, as the page reads them from /api/kpis: (kpi, live, format).
TILES = [(k.name, k.row == kpis.NOW, k.fmt) for k in kpis.board()]
RANK = {"none": 0, "ok": 1, "warn": 2, "breach": 3}
# wallboard.js ALARMS: live ticket counts that colour their tile as soon as they are above 0.
ALARMS = {"tickets_sla_breached": "breach", "tickets_sla_at_risk": "warn"}

Tiles = dict[tuple[str, str], tuple[str, str, str]]  # (scope, kpi) -> (window, text, status)


def status(rules: list[Rule], scope: str, kpi: str, window: str, row: dict[str, Any] | None) -> str:
    value = (row or {}).get(kpi)
    best = ALARMS.get(kpi, "none") if isinstance(value, int | float) and value > 0 else "none"
    for rule in rules:
        if rule.kpi == kpi and rule.applies(scope, window):
            verdict = rule.status(row or {}) or "none"
            best = max(best, verdict, key=RANK.__getitem__)
    return best


def board_scopes(snap: dict[str, Any]) -> list[str]:
    return ["all", *sorted({r["scope"] for r in snap["rows"] if r["scope"].startswith("queue:")})]


def expected_tiles(snap: dict[str, Any], rules: list[Rule], window: str) -> Tiles:
    rows = rows_of(snap)
    out: Tiles = {}
    for scope in board_scopes(snap):
        for kpi, live, kind in TILES:
            win = "now" if live else window
            row = rows.get((scope, win))
            value = row.get(kpi) if row else None
            out[(scope, kpi)] = (win, fmt(kind, value), status(rules, scope, kpi, win, row))
    return out


def read_tiles(page: Any) -> Tiles:
    raw = page.evaluate("""() => [...document.querySelectorAll('.tile')].map(t =>
        [t.dataset.scope, t.dataset.kpi, t.dataset.window, t.querySelector('.value').textContent,
         t.dataset.status])""")
    return {(s, k): (w, text, st) for s, k, w, text, st in raw}


def tile_mismatches(shown: Tiles, want: Tiles) -> list[str]:
    out = []
    for key in sorted(set(shown) | set(want)):
        a, b = shown.get(key), want.get(key)
        # longest wait grows with the clock: the page's poll and ours are a second apart
        if (key[1] == "longest_wait_seconds" and a and b and a[0] == b[0]
                and abs(seconds_of(a[1]) - seconds_of(b[1])) <= 3):
            continue
        if a != b:
            out.append(f"{key}: page {a} != snapshot {b}")
    return out


def wait_board(page: Any, dep: Deployment, port: int, rules: list[Rule], window: str,
               deadline_s: float, what: str,
               until: Callable[[Rows], bool] = lambda rows: True) -> tuple[dict[str, Any], Tiles]:
    """Until every tile equals a fresh /api/snapshot that satisfies ``until`` (given the
    rows by (scope, window)); returns that snapshot and the tiles."""
    start = time.monotonic()
    problems: list[str] = ["nothing read yet"]
    while time.monotonic() - start < deadline_s:
        snap = dep.get(port, "/api/snapshot")
        if not until(rows_of(snap)):
            problems = ["the snapshot does not show the new events yet"]
            page.wait_for_timeout(100)
            continue
        shown = read_tiles(page)
        problems = tile_mismatches(shown, expected_tiles(snap, rules, window))
        if not problems:
            return snap, shown
        page.wait_for_timeout(100)
    raise AssertionError(f"{what}: board != snapshot after {deadline_s}s: {problems[:10]}\n"
                         f"{dep.logs()[-2000:]}")
