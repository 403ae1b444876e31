"""A readable per-queue summary of a snapshot, for people (``--format table``)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from tables import kpis

#: how each format of the catalogue is written in a terminal
PATTERNS = {
    "count": "{:d}",
    "percent": "{:.1%}",
    "duration": "{:.1f}",
    "score": "{:+.0f}",
    "decimal": "{:.2f}",
}
_COLS = [
    (k.label + (" s" if k.fmt == "duration" else ""), k.name, PATTERNS[k.fmt])
    for k in kpis.columns()
]


def fmt(value: Any, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def print_snapshot_table(snap: dict[str, Any], window: str | None = None) -> None:
    rows = snap.get("rows", [])
    windows = [r["window"] for r in rows if r["scope"] == "all" and r["window"] != "now"]
    window = window or (windows[1] if len(windows) > 1 else (windows[0] if windows else "now"))
    live = {r["scope"]: r for r in rows if r["window"] == "now"}
    table = Table(title=f"kpi-stream as of {snap.get('as_of')} — window {window}")
    table.add_column("scope")
    table.add_column("waiting", justify="right")
    table.add_column("longest", justify="right")
    for head, _, _ in _COLS:
        table.add_column(head, justify="right")
    for r in rows:
        if r["window"] != window or r["scope"].startswith("agent:"):
            continue
        lv = live.get(r["scope"], {})
        table.add_row(
            r["scope"],
            str(lv.get("contacts_waiting", "")),
            fmt(lv.get("longest_wait_seconds"), "{:.0f}s"),
            *[fmt(r.get(key), pat) for _, key, pat in _COLS],
        )
    console = Console(width=None if Console().is_terminal else 170)
    console.print(table)
    rej = snap.get("rejected") or {}
    console.print(
        f"rejected: {sum(rej.values())} "
        + (" ".join(f"{k}={v}" for k, v in rej.items()) if rej else "")
        + f"   duplicates: {snap.get('duplicates', 0)}"
    )
