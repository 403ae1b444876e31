"""What every connector shares: contract events, deterministic ids, times, skip counting.

Why one module: ``convert`` (backfill) and the live paths (``tail``, ``gateway``) must
write byte-identical events for the same input, or a backfill overlapping live traffic
would count twice. So ids are never random and never depend on the wall clock: they are
hashes of what the vendor sent (or the vendor's own delivery id), and event times come
from the payload, never from the machine that converts it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

Event = dict[str, Any]

CHANNELS = ("voice", "chat", "email", "messaging", "social")
STATES = ("available", "busy", "wrap_up", "paused", "offline")
MAX_ID = 128
#: A payload time before this (2000-01-01) is a unit mistake, not an event.
_MIN_EPOCH = 946_684_800.0
#: Epochs above this are milliseconds (a second-epoch this large is year 5138).
_MS_EPOCH = 1e11


class ConnectorError(Exception):
    """A problem the operator can fix; the message says how."""


def make_id(*parts: object) -> str:
    """A deterministic event id: the same parts always give the same id.

    The first part is a short source tag kept readable (``ast-…``, ``zd-…``) so a dead
    letter or a duplicate can be traced back to the connector that wrote it."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{parts[0]}-{digest}"


def clean_id(value: object) -> str | None:
    """A contract id (1-128 chars) from a vendor value; longer ones are hashed, not cut,
    so two long ids that share a prefix stay distinct."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        return None
    if len(text) > MAX_ID:
        return "h-" + hashlib.sha256(text.encode()).hexdigest()[:40]
    return text


def iso_ts(epoch: float) -> str:
    """``2026-11-22T10:00:03Z``; milliseconds only when the time has them."""
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    if moment.microsecond // 1000 == 0 and abs(epoch - round(epoch)) < 1e-6:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_SPACED_OFFSET = re.compile(
    r"^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d(?:\.\d+)?) ?([+-]\d\d):?(\d\d)$")


def parse_time(value: object) -> float | None:
    """Epoch seconds from what vendors send: epoch s or ms (number or digits), ISO-8601
    with ``Z`` or an offset, or ``2018-03-28 15:06:23 -0700``. A time without a zone is
    refused: guessing one would shift every KPI by hours."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return _parse_iso(text)
    if number > _MS_EPOCH:
        number /= 1000.0
    return number if number >= _MIN_EPOCH else None


def _parse_iso(text: str) -> float | None:
    try:  # the common case, fast: Python 3.11 reads Z, offsets and any fraction
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return _parse_iso_slow(text)
    if moment.tzinfo is None:
        return None
    epoch = moment.timestamp()
    return epoch if epoch >= _MIN_EPOCH else None


def _parse_iso_slow(text: str) -> float | None:
    spaced = _SPACED_OFFSET.match(text)
    if spaced:
        text = f"{spaced[1]}T{spaced[2]}{spaced[3]}:{spaced[4]}"
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python < 3.11 refused >6 fractional digits; Zendesk sends nanoseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    epoch = moment.timestamp()
    return epoch if epoch >= _MIN_EPOCH else None


def event(event_type: str, event_id: str, ts: float, **fields: Any) -> Event:
    """A contract event; ``None`` fields are left out (the contract's "absent")."""
    out: Event = {"event_id": event_id, "type": event_type, "ts": iso_ts(ts)}
    for name, value in fields.items():
        if value is not None:
            out[name] = value
    return out


def dumps(ev: Event) -> bytes:
    return orjson.dumps(ev)


@dataclass
class Outcome:
    """What one vendor record became: events, or why it became none.

    ``ignored`` is a record we understood and deliberately do not use (a Twilio
    ``reservation.created``); ``unmapped`` is one we could not understand (it goes to the
    dead-letter topic from the gateway)."""

    events: list[Event] = field(default_factory=list)
    ignored: str | None = None
    unmapped: str | None = None

    @classmethod
    def ignore(cls, reason: str) -> Outcome:
        return cls(ignored=reason)

    @classmethod
    def fail(cls, reason: str) -> Outcome:
        return cls(unmapped=reason)


@dataclass
class Summary:
    """Counts for the ``convert`` / ``tail`` report: records read, events by type,
    records skipped by reason, and notes (choices made, e.g. inferred offers)."""

    records: int = 0
    events: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    def add(self, events: Iterable[Event]) -> None:
        for ev in events:
            self.events[ev["type"]] += 1

    def take(self, outcome: Outcome) -> None:
        self.add(outcome.events)
        if not outcome.events:
            self.skipped[outcome.unmapped or outcome.ignored or "no_event"] += 1

    def render(self, source: str) -> str:
        total = sum(self.events.values())
        lines = [f"{source}: {self.records:,} records read, {total:,} events written"]
        for name, count in sorted(self.events.items()):
            lines.append(f"  event {name}: {count:,}")
        skipped = sum(self.skipped.values())
        lines.append(f"  records skipped: {skipped:,}")
        for reason, count in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"    {reason}: {count:,}")
        for note, count in sorted(self.notes.items()):
            lines.append(f"  note {note}: {count:,}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "events": dict(self.events),
            "skipped": dict(self.skipped),
            "notes": dict(self.notes),
        }


def load_map(path: str | Path | None) -> dict[str, str]:
    """A renaming map: a JSON object, or lines ``from,to`` / ``from=to`` / ``from<TAB>to``
    (``#`` comments and blank lines allowed)."""
    if path is None:
        return {}
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConnectorError(f"cannot read map file {file}: {exc.strerror}; check the path") \
            from exc
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConnectorError(f"map file {file} is not valid JSON ({exc}); fix line "
                                 f"{exc.lineno}") from exc
        if not isinstance(data, dict):
            raise ConnectorError(f"map file {file} must hold one JSON object")
        return {str(k): str(v) for k, v in data.items()}
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        sep = "\t" if "\t" in line else "=" if "=" in line and "," not in line else ","
        row = next(csv.reader([line], delimiter=sep))
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ConnectorError(f"map file {file} line {number}: expected 'from,to', "
                                 f"got {raw!r}")
        out[row[0].strip()] = row[1].strip()
    return out


def pick(obj: object, *path: str) -> Any:
    """``obj[path[0]][path[1]]…`` or None, whatever is missing on the way."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None
