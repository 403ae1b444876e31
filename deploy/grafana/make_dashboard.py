"""Writes the provisioned Grafana dashboard (dashboards/kpi-stream.json).

    python deploy/grafana/make_dashboard.py          # rewrite the JSON next to this file

Generated rather than hand-edited so every panel follows the same conventions
(``max by`` over the snapshot gauges, which every worker exports identically;
``sum by`` over the per-worker histograms) and so the SLA threshold steps come
from the shipped rules (stream_app/outputs/rules.default.toml): change a threshold
there, run this, and the lines on the graphs move with it. The tests check the
committed JSON is what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards" / "kpi-stream.json"
UID = "kpi-stream"
DS = {"type": "prometheus", "uid": "${datasource}"}

sys.path.insert(0, str(HERE.parent.parent))
from tables import kpis  # noqa: E402 - the catalogue of the checkout this file sits in

#: Grafana units and decimals of the catalogue's formats
UNITS = {"percent": ("percentunit", 1), "duration": ("s", 1), "score": ("none", 0),
         "decimal": ("none", 2), "count": ("short", 0)}
# (kpi, title, unit, decimals, min, max): every KPI the catalogue marks for dashboards
KPIS: list[tuple[str, str, str, int | None, float | None, float | None]] = [
    (k.name, k.label, *UNITS[k.fmt], k.lo, k.hi) for k in kpis.CATALOGUE if k.dashboard
]
VOLUMES = tuple(k.name for k in kpis.CATALOGUE
                if k.kind == kpis.COUNT and k.name.startswith(("contacts_", "tickets_"))
                and k.name != "tickets_reopened")
QUANTILES = (0.5, 0.9, 0.95)


def rule_thresholds() -> dict[str, dict[str, Any]]:
    """kpi -> Grafana threshold steps of the default rule on queues (or any scope)."""
    from stream_app.outputs.rules import load_rules

    out: dict[str, dict[str, Any]] = {}
    for rule in sorted(load_rules(), key=lambda r: r.scope != "queue:*"):
        if rule.kpi in out:
            continue
        warn = rule.warn
        if rule.op in ("<", "<="):  # low is bad: red below threshold, amber below warn
            steps = [{"color": "red", "value": None}, {"color": "orange", "value": rule.threshold}]
            if warn is not None:
                steps.append({"color": "green", "value": warn})
            else:
                steps[-1]["color"] = "green"
        else:  # high is bad
            steps = [{"color": "green", "value": None}]
            if warn is not None:
                steps.append({"color": "orange", "value": warn})
            steps.append({"color": "red", "value": rule.threshold})
        out[rule.kpi] = {"mode": "absolute", "steps": steps}
    return out


class Layout:
    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.y = 0
        self.x = 0
        self.row_h = 0
        self.next_id = 1

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x, self.y, self.row_h = 0, self.y + 1, 0


def target(expr: str, legend: str, ref: str = "A") -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref,
            "range": True, "instant": False}


def timeseries(title: str, targets: list[dict[str, Any]], unit: str, *,
               decimals: int | None = None, lo: float | None = None, hi: float | None = None,
               thresholds: dict[str, Any] | None = None, description: str = "") -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {"drawStyle": "line", "lineWidth": 2, "fillOpacity": 8,
                   "showPoints": "never", "spanNulls": False,
                   "thresholdsStyle": {"mode": "dashed+area" if thresholds else "off"}},
        "thresholds": thresholds or {"mode": "absolute",
                                     "steps": [{"color": "green", "value": None}]},
        "color": {"mode": "palette-classic"},
    }
    for key, val in (("decimals", decimals), ("min", lo), ("max", hi)):
        if val is not None:
            defaults[key] = val
    return {"type": "timeseries", "title": title, "description": description,
            "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom",
                                   "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title: str, expr: str, unit: str, thresholds: dict[str, Any] | None = None,
         decimals: int | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit, "color": {"mode": "thresholds"},
        "thresholds": thresholds or {"mode": "absolute",
                                     "steps": [{"color": "blue", "value": None}]},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {"type": "stat", "title": title, "datasource": DS,
            "targets": [target(expr, title)],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"colorMode": "background", "graphMode": "area", "textMode": "value",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                          "values": False}}}


def scoped(metric: str, stype: str, var: str | None, window: bool = True) -> str:
    matchers = ['window="$window"'] if window else []
    matchers.append(f'scope_type="{stype}"')
    if var:
        matchers.append(f'scope=~"${var}"')
    return f"max by (scope) ({metric}{{{','.join(matchers)}}})"


def scope_section(lay: Layout, stype: str, var: str, label: str,
                  thresholds: dict[str, dict[str, Any]]) -> None:
    lay.row(f"Per {label}")
    for kpi, title, unit, decimals, lo, hi in KPIS:
        lay.add(timeseries(f"{title} by {label} ($window)",
                           [target(scoped(f"kpi_{kpi}", stype, var), "{{scope}}")], unit,
                           decimals=decimals, lo=lo, hi=hi, thresholds=thresholds.get(kpi)), 8, 8)
    hist_label = stype  # the wait histogram is labelled queue / channel
    waits = [target(f"histogram_quantile({q:g}, sum by (le, {hist_label}) "
                    f"(rate(kpi_contact_wait_seconds_bucket{{{hist_label}=~\"${var}\"}}[5m])))",
                    f"{{{{{hist_label}}}}} p{round(q * 100)}", chr(ord("A") + i))
             for i, q in enumerate(QUANTILES)]
    lay.add(timeseries(f"Wait p50 / p90 / p95 by {label} (histogram, last 5 min)", waits, "s",
                       decimals=1, lo=0, description="From the wait histogram of every worker "
                       "(sum by le), so it covers contacts answered in the last 5 minutes."),
            8, 8)
    lay.add(timeseries(f"Longest wait by {label} (now)", [
        target(scoped("kpi_longest_wait_seconds", stype, var, window=False),
               "{{scope}} longest wait", "A"),
    ], "s", lo=0, thresholds=thresholds.get("longest_wait_seconds")), 8, 8)
    lay.add(timeseries(f"Volumes by {label} ($window)", [
        target(scoped(f"kpi_{v}", stype, var), "{{scope}} " + v.replace("_", " "),
               chr(ord("A") + i)) for i, v in enumerate(VOLUMES)
    ], "short", lo=0), 8, 8)


def build() -> dict[str, Any]:
    thresholds = rule_thresholds()
    lay = Layout()
    lay.row("Whole center")
    for kpi, title, unit, dec, _, _ in KPIS:
        expr = scoped(f"kpi_{kpi}", "all", None)
        lay.add(stat(f"{title} ($window)", expr, unit, thresholds.get(kpi), dec), 4, 4)
    lay.add(stat("Active SLA alerts",
                 "count(max by (rule, scope) (kpi_sla_breach)) or vector(0)", "none",
                 {"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                {"color": "red", "value": 1}]}, 0), 4, 4)
    lay.add(stat("Contacts waiting (now)", scoped("kpi_contacts_waiting", "all", None, False),
                 "short", decimals=0), 4, 4)
    lay.add(stat("Longest wait (now)", scoped("kpi_longest_wait_seconds", "all", None, False),
                 "s", thresholds.get("longest_wait_seconds"), 0), 4, 4)
    lay.add(stat("Offered ($window)", scoped("kpi_contacts_offered", "all", None), "short",
                 decimals=0), 4, 4)
    lay.add(stat("Open tickets (now)", scoped("kpi_open_tickets", "all", None, False), "short",
                 decimals=0), 4, 4)

    scope_section(lay, "queue", "queue", "queue", thresholds)
    scope_section(lay, "channel", "channel", "channel", thresholds)

    lay.row("Pipeline")
    lay.add(timeseries("Events processed per second by type", [
        target("sum by (type) (rate(kpi_events_processed_total[5m]))", "{{type}}")], "ops",
        lo=0), 8, 7)
    lay.add(timeseries("Consumer lag (messages)", [
        target("sum(kpi_consumer_lag)", "lag")], "short", lo=0), 8, 7)
    lay.add(timeseries("Event to publish, p95", [
        target("histogram_quantile(0.95, sum by (le) "
               "(rate(kpi_event_to_publish_seconds_bucket[5m])))", "p95")], "s", lo=0), 8, 7)

    def scope_var(name: str, stype: str) -> dict[str, Any]:
        return {"type": "query", "name": name, "label": name.capitalize(), "datasource": DS,
                "query": {"query": f'label_values(kpi_contacts_offered{{scope_type="{stype}"}}, '
                                   'scope)', "refId": f"{name}-values"},
                "definition": f'label_values(kpi_contacts_offered{{scope_type="{stype}"}}, scope)',
                "refresh": 2, "multi": True, "includeAll": True, "allValue": ".*",
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "sort": 1}

    windows = ["5m", "15m", "1h", "24h"]
    return {
        "uid": UID, "title": "Contact center KPIs", "tags": ["kpi-stream", "sla"],
        "timezone": "browser", "editable": True, "graphTooltip": 1, "schemaVersion": 39,
        "version": 1, "refresh": "10s", "time": {"from": "now-3h", "to": "now"},
        "description": "Live customer-service KPIs of kpi-stream. The dashed lines and "
                       "areas are the SLA thresholds of the default rules file.",
        "templating": {"list": [
            {"type": "datasource", "name": "datasource", "label": "Prometheus",
             "query": "prometheus", "current": {"text": "Prometheus", "value": "prometheus"}},
            {"type": "custom", "name": "window", "label": "KPI window",
             "query": ",".join(windows),
             "current": {"selected": True, "text": "15m", "value": "15m"},
             "options": [{"selected": w == "15m", "text": w, "value": w} for w in windows]},
            scope_var("queue", "queue"),
            scope_var("channel", "channel"),
        ]},
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
             "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
             "name": "Annotations & Alerts", "type": "dashboard"},
        ]},
        "panels": lay.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(HERE.parent.parent)}")
