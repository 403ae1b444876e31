"""Interval report rows as CSV: one header row, local ISO times, an empty cell for null.

Shared by ``kpi-stream report --format csv`` and the worker's
``/api/intervals?format=csv`` (the wallboard's download link), so a spreadsheet
or Looker Studio sees the same columns from both.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, TextIO

from tables import kpis

HEAD = ("interval_start", "interval_end", "scope")
FIELDS = (*HEAD, *kpis.BUCKETED_NAMES)


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FIELDS)
    for row in rows:
        w.writerow(["" if row.get(f) is None else row[f] for f in FIELDS])


def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    write_csv(rows, out)
    return out.getvalue()
