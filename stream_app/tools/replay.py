"""``kpi-stream replay``: stream JSONL files through the offline engine."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import orjson
import typer

from stream_app.definitions import load_definitions
from stream_app.settings import get_settings
from tables.definitions import DefinitionsError
from tables.engine import Replayer
from tables.events import parse_ts, to_us
from tables.state import Config

_CHUNK = 1 << 20


def iter_chunks(stream: BinaryIO) -> Iterator[list[bytes]]:
    """Lists of lines without their newline, read in 1 MiB chunks (never the whole file)."""
    rest = b""
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield lines
    if rest:
        yield [rest]


def iter_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines without their newline, read in 1 MiB chunks (never the whole file)."""
    for lines in iter_chunks(stream):
        yield from lines


@contextmanager
def gc_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def config(definitions: str | None = None) -> Config:
    """The engine's configuration: settings, and the definitions of ``definitions`` (a file)
    or else of ``KPI_RULES_FILE``. A broken definitions file stops here, naming the key."""
    settings = get_settings()
    try:
        defs = load_definitions(definitions or settings.rules_file or None, settings)
    except DefinitionsError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return Config.from_settings(settings, defs)


def parse_at(at: str | None) -> int | None:
    if at is None:
        return None
    ts = parse_ts(at)
    if ts is None:
        raise typer.BadParameter(f"--at {at!r} is not an ISO-8601 time with an offset or Z")
    return to_us(ts)


@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """A JSONL input (``-``: stdin), closed afterwards unless it is stdin."""
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as stream:
        yield stream


def feed_paths(rep: Replayer, paths: list[str]) -> None:
    """Stream JSONL files (``-``: stdin) through the engine, 1 MiB at a time."""
    for path in paths:
        stream: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        try:
            # The state holds millions of long-lived objects and makes no cycles:
            # the cyclic collector would only walk them again and again (~10 %).
            with gc_paused():
                for lines in iter_chunks(stream):
                    rep.feed_lines(lines)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()


def replay_paths(
    paths: list[str], at: str | None = None, cfg: Config | None = None,
    definitions: str | None = None,
) -> Replayer:
    rep = Replayer(cfg or config(definitions), parse_at(at))
    feed_paths(rep, paths)
    return rep


def replay_snapshot(
    paths: list[str], at: str | None = None, definitions: str | None = None,
) -> dict[str, Any]:
    """The snapshot of a replay of ``paths``: what ``kpi-stream replay`` prints.

    The collector stays paused through the snapshot too: it allocates a few hundred
    thousand aggregates beside the millions of the state, and the first collection
    after the pause would walk all of them (~40 % of the snapshot's time)."""
    with gc_paused():
        return replay_paths(paths, at, definitions=definitions).snapshot()


def run_replay(paths: list[str], at: str | None, fmt: str, definitions: str | None = None) -> None:
    try:
        snap = replay_snapshot(paths, at, definitions)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {exc.filename}: {exc.strerror}") from exc
    if fmt == "json":
        sys.stdout.buffer.write(orjson.dumps(snap, option=orjson.OPT_INDENT_2) + b"\n")
    elif fmt == "table":
        from stream_app.outputs.render import print_snapshot_table

        print_snapshot_table(snap)
    else:
        raise typer.BadParameter("--format must be json or table")
