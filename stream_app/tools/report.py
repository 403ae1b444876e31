"""``kpi-stream report``: interval reports from JSONL files, streamed with bounded memory.

Rows come out as the intervals become final (older than the retention), so a
month of events never sits in memory at once. Formats: ``json`` (``{"rows":
[...]}``, one row per line), ``csv`` (one header row, local ISO times, an
empty cell for null: ready for a spreadsheet or Looker Studio) and ``table``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

import orjson
import typer

from stream_app.outputs.intervals import write_csv
from stream_app.outputs.render import PATTERNS, fmt
from stream_app.tools.replay import config, gc_paused, iter_chunks, open_input, parse_at
from tables import kpis
from tables.report import ReportEngine, Row


def report_rows(paths: list[str], interval: str, at: str | None,
                definitions: str | None) -> Iterator[Row]:
    try:
        engine = ReportEngine(config(definitions), interval, parse_at(at))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    for path in paths:
        with open_input(path) as stream, gc_paused():
            for lines in iter_chunks(stream):
                yield from engine.feed_lines(lines)
    yield from engine.finish()


def write_json(rows: Iterator[Row], out: TextIO) -> None:
    out.write('{"rows": [')
    first = True
    for row in rows:
        out.write("\n  " if first else ",\n  ")
        out.write(orjson.dumps(row).decode())
        first = False
    out.write("\n]}\n")


def write_table(rows: Iterator[Row], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = kpis.columns()
    table = Table(title="kpi-stream interval report")
    for head in ("start", "end", "scope", *(k.label for k in cols)):
        table.add_column(head)
    for row in rows:
        if row["scope"].startswith(("agent:", "product:")):
            continue
        table.add_row(row["interval_start"], row["interval_end"], row["scope"],
                      *(fmt(row.get(k.name), PATTERNS[k.fmt]) for k in cols))
    Console(file=out, width=None if out.isatty() else 200).print(table)


def run_report(paths: list[str], interval: str, at: str | None, fmt: str,
               definitions: str | None) -> None:
    writers = {"json": write_json, "csv": write_csv, "table": write_table}
    if fmt not in writers:
        raise typer.BadParameter("--format must be json, csv or table")
    try:
        writers[fmt](report_rows(paths, interval, at, definitions), sys.stdout)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {exc.filename}: {exc.strerror}") from exc
