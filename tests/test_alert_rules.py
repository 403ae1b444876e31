"""The Prometheus side of the SLA rules and the deployment files.

* ``kpi-stream alerts export`` writes rules that ``promtool check rules`` accepts,
  and the committed deploy/prometheus/rules file is that export of the defaults;
* the deploy files parse (compose, Grafana, Prometheus, Alertmanager) and the
  committed dashboard is what deploy/grafana/make_dashboard.py writes;
* a real Prometheus scraping a real worker fires the exported alert during a real
  breach (and, with the hysteresis of ``clear``, resolves it only past ``clear``),
  and every PromQL query of the dashboard is valid and returns data.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream_app.outputs.alerts_export import export_rules, rule_expr, scope_matchers
from stream_app.outputs.rules import Rule, load_rules
from stream_app.tools.producer import produce_lines
from stream_app.tools.simulator.run import generate_events
from tables import kpis
from tables.snapshot import format_ts
from tests.alerthelp import contacts
from tests.livehelp import ROOT, Deployment, free_port

pytestmark = pytest.mark.stack

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "kpi-stream.json"
CUSTOM_RULES = """
[[rule]]
name = "sl-billing-ish"
kpi = "service_level"
window = "5m"
scope = "queue:bill*"
op = "<="
threshold = 0.5
for = "0s"
severity = "info"

[[rule]]
name = "voice-wait"
kpi = "longest_wait_seconds"
window = "now"
scope = "channel:voice"
op = ">="
threshold = 30
clear = 20
severity = "warning"

[[rule]]
name = "nps everywhere"
kpi = "nps"
window = "24h"
scope = "*"
op = "<"
threshold = -10
min_samples = 5
for = "10m"
"""


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, **kw)


def export(tmp: Path, rules_toml: str | None = None) -> Path:
    env = {**os.environ}
    if rules_toml is not None:
        (tmp / "rules.toml").write_text(rules_toml)
        env["KPI_RULES_FILE"] = str(tmp / "rules.toml")
    else:
        env.pop("KPI_RULES_FILE", None)
    out = run([sys.executable, "-m", "stream_app", "alerts", "export"], env=env)
    assert out.returncode == 0, out.stderr
    path = tmp / "kpi-sla.rules.yml"
    path.write_text(out.stdout)
    return path


def promtool(*args: str) -> None:
    subprocess.run([str(ROOT / "infra" / "prometheus.sh"), "ensure"], check=True, timeout=600)
    out = run(["promtool", *args])
    assert out.returncode == 0, out.stdout + out.stderr


def load_yaml(path: Path) -> Any:
    """PyYAML when the venv has it, else any python3 on PATH that has it (Debian's does)."""
    try:
        import yaml
    except ImportError:
        pass
    else:
        return yaml.safe_load(path.read_text())
    code = "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)"
    for d in os.environ.get("PATH", "").split(os.pathsep):
        py = Path(d) / "python3"
        if py.is_file() and not str(py).startswith(sys.prefix):
            out = run([str(py), "-c", code, str(path)])
            if out.returncode == 0:
                return json.loads(out.stdout)
    pytest.fail("no YAML parser found: install PyYAML (pip) or python3-yaml (apt)")


# --- the exported rules ----------------------------------------------------------------------
def test_exported_rules_pass_promtool(tmp_path: Path) -> None:
    default = export(tmp_path)
    promtool("check", "rules", str(default))
    committed = DEPLOY / "prometheus" / "rules" / "kpi-sla.rules.yml"
    assert committed.read_text() == default.read_text(), (
        "deploy/prometheus/rules is stale: run `kpi-stream alerts export > "
        "deploy/prometheus/rules/kpi-sla.rules.yml`")
    custom_dir = tmp_path / "custom"
    custom_dir.mkdir()
    custom = export(custom_dir, CUSTOM_RULES)
    promtool("check", "rules", str(custom))
    text = custom.read_text()
    assert 'scope_type="queue",scope=~"bill.*"' in text
    assert 'kpi_longest_wait_seconds{scope_type="channel",scope="voice"}' in text
    groups = load_yaml(custom)["groups"][0]["rules"]
    assert [r["alert"] for r in groups] == ["KpiSlaSlBillingIsh", "KpiSlaVoiceWait",
                                            "KpiSlaNpsEverywhere"]
    assert "for" not in groups[0] and "for" not in groups[1]  # 0s: no for at all
    assert groups[2]["for"] == "600s" and groups[2]["labels"]["severity"] == "warning"


def test_scope_globs_become_label_matchers() -> None:
    assert scope_matchers("all") == ['scope_type="all"']
    assert scope_matchers("queue:*") == ['scope_type="queue"']
    assert scope_matchers("channel:voice") == ['scope_type="channel",scope="voice"']
    assert scope_matchers("agent:a?[!x]") == ['scope_type="agent",scope=~"a.[^x]"']
    live = kpis.BY_NAME["contacts_waiting"].scopes  # null in agent and product rows
    assert scope_matchers("*", live) == ['scope_type="all"', 'scope_type="queue"',
                                              'scope_type="channel"']
    assert scope_matchers("c*") == ['scope_type="channel"']
    assert scope_matchers("nothing:*") == []
    # v2: products, and the scope kinds where a KPI applies
    assert scope_matchers("product:router*") == ['scope_type="product",scope=~"router.*"']
    sla = kpis.BY_NAME["tickets_sla_breached"].scopes  # null in agent rows
    assert scope_matchers("*", sla) == ['scope_type="all"', 'scope_type="queue"',
                                        'scope_type="channel"', 'scope_type="product"']
    staff = kpis.BY_NAME["occupancy"].scopes  # all, queues, agents
    assert scope_matchers("*", staff) == ['scope_type="all"', 'scope_type="queue"',
                                          'scope_type="agent"']


def test_v2_rule_kinds_export() -> None:
    rules = {r.name: r for r in load_rules()}
    text = export_rules(list(rules.values()), "rules.default.toml")
    sla = rule_expr(rules["sla-breached"], "KpiSlaSlaBreached") or ""
    assert 'kpi_tickets_sla_breached{scope_type="queue"}' in sla and "> 0" in sla
    product = rule_expr(rules["product-incidents"], "KpiSlaProductIncidents") or ""
    assert 'kpi_tickets_opened{window="1h",scope_type="product"}' in product
    repeat = rule_expr(rules["repeat-contacts"], "KpiSlaRepeatContacts") or ""
    assert "kpi_repeat_contact_rate" in repeat and "kpi_contacts_offered" in repeat
    assert ">= 50" in repeat
    for name in ("KpiSlaSlaBreached", "KpiSlaProductIncidents", "KpiSlaRepeatContacts"):
        assert f'alert: "{name}"' in text


def test_rules_that_cannot_fire_become_comments() -> None:
    rules = [Rule.model_validate(r) for r in (
        {"name": "waiting", "kpi": "contacts_waiting", "window": "now", "scope": "all",
         "op": ">", "threshold": 5, "min_samples": 3},
        {"name": "nowhere", "kpi": "csat", "window": "1h", "scope": "team:*", "op": "<",
         "threshold": 0.5})]
    text = export_rules(rules, "x.toml")
    assert text.endswith("groups:\n  - name: \"kpi-sla\"\n    rules: []\n")
    assert "# waiting: min_samples on contacts_waiting" in text
    assert "# nowhere: scope 'team:*' matches no scope type" in text


# --- the deployment files ----------------------------------------------------------------------
def test_deploy_files_are_valid(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_dashboard",
                                                  DEPLOY / "grafana" / "make_dashboard.py")
    assert spec and spec.loader
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    assert DASHBOARD.read_text() == maker.render(), (
        "the dashboard JSON is stale: run `python deploy/grafana/make_dashboard.py`")
    board = json.loads(DASHBOARD.read_text())
    sl = next(p for p in board["panels"] if p["title"].startswith("Service level by queue"))
    steps = sl["fieldConfig"]["defaults"]["thresholds"]["steps"]
    rule = next(r for r in load_rules() if r.name == "service-level")
    assert [s["value"] for s in steps] == [None, rule.threshold, rule.warn]

    compose = load_yaml(ROOT / "docker-compose.yml")
    assert set(compose["services"]) >= {"kafka", "redis", "prometheus", "alertmanager",
                                         "grafana", "worker", "simulator"}
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.0.")
    for svc in compose["services"].values():
        for vol in svc.get("volumes", ()):
            source = vol.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    for path in (DEPLOY / "grafana" / "provisioning").rglob("*.yml"):
        assert load_yaml(path)["apiVersion"] == 1, path
    assert load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")["route"]["receiver"]
    promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    # Checks by the real tools where this machine has them (make test does not install them).
    if shutil.which("amtool"):
        out = run(["amtool", "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")])
        assert out.returncode == 0, out.stdout + out.stderr
    if shutil.which("docker-compose"):
        out = run(["docker-compose", "-f", "docker-compose.yml", "config", "--quiet"])
        assert out.returncode == 0, out.stdout + out.stderr


# --- a real Prometheus over a real worker ------------------------------------------------------
def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class Stack:
    def __init__(self, dep: Deployment, port: int, prom: str) -> None:
        self.dep, self.port, self.prom = dep, port, prom

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = http_json(f"{self.prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def alerts(self, name: str) -> list[dict[str, Any]]:
        body = http_json(f"{self.prom}/api/v1/alerts")
        return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]

    def produce(self, lines: list[bytes]) -> None:
        asyncio.run(produce_lines(self.dep.bootstrap, self.dep.topics, lines))


def until(what: str, check: Any, deadline_s: float = 90) -> Any:
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {deadline_s}s (last: {last})")


def sure_kpis() -> list[bytes]:
    """Tickets resolved (FCR) and csat / nps / ces responses inside the 15 min window."""
    now = time.time()

    def e(etype: str, ago: float, **fields: Any) -> bytes:
        entity = fields.get("ticket_id") or fields.get("survey_id")
        return json.dumps({"event_id": f"{etype}-{entity}", "type": etype,
                           "ts": format_ts(int((now - ago) * 1000) * 1000), **fields}).encode()

    out = []
    for i, contacts_n in enumerate((1, 1, 2)):
        tid = f"sure-t{i}"
        out += [e("ticket_opened", 300, ticket_id=tid, queue="billing", channel="email"),
                e("ticket_replied", 200, ticket_id=tid, agent_id="ann"),
                e("ticket_resolved", 100, ticket_id=tid, contacts=contacts_n)]
    for kind, score in (("csat", 5), ("nps", 9), ("ces", 6)):
        out.append(e("survey_response", 60, survey_id=f"sure-{kind}", kind=kind, score=score,
                     queue="billing", channel="voice"))
    return out


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("alert-rules")
    dep = Deployment(kafka_bootstrap, redis_url, tmp)
    data = tmp / "prometheus"
    started = False
    try:
        port = dep.start_worker()
        dep.wait_http(port)
        # 15 minutes of realistic traffic, so every KPI of every panel has values, and
        # resolved tickets and surveys of our own: the simulator's take longer than 15 min
        lines = list(generate_events(rate=15, duration=900, seed=41,
                                     start_epoch=time.time() - 900, bad_share=0.0))
        asyncio.run(produce_lines(dep.bootstrap, dep.topics, lines + sure_kpis()))
        dep.wait_caught_up(port)
        short = re.sub(r'(?m)^for = ".*"', 'for = "2s"', (ROOT / "stream_app" / "outputs" /
                                                          "rules.default.toml").read_text())
        rules = export(tmp, short)
        config = tmp / "prometheus.yml"
        config.write_text(
            # /metrics of this center is ~4 MB (every agent's series) and takes 2-3 s
            # while the suite's other workers share the cores; Prometheus caps the
            # scrape timeout at the interval, so a 1 s interval would fail every scrape
            "global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {rules.name}\n"
            "scrape_configs:\n  - job_name: kpi-worker\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        prom_port = free_port()
        subprocess.run([str(ROOT / "infra" / "prometheus.sh"), "start", str(config),
                        str(prom_port), str(data)], check=True, cwd=ROOT, timeout=600)
        started = True
        yield Stack(dep, port, f"http://127.0.0.1:{prom_port}")
    finally:
        if started:
            subprocess.run([str(ROOT / "infra" / "prometheus.sh"), "stop", str(data)],
                           cwd=ROOT, timeout=60)
        dep.stop_all()


def test_prometheus_fires_and_clears_the_exported_alert(stack: Stack) -> None:
    def slow_queue_alert() -> list[dict[str, Any]]:
        return [a for a in stack.alerts("KpiSlaServiceLevel")
                if a["labels"]["scope"] == "qa-slow"]

    stack.produce(contacts("qa-slow", 0, 12, wait=120))  # service level 0 of 12
    firing = until("the alert firing", lambda: [
        a for a in slow_queue_alert() if a["state"] == "firing"])
    labels = firing[0]["labels"]
    assert {k: labels[k] for k in ("rule", "severity", "kpi", "window", "scope_type")} == {
        "rule": "service-level", "severity": "critical", "kpi": "service_level",
        "window": "15m", "scope_type": "queue"}
    assert float(firing[0]["value"]) == 0
    assert "queue:qa-slow" in firing[0]["annotations"]["summary"]

    stack.produce(contacts("qa-slow", 12, 50, wait=3))  # 50 / 62 = 0.806: below clear
    until("0.806 scraped", lambda: stack.query(
        'kpi_service_level{window="15m",scope="qa-slow"} > 0.8'))
    time.sleep(3)
    assert [a["state"] for a in slow_queue_alert()] == ["firing"], "hysteresis broken"
    stack.produce(contacts("qa-slow", 62, 10, wait=1))  # 60 / 72 = 0.833: past clear
    until("the alert resolved", lambda: slow_queue_alert() == [])


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    values = {"$window": "15m", "$queue": ".*", "$channel": ".*"}
    out = []
    for panel in board["panels"]:
        for t in panel.get("targets", ()):
            expr = t["expr"]
            for var, value in values.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"unknown variable in {panel['title']}: {expr}"
            out.append((panel["title"], expr))
    return out


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    queries = dashboard_queries()
    assert len(queries) > 40
    # rate() needs the counters to move between two scrapes: more traffic, once the
    # first values are in Prometheus
    until("the first histogram scrape", lambda: stack.query("kpi_contact_wait_seconds_count"))
    time.sleep(2)
    stack.produce(list(generate_events(rate=15, duration=60, seed=42,
                                       start_epoch=time.time() - 60, bad_share=0.0)))

    def missing() -> list[str]:
        bad = []
        for title, expr in queries:
            result = stack.query(expr)  # an invalid query fails here, not "no data"
            if not any(not math.isnan(float(r["value"][1])) for r in result):
                bad.append(f"{title}: {expr}")
        return bad

    end = time.monotonic() + 90
    gaps = missing()
    while gaps and time.monotonic() < end:
        time.sleep(1)
        gaps = missing()
    assert not gaps, f"{len(gaps)} dashboard queries without data: {gaps[:5]}"
