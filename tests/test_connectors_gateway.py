"""The gateway against the real broker: each vendor's fixture payloads, posted as the vendor
would (signed, or with the token), land on the contract topics as exactly the events
``convert`` writes for the same payloads; the replay of both is the same snapshot; what
cannot be mapped is in the dead-letter topic; bad signatures, big bodies are refused.

Payload sources are cited in tests/test_connectors_webhooks.py.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import orjson
import pytest

from connectors.gateway import Gateway, GatewayConfig
from connectors.mapping import Options, memory_pipeline
from connectors.sources import READERS
from connectors.twilio import twilio_signature
from stream_app.settings import Settings
from stream_app.tools.replay import replay_paths
from tests.connectors_data.helpers import (
    DATA,
    by_id,
    converted,
    events_of,
    read_topics,
    write_jsonl,
)

TOKEN = "test-token-0123456789"
SECRETS = {"zendesk": "zd-secret", "twilio-taskrouter": "tw-auth-token", "chatwoot": "cw-secret"}
FIXTURES = {"zendesk": "zendesk_webhooks.jsonl", "amazon-connect": "connect_events.jsonl",
            "twilio-taskrouter": "twilio_events.txt", "chatwoot": "chatwoot_webhooks.jsonl",
            "delighted": "delighted_webhooks.jsonl"}


@pytest.fixture
def settings(make_topics: Callable[..., list[str]], unique_name: str,
             monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KPI_TOPIC_PREFIX", f"cx{unique_name}-")
    conf = Settings()
    make_topics([*conf.input_topics.values(), conf.dead_letter_topic])
    return conf


def records(source: str) -> list[bytes]:
    with (DATA / FIXTURES[source]).open("rb") as stream:
        return [r for r in READERS[source](stream) if r is not None]


def signed(source: str, body: bytes, url: str) -> tuple[dict[str, str], str]:
    """Headers (and URL) as each vendor sends them."""
    if source == "zendesk":
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        mac = hmac.new(SECRETS[source].encode(), stamp.encode() + body, hashlib.sha256)
        return {"X-Zendesk-Webhook-Signature": base64.b64encode(mac.digest()).decode(),
                "X-Zendesk-Webhook-Signature-Timestamp": stamp,
                "Content-Type": "application/json"}, url
    if source == "chatwoot":
        stamp = str(int(time.time()))
        mac = hmac.new(SECRETS[source].encode(), stamp.encode() + b"." + body, hashlib.sha256)
        return {"X-Chatwoot-Signature": "sha256=" + mac.hexdigest(),
                "X-Chatwoot-Timestamp": stamp, "Content-Type": "application/json"}, url
    if source == "twilio-taskrouter":
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        return {"X-Twilio-Signature": twilio_signature(SECRETS[source], url, params),
                "Content-Type": "application/x-www-form-urlencoded"}, url
    if source == "delighted":  # cannot set headers: token in the URL
        return {"Content-Type": "application/json"}, f"{url}?token={TOKEN}"
    return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}, url


async def post_all(settings: Settings, tmp: Path, jobs: list[tuple[str, bytes]]) -> list[int]:
    config = GatewayConfig(port=0, token=TOKEN, secrets=dict(SECRETS), state_dir=tmp,
                           options=Options())
    gateway = Gateway(config, settings)
    await gateway.start()
    statuses = []
    try:
        async with aiohttp.ClientSession() as http:
            for source, body in jobs:
                url = f"http://127.0.0.1:{gateway.port}/webhooks/{source}"
                headers, target = signed(source, body, url)
                async with http.post(target, data=body, headers=headers) as resp:
                    statuses.append(resp.status)
    finally:
        await gateway.stop()
    return statuses


@pytest.mark.parametrize("source", list(FIXTURES))
def test_gateway_produces_what_convert_writes(source: str, settings: Settings,
                                              tmp_path: Path) -> None:
    bodies = records(source)
    statuses = asyncio.run(post_all(settings, tmp_path / "state", [(source, b) for b in bodies]))
    assert all(200 <= s < 300 for s in statuses), statuses
    expected = converted(source, FIXTURES[source])
    pipe = memory_pipeline(Options(), [source])
    unmapped = [b for b in bodies if pipe.process(
        source, pipe.mappers[source].parse(b) or {}, None)[0].unmapped]
    got = read_topics(settings, list(settings.input_topics.values()), len(expected))
    produced = events_of(got)
    assert by_id(produced) == by_id(expected)
    assert len(produced) == len(expected)  # redeliveries included, nothing more
    for topic, record in got:  # each on its family's topic, keyed by its entity
        ev = orjson.loads(record.value)
        family = ev["type"].split("_", 1)[0]
        assert topic == settings.input_topics[family]
        key = {"contact": "contact_id", "ticket": "ticket_id", "survey": "survey_id",
               "agent": "agent_id"}[family]
        assert record.key == ev[key].encode()
    last = max(ev["ts"] for ev in expected)
    snaps = [replay_paths([str(write_jsonl(tmp_path / name, evs))], at=last).snapshot()
             for name, evs in (("kafka.jsonl", produced), ("convert.jsonl", expected))]
    assert snaps[0] == snaps[1]
    dead = read_topics(settings, [settings.dead_letter_topic], len(unmapped), timeout=15)
    assert sorted(r.value for _, r in dead) == sorted(unmapped)
    for _, record in dead:
        headers = dict(record.headers)
        assert headers["reason"] == b"unmapped" and headers["source"] == source.encode()
        assert headers["detail"]


def test_gateway_refuses_and_counts(settings: Settings, tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        config = GatewayConfig(port=0, token=TOKEN, secrets=dict(SECRETS), state_dir=tmp_path)
        gateway = Gateway(config, settings)
        await gateway.start()
        base = f"http://127.0.0.1:{gateway.port}"
        out: dict[str, Any] = {}
        body = records("zendesk")[0]
        try:
            async with aiohttp.ClientSession() as http:
                headers, _ = signed("zendesk", body, "")
                headers["X-Zendesk-Webhook-Signature"] = "AAAA" + headers[
                    "X-Zendesk-Webhook-Signature"][4:]
                async with http.post(f"{base}/webhooks/zendesk", data=body,
                                     headers=headers) as r:
                    out["bad_signature"] = r.status
                async with http.post(f"{base}/webhooks/amazon-connect", data=body) as r:
                    out["no_auth"] = r.status
                async with http.post(f"{base}/webhooks/amazon-connect", data=body,
                                     headers={"Authorization": "Bearer wrong"}) as r:
                    out["wrong_token"] = r.status
                big = b'{"x":"' + b"a" * (1 << 20) + b'"}'
                async with http.post(f"{base}/webhooks/delighted?token={TOKEN}",
                                     data=big) as r:
                    out["too_large"] = r.status
                async with http.post(f"{base}/webhooks/delighted?token={TOKEN}",
                                     data=b"{not json") as r:
                    out["unmappable"] = (r.status, await r.json())
                async with http.post(f"{base}/webhooks/nosuch?token={TOKEN}", data=b"{}") as r:
                    out["unknown_source"] = r.status
                async with http.get(f"{base}/metrics") as r:
                    out["metrics"] = await r.text()
                async with http.get(f"{base}/healthz") as r:
                    out["health"] = r.status
        finally:
            await gateway.stop()
        return out

    out = asyncio.run(scenario())
    assert out["bad_signature"] == 401 and out["no_auth"] == 401 and out["wrong_token"] == 401
    assert out["too_large"] == 413 and out["unknown_source"] == 404 and out["health"] == 200
    assert out["unmappable"] == (202, {"dead_letter": "invalid_payload"})
    metrics = out["metrics"]
    assert 'kpi_connectors_requests_total{outcome="bad_signature",source="zendesk"} 1.0' \
        in metrics
    assert 'kpi_connectors_requests_total{outcome="too_large",source="delighted"} 1.0' in metrics
    assert 'kpi_connectors_dead_letters_total{reason="unmapped",source="delighted"} 1.0' \
        in metrics
    dead = read_topics(settings, [settings.dead_letter_topic], 1, timeout=15)
    assert [(r.value, dict(r.headers)["reason"]) for _, r in dead] == [
        (b"{not json", b"unmapped")]
    assert read_topics(settings, list(settings.input_topics.values()), 0, timeout=3) == []


def test_gateway_answers_503_when_kafka_does_not_acknowledge(settings: Settings,
                                                             tmp_path: Path) -> None:
    """A redelivery after a 503 gets the same events (ids) again."""

    class SlowSink:
        def __init__(self) -> None:
            self.sent: list[list[dict]] = []

        async def start(self) -> None: ...

        async def stop(self) -> None: ...

        async def enqueue(self, events: list[dict]) -> list[asyncio.Future[Any]]:
            self.sent.append(list(events))
            return [asyncio.get_running_loop().create_future()]  # never acknowledged

    async def scenario() -> tuple[list[int], SlowSink]:
        sink = SlowSink()
        config = GatewayConfig(port=0, token=TOKEN, state_dir=tmp_path, ack_timeout=0.2)
        gateway = Gateway(config, settings, sink=sink)  # type: ignore[arg-type]
        await gateway.start()
        body = records("delighted")[0]
        statuses = []
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(2):
                    async with http.post(
                            f"http://127.0.0.1:{gateway.port}/webhooks/delighted",
                            data=body, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                        statuses.append(r.status)
        finally:
            await gateway.stop()
        return statuses, sink

    statuses, sink = asyncio.run(scenario())
    assert statuses == [503, 503]
    assert len(sink.sent) == 2 and sink.sent[0] == sink.sent[1]
