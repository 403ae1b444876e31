"""``kpi-stream gateway``: one HTTP service for every vendor's webhooks.

``POST /webhooks/<source>`` (zendesk, amazon-connect, twilio-taskrouter, chatwoot,
delighted), ``GET /metrics`` (its own Prometheus registry), ``GET /healthz``.

Delivery guarantee - at least once, end to end, for vendors that retry: a request is
answered 2xx only once Kafka acknowledged its events (``acks=all``). Waiting is bounded by
``--ack-timeout`` (default 3 s, under every vendor's timeout); past it, or if Kafka
refuses, the answer is 503 so the vendor retries. The retry gets the *same* events (the
pipeline remembers what each body produced), so whatever did reach Kafka the first time
is a duplicate the engine drops. Vendors that never retry (Chatwoot, Twilio event
callbacks) lose a webhook only if Kafka is down for longer than the timeout *and* the
gateway stops before its producer delivered. Sends are cheap to wait for: the producer
batches concurrent requests (5 ms linger) into one round trip.

Every request is authenticated: the vendor's signature when a secret is configured for
it, else (or as well) a bearer token - ``Authorization: Bearer …`` or ``?token=…`` for
vendors that cannot set headers. A bad signature is 401 and counted; a body over 1 MB
is 413; a payload that cannot be mapped is 202 and goes to the dead-letter topic with
``reason: unmapped``, ``source`` and a ``detail`` header - never dropped silently.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from connectors.base import ConnectorError, Outcome, parse_time
from connectors.chatwoot import verify_chatwoot
from connectors.mapping import Options, Pipeline
from connectors.produce import KafkaSink
from connectors.sources import MAPPERS, build_mappers, canonical
from connectors.state import SqliteState, State
from connectors.twilio import verify_twilio
from connectors.zendesk import verify_zendesk
from stream_app.settings import Settings

log = logging.getLogger("kpi.connectors.gateway")
MAX_BODY = 1 << 20
STATE_COMMIT_EVERY = 0.05  # seconds between group commits of the mapping state
#: signature secrets a source can have (env KPI_CONNECTORS_<NAME>)
SECRET_SOURCES = ("zendesk", "twilio-taskrouter", "chatwoot")


@dataclass
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 8787
    token: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    public_url: str | None = None  # how vendors reach us (Twilio signs the full URL)
    state_dir: Path = Path(".run/connectors")
    options: Options = field(default_factory=Options)
    ack_timeout: float = 3.0
    signature_tolerance: float = 300.0  # seconds a signed timestamp may be off

    def check(self) -> None:
        if not self.token and not self.secrets:
            raise ConnectorError(
                "the gateway would accept anyone: set KPI_CONNECTORS_TOKEN (a bearer token) "
                "and/or a vendor secret (KPI_CONNECTORS_ZENDESK_SECRET, "
                "KPI_CONNECTORS_TWILIO_AUTH_TOKEN, KPI_CONNECTORS_CHATWOOT_SECRET)")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("kpi_connectors_requests", "Webhook requests by outcome",
                                ["source", "outcome"], registry=self.registry)
        self.events = Counter("kpi_connectors_events_produced",
                              "Contract events produced to Kafka", ["source", "type"],
                              registry=self.registry)
        self.dead = Counter("kpi_connectors_dead_letters", "Payloads sent to the dead-letter "
                            "topic", ["source", "reason"], registry=self.registry)


class Gateway:
    def __init__(self, config: GatewayConfig, settings: Settings,
                 state: State | None = None, sink: KafkaSink | None = None) -> None:
        config.check()
        self.config = config
        self.state = state or SqliteState(config.state_dir)
        self.pipeline = Pipeline(build_mappers(config.options, self.state), self.state)
        self.sink = sink or KafkaSink(settings)
        self.metrics = Metrics()
        self._order = asyncio.Lock()  # map + enqueue in arrival order, wait outside
        self.app = web.Application(client_max_size=MAX_BODY)
        self.app.router.add_post("/webhooks/{source}", self.webhook)
        self.app.router.add_get("/metrics", self.serve_metrics)
        self.app.router.add_get("/healthz", self.health)
        self._runner: web.AppRunner | None = None
        self._committer: asyncio.Task[None] | None = None
        self._warned_at, self._unavailable = 0.0, 0
        self.port = config.port

    async def start(self) -> None:
        await self.sink.start()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        self._committer = asyncio.create_task(self._commit_state())
        log.info("gateway listening on http://%s:%s", self.config.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._committer is not None:
            self._committer.cancel()
        await self.sink.stop()
        self.state.close()

    async def _commit_state(self) -> None:
        while True:
            await asyncio.sleep(STATE_COMMIT_EVERY)
            self.state.flush()

    # --- handlers --------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def serve_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def webhook(self, request: web.Request) -> web.Response:
        try:
            source = canonical(request.match_info["source"])
        except ConnectorError:
            source = ""
        if source not in MAPPERS:
            return self._answer("unknown", "unknown_source", 404)
        if (request.content_length or 0) > MAX_BODY:
            return self._answer(source, "too_large", 413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._answer(source, "too_large", 413)
        verdict = self._authenticate(source, request, body)
        if verdict is not None:
            return self._answer(source, verdict, 401)
        try:
            # bounded as a whole: a full producer buffer (Kafka down) must not hold the
            # vendor past its timeout; state changed before a timeout is safe, the
            # redelivery memory gives the retry the same events
            async with asyncio.timeout(self.config.ack_timeout):
                async with self._order:
                    futures, outcome_name, count, dead, produced = await self._map(source, body)
                if futures:
                    await asyncio.gather(*futures)
        except (TimeoutError, KafkaError) as exc:
            self._unavailable += 1
            if time.monotonic() - self._warned_at > 10:  # an outage: one line per 10 s
                self._warned_at = time.monotonic()
                log.warning("Kafka did not acknowledge %s webhook(s) in time (last: %s, %r); "
                            "answered 503 so vendors retry - check the brokers",
                            self._unavailable, source, exc)
                self._unavailable = 0
            return self._answer(source, "unavailable", 503, retry=True)
        for kind in produced:
            self.metrics.events.labels(source, kind).inc()
        if dead is not None:
            self.metrics.dead.labels(source, "unmapped").inc()
            return self._answer(source, outcome_name, 202, {"dead_letter": dead})
        status = 204 if source == "twilio-taskrouter" else 200
        return self._answer(source, outcome_name, status, {"events": count})

    async def _map(self, source: str, body: bytes) -> tuple[
            list[asyncio.Future[Any]], str, int, str | None, list[str]]:
        """Map one body and enqueue what it gives: (delivery futures, outcome, events,
        dead-letter detail, event types). Called under the ordering lock."""
        payload = self.pipeline.mappers[source].parse(body)
        if payload is None:
            future = await self.sink.enqueue_dead_letter(body, source, "unmapped",
                                                         "invalid_payload")
            return [future], "dead_letter", 0, "invalid_payload", []
        try:
            outcome, redelivered = self.pipeline.process(source, payload, time.time())
        except Exception as exc:  # noqa: BLE001 - a mapping bug is a dead letter, not a 500
            log.exception("mapping a %s payload failed; dead-lettered", source)
            outcome, redelivered = Outcome.fail(f"mapping_error:{type(exc).__name__}"), False
        if outcome.unmapped:
            future = await self.sink.enqueue_dead_letter(body, source, "unmapped",
                                                         outcome.unmapped)
            return [future], "dead_letter", 0, outcome.unmapped, []
        futures = await self.sink.enqueue(outcome.events)
        count = len(outcome.events)
        name = "redelivered" if redelivered else "ok" if count else "ignored"
        return futures, name, count, None, [ev["type"] for ev in outcome.events]

    def _answer(self, source: str, outcome: str, status: int, body: dict[str, Any] | None = None,
                retry: bool = False) -> web.Response:
        self.metrics.requests.labels(source, outcome).inc()
        headers = {"Retry-After": "5"} if retry else None
        if status == 204:
            return web.Response(status=204, headers={"Content-Type": "application/json"})
        payload = body if body is not None else {"error": outcome}
        return web.Response(status=status, body=orjson.dumps(payload),
                            content_type="application/json", headers=headers)

    # --- authentication ----------------------------------------------------------------
    def _authenticate(self, source: str, request: web.Request, body: bytes) -> str | None:
        """None when the request is genuine, else the outcome to count."""
        token = self.config.token
        if token:
            presented = request.query.get("token", "")
            auth = request.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                presented = auth[7:].strip()
            if presented and hmac.compare_digest(presented.encode(), token.encode()):
                return None
        secret = self.config.secrets.get(source)
        headers = request.headers
        if secret is None:
            return "unauthorized"
        if source == "zendesk":
            stamp = headers.get("X-Zendesk-Webhook-Signature-Timestamp")
            ok = self._fresh(stamp) and verify_zendesk(
                secret, body, headers.get("X-Zendesk-Webhook-Signature"), stamp)
            present = "X-Zendesk-Webhook-Signature" in headers
        elif source == "chatwoot":
            stamp = headers.get("X-Chatwoot-Timestamp")
            ok = self._fresh(stamp) and verify_chatwoot(
                secret, body, headers.get("X-Chatwoot-Signature"), stamp)
            present = "X-Chatwoot-Signature" in headers
        else:  # twilio-taskrouter
            url = self._public_url(request)
            ok = verify_twilio(secret, url, body, headers.get("X-Twilio-Signature"))
            present = "X-Twilio-Signature" in headers
        if ok:
            return None
        return "bad_signature" if present else "unauthorized"

    def _fresh(self, stamp: str | None) -> bool:
        """A signed timestamp close to now: a captured request cannot be replayed later."""
        if self.config.signature_tolerance <= 0:
            return True
        when = parse_time(stamp)
        return when is not None and abs(time.time() - when) <= self.config.signature_tolerance

    def _public_url(self, request: web.Request) -> str:
        if self.config.public_url:
            return self.config.public_url.rstrip("/") + request.rel_url.path_qs
        return str(request.url)


async def serve_until(config: GatewayConfig, settings: Settings, stop: asyncio.Event) -> None:
    gateway = Gateway(config, settings)
    await gateway.start()
    try:
        await stop.wait()
    finally:
        await gateway.stop()
