"""The Faust app: topics, the state table, the batch hand-off, publishing.

``create_app`` builds everything from one :class:`Settings`; the module-level
``app`` is what ``faust -A stream_app.worker.app worker`` and ``kpi-stream worker`` run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import resources
from pathlib import Path
from typing import Any

import faust
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream_app.logs import LOGGING_CONFIG
from stream_app.outputs.redis_sink import RedisSink
from stream_app.outputs.rules import Rule, load_rules, rules_json
from stream_app.settings import Settings, get_settings
from stream_app.worker.gcpolicy import GcPolicy
from stream_app.worker.processor import LiveProcessor, Msg, Plan, wall_clock_us
from stream_app.worker.transport import Transport
from stream_app.worker.view import CenterView
from tables.state import Config

log = logging.getLogger("kpi.worker")


class KpiApp(faust.App):
    """Faust app whose consumer hands our input batches straight to the processor."""

    kpi: KpiHub

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)


def _metrics(registry: CollectorRegistry, settings: Settings) -> Any:
    try:
        from stream_app.outputs.metrics import KpiMetrics
    except ImportError:  # pragma: no cover - metrics module not present
        return None
    return KpiMetrics(
        registry,
        agent_series=settings.metrics_agent_series,
        sl_threshold_seconds=settings.sl_threshold_seconds,
    )


def _alerts(hub: KpiHub) -> Any:
    """The SLA alert service (stream_app/outputs/alerts.py: ``make_alerts(hub)``), if present."""
    try:
        from stream_app.outputs.alerts import make_alerts
    except ImportError:  # pragma: no cover
        return None
    return make_alerts(hub)


def broker_url(bootstrap: str) -> str:
    return "kafka://" + ";".join(h.strip() for h in bootstrap.split(",") if h.strip())


class KpiHub:
    """Glue between faust and the pure core: loads partitions, persists batches, publishes."""

    def __init__(self, app: KpiApp, settings: Settings, table: Any) -> None:
        self.app = app
        self.settings = settings
        self.cfg = Config.from_settings(settings)
        self.table = table
        self.input_topics = set(settings.input_topics.values())
        self.partials_topic = settings.topic(f"{settings.app_id}-partials")
        self.processor = LiveProcessor(
            self.cfg,
            settings.input_topics,
            changelog_topic=table.changelog_topic.get_topic_name(),
            partials_topic=self.partials_topic,
            dead_letter_topic=settings.dead_letter_topic,
            clock=self.clock,
        )
        self.view = CenterView(self.cfg, settings.kafka_bootstrap_servers, self.partials_topic)
        self.poll_timeout = min(1.0, settings.batch_within)
        self.gc = GcPolicy(settings.gc_freeze_seconds, settings.gc_full_seconds)
        self.pending = 0
        self.pending_since = 0.0
        self.lock = asyncio.Lock()
        self.latest: dict[str, Any] | None = None
        self.last_publish = 0.0
        self._broker_down_logged = False
        self.rules: list[Rule] = []
        self._writer: asyncio.Task[None] | None = None
        self._published_newest = 0
        self.alerts: Any = None  # set by create_app once the rules are loaded
        self.registry = CollectorRegistry(auto_describe=True)
        self.metrics = _metrics(self.registry, settings)
        self.redis = RedisSink(
            settings.redis_url, settings.redis_prefix, max(settings.retention_seconds, 3600)
        )
        self.contact_topic = settings.input_topics["contact"]

    def clock(self) -> int:
        return wall_clock_us(self.settings.clock_offset_seconds)

    # --- partitions -------------------------------------------------------------------------
    def _ensure(self, partition: int) -> None:
        if partition in self.processor.runtimes:
            return
        store = self.table.data  # faust's memory store, filled by recovery
        raw: dict[Any, Any] = store.data
        tag = f"|{partition}".encode()
        mine = {}
        for k, v in raw.items():
            parts = k.split(b"|", 2)
            if len(parts) > 1 and b"|" + parts[1] == tag:
                mine[k] = v
        self.processor.load(partition, mine)
        for k in mine:  # our runtime holds it now; recovery refills it on the next assignment
            raw.pop(k, None)

    async def absorb(
        self, records: dict[Any, list[Any]], from_agent: bool = False
    ) -> list[tuple[Any, list[Any]]]:
        """Apply input records (anything else is returned for faust's own path)."""
        others = []
        clock = self.clock()
        for tp, recs in records.items():
            if tp.topic not in self.input_topics or not (self.settings.fast_path or from_agent):
                others.append((tp, recs))
                continue
            self._ensure(tp.partition)
            self.processor.absorb(
                tp.topic, tp.partition, [(r.offset, r.value) for r in recs], clock
            )
            if not self.pending:
                self.pending_since = time.monotonic()
            self.pending += len(recs)
        return others

    async def maybe_persist(self) -> None:
        if self.pending and (
            self.pending >= self.settings.batch_max
            or time.monotonic() - self.pending_since >= self.settings.batch_within
        ):
            await self.persist()

    async def persist(self) -> None:
        """Close the batch. Its writes go out in the background while the next batch is
        absorbed; a batch's writes start only after the previous batch's are done, which
        keeps the changelog in batch order (and holds consumption while the broker is away)."""
        async with self.lock:
            self.processor.events += self.pending
            self.pending = 0
            self.gc.tick()
            plan = self.processor.prepare()
            if plan is None:
                return
            if self._writer is not None:
                await self._writer
            self._writer = asyncio.create_task(self._write(plan), name="kpi-batch-writer")

    async def drain(self) -> None:
        """Everything absorbed is written and committed."""
        await self.persist()
        if self._writer is not None:
            await self._writer

    async def _write(self, plan: Plan) -> None:
        """Send a batch's writes; while the broker is away, wait and send them all again."""
        delay = 1.0
        while True:
            try:
                for phase in (plan.first, plan.second, plan.third):
                    await self._send_all(phase)
                await self.app.consumer.commit_offsets(plan.offsets)  # type: ignore[attr-defined]
                if self._broker_down_logged:
                    log.warning("broker reachable again; state writes resumed")
                    self._broker_down_logged = False
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker may come back
                if not self._broker_down_logged:
                    log.error(
                        "cannot write state to Kafka (%s); holding the batch and retrying. "
                        "Check that the broker at %s is up.",
                        exc,
                        self.settings.kafka_bootstrap_servers,
                    )
                    self._broker_down_logged = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _send_all(self, msgs: list[Msg]) -> None:
        if not msgs:
            return
        producer = self.app.producer
        futs = []
        for topic, key, value, partition, headers in msgs:
            futs.append(await producer.send(topic, key, value, partition, None, headers))
        await producer.flush()
        for fut in futs:
            await fut  # raises if a write failed: the whole phase is sent again

    async def on_revoked(self) -> None:
        """Before faust hands partitions away: everything applied is written; state dropped
        (it is rebuilt from the recovered table when partitions come back)."""
        await self.drain()
        self.processor.drop(list(self.processor.runtimes))

    # --- publishing -------------------------------------------------------------------------
    def build_snapshot(self) -> dict[str, Any]:
        return self.view.snapshot(self.clock())

    def is_publisher(self) -> bool:
        """One worker writes Redis (and alerts): the owner of partition 0. Every worker
        builds the same whole-center snapshot, so which one does not matter."""
        try:
            actives = self.app.assignor.assigned_actives()
        except Exception:  # noqa: BLE001 - not assigned yet
            return False
        return any(tp.topic == self.contact_topic and tp.partition == 0 for tp in actives)

    async def publish(self) -> None:
        snap = self.latest = self.build_snapshot()
        self.last_publish = time.time()
        if self.metrics is not None:
            p = self.processor
            self.metrics.update(snap)
            self.metrics.processor_totals(p.events_by_type, p.rejected_total, p.duplicates_total)
            for (queue, channel), waits in p.take_waits().items():
                self.metrics.observe_waits(queue, channel, waits)
            self.metrics.consumer_lag(self._lag())
            if p.newest_ts > self._published_newest:
                self._published_newest = p.newest_ts
                self.metrics.publish_latency(max(0.0, self.clock() / 1e6 - p.newest_ts / 1e6))
        if self.is_publisher():
            await self.redis.publish(snap)
            if self.alerts is not None:
                await self.alerts.evaluate(snap)

    def _lag(self) -> dict[tuple[str, int], int]:
        """Messages behind the log end, per input partition this worker owns. Reads the
        high-water marks the fetcher caches: asking the broker would go through faust's
        consumer thread and wait behind a fetch (about a second per publish)."""
        out: dict[tuple[str, int], int] = {}
        try:
            tps = [
                tp for tp in self.app.assignor.assigned_actives() if tp.topic in self.input_topics
            ]
            for tp in tps:
                end = self.app.consumer.highwater(tp)
                if end is None:
                    continue
                rt = self.processor.runtimes.get(tp.partition)
                done = rt.processed.get(self.processor.family_of[tp.topic], -1) if rt else -1
                out[(tp.topic, tp.partition)] = max(0, end - done - 1)
        except Exception:  # noqa: BLE001 - lag is best effort; never stop a publish for it
            return out
        return out

    def current_snapshot(self) -> dict[str, Any]:
        if self.latest is None or time.time() - self.last_publish > self.settings.publish_interval:
            return self.build_snapshot()
        return self.latest


ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def _asset(name: str) -> bytes:
    """A file of the wallboard (stream_app/outputs/web/), read per request so edits show at once."""
    if "/" in name or name.startswith("."):
        return b""
    try:
        return resources.files("stream_app.outputs").joinpath("web", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return b""


def create_app(settings: Settings | None = None) -> KpiApp:
    settings = settings or get_settings()
    app = KpiApp(
        settings.app_id,
        broker=broker_url(settings.kafka_bootstrap_servers),
        store="memory://",
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=0,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        broker_max_poll_records=settings.batch_max,
        consumer_auto_offset_reset="earliest",
        # A SIGKILLed worker's partitions move on after this, not after faust's 60 s.
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(1.0, settings.session_timeout / 4),
        stream_wait_empty=False,
        producer_linger_ms=5,
        logging_config=LOGGING_CONFIG,
        producer_max_batch_size=1 << 20,
        producer_max_request_size=4 << 20,
    )
    raw: Any = faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    table = app.Table(
        "kpi-state",
        partitions=settings.partitions,
        schema=raw,
        changelog_topic=app.topic(
            settings.topic(f"{settings.app_id}-kpi-state-changelog"),
            partitions=settings.partitions,
            key_serializer="raw",
            value_serializer="raw",
            compacting=True,
        ),
    )
    hub = app.kpi = KpiHub(app, settings, table)

    from agents import kpi as kpi_agents

    kpi_agents.register(app, hub, settings)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _on_revoked(_app: Any, revoked: Any, **kwargs: Any) -> None:
        await hub.on_revoked()

    @app.task
    async def _start_view() -> None:
        await hub.view.start()

    @app.timer(interval=settings.publish_interval)
    async def _publish() -> None:
        await hub.publish()

    @app.page("/api/snapshot")
    async def _snapshot(web: Any, request: Any) -> Any:
        snap = hub.current_snapshot()
        return web.bytes(orjson.dumps(snap), content_type="application/json")

    @app.page("/metrics")
    async def _metrics_page(web: Any, request: Any) -> Any:
        # Off the event loop: a large center's exposition takes tenths of a second.
        body = await asyncio.to_thread(generate_latest, hub.registry)
        return web.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    rules = load_rules(settings.rules_file or None, settings.window_names)
    hub.rules = rules
    hub.alerts = _alerts(hub)

    @app.page("/api/alerts")
    async def _alerts_page(web: Any, request: Any) -> Any:
        body = await hub.alerts.active_json() if hub.alerts is not None else []
        return web.bytes(orjson.dumps(body), content_type="application/json")

    @app.page("/api/rules")
    async def _rules(web: Any, request: Any) -> Any:
        return web.bytes(orjson.dumps(rules_json(rules)), content_type="application/json")

    @app.page("/")
    async def _index(web: Any, request: Any) -> Any:
        # (aiohttp refuses a charset in content_type=; headers= passes it through)
        return web.bytes(_asset("index.html"), headers={"Content-Type": ASSET_TYPES[".html"]})

    @app.page("/assets/{name}")
    async def _assets(web: Any, request: Any, name: str) -> Any:
        body = _asset(name)
        kind = ASSET_TYPES.get(Path(name).suffix)
        if not body or kind is None:
            return web.bytes(b"not found", status=404)
        return web.bytes(body, headers={"Content-Type": kind})

    @app.page("/api/status")
    async def _status(web: Any, request: Any) -> Any:
        body = {
            "view_ready": hub.view.ready.is_set(),
            "view_offsets": hub.view.offsets(),
            "owned_partitions": sorted(hub.processor.runtimes),
            "events": hub.processor.events,
            "last_publish": hub.last_publish,
        }
        return web.bytes(
            orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), content_type="application/json"
        )

    return app


app = create_app()
