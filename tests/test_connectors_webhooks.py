"""Vendor payloads -> contract events, request signatures, and the mappings' state.

Payload sources (fixtures in tests/connectors_data/, shapes as documented):
* Zendesk event webhooks - https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/
  (example values as mirrored in dust-tt/dust ``…/zendesk/schemas/ticket_*.ts``); Incremental
  Ticket Event Export - https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/
  (the ``comment_events`` child shown there; Create/Change children as in the Ticket Audit
  events reference, https://developer.zendesk.com/documentation/ticketing/reference-guides/ticket-audit-events-reference/);
  signature - https://developer.zendesk.com/documentation/webhooks/verifying/
* Amazon Connect - https://docs.aws.amazon.com/connect/latest/adminguide/contact-events.html
  (its samples, including the ``AgentInfo``/``AgentArn`` spelling of the disconnect sample)
* Twilio TaskRouter - https://www.twilio.com/docs/taskrouter/api/event/reference (callback
  parameters; ``Sid``/``TimestampMs`` as in twilio-professional-services/flex-project-template
  ``…/taskrouter/*.js`` example events); signature -
  https://www.twilio.com/docs/usage/security and the worked example of twilio/twilio-php
  ``docs/usage/validation.rst``
* Chatwoot - chatwoot/chatwoot ``app/listeners/webhook_listener.rb``,
  ``app/presenters/conversations/event_data_presenter.rb``, ``Message#webhook_data``,
  ``lib/webhooks/trigger.rb`` (signature), CSAT ``submitted_values.csat_survey_response``
* Delighted - https://app.delighted.com/docs/api/webhooks (its example body)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from connectors.base import ConnectorError, parse_time
from connectors.chatwoot import verify_chatwoot
from connectors.mapping import Options, load_options, memory_pipeline
from connectors.state import MemoryState, SqliteState
from connectors.twilio import twilio_signature, verify_twilio
from connectors.zendesk import verify_zendesk
from tests.connectors_data.helpers import by_id, converted


def kinds(events: list[dict]) -> list[tuple]:
    return [(e["type"], e.get("survey_id") or e.get("contact_id") or e.get("ticket_id")
             or e.get("agent_id"), e["ts"]) for e in events]


EXPECTED = {
    ("zendesk", "zendesk_webhooks.jsonl"): [
        ("ticket_opened", "5158", "2025-01-08T10:12:07Z"),
        ("ticket_replied", "5158", "2025-01-08T14:25:30.123Z"),
        ("ticket_resolved", "5158", "2025-01-08T16:45:20.987Z"),
        ("ticket_reopened", "5158", "2025-01-09T09:00:00Z"),
        ("ticket_resolved", "5158", "2025-01-09T10:30:00Z"),
        ("ticket_opened", "5160", "2025-01-09T11:00:00Z"),
        ("ticket_resolved", "5160", "2025-01-09T12:00:00Z"),
        ("survey_response", "zendesk-5158", "2025-01-09T11:00:00Z")],
    ("zendesk", "zendesk_export.json"): [
        ("ticket_opened", "7001", "2025-01-01T10:00:00Z"),
        ("ticket_replied", "7001", "2025-01-01T11:00:00Z"),
        ("ticket_resolved", "7001", "2025-01-01T12:00:00Z"),
        ("survey_response", "zendesk-7001", "2025-01-01T13:00:00Z")],
    ("amazon-connect", "connect_events.jsonl"): [
        ("contact_offered", "11111111-1111-1111-1111-111111111111", "2021-08-04T17:29:04Z"),
        ("contact_answered", "11111111-1111-1111-1111-111111111111", "2021-08-04T17:29:09Z"),
        # Connect delivered that event twice: the same event again (a duplicate downstream)
        ("contact_answered", "11111111-1111-1111-1111-111111111111", "2021-08-04T17:29:09Z"),
        ("contact_closed", "11111111-1111-1111-1111-111111111111", "2021-08-04T17:34:10Z"),
        ("contact_offered", "22222222-2222-2222-2222-222222222222", "2021-08-04T17:40:00Z"),
        ("contact_abandoned", "22222222-2222-2222-2222-222222222222", "2021-08-04T17:40:30Z"),
        ("contact_offered", "33333333-3333-3333-3333-333333333333", "2021-08-04T17:50:00Z"),
        ("contact_answered", "33333333-3333-3333-3333-333333333333", "2021-08-04T17:50:20Z")],
    ("twilio-taskrouter", "twilio_events.txt"): [
        ("contact_offered", "WT0000000000000000000000000000001", "2025-01-01T10:00:00.100Z"),
        ("contact_answered", "WT0000000000000000000000000000001", "2025-01-01T10:00:09Z"),
        ("agent_state", "alice@example.com", "2025-01-01T10:00:09.500Z"),
        ("contact_closed", "WT0000000000000000000000000000001", "2025-01-01T10:04:10Z"),
        ("contact_offered", "WT0000000000000000000000000000002", "2025-01-01T10:05:00Z"),
        ("contact_abandoned", "WT0000000000000000000000000000002", "2025-01-01T10:05:45Z"),
        ("agent_state", "alice@example.com", "2025-01-01T10:06:40Z")],
    ("chatwoot", "chatwoot_webhooks.jsonl"): [
        ("contact_offered", "chatwoot:1:101", "2025-01-01T10:00:00Z"),
        ("contact_answered", "chatwoot:1:101", "2025-01-01T10:01:10Z"),
        ("contact_closed", "chatwoot:1:101", "2025-01-01T10:15:00.250Z"),
        ("survey_response", "chatwoot:1:1004", "2025-01-01T10:20:00.750Z"),
        ("contact_offered", "chatwoot:1:102", "2025-01-01T11:00:00Z"),
        ("contact_abandoned", "chatwoot:1:102", "2025-01-01T11:05:00Z"),
        ("contact_offered", "chatwoot:1:101#2", "2025-01-01T14:00:00Z")],
    ("delighted", "delighted_webhooks.jsonl"): [
        ("survey_response", "delighted-5435", "2024-12-22T01:27:30Z"),
        ("survey_response", "delighted-5435", "2024-12-22T01:27:30Z"),
        ("survey_response", "delighted-5436", "2024-12-22T01:30:00Z"),
        ("survey_response", "delighted-5437", "2024-12-22T01:31:40Z")],
}


@pytest.mark.parametrize(("source", "fixture"), list(EXPECTED))
def test_vendor_payloads_map_as_documented(source: str, fixture: str) -> None:
    events = converted(source, fixture)
    assert kinds(events) == EXPECTED[(source, fixture)]
    assert converted(source, fixture) == events  # deterministic
    by_id(events)


def test_field_details() -> None:
    zd = converted("zendesk", "zendesk_webhooks.jsonl")
    opened = zd[0]
    assert (opened["queue"], opened["channel"], opened["priority"], opened["customer_id"]) == (
        "8447320466430", "email", "high", "8447388090111")
    resolved = [e for e in zd if e["type"] == "ticket_resolved"]
    assert [e["contacts"] for e in resolved] == [2, 2, 1]  # two public requester comments
    assert zd[5]["channel"] == "voice"
    csat = zd[-1]
    assert (csat["kind"], csat["score"], csat["ticket_id"]) == ("csat", 5, "5158")
    connect = converted("amazon-connect", "connect_events.jsonl")
    assert connect[0]["event_id"] == "abcabcab-0002-abca-abca-abcabcabcabc"  # envelope id
    assert connect[1] == connect[2]  # the redelivery
    assert connect[4]["event_id"] == "abcabcab-0012-abca-abca-abcabcabcabc:offered"
    assert connect[6]["channel"] == "chat"
    twilio = converted("twilio-taskrouter", "twilio_events.txt")
    assert twilio[4]["channel"] == "messaging"  # a chat task whose channelType is whatsapp
    assert [e["state"] for e in twilio if e["type"] == "agent_state"] == ["available", "paused"]
    chat = converted("chatwoot", "chatwoot_webhooks.jsonl")
    assert (chat[0]["queue"], chat[4]["queue"], chat[4]["channel"]) == (
        "billing", "inbox-3", "messaging")
    assert chat[3]["score"] == 4 and chat[3]["contact_id"] == "chatwoot:1:101"
    dl = converted("delighted", "delighted_webhooks.jsonl")
    assert (dl[0]["kind"], dl[0]["queue"], dl[0]["agent_id"]) == ("nps", "billing", "agent-ann")
    assert (dl[2]["queue"], dl[2]["channel"]) == ("surveys", "email")  # config defaults
    assert (dl[3]["kind"], dl[3]["score"]) == ("ces", 6)


def test_config_renames_and_activity_map(tmp_path: Path) -> None:
    conf = tmp_path / "connectors.toml"
    conf.write_text(
        '[queues]\n"8447320466430" = "mobile"\n'
        '"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" = "billing"\n'
        '[agents]\n"alice@example.com" = "alice"\n'
        '[channels]\nTASK = "email"\n'
        '[twilio.activities]\nAvailable = "available"\nBreak = "paused"\nLunch = "paused"\n'
        '[delighted]\ndefault_queue = "nps-general"\n')
    opts = load_options(conf)
    zd = converted("zendesk", "zendesk_webhooks.jsonl", options=opts)
    assert zd[0]["queue"] == "mobile"
    connect = converted("amazon-connect", "connect_events.jsonl", options=opts)
    assert connect[0]["queue"] == "billing"
    assert any(e["contact_id"].startswith("44444444") for e in connect)  # TASK mapped
    twilio = converted("twilio-taskrouter", "twilio_events.txt", options=opts)
    states = [(e["agent_id"], e["state"]) for e in twilio if e["type"] == "agent_state"]
    assert states == [("alice", "available"), ("alice", "paused"), ("alice", "paused")]
    assert converted("delighted", "delighted_webhooks.jsonl", options=opts)[2]["queue"] == \
        "nps-general"
    bad = tmp_path / "bad.toml"
    bad.write_text('[channels]\nweb = "fax"\n')
    with pytest.raises(ConnectorError, match="fax"):
        load_options(bad)
    bad.write_text('[nonsense]\na = "b"\n')
    with pytest.raises(ConnectorError, match="unknown section"):
        load_options(bad)


def test_redelivery_gets_the_same_events_and_state_survives_a_restart(tmp_path: Path) -> None:
    from connectors.sources import build_mappers

    lines = (Path(__file__).parent / "connectors_data" / "zendesk_webhooks.jsonl").read_bytes()
    payloads = [__import__("orjson").loads(x) for x in lines.splitlines()]
    state = SqliteState(tmp_path)
    from connectors.mapping import Pipeline

    pipe = Pipeline(build_mappers(Options(), state), state)
    first = [pipe.process("zendesk", p, None)[0].events for p in payloads[:4]]
    again, redelivered = pipe.process("zendesk", payloads[3], None)
    assert redelivered and again.events == first[3]  # a retry: the same reply event again
    state.close()
    state = SqliteState(tmp_path)  # a restart
    pipe = Pipeline(build_mappers(Options(), state), state)
    rest = [e for p in payloads[4:] for e in pipe.process("zendesk", p, None)[0].events]
    whole = converted("zendesk", "zendesk_webhooks.jsonl")
    assert [e for evs in first for e in evs] + rest == whole
    state.close()


def test_state_is_bounded_by_cap_and_ttl(tmp_path: Path) -> None:
    mem = MemoryState(caps={"x": 3})
    for i in range(5):
        mem.put("x", str(i), {"i": i}, 1000.0 + i)
    assert mem.get("x", "0") is None and mem.get("x", "4") == {"i": 4}
    mem.put("connect", "old", {"a": 1}, 1000.0)
    mem.put("connect", "new", {"a": 2}, 1000.0 + 8 * 86400)
    assert mem.get("connect", "old") is None  # older than 7 days of event time
    got = mem.get("connect", "new")
    assert got is not None
    got["a"] = 99  # what get() returns is a copy
    assert mem.get("connect", "new") == {"a": 2}
    db = SqliteState(tmp_path)
    db.put("connect", "old", {"a": 1}, 1000.0)
    db.put("connect", "new", {"a": 2}, 1000.0 + 8 * 86400)
    assert db.get("connect", "old") is None and db.get("connect", "new") == {"a": 2}
    db.close()


def test_zendesk_signature_per_docs() -> None:
    secret, stamp, body = "dGhpc19zZWNyZXQ=", "2025-01-08T10:12:07Z", b'{"a":1}'
    sig = base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body,
                                    hashlib.sha256).digest()).decode()
    assert verify_zendesk(secret, body, sig, stamp)
    assert not verify_zendesk(secret, body + b" ", sig, stamp)
    assert not verify_zendesk(secret, body, sig, "2025-01-08T10:12:08Z")
    assert not verify_zendesk(secret, body, None, stamp)


def test_twilio_signature_per_docs() -> None:
    # the worked example of twilio/twilio-php docs/usage/validation.rst ("Validate Incoming
    # Requests"): token 12345, that URL and those POST variables sign to this value
    token = "12345"
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
    assert twilio_signature(token, url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    from urllib.parse import urlencode

    body = urlencode(params).encode()
    assert verify_twilio(token, url, body, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not verify_twilio(token, url + "&x=1", body, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not verify_twilio(token, url, body, None)


def test_chatwoot_signature_per_source() -> None:
    secret, stamp, body = "whsec", "1735725600", b'{"event":"conversation_created"}'
    sig = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body,
                               hashlib.sha256).hexdigest()
    assert verify_chatwoot(secret, body, sig, stamp)
    assert not verify_chatwoot(secret, body, sig, "1735725601")


@pytest.mark.parametrize(("value", "epoch"), [
    (1735725600, 1735725600.0), ("1735725600123", 1735725600.123),
    ("2025-01-08T14:25:30.123456789Z", 1736346330.123456),
    ("2018-03-28 15:06:23 -0700", 1522274783.0), ("2025-01-01T10:00:00+01:00", 1735722000.0),
    ("2025-01-01T10:00:00", None), ("yesterday", None), (None, None), (12, None)])
def test_vendor_times(value: object, epoch: float | None) -> None:
    got = parse_time(value)
    assert got == pytest.approx(epoch) if epoch is not None else got is None


def test_unmappable_payloads_say_why() -> None:
    pipe = memory_pipeline(Options())
    cases = {
        "amazon-connect": ({"id": "x", "detail": {"eventType": "QUEUED", "contactId": "c",
                                                  "channel": "FAX"}}, "unknown_channel:FAX"),
        "twilio-taskrouter": ({"EventType": "worker.activity.update", "Timestamp": "1735725600",
                               "WorkerName": "w", "WorkerActivityName": "Gym"},
                              "unknown_activity:Gym"),
        "delighted": ({"event_type": "survey_response.created",
                       "event_data": {"id": "1", "survey_type": "nps", "score": 11,
                                      "created_at": 1735725600}}, "score_out_of_range"),
        "zendesk": ({"hello": "world"}, "not_a_ticket_event"),
        "chatwoot": ({"no": "event"}, "no_event"),
    }
    for source, (payload, reason) in cases.items():
        outcome, _ = pipe.process(source, payload, None)
        assert outcome.unmapped == reason, source


def test_json_records_stream_in_chunks() -> None:
    import io

    from connectors.mapping import json_records

    text = ('{"a": 1}\n{"b": "é — two lines"\n}\nnot json at all\n[{"c": 3}, {"d": 4}]\n'
            '  {"e": {"f": [1, 2]}}{"g": 7}\n{"broken": \n')
    expected = [b'{"a": 1}', b'{"b": "\xc3\xa9 \xe2\x80\x94 two lines"\n}', None, b'{"c":3}',
                b'{"d":4}', b'{"e": {"f": [1, 2]}}', b'{"g": 7}', None]
    for size in (1, 2, 3, 7, 64, 1 << 20):
        got = list(json_records(io.BytesIO(text.encode()), chunk_size=size))
        assert got == expected, size
