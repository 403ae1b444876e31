"""The Faust app: topics, the state table, the batch hand-off, publishing, web routes.

``create_app`` builds everything from one :class:`Settings`, in one pass; the
module-level ``app`` is what ``kpi-stream worker`` runs. The jobs live apart:
:mod:`~stream_app.worker.hub` (partitions and batches),
:mod:`~stream_app.worker.writer` (writes and retries),
:mod:`~stream_app.worker.publisher` (snapshot to metrics, Redis, alerts),
:mod:`~stream_app.worker.view` (the whole-center view),
:mod:`~stream_app.worker.web` (routes).
"""

from __future__ import annotations

from typing import Any

import faust
from prometheus_client import CollectorRegistry

from stream_app.definitions import load_definitions
from stream_app.kafka.client import client_kwargs
from stream_app.logs import LOGGING_CONFIG
from stream_app.outputs.alerts import AlertService
from stream_app.outputs.metrics import KpiMetrics
from stream_app.outputs.redis_sink import RedisSink
from stream_app.outputs.rules import load_rules
from stream_app.settings import Settings, get_settings
from stream_app.worker import web
from stream_app.worker.hub import KpiHub
from stream_app.worker.processor import LiveProcessor, wall_clock_us
from stream_app.worker.publisher import Publisher
from stream_app.worker.transport import Transport
from stream_app.worker.view import CenterView
from stream_app.worker.writer import BatchWriter
from tables.state import Config


class KpiApp(faust.App):
    """Faust app whose consumer hands our input batches straight to the processor."""

    kpi: KpiHub

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)


def broker_url(bootstrap: str) -> str:
    return "kafka://" + ";".join(h.strip() for h in bootstrap.split(",") if h.strip())


def create_app(settings: Settings | None = None) -> KpiApp:
    settings = settings or get_settings()
    cfg = Config.from_settings(settings, load_definitions(settings.rules_file or None, settings))
    rules = load_rules(settings.rules_file or None, settings.window_names)
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

    def clock() -> int:
        return wall_clock_us(settings.clock_offset_seconds)

    partials_topic = settings.topic(f"{settings.app_id}-partials")
    processor = LiveProcessor(
        cfg,
        settings.input_topics,
        changelog_topic=table.changelog_topic.get_topic_name(),
        partials_topic=partials_topic,
        dead_letter_topic=settings.dead_letter_topic,
    )
    hub = app.kpi = KpiHub(
        settings, table, processor, BatchWriter(app, settings.kafka_bootstrap_servers), clock
    )
    view = CenterView(cfg, client_kwargs(settings), partials_topic)
    registry = CollectorRegistry(auto_describe=True)
    metrics = KpiMetrics(
        registry,
        agent_series=settings.metrics_agent_series,
        sl_threshold_seconds=settings.sl_threshold_seconds,
    )
    alerts = AlertService(
        rules,
        topic=settings.alerts_topic,
        prefix=settings.redis_prefix,
        redis_url=settings.redis_url,
        registry=registry,
        producer=lambda: app.producer,
        clock_us=clock,
        gap_s=max(5.0, 4 * settings.publish_interval),
        ttl_s=max(settings.retention_seconds, 3600),
    )
    redis = RedisSink(
        settings.redis_url, settings.redis_prefix, max(settings.retention_seconds, 3600)
    )
    publisher = Publisher(
        app,
        view,
        processor,
        metrics,
        redis,
        alerts,
        clock,
        settings.publish_interval,
        settings.input_topics["contact"],
        set(settings.input_topics.values()),
    )

    from agents import kpi as kpi_agents

    kpi_agents.register(app, settings)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _on_revoked(_app: Any, revoked: Any, **kwargs: Any) -> None:
        await hub.on_revoked()

    @app.task
    async def _start_view() -> None:
        await view.start()

    @app.timer(interval=settings.publish_interval)
    async def _publish() -> None:
        await publisher.publish()

    web.register(app, publisher, view, processor, registry, alerts, rules)
    return app


app = create_app()
