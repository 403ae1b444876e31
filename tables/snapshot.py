"""The snapshot of contract section 7, built from window aggregates and live state.

Row order: ``all``, then queues, channels, agents and products, each group
sorted by name; within a scope the configured windows in order, then ``now``.
Which KPIs a row carries, and where they are ``null``, is the catalogue's
(:mod:`tables.kpis`). A scope has windowed rows when any window holds a
measurement of it (time in an agent state included); its ``now`` row exists
then too, or on live state alone (waiting contacts, open tickets, logged-in
agents), and ``all`` always has one (section 7).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tables import aggregate as A
from tables import kpis
from tables.live import CenterLive
from tables.state import Config

_GROUPS = ("all", "queue:", "channel:", "agent:", "product:")


def format_ts(ts_us: int) -> str:
    """UTC ISO-8601 with ``Z``; fractions only when the time has them."""
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts_us)
    if t.microsecond == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    if t.microsecond % 1000 == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def scope_order(scope: str) -> tuple[int, str]:
    for i, prefix in enumerate(_GROUPS):
        if scope.startswith(prefix):
            return i, scope
    return len(_GROUPS), scope


def _volume(agg: A.Agg | None) -> int:
    """How much a scope carries, to keep the busiest under a cap."""
    if agg is None:
        return 0
    return (agg[A.OFFERED] + agg[A.ANSWERED] + agg[A.OPENED] + agg[A.RESOLVED]
            + agg[A.CSAT_N] + agg[A.NPS_N] + agg[A.CES_N] + agg[A.STAFFED_US] // 60_000_000)


def fold_beyond_caps(
    cfg: Config, windows: dict[str, dict[str, A.Agg]], live: CenterLive
) -> dict[str, int]:
    """Scopes of a kind beyond its cap (``cfg.caps``) fold into ``<kind>:other``: the
    busiest in the largest window keep their rows (ties by name). Every aggregate is a
    sum, so the fold is exact, and replay and live fold the same scopes. Returns how many
    scopes each kind folded."""
    folded: dict[str, int] = {}
    if not cfg.caps:
        return folded
    largest = max(cfg.windows, key=lambda w: w.minutes).name
    names: set[str] = set(live.scopes)
    for per_scope in windows.values():
        names.update(per_scope)
    for kind, cap in cfg.caps.items():
        prefix = kind + ":"
        mine = [n for n in names if n.startswith(prefix)]
        if len(mine) <= cap:
            continue
        ranked = sorted(mine, key=lambda n: (-_volume(windows[largest].get(n)), n))
        gone = ranked[cap - 1:]  # one place goes to "other" itself
        other = prefix + "other"
        for per_scope in windows.values():
            into = per_scope.get(other)
            if into is not None:  # maybe the roll-up's own aggregate: merge into a copy
                into = per_scope[other] = A.copy(into)
            for n in gone:
                agg = per_scope.pop(n, None)
                if agg is not None:
                    if into is None:
                        into = per_scope[other] = A.initialize()
                    A.merge(into, agg)
        live.fold(gone, other)
        folded[kind] = len(gone)
    return folded


def build(
    cfg: Config,
    clock_us: int,
    windows: dict[str, dict[str, A.Agg]],
    live: CenterLive,
    rejected: dict[str, int],
    duplicates: int,
    folded: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The snapshot; ``folded`` (when given) receives how many scopes each capped kind
    folded into ``<kind>:other``."""
    out = fold_beyond_caps(cfg, windows, live)
    if folded is not None:
        folded.clear()
        folded.update(out)
    bucketed: set[str] = set()
    for per_scope in windows.values():
        bucketed.update(s for s, agg in per_scope.items() if A.has_measurement(agg))
    scopes = sorted(bucketed | live.active_scopes() | {"all"}, key=scope_order)
    ctx = kpis.Context(hourly_cost=cfg.defs.agent_hourly_cost)
    empty = A.initialize()
    rows: list[dict[str, Any]] = []
    for scope in scopes:
        kind = kpis.scope_kind(scope)
        if scope in bucketed:
            for w in cfg.windows:
                agg = windows[w.name].get(scope, empty)
                rows.append({"scope": scope, "window": w.name,
                             **kpis.bucketed_row(agg, kind, ctx)})
        rows.append({"scope": scope, "window": "now", **kpis.live_row(live.get(scope), kind, ctx)})
    return {
        "as_of": format_ts(clock_us),
        "rows": rows,
        "rejected": {k: v for k, v in sorted(rejected.items()) if v},
        "duplicates": duplicates,
    }
