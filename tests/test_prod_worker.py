"""The worker's production behaviour in isolation (no broker): errors no retry can fix,
health probes, publishing only once loaded, a bad partials record, the API token, secrets
kept out of logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web as aioweb
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import errors as kafka_errors
from prometheus_client import CollectorRegistry

from stream_app.outputs.alerts import AlertService
from stream_app.outputs.metrics import KpiMetrics
from stream_app.outputs.redis_sink import RedisSink, mask_url
from stream_app.worker import publisher as publisher_mod
from stream_app.worker import writer as writer_mod
from stream_app.worker.health import (
    MESSAGE_TOO_LARGE,
    TOPIC_AUTHORIZATION_FAILED,
    Health,
    classify,
)
from stream_app.worker.processor import Plan
from stream_app.worker.publisher import BEHIND, MAX_SHARE, Publisher
from stream_app.worker.view import CenterView
from stream_app.worker.web import auth_middleware
from stream_app.worker.writer import BatchWriter
from tables.state import Config


class FakeProducer:
    """Fails sends to ``topic`` with ``error`` for the first ``failures`` attempts."""

    def __init__(self, topic: str, error: Callable[[], Exception], failures: int) -> None:
        self.topic, self.error, self.failures = topic, error, failures
        self.sent: list[tuple[str, bytes | None]] = []

    async def send(self, topic: str, key: Any, value: Any, *args: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if topic == self.topic and self.failures > 0:
            self.failures -= 1
            fut.set_exception(self.error())
        else:
            self.sent.append((topic, value))
            fut.set_result(None)
        return fut

    async def flush(self) -> None:
        return None


class FakeConsumer:
    def __init__(self) -> None:
        self.commits: list[dict[tuple[str, int], int]] = []

    async def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> Exception | None:
        self.commits.append(offsets)
        return None


def _writer(producer: FakeProducer, health: Health, written: list[int]) -> BatchWriter:
    app = SimpleNamespace(producer=producer, consumer=FakeConsumer(), conf=SimpleNamespace(id="g"))
    return BatchWriter(app, "Kafka test", health, principal="kpi",
                       on_written=lambda: written.append(1))


def _health(counted: list[str]) -> Health:
    return Health(5.0, lambda: True, dict, on_unrecoverable=counted.append)


def _plan() -> Plan:
    dead = [("dlq", None, f"bad {i}".encode(), None, [("reason", b"schema")]) for i in range(3)]
    return Plan(first=[*dead, ("partials", b"0|S", b"{}", None, None)],
                second=[("changelog", b"A|0", b"{}", 0, None)],
                offsets={("contact-events", 0): 5})


def test_unrecoverable_write_is_reported_once_then_resumes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(writer_mod, "UNRECOVERABLE_RETRY_S", 0.01)
    counted: list[str] = []
    health, written = _health(counted), []
    producer = FakeProducer("partials", kafka_errors.TopicAuthorizationFailedError, 5)
    writer = _writer(producer, health, written)

    async def main() -> None:
        await writer.submit(_plan())
        for _ in range(200):
            if producer.failures == 0:
                break
            await asyncio.sleep(0.005)
        assert any(TOPIC_AUTHORIZATION_FAILED in p for p in health.readiness())
        await writer.wait()

    with caplog.at_level(logging.INFO, logger="kpi"):
        asyncio.run(main())
    assert counted == [TOPIC_AUTHORIZATION_FAILED]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "kafka-acls.sh" in errors[0].getMessage()
    assert "User:kpi" in errors[0].getMessage()
    assert health.active == {} and written == [1]
    # Each dead letter went out once, though the phase was retried five times.
    assert sorted(v for t, v in producer.sent if t == "dlq") == [b"bad 0", b"bad 1", b"bad 2"]
    assert writer.app.consumer.commits == [{("contact-events", 0): 5}]


def test_a_message_too_large_names_topic_size_and_the_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(writer_mod, "UNRECOVERABLE_RETRY_S", 0.01)
    counted: list[str] = []
    health = _health(counted)
    producer = FakeProducer("changelog", kafka_errors.MessageSizeTooLargeError, 2)
    with caplog.at_level(logging.ERROR, logger="kpi"):
        asyncio.run(_writer(producer, health, []).submit(_plan()))
        asyncio.run(asyncio.sleep(0))
    assert counted == [MESSAGE_TOO_LARGE]
    (line,) = [r.getMessage() for r in caplog.records]
    assert "topic changelog" in line and "max.message.bytes" in line and "5-byte" in line
    assert "(key A|0)" in line


def test_transient_errors_are_not_unrecoverable() -> None:
    assert classify(kafka_errors.KafkaConnectionError()) is None
    assert classify(kafka_errors.NotLeaderForPartitionError()) is None
    wrapped = RuntimeError("send failed")
    wrapped.__cause__ = kafka_errors.GroupAuthorizationFailedError()
    assert classify(wrapped) == "not_authorized"


def test_a_plan_survives_its_caller_being_cancelled() -> None:
    health, written = _health([]), []
    producer = FakeProducer("none", RuntimeError, 0)
    writer = _writer(producer, health, written)

    async def main() -> None:
        gate = asyncio.Event()
        first = Plan(offsets={("t", 0): 1})
        original = writer._write

        async def slow(plan: Plan) -> None:
            if plan is first:
                await gate.wait()
            await original(plan)

        writer._write = slow  # type: ignore[method-assign]
        await writer.submit(first)
        caller = asyncio.create_task(writer.submit(_plan()))  # waits for the first
        await asyncio.sleep(0.01)
        caller.cancel()  # as a rebalance cancels the fetcher
        gate.set()
        await writer.wait()

    asyncio.run(main())
    assert written == [1, 1]


def test_health_probes() -> None:
    now = [100.0]
    lag = {("contact-events", 0): 0}
    view = [False]
    health = Health(30.0, lambda: view[0], lambda: lag, clock=lambda: now[0])
    assert not health.loaded() and len(health.readiness()) == 2 and health.liveness() == []
    health.assigned()
    view[0] = True
    assert health.loaded() and health.readiness() == []
    now[0] += 60
    assert health.liveness() == []  # idle, but nothing waits
    lag[("contact-events", 0)] = 12
    assert "12 input messages wait" in health.liveness()[0]
    health.progressed()
    assert health.liveness() == []
    health.fetcher_stopped(RuntimeError("boom"))
    assert "fetcher died" in health.liveness()[0]
    health.fetcher_started()
    health.report("write:x", MESSAGE_TOO_LARGE, "do this")
    assert health.readiness() == [f"{MESSAGE_TOO_LARGE}: do this"] and health.loaded()


def test_a_bad_partials_record_is_skipped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    view = CenterView(Config(), {}, "partials")
    with caplog.at_level(logging.ERROR, logger="kpi"):
        view.apply(b"0|S", b"not json")
        view.apply(b"garbage-key", b"{}")
        view.apply(b"1|28000000", None)  # a tombstone of a minute: fine
    assert view.skipped == 2 and view.records == 1
    assert len(caplog.records) == 1
    assert view.snapshot(1_795_000_000_000_000)["rows"]


class _Recorder:
    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, snap: Any) -> bool:
        self.calls += 1
        return True

    async def evaluate(self, snap: Any) -> None:
        self.calls += 1


def test_nothing_is_published_before_the_worker_has_loaded() -> None:
    loaded = [False]
    registry = CollectorRegistry()
    metrics = KpiMetrics(registry)
    redis, alerts = _Recorder(), _Recorder()
    tp = SimpleNamespace(topic="contact-events", partition=0)
    app = SimpleNamespace(assignor=SimpleNamespace(assigned_actives=lambda: [tp]),
                          consumer=SimpleNamespace(highwater=lambda tp: None))
    view = CenterView(Config(), {}, "partials")
    processor = SimpleNamespace(events_by_type={}, rejected_total={}, duplicates_total=0,
                                take_waits=dict, newest_ts=0, stores={}, family_of={})
    pub = Publisher(app, view, processor, metrics, redis, alerts,  # type: ignore[arg-type]
                    lambda: 1_795_000_000_000_000, 1.0, "contact-events", {"contact-events"},
                    loaded=lambda: loaded[0])
    asyncio.run(pub.publish())
    assert redis.calls == alerts.calls == 0 and pub.latest is None
    assert registry.get_sample_value("kpi_contacts_offered",
                                     {"window": "5m", "scope_type": "all", "scope": "all"}) is None
    loaded[0] = True
    asyncio.run(pub.publish())
    assert redis.calls == alerts.calls == 1 and pub.latest is not None


def test_a_slow_publish_spaces_the_next_ones_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """While catching up, publishing takes at most MAX_SHARE of the worker: a publish that
    took 0.5 s is followed by the next one 2 s later, not at the next 1 s tick; once the
    lag is small, every tick publishes again."""
    now = [1000.0]
    lag = [BEHIND + 1]
    monkeypatch.setattr(publisher_mod.time, "time", lambda: now[0])

    class Slow(_Recorder):
        async def publish(self, snap: Any) -> bool:
            now[0] += 0.5  # Redis took half a second
            return await super().publish(snap)

    redis, alerts = Slow(), _Recorder()
    tp = SimpleNamespace(topic="contact-events", partition=0)
    app = SimpleNamespace(assignor=SimpleNamespace(assigned_actives=lambda: [tp]),
                          consumer=SimpleNamespace(highwater=lambda tp: lag[0]))
    processor = SimpleNamespace(events_by_type={}, rejected_total={}, duplicates_total=0,
                                take_waits=dict, newest_ts=0, stores={},
                                family_of={"contact-events": "contact"})
    pub = Publisher(app, CenterView(Config(), {}, "partials"), processor,  # type: ignore[arg-type]
                    KpiMetrics(CollectorRegistry()), redis, alerts,  # type: ignore[arg-type]
                    lambda: 1_795_000_000_000_000, 1.0, "contact-events", {"contact-events"})
    published = []
    for tick in range(10):  # the timer: one call a second
        now[0] = 1000.0 + tick
        if tick == 6:
            lag[0] = 0  # caught up
        before = redis.calls
        asyncio.run(pub.publish())
        if redis.calls > before:
            published.append(tick)
    assert published == [0, 2, 4, 6, 7, 8, 9]
    assert pub.interval() == pytest.approx(0.5 / MAX_SHARE - 0.5)
    assert pub.interval(behind=False) == 1.0


def test_secrets_are_masked_in_urls_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    assert mask_url("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert mask_url("redis://:s3cret@host") == "redis://:***@host"
    assert mask_url("rediss://host:6380/1") == "rediss://host:6380/1"
    url = "redis://kpi:s3cret@127.0.0.1:1/0"  # nothing listens on port 1
    sink = RedisSink(url, "p:", 60)
    alerts = AlertService([], topic="a", prefix="p:", redis_url=url, registry=None,
                          producer=lambda: None, clock_us=lambda: 1_795_000_000_000_000)
    with caplog.at_level(logging.ERROR):
        assert not asyncio.run(sink.publish({"rows": [], "as_of": "x"}))
        asyncio.run(alerts.evaluate({"rows": [], "as_of": "2026-11-28T00:00:00Z"}))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text.count("redis://kpi:***@127.0.0.1:1/0") == 2 and "s3cret" not in text


async def _statuses(token: str, requests: list[tuple[str, dict[str, str]]]) -> list[int]:
    async def ok(request: aioweb.Request) -> aioweb.Response:
        return aioweb.Response(text="ok")

    app = aioweb.Application(middlewares=[auth_middleware(token)])
    for path in ("/", "/agents", "/assets/auth.js", "/api/snapshot", "/metrics", "/readyz"):
        app.router.add_get(path, ok)
    async with TestClient(TestServer(app)) as client:
        return [(await client.get(path, headers=h)).status for path, h in requests]


def test_api_token_guards_the_api_and_metrics_only() -> None:
    bearer = {"Authorization": "Bearer tok"}
    requests = [
        ("/api/snapshot", {}), ("/api/snapshot", {"Authorization": "Bearer nope"}),
        ("/api/snapshot", bearer), ("/api/snapshot", {"Authorization": "bearer tok"}),
        ("/metrics", {}), ("/metrics", bearer),
        ("/", {}), ("/agents", {}), ("/assets/auth.js", {}), ("/readyz", {}),
    ]
    got = asyncio.run(_statuses("tok", requests))
    assert got == [401, 401, 200, 200, 401, 200, 200, 200, 200, 200]
    assert asyncio.run(_statuses("", requests)) == [200] * len(requests)


def test_stopping_delivers_the_alert_transitions_still_held() -> None:
    from tests.alerthelp import FakeProducer as AlertProducer
    from tests.alerthelp import FakeRedis
    from tests.test_alerts import T0, row, service, snap

    async def run() -> None:
        prod, r = AlertProducer(), FakeRedis()
        svc = service(prod, r)
        await svc.evaluate(snap(T0, row("queue:a", 0.5)))
        prod.down = True
        await svc.evaluate(snap(T0 + 60, row("queue:a", 0.5)))  # fires while Kafka is away
        await svc.drain()
        assert prod.sent == [] and svc.outbox
        prod.down = False  # back just as the worker stops: no next publish will come
        await svc.flush()
        assert [e["state"] for _, _, e in prod.sent] == ["firing"] and not svc.outbox
        assert set(r.hashes["p:alerts:active"]) == {b"sl|queue:a"}

    asyncio.run(run())


def test_alert_events_the_broker_refuses_are_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.alerthelp import FakeProducer as AlertProducer
    from tests.alerthelp import FakeRedis
    from tests.test_alerts import SL, T0, row, snap

    class Denied(AlertProducer):
        denied = True

        async def send(self, topic: str, key: bytes, value: bytes, *rest: Any) -> Any:
            if not self.denied:
                return await super().send(topic, key, value, *rest)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            fut.set_exception(kafka_errors.TopicAuthorizationFailedError())
            return fut

    counted: list[str] = []
    health = _health(counted)
    writer = _writer(FakeProducer("none", RuntimeError, 0), health, [])
    prod = Denied()
    svc = AlertService([SL], topic="alerts", prefix="p:", redis_url="redis://unused",
                       registry=None, producer=lambda: prod, clock_us=lambda: int(T0 * 1e6),
                       gap_s=60.0, redis_client=FakeRedis(),
                       on_kafka_error=lambda exc: writer.unrecoverable(exc, "alerts"))

    async def run() -> None:
        for dt in (0, 60, 61, 62):
            await svc.evaluate(snap(T0 + dt, row("queue:a", 0.5)))
            await svc.drain()
        assert counted == [TOPIC_AUTHORIZATION_FAILED]
        assert any("topic alerts" in p for p in health.readiness())
        prod.denied = False
        await svc.evaluate(snap(T0 + 63, row("queue:a", 0.5)))
        await svc.drain()
        assert [e["state"] for _, _, e in prod.sent] == ["firing"] and health.active == {}

    with caplog.at_level(logging.ERROR):
        asyncio.run(run())
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
