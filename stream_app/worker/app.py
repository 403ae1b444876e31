"""The Faust app: topics, the state table, the batch hand-off, publishing, web routes.

``create_app`` builds everything from one :class:`Settings` and the topic limits the
start-up check read (:mod:`stream_app.kafka.preflight`), in one pass; ``kpi-stream
worker`` runs the result. The jobs live apart:
:mod:`~stream_app.worker.hub` (partitions and batches),
:mod:`~stream_app.worker.writer` (writes and retries),
:mod:`~stream_app.worker.publisher` (snapshot to metrics, Redis, alerts),
:mod:`~stream_app.worker.view` (the whole-center view),
:mod:`~stream_app.worker.web` (routes, auth),
:mod:`~stream_app.worker.health` (``/healthz``, ``/readyz``, unrecoverable errors).
On SIGTERM the last batch is written and committed before the worker leaves its group.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from stream_app.definitions import load_definitions
from stream_app.kafka.client import client_kwargs, describe, faust_broker_kwargs
from stream_app.kafka.preflight import HEADROOM, TopicLimits
from stream_app.kafka.worker_topics import changelog_topic, partials_topic
from stream_app.logs import LOGGING_CONFIG
from stream_app.outputs.alerts import AlertService
from stream_app.outputs.metrics import KpiMetrics
from stream_app.outputs.redis_sink import RedisSink
from stream_app.outputs.rules import load_rules
from stream_app.settings import Settings, get_settings
from stream_app.worker import web
from stream_app.worker.health import Health
from stream_app.worker.hub import KpiHub
from stream_app.worker.processor import LiveProcessor, wall_clock_us
from stream_app.worker.publisher import BEHIND, Publisher
from stream_app.worker.transport import Transport
from stream_app.worker.view import CenterView
from stream_app.worker.writer import BatchWriter
from tables import changelog
from tables.state import Config

#: the most records one fetch hands over (see ``broker_max_poll_records``)
FETCH_MAX = 10_000


class KpiApp(faust.App):
    """Faust app whose consumer hands our input batches straight to the processor."""

    kpi: KpiHub

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)


def create_app(settings: Settings | None = None, limits: TopicLimits | None = None) -> KpiApp:
    """The worker's app. ``limits``: what :func:`stream_app.kafka.preflight.preflight` read
    from the broker (default: the broker's default limit for every topic)."""
    settings = settings or get_settings()
    limits = limits or TopicLimits()
    cfg = Config.from_settings(settings, load_definitions(settings.rules_file or None, settings))
    rules = load_rules(settings.rules_file or None, settings.window_names)
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    changelog_name = changelog_topic(settings)
    # Redo-log and checkpoint chunks are cut below what the changelog topic accepts, and a
    # producer batch never holds more than the smallest topic accepts.
    changelog.set_value_limit(limits.value_budget(changelog_name))
    app = KpiApp(
        settings.app_id,
        **faust_broker_kwargs(settings),
        store="memory://",
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # The worker creates (or, KPI_CREATE_TOPICS=false, checks) every topic before faust
        # starts; faust's leader-election topic is not used (no on_leader tasks).
        topic_allow_declare=settings.create_topics,
        topic_disable_leader=True,
        table_standby_replicas=0,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        # faust's own /router and /table/... would answer from the table, unauthenticated
        web_router_enabled=False,
        web_tables_enabled=False,
        web_application_options={"middlewares": [web.auth_middleware(token)]},
        # A fetch is absorbed without yielding the event loop: at most FETCH_MAX records,
        # whatever the batch size (a batch of a worker catching up spans many fetches).
        broker_max_poll_records=min(settings.batch_max, FETCH_MAX),
        consumer_auto_offset_reset="earliest",
        # A SIGKILLed worker's partitions move on after this, not after faust's 60 s.
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(1.0, settings.session_timeout / 4),
        stream_wait_empty=False,
        producer_linger_ms=5,
        logging_config=LOGGING_CONFIG,
        producer_max_batch_size=max(16_384, min(1 << 20, limits.smallest - HEADROOM)),
        producer_max_request_size=4 << 20,
    )
    if not settings.create_topics:
        logging.getLogger("faust.transport.drivers.aiokafka").addFilter(_CreationDisabled())
    raw: Any = faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    table = app.Table(
        "kpi-state",
        partitions=settings.partitions,
        schema=raw,
        changelog_topic=app.topic(
            changelog_name,
            partitions=settings.partitions,
            key_serializer="raw",
            value_serializer="raw",
            compacting=True,
        ),
    )

    def clock() -> int:
        return wall_clock_us(settings.clock_offset_seconds)

    registry = CollectorRegistry(auto_describe=True)
    metrics = KpiMetrics(
        registry,
        agent_series=settings.metrics_agent_series,
        sl_threshold_seconds=settings.sl_threshold_seconds,
        max_queues=settings.max_queues,
    )
    partials = partials_topic(settings)
    health = Health(
        settings.health_stall_seconds,
        view_ready=lambda: view.ready.is_set(),
        lag=lambda: publisher.lag(),
        on_unrecoverable=metrics.unrecoverable_error,
    )
    processor = LiveProcessor(
        cfg,
        settings.input_topics,
        changelog_topic=table.changelog_topic.get_topic_name(),
        partials_topic=partials,
        dead_letter_topic=settings.dead_letter_topic,
        dead_letter_max_bytes=limits.value_budget(settings.dead_letter_topic),
    )
    security = settings.kafka_security
    writer = BatchWriter(
        app,
        describe(settings),
        health,
        principal=security.sasl_username or "<the worker's principal>",
        on_written=health.progressed,
    )
    hub = app.kpi = KpiHub(settings, table, processor, writer, clock)
    view = CenterView(cfg, client_kwargs(settings), partials, health)
    processor.on_partials = view.center.own.expect
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
        on_kafka_error=lambda exc: writer.unrecoverable(exc, settings.alerts_topic),
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
        loaded=health.loaded,
    )

    hub.behind = lambda: sum(publisher.lag().values()) > BEHIND

    from agents import kpi as kpi_agents

    kpi_agents.register(app, settings)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _on_revoked(_app: Any, revoked: Any, **kwargs: Any) -> None:
        await hub.on_revoked()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _on_assigned(_app: Any, assigned: Any, **kwargs: Any) -> None:
        health.assigned()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _on_stop(_app: Any, **kwargs: Any) -> None:
        # faust has stopped fetching; the consumer and the producer still run: write and
        # commit the last batch, deliver the alert transitions, then leave the group.
        await hub.stop(settings.stop_timeout)
        await alerts.flush()
        await view.stop()
        await redis.close()

    @app.task
    async def _start_view() -> None:
        hub.gc.install()  # the worker process's collector: full collections on schedule only
        await view.start()

    @app.timer(interval=settings.publish_interval)
    async def _publish() -> None:
        await publisher.publish()

    web.register_health(app, health, set(settings.input_topics.values()))
    web.register(app, publisher, view, processor, registry, alerts, rules)
    return app


class _CreationDisabled(logging.Filter):
    """With KPI_CREATE_TOPICS=false faust warns once per topic it would have declared; the
    start-up check has already made sure every one exists."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Topic creation disabled" not in record.getMessage()
