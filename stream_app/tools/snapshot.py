"""``kpi-stream snapshot``: the live snapshot from a running worker, or from Redis."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from typing import Any

import orjson
import redis
import typer

from stream_app.settings import get_settings


def fetch_snapshot(url: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    s = get_settings()
    base = url or f"http://{s.web_host}:{s.web_port}"
    with urllib.request.urlopen(base.rstrip("/") + "/api/snapshot", timeout=timeout) as resp:
        data: dict[str, Any] = orjson.loads(resp.read())
        return data


def redis_snapshot() -> dict[str, Any] | None:
    s = get_settings()
    client = redis.Redis.from_url(s.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        raw = client.get(f"{s.redis_prefix}snapshot")
    finally:
        client.close()
    return orjson.loads(raw) if raw else None


def run_snapshot(fmt: str, url: str | None, from_redis: bool = False) -> None:
    snap: dict[str, Any] | None = None
    worker_error: Exception | None = None
    if not from_redis:
        try:
            snap = fetch_snapshot(url)
        except (urllib.error.URLError, OSError) as exc:
            worker_error = exc
    if snap is None:
        try:
            snap = redis_snapshot()
        except (redis.RedisError, OSError) as exc:
            hint = f"no worker answered ({worker_error}) and " if worker_error else ""
            typer.echo(
                f"kpi-stream: {hint}Redis is unreachable ({exc}). Start a worker with "
                "`kpi-stream worker`, or check REDIS_URL.",
                err=True,
            )
            raise typer.Exit(2) from exc
        if snap is None:
            typer.echo("kpi-stream: no snapshot in Redis yet: is a worker running?", err=True)
            raise typer.Exit(2)
    if fmt == "table":
        from stream_app.outputs.render import print_snapshot_table

        print_snapshot_table(snap)
    else:
        sys.stdout.buffer.write(orjson.dumps(snap, option=orjson.OPT_INDENT_2) + b"\n")
