"""``bench_gateway``: webhooks per second through the gateway into the running Kafka.

The gateway runs in its own process (as in production) and the load comes from this one,
so on a 2-core machine each gets a core. The client is a few lines of asyncio streams on
keep-alive connections rather than an HTTP library: a heavy client would measure itself.
The load is a realistic mix: Amazon Connect contact lifecycles (stateful: each event
reads and writes the gateway's state) and Delighted responses (stateless), every request
authenticated, every answer sent only after Kafka acknowledged. Topics get a fresh
prefix per run, created and deleted here, so the bench never touches live topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from stream_app.settings import Settings

TOKEN = "bench-" + uuid.uuid4().hex
ROOT = Path(__file__).resolve().parents[1]


def _payloads(n: int) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    base = time.time() - 600
    arn = "arn:aws:connect:us-east-1:111122223333:instance/bench"
    for i in range(n):
        contact, step = divmod(i, 4)
        if step == 3:
            body = {"event_type": "survey_response.created", "event_id": f"ev-{i}",
                    "event_data": {"id": str(i), "survey_type": "nps", "score": i % 11,
                                   "created_at": int(base + i / 10),
                                   "person": {"id": str(contact)},
                                   "person_properties": {"queue": "bench", "channel": "email"}}}
            out.append(("delighted", orjson.dumps(body)))
            continue
        kind = ("QUEUED", "CONNECTED_TO_AGENT", "COMPLETED")[step]
        at = base + contact / 10
        detail = {"eventType": kind, "contactId": f"c-{contact}", "channel": "VOICE",
                  "queueInfo": {"queueArn": f"{arn}/queue/q{contact % 5}",
                                "enqueueTimestamp": _iso(at)}}
        if step:
            detail["agentInfo"] = {"agentArn": f"{arn}/agent/a{contact % 40}",
                                   "connectedToAgentTimestamp": _iso(at + 5)}
        body = {"id": f"env-{i}", "detail-type": "Amazon Connect Contact Event",
                "source": "aws.connect", "time": _iso(at + 5 * step), "detail": detail}
        out.append(("amazon-connect", orjson.dumps(body)))
    return out


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + "Z"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _client(port: int, jobs: list[tuple[str, bytes]], cursor: list[int],
                  latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while cursor[0] < len(jobs):
            source, body = jobs[cursor[0]]
            cursor[0] += 1
            head = (f"POST /webhooks/{source} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            start = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not status_line.split(b" ")[1].startswith(b"2"):
                errors.append(int(status_line.split(b" ")[1]))
    finally:
        writer.close()


async def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the gateway exited at start; run `kpi-stream gateway` by hand "
                               "to see why (is Kafka up? `make stack`)")
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            line = await reader.readline()
            writer.close()
            if b" 200 " in line:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the gateway did not answer /healthz in time")


async def bench_gateway(n: int, concurrency: int) -> dict[str, float]:
    """Post ``n`` webhooks over ``concurrency`` connections; webhooks/s and latencies."""
    from stream_app.kafka.topics import ensure_topics

    base = Settings()
    prefix = f"bench-gw-{uuid.uuid4().hex[:8]}-"
    settings = base.model_copy(update={"topic_prefix": prefix})
    topics = [*settings.input_topics.values(), settings.dead_letter_topic]
    await ensure_topics(settings.kafka_bootstrap_servers, topics, settings.partitions)
    port = _free_port()
    env = {**os.environ, "KPI_TOPIC_PREFIX": prefix, "KPI_CONNECTORS_TOKEN": TOKEN,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get(
               "PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as state_dir:
        code = ("from pathlib import Path; from connectors.commands import run_gateway, "
                "secrets_from_env; from connectors.gateway import GatewayConfig as C; "
                f"c = C(port={port}, state_dir=Path({state_dir!r})); "
                "c.token, c.secrets = secrets_from_env(); run_gateway(c, 'warning')")
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)
        try:
            await _wait_healthy(port, proc, 30.0)
            jobs = _payloads(n)
            latencies: list[float] = []
            errors: list[int] = []
            cursor = [0]
            start = time.perf_counter()
            await asyncio.gather(*(_client(port, jobs, cursor, latencies, errors)
                                   for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(30)
    await _delete_topics(settings, topics)
    latencies.sort()
    return {
        "webhooks": float(n), "concurrency": float(concurrency), "seconds": elapsed,
        "webhooks_per_s": n / elapsed, "errors": float(len(errors)),
        "latency_p50_ms": 1000 * statistics.median(latencies),
        "latency_p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


async def _delete_topics(settings: Settings, topics: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from stream_app.kafka.client import client_kwargs

    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        with contextlib.suppress(Exception):  # a leftover bench topic harms nothing
            await admin.delete_topics(topics)
    finally:
        await admin.close()


if __name__ == "__main__":
    result = asyncio.run(bench_gateway(int(sys.argv[1]) if len(sys.argv) > 1 else 20000,
                                       int(sys.argv[2]) if len(sys.argv) > 2 else 64))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
