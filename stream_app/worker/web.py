"""The worker's web routes: the wallboard, its assets, the API and ``/metrics``.

Everything a page shows comes from here: the snapshot, the KPI catalogue (so
no KPI name, label or format is repeated in JavaScript), the rules for the
tile colours and the active alerts.

With ``KPI_API_TOKEN`` set, ``/api/*`` and ``/metrics`` answer only requests carrying
``Authorization: Bearer <token>`` (what Prometheus sends with ``authorization:`` in its
scrape config); the check is one aiohttp middleware (:func:`auth_middleware`), so a route
added later under ``/api/`` is covered without anyone remembering to. The pages and their
assets stay open: the page asks for the token once (``assets/auth.js``). ``/healthz`` and
``/readyz`` are open too (probes carry no token) and say only what is wrong.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web as aioweb
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream_app.outputs.alerts import AlertService
from stream_app.outputs.intervals import csv_text
from stream_app.outputs.rules import Rule, rules_json
from stream_app.worker import assets, pages
from stream_app.worker.health import Health
from stream_app.worker.processor import LiveProcessor
from stream_app.worker.publisher import Publisher
from stream_app.worker.view import CenterView
from tables import kpis
from tables.snapshot import format_ts


def _json(web: Any, body: Any) -> Any:
    data = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    return web.bytes(data, content_type="application/json")


def needs_token(path: str) -> bool:
    return path.startswith("/api/") or path == "/api" or path.startswith("/metrics")


def auth_middleware(token: str) -> Any:
    """Requests to ``/api/*`` and ``/metrics`` without ``Authorization: Bearer <token>`` get
    401. ``token`` empty: everything is open."""
    expected = f"Bearer {token}".encode()

    @aioweb.middleware
    async def _auth(
        request: aioweb.Request, handler: Callable[[aioweb.Request], Awaitable[Any]]
    ) -> Any:
        if token and needs_token(request.path):
            given = request.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            if not hmac.compare_digest(f"{scheme.capitalize()} {value.strip()}".encode(),
                                       expected):
                return aioweb.json_response(
                    {"error": "unauthorized",
                     "hint": "send the header Authorization: Bearer <KPI_API_TOKEN>"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="kpi-stream"'},
                )
        return await handler(request)

    return _auth


def register_health(app: Any, health: Health, input_topics: set[str]) -> None:
    """``/healthz`` (liveness) and ``/readyz`` (readiness): 200 or 503 with the reasons, and
    the input partitions this worker is assigned."""

    def assigned() -> list[int]:
        try:
            actives = app.assignor.assigned_actives()
        except Exception:  # noqa: BLE001 - not assigned yet
            return []
        return sorted({tp.partition for tp in actives if tp.topic in input_topics})

    def _answer(web: Any, problems: list[str]) -> Any:
        body = orjson.dumps({"ok": not problems, "problems": problems, "partitions": assigned()})
        return web.bytes(body, content_type="application/json", status=503 if problems else 200)

    @app.page("/healthz")
    async def _healthz(web: Any, request: Any) -> Any:
        return _answer(web, health.liveness())

    @app.page("/readyz")
    async def _readyz(web: Any, request: Any) -> Any:
        return _answer(web, health.readiness())


def register(
    app: Any,
    publisher: Publisher,
    view: CenterView,
    processor: LiveProcessor,
    registry: CollectorRegistry,
    alerts: AlertService,
    rules: list[Rule],
) -> None:
    catalogue = [k.public() for k in kpis.CATALOGUE]
    definitions = view.center.cfg.defs.public()

    @app.page("/api/snapshot")
    async def _snapshot(web: Any, request: Any) -> Any:
        return _json(web, publisher.current_snapshot())

    @app.page("/api/kpis")
    async def _kpis(web: Any, request: Any) -> Any:
        return _json(web, catalogue)

    @app.page("/metrics")
    async def _metrics(web: Any, request: Any) -> Any:
        # Off the event loop: a large center's exposition takes tenths of a second.
        body = await asyncio.to_thread(generate_latest, registry)
        return web.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/api/alerts")
    async def _alerts(web: Any, request: Any) -> Any:
        return _json(web, await alerts.active_json())

    @app.page("/api/rules")
    async def _rules(web: Any, request: Any) -> Any:
        return _json(web, rules_json(rules))

    @app.page("/")
    async def _index(web: Any, request: Any) -> Any:
        # (aiohttp refuses a charset in content_type=; headers= passes it through)
        return web.bytes(assets.read("index.html"), headers={"Content-Type": assets.TYPES[".html"]})

    @app.page("/assets/{name}")
    async def _assets(web: Any, request: Any, name: str) -> Any:
        body = assets.read(name)
        kind = assets.TYPES.get(Path(name).suffix)
        if not body or kind is None:
            return web.bytes(b"not found", status=404)
        return web.bytes(body, headers={"Content-Type": kind})

    @app.page("/api/intervals")
    async def _intervals(web: Any, request: Any) -> Any:
        """Today's report intervals so far: ?interval=15m|30m|1h|1d [&scope=...]
        [&format=csv]."""
        query = request.query
        interval = query.get("interval", "30m")
        try:
            rows = view.center.intervals(publisher.clock(), interval)
        except ValueError as exc:
            return web.bytes(f"{exc}\n".encode(), status=400)
        scope = query.get("scope")
        if scope:
            rows = [r for r in rows if r["scope"] == scope]
        if query.get("format") == "csv":
            return web.bytes(csv_text(rows).encode(), headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="kpi-intervals-{interval}.csv"',
            })
        return _json(web, {"rows": rows})

    @app.page("/api/agents")
    async def _agents(web: Any, request: Any) -> Any:
        """Every agent's current state, queues and time in state (the agents page)."""
        clock = publisher.clock()
        return _json(web, {"as_of": format_ts(clock), "agents": view.center.agents(clock)})

    @app.page("/api/products")
    async def _products(web: Any, request: Any) -> Any:
        """CSAT per product of the surveys that name a ticket, per window (beside the
        snapshot: the contract has no survey KPIs in product rows)."""
        clock = publisher.clock()
        return _json(web, {"as_of": format_ts(clock), "csat": view.center.product_csat(clock)})

    @app.page("/api/definitions")
    async def _definitions(web: Any, request: Any) -> Any:
        """The center's definitions a page shows: zone, day start, targets, SLA policies."""
        return _json(web, definitions)

    pages.register(app)

    @app.page("/api/status")
    async def _status(web: Any, request: Any) -> Any:
        return _json(
            web,
            {
                "view_ready": view.ready.is_set(),
                "view_offsets": view.offsets(),
                "view_unread": view.unread,
                "owned_partitions": sorted(processor.stores),
                "events": processor.events,
                "last_publish": publisher.last_publish,
            },
        )
