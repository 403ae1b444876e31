"""The soak run of ``make bench``: hours of a production day compressed into half an hour,
with the faults a platform meets, and the numbers it must keep.

Two workers take 2,000 events/s of the simulated center (agent events included)
for ``seconds`` (30 minutes by default). A quarter of the way the broker is
stopped and started again, half way Redis is, three quarters of the way one
worker is killed with SIGKILL (and a fresh one started). Every 10 s we sample
each worker's RSS, the consumer lag (end offsets minus what the view holds) and
the event->Redis latency of probe contacts (p99 over the last 10 s). At the end
the live snapshot must equal ``replay --at <as_of>`` of everything produced, and
the samples are drawn as a PNG and written as a table in ``bench/results/``.

This is a measurement, never a test: it needs the stack ``make bench`` starts
(the broker and Redis it restarts must be its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psutil

from stream_app.kafka.client import client_kwargs
from stream_app.settings import get_settings
from stream_app.tools.deployment import ROOT, Deployment
from stream_app.tools.routing import route
from stream_app.tools.simulator.run import generate_events
from tables.compare import diff

SAMPLE_S = 10.0


def _script(name: str, *args: str) -> None:
    subprocess.run([str(ROOT / "infra" / name), *args], check=True, cwd=ROOT,
                   env={**os.environ, "KAFKA_KEEP_DATA": "1"}, timeout=300)


class Soak:
    def __init__(self, dep: Deployment, seconds: float, rate: float, work: Path) -> None:
        self.dep, self.seconds, self.rate, self.work = dep, seconds, rate, work
        self.ports: list[int] = []
        self.samples: list[dict[str, Any]] = []
        self.faults: list[tuple[float, str]] = []
        self.sent: dict[int, float] = {}
        self.seen: dict[int, float] = {}
        self.t0 = 0.0
        self.produced = 0
        self.input = work / "soak.jsonl"

    # --- the run ---------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        import redis.asyncio as aioredis
        from aiokafka import AIOKafkaProducer

        dep = self.dep
        self.ports = [dep.start_worker(), dep.start_worker()]
        for p in self.ports:
            await asyncio.to_thread(dep.wait_http, p)
        redis = aioredis.from_url(get_settings().redis_url)
        listener = asyncio.create_task(self._listen(redis))
        producer = AIOKafkaProducer(
            **client_kwargs(get_settings()), linger_ms=5, enable_idempotence=True,
            request_timeout_ms=180_000, max_batch_size=1 << 20,
        )
        await producer.start()
        sampler = asyncio.create_task(self._sample_loop())
        faults = asyncio.create_task(self._faults())
        try:
            await self._produce(producer)
            await producer.flush()
        finally:
            await producer.stop()
            faults.cancel()
        await asyncio.to_thread(dep.wait_caught_up, self.ports[-1], 900.0)
        await asyncio.sleep(2 * SAMPLE_S)
        sampler.cancel()
        listener.cancel()
        await redis.aclose()
        return self._result()

    async def _produce(self, producer: Any) -> None:
        gen = generate_events(rate=self.rate, duration=self.seconds + 120, seed=2000,
                              start_epoch=time.time(), bad_share=0.005)
        self.t0 = time.time()
        probe = 0
        next_probe = self.t0 + 1.0
        with open(self.input, "wb") as out:
            while time.time() - self.t0 < self.seconds:
                due = int((time.time() - self.t0) * self.rate)
                while self.produced < due:
                    line = next(gen)
                    fam, key = route(line)
                    await producer.send(self.dep.topics[fam], line, key=key)
                    out.write(line + b"\n")
                    self.produced += 1
                if time.time() >= next_probe:
                    probe += 1
                    line = self._probe(probe)
                    await producer.send(self.dep.topics["contact"], line,
                                        key=f"probe-{probe}".encode())
                    out.write(line + b"\n")
                    self.sent[probe] = time.time()
                    next_probe += 1.0
                await asyncio.sleep(0.005)

    @staticmethod
    def _probe(n: int) -> bytes:
        return orjson.dumps({
            "event_id": f"soak-probe-{uuid.uuid4().hex}", "type": "contact_offered",
            "ts": dt.datetime.now(dt.UTC).isoformat(), "contact_id": f"probe-{n}",
            "queue": "probe", "channel": "voice",
        })

    async def _listen(self, redis: Any) -> None:
        pubsub = redis.pubsub()
        await pubsub.subscribe(f"{self.dep.env['KPI_REDIS_PREFIX']}updates")
        key = f"{self.dep.env['KPI_REDIS_PREFIX']}24h:queue:probe"
        while True:
            try:
                async for m in pubsub.listen():
                    if m["type"] == "message":
                        msg = orjson.loads(m["data"])
                        if msg["key"] == key:
                            now = time.time()
                            for i in range(1, int(msg["row"]["contacts_offered"]) + 1):
                                self.seen.setdefault(i, now)
            except Exception:  # noqa: BLE001 - Redis restarts during the soak: listen again
                await asyncio.sleep(1.0)
                pubsub = redis.pubsub()
                await pubsub.subscribe(f"{self.dep.env['KPI_REDIS_PREFIX']}updates")

    async def _faults(self) -> None:
        plan = [(0.25, "broker restart", self._broker), (0.5, "Redis restart", self._redis),
                (0.75, "worker SIGKILL", self._kill)]
        for share, name, act in plan:
            await asyncio.sleep(max(0.0, self.t0 + share * self.seconds - time.time()))
            self.faults.append((time.time() - self.t0, name))
            await act()

    async def _broker(self) -> None:
        await asyncio.to_thread(_script, "kafka.sh", "stop")
        await asyncio.sleep(15)
        await asyncio.to_thread(_script, "kafka.sh", "start")

    async def _redis(self) -> None:
        await asyncio.to_thread(_script, "redis.sh", "stop")
        await asyncio.sleep(10)
        await asyncio.to_thread(_script, "redis.sh", "start")

    async def _kill(self) -> None:
        victim = self.ports.pop(0)
        self.dep.kill(victim)
        self.ports.append(self.dep.start_worker())

    # --- sampling ----------------------------------------------------------------------------
    async def _sample_loop(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_S)
            try:
                self.samples.append(await asyncio.to_thread(self._sample))
            except Exception as exc:  # noqa: BLE001 - a sample during a fault may fail
                self.samples.append({"t": time.time() - self.t0, "error": str(exc)[:200]})

    def _sample(self) -> dict[str, Any]:
        t = time.time() - self.t0
        rss = 0.0
        for proc, _, _ in self.dep.workers:
            with contextlib.suppress(psutil.Error):
                rss = max(rss, psutil.Process(proc.pid).memory_info().rss / 2**20)
        since = time.time() - 3 * SAMPLE_S  # probes of the last 30 s that arrived
        recent = [(self.seen[i] - s) * 1000 for i, s in self.sent.items()
                  if i in self.seen and s >= since]
        lag = None
        try:
            ends = self.dep.end_offsets()
            st = self.dep.status(self.ports[-1])
            if st:
                view = st["view_offsets"]
                fam = {t: f for f, t in self.dep.topics.items()}
                lag = sum(max(0, end - 1 - view.get(str(p), {}).get(fam[tp], -1))
                          for (tp, p), end in ends.items() if end)
        except Exception:  # noqa: BLE001 - the broker may be away right now
            lag = None
        p99 = sorted(recent)[max(0, int(len(recent) * 0.99) - 1)] if recent else None
        return {"t": round(t, 1), "rss_mb": round(rss, 1), "lag": lag,
                "latency_p99_ms": None if p99 is None else round(p99, 1)}

    # --- the verdict ------------------------------------------------------------------------
    def _result(self) -> dict[str, Any]:
        port = self.ports[-1]
        live = self.dep.get(port, "/api/snapshot")
        out = subprocess.run(
            [sys.executable, "-m", "stream_app", "replay", str(self.input), "--at",
             live["as_of"], "--format", "json"],
            cwd=ROOT, env=self.dep.env, capture_output=True, check=True, timeout=1800,
        )
        problems = diff(json.loads(out.stdout), live)
        lat = [(self.seen[i] - s) * 1000 for i, s in self.sent.items() if i in self.seen]
        good = [s for s in self.samples if "error" not in s]
        rss = [s["rss_mb"] for s in good if s["rss_mb"]]
        return {
            "seconds": self.seconds, "rate": self.rate, "events": self.produced,
            "faults": self.faults, "samples": self.samples,
            "equals_replay": not problems, "differences": problems[:10],
            "latency_p50_ms": statistics.median(lat) if lat else None,
            "latency_p99_ms": sorted(lat)[max(0, int(len(lat) * 0.99) - 1)] if lat else None,
            "probes": len(self.sent), "probes_lost": len(self.sent) - len(lat),
            "rss_mb_max": max(rss) if rss else None,
            "lag_max": max((s["lag"] for s in good if s["lag"] is not None), default=None),
        }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = [s for s in result["samples"] if "error" not in s]
    t = [s["t"] / 60 for s in good]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    series = [("rss_mb", "worker RSS (MB, largest)"), ("latency_p99_ms",
              "event -> Redis p99 (ms)"), ("lag", "consumer lag (messages)")]
    for ax, (key, title) in zip(axes, series, strict=True):
        ax.plot(t, [s[key] if s[key] is not None else float("nan") for s in good], lw=1.5)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        for at, name in result["faults"]:
            ax.axvline(at / 60, color="red", ls="--", lw=1)
            if key == "rss_mb":
                ax.annotate(name, (at / 60, ax.get_ylim()[1]), fontsize=8, color="red",
                            rotation=90, va="top", ha="right")
    axes[-1].set_xlabel("minutes")
    fig.suptitle(f"soak: {result['rate']:.0f} events/s for {result['seconds'] / 60:.0f} min, "
                 f"equals replay: {result['equals_replay']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(result: dict[str, Any]) -> str:
    lines = ["| minute | RSS MB | p99 ms | lag |", "|---|---|---|---|"]
    for s in result["samples"]:
        if "error" in s:
            lines.append(f"| {s['t'] / 60:.1f} | – | – | (sample failed: fault) |")
        else:
            lines.append(f"| {s['t'] / 60:.1f} | {s['rss_mb']} | {s['latency_p99_ms']} "
                         f"| {s['lag']} |")
    return "\n".join(lines) + "\n"


def run_soak(dep: Deployment, seconds: float, rate: float, work: Path,
             out_dir: Path) -> dict[str, Any]:
    try:
        result = asyncio.run(Soak(dep, seconds, rate, work).run())
    finally:
        dep.stop_all()  # the workers outlived the run before: a busy machine for the next
    day = dt.date.today().isoformat()
    # stamped to the minute like the results file: a second soak the same day keeps the first
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%MZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    plot(result, out_dir / f"soak-{stamp}.png")
    (out_dir / f"soak-{stamp}.md").write_text(
        f"# Soak {day}: {rate:.0f} events/s for {seconds / 60:.0f} min\n\n"
        f"faults: {', '.join(f'{n} at {t / 60:.1f} min' for t, n in result['faults'])}\n\n"
        f"equals replay: {result['equals_replay']}\n\n" + table(result))
    return result
