"""Decoding and validation of raw event bytes (contract sections 2-4).

Two paths:

* the fast path: one msgspec pass decodes the JSON *and* validates every type,
  length, enum and timestamp into a typed struct; only the value ranges
  (``out_of_range``) are checked afterwards in Python;
* the slow path, taken only when msgspec refuses a message: a plain-Python
  walk through the contract's checks in their order, so the rejection reason
  is exactly the first rule the message breaks.

Both paths accept the same messages: ``tests/test_events.py`` feeds random and
mutated inputs to both and compares.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal, get_type_hints

import msgspec
import orjson

# --- reasons, in the contract's order --------------------------------------------------------
INVALID_JSON: Final = "invalid_json"
SCHEMA: Final = "schema"
UNKNOWN_TYPE: Final = "unknown_type"
OUT_OF_RANGE: Final = "out_of_range"
TOO_LATE: Final = "too_late"
FUTURE_TS: Final = "future_ts"
UNKNOWN_ENTITY: Final = "unknown_entity"
OUT_OF_ORDER: Final = "out_of_order"
REASONS: Final = (
    INVALID_JSON,
    SCHEMA,
    UNKNOWN_TYPE,
    OUT_OF_RANGE,
    TOO_LATE,
    FUTURE_TS,
    UNKNOWN_ENTITY,
    OUT_OF_ORDER,
)

CHANNELS: Final = ("voice", "chat", "email", "messaging", "social")
KINDS: Final = ("csat", "nps", "ces")
SCORE_RANGE: Final = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
#: JSON integers beyond 64 bits are a wrong type on both paths (orjson reads them as floats).
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Ts = Annotated[dt.datetime, msgspec.Meta(tz=True)]
Channel = Literal["voice", "chat", "email", "messaging", "social"]
Kind = Literal["csat", "nps", "ces"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MIN_YEAR, _MAX_YEAR = 1970, 9998
_US = dt.timedelta(microseconds=1)


def to_us(ts: dt.datetime) -> int:
    """Aware datetime -> integer microseconds since the epoch (exact, so sums stay exact)."""
    return (ts - _EPOCH) // _US


class _Event(msgspec.Struct, tag_field="type", gc=False):
    event_id: Id
    ts: Ts


# Contacts -------------------------------------------------------------------------------------
class ContactOffered(_Event, tag="contact_offered"):
    contact_id: Id
    queue: Id
    channel: Channel
    customer_id: Id | None = None


class ContactAnswered(_Event, tag="contact_answered"):
    contact_id: Id
    agent_id: Id


class ContactAbandoned(_Event, tag="contact_abandoned"):
    contact_id: Id


class ContactClosed(_Event, tag="contact_closed"):
    contact_id: Id
    agent_id: Id | None = None


# Tickets --------------------------------------------------------------------------------------
class TicketOpened(_Event, tag="ticket_opened"):
    ticket_id: Id
    queue: Id
    channel: Channel
    customer_id: Id | None = None
    priority: str | None = None
    product: str | None = None


class TicketReplied(_Event, tag="ticket_replied"):
    ticket_id: Id
    agent_id: Id


class TicketResolved(_Event, tag="ticket_resolved"):
    ticket_id: Id
    contacts: Int64
    agent_id: Id | None = None


class TicketReopened(_Event, tag="ticket_reopened"):
    ticket_id: Id


# Surveys --------------------------------------------------------------------------------------
class SurveySent(_Event, tag="survey_sent"):
    survey_id: Id
    kind: Kind
    queue: Id
    channel: Channel
    agent_id: Id | None = None
    customer_id: Id | None = None
    contact_id: Id | None = None
    ticket_id: Id | None = None


class SurveyResponse(_Event, tag="survey_response"):
    survey_id: Id
    kind: Kind
    score: Int64
    queue: Id
    channel: Channel
    agent_id: Id | None = None
    customer_id: Id | None = None
    contact_id: Id | None = None
    ticket_id: Id | None = None


Event = (
    ContactOffered
    | ContactAnswered
    | ContactAbandoned
    | ContactClosed
    | TicketOpened
    | TicketReplied
    | TicketResolved
    | TicketReopened
    | SurveySent
    | SurveyResponse
)
EVENT_TYPES: Final[dict[str, type[_Event]]] = {
    c.__struct_config__.tag: c  # type: ignore[misc]
    for c in (
        ContactOffered,
        ContactAnswered,
        ContactAbandoned,
        ContactClosed,
        TicketOpened,
        TicketReplied,
        TicketResolved,
        TicketReopened,
        SurveySent,
        SurveyResponse,
    )
}

_decoder = msgspec.json.Decoder(Event)
_ts_decoder = msgspec.json.Decoder(Ts)


def _range_error(ev: Event) -> bool:
    if isinstance(ev, SurveyResponse):
        lo, hi = SCORE_RANGE[ev.kind]
        return not lo <= ev.score <= hi
    if isinstance(ev, TicketResolved):
        return ev.contacts < 1
    return False


def decode(raw: bytes) -> Event | str:
    """Raw message value -> typed event, or the name of the first rule it breaks.

    Only the stateless rules (up to ``out_of_range``) are checked here; the clock,
    duplicate and lifecycle rules need state and live in :mod:`tables.state`.
    """
    try:
        ev = _decoder.decode(raw)
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
    if not _MIN_YEAR <= ev.ts.year <= _MAX_YEAR:
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
        parsed = _ts_decoder.decode(orjson.dumps(value))
    except (msgspec.ValidationError, msgspec.DecodeError):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if parsed.tzinfo is None or not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
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
