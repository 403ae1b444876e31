"""SLA alerts: the rules file's breaches, raised and cleared once each, on one worker.

Only the publishing worker (owner of input partition 0) evaluates, once per
publish. Per (rule, scope) pair, where scope is each snapshot row that matches
the rule's window and scope glob:

* a row whose ``Rule.status`` is ``breach`` (``min_samples`` respected) starts
  a pending breach; once it has held for the rule's ``for``, measured with the
  snapshots' ``as_of``, the alert FIRES. Any other verdict (ok, warn, too few
  samples) resets the pending timer, so a single bad snapshot fires nothing.
* a firing alert RESOLVES when ``Rule.cleared`` says the KPI is back past
  ``clear`` (hysteresis: between threshold and clear it stays firing, so a KPI
  hovering at the threshold does not flap), when the KPI has no value any more
  (row gone from the snapshot, or null: nothing measured in the window), or
  when its rule is no longer in the rules file.

Each transition is written, in this order, as one JSON event to the Kafka topic
``settings.alerts_topic`` (key ``rule|scope``), then to Redis: the hash
``<prefix>alerts:active`` (field ``rule|scope``, value the firing event; the
field is deleted on resolve) and the channel ``<prefix>alerts``. The gauge
``kpi_sla_breach{rule,scope,severity}`` is 1 while an alert fires on this
worker's watch; the series goes away on resolve.

The Redis hash is the shared memory between workers: it is read before every
evaluation, so a worker that becomes the publisher (failover, rebalance) does
not fire again what another worker already fired, nor resolve what another
resolved. If Redis cannot be read and this worker has not been the publisher
continuously, nothing is evaluated until it can (firing blind could repeat
alerts). Transitions wait in an outbox and are delivered in the background:
while Kafka or Redis is away they are retried verbatim at later publishes, and
never decided twice. A worker that dies between the Kafka write and the Redis
write makes the next publisher fire that alert again: delivery is at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from stream_app.outputs.metrics import parse_as_of
from stream_app.outputs.redis_sink import mask_url
from stream_app.outputs.rules import Rule
from tables.snapshot import format_ts

log = logging.getLogger("kpi.alerts")

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
#: After a failed Redis call, leave Redis alone this long: each attempt at a dead
#: server costs the connect timeout, and it would delay every publish.
REDIS_BACKOFF_S = 2.0


def alert_key(rule: str, scope: str) -> str:
    return f"{rule}|{scope}"


class AlertBook:
    """The state machine alone (no I/O): which alerts fire, which are pending."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        #: key -> the firing event (what the Redis hash holds)
        self.firing: dict[str, dict[str, Any]] = {}
        #: key -> (as_of seconds, as_of text) of the first snapshot of a breach not fired yet
        self.pending: dict[str, tuple[float, str]] = {}
        #: key -> the KPI's value at the last evaluation, for firing alerts
        self.current: dict[str, float] = {}

    def load(self, active: Mapping[str, dict[str, Any]]) -> None:
        """Take the alerts that are firing now (from Redis) as the truth."""
        self.firing = dict(active)
        for key in self.firing:
            self.pending.pop(key, None)
        self.current = {k: v for k, v in self.current.items() if k in self.firing}

    def step(self, snapshot: Mapping[str, Any], at: str) -> list[dict[str, Any]]:
        """Evaluate one snapshot; returns the transitions (firing / resolved events)."""
        as_of = str(snapshot["as_of"])
        now = parse_as_of(as_of)
        by_window: dict[str, list[dict[str, Any]]] = {}
        for row in snapshot.get("rows", ()):
            by_window.setdefault(row["window"], []).append(row)
        seen: dict[str, tuple[Rule, dict[str, Any]]] = {}
        for rule in self.rules:
            for row in by_window.get(rule.window, ()):
                if rule.applies(row["scope"], row["window"]):
                    seen[alert_key(rule.name, row["scope"])] = (rule, row)

        out: list[dict[str, Any]] = []
        for key, (rule, row) in seen.items():
            value = row.get(rule.kpi)
            if key in self.firing:
                if value is None:
                    out.append(self._resolve(key, None, "no_data", at, as_of))
                elif rule.cleared(row):
                    out.append(self._resolve(key, value, "cleared", at, as_of))
                else:
                    self.current[key] = value
                continue
            if value is None or rule.status(row) != "breach":
                self.pending.pop(key, None)
                continue
            since_s, since = self.pending.setdefault(key, (now, as_of))
            if now - since_s >= rule.for_seconds:
                del self.pending[key]
                event = {
                    "state": "firing", "rule": rule.name, "kpi": rule.kpi,
                    "window": rule.window, "scope": row["scope"], "value": value,
                    "threshold": rule.threshold, "op": rule.op, "severity": rule.severity,
                    "since": since, "at": at, "as_of": as_of,
                }
                self.firing[key] = event
                self.current[key] = value
                out.append(event)
        for key in [k for k in self.firing if k not in seen]:
            out.append(self._resolve(key, None, "gone", at, as_of))
        for key in [k for k in self.pending if k not in seen]:
            del self.pending[key]
        return out

    def _resolve(self, key: str, value: float | None, reason: str, at: str,
                 as_of: str) -> dict[str, Any]:
        fired = self.firing.pop(key)
        self.current.pop(key, None)
        return {**fired, "state": "resolved", "value": value, "at": at, "as_of": as_of,
                "reason": reason}

    def active(self) -> list[dict[str, Any]]:
        """Firing alerts, most severe and oldest first, with the KPI's latest value."""
        items = [{**ev, "current": self.current.get(k, ev.get("value"))}
                 for k, ev in self.firing.items()]
        return sort_active(items)


def sort_active(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda a: (SEVERITY_RANK.get(str(a.get("severity")), 9),
                                        str(a.get("since")), str(a.get("rule")),
                                        str(a.get("scope"))))


@dataclass
class Transition:
    key: str
    event: dict[str, Any]
    kafka_done: bool = False
    redis_done: bool = False


class _BreachCollector(Collector):
    """``kpi_sla_breach``: built at scrape time from the alerts firing on this worker's
    watch. A worker that stopped being the publisher exports none, so a scrape of
    the old publisher never shows an alert the new one has resolved."""

    def __init__(self, service: AlertService) -> None:
        self.service = service

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("kpi_sla_breach", "1 while an SLA alert of the rules file "
                                 "fires (publishing worker only)",
                                 labels=("rule", "scope", "severity"))

    def collect(self) -> Iterator[Metric]:
        fam = self._family()
        if self.service.is_current():
            for ev in list(self.service.book.firing.values()):
                fam.add_metric((str(ev["rule"]), str(ev["scope"]), str(ev["severity"])), 1.0)
        yield fam


class AlertService:
    """The book plus its outputs: Kafka, Redis, the gauge, ``/api/alerts``."""

    def __init__(
        self, rules: list[Rule], *, topic: str, prefix: str, redis_url: str,
        registry: CollectorRegistry | None, producer: Callable[[], Any],
        clock_us: Callable[[], int], gap_s: float = 5.0, ttl_s: int = 86400,
        redis_client: Any = None,
        on_kafka_error: Callable[[BaseException | None], bool] = lambda exc: False,
    ) -> None:
        self.book = AlertBook(rules)
        self.topic = topic
        self.active_key = f"{prefix}alerts:active"
        self.channel = f"{prefix}alerts"
        self.redis_url = redis_url
        self.producer = producer
        self.clock_us = clock_us
        #: Longer than this between two evaluations means another worker may have
        #: published meanwhile: what we remember is no longer to be trusted.
        self.gap_s = gap_s
        self.ttl_s = ttl_s
        self.outbox: list[Transition] = []
        self.loaded = False
        self.last_eval = -math.inf
        self._redis: Any = redis_client
        self._own_client = redis_client is None
        #: told of each failed (and, with None, each successful) Kafka delivery; True when it
        #: reported the error itself (one no retry can fix: the worker's health says what to do)
        self.on_kafka_error = on_kafka_error
        self._redis_lock = asyncio.Lock()
        self._redis_retry_at = 0.0
        self._delivery: asyncio.Task[None] | None = None
        self._down: set[str] = set()
        if registry is not None:
            registry.register(_BreachCollector(self))

    # --- evaluation -------------------------------------------------------------------
    def is_current(self) -> bool:
        """True while this worker is evaluating (it is the publisher)."""
        return time.monotonic() - self.last_eval <= self.gap_s

    async def evaluate(self, snapshot: Mapping[str, Any]) -> None:
        """One publish of the publishing worker. Never raises."""
        try:
            if not self.is_current():
                self.loaded = False
            self.last_eval = time.monotonic()
            await self._refresh()
            if not self.loaded:
                return
            at = format_ts(self.clock_us() // 1000 * 1000)
            for event in self.book.step(snapshot, at):
                key = alert_key(event["rule"], event["scope"])
                log.warning("SLA alert %s: %s %s=%s (%s %s)", event["state"], key, event["kpi"],
                            event["value"], event["op"], event["threshold"])
                self.outbox.append(Transition(key, event))
            if self.outbox and (self._delivery is None or self._delivery.done()):
                self._delivery = asyncio.create_task(self._deliver(), name="kpi-alert-delivery")
        except Exception:  # noqa: BLE001 - alerting must never stop the publishing
            log.exception("SLA alert evaluation failed; retrying at the next publish")

    async def drain(self) -> None:
        """Wait for the delivery under way (tests, shutdown)."""
        if self._delivery is not None:
            await self._delivery

    async def flush(self) -> None:
        """Shutdown: deliver the decided transitions once more. Never raises."""
        try:
            await self.drain()
            if self.outbox:
                self._redis_retry_at = 0.0
                await self._deliver()
        except Exception:  # noqa: BLE001 - a stop must go on
            log.exception("SLA alert transitions could not be delivered while stopping")
        if self.outbox:
            log.error(
                "stopping with %d SLA alert transition(s) undelivered: the next publishing "
                "worker decides them again", len(self.outbox),
            )
        if self._own_client and self._redis is not None:
            client, self._redis = self._redis, None
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    # --- Redis ------------------------------------------------------------------------
    def _client(self) -> Any:
        if self._redis is None:
            self._redis = aioredis.from_url(self.redis_url, socket_timeout=2,
                                            socket_connect_timeout=2, health_check_interval=10)
        return self._redis

    async def _redis_failed(self, exc: BaseException) -> None:
        self._redis_retry_at = time.monotonic() + REDIS_BACKOFF_S
        self._went_down("redis", f"Redis at {mask_url(self.redis_url)} unreachable ({exc}); "
                        "SLA alerts are retried at the next publish")
        if self._own_client and self._redis is not None:
            client, self._redis = self._redis, None
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def _refresh(self) -> None:
        """Read the firing alerts from Redis; our decisions not yet written there win."""
        if time.monotonic() < self._redis_retry_at:
            return
        async with self._redis_lock:
            try:
                pipe = self._client().pipeline(transaction=False)
                pipe.hgetall(self.active_key)
                pipe.expire(self.active_key, self.ttl_s)
                raw, _ = await pipe.execute()
            except (RedisError, OSError) as exc:
                await self._redis_failed(exc)
                return
            self._came_back("redis", "Redis reachable again: SLA alerts resumed")
            active: dict[str, dict[str, Any]] = {}
            for k, v in raw.items():
                try:
                    active[k.decode() if isinstance(k, bytes) else str(k)] = orjson.loads(v)
                except orjson.JSONDecodeError:
                    log.error("ignoring a malformed entry %r of %s", k, self.active_key)
            for t in self.outbox:
                if not t.redis_done:
                    if t.event["state"] == "firing":
                        active[t.key] = t.event
                    else:
                        active.pop(t.key, None)
            self.book.load(active)
            self.loaded = True

    # --- delivery ---------------------------------------------------------------------
    async def _deliver(self) -> None:
        """Kafka first, in decision order; then Redis for what Kafka has. Stops at the
        first failure; the next evaluation starts it again."""
        for t in list(self.outbox):
            if t.kafka_done:
                continue
            try:
                await self._send_kafka(t)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker may come back
                if not self.on_kafka_error(exc):
                    self._went_down("kafka", f"cannot send SLA alert events to {self.topic} "
                                    f"({exc}); retrying at the next publish")
                break
            t.kafka_done = True
            self.on_kafka_error(None)
            self._came_back("kafka", "SLA alert events reach Kafka again")
        if time.monotonic() >= self._redis_retry_at:
            async with self._redis_lock:
                for t in list(self.outbox):
                    if not t.kafka_done:
                        break  # keep Redis in Kafka's order
                    if t.redis_done:
                        continue
                    try:
                        await self._write_redis(t)
                    except (RedisError, OSError) as exc:
                        await self._redis_failed(exc)
                        break
                    t.redis_done = True
        self.outbox = [t for t in self.outbox if not (t.kafka_done and t.redis_done)]

    async def _send_kafka(self, t: Transition) -> None:
        producer = self.producer()
        fut = await producer.send(self.topic, t.key.encode(), orjson.dumps(t.event),
                                  None, None, None)
        await producer.flush()
        await fut

    async def _write_redis(self, t: Transition) -> None:
        body = orjson.dumps(t.event)
        pipe = self._client().pipeline(transaction=True)
        if t.event["state"] == "firing":
            pipe.hset(self.active_key, t.key, body)
            pipe.expire(self.active_key, self.ttl_s)
        else:
            pipe.hdel(self.active_key, t.key)
        pipe.publish(self.channel, body)
        await pipe.execute()

    def _went_down(self, what: str, message: str) -> None:
        if what not in self._down:
            self._down.add(what)
            log.error(message)

    def _came_back(self, what: str, message: str) -> None:
        if what in self._down:
            self._down.discard(what)
            log.warning(message)

    # --- reading ----------------------------------------------------------------------
    async def active_json(self) -> list[dict[str, Any]]:
        """The firing alerts: this worker's own while it publishes, else Redis's."""
        if self.is_current() and self.loaded:
            return self.book.active()
        if time.monotonic() >= self._redis_retry_at:
            try:
                raw = await self._client().hgetall(self.active_key)
                items = []
                for v in raw.values():
                    try:
                        items.append(orjson.loads(v))
                    except orjson.JSONDecodeError:
                        continue
                return sort_active(items)
            except (RedisError, OSError):
                # (the client is left open: the delivery may be using it)
                self._redis_retry_at = time.monotonic() + REDIS_BACKOFF_S
        return []


def make_alerts(hub: Any) -> AlertService:
    """The alert service of a :class:`stream_app.worker.app.KpiHub`."""
    s = hub.settings
    return AlertService(
        hub.rules, topic=s.alerts_topic, prefix=s.redis_prefix, redis_url=s.redis_url,
        registry=hub.registry, producer=lambda: hub.app.producer, clock_us=hub.clock,
        gap_s=max(5.0, 4 * s.publish_interval), ttl_s=max(s.retention_seconds, 3600),
    )
