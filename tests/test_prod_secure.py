"""A real worker on a SASL_SSL cluster (tests/kafkasecure.py): it computes exactly what the
offline replay does, and a wrong password or an untrusted CA stops it within seconds saying
which. Every client here (producer, end offsets) is built from ``client_kwargs``, as the
worker's are. The helpers at the top are shared by the other live ``test_prod_*`` tests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_app.kafka.client import Cluster, KafkaSecurity, client_kwargs
from stream_app.tools.producer import produce_lines
from stream_app.tools.simulator.run import generate_events
from tables.compare import diff
from tests import kafkasecure as ks
from tests.livehelp import ROOT, Deployment

pytestmark = [pytest.mark.stack, pytest.mark.timeout(400)]


# --- shared by the live test_prod_* tests -----------------------------------------------------


def contract_events(seconds: float = 120, rate: float = 20, seed: int = 1) -> list[bytes]:
    """A few hundred contract events ending now (live and replay clocks agree)."""
    return list(generate_events(rate=rate, duration=seconds, seed=seed,
                                start_epoch=time.time() - seconds, bad_share=0.02))


async def _end_offsets(target: Any, dep: Deployment) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(**client_kwargs(target))
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in dep.topics.values() for p in range(dep.partitions)]
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}
    finally:
        await consumer.stop()


def wait_caught_up(dep: Deployment, port: int, target: Any, deadline_s: float = 180) -> None:
    """Until ``/api/status`` view offsets reach the input topics' end offsets."""
    ends = asyncio.run(_end_offsets(target, dep))
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if dep.caught_up(port, ends):
            time.sleep(1.0)  # one more publish
            return
        assert dep.alive(), f"worker died:\n{dep.logs()}"
        time.sleep(0.3)
    raise AssertionError(f"not caught up in {deadline_s}s: {ends}\n{dep.logs()}")


def replay_differences(dep: Deployment, live: dict[str, Any], lines: list[bytes]) -> list[Any]:
    """``kpi-stream replay FILE --at <as_of>`` (with the deployment's settings) vs ``live``."""
    path = dep.tmp / "input.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = subprocess.run(
        [sys.executable, "-m", "stream_app", "replay", str(path), "--at", live["as_of"]],
        cwd=ROOT, capture_output=True, check=True, env=dep.env, timeout=120,
    )
    problems: list[Any] = diff(json.loads(out.stdout), live)
    return problems


def assert_equals_replay(dep: Deployment, port: int, lines: list[bytes]) -> dict[str, Any]:
    live: dict[str, Any] = dep.get(port, "/api/snapshot")
    problems = replay_differences(dep, live, lines)
    assert not problems, f"{len(problems)} differences, first: {problems[:8]}"
    totals = next(r for r in live["rows"] if r["scope"] == "all" and r["window"] == "24h")
    assert totals["contacts_offered"] > 50 and live["rejected"]
    return live


# --- the secured cluster ------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ks.SecureBroker]:
    try:
        with ks.secure_broker(tmp_path_factory.mktemp("secure-kafka")) as b:
            yield b
    except ks.SecureBrokerError as exc:
        pytest.fail(f"the SASL_SSL test broker did not start: {exc}", pytrace=False)


def security_env(b: ks.SecureBroker, **over: str) -> dict[str, str]:
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": b.username,
        "KAFKA_SASL_PASSWORD": b.password,
        "KAFKA_SSL_CAFILE": str(b.ca_file),
        **over,
    }


def test_worker_on_sasl_ssl_equals_the_replay(
    broker: ks.SecureBroker, redis_url: str, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    dep = Deployment(broker.bootstrap, redis_url, tmp_path, tag="sec", env=security_env(broker))
    target = Cluster(broker.bootstrap, KafkaSecurity(
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
        sasl_username=broker.username, sasl_password=broker.password,
        ssl_cafile=str(broker.ca_file),
    ))
    try:
        port = dep.start_worker()
        dep.wait_http(port)
        lines = contract_events()
        asyncio.run(produce_lines(target, dep.topics, lines))
        wait_caught_up(dep, port, target)
        assert_equals_replay(dep, port, lines)
        logs = dep.logs(None)
        assert "SASL_SSL, SASL SCRAM-SHA-512 as user 'kpi'" in logs  # describe(), at start
        assert broker.password not in logs
    finally:
        dep.stop_all()
    assert time.monotonic() - t0 < 150


def _start_fails(env: dict[str, str], tmp: Path) -> tuple[int, str, float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "stream_app", "worker"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, **env, "KPI_DATA_DIR": str(tmp / "data")}, timeout=60,
    )
    return proc.returncode, proc.stderr, time.monotonic() - t0


@pytest.mark.parametrize("case", ["wrong password", "untrusted CA"])
def test_misconfigured_worker_exits_within_seconds_saying_why(
    broker: ks.SecureBroker, redis_url: str, tmp_path: Path, case: str
) -> None:
    if case == "wrong password":
        over = {"KAFKA_SASL_PASSWORD": "not-the-password"}
        expected = "SASL authentication failed"
    else:
        over = {"KAFKA_SSL_CAFILE": str(broker.certs.other_ca_file)}
        expected = "TLS verification failed"
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "REDIS_URL": redis_url,
           **security_env(broker, **over)}
    code, stderr, took = _start_fails(env, tmp_path)
    assert code != 0 and expected in stderr, stderr
    assert took < 15, f"took {took:.1f}s"
    assert "not-the-password" not in stderr and broker.password not in stderr
