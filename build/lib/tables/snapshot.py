"""The snapshot of contract section 7, built from window aggregates and live state.

Row order: ``all``, then queues, channels and agents, each group sorted by
name; within a scope the configured windows in order, then ``now``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tables import aggregate as A
from tables.state import Config
from tables.windows import US

_GROUPS = ("all", "queue:", "channel:", "agent:")


def format_ts(ts_us: int) -> str:
    """UTC ISO-8601 with ``Z``; fractions only when the time has them."""
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts_us)
    if t.microsecond == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    if t.microsecond % 1000 == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _order(scope: str) -> tuple[int, str]:
    for i, prefix in enumerate(_GROUPS):
        if scope.startswith(prefix):
            return i, scope
    return len(_GROUPS), scope


def merge_live(parts: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    """Combine per-partition live state: counts add, the oldest wait is the minimum."""
    out: dict[str, list[Any]] = {}
    for part in parts:
        for scope, (waiting, oldest, open_t) in part.items():
            s = out.setdefault(scope, [0, None, 0])
            s[0] += waiting
            if oldest is not None and (s[1] is None or oldest < s[1]):
                s[1] = oldest
            s[2] += open_t
    return out


def live_row(scope: str, state: list[Any] | None, clock_us: int) -> dict[str, Any]:
    waiting, oldest, open_t = state if state else (0, None, 0)
    longest = 0.0 if oldest is None or waiting == 0 else max(0, clock_us - oldest) / US
    return {
        "scope": scope,
        "window": "now",
        "contacts_waiting": waiting,
        "longest_wait_seconds": longest,
        "open_tickets": open_t,
    }


def build(
    cfg: Config,
    clock_us: int,
    windows: dict[str, dict[str, A.Agg]],
    live: dict[str, list[Any]],
    rejected: dict[str, int],
    duplicates: int,
) -> dict[str, Any]:
    largest = max(cfg.windows, key=lambda w: w[1])[0]
    bucketed = {s for s, agg in windows.get(largest, {}).items() if A.has_measurement(agg)}
    live_scopes = {s for s, v in live.items() if v[0] or v[2]} - {
        s for s in live if s.startswith("agent:")
    }
    scopes = sorted(bucketed | live_scopes | {"all"}, key=_order)
    empty = A.result(A.initialize())
    rows: list[dict[str, Any]] = []
    for scope in scopes:
        if scope in bucketed:
            for name, _ in cfg.windows:
                agg = windows[name].get(scope)
                kpis = A.result(agg) if agg is not None else empty
                rows.append({"scope": scope, "window": name, **kpis})
        if not scope.startswith("agent:"):
            rows.append(live_row(scope, live.get(scope), clock_us))
    return {
        "as_of": format_ts(clock_us),
        "rows": rows,
        "rejected": {k: v for k, v in sorted(rejected.items()) if v},
        "duplicates": duplicates,
    }
