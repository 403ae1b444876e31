"""Writes the provisioned Grafana dashboard (dashboards/kpi-stream.json).

    python deploy/grafana/make_dashboard.py          # rewrite the JSON next to this file

Generated rather than hand-edited so every panel follows the same conventions
(``max by`` over the snapshot gauges, which every worker exports identically;
``sum by`` over the per-worker histograms) and so the SLA threshold steps come
from the shipped rules (stream_app/outputs/rules.default.toml): change a threshold
there, run this, and the lines on the graphs move with it. KPI names, titles, units
and which scope types a panel can have data for come from the catalogue
(tables/kpis.py), the windows from the worker's default settings, so a KPI or window
added there reaches the dashboard without an edit here. The tests check the committed
JSON is what this writes, and that every query returns data against a real worker.
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
# the catalogue and settings of the checkout this file sits in
from stream_app.settings import Settings  # noqa: E402
from tables import kpis  # noqa: E402

#: Grafana units and decimals of the catalogue's formats
UNITS = {"percent": ("percentunit", 1), "duration": ("s", 1), "score": ("none", 0),
         "decimal": ("none", 2), "money": ("none", 2), "count": ("short", 0)}
Spec = tuple[str, str, str, int | None, float | None, float | None]


def spec(k: kpis.Kpi) -> Spec:
    """(kpi, title, unit, decimals, min, max) of a catalogue entry."""
    return (k.name, k.label, *UNITS[k.fmt], k.lo, k.hi)


def agent_time(k: kpis.Kpi) -> bool:
    """KPIs of agent states: per queue and agent, never per channel (contract §6.2)."""
    return k.applies(kpis.QUEUE) and k.applies(kpis.AGENT) and not k.applies(kpis.CHANNEL)


# every KPI the catalogue marks for dashboards
KPIS: list[Spec] = [spec(k) for k in kpis.CATALOGUE if k.dashboard]
# the staffing row: agents per state now, and the windowed agent KPIs marked for dashboards
STAFFING_NOW = [k for k in kpis.CATALOGUE if k.row == kpis.NOW and agent_time(k)]
STAFFING = [k for k in kpis.CATALOGUE if k.dashboard and k.row == kpis.BUCKETED and agent_time(k)]
# live ticket SLA counts per queue (contract §6.3)
SLA_NOW = [kpis.BY_NAME["tickets_sla_breached"], kpis.BY_NAME["tickets_sla_at_risk"]]
# the products table: incidents, backlog, resolution p90, FCR (contract §6.4)
PRODUCT_COLUMNS = [kpis.BY_NAME[n] for n in ("tickets_opened", "open_tickets",
                                              "resolution_p90_seconds", "fcr_rate")]
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
        k = kpis.BY_NAME[kpi]
        # a channel has no agents (null, so no series); agent KPIs have their own row
        if not k.applies(stype) or agent_time(k):
            continue
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


def live_title(k: kpis.Kpi, per: str) -> str:
    return f"{k.label} by {per} (now)"


def staffing_section(lay: Layout, thresholds: dict[str, dict[str, Any]]) -> None:
    """Agents per state per queue (now), agent KPIs per queue, tickets past their SLA."""
    lay.row("Staffing and ticket SLA per queue")
    for k in STAFFING_NOW:
        lay.add(timeseries(f"{k.label} agents by queue (now)", [
            target(scoped(f"kpi_{k.name}", "queue", "queue", window=False), "{{scope}}")],
            "short", decimals=0, lo=0, description=k.help), 8, 7)
    for k in STAFFING:
        kpi, title, unit, decimals, lo, hi = spec(k)
        lay.add(timeseries(f"{title} by queue ($window)",
                           [target(scoped(f"kpi_{kpi}", "queue", "queue"), "{{scope}}")], unit,
                           decimals=decimals, lo=lo, hi=hi, thresholds=thresholds.get(kpi),
                           description=k.help), 8, 7)
    # a count of tickets past their target: red from the first one (Grafana colours a
    # value from the step at or below it, so a rule's "> 0" would paint 0 red too)
    alarm = {"mode": "absolute", "steps": [{"color": "green", "value": None},
                                           {"color": "red", "value": 1}]}
    for k in SLA_NOW:
        lay.add(timeseries(live_title(k, "queue"), [
            target(scoped(f"kpi_{k.name}", "queue", "queue", window=False), "{{scope}}")],
            "short", decimals=0, lo=0, thresholds=alarm, description=k.help), 8, 7)


def table_target(expr: str, ref: str) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": "{{scope}}", "refId": ref,
            "format": "table", "range": False, "instant": True}


def product_section(lay: Layout) -> None:
    """Incidents per product: tickets opened, backlog, resolution p90 and FCR, as a table
    (one row per product) and the opened / backlog series over time."""
    lay.row("Tickets by product")
    refs = [chr(ord("A") + i) for i in range(len(PRODUCT_COLUMNS))]
    names = {}
    overrides = []
    for ref, k in zip(refs, PRODUCT_COLUMNS, strict=True):
        live = k.row == kpis.NOW
        name = f"{k.label} ({'now' if live else '$window'})"
        names[f"Value #{ref}"] = name
        unit, decimals = UNITS[k.fmt]
        overrides.append({"matcher": {"id": "byName", "options": name},
                          "properties": [{"id": "unit", "value": unit},
                                         {"id": "decimals", "value": decimals}]})
    targets = [table_target(scoped(f"kpi_{k.name}", "product", None, window=k.row != kpis.NOW),
                            ref) for ref, k in zip(refs, PRODUCT_COLUMNS, strict=True)]
    first = names["Value #A"]
    lay.add({"type": "table", "title": "Tickets by product", "datasource": DS,
             "description": "Incidents per product (tickets opened with a product): opened "
                            "and resolution p90 / FCR over the window, open backlog now.",
             "targets": targets,
             "transformations": [
                 {"id": "merge", "options": {}},
                 {"id": "organize", "options": {"excludeByName": {"Time": True},
                                                "renameByName": {"scope": "Product", **names}}},
             ],
             "fieldConfig": {"defaults": {"custom": {"align": "auto"}}, "overrides": overrides},
             "options": {"showHeader": True, "sortBy": [{"displayName": first, "desc": True}],
                         "footer": {"show": False, "reducer": ["sum"], "fields": ""}}}, 12, 9)
    for k in PRODUCT_COLUMNS[:2]:
        live = k.row == kpis.NOW
        title = live_title(k, "product") if live else f"{k.label} tickets by product ($window)"
        lay.add(timeseries(title, [
            target(scoped(f"kpi_{k.name}", "product", None, window=not live), "{{scope}}")],
            "short", decimals=0, lo=0, description=k.help), 6, 9)


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
    for k in STAFFING_NOW[:2]:
        lay.add(stat(f"{k.label} agents (now)", scoped(f"kpi_{k.name}", "all", None, False),
                     "short", decimals=0), 4, 4)
    for k, colour in zip(SLA_NOW, ("red", "orange"), strict=True):
        lay.add(stat(f"Tickets {k.label} (now)", scoped(f"kpi_{k.name}", "all", None, False),
                     "short", {"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                             {"color": colour, "value": 1}]},
                     0), 4, 4)

    staffing_section(lay, thresholds)
    scope_section(lay, "queue", "queue", "queue", thresholds)
    scope_section(lay, "channel", "channel", "channel", thresholds)
    product_section(lay)

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

    windows = Settings.model_fields["windows"].default.split(",")
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
