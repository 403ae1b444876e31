"""Chatwoot webhooks (``app/listeners/webhook_listener.rb`` and the ``webhook_data``
builders of ``Conversation`` / ``Message`` in the chatwoot/chatwoot repository).

A conversation is a contact: ``conversation_created`` offers it, the first outgoing public
message from a human agent (sender ``type: user``; bots and private notes do not count)
answers it, ``conversation_status_changed`` to ``resolved`` closes it - or abandons it
when no agent ever replied. Chatwoot reopens a resolved conversation when the customer
writes again; that is a new contact (``…#2``), offered when the status goes back to
``open``. CSAT answers arrive as ``message_updated`` of the ``input_csat`` message.

Chatwoot sends no retry and no order guarantee, so a conversation first seen through a
later event is rebuilt from what every payload carries (``created_at``,
``first_reply_created_at``), with the same ids the real events would have had.

Signature (recent Chatwoot, when the webhook has a secret): ``X-Chatwoot-Signature`` =
``sha256=`` + hex HMAC-SHA256(secret, ``{X-Chatwoot-Timestamp}.{body}``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from connectors.base import Event, Outcome, as_int, clean_id, event, make_id, parse_time, pick
from connectors.mapping import Mapper

CHANNELS = {
    "Channel::WebWidget": "chat", "Channel::Email": "email", "Channel::Api": "chat",
    "Channel::Whatsapp": "messaging", "Channel::Sms": "messaging",
    "Channel::TwilioSms": "messaging", "Channel::Telegram": "messaging",
    "Channel::Line": "messaging", "Channel::FacebookPage": "social",
    "Channel::Instagram": "social", "Channel::TwitterProfile": "social",
    "Channel::Tiktok": "social", "Channel::Voice": "voice",
}
NS = "chatwoot_conversation"


def verify_chatwoot(secret: str, body: bytes, signature: str | None,
                    timestamp: str | None) -> bool:
    if not signature or not timestamp:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), signature.strip())


class ChatwootMapper(Mapper):
    source = "chatwoot"
    tag = "cw"

    def map(self, payload: dict[str, Any], now: float | None) -> Outcome:
        kind = payload.get("event")
        if kind == "conversation_created":
            return self._created(payload, now)
        if kind == "conversation_status_changed":
            return self._status(payload, now)
        if kind == "message_created":
            return self._message(payload, now)
        if kind == "message_updated":
            return self._csat(payload, now)
        if isinstance(kind, str):
            return Outcome.ignore(f"event:{kind}")
        return Outcome.fail("no_event")

    def _conversation(self, conv: dict[str, Any], account: object) -> _Conversation | Outcome:
        conv_id = clean_id(conv.get("id"))
        account_id = clean_id(account if account is not None else conv.get("account_id"))
        if conv_id is None:
            return Outcome.fail("no_conversation_id")
        channel = self.channel(conv.get("channel"), CHANNELS)
        if channel is None:
            return Outcome.fail(f"unknown_channel:{conv.get('channel')}")
        team = pick(conv, "meta", "team", "name")
        inbox = conv.get("inbox_id")
        queue = self.queue(team) if team else self.queue(f"inbox-{inbox}" if inbox else None)
        return _Conversation(self, f"chatwoot:{account_id or '0'}:{conv_id}", queue or "chat",
                             channel, conv)

    def _created(self, payload: dict[str, Any], now: float | None) -> Outcome:
        conv = self._conversation(payload, payload.get("account_id"))
        if isinstance(conv, Outcome):
            return conv
        ts = parse_time(payload.get("created_at")) or now
        if ts is None:
            return Outcome.fail("no_timestamp")
        conv.offer(ts)
        return conv.done()

    def _status(self, payload: dict[str, Any], now: float | None) -> Outcome:
        conv = self._conversation(payload, payload.get("account_id"))
        if isinstance(conv, Outcome):
            return conv
        ts = parse_time(payload.get("updated_at")) or parse_time(payload.get("timestamp")) or now
        status = payload.get("status")
        if ts is None:
            return Outcome.fail("no_timestamp")
        if status == "resolved":
            conv.rebuild(payload)
            conv.end(ts, pick(payload, "meta", "assignee", "id"))
        elif status == "open" and conv.st.get("ended"):
            conv.st["cycle"] += 1
            conv.st.update(offered=False, answered=False, ended=False)
            conv.offer(ts)
        else:
            return Outcome.ignore(f"status:{status}")
        return conv.done()

    def _message(self, payload: dict[str, Any], now: float | None) -> Outcome:
        if payload.get("message_type") != "outgoing" or payload.get("private"):
            return Outcome.ignore("not_an_agent_reply")
        if pick(payload, "sender", "type") != "user":
            return Outcome.ignore("not_a_human_agent")  # bots, automations
        raw_conv = payload.get("conversation")
        conv = self._conversation(raw_conv if isinstance(raw_conv, dict) else {},
                                  pick(payload, "account", "id"))
        if isinstance(conv, Outcome):
            return conv
        ts = parse_time(payload.get("created_at")) or now
        if ts is None:
            return Outcome.fail("no_timestamp")
        conv.rebuild(conv.raw, before=ts, with_reply=False)
        conv.answer(ts, pick(payload, "sender", "id"))
        return conv.done()

    def _csat(self, payload: dict[str, Any], now: float | None) -> Outcome:
        if payload.get("content_type") != "input_csat":
            return Outcome.ignore("message_update")
        rating = as_int(pick(payload, "content_attributes", "submitted_values",
                             "csat_survey_response", "rating"))
        if rating is None:
            return Outcome.ignore("csat_not_answered")
        if not 1 <= rating <= 5:
            return Outcome.fail("csat_out_of_range")
        raw_conv = payload.get("conversation")
        account = pick(payload, "account", "id")
        conv = self._conversation(raw_conv if isinstance(raw_conv, dict) else {}, account)
        if isinstance(conv, Outcome):
            return conv
        # the message belongs to (and touches) its conversation: its updated_at is the
        # answer's time; the message's own created_at is when the survey was sent
        ts = (parse_time(pick(payload, "conversation", "updated_at"))
              or parse_time(payload.get("updated_at")) or parse_time(payload.get("created_at"))
              or now)
        if ts is None:
            return Outcome.fail("no_timestamp")
        survey = f"chatwoot:{clean_id(account) or '0'}:{clean_id(payload.get('id'))}"
        return Outcome([event(
            "survey_response", make_id(self.tag, survey, "response"), ts, survey_id=survey,
            kind="csat", score=rating, queue=conv.queue, channel=conv.channel,
            agent_id=self.agent(pick(conv.raw, "meta", "assignee", "id")),
            customer_id=clean_id(pick(conv.raw, "meta", "sender", "id")),
            contact_id=conv.contact_id())])


class _Conversation:
    def __init__(self, mapper: ChatwootMapper, key: str, queue: str, channel: str,
                 raw: dict[str, Any]) -> None:
        self.m, self.key, self.queue, self.channel, self.raw = mapper, key, queue, channel, raw
        self.st: dict[str, Any] = mapper.state.get(NS, key) or {
            "cycle": 1, "offered": False, "answered": False, "ended": False, "last": 0.0}
        self.events: list[Event] = []

    def contact_id(self) -> str:
        cycle = self.st["cycle"]
        return self.key if cycle == 1 else f"{self.key}#{cycle}"

    def _emit(self, kind: str, ts: float, **fields: Any) -> None:
        stamp = max(ts, self.st["last"])
        self.st["last"] = stamp
        contact = self.contact_id()
        self.events.append(event(kind, make_id("cw", contact, kind), stamp,
                                 contact_id=contact, **fields))

    def offer(self, ts: float) -> None:
        if self.st["offered"] or self.st["ended"]:
            return
        self.st["offered"] = True
        self._emit("contact_offered", ts, queue=self.queue, channel=self.channel,
                   customer_id=clean_id(pick(self.raw, "meta", "sender", "id")))

    def rebuild(self, conv: dict[str, Any], before: float | None = None,
                with_reply: bool = True) -> None:
        """A conversation seen first through a later event: its offer (and its first reply,
        if Chatwoot says there was one) from the times the payload carries."""
        if self.st["offered"] or self.st["ended"]:
            return
        created = parse_time(conv.get("created_at"))
        if created is not None and (before is None or created <= before):
            self.offer(created)
        replied = parse_time(conv.get("first_reply_created_at"))
        if with_reply and replied is not None and self.st["offered"]:
            self.answer(replied, pick(conv, "meta", "assignee", "id"))

    def answer(self, ts: float, agent: object) -> None:
        if not self.st["offered"] or self.st["answered"] or self.st["ended"]:
            return
        self.st["answered"] = True
        self.st["agent"] = self.m.agent(agent) or "unknown"
        self._emit("contact_answered", ts, agent_id=self.st["agent"])

    def end(self, ts: float, assignee: object) -> None:
        if not self.st["offered"] or self.st["ended"]:
            return
        self.st["ended"] = True
        if self.st["answered"]:
            self._emit("contact_closed", ts, agent_id=self.m.agent(assignee) or self.st["agent"])
        else:
            self._emit("contact_abandoned", ts)

    def done(self) -> Outcome:
        if not self.events:
            return Outcome.ignore("no_lifecycle_change")
        self.m.state.put(NS, self.key, self.st, self.st["last"])
        return Outcome(self.events)
