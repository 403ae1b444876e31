"""``kpi-stream snapshot``: the live snapshot from a running worker's web server."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

import orjson
import typer

from stream_app.settings import get_settings


def fetch_snapshot(url: str | None = None, timeout: float = 10.0) -> dict:
    s = get_settings()
    base = url or f"http://{s.web_host}:{s.web_port}"
    with urllib.request.urlopen(base.rstrip("/") + "/api/snapshot", timeout=timeout) as resp:
        return orjson.loads(resp.read())


def run_snapshot(fmt: str, url: str | None) -> None:
    try:
        snap = fetch_snapshot(url)
    except (urllib.error.URLError, OSError) as exc:
        typer.echo(f"kpi-stream: no worker answered ({exc}). Start one with `kpi-stream worker` "
                   "or pass --url.", err=True)
        raise typer.Exit(2) from exc
    if fmt == "table":
        from stream_app.render import print_snapshot_table

        print_snapshot_table(snap)
    else:
        sys.stdout.buffer.write(orjson.dumps(snap, option=orjson.OPT_INDENT_2) + b"\n")
