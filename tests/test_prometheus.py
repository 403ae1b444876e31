"""The worker's ``/metrics`` on the real stack, and a real Prometheus server scraping it.

Known events go to a real worker deployment; its ``/metrics`` (parsed with
prometheus_client's own parser) must equal its ``/api/snapshot`` for every row
and KPI (nulls absent), and a real Prometheus (Debian package, started by
``infra/prometheus.sh``) scraping the worker must answer PromQL with the same
numbers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stream_app.outputs.metrics import parse_as_of, split_scope
from stream_app.tools.producer import produce_lines
from tables.kpis import BUCKETED_NAMES as KPI_FIELDS
from tables.kpis import LIVE_NAMES as LIVE_FIELDS
from tests.livehelp import ROOT, Deployment, free_port

pytestmark = pytest.mark.stack

Key = tuple[str, tuple[tuple[str, str], ...]]  # metric name, sorted labels


@pytest.fixture
def deployment(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(kafka_bootstrap, redis_url, tmp_path)
    yield dep
    dep.stop_all()


def known_events(base: float) -> list[bytes]:
    """Hand-computed (seconds after ``base``): all scope asa 21 s, service level 1/3,
    queue tech has an abandoned contact (asa null) and one still waiting."""
    def e(etype: str, sec: float, **fields: Any) -> bytes:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + sec)) + "Z"
        return orjson.dumps({"event_id": f"{etype}-{sec}", "type": etype, "ts": ts, **fields})

    good = [
        e("contact_offered", 0, contact_id="c1", queue="billing", channel="voice"),
        e("contact_answered", 12, contact_id="c1", agent_id="ann"),
        e("contact_offered", 3, contact_id="c2", queue="billing", channel="chat"),
        e("contact_answered", 33, contact_id="c2", agent_id="bob"),
        e("contact_offered", 5, contact_id="c3", queue="tech", channel="voice"),
        e("contact_abandoned", 40, contact_id="c3"),
        e("contact_offered", 60, contact_id="c4", queue="tech", channel="voice"),
        e("ticket_opened", 5, ticket_id="t1", queue="billing", channel="email"),
        e("ticket_replied", 20, ticket_id="t1", agent_id="ann"),
        e("ticket_resolved", 50, ticket_id="t1", contacts=1),
        e("ticket_opened", 10, ticket_id="t2", queue="tech", channel="email"),
        e("survey_sent", 15, survey_id="s1", kind="csat", queue="billing", channel="voice"),
        e("survey_response", 45, survey_id="s1", kind="csat", score=5, queue="billing",
          channel="voice", agent_id="ann"),
        e("survey_response", 70, survey_id="s2", kind="nps", score=10, queue="tech",
          channel="voice"),
    ]
    return [*good, good[0], b"{not json"]  # a duplicate and a dead letter


# --- reading the worker ------------------------------------------------------------------------
def http_text(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return str(r.read().decode())


def scrape(dep: Deployment, port: int) -> dict[Key, float]:
    try:
        text = http_text(f"http://127.0.0.1:{port}/metrics")
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"the worker's /metrics answered HTTP {exc.code}:\n"
                             f"{dep.logs()}") from exc
    out: dict[Key, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def expected_samples(snap: dict[str, Any], live_fields: tuple[str, ...] = LIVE_FIELDS
                     ) -> dict[Key, float | None]:
    """Every series the snapshot implies, None for a null KPI (no sample)."""
    out: dict[Key, float | None] = {}
    for row in snap["rows"]:
        scope_type, scope = split_scope(row["scope"])
        if row["window"] == "now":
            labels: tuple[tuple[str, str], ...] = (("scope", scope), ("scope_type", scope_type))
            fields = live_fields
        else:
            labels = (("scope", scope), ("scope_type", scope_type), ("window", row["window"]))
            fields = KPI_FIELDS
        for f in fields:
            out[(f"kpi_{f}", labels)] = None if row[f] is None else float(row[f])
    return out


def differences(expected: dict[Key, float | None], got: dict[Key, float]) -> list[str]:
    problems = [f"{k}: expected {v}, got {got.get(k)}" for k, v in expected.items()
                if got.get(k) != v]
    scoped = {k for k in got if any(name == "scope" for name, _ in k[1])}
    problems += [f"{k}: not in the snapshot" for k in scoped - expected.keys()]
    return problems


def matched_scrape(dep: Deployment, port: int, tries: int = 40) -> tuple[dict[str, Any],
                                                                         dict[Key, float]]:
    """A /metrics scrape and an /api/snapshot of the same publish (same as_of)."""
    for _ in range(tries):
        got = scrape(dep, port)
        snap = dep.get(port, "/api/snapshot")
        if got.get(("kpi_snapshot_timestamp_seconds", ())) == parse_as_of(snap["as_of"]):
            return snap, got
        time.sleep(0.1)
    raise AssertionError(f"no /metrics scrape matched an /api/snapshot in {tries} tries")


# --- a real Prometheus -------------------------------------------------------------------------
def prometheus_script(*args: str) -> None:
    subprocess.run([str(ROOT / "infra" / "prometheus.sh"), *args], check=True, cwd=ROOT,
                   timeout=600)


def prom_query(base: str, query: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    body = json.loads(http_text(url))
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def prom_samples(results: list[dict[str, Any]]) -> dict[Key, float]:
    out = {}
    for r in results:
        labels = {k: v for k, v in r["metric"].items() if k not in ("__name__", "job",
                                                                     "instance")}
        out[(r["metric"]["__name__"], tuple(sorted(labels.items())))] = float(r["value"][1])
    return out


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    """``start(target_port) -> base URL`` of a Prometheus scraping that worker every second."""
    data = tmp_path / "prometheus"
    started = []

    def start(target_port: int) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: kpi-worker\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n")
        prometheus_script("start", str(config), str(port), str(data))
        started.append(port)
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        if started:
            prometheus_script("stop", str(data))


def test_metrics_equal_the_snapshot_and_prometheus_serves_them(
    deployment: Deployment, prometheus: Any
) -> None:
    port = deployment.start_worker()
    deployment.wait_http(port)
    base = time.time() - 90  # every event inside the 5m window for the whole test
    asyncio.run(produce_lines(deployment.bootstrap, deployment.topics, known_events(base)))
    deployment.wait_caught_up(port)

    snap, got = matched_scrape(deployment, port)
    rows = {(r["scope"], r["window"]): r for r in snap["rows"]}
    # the events really were counted (else equal-to-the-snapshot proves little)
    assert rows[("all", "15m")]["asa_seconds"] == 21
    assert rows[("all", "15m")]["service_level"] == 1 / 3
    assert rows[("queue:tech", "15m")]["asa_seconds"] is None
    assert rows[("queue:tech", "now")]["contacts_waiting"] == 1
    assert snap["duplicates"] == 1 and snap["rejected"] == {"invalid_json": 1}

    expected = expected_samples(snap)
    assert sum(v is None for v in expected.values()) > 20  # nulls are part of the check
    problems = differences(expected, got)
    assert not problems, f"{len(problems)} differences, first: {problems[:8]}"
    assert got[("kpi_service_level", (("scope", "all"), ("scope_type", "all"),
                                      ("window", "15m")))] == 1 / 3
    assert got[("kpi_rejected", (("reason", "invalid_json"),))] == 1
    assert got[("kpi_duplicates", ())] == 1
    assert abs(got[("kpi_last_publish_timestamp_seconds", ())] - time.time()) < 30

    # A real Prometheus scraping the worker answers PromQL with the same numbers.
    prom = prometheus(port)
    deadline = time.monotonic() + 60
    problems = ["no query yet"]
    while time.monotonic() < deadline:
        # The clock-dependent live KPIs move with every publish: compared below.
        moving = ("longest_wait_seconds", "state_seconds")
        expected = expected_samples(deployment.get(port, "/api/snapshot"),
                                    tuple(f for f in LIVE_FIELDS if f not in moving))
        got = prom_samples(prom_query(prom, '{__name__=~"kpi_.+",scope!=""}'))
        got = {k: v for k, v in got.items() if k[0] not in {f"kpi_{f}" for f in moving}}
        problems = differences(expected, got)
        if not problems:
            break
        time.sleep(0.5)
    assert not problems, f"{len(problems)} differences, first: {problems[:8]}"

    sl = prom_query(prom, 'kpi_service_level{window="15m",scope_type="all"}')
    assert [float(r["value"][1]) for r in sl] == [1 / 3]
    assert prom_query(prom, 'kpi_asa_seconds{window="15m",scope_type="queue",scope="tech"}') == []
    wait = prom_query(prom, 'kpi_longest_wait_seconds{scope_type="queue",scope="tech"}')
    assert len(wait) == 1 and 0 < float(wait[0]["value"][1]) < 600
    up = prom_query(prom, "up")
    assert [r["value"][1] for r in up] == ["1"]
