"""``kpi-stream convert``: a vendor's records in, contract JSONL out (the backfill path).

Deterministic by construction: no wall clock, no randomness, state in memory starting
empty - the same input always gives the same lines, the same ``event_id`` s. It is also
the bench every mapping is tested on: the gateway and ``tail`` must produce exactly what
``convert`` writes for the same input.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import orjson

from connectors.asterisk import QueueLogConverter
from connectors.base import ConnectorError, Summary
from connectors.mapping import Options, memory_pipeline
from connectors.sources import ASTERISK, MAPPERS, READERS


@contextmanager
def _open(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ConnectorError(f"cannot read {path}: {exc.strerror}; check the path") from exc
    try:
        yield handle
    finally:
        handle.close()


def convert(source: str, paths: list[str], out: BinaryIO, *, options: Options | None = None,
            wrapup: float = 0.0, customer_salt: str | None = None) -> Summary:
    """Write the events of ``paths`` (``-`` = stdin; several files are one continuous
    input, in the order given) to ``out``; return the summary."""
    options = options or Options()
    paths = paths or ["-"]
    if source == ASTERISK:
        return _convert_queue_log(paths, out, options, wrapup, customer_salt)
    if source not in MAPPERS:
        raise ConnectorError(f"unknown source {source!r}")
    summary = Summary()
    pipeline = memory_pipeline(options, [source])
    mapper = pipeline.mappers[source]
    for path in paths:
        with _open(path) as stream:
            for record in READERS[source](stream):
                summary.records += 1
                payload = mapper.parse(record) if record is not None else None
                if payload is None:
                    summary.skipped["unparsable_record"] += 1
                    continue
                # a redelivered body yields its first events again, as from the gateway:
                # the engine drops them as duplicates, and both paths stay identical
                try:
                    outcome, again = pipeline.process(source, payload, None)
                except Exception as exc:  # noqa: BLE001 - one bad record never stops a backfill
                    summary.skipped[f"mapping_error:{type(exc).__name__}"] += 1
                    continue
                if again:
                    summary.notes["redelivered_payload"] += 1
                summary.take(outcome)
                _write(out, outcome.events)
    return summary


def _convert_queue_log(paths: list[str], out: BinaryIO, options: Options, wrapup: float,
                       salt: str | None) -> Summary:
    converter = QueueLogConverter(options.agents, wrapup, salt)
    for path in paths:
        with _open(path) as stream:
            # split on b"\n" only, exactly as ``tail`` does, so both see the same lines
            for raw in stream:
                _write(out, converter.feed(raw.decode("utf-8", "replace")))
    _write(out, converter.finish())
    return converter.summary


def _write(out: BinaryIO, events: list[dict[str, object]]) -> None:
    if events:
        out.write(b"".join(orjson.dumps(ev) + b"\n" for ev in events))
