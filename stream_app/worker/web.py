"""The worker's web routes: the wallboard, its assets, the API and ``/metrics``.

Everything a page shows comes from here: the snapshot, the KPI catalogue (so
no KPI name, label or format is repeated in JavaScript), the rules for the
tile colours and the active alerts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream_app.outputs.alerts import AlertService
from stream_app.outputs.intervals import csv_text
from stream_app.outputs.rules import Rule, rules_json
from stream_app.worker import assets, pages
from stream_app.worker.processor import LiveProcessor
from stream_app.worker.publisher import Publisher
from stream_app.worker.view import CenterView
from tables import kpis
from tables.snapshot import format_ts


def _json(web: Any, body: Any) -> Any:
    data = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    return web.bytes(data, content_type="application/json")


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
                "owned_partitions": sorted(processor.stores),
                "events": processor.events,
                "last_publish": publisher.last_publish,
            },
        )
