"""Decoding and validation of raw event bytes (contract sections 2-4).

Two paths:

* the fast path: one msgspec pass decodes the JSON *and* validates every type,
  length, enum and timestamp into a typed struct; only the value ranges
  (``out_of_range``) are checked afterwards in Python;
* the slow path, taken only when msgspec refuses a message: a plain-Python
  walk through the contract's checks in their order, so the rejection reason
  is exactly the first rule the message breaks.

Both paths accept the same messages: ``tests/test_events.py`` feeds random and
mutated inputs to both and compares. The structs and reasons live in
:mod:`tables.schema` and are re-exported here.
"""

from __future__ import annotations

import datetime as dt
from typing import get_type_hints

import msgspec
import orjson

from tables.schema import (  # noqa: F401 - re-exported: the events' vocabulary
    AGENT_STATES,
    CHANNELS,
    DECODER,
    EVENT_TYPES,
    FUTURE_TS,
    INVALID_JSON,
    KINDS,
    MAX_QUEUES,
    MAX_YEAR,
    MIN_YEAR,
    OUT_OF_ORDER,
    OUT_OF_RANGE,
    REASONS,
    SCHEMA,
    SCORE_RANGE,
    TOO_LARGE,
    TOO_LATE,
    TS_DECODER,
    UNKNOWN_ENTITY,
    UNKNOWN_TYPE,
    AgentState,
    Channel,
    ContactAbandoned,
    ContactAnswered,
    ContactClosed,
    ContactOffered,
    Event,
    Id,
    Int64,
    Kind,
    Queues,
    State,
    SurveyResponse,
    SurveySent,
    TicketOpened,
    TicketReopened,
    TicketReplied,
    TicketResolved,
    Ts,
)

_US = dt.timedelta(microseconds=1)


_UTC = dt.UTC
_ORDINAL_1970 = dt.date(1970, 1, 1).toordinal()


def to_us(ts: dt.datetime) -> int:
    """Aware datetime -> integer microseconds since the epoch (exact, so sums stay exact).

    From the fields in integer arithmetic. ``utcoffset()`` alone costs more than all the
    rest (a call through the tzinfo), so a ``Z`` time (msgspec gives it the shared UTC
    tzinfo: nearly every event) skips it.
    """
    us = ((ts.toordinal() - _ORDINAL_1970) * 24 + ts.hour) * 60 + ts.minute
    us = (us * 60 + ts.second) * 1_000_000 + ts.microsecond
    if ts.tzinfo is not _UTC:
        offset = ts.utcoffset()
        if offset:
            us -= offset // _US
    return us


def _range_error(ev: Event) -> bool:
    if type(ev) is SurveyResponse:
        lo, hi = SCORE_RANGE[ev.kind]
        return not lo <= ev.score <= hi
    if type(ev) is TicketResolved:
        return ev.contacts < 1
    return False


def decode(raw: bytes) -> Event | str:
    """Raw message value -> typed event, or the name of the first rule it breaks.

    Only the stateless rules (up to ``out_of_range``) are checked here; the clock,
    duplicate and lifecycle rules need state and live in :mod:`tables.state`.
    """
    try:
        ev = DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # (UnicodeDecodeError: bytes that are not UTF-8 in a field msgspec reads;
        # RecursionError: nesting deeper than Python's recursion limit)
        return decode_slow(raw)
    if not raw.isascii():
        # msgspec does not check the bytes of fields it skips; the contract wants
        # any non-UTF-8 value refused. Pure-ASCII messages (nearly all) skip this.
        try:
            raw.decode()
        except UnicodeDecodeError:
            return INVALID_JSON
    if not MIN_YEAR <= ev.ts.year <= MAX_YEAR:
        return SCHEMA
    if _range_error(ev):
        return OUT_OF_RANGE
    return ev


# --- slow path ---------------------------------------------------------------------------------
def parse_ts(value: object) -> dt.datetime | None:
    """ISO-8601 with an offset or ``Z``; RFC 3339 first, then Python's wider ISO reader.
    Years outside 1970-9998 do not parse: they have no place on an epoch clock."""
    if not isinstance(value, str):
        return None
    try:
        parsed = TS_DECODER.decode(orjson.dumps(value))
    except (msgspec.ValidationError, msgspec.DecodeError):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if parsed.tzinfo is None or not MIN_YEAR <= parsed.year <= MAX_YEAR:
        return None
    return parsed


def _is_id(v: object) -> bool:
    return isinstance(v, str) and 1 <= len(v) <= 128


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _field_ok(ann: object, v: object) -> bool:
    """One field against its declared type: the same rules msgspec applies."""
    if ann is Id:
        return _is_id(v)
    if ann == (Id | None):
        return v is None or _is_id(v)
    if ann == (str | None):
        return v is None or isinstance(v, str)
    if ann is Int64:
        return _is_int(v) and -(2**63) <= v <= 2**63 - 1  # type: ignore[operator]
    if ann is Channel:
        return v in CHANNELS and isinstance(v, str)
    if ann is Kind:
        return v in KINDS and isinstance(v, str)
    if ann is State:
        return v in AGENT_STATES and isinstance(v, str)
    if ann == (Queues | None):
        return v is None or (
            isinstance(v, list) and len(v) <= MAX_QUEUES and all(_is_id(q) for q in v)
        )
    raise AssertionError(f"no rule for {ann!r}")


def _build_fields() -> dict[str, list[tuple[str, object, bool]]]:
    out: dict[str, list[tuple[str, object, bool]]] = {}
    for name, cls in EVENT_TYPES.items():
        fields = cls.__struct_fields__
        n_required = len(fields) - len(cls.__struct_defaults__)
        hints = get_type_hints(cls, include_extras=True)
        out[name] = [
            (f, hints[f], i < n_required)
            for i, f in enumerate(fields)
            if f not in ("event_id", "ts")
        ]
    return out


_FIELDS = _build_fields()


def classify(raw: bytes) -> str | dict:
    """The contract's checks one by one: the first failing reason, or the
    decoded object when the message is valid after all (a timestamp that only
    Python's ISO reader accepts, for instance)."""
    try:
        obj = orjson.loads(raw)
    except (orjson.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return INVALID_JSON
    if not isinstance(obj, dict):
        return INVALID_JSON
    etype = obj.get("type")
    if not _is_id(obj.get("event_id")) or not isinstance(etype, str):
        return SCHEMA
    ts = parse_ts(obj.get("ts"))
    if ts is None:
        return SCHEMA
    fields = _FIELDS.get(etype)
    if fields is None:
        return UNKNOWN_TYPE
    for name, ann, required in fields:
        if name not in obj:
            if required:
                return SCHEMA
            continue
        if not _field_ok(ann, obj[name]):
            return SCHEMA
    if etype == "survey_response":
        lo, hi = SCORE_RANGE[obj["kind"]]
        if not lo <= obj["score"] <= hi:
            return OUT_OF_RANGE
    if etype == "ticket_resolved" and obj["contacts"] < 1:
        return OUT_OF_RANGE
    obj["ts"] = ts
    return obj


def decode_slow(raw: bytes) -> Event | str:
    """The slow path on its own (also the reference the fast path is tested against)."""
    result = classify(raw)
    if isinstance(result, str):
        return result
    try:
        return msgspec.convert(result, Event)
    except msgspec.ValidationError:
        # Both parsers agreed field by field, so this is unreachable in practice;
        # refusing is the safe side.
        return SCHEMA
