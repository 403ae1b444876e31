"""A graceful stop on the real broker: SIGTERM mid-stream drains the pending batch, writes
and commits it, and leaves the group. The other worker takes the partitions over at once
(not after the session timeout), nothing is processed twice (no duplicate dead letters),
and its final snapshot equals the offline replay."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream_app.kafka.topics import admin_client
from stream_app.tools.producer import produce_lines
from tests.livehelp import Deployment
from tests.test_prod_limits import _read_all
from tests.test_prod_secure import assert_equals_replay, contract_events

pytestmark = [pytest.mark.stack, pytest.mark.timeout(400)]

SESSION_TIMEOUT = 30  # a worker that vanished without leaving holds its partitions this long


def _produce_slowly(dep: Deployment, lines: list[bytes], chunks: int, pause: float) -> None:
    async def run() -> None:
        step = len(lines) // chunks + 1
        for i in range(0, len(lines), step):
            await produce_lines(dep.bootstrap, dep.topics, lines[i : i + step])
            await asyncio.sleep(pause)

    asyncio.run(run())


def _wait_split(dep: Deployment, a: int, b: int) -> None:
    """Until the group has settled: each worker owns a part, together all partitions."""
    end = time.monotonic() + 60
    while time.monotonic() < end:
        owned = [set(_readyz(p).get("partitions", [])) for p in (a, b)]
        if all(owned) and not owned[0] & owned[1] and len(owned[0] | owned[1]) == dep.partitions:
            return
        time.sleep(0.2)
    raise AssertionError(f"the two workers did not share the partitions:\n{dep.logs()}")


def _readyz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            body: dict[str, Any] = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
    except OSError:
        return {}
    return body


def _events(dep: Deployment, port: int) -> int:
    st = dep.status(port)
    return int(st["events"]) if st else 0


def test_sigterm_mid_stream_drains_commits_and_leaves(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    # Batches close every second: a SIGTERM almost always finds one half absorbed.
    dep = Deployment(kafka_bootstrap, redis_url, tmp_path, tag="stop",
                     env={"KPI_SESSION_TIMEOUT": str(SESSION_TIMEOUT), "KPI_BATCH_WITHIN": "1"})
    lines = contract_events(seconds=1500, rate=30, seed=31)
    try:
        asyncio.run(dep.create_topics())
        a = dep.start_worker()
        b = dep.start_worker()
        dep.wait_http(a)
        dep.wait_http(b)
        _wait_split(dep, a, b)
        producer = threading.Thread(target=_produce_slowly, args=(dep, lines, 30, 0.25))
        producer.start()
        end = time.monotonic() + 90
        while _events(dep, a) < len(lines) // 8 and time.monotonic() < end:
            time.sleep(0.05)
        assert producer.is_alive(), "the stream should still be flowing when A is stopped"
        a_proc = next(proc for proc, port, _ in dep.workers if port == a)
        owned_by_a = _readyz(a)["partitions"]
        t0 = time.monotonic()
        dep.kill(a, signal.SIGTERM)
        stopped = time.monotonic() - t0
        # Read at once, before B is assigned A's partitions and writes or commits for them.
        applied, committed = _applied(dep), asyncio.run(_committed(dep))
        assert a_proc.returncode == 0, dep.logs()
        assert stopped < 25, f"SIGTERM took {stopped:.1f}s"
        # A left the group: B owns every partition well before the session timeout.
        end = time.monotonic() + SESSION_TIMEOUT
        while time.monotonic() < end and len(_readyz(b).get("partitions", [])) < dep.partitions:
            time.sleep(0.2)
        took_over = time.monotonic() - t0
        assert took_over < SESSION_TIMEOUT * 0.6, f"B took {took_over:.1f}s to take over"
        producer.join(timeout=120)
        dep.wait_caught_up(b, deadline_s=240)
        live = assert_equals_replay(dep, b, lines)
    finally:
        dep.stop_all()
    dead = _read_all(dep.bootstrap, dep.prefix + "kpi-dead-letters", dep.partitions)
    where = Counter(
        tuple(dict(r.headers)[h] for h in ("source_topic", "source_partition", "source_offset"))
        for r in dead
    )
    twice = [k for k, n in where.items() if n > 1]
    assert not twice, f"{len(twice)} messages dead-lettered twice, e.g. {twice[:3]}"
    assert len(dead) == sum(live["rejected"].values())
    # Everything A had absorbed (its own count, taken before the drain) it wrote (the
    # changelog's A|p) and committed before leaving: B neither re-reads nor redoes any of it.
    a_log = (dep.tmp / f"worker-{a}.log").read_text(errors="replace")
    found = re.search(r"all (\d+) events this worker absorbed are written and committed "
                      r"\((\d+) in the last batch\)", a_log)
    assert found, a_log[-3000:]
    absorbed = int(found.group(1))
    assert owned_by_a
    written = sum(off + 1 for p in owned_by_a for off in applied[p].values())
    assert absorbed == written, (absorbed, written, found.group(2))
    for p in owned_by_a:
        for family, offset in applied[p].items():
            topic = dep.topics[family]
            assert committed.get((topic, p)) == offset + 1, (topic, p, committed, applied)


async def _committed(dep: Deployment) -> dict[tuple[str, int], int]:
    admin = admin_client(dep.bootstrap)
    await admin.start()
    try:
        got = await admin.list_consumer_group_offsets(dep.env["KPI_APP_ID"])
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in got.items()}


def _applied(dep: Deployment) -> dict[int, dict[str, int]]:
    """The last ``A|p`` of each partition in the changelog: offsets whose writes all went
    out."""
    topic = f"{dep.prefix}{dep.env['KPI_APP_ID']}-kpi-state-changelog"
    out: dict[int, dict[str, int]] = {}
    for r in _read_all(dep.bootstrap, topic, dep.partitions):
        if r.key is not None and r.key.startswith(b"A|") and r.value is not None:
            out[r.partition] = orjson.loads(r.value)["o"]
    return out
