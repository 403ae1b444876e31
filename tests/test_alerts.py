"""SLA alerts: the state machine on its own, the service with broken outputs, and a
real breach on a real worker (Kafka topic, Redis channel and hash, /metrics)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest

from stream_app.outputs.alerts import AlertBook, AlertService, alert_key
from stream_app.outputs.rules import Rule
from stream_app.tools.producer import produce_lines
from tables.snapshot import format_ts
from tests.alerthelp import Channel, FakeProducer, FakeRedis, contacts, topic_events
from tests.livehelp import Deployment

pytestmark = pytest.mark.stack

T0 = 1_800_000_000.0
SL = Rule.model_validate({
    "name": "sl", "kpi": "service_level", "window": "15m", "scope": "queue:*", "op": "<",
    "threshold": 0.80, "warn": 0.85, "clear": 0.82, "min_samples": 10, "for": "60s",
    "severity": "critical"})
WAIT = Rule.model_validate({
    "name": "wait", "kpi": "longest_wait_seconds", "window": "now", "scope": "queue:*",
    "op": ">", "threshold": 120, "for": "0s", "severity": "warning"})


def snap(t: float, *rows: dict[str, Any]) -> dict[str, Any]:
    return {"as_of": format_ts(int(t * 1e6)), "rows": list(rows), "rejected": {},
            "duplicates": 0}


def row(scope: str, sl: float | None, n: int = 20, window: str = "15m") -> dict[str, Any]:
    return {"scope": scope, "window": window, "service_level": sl, "contacts_answered": n,
            "contacts_abandoned": 0}


def states(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["state"], alert_key(e["rule"], e["scope"])) for e in events]


# --- the state machine -----------------------------------------------------------------------
def test_a_breach_fires_once_after_for_and_not_before() -> None:
    book = AlertBook([SL])
    assert book.step(snap(T0, row("queue:a", 0.5)), "x") == []
    assert book.step(snap(T0 + 59, row("queue:a", 0.5)), "x") == []
    fired = book.step(snap(T0 + 60, row("queue:a", 0.4)), "x")
    assert states(fired) == [("firing", "sl|queue:a")]
    ev = fired[0]
    assert ev["since"] == format_ts(int(T0 * 1e6))
    assert ev["as_of"] == format_ts(int((T0 + 60) * 1e6))
    assert (ev["value"], ev["threshold"], ev["op"], ev["severity"], ev["kpi"], ev["window"]) == (
        0.4, 0.80, "<", "critical", "service_level", "15m")
    for dt in range(61, 200, 7):  # still breaching: nothing more
        assert book.step(snap(T0 + dt, row("queue:a", 0.3)), "x") == []
    assert [a["current"] for a in book.active()] == [0.3]


def test_an_interrupted_breach_restarts_the_for_timer() -> None:
    book = AlertBook([SL])
    book.step(snap(T0, row("queue:a", 0.5)), "x")
    book.step(snap(T0 + 50, row("queue:a", 0.81)), "x")  # warn, not breach: timer reset
    assert book.step(snap(T0 + 70, row("queue:a", 0.5)), "x") == []
    assert book.step(snap(T0 + 129, row("queue:a", 0.5)), "x") == []
    assert states(book.step(snap(T0 + 130, row("queue:a", 0.5)), "x")) == [
        ("firing", "sl|queue:a")]


def test_hysteresis_no_flapping_between_threshold_and_clear() -> None:
    book = AlertBook([SL])
    book.step(snap(T0, row("queue:a", 0.5)), "x")
    assert len(book.step(snap(T0 + 60, row("queue:a", 0.5)), "x")) == 1
    t = T0 + 61
    for sl in (0.80, 0.79, 0.815, 0.80, 0.7999, 0.819):  # around the threshold, below clear
        assert book.step(snap(t, row("queue:a", sl)), "x") == [], sl
        t += 1
    cleared = book.step(snap(t, row("queue:a", 0.82)), "x")
    assert states(cleared) == [("resolved", "sl|queue:a")]
    assert cleared[0]["value"] == 0.82 and cleared[0]["reason"] == "cleared"
    assert cleared[0]["since"] == format_ts(int(T0 * 1e6))
    assert book.step(snap(t + 1, row("queue:a", 0.81)), "x") == []  # warn only
    assert book.active() == []


def test_min_samples() -> None:
    book = AlertBook([SL])
    for dt in range(0, 200, 10):  # 9 samples: never a breach
        assert book.step(snap(T0 + dt, row("queue:a", 0.1, n=9)), "x") == []
    book.step(snap(T0 + 200, row("queue:a", 0.1, n=10)), "x")
    assert len(book.step(snap(T0 + 260, row("queue:a", 0.1, n=10)), "x")) == 1
    # too few samples to say it cleared: stays firing
    assert book.step(snap(T0 + 261, row("queue:a", 0.95, n=9)), "x") == []
    assert states(book.step(snap(T0 + 262, row("queue:a", 0.95, n=10)), "x")) == [
        ("resolved", "sl|queue:a")]


def test_clears_once_when_the_row_disappears_or_has_no_value() -> None:
    book = AlertBook([SL, WAIT])
    live = {"scope": "queue:b", "window": "now", "longest_wait_seconds": 300}
    first = book.step(snap(T0, row("queue:a", 0.5), row("queue:b", 0.5), live), "x")
    assert states(first) == [("firing", "wait|queue:b")]  # for = 0s
    fired = book.step(snap(T0 + 60, row("queue:a", 0.5), row("queue:b", 0.5), live), "x")
    assert sorted(states(fired)) == [("firing", "sl|queue:a"), ("firing", "sl|queue:b")]
    gone = book.step(snap(T0 + 61, row("queue:b", None)), "x")
    assert sorted((e["state"], alert_key(e["rule"], e["scope"]), e["reason"]) for e in gone) == [
        ("resolved", "sl|queue:a", "gone"), ("resolved", "sl|queue:b", "no_data"),
        ("resolved", "wait|queue:b", "gone")]
    assert book.step(snap(T0 + 62, row("queue:b", None)), "x") == []
    assert book.firing == {}


def test_scopes_and_windows_follow_the_rule() -> None:
    book = AlertBook([SL])
    rows = [row("all", 0.1), row("channel:voice", 0.1), row("queue:a", 0.1, window="5m")]
    book.step(snap(T0, *rows), "x")
    assert book.step(snap(T0 + 600, *rows), "x") == []


def test_no_refire_after_a_failover_load() -> None:
    first = AlertBook([SL])
    first.step(snap(T0, row("queue:a", 0.5)), "x")
    fired = first.step(snap(T0 + 60, row("queue:a", 0.5)), "x")
    stored = {alert_key(e["rule"], e["scope"]): json.loads(json.dumps(e)) for e in fired}
    second = AlertBook([SL])  # the new publisher, loading the Redis hash
    second.load(stored)
    for dt in range(61, 300, 5):
        assert second.step(snap(T0 + dt, row("queue:a", 0.5)), "x") == []
    resolved = second.step(snap(T0 + 300, row("queue:a", 0.9)), "x")
    assert states(resolved) == [("resolved", "sl|queue:a")]
    assert resolved[0]["since"] == fired[0]["since"]


def test_an_alert_of_a_removed_rule_resolves() -> None:
    book = AlertBook([SL])
    book.load({"old|queue:a": {"state": "firing", "rule": "old", "scope": "queue:a",
                               "severity": "info"}})
    assert states(book.step(snap(T0, row("queue:a", 0.9)), "x")) == [
        ("resolved", "old|queue:a")]


# --- the service with outputs that fail ------------------------------------------------------
def service(producer: FakeProducer, r: FakeRedis, rules: list[Rule] | None = None,
            registry: CollectorRegistry | None = None) -> AlertService:
    return AlertService(rules or [SL], topic="alerts", prefix="p:", redis_url="redis://unused",
                        registry=registry, producer=lambda: producer,
                        clock_us=lambda: int(T0 * 1e6), gap_s=60.0, redis_client=r)


def test_service_writes_kafka_redis_and_gauge_once_each() -> None:
    async def run() -> None:
        prod, r, reg = FakeProducer(), FakeRedis(), CollectorRegistry()
        svc = service(prod, r, registry=reg)
        for dt in (0, 60, 61, 62):
            await svc.evaluate(snap(T0 + dt, row("queue:a", 0.5)))
            await svc.drain()
        assert [(k, e["state"]) for _, k, e in prod.sent] == [(b"sl|queue:a", "firing")]
        assert set(r.hashes["p:alerts:active"]) == {b"sl|queue:a"}
        assert [(c, m["state"]) for c, m in r.messages] == [("p:alerts", "firing")]
        text = generate_latest(reg).decode()
        assert 'kpi_sla_breach{rule="sl",scope="queue:a",severity="critical"} 1.0' in text
        assert [a["rule"] for a in await svc.active_json()] == ["sl"]
        await svc.evaluate(snap(T0 + 63, row("queue:a", 0.9)))
        await svc.drain()
        assert [e["state"] for _, _, e in prod.sent] == ["firing", "resolved"]
        assert r.hashes["p:alerts:active"] == {}
        assert "kpi_sla_breach{" not in generate_latest(reg).decode()
        assert await svc.active_json() == []

    asyncio.run(run())


def test_outages_are_retried_without_duplicates() -> None:
    async def run() -> None:
        prod, r = FakeProducer(), FakeRedis()
        svc = service(prod, r)
        await svc.evaluate(snap(T0, row("queue:a", 0.5)))
        prod.down = True
        await svc.evaluate(snap(T0 + 60, row("queue:a", 0.5)))  # fires; Kafka away
        await svc.drain()
        assert prod.sent == [] and r.hashes.get("p:alerts:active", {}) == {}
        await svc.evaluate(snap(T0 + 61, row("queue:a", 0.5)))  # still firing, not again
        await svc.drain()
        prod.down = False
        r.down = True
        svc._redis_retry_at = 0.0
        await svc.evaluate(snap(T0 + 62, row("queue:a", 0.5)))  # Kafka back, Redis away
        await svc.drain()
        assert [e["state"] for _, _, e in prod.sent] == ["firing"]
        r.down = False
        svc._redis_retry_at = 0.0
        await svc.evaluate(snap(T0 + 63, row("queue:a", 0.5)))
        await svc.drain()
        await svc.evaluate(snap(T0 + 64, row("queue:a", 0.5)))
        await svc.drain()
        assert [e["state"] for _, _, e in prod.sent] == ["firing"]
        assert [m["state"] for _, m in r.messages] == ["firing"]
        assert set(r.hashes["p:alerts:active"]) == {b"sl|queue:a"}
        assert svc.outbox == []

    asyncio.run(run())


def test_a_new_publisher_without_redis_waits_then_loads() -> None:
    async def run() -> None:
        prod, r = FakeProducer(), FakeRedis()
        fired = {"state": "firing", "rule": "sl", "kpi": "service_level", "window": "15m",
                 "scope": "queue:a", "severity": "critical", "since": "s"}
        r.hashes["p:alerts:active"] = {b"sl|queue:a": orjson.dumps(fired)}
        r.down = True
        svc = service(prod, r)
        await svc.evaluate(snap(T0, row("queue:a", 0.5)))
        assert not svc.loaded and svc.book.firing == {}
        r.down = False
        svc._redis_retry_at = 0.0
        for dt in range(1, 200, 20):
            await svc.evaluate(snap(T0 + dt, row("queue:a", 0.5)))
            await svc.drain()
        assert prod.sent == [] and r.messages == []
        assert svc.book.firing.keys() == {"sl|queue:a"}

    asyncio.run(run())


# --- a real breach on a real worker ------------------------------------------------------------
RULES = """
[[rule]]
name = "service-level"
kpi = "service_level"
window = "15m"
scope = "queue:*"
op = "<"
threshold = 0.80
warn = 0.85
clear = 0.82
min_samples = 10
for = "2s"
severity = "critical"
"""


@pytest.fixture
def alert_deployment(deployment: Deployment, tmp_path: Path) -> Deployment:
    """The conftest deployment, with the short-`for` rules file above."""
    (tmp_path / "rules.toml").write_text(RULES)
    deployment.env["KPI_RULES_FILE"] = str(tmp_path / "rules.toml")
    return deployment


def breach_gauge(dep: Deployment, port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return [line for line in text.splitlines() if line.startswith("kpi_sla_breach{")]


def answered(dep: Deployment, port: int) -> int:
    rows = dep.get(port, "/api/snapshot")["rows"]
    return next((r["contacts_answered"] for r in rows
                 if (r["scope"], r["window"]) == ("queue:qa", "15m")), 0)


def wait_for(what: str, check: Any, dep: Deployment, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if check():
            return
        assert dep.alive(), dep.logs()
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {deadline_s}s:\n{dep.logs()}")


def test_a_real_breach_fires_and_clears_once_everywhere(alert_deployment: Deployment,
                                                         redis_url: str) -> None:
    dep = alert_deployment
    prefix = dep.env["KPI_REDIS_PREFIX"]
    topic = f"{dep.prefix}kpi-sla-alerts"
    active_key = f"{prefix}alerts:active"
    key = "service-level|queue:qa"
    r = redis.Redis.from_url(redis_url)
    channel = Channel(redis_url, f"{prefix}alerts")
    channel.start()
    try:
        port = dep.start_worker()
        dep.wait_http(port)
        produce = lambda lines: asyncio.run(produce_lines(dep.bootstrap, dep.topics, lines))  # noqa: E731

        produce(contacts("qa", 0, 9, wait=120))  # service level 0, but 9 < min_samples
        wait_for("9 contacts", lambda: answered(dep, port) == 9, dep)
        time.sleep(4)  # twice the rule's `for`
        assert r.hlen(active_key) == 0 and channel.messages == []

        produce(contacts("qa", 9, 3, wait=120))  # 12 answered, all late: breach
        wait_for("the alert in Redis", lambda: r.hexists(active_key, key), dep)
        fired = json.loads(r.hget(active_key, key) or b"{}")
        assert fired["state"] == "firing" and fired["value"] == 0.0
        assert (fired["rule"], fired["kpi"], fired["window"], fired["scope"], fired["op"],
                fired["threshold"], fired["severity"]) == (
            "service-level", "service_level", "15m", "queue:qa", "<", 0.8, "critical")
        wait_for("the gauge", lambda: breach_gauge(dep, port) == [
            'kpi_sla_breach{rule="service-level",scope="queue:qa",severity="critical"} 1.0'], dep)
        assert [a["scope"] for a in dep.get(port, "/api/alerts")] == ["queue:qa"]

        produce(contacts("qa", 12, 50, wait=3))  # 50 / 62 = 0.806: past threshold, not clear
        wait_for("50 good contacts", lambda: answered(dep, port) == 62, dep)
        time.sleep(3)
        assert r.hexists(active_key, key), "cleared between threshold and clear"
        produce(contacts("qa", 62, 10, wait=1))  # 60 / 72 = 0.833 >= clear
        wait_for("the clear in Redis", lambda: r.hlen(active_key) == 0, dep)
        time.sleep(3)  # room for a duplicate to show up

        events = topic_events(dep.bootstrap, topic, dep.partitions)
        assert [(k, e["state"]) for k, e in events] == [
            (key.encode(), "firing"), (key.encode(), "resolved")]
        assert events[0][1] == fired and events[1][1]["since"] == fired["since"]
        assert events[1][1]["value"] == pytest.approx(60 / 72)
        assert [(m["state"], m["scope"]) for m in channel.messages] == [
            ("firing", "queue:qa"), ("resolved", "queue:qa")]
        assert breach_gauge(dep, port) == []
        assert dep.get(port, "/api/alerts") == []
    finally:
        channel.close()
        r.close()


def test_failover_neither_fires_again_nor_loses_the_clear(alert_deployment: Deployment,
                                                          redis_url: str) -> None:
    """The publisher dies with an alert firing: its successor takes the alert over from
    Redis, without a second firing event, and resolves it once."""
    dep = alert_deployment
    prefix = dep.env["KPI_REDIS_PREFIX"]
    key = "service-level|queue:qf"
    r = redis.Redis.from_url(redis_url)
    channel = Channel(redis_url, f"{prefix}alerts")
    channel.start()
    try:
        first = dep.start_worker()
        dep.wait_http(first)
        asyncio.run(produce_lines(dep.bootstrap, dep.topics, contacts("qf", 0, 12, wait=120)))
        wait_for("the alert in Redis", lambda: r.hexists(f"{prefix}alerts:active", key), dep)
        second = dep.start_worker()
        dep.wait_http(second)
        dep.kill(first)
        # the gauge shows once the survivor publishes and has loaded the hash
        wait_for("the survivor's gauge", lambda: breach_gauge(dep, second) == [
            'kpi_sla_breach{rule="service-level",scope="queue:qf",severity="critical"} 1.0'],
            dep, deadline_s=90)
        time.sleep(3)
        asyncio.run(produce_lines(dep.bootstrap, dep.topics, contacts("qf", 12, 60, wait=2)))
        wait_for("the clear in Redis", lambda: r.hlen(f"{prefix}alerts:active") == 0, dep)
        time.sleep(3)
        events = topic_events(dep.bootstrap, f"{dep.prefix}kpi-sla-alerts", dep.partitions)
        assert [(k, e["state"]) for k, e in events] == [
            (key.encode(), "firing"), (key.encode(), "resolved")]
        assert [m["state"] for m in channel.messages] == ["firing", "resolved"]
        assert breach_gauge(dep, second) == []
    finally:
        channel.close()
        r.close()
