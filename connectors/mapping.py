"""The one path every webhook payload takes, whether it arrives live or from a file.

``gateway`` (live) and ``convert`` (backfill) both call :meth:`Pipeline.process`, so the
same payloads in the same order give the same events with the same ids. The pipeline
also remembers, per payload, the events it produced: a vendor that redelivers a body
(after a timeout, or because it delivers at least once) gets exactly the same events
again instead of a re-derivation against state that has moved on (which would, say,
count a requester's comment twice).

Renamings and vendor-specific choices come from one optional TOML file (``--config``):
``[agents]``, ``[queues]``, ``[channels]`` tables of ``"vendor value" = "ours"``,
``[twilio.activities]`` (activity name -> agent state), ``[delighted]`` (which person
properties hold queue, channel and agent).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

import orjson

from connectors.base import CHANNELS, STATES, ConnectorError, Event, Outcome, clean_id
from connectors.state import DELIVERY_NS, MemoryState, State

MAX_RECORD = 64 << 20  # a JSON record (or a page array) larger than this is refused


@dataclass
class Options:
    agents: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)
    twilio_activities: dict[str, str] = field(default_factory=lambda: {
        # the activities every TaskRouter workspace starts with
        "Available": "available", "Unavailable": "paused", "Break": "paused",
        "Offline": "offline"})
    delighted: dict[str, str] = field(default_factory=lambda: {
        "queue_property": "queue", "channel_property": "channel",
        "agent_property": "agent", "default_queue": "surveys", "default_channel": "email"})


def load_options(path: str | Path | None) -> Options:
    opts = Options()
    if path is None:
        return opts
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConnectorError(f"cannot read config {file}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConnectorError(f"config {file} is not valid TOML: {exc}") from exc
    known = {"agents", "queues", "channels", "twilio", "delighted"}
    unknown = set(data) - known
    if unknown:
        raise ConnectorError(f"config {file}: unknown section(s) {sorted(unknown)}; "
                             f"expected {sorted(known)}")
    opts.agents.update(_strings(data.get("agents", {}), file, "agents"))
    opts.queues.update(_strings(data.get("queues", {}), file, "queues"))
    channels = _strings(data.get("channels", {}), file, "channels")
    bad = {k: v for k, v in channels.items() if v not in CHANNELS}
    if bad:
        raise ConnectorError(f"config {file} [channels]: {bad} - values must be one of "
                             f"{', '.join(CHANNELS)}")
    opts.channels.update(channels)
    acts = _strings(data.get("twilio", {}).get("activities", {}), file, "twilio.activities")
    bad = {k: v for k, v in acts.items() if v not in STATES}
    if bad:
        raise ConnectorError(f"config {file} [twilio.activities]: {bad} - states are "
                             f"{', '.join(STATES)}")
    if acts:
        opts.twilio_activities = acts
    opts.delighted.update(_strings(data.get("delighted", {}), file, "delighted"))
    return opts


def _strings(table: object, file: Path, name: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConnectorError(f"config {file}: [{name}] must be a table of strings")
    return {str(k): str(v) for k, v in table.items()}


class Mapper:
    """One vendor. Subclasses set ``source`` and implement :meth:`map`."""

    source = ""
    tag = ""

    def __init__(self, options: Options, state: State) -> None:
        self.options, self.state = options, state

    def parse(self, body: bytes) -> dict[str, Any] | None:
        """The payload as a dict (JSON by default), or None when it is not one."""
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return obj if isinstance(obj, dict) else None

    def map(self, payload: dict[str, Any], now: float | None) -> Outcome:
        """Events for one payload. ``now`` is the receive time (gateway) used only when
        the payload carries no time at all; ``convert`` passes None (deterministic)."""
        raise NotImplementedError

    # --- shared renaming -------------------------------------------------------------
    def queue(self, raw: object) -> str | None:
        key = clean_id(raw)
        return None if key is None else clean_id(self.options.queues.get(key, key))

    def agent(self, raw: object) -> str | None:
        key = clean_id(raw)
        return None if key is None else clean_id(self.options.agents.get(key, key))

    def channel(self, raw: object, defaults: dict[str, str]) -> str | None:
        if not isinstance(raw, str):
            return None
        return self.options.channels.get(raw) or defaults.get(raw) or defaults.get(raw.lower())


def delivery_key(source: str, payload: dict[str, Any]) -> str:
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(source.encode() + b"\x1f" + canonical).hexdigest()


class Pipeline:
    """Payload -> events, with the redelivery memory described above."""

    def __init__(self, mappers: dict[str, Mapper], state: State) -> None:
        self.mappers, self.state = mappers, state

    def process(self, source: str, payload: dict[str, Any], now: float | None,
                replay_redeliveries: bool = True) -> tuple[Outcome, bool]:
        """(outcome, redelivered). A redelivered payload gets its first events again
        (``replay_redeliveries``), or none."""
        key = delivery_key(source, payload)
        seen = self.state.get(DELIVERY_NS, key)
        if seen is not None:
            events: list[Event] = seen.get("events", [])
            return Outcome(events=events if replay_redeliveries else [],
                           ignored="redelivered"), True
        outcome = self.mappers[source].map(payload, now)
        if outcome.events or outcome.ignored:
            # the cache ages in receive time (gateway), or event time (convert)
            stamp = now if now is not None else max(
                (_ts_of(e) for e in outcome.events), default=0.0)
            self.state.put(DELIVERY_NS, key, {"events": outcome.events}, stamp)
        return outcome, False


def _ts_of(ev: Event) -> float:
    from connectors.base import parse_time

    return parse_time(ev.get("ts")) or 0.0


def memory_pipeline(options: Options, sources: list[str] | None = None) -> Pipeline:
    from connectors.sources import build_mappers

    state = MemoryState()
    return Pipeline(build_mappers(options, state, sources), state)


# --- records of a file (convert) ------------------------------------------------------
def json_records(stream: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[bytes | None]:
    """Each JSON value of a stream, read in chunks (an export can be gigabytes): JSON lines,
    concatenated or pretty-printed objects, or a top-level array (its items; it must fit
    in MAX_RECORD). None marks bytes that are not JSON (skipped to the next line)."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buf, pos, eof = "", 0, False

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        chunk = stream.read(chunk_size)
        eof = not chunk
        buf = buf[pos:] + utf8.decode(chunk, final=eof)
        pos = 0
        return not eof or bool(buf)

    while True:
        while pos < len(buf) and buf[pos].isspace():
            pos += 1
        if pos >= len(buf):
            if not more():
                return
            continue
        try:
            value, stop = decoder.raw_decode(buf, pos)
            complete = eof or stop < len(buf) or isinstance(value, dict | list)
        except json.JSONDecodeError:
            value, stop, complete = None, -1, False
        if not complete or stop < 0:
            if not eof and len(buf) - pos < MAX_RECORD:
                more()
                continue
            nl = buf.find("\n", pos)
            while nl < 0 and more():
                nl = buf.find("\n", pos)
            pos = len(buf) if nl < 0 else nl + 1
            yield None
            continue
        chunk_text = buf[pos:stop]
        pos = stop
        if isinstance(value, list):
            for item in value:
                yield orjson.dumps(item)
        else:
            yield chunk_text.encode()


def form_records(stream: BinaryIO) -> Iterator[bytes | None]:
    """One form-encoded body (or JSON object) per line (Twilio callbacks)."""
    for raw in stream:
        line = raw.strip()
        if line:
            yield line


def parse_form(body: bytes) -> dict[str, Any] | None:
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        return obj if isinstance(obj, dict) else None
    pairs = parse_qsl(text, keep_blank_values=True)
    return dict(pairs) if pairs else None
