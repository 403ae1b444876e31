"""Zendesk tickets: event webhooks (live), the Incremental Ticket Event Export (backfill),
and CSAT through a trigger webhook whose JSON body docs/connectors.md gives.

A ticket's lifecycle ids are ``(ticket, step, cycle)`` hashes, the same whichever of the
three inputs saw the step, so a backfill overlapping the live webhooks writes each step
once. Per-ticket state (bounded, state.py) answers what one webhook cannot: was there
already a public agent reply (only the first is ``ticket_replied``), how many public
comments did the requester write (``contacts`` of ``ticket_resolved``, at least 1), is
the ticket currently solved (so solved -> open is a reopen)?

Webhook signatures: ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(secret,
timestamp + body)) with the timestamp from ``X-Zendesk-Webhook-Signature-Timestamp``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from connectors.base import Event, Outcome, as_int, clean_id, event, make_id, parse_time, pick
from connectors.mapping import Mapper

#: ``via.channel`` -> contract channel; anything else counts as email (a ticket's usual
#: medium) unless ``[channels]`` says otherwise.
CHANNELS = {
    "email": "email", "mail": "email", "web": "email", "web form": "email", "api": "email",
    "web_service": "email", "voice": "voice", "phone": "voice", "phone call": "voice",
    "chat": "chat", "web_widget": "chat", "chat_transcript": "chat",
    "native_messaging": "messaging", "messaging": "messaging", "sms": "messaging",
    "whatsapp": "messaging", "line": "messaging", "wechat": "messaging",
    "mobile_sdk": "messaging", "sunshine_conversations_api": "messaging",
    "facebook": "social", "twitter": "social", "instagram_dm": "social",
    "facebook_messenger": "social", "x_corp": "social",
}
OPEN_STATUSES = {"new", "open", "pending", "hold"}
SOLVED_STATUSES = {"solved", "closed"}
NS = "zendesk_ticket"
NO_GROUP = "unassigned"


def verify_zendesk(secret: str, body: bytes, signature: str | None,
                   timestamp: str | None) -> bool:
    if not signature or not timestamp:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(mac).decode(), signature.strip())


def csat_score(rating: object) -> int | None:
    """Zendesk's CSAT is good/bad (mapped 5/1: ``csat`` counts scores >= 4 as satisfied);
    a 1-5 number is taken as it is."""
    number = as_int(rating)
    if number is not None:
        return number if 1 <= number <= 5 else None
    text = str(rating or "").strip().lower()
    if text.startswith("good"):
        return 5
    if text.startswith("bad"):
        return 1
    return None


class ZendeskMapper(Mapper):
    source = "zendesk"
    tag = "zd"

    def map(self, payload: dict[str, Any], now: float | None) -> Outcome:
        kind = payload.get("type")
        if isinstance(kind, str) and kind.startswith("zen:event-type:ticket."):
            return self._webhook(kind.rsplit(".", 1)[1], payload, now)
        if payload.get("kpi_stream") == "zendesk_satisfaction":
            return self._satisfaction(payload, now)
        if isinstance(payload.get("ticket_events"), list):
            events: list[Event] = []
            for item in payload["ticket_events"]:
                if isinstance(item, dict):
                    events += self._audit(item).events
            return Outcome(events) if events else Outcome.ignore("no_lifecycle_change")
        if "child_events" in payload and "ticket_id" in payload:
            return self._audit(payload)
        if isinstance(kind, str) and kind.startswith("zen:event-type:"):
            return Outcome.ignore(f"event:{kind.rsplit(':', 1)[1]}")
        return Outcome.fail("not_a_ticket_event")

    # --- event webhooks ----------------------------------------------------------------
    def _webhook(self, kind: str, payload: dict[str, Any], now: float | None) -> Outcome:
        raw_detail = payload.get("detail")
        detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
        ticket = clean_id(detail.get("id")) or clean_id(
            str(payload.get("subject", "")).rsplit(":", 1)[-1])
        ts = parse_time(payload.get("time")) or parse_time(detail.get("updated_at")) or now
        if ticket is None or ts is None:
            return Outcome.fail("no_ticket_or_time")
        ticket_info = {"group": detail.get("group_id"), "via": pick(detail, "via", "channel"),
                       "requester": detail.get("requester_id"),
                       "priority": detail.get("priority"),
                       "created": parse_time(detail.get("created_at")) or ts,
                       "assignee": detail.get("assignee_id")}
        t = _Ticket(self, ticket)
        if kind == "created":
            t.open(ticket_info)
        elif kind == "status_changed":
            t.open(ticket_info)
            t.status(str(pick(payload, "event", "current") or detail.get("status") or ""), ts,
                     detail.get("assignee_id"))
        elif kind == "comment_added":
            comment = pick(payload, "event", "comment") or {}
            t.open(ticket_info)
            t.comment(ts, bool(comment.get("is_public")), pick(comment, "author", "id"),
                      pick(comment, "author", "is_staff"))
        else:
            return Outcome.ignore(f"event:ticket.{kind}")
        return t.done()

    # --- incremental export ------------------------------------------------------------
    def _audit(self, audit: dict[str, Any]) -> Outcome:
        ticket = clean_id(audit.get("ticket_id"))
        ts = parse_time(audit.get("created_at")) or parse_time(audit.get("timestamp"))
        if ticket is None or ts is None:
            return Outcome.fail("no_ticket_or_time")
        children = [c for c in audit.get("child_events") or [] if isinstance(c, dict)]
        created = {k: v for c in children if c.get("event_type") == "Create"
                   for k, v in c.items()}
        t = _Ticket(self, ticket)
        via = audit.get("via")
        info = {"group": created.get("group_id"), "requester": created.get("requester_id"),
                "priority": created.get("priority"), "created": ts,
                "via": via.get("channel") if isinstance(via, dict) else via}
        if created:
            t.open(info)
        for child in children:
            etype = child.get("event_type")
            if etype == "Comment":
                t.comment(parse_time(child.get("created_at")) or ts, bool(child.get("public")),
                          child.get("author_id"), None)
            elif etype == "Change" and "status" in child:
                t.status(str(child["status"]), ts, audit.get("updater_id"))
            elif etype == "Change" and "group_id" in child:
                t.st["group"] = self.queue(child["group_id"]) or t.st.get("group")
            if "satisfaction_score" in child and csat_score(child["satisfaction_score"]):
                t.csat(ts, csat_score(child["satisfaction_score"]), str(audit.get("id", ts)))
        if not any(c.get("event_type") == "Comment" for c in children):
            present = any(c.get("comment_present") for c in children)
            public = any(c.get("comment_public") for c in children)
            if present:  # export without the comment_events sideload: the updater wrote it
                t.comment(ts, public, audit.get("updater_id"), None)
        return t.done()

    # --- CSAT trigger webhook ------------------------------------------------------------
    def _satisfaction(self, payload: dict[str, Any], now: float | None) -> Outcome:
        ticket = clean_id(payload.get("ticket_id"))
        score = csat_score(payload.get("rating"))
        ts = parse_time(payload.get("time")) or now
        if ticket is None or ts is None:
            return Outcome.fail("no_ticket_or_time")
        if score is None:
            return Outcome.ignore("not_rated")  # "offered", "unoffered", empty
        t = _Ticket(self, ticket)
        t.csat(ts, score, str(payload.get("time")), queue=payload.get("group"),
               via=payload.get("channel"), agent=payload.get("agent"),
               customer=payload.get("requester"))
        return t.done()


class _Ticket:
    """One ticket's state and the events one payload adds to it."""

    def __init__(self, mapper: ZendeskMapper, ticket: str) -> None:
        self.m, self.ticket = mapper, ticket
        self.st: dict[str, Any] = mapper.state.get(NS, ticket) or {
            "opened": False, "solved": False, "replied": False, "cycle": 0, "comments": 0,
            "last": 0.0}
        self.events: list[Event] = []

    def _emit(self, kind: str, step: str, ts: float, **fields: Any) -> None:
        stamp = max(ts, self.st["last"])
        self.st["last"] = stamp
        self.events.append(event(kind, make_id("zd", self.ticket, step, self.st["cycle"]),
                                 stamp, ticket_id=self.ticket, **fields))

    def _channel(self, via: object) -> str:
        text = str(via or "").strip()
        return self.m.channel(text, CHANNELS) or self.m.options.channels.get("*") or "email"

    def open(self, info: dict[str, Any]) -> None:
        if info.get("requester") is not None:
            self.st["requester"] = str(info["requester"])
        if self.st["opened"]:
            return
        self.st["opened"] = True
        group = self.m.queue(info.get("group")) or NO_GROUP
        self.st["group"], self.st["channel"] = group, self._channel(info.get("via"))
        priority = info.get("priority")
        self._emit("ticket_opened", "opened", info["created"], queue=group,
                   channel=self.st["channel"], customer_id=clean_id(info.get("requester")),
                   priority=clean_id(priority.lower()) if isinstance(priority, str) else None)

    def status(self, status: str, ts: float, agent: object) -> None:
        status = status.lower()
        if not self.st["opened"]:
            return
        if status in SOLVED_STATUSES and not self.st["solved"]:
            self.st["solved"] = True
            self._emit("ticket_resolved", "resolved", ts,
                       contacts=max(1, int(self.st["comments"])), agent_id=self.m.agent(agent))
        elif status in OPEN_STATUSES and self.st["solved"]:
            self.st["solved"] = False
            self.st["cycle"] += 1
            self._emit("ticket_reopened", "reopened", ts)

    def comment(self, ts: float, public: bool, author: object, staff: object) -> None:
        if not public or not self.st["opened"]:
            return
        author_id = str(author) if author is not None else None
        requester = self.st.get("requester")
        by_requester = author_id == requester if staff is None else (
            staff is False or author_id == requester)
        if by_requester:
            self.st["comments"] += 1
        elif not self.st["replied"] and not self.st["solved"] and self.m.agent(author):
            # the contract takes replies only while the ticket is open
            self.st["replied"] = True
            self._emit("ticket_replied", "replied", ts, agent_id=self.m.agent(author))

    def csat(self, ts: float, score: int | None, rating_key: str, queue: object = None,
             via: object = None, agent: object = None, customer: object = None) -> None:
        survey = f"zendesk-{self.ticket}"
        self.events.append(event(
            "survey_response", make_id("zd", survey, rating_key, score), ts,
            survey_id=survey, kind="csat", score=score,
            queue=self.m.queue(queue) or self.st.get("group") or NO_GROUP,
            channel=self._channel(via) if via else self.st.get("channel", "email"),
            agent_id=self.m.agent(agent), customer_id=clean_id(customer) or clean_id(
                self.st.get("requester")), ticket_id=self.ticket))

    def done(self) -> Outcome:
        self.m.state.put(NS, self.ticket, self.st, self.st["last"])
        return Outcome(self.events) if self.events else Outcome.ignore("no_lifecycle_change")
