"""Redis outputs of a real worker: hashes per row equal the snapshot, a change feed,
and a Redis outage the worker survives and repairs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import orjson
import pytest
import redis

from stream_app.outputs.redis_sink import row_hash, row_key
from stream_app.tools.producer import produce_lines
from stream_app.tools.simulator.run import generate_events
from tables.events import ContactOffered, decode
from tests.livehelp import ROOT, Deployment

pytestmark = pytest.mark.stack


def _redis_matches(client: redis.Redis, prefix: str, snap: dict) -> list[str]:
    problems = []
    for row in snap["rows"]:
        key = row_key(prefix, row)
        got = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        want = row_hash(row, got.get("as_of", ""))
        if got != want:
            problems.append(f"{key}: {sorted(set(want.items()) ^ set(got.items()))[:4]}")
    keys = {k.decode() for k in client.scan_iter(f"{prefix}*:*")}
    extra = keys - {row_key(prefix, r) for r in snap["rows"]}
    if extra:
        problems.append(f"keys not in the snapshot: {sorted(extra)[:3]}")
    return problems


def _total(snap: dict) -> int:
    return next(
        (
            r["contacts_offered"]
            for r in snap["rows"]
            if (r["scope"], r["window"]) == ("all", "24h")
        ),
        -1,
    )


def _settled(dep: Deployment, port: int, client: redis.Redis, prefix: str, deadline: float) -> dict:
    """Wait until Redis holds a snapshot with everything the worker has, and exactly its rows."""
    end = time.monotonic() + deadline
    problems: list[str] = []
    want = _total(dep.get(port, "/api/snapshot"))
    while time.monotonic() < end:
        raw = client.get(f"{prefix}snapshot")
        if raw:
            snap = orjson.loads(raw)
            problems = _redis_matches(client, prefix, snap)
            if _total(snap) != want:
                problems.append(f"Redis has {_total(snap)} offered, the worker {want}")
            if not problems:
                return snap
        time.sleep(0.5)
    raise AssertionError(f"Redis never matched the snapshot: {problems[:5]}\n{dep.logs()}")


def test_rows_hashes_snapshot_and_change_feed(deployment: Deployment, redis_url: str) -> None:
    prefix = deployment.env["KPI_REDIS_PREFIX"]
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(f"{prefix}updates")
    port = deployment.start_worker()
    deployment.wait_http(port)
    lines = list(
        generate_events(
            rate=10, duration=600, seed=21, start_epoch=time.time() - 600, bad_share=0.02
        )
    )
    asyncio.run(produce_lines(deployment.bootstrap, deployment.topics, lines))
    deployment.wait_caught_up(port)
    snap = _settled(deployment, port, client, prefix, 60)
    all15 = client.hgetall(f"{prefix}15m:all")
    assert int(all15[b"contacts_offered"]) > 20
    messages = []
    end = time.monotonic() + 10
    while time.monotonic() < end and len(messages) < 5:
        m = pubsub.get_message(timeout=1.0)
        if m and m["type"] == "message":
            messages.append(orjson.loads(m["data"]))
    assert messages
    for m in messages:  # each names the hash it changed, and carries that row
        assert m["key"] == row_key(prefix, m["row"]) and m["as_of"]
    offered = [decode(x) for x in lines if b'"contact_offered"' in x]
    queues = {f"queue:{e.queue}" for e in offered if isinstance(e, ContactOffered)}
    assert queues and queues <= {r["scope"] for r in snap["rows"]}
    # The CLI reads the same snapshot back from Redis.
    out = subprocess.run(
        [sys.executable, "-m", "stream_app", "snapshot", "--from-redis"],
        cwd=ROOT,
        env=deployment.env,
        capture_output=True,
        check=True,
    )
    assert orjson.loads(out.stdout)["rows"]
    pubsub.close()
    client.close()


def _redis_script(*args: str) -> None:
    subprocess.run(
        [str(ROOT / "infra" / "redis.sh"), *args],
        check=True,
        cwd=ROOT,
        env=dict(os.environ),
        timeout=120,
    )


def test_redis_outage_worker_keeps_consuming_and_repairs(
    deployment: Deployment, redis_url: str
) -> None:
    if not (ROOT / ".run" / "redis" / "redis.pid").exists():
        pytest.skip("Redis was provided from outside (REDIS_URL): this test restarts its own")
    prefix = deployment.env["KPI_REDIS_PREFIX"]
    port = deployment.start_worker()
    deployment.wait_http(port)
    lines = list(
        generate_events(
            rate=10, duration=900, seed=22, start_epoch=time.time() - 900, bad_share=0.02
        )
    )
    half = len(lines) // 2
    asyncio.run(produce_lines(deployment.bootstrap, deployment.topics, lines[:half]))
    _redis_script("stop")
    try:
        asyncio.run(produce_lines(deployment.bootstrap, deployment.topics, lines[half:]))
        time.sleep(15)
        assert deployment.alive(), deployment.logs()
        # Consuming went on without Redis: the worker's own view has everything.
        deployment.wait_caught_up(port, deadline_s=60)
    finally:
        _redis_script("start")
    client = redis.Redis.from_url(redis_url)
    snap = _settled(deployment, port, client, prefix, 60)
    live = deployment.get(port, "/api/snapshot")

    # 24h only: the two snapshots may straddle a minute boundary, which moves the 5m window.
    def offered(s: dict) -> dict:
        return {r["scope"]: r["contacts_offered"] for r in s["rows"] if r["window"] == "24h"}

    assert offered(live) == offered(snap) and offered(live)["all"] > 50
    assert deployment.alive()
    logs = deployment.logs(tail=None)
    outage_lines = logs.count('"logger":"kpi.redis","msg":"Redis at')
    assert outage_lines == 1, "the outage is logged once, not once per publish"
    client.close()
