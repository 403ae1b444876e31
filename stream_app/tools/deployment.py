"""One isolated kpi-stream deployment on a shared broker and Redis: for tests and the bench.

A deployment is an app id, a topic prefix, a Redis prefix and a data directory
of its own, so runs never see each other's data; its workers are real
``kpi-stream worker`` processes, started and stopped by PID, each logging to a
file in the deployment's directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("contact", "ticket", "survey", "agent")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deployment:
    def __init__(
        self,
        bootstrap: str,
        redis_url: str,
        tmp: Path,
        partitions: int = 4,
        tag: str = "t",
        env: dict[str, str] | None = None,
    ) -> None:
        uid = uuid.uuid4().hex[:8]
        self.bootstrap = bootstrap
        self.prefix = f"{tag}{uid}."
        self.partitions = partitions
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REDIS_URL": redis_url,
            "KPI_APP_ID": f"kpi-{tag}{uid}",
            "KPI_TOPIC_PREFIX": self.prefix,
            "KPI_REDIS_PREFIX": f"kpi{tag}{uid}:",
            "KPI_PARTITIONS": str(partitions),
            "KPI_DATA_DIR": str(tmp / "worker-data"),
            "KPI_PUBLISH_INTERVAL": "0.5",
            **(env or {}),
        }
        self.workers: list[tuple[subprocess.Popen[bytes], int, Any]] = []
        self.topics = {f: f"{self.prefix}{f}-events" for f in FAMILIES}

    async def create_topics(self) -> None:
        """The contract topics and the partials topic, as a worker would create them."""
        from stream_app.kafka.worker_topics import ensure_worker_topics
        from stream_app.settings import Settings

        await ensure_worker_topics(
            Settings(
                kafka_bootstrap_servers=self.bootstrap,
                topic_prefix=self.prefix,
                app_id=self.env["KPI_APP_ID"],
                partitions=self.partitions,
            )
        )

    # --- processes ----------------------------------------------------------------------------
    def start_worker(self, **extra_env: str) -> int:
        port = free_port()
        log = open(self.tmp / f"worker-{port}.log", "wb")  # noqa: SIM115 - closed in stop
        env = {**self.env, "KPI_WEB_PORT": str(port), **extra_env}
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream_app", "worker", "--loglevel", "warning"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append((proc, port, log))
        return port

    def kill(self, port: int, sig: int = signal.SIGKILL) -> None:
        for proc, p, log in self.workers:
            if p == port:
                proc.send_signal(sig)
                proc.wait(timeout=60)
                log.close()
        self.workers = [w for w in self.workers if w[1] != port]

    def stop_all(self) -> None:
        for proc, _, log in self.workers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            log.close()
        self.workers = []

    def alive(self) -> bool:
        return all(proc.poll() is None for proc, _, _ in self.workers)

    def logs(self, tail: int | None = 3000) -> str:
        """The workers' logs (the last ``tail`` characters of each, for failure messages)."""
        return "\n".join(
            p.read_text(errors="replace")[-tail if tail else 0 :]
            for p in self.tmp.glob("worker-*.log")
        )

    # --- web --------------------------------------------------------------------------------------
    def get(self, port: int, path: str, timeout: float = 10.0) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return json.loads(r.read())

    def status(self, port: int) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = self.get(port, "/api/status", timeout=5)
            return data
        except OSError:
            return None

    def wait_http(self, port: int, deadline_s: float = 90.0) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            st = self.status(port)
            if st is not None and st["view_ready"]:
                return
            assert self.alive(), f"worker died:\n{self.logs()}"
            time.sleep(0.5)
        raise AssertionError(f"worker on {port} not ready in {deadline_s}s:\n{self.logs()}")

    # --- progress -----------------------------------------------------------------------------
    def end_offsets(self) -> dict[tuple[str, int], int]:
        async def run() -> dict[tuple[str, int], int]:
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
            await c.start()
            try:
                tps = [
                    TopicPartition(t, p)
                    for t in self.topics.values()
                    for p in range(self.partitions)
                ]
                ends = await c.end_offsets(tps)
                return {(tp.topic, tp.partition): off for tp, off in ends.items()}
            finally:
                await c.stop()

        return asyncio.run(run())

    def caught_up_status(self, status: dict[str, Any], ends: dict[tuple[str, int], int]) -> bool:
        """The view includes every input message up to ``ends``, and has read every
        partials record written so far (a summary may arrive before its batch's minutes)."""
        view = status["view_offsets"]
        family = {t: f for f, t in self.topics.items()}
        return not status.get("view_unread") and all(
            end == 0 or view.get(str(p), {}).get(family[t], -1) >= end - 1
            for (t, p), end in ends.items()
        )

    def caught_up(self, port: int, ends: dict[tuple[str, int], int]) -> bool:
        st = self.status(port)
        return st is not None and self.caught_up_status(st, ends)

    def wait_caught_up(self, port: int, deadline_s: float = 180.0) -> None:
        ends = self.end_offsets()
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.caught_up(port, ends):
                time.sleep(1.0)  # one more publish so every worker's view has it
                return
            assert self.alive(), f"worker died:\n{self.logs()}"
            time.sleep(0.5)
        raise AssertionError(f"not caught up in {deadline_s}s: {ends}\n{self.logs()}")
