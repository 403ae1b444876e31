"""Snapshot comparison: counts exact, floats within 1e-6, quantiles within the sketch error.

Used by the tests (replay vs. the contract example, live vs. replay) and by
anyone checking two deployments against each other.
"""

from __future__ import annotations

from typing import Any, Final

from tables.sketch import RELATIVE_ACCURACY

QUANTILE_KPIS: Final = frozenset(
    {"wait_p50_seconds", "wait_p90_seconds", "wait_p95_seconds", "resolution_p90_seconds"}
)


def _close(kpi: str, want: Any, got: Any, float_tol: float) -> bool:
    if want is None or got is None or isinstance(want, str) or isinstance(got, str):
        return want == got
    if isinstance(want, bool) or isinstance(got, bool):
        return want == got
    if kpi in QUANTILE_KPIS:
        # Both sides may carry the sketch's error: allow it twice.
        return abs(got - want) <= 2 * RELATIVE_ACCURACY * abs(want) + 1e-9
    if isinstance(want, int) and isinstance(got, int):
        return want == got
    return abs(got - want) <= float_tol * max(1.0, abs(want))


def diff(expected: dict[str, Any], got: dict[str, Any], float_tol: float = 1e-6) -> list[str]:
    """Human-readable differences; empty when the snapshots agree."""
    out: list[str] = []
    for key in ("as_of", "rejected", "duplicates"):
        if expected.get(key) != got.get(key):
            out.append(f"{key}: expected {expected.get(key)!r}, got {got.get(key)!r}")
    want_rows = {(r["scope"], r["window"]): r for r in expected.get("rows", [])}
    got_rows = {(r["scope"], r["window"]): r for r in got.get("rows", [])}
    for rk in sorted(set(want_rows) - set(got_rows)):
        out.append(f"row {rk} missing")
    for rk in sorted(set(got_rows) - set(want_rows)):
        out.append(f"row {rk} unexpected")
    for rk in sorted(set(want_rows) & set(got_rows)):
        w, g = want_rows[rk], got_rows[rk]
        for kpi in sorted(set(w) | set(g)):
            if kpi not in g or kpi not in w:
                out.append(f"{rk} {kpi}: present on one side only")
            elif not _close(kpi, w[kpi], g[kpi], float_tol):
                out.append(f"{rk} {kpi}: expected {w[kpi]!r}, got {g[kpi]!r}")
    if [(r["scope"], r["window"]) for r in expected.get("rows", [])] != [
        (r["scope"], r["window"]) for r in got.get("rows", [])
    ] and not out:
        out.append("rows are in a different order")
    return out


def diff_within(expected: dict[str, Any], got: dict[str, Any],
                float_tol: float = 1e-6) -> list[str]:
    """Like :func:`diff`, but only over what ``expected`` holds: its rows (in its order)
    and their KPIs. For an expectation written for an older version of the contract,
    whose rows and KPIs a newer snapshot extends."""
    keep = {(r["scope"], r.get("window")) for r in expected.get("rows", [])}
    fields = {(r["scope"], r.get("window")): set(r) for r in expected.get("rows", [])}
    rows = [
        {k: v for k, v in r.items() if k in fields[(r["scope"], r.get("window"))]}
        for r in got.get("rows", [])
        if (r["scope"], r.get("window")) in keep
    ]
    return diff(expected, {**got, "rows": rows}, float_tol)
