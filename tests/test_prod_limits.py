"""Topics with small ``max.message.bytes``, on the real broker: nothing stalls for ever on a
message that cannot be written.

* the changelog is chunked under its topic's limit, dead letters are cut to theirs, input
  over ``KPI_MAX_MESSAGE_BYTES`` is ``too_large``, and the result still equals the replay;
* a write the broker refuses whatever we do (the partials topic accepts less than one
  minute's cells) is an unrecoverable error: metric, ``/readyz`` 503, ONE log line saying
  what to do, ``/healthz`` 503 once input waits; raising the limit lets it resume by itself;
* ``KPI_CREATE_TOPICS=false``: a missing topic stops the worker naming it; with the topics
  in place the worker runs without creating any.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from stream_app.kafka.client import client_kwargs
from stream_app.kafka.topics import admin_client, ensure_topics
from stream_app.kafka.worker_topics import COMPACTED, changelog_topic, partials_topic
from stream_app.settings import Settings
from stream_app.tools.producer import produce_lines
from tables import changelog as C
from tests.livehelp import ROOT, Deployment
from tests.test_prod_secure import assert_equals_replay, contract_events

pytestmark = [pytest.mark.stack, pytest.mark.timeout(400)]


def _settings(dep: Deployment) -> Settings:
    return Settings(kafka_bootstrap_servers=dep.bootstrap, topic_prefix=dep.prefix,
                    app_id=dep.env["KPI_APP_ID"], partitions=dep.partitions)


def _limit(dep: Deployment, topic: str, max_bytes: int, compacted: bool) -> None:
    configs = {**(COMPACTED if compacted else {}), "max.message.bytes": str(max_bytes)}
    asyncio.run(ensure_topics(dep.bootstrap, [topic], dep.partitions, configs=configs))


def _read_all(bootstrap: str, topic: str, partitions: int) -> list[Any]:
    async def run() -> list[Any]:
        consumer = AIOKafkaConsumer(**client_kwargs(Settings(kafka_bootstrap_servers=bootstrap)),
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            got: list[Any] = []
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(recs)
            return got
        finally:
            await consumer.stop()

    return asyncio.run(run())


def _padded(line: bytes, size: int) -> bytes:
    body = line[:-1] + b', "pad": "'
    return body + b"x" * (size - len(body) - 2) + b'"}'


def test_small_topic_limits_chunk_and_truncate_and_still_equal_the_replay(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, redis_url, tmp_path, tag="lim",
                     env={"KPI_MAX_MESSAGE_BYTES": "30000"})
    s = _settings(dep)
    _limit(dep, changelog_topic(s), 60_000, compacted=True)
    _limit(dep, s.dead_letter_topic, 20_000, compacted=False)
    lines = contract_events(seconds=400, rate=40, seed=21)
    huge = _padded(lines[5], 40_000)  # valid JSON, over KPI_MAX_MESSAGE_BYTES
    big_garbage = b"{" + b"x" * 24_999  # under it: decoded, invalid_json
    lines[100:100] = [huge, big_garbage]
    try:
        asyncio.run(dep.create_topics())
        # Produced first: the worker's first batches are large, their redo logs too.
        asyncio.run(produce_lines(dep.bootstrap, dep.topics, lines))
        port = dep.start_worker()
        dep.wait_http(port)
        dep.wait_caught_up(port)
        live = assert_equals_replay(dep, port, lines)
    finally:
        dep.stop_all()
    assert live["rejected"]["too_large"] == 1
    # The redo log of the first batches needed several chunks, each under the limit.
    changelog = _read_all(dep.bootstrap, changelog_topic(s), dep.partitions)
    sizes = [len(r.value) for r in changelog if r.value is not None]
    assert max(sizes) <= 60_000 - 1024
    logs = {r.key: orjson.loads(r.value) for r in changelog
            if r.value is not None and r.key.startswith(b"L|")}
    # A chunk cut by bytes: fewer items than the count cap, yet a next chunk follows.
    assert any(
        k.endswith(b"|0") and k[:-1] + b"1" in logs
        and max(len(v["e"]), len(v["d"]), len(v["f"])) < C.CHUNK
        for k, v in logs.items()
    ), "no redo log was cut by bytes"
    # One dead letter per rejection (no duplicates), the large ones cut with original_size.
    dead = _read_all(dep.bootstrap, s.dead_letter_topic, dep.partitions)
    assert len(dead) == sum(live["rejected"].values())
    by_reason: dict[str, list[Any]] = {}
    for r in dead:
        by_reason.setdefault(dict(r.headers)["reason"].decode(), []).append(r)
    (too_large,) = by_reason["too_large"]
    assert dict(too_large.headers)["original_size"] == b"40000"
    assert too_large.value == huge[: len(too_large.value)] and len(too_large.value) <= 18_976
    cut = [r for r in by_reason["invalid_json"] if "original_size" in dict(r.headers)]
    assert [dict(r.headers)["original_size"] for r in cut] == [b"25000"]


def _http(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _until(check: Any, deadline_s: float, dep: Deployment, what: str) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        assert dep.alive(), f"worker died:\n{dep.logs()}"
        time.sleep(0.3)
    raise AssertionError(f"{what} within {deadline_s}s:\n{dep.logs()}")


def test_a_write_the_broker_refuses_is_reported_once_and_resumes_when_fixed(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, redis_url, tmp_path, tag="big",
                     env={"KPI_HEALTH_STALL_SECONDS": "4", "KPI_BATCH_MAX": "300"})
    s = _settings(dep)
    partials = partials_topic(s)
    _limit(dep, partials, 1_500, compacted=True)  # less than a busy minute's cells
    lines = contract_events(seconds=300, rate=30, seed=22)
    try:
        port = dep.start_worker()
        _until(lambda: dep.status(port), 90, dep, "no HTTP")
        asyncio.run(produce_lines(dep.bootstrap, dep.topics, lines))
        status, body = _until(
            lambda: (r := _http(port, "/readyz"))[0] == 503 and "message_too_large" in r[1]
            and r, 60, dep, "/readyz did not report message_too_large")
        assert f"max.message.bytes of topic {partials}" in body
        _until(lambda: _http(port, "/healthz")[0] == 503, 30, dep, "/healthz did not fail")
        metrics = _http(port, "/metrics")[1]
        assert 'kpi_unrecoverable_errors_total{kind="message_too_large"} 1.0' in metrics
        # Fixed by an operator: the held batch goes through at the next attempt (<= 30 s).
        asyncio.run(_alter(dep, partials, {**COMPACTED, "max.message.bytes": "1048588"}))
        _until(lambda: _http(port, "/readyz")[0] == 200, 60, dep, "/readyz did not recover")
        dep.wait_caught_up(port)
        assert_equals_replay(dep, port, lines)
        assert _http(port, "/healthz")[0] == 200
    finally:
        dep.stop_all()
    told = [ln for ln in dep.logs(None).splitlines() if "max.message.bytes of topic" in ln]
    assert len(told) == 1, told
    assert "resolved" in dep.logs(None)


async def _alter(dep: Deployment, topic: str, configs: dict[str, str]) -> None:
    admin = admin_client(dep.bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
    finally:
        await admin.close()


def test_create_topics_false_names_what_is_missing_then_runs_without_creating(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, redis_url, tmp_path, tag="ro",
                     env={"KPI_CREATE_TOPICS": "false"})
    s = _settings(dep)
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "stream_app", "worker"], cwd=ROOT, env=dep.env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and time.monotonic() - t0 < 20
    for name in (*dep.topics.values(), changelog_topic(s), partials_topic(s)):
        assert name in out.stderr
    assert "KPI_CREATE_TOPICS=true" in out.stderr
    asyncio.run(dep.create_topics())  # what an administrator would do
    lines = contract_events(seconds=120, rate=20, seed=23)
    try:
        port = dep.start_worker()
        dep.wait_http(port)
        asyncio.run(produce_lines(dep.bootstrap, dep.topics, lines))
        dep.wait_caught_up(port)
        assert_equals_replay(dep, port, lines)
    finally:
        dep.stop_all()
    created = asyncio.run(_topics_named(dep))
    expected = {*dep.topics.values(), s.dead_letter_topic, s.alerts_topic,
                changelog_topic(s), partials_topic(s)}
    assert created == expected, created ^ expected
    assert "Topic creation disabled" not in dep.logs(None)


async def _topics_named(dep: Deployment) -> set[str]:
    admin = admin_client(dep.bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
    finally:
        await admin.close()
    app_id = dep.env["KPI_APP_ID"]
    return {n for n in names if n.startswith(dep.prefix) or n.startswith(app_id)}

