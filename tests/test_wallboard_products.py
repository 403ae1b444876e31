"""The products page in a real Chromium against a real worker on the real broker.

Tickets with a `product` open, resolve and breach their SLA over the last hours. The
page must show, per product, exactly what /api/snapshot says: tickets opened (today,
24 h, 1 h), the open backlog and SLA breaches (now), resolution time and FCR (today,
24 h), CSAT as "–" with its footnote (the contract has no survey KPIs per product),
most incidents today first, and flag the top movers: at least 3 tickets opened in the
last hour and more than twice the product's average hourly count over 24 h
(``opened_1h > 2 * opened_24h / 24``). Screenshots: test-artifacts/products-*.png.
"""

from __future__ import annotations

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
    Rows,
    caught_up,
    chromium_page,
    fmt,
    long_today,
    produce,
    rgb,
    rows_of,
    settle,
    status,
)
from tests.livehelp import Deployment

pytestmark = pytest.mark.stack

# products.js: the columns (kpi, windows) in order, the sort key and the top-mover rule
GROUPS = [("tickets_opened", ["today", "24h", "1h"]), ("open_tickets", ["now"]),
          ("tickets_sla_breached", ["now"]), ("resolution_seconds", ["today", "24h"]),
          ("fcr_rate", ["today", "24h"]), ("csat", ["today", "24h"])]
MOVER_MIN, MOVER_FACTOR = 3, 2
# An SLA policy (breaches per product) and a target on incidents per product (the
# shipped product-incidents rule with small numbers): the page colours cells by the rules.
DEFINITIONS = """
[[ticket_sla]]
name = "reply within the hour"
first_reply_seconds = 3600

[[rule]]
name = "product-incidents"
kpi = "tickets_opened"
window = "1h"
scope = "product:*"
op = ">"
threshold = 6
warn = 4
"""


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium_page(tmp_path_factory.mktemp("chromium-profile")) as page:
        yield page


class Shop:
    def __init__(self, dep: Deployment, page: Any, port: int, rules: list[Rule]) -> None:
        self.dep, self.page, self.port, self.rules = dep, page, port, rules
        self.requests: RequestLog | None = None
        self.opened = 0.0


@pytest.fixture(scope="module")
def shop(kafka_bootstrap: str, redis_url: str, browser_page: Any,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    tmp = tmp_path_factory.mktemp("wallboard-products")
    dep = Deployment(kafka_bootstrap, redis_url, tmp)
    try:
        # today began 3 h ago: the 5-hour-old tickets are in 24 h only, whatever the hour
        path = long_today(tmp, 3, DEFINITIONS)
        port = dep.start_worker(KPI_RULES_FILE=str(path))
        dep.wait_http(port)
        _traffic(dep)
        caught_up(dep, port)
        yield Shop(dep, browser_page, port, load_rules(path))
    finally:
        dep.stop_all()


def _traffic(dep: Deployment) -> None:
    now = time.time()
    ev = Events()
    # router: a burst in the last half hour (a top mover) and one ticket past its SLA
    ev.open_ticket("tech", now - 4000, "router")
    routers = [ev.open_ticket("tech", now - 1500 + 250 * i, "router") for i in range(5)]
    # CSAT of router's customers: four responses that name their ticket, 3 of 4 good;
    # one naming a ticket without product, one naming none: neither counts for a product
    for tid, score in zip(routers, (5, 4, 2, 5), strict=False):
        ev.emit("survey_response", now - 200, survey_id=f"sr-{tid}", kind="csat", score=score,
                queue="tech", channel="email", ticket_id=tid)
    plain = ev.open_ticket("billing", now - 300)
    ev.emit("survey_response", now - 150, survey_id="sr-plain", kind="csat", score=1,
            queue="billing", channel="email", ticket_id=plain)
    ev.survey("tech", now - 150, "csat", 1)
    # modem: busy all day, so 3 in the last hour is normal (3 <= 2 * 43 / 24)
    for i in range(40):
        if i % 2:
            ev.open_ticket("tech", now - 5 * 3600 + i, "modem")     # 20 breached
        else:
            ev.ticket("tech", now - 5 * 3600 + i, contacts=1 + i % 4 // 2, product="modem",
                      resolve_after=600)
    for i in range(3):
        ev.open_ticket("tech", now - 1800 + 60 * i, "modem")
    # sim: two in the last hour, under the floor of three
    for i in range(2):
        ev.open_ticket("billing", now - 600 + 60 * i, "sim")
    # tv: four resolved after an hour, one of them after a second contact (FCR 75 %)
    for contacts in (1, 1, 1, 2):
        ev.ticket("billing", now - 7200, contacts, product="tv", resolve_after=3600)
    ev.open_ticket("billing", now - 100)                           # no product
    produce(dep, ev.take())


def opened(rows: Rows, product: str, window: str) -> int:
    row = rows.get((f"product:{product}", window)) or {}
    return int(row.get("tickets_opened") or 0)


def mover(rows: Rows, product: str) -> bool:
    last = opened(rows, product, "1h")
    return last >= MOVER_MIN and last > MOVER_FACTOR * opened(rows, product, "24h") / 24


Table = list[dict[str, Any]]


def expected(snap: dict[str, Any], rules: list[Rule],
             csat: dict[str, dict[str, Any]]) -> Table:
    """The table the page must show: the snapshot's product rows, and CSAT per product
    from api/products (the join of responses naming a ticket with its product)."""
    rows = rows_of(snap)
    products = sorted({r["scope"].removeprefix("product:") for r in snap["rows"]
                       if r["scope"].startswith("product:")})
    products.sort(key=lambda p: -opened(rows, p, "today"))  # stable: names break ties
    out = []
    for p in products:
        cells = []
        for kpi, windows in GROUPS:
            for w in windows:
                row = rows.get((f"product:{p}", w))
                value = (row or {}).get(kpi)
                if kpi == "csat":
                    value = csat.get(w, {}).get(p, {}).get("csat")
                cells.append([kpi, w, fmt(kpis.BY_NAME[kpi].fmt, value),
                              status(rules, f"product:{p}", kpi, w, row)])
        out.append({"product": p, "mover": mover(rows, p), "cells": cells})
    return out


def read_table(page: Any) -> Table:
    return list(page.evaluate("""() => [...document.querySelectorAll('#products-body tr')]
      .map(tr => ({product: tr.dataset.product, mover: tr.dataset.mover === 'true',
                   flag: !tr.querySelector('.mover').hidden,
                   cells: [...tr.querySelectorAll('td')].map(td =>
                     [td.dataset.kpi, td.dataset.window, td.textContent, td.dataset.status])}))
    """))


def wait_table(shop: Shop, what: str, until: Any = lambda rows: True,
               deadline_s: float = 10) -> tuple[Table, dict[str, Any]]:
    got: dict[str, Any] = {}

    def check() -> list[str]:
        snap = shop.dep.get(shop.port, "/api/snapshot")
        csat = shop.dep.get(shop.port, "/api/products")["csat"]
        if not until(rows_of(snap)):
            return ["the snapshot does not show the new events yet"]
        shown = read_table(shop.page)
        got.update(snap=snap, shown=shown)
        problems = [f"{r['product']}: flag shown {r['flag']} != data-mover {r['mover']}"
                    for r in shown if r["flag"] != r["mover"]]
        want = expected(snap, shop.rules, csat)
        if [{k: r[k] for k in ("product", "mover", "cells")} for r in shown] != want:
            problems.append(f"page {shown} != snapshot {want}")
        return problems

    settle(what, deadline_s + 6, shop.page, check, shop.dep.logs)  # CSAT is asked every 5 s
    return got["shown"], got["snap"]


def cell(table: Table, product: str, kpi: str, window: str) -> str:
    row = next(r for r in table if r["product"] == product)
    return str(next(c[2] for c in row["cells"] if c[0] == kpi and c[1] == window))


# --- the tests, one step each ------------------------------------------------------------------
def test_the_table_equals_the_snapshot(shop: Shop) -> None:
    page = shop.page
    ARTIFACTS.mkdir(exist_ok=True)
    shop.requests = RequestLog(page)
    shop.opened = time.monotonic()
    page.goto(f"http://127.0.0.1:{shop.port}/products")
    page.wait_for_selector('#products-body tr[data-product="modem"]', timeout=15_000)
    shown, snap = wait_table(shop, "first paint")
    # the events, through the page: most incidents today first
    assert [r["product"] for r in shown] == ["router", "tv", "modem", "sim"]
    assert [cell(shown, p, "tickets_opened", w) for p in ("modem",) for w in
            ("today", "24h", "1h")] == ["3", "43", "3"]
    assert cell(shown, "router", "open_tickets", "now") == "6"
    assert cell(shown, "modem", "open_tickets", "now") == "23"
    assert cell(shown, "modem", "tickets_sla_breached", "now") == "20"
    assert cell(shown, "router", "tickets_sla_breached", "now") == "1"
    assert cell(shown, "sim", "tickets_sla_breached", "now") == "0"
    assert cell(shown, "tv", "fcr_rate", "today") == "75.0%"
    assert cell(shown, "tv", "resolution_seconds", "24h") == "1:00:00"
    assert cell(shown, "modem", "resolution_seconds", "today") == DASH   # resolved before today
    assert cell(shown, "modem", "resolution_seconds", "24h") == "10:00"
    assert cell(shown, "modem", "fcr_rate", "24h") == "50.0%"
    # CSAT per product: router's four responses naming its tickets, 3 of 4 good
    assert cell(shown, "router", "csat", "today") == "75.0%"
    assert cell(shown, "router", "csat", "24h") == "75.0%"
    assert {cell(shown, p, "csat", "today") for p in ("tv", "modem", "sim")} == {DASH}
    csat = shop.dep.get(shop.port, "/api/products")["csat"]
    assert csat["today"] == {"router": {"csat": 0.75, "csat_responses": 4}}
    red = rgb(page.eval_on_selector(
        '#products-body tr[data-product="modem"] td[data-kpi="tickets_sla_breached"]',
        "e => getComputedStyle(e).backgroundColor"))
    assert red[0] > 180 and red[1] < 90 and red[2] < 90, red
    # labels from the catalogue; CSAT carries its footnote
    heads = page.eval_on_selector_all(
        "#products-head th.group", "es => es.map(e => [e.dataset.kpi, e.firstChild.textContent])")
    assert heads == [[k, kpis.BY_NAME[k].label] for k, _ in GROUPS]
    note = page.text_content("#csat-note") or ""
    assert "product" in note and page.get_attribute(
        '#products-head th[data-kpi="csat"]', "aria-describedby") == "csat-note"
    assert not [r for r in snap["rows"] if r["scope"].startswith("product:")
                and r.get("csat") is not None]
    page.screenshot(path=str(ARTIFACTS / "products-initial.png"))


def test_top_movers_are_flagged_by_the_stated_rule(shop: Shop) -> None:
    page = shop.page
    shown, _ = wait_table(shop, "movers")
    assert {r["product"]: r["mover"] for r in shown} == {
        "router": True, "modem": False, "sim": False, "tv": False}
    rule = page.text_content("#mover-rule") or ""
    assert f"at least {MOVER_MIN} tickets opened in the last hour" in rule
    assert f"opened 1 h > {MOVER_FACTOR} \u00d7 opened 24 h \u00f7 24" in rule
    assert page.is_visible('#products-body tr[data-product="router"] .mover')
    assert page.is_hidden('#products-body tr[data-product="modem"] .mover')
    # the incidents rule: 5 in the last hour is past its warning (4), below its threshold (6)
    one_hour = ('#products-body tr[data-product="{}"] '
                'td[data-kpi="tickets_opened"][data-window="1h"]')
    assert page.get_attribute(one_hour.format("router"), "data-status") == "warn"
    assert page.get_attribute(one_hour.format("sim"), "data-status") == "ok"


def test_a_spike_makes_a_new_mover_and_reorders(shop: Shop) -> None:
    ev = Events()
    now = time.time()
    for i in range(5):
        ev.open_ticket("billing", now - 5 + i, "sim")
    produce(shop.dep, ev.take())
    t0 = time.monotonic()
    shop.page.wait_for_selector('#products-body tr[data-product="sim"][data-mover="true"]',
                                timeout=FOLLOW_S * 1000)
    assert time.monotonic() - t0 < FOLLOW_S
    shown, _ = wait_table(shop, "after the spike",
                          until=lambda rows: opened(rows, "sim", "today") == 7)
    assert [r["product"] for r in shown] == ["sim", "router", "tv", "modem"]
    one_hour = next(c for c in shown[0]["cells"] if c[:2] == ["tickets_opened", "1h"])
    assert one_hour[2:] == ["7", "breach"]
    shop.page.screenshot(path=str(ARTIFACTS / "products-mover.png"))


def test_the_page_polls_one_request_at_a_time(shop: Shop) -> None:
    requests = shop.requests
    assert requests and shop.opened, "the first step did not run"
    polled_s = time.monotonic() - shop.opened
    assert requests.max == 1, (requests.max, requests.counts)
    snapshots = requests.counts.get("snapshot", 0)
    assert 0.5 * polled_s <= snapshots <= 1.5 * polled_s + 2, (requests.counts, polled_s)
    assert not requests.errors, requests.errors
