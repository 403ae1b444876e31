"""``kpi-stream bench``: throughput, latency and memory against the physical limit.

Everything runs against the stack in the environment (``make bench`` starts one):

1. a bare aiokafka consumer that only ``orjson.loads`` each message (the limit);
2. one worker, end to end: first event applied -> last event applied and published;
3. two workers sharing the partitions;
4. latency at a steady rate: event produced -> its row changed in Redis;
5. memory: RSS while many events spanning days go through the same core (replay);
6. replay: events/s of the offline replay vs. a bare ``orjson.loads`` loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console

import tables
from stream_app.settings import get_settings
from stream_app.tools.deployment import Deployment
from stream_app.tools.replay import (
    gc_paused,
    iter_chunks,
    iter_lines,
    replay_paths,
    replay_snapshot,
)
from stream_app.tools.simulator.run import generate_events
from tables.engine import Replayer, floor
from tables.state import Config

console = Console(stderr=True)


def new_deployment(**extra_env: str) -> Deployment:
    """Fresh topics, app id and Redis prefix, so runs never see each other's data."""
    s = get_settings()
    env = {"KPI_PUBLISH_INTERVAL": "1.0", **extra_env}
    return Deployment(
        s.kafka_bootstrap_servers, s.redis_url, Path(tempfile.mkdtemp(prefix="kpi-bench-")),
        tag="bench", env=env,
    )


# --- 1. the physical limit ---------------------------------------------------------------
async def bare_consume(dep: Deployment, n: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=dep.bootstrap,
        enable_auto_commit=False,
        max_poll_records=10000,
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=16 << 20,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in dep.topics.values() for p in range(dep.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        loads = orjson.loads
        t0 = time.perf_counter()
        while seen < n:
            for recs in (await consumer.getmany(timeout_ms=1000, max_records=10000)).values():
                for r in recs:
                    try:  # noqa: SIM105 - suppress() per message would slow the loop we measure
                        loads(r.value)
                    except orjson.JSONDecodeError:
                        pass
                seen += len(recs)
        return seen / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


# --- 2/3. workers ---------------------------------------------------------------
def run_workers(dep: Deployment, n: int, workers: int, deadline: float = 900) -> dict[str, float]:
    ends = dep.end_offsets()
    t_start = time.perf_counter()
    ports = [dep.start_worker() for _ in range(workers)]
    first = None
    try:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if not dep.alive():
                raise RuntimeError(f"a worker stopped during the run; its log:\n{dep.logs()}")
            sts = [dep.status(p) for p in ports]
            if all(sts):
                if first is None and sum(s["events"] for s in sts if s) > 0:
                    first = time.perf_counter()
                if all(dep.caught_up_status(s, ends) for s in sts if s):
                    done = time.perf_counter()
                    assert first is not None
                    return {
                        "events_per_s": n / (done - first),
                        "seconds": done - first,
                        "startup_s": first - t_start,
                    }
            time.sleep(0.05)
        raise RuntimeError("workers did not catch up in time")
    finally:
        dep.stop_all()


# --- 4. latency ---------------------------------------------------------------
async def latency(rate: float, seconds: float) -> dict[str, float]:
    import redis.asyncio as aioredis
    from aiokafka import AIOKafkaProducer

    from stream_app.tools.routing import route

    # Publishing 10 times a second (the default is once a second) is what a 500 ms
    # budget needs: the wait for the next publish alone averages half the interval.
    dep = new_deployment(KPI_PUBLISH_INTERVAL="0.1", KPI_BATCH_WITHIN="0.05")
    await dep.create_topics()
    port = dep.start_worker()
    s = get_settings()
    r = aioredis.from_url(s.redis_url)
    pubsub = r.pubsub()
    await pubsub.subscribe(f"{dep.env['KPI_REDIS_PREFIX']}updates")
    probe_key = f"{dep.env['KPI_REDIS_PREFIX']}24h:queue:probe"
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}

    async def listen() -> None:
        async for m in pubsub.listen():
            if m["type"] != "message":
                continue
            msg = orjson.loads(m["data"])
            if msg["key"] == probe_key:
                k = msg["row"]["contacts_offered"]
                now = time.time()
                for i in range(1, k + 1):
                    seen.setdefault(i, now)

    for _ in range(300):
        st = dep.status(port)
        if st and st["view_ready"]:
            break
        await asyncio.sleep(0.2)
    listener = asyncio.create_task(listen())
    producer = AIOKafkaProducer(bootstrap_servers=dep.bootstrap, linger_ms=2)
    await producer.start()
    try:
        gen = generate_events(
            rate=rate, duration=seconds + 5, seed=99, start_epoch=time.time(), bad_share=0.0
        )
        t0 = time.time()
        tick, probe = 0.01, 0
        next_probe = t0 + 1.0
        while time.time() - t0 < seconds:
            due = int((time.time() - t0) * rate)
            while tick < due:
                line = next(gen)
                fam, key = route(line)
                await producer.send(dep.topics[fam], line, key=key)
                tick += 1
            if time.time() >= next_probe:
                probe += 1
                now = time.time()
                ev = {
                    "event_id": f"probe-{uuid.uuid4().hex}",
                    "type": "contact_offered",
                    "ts": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(),
                    "contact_id": f"probe-{probe}",
                    "queue": "probe",
                    "channel": "voice",
                }
                await producer.send_and_wait(
                    dep.topics["contact"], orjson.dumps(ev), key=f"probe-{probe}".encode()
                )
                sent[probe] = now
                next_probe += 0.25
            await asyncio.sleep(0.005)
        await asyncio.sleep(3)
    finally:
        await producer.stop()
        listener.cancel()
        await r.aclose()
        dep.stop_all()
    lat = sorted((seen[i] - sent[i]) * 1000 for i in sent if i in seen)
    if not lat:
        raise RuntimeError("no probe reached Redis")
    return {
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[max(0, int(len(lat) * 0.99) - 1)],
        "max_ms": lat[-1],
        "probes": len(lat),
        "lost": len(sent) - len(lat),
    }


# --- 5. memory ---------------------------------------------------------------
def memory(n: int, days: float) -> dict[str, Any]:
    rate = n / (days * 86400)
    proc = psutil.Process()
    rep = Replayer(Config())
    samples: list[tuple[int, float]] = []
    step = max(1, n // 40)
    for i, line in enumerate(
        generate_events(
            rate=rate,
            duration=days * 86400,
            seed=5,
            start_epoch=time.time() - days * 86400,
            bad_share=0.01,
        )
    ):
        rep.feed(line)
        if i % step == 0:
            samples.append((i, proc.memory_info().rss / 2**20))
        if i + 1 >= n:
            break
    samples.append((n, proc.memory_info().rss / 2**20))
    warm = [mb for i, mb in samples if i >= n * 0.4]  # after the first day of 2.5+
    mid = statistics.median(warm)
    return {
        "events": n,
        "days": days,
        "samples": samples,
        "rss_mb_after_warmup_min": min(warm),
        "rss_mb_after_warmup_max": max(warm),
        "spread_pct": (max(warm) - min(warm)) / mid * 100,
    }


def sparkline(values: list[float]) -> str:
    bars = "▁▂▃▄▅▆▇█"
    lo, hi = min(values), max(values)
    return "".join(bars[int((v - lo) / (hi - lo + 1e-9) * (len(bars) - 1))] for v in values)


# --- 6. replay ---------------------------------------------------------------
def replay_speed(path: Path, definitions: Path | None = None) -> dict[str, Any]:
    """Best of two runs each: the bare orjson loop, the replay, and the floor loop
    (tables.engine.floor: decode + time + dedup probe only), all over the same file."""
    best_bare = best_rep = best_floor = 0.0
    n = 0
    for _ in range(2):
        t = time.perf_counter()
        n = 0
        with path.open("rb") as f:
            for line in iter_lines(f):
                if line.strip():
                    try:  # noqa: SIM105 - as above: this is the yardstick loop
                        orjson.loads(line)
                    except orjson.JSONDecodeError:
                        pass
                    n += 1
        best_bare = max(best_bare, n / (time.perf_counter() - t))
        t = time.perf_counter()
        replay_snapshot([str(path)], definitions=str(definitions) if definitions else None)
        best_rep = max(best_rep, n / (time.perf_counter() - t))
        seen: dict[str, int] = {}
        t = time.perf_counter()
        with path.open("rb") as f, gc_paused():
            for lines in iter_chunks(f):
                floor(lines, seen)
        best_floor = max(best_floor, n / (time.perf_counter() - t))
        del seen
    return {
        "events": n,
        "compiled_core": tables.NATIVE,
        "bare_per_s": best_bare,
        "replay_per_s": best_rep,
        "floor_per_s": best_floor,
        "ratio": best_rep / best_bare,
        "floor_ratio": best_floor / best_bare,
    }


def sla_snapshot(definitions: Path, tickets: int = 100_000) -> dict[str, Any]:
    """The snapshot's cost with ``tickets`` open tickets under the definitions' SLA
    policies (business hours, two policies): each snapshot counts every open ticket's
    breach and at-risk instants against the clock (computed once per ticket, indexed by
    minute). The first snapshot (which rolls the cells up) and the best of three."""
    rep = replay_paths([], definitions=str(definitions))
    t0 = time.time() - 3600
    queues, prios = ("billing", "tech", "sales"), ("urgent", "high", "normal", "low")
    for i in range(tickets):
        ts = dt.datetime.fromtimestamp(t0 + i * 3600 / tickets, dt.UTC)
        rep.feed(orjson.dumps({
            "event_id": f"sla-{i}", "type": "ticket_opened",
            "ts": ts.isoformat().replace("+00:00", "Z"), "ticket_id": f"t{i}",
            "queue": queues[i % 3], "channel": "email", "priority": prios[i % 4]}))
    times = []
    for _ in range(3):
        t = time.perf_counter()
        snap = rep.snapshot()
        times.append(time.perf_counter() - t)
    row = next(r for r in snap["rows"] if r["scope"] == "all" and r["window"] == "now")
    return {"open_tickets": row.get("open_tickets"), "breached": row.get("tickets_sla_breached"),
            "first_snapshot_ms": times[0] * 1000, "snapshot_ms": min(times) * 1000}


def write_file(path: Path, n: int, rate: float = 300.0) -> None:
    with path.open("wb") as f:
        for i, line in enumerate(
            generate_events(
                rate=rate,
                duration=n / rate * 1.05,
                seed=7,
                start_epoch=time.time() - n / rate,
                bad_share=0.01,
            )
        ):
            if i >= n:
                break
            f.write(line + b"\n")
