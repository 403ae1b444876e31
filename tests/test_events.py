"""Decoding and the stateless rejection reasons of contract section 4 (tables/events.py)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tables.events import (
    CHANNELS,
    EVENT_TYPES,
    INVALID_JSON,
    KINDS,
    OUT_OF_RANGE,
    REASONS,
    SCHEMA,
    UNKNOWN_TYPE,
    ContactClosed,
    ContactOffered,
    SurveyResponse,
    TicketOpened,
    TicketResolved,
    decode,
    decode_slow,
    to_us,
)

UTC = dt.UTC
TS = "2026-11-22T10:00:00Z"
STATELESS = {INVALID_JSON, SCHEMA, UNKNOWN_TYPE, OUT_OF_RANGE}

#: One valid event per type, with only its required fields.
VALID: dict[str, dict[str, Any]] = {
    "contact_offered": {"contact_id": "c1", "queue": "billing", "channel": "voice"},
    "contact_answered": {"contact_id": "c1", "agent_id": "a1"},
    "contact_abandoned": {"contact_id": "c1"},
    "contact_closed": {"contact_id": "c1"},
    "ticket_opened": {"ticket_id": "t1", "queue": "billing", "channel": "email"},
    "ticket_replied": {"ticket_id": "t1", "agent_id": "a1"},
    "ticket_resolved": {"ticket_id": "t1", "contacts": 1},
    "ticket_reopened": {"ticket_id": "t1"},
    "survey_sent": {"survey_id": "s1", "kind": "csat", "queue": "billing", "channel": "voice"},
    "survey_response": {
        "survey_id": "s1", "kind": "csat", "score": 4, "queue": "billing", "channel": "voice",
    },
}


def obj(etype: str, **over: Any) -> dict[str, Any]:
    """A valid event of ``etype`` with fields overridden; a value of ``...`` removes the field."""
    out: dict[str, Any] = {"event_id": "e1", "type": etype, "ts": TS, **VALID[etype]}
    for k, v in over.items():
        if v is ...:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def raw(etype: str, **over: Any) -> bytes:
    return json.dumps(obj(etype, **over)).encode()


def resp(kind: str, score: Any, **over: Any) -> bytes:
    return raw("survey_response", kind=kind, score=score, **over)


# --- one table per reason -----------------------------------------------------------------------
NOT_UTF8 = raw("contact_abandoned", contact_id="@@")  # @@ replaced by non-UTF-8 bytes
CASES: list[tuple[str, bytes, str]] = [
    # invalid_json: not a JSON object
    ("truncated", b'{"event_id": "e-bad", "type": "contact_offered", "ts": "2026-11-2',
     INVALID_JSON),
    ("array", b"[1, 2, 3]", INVALID_JSON),
    ("array of an event", b"[" + raw("contact_abandoned") + b"]", INVALID_JSON),
    ("number", b"42", INVALID_JSON),
    ("string", b'"contact_offered"', INVALID_JSON),
    ("null", b"null", INVALID_JSON),
    ("empty", b"", INVALID_JSON),
    ("whitespace only", b"  \n", INVALID_JSON),
    ("invalid utf-8 in a value", NOT_UTF8.replace(b"@@", b"\xff\xfe"), INVALID_JSON),
    ("invalid utf-8 in event_id", raw("contact_abandoned", event_id="@@").replace(b"@@", b"\x80"),
     INVALID_JSON),
    ("latin-1 encoded", NOT_UTF8.replace(b"@@", b"caf\xe9"), INVALID_JSON),
    ("trailing garbage", raw("contact_abandoned") + b" x", INVALID_JSON),
    ("NaN literal", raw("contact_abandoned")[:-1] + b', "x": NaN}', INVALID_JSON),
    # schema
    ("missing queue", raw("contact_offered", queue=...), SCHEMA),
    ("missing event_id", raw("contact_abandoned", event_id=...), SCHEMA),
    ("missing ts", raw("contact_abandoned", ts=...), SCHEMA),
    ("missing type", raw("contact_abandoned", type=...), SCHEMA),
    ("missing score", raw("survey_response", score=...), SCHEMA),
    ("queue is a number", raw("contact_offered", queue=5), SCHEMA),
    ("contact_id is a list", raw("contact_abandoned", contact_id=["c1"]), SCHEMA),
    ("contacts as a string", raw("ticket_resolved", contacts="1"), SCHEMA),
    ("score as a string", resp("csat", "4"), SCHEMA),
    ("score 4.0 float", resp("csat", 4.0), SCHEMA),
    ("score 4.5 float", resp("csat", 4.5), SCHEMA),
    ("score bool", resp("csat", True), SCHEMA),
    ("contacts bool", raw("ticket_resolved", contacts=True), SCHEMA),
    ("score null", resp("csat", None), SCHEMA),
    ("empty contact_id", raw("contact_abandoned", contact_id=""), SCHEMA),
    ("empty event_id", raw("contact_abandoned", event_id=""), SCHEMA),
    ("129-char contact_id", raw("contact_abandoned", contact_id="c" * 129), SCHEMA),
    ("129-char event_id", raw("contact_abandoned", event_id="e" * 129), SCHEMA),
    ("129-char optional customer_id", raw("contact_offered", customer_id="x" * 129), SCHEMA),
    ("ts not a time", raw("contact_abandoned", ts="yesterday"), SCHEMA),
    ("ts month 13", raw("contact_abandoned", ts="2026-13-01T00:00:00Z"), SCHEMA),
    ("ts as epoch number", raw("contact_abandoned", ts=1795341600), SCHEMA),
    ("ts without offset", raw("contact_abandoned", ts="2026-11-22T10:00:00"), SCHEMA),
    ("ts date only", raw("contact_abandoned", ts="2026-11-22"), SCHEMA),
    ("unknown channel", raw("contact_offered", channel="fax"), SCHEMA),
    ("channel wrong case", raw("ticket_opened", channel="Voice"), SCHEMA),
    ("unknown kind", resp("xyz", 3), SCHEMA),
    ("unknown kind on sent", raw("survey_sent", kind="CSAT"), SCHEMA),
    ("type is a number", raw("contact_abandoned", type=5), SCHEMA),
    ("type is null", raw("contact_abandoned", type=None), SCHEMA),
    ("agent_id of closed is a number", raw("contact_closed", agent_id=7), SCHEMA),
    ("agent_id of resolved is empty", raw("ticket_resolved", agent_id=""), SCHEMA),
    ("agent_id of response is a list", resp("nps", 9, agent_id=["a"]), SCHEMA),
    ("priority is a number", raw("ticket_opened", priority=1), SCHEMA),
    # unknown_type
    ("contact_transferred", raw("contact_abandoned", type="contact_transferred"), UNKNOWN_TYPE),
    ("type wrong case", raw("contact_abandoned", type="Contact_Abandoned"), UNKNOWN_TYPE),
    ("type empty string", raw("contact_abandoned", type=""), UNKNOWN_TYPE),
    # out_of_range
    ("csat 0", resp("csat", 0), OUT_OF_RANGE),
    ("csat 6", resp("csat", 6), OUT_OF_RANGE),
    ("nps -1", resp("nps", -1), OUT_OF_RANGE),
    ("nps 11", resp("nps", 11), OUT_OF_RANGE),
    ("ces 0", resp("ces", 0), OUT_OF_RANGE),
    ("ces 8", resp("ces", 8), OUT_OF_RANGE),
    ("contacts 0", raw("ticket_resolved", contacts=0), OUT_OF_RANGE),
    ("contacts -3", raw("ticket_resolved", contacts=-3), OUT_OF_RANGE),
    # order of the checks: the first failing rule names the reason
    ("unknown type + missing ts", raw("contact_abandoned", type="contact_x", ts=...), SCHEMA),
    ("unknown type + bad ts", raw("contact_abandoned", type="contact_x", ts="soon"), SCHEMA),
    ("unknown type + empty event_id", raw("contact_abandoned", type="contact_x", event_id=""),
     SCHEMA),
    ("bad score + bad channel", resp("csat", 9, channel="fax"), SCHEMA),
    ("bad score + missing queue", resp("nps", 42, queue=...), SCHEMA),
    ("bad score + unknown kind", resp("stars", 42), SCHEMA),
    ("contacts 0 + agent_id wrong type", raw("ticket_resolved", contacts=0, agent_id=3), SCHEMA),
    ("unknown type + out-of-range score", resp("csat", 9, type="survey_reply"), UNKNOWN_TYPE),
    ("bad json beats everything", b'{"type": "nope", "score": 99', INVALID_JSON),
]


@pytest.mark.parametrize(("data", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejection_reason(data: bytes, reason: str) -> None:
    assert decode(data) == reason
    assert decode_slow(data) == reason


# --- accepted variants ----------------------------------------------------------------------
def test_extra_fields_are_ignored() -> None:
    data = raw("contact_offered", extra=1, nested={"a": [1, {"b": None}]}, note="x" * 500)
    ev = decode(data)
    assert ev == ContactOffered(
        event_id="e1", ts=dt.datetime(2026, 11, 22, 10, tzinfo=UTC),
        contact_id="c1", queue="billing", channel="voice",
    )
    assert decode_slow(data) == ev


@pytest.mark.parametrize(
    ("ts", "utc"),
    [
        # 11:12:08.5 at +01:00 is 10:12:08.5 UTC (example event e-0030)
        ("2026-11-22T11:12:08.500+01:00",
         dt.datetime(2026, 11, 22, 10, 12, 8, 500_000, tzinfo=UTC)),
        # 05:00 at -05:00 is 10:00 UTC
        ("2026-11-22T05:00:00-05:00", dt.datetime(2026, 11, 22, 10, tzinfo=UTC)),
        # 00:30 at +01:00 is 23:30 UTC on the previous day
        ("2026-11-23T00:30:00+01:00", dt.datetime(2026, 11, 22, 23, 30, tzinfo=UTC)),
        ("2026-11-22T10:00:00.250Z", dt.datetime(2026, 11, 22, 10, 0, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_offsets_are_converted_to_utc(ts: str, utc: dt.datetime) -> None:
    ev = decode(raw("contact_abandoned", ts=ts))
    assert not isinstance(ev, str)
    assert ev.ts == utc  # the same instant
    assert to_us(ev.ts) == to_us(utc)
    assert ev.ts.astimezone(UTC).replace(tzinfo=None) == utc.replace(tzinfo=None)


def test_null_and_absent_optional_fields() -> None:
    ev = decode(raw("contact_closed", agent_id=None))
    assert isinstance(ev, ContactClosed) and ev.agent_id is None
    ev2 = decode(raw("ticket_opened", customer_id=None, priority=None, product=None))
    assert isinstance(ev2, TicketOpened) and ev2.priority is None and ev2.customer_id is None
    ev3 = decode(resp("nps", 9, agent_id=None, contact_id=None, ticket_id=None))
    assert isinstance(ev3, SurveyResponse) and ev3.agent_id is None and ev3.score == 9
    ev4 = decode(raw("ticket_resolved", agent_id="a7"))
    assert isinstance(ev4, TicketResolved) and ev4.agent_id == "a7"


@pytest.mark.parametrize(
    "data",
    [
        raw("contact_abandoned", contact_id="c" * 128),
        raw("contact_abandoned", event_id="e" * 128),
        # 128 characters, 256 bytes in UTF-8: the limit counts characters
        raw("contact_abandoned", contact_id="\u00fc" * 128),
        json.dumps(obj("contact_abandoned", contact_id="\u00fc" * 128),
                   ensure_ascii=False).encode(),
        resp("csat", 1), resp("csat", 5), resp("nps", 0), resp("nps", 10),
        resp("ces", 1), resp("ces", 7),
        raw("ticket_resolved", contacts=1), raw("ticket_resolved", contacts=40),
        b"  " + raw("contact_abandoned") + b"\n",
    ],
)
def test_accepted_edges(data: bytes) -> None:
    ev = decode(data)
    assert not isinstance(ev, str), ev
    assert decode_slow(data) == ev


# --- inputs that once surprised the fast path -------------------------------------------------
VALID_ABANDONED = raw("contact_abandoned")


@pytest.mark.parametrize(
    "extra",
    [b'"x": "\xff"', b'"\xff": 1', b'"x": "\xed\xa0\x80"'],
    ids=["invalid utf-8 value", "invalid utf-8 key", "utf-8 encoded surrogate"],
)
def test_invalid_utf8_in_an_ignored_field_is_invalid_json(extra: bytes) -> None:
    # Contract 4: a value that is not UTF-8 is invalid_json, whichever field holds the bytes.
    data = VALID_ABANDONED[:-1] + b", " + extra + b"}"
    assert decode_slow(data) == INVALID_JSON
    assert decode(data) == INVALID_JSON


@pytest.mark.parametrize("depth", [999, 1000, 5000])
def test_deep_nesting_never_raises(depth: int) -> None:
    # "never stops the processor": a deeply nested value is a verdict, not an exception.
    top = b'{"a": ' * depth + b"1" + b"}" * depth
    in_extra = VALID_ABANDONED[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    for data in (top, in_extra):
        fast = decode(data)
        assert fast == decode_slow(data)
        assert not isinstance(fast, str) or fast in STATELESS


@pytest.mark.parametrize(
    "data",
    [
        raw("ticket_resolved", contacts=2**64),
        resp("nps", -(2**63) - 1),
        resp("csat", 10**30),
    ],
    ids=["contacts 2**64", "nps -2**63-1", "csat 10**30"],
)
def test_integers_beyond_64_bits_are_schema_on_both_paths(data: bytes) -> None:
    # Our reading: a JSON integer wider than 64 bits is not an integer field's type
    # (JSON readers disagree on them), so both paths name it ``schema``.
    assert decode(data) == SCHEMA
    assert decode_slow(data) == SCHEMA


# --- properties ---------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    for out in (decode(data), decode_slow(data)):
        assert isinstance(out, msgspec.Struct) or out in REASONS
        if isinstance(out, str):
            assert out in STATELESS


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(VALID)), st.binary(max_size=8), st.integers(0, 200))
def test_spliced_bytes_never_raise(etype: str, junk: bytes, at: int) -> None:
    data = raw(etype)
    at = at % (len(data) + 1)
    mangled = data[:at] + junk + data[at:]
    fast = decode(mangled)
    assert isinstance(fast, msgspec.Struct) or fast in STATELESS
    assert fast == decode_slow(mangled)


# Integers within 64 bits here; wider ones are test_integers_beyond_64_bits (deterministic).
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6),
)
_json_values = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=3)
    | st.dictionaries(st.text(max_size=4), kids, max_size=3),
    max_leaves=6,
)
_edge_values = st.sampled_from(
    [
        "", "x" * 128, "x" * 129, "fax", "voice", "chat", "csat", "nps", "ces", "Voice",
        0, 1, -1, 5, 6, 7, 8, 10, 11, 4.0, True, False, None, [], {},
        "2026-11-22T10:00:00", "2026-11-22T10:00:00+01:00", "2026-11-22 10:00:00Z",
        "2026-W47-7T10:00:00Z", "2026-11-22T10:00:00.123456789Z", "2026-11-22T25:00:00Z",
        "contact_offered", "ticket_resolved", "survey_response", "contact_transferred",
    ]
)
_COMMON = ("event_id", "type", "ts", "extra")
_TS = st.sampled_from(["2026-11-22T10:00:00Z", "2026-11-22T11:00:00.5+01:00",
                       "2026-11-22T10:00:00.123456Z", "2026-11-22T04:00:00-06:00"])
_ID = st.text(min_size=1, max_size=6) | st.just("i" * 128)


def _field_values(name: str) -> st.SearchStrategy[Any]:
    """A valid value for one field (scores span every kind's range and one beyond)."""
    if name == "channel":
        return st.sampled_from(CHANNELS)
    if name == "kind":
        return st.sampled_from(KINDS)
    if name == "score":
        return st.integers(-1, 11)
    if name == "contacts":
        return st.integers(0, 3)
    if name in ("priority", "product"):
        return st.text(max_size=5)
    return _ID


@st.composite
def random_valid(draw: st.DrawFn) -> dict[str, Any]:
    etype = draw(st.sampled_from(sorted(EVENT_TYPES)))
    cls = EVENT_TYPES[etype]
    fields = [f for f in cls.__struct_fields__ if f not in ("event_id", "ts")]
    n_required = len(cls.__struct_fields__) - len(cls.__struct_defaults__)
    o: dict[str, Any] = {"event_id": draw(_ID), "type": etype, "ts": draw(_TS)}
    for i, f in enumerate(fields, start=2):
        if i < n_required:
            o[f] = draw(_field_values(f))
        else:  # optional: absent, null or a value
            choice = draw(st.integers(0, 2))
            if choice:
                o[f] = None if choice == 1 else draw(_field_values(f))
    return o


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    o = draw(random_valid())
    own = sorted(o) + list(_COMMON)
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from(own))
        action = draw(st.sampled_from(["remove", "edge", "random"]))
        if action == "remove":
            o.pop(field, None)
        elif action == "edge":
            o[field] = draw(_edge_values)
        else:
            o[field] = draw(_json_values)
    return json.dumps(o).encode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fast_and_slow_paths_agree(data: bytes) -> None:
    fast, slow = decode(data), decode_slow(data)
    assert fast == slow
    if isinstance(fast, str):
        assert fast in STATELESS


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@settings(max_examples=3000)
@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9998, 12, 30),
        timezones=st.sampled_from(
            [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)),
             dt.timezone(dt.timedelta(hours=-11, minutes=-45)),
             dt.timezone(dt.timedelta(seconds=-1)),
             # UTC by another object than dt.UTC, and a zone with DST: the slow branch
             dt.timezone(dt.timedelta(0)), ZoneInfo("Europe/Madrid")]
        ),
    )
)
def test_to_us_is_exact_timedelta_arithmetic(ts: dt.datetime) -> None:
    # The field arithmetic against Python's own (exact) timedelta arithmetic.
    assert to_us(ts) == (ts - _EPOCH) // dt.timedelta(microseconds=1)
