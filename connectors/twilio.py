"""Twilio TaskRouter event callbacks (form-encoded POSTs to the workspace's callback URL).

A task is one contact: ``task-queue.entered`` offers it (its first queue; Flex creates a
new task for a transfer), the first ``reservation.accepted`` answers it, ``task.canceled``
before any acceptance abandons it, ``task.completed`` closes it. "Before any acceptance"
needs memory, hence the per-task state (bounded, see state.py). Workers' activities map
to agent states through ``[twilio.activities]`` (the default workspace activities are
pre-mapped); an activity missing from the map is dead-lettered so it is noticed, not
silently counted as something else.

The signature (``X-Twilio-Signature``) is base64(HMAC-SHA1(auth token, URL + every POST
parameter name and value, sorted by name)), per Twilio's webhook security docs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from connectors.base import Event, Outcome, clean_id, event, make_id, parse_time
from connectors.mapping import Mapper, parse_form

CHANNELS = {"voice": "voice", "chat": "chat", "sms": "messaging", "email": "email",
            "whatsapp": "messaging", "messenger": "messaging", "video": "voice"}
#: Flex chat tasks say which medium in their attributes
CHAT_MEDIA = {"sms": "messaging", "whatsapp": "messaging", "messenger": "messaging",
              "web": "chat", "webchat": "chat", "email": "email"}
NS_TASK, NS_WORKER = "twilio_task", "twilio_worker"


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    data = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    mac = hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def verify_twilio(token: str, url: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    params = parse_form(body)
    if params is None or body.lstrip().startswith(b"{"):
        params = {}
    expected = twilio_signature(token, url, {str(k): str(v) for k, v in params.items()})
    return hmac.compare_digest(expected, header)


class TwilioMapper(Mapper):
    source = "twilio-taskrouter"
    tag = "tw"

    def parse(self, body: bytes) -> dict[str, Any] | None:
        return parse_form(body)

    def map(self, payload: dict[str, Any], now: float | None) -> Outcome:
        kind = payload.get("EventType")
        if not isinstance(kind, str):
            return Outcome.fail("no_event_type")
        ts = (parse_time(payload.get("TimestampMs")) or parse_time(payload.get("Timestamp"))
              or parse_time(payload.get("EventDate")) or now)
        if ts is None:
            return Outcome.fail("no_timestamp")
        base = clean_id(payload.get("Sid")) or make_id(self.tag, orjson.dumps(
            payload, option=orjson.OPT_SORT_KEYS).decode())
        if kind == "worker.activity.update":
            return self._activity(payload, ts, base)
        task = clean_id(payload.get("TaskSid"))
        if kind not in ("task-queue.entered", "reservation.accepted", "task.canceled",
                        "task.completed"):
            return Outcome.ignore(f"event:{kind}")
        if task is None:
            return Outcome.fail("no_task_sid")
        st: dict[str, Any] = self.state.get(NS_TASK, task) or {}
        if st.get("ended"):
            return Outcome.ignore("task_finished")
        events: list[Event] = []
        if kind == "task-queue.entered":
            if st.get("offered"):
                return Outcome.ignore("requeued")
            offer = self._offer(payload, task, ts, base, st)
            if isinstance(offer, Outcome):
                return offer
            events.append(offer)
        elif kind == "reservation.accepted":
            if st.get("accepted"):
                return Outcome.ignore("accepted_again")
            if not st.get("offered"):
                entered = parse_time(payload.get("TaskQueueEnteredDate"))
                if entered is None:
                    return Outcome.fail("accepted_without_offer")
                offer = self._offer(payload, task, entered, f"{base}:offered", st)
                if isinstance(offer, Outcome):
                    return offer
                events.append(offer)
            agent = self.agent(payload.get("WorkerName") or payload.get("WorkerSid"))
            if agent is None:
                return Outcome.fail("no_worker")
            st["accepted"], st["agent"] = True, agent
            events.append(self._step(st, "contact_answered", base, task, ts, agent_id=agent))
        else:  # task.canceled / task.completed
            if not st.get("offered"):
                return Outcome.ignore("unknown_task")
            if st.get("accepted"):
                events.append(self._step(st, "contact_closed", base, task, ts,
                                         agent_id=st.get("agent")))
            else:
                events.append(self._step(st, "contact_abandoned", base, task, ts))
            st["ended"] = True
        self.state.put(NS_TASK, task, st, st["last"])
        return Outcome(events)

    def _offer(self, payload: dict[str, Any], task: str, ts: float, eid: str,
               st: dict[str, Any]) -> Event | Outcome:
        queue = self.queue(payload.get("TaskQueueName") or payload.get("TaskQueueSid"))
        if queue is None:
            return Outcome.fail("no_queue")
        attrs = _attributes(payload.get("TaskAttributes"))
        raw_channel = payload.get("TaskChannelUniqueName")
        channel = self.channel(raw_channel, CHANNELS)
        medium = attrs.get("channelType")
        if raw_channel == "chat" and isinstance(medium, str):
            channel = self.channel(medium, CHAT_MEDIA) or channel
        if channel is None:
            return Outcome.fail(f"unknown_channel:{raw_channel}")
        customer = clean_id(attrs.get("from") or attrs.get("caller")
                            or attrs.get("customerAddress"))
        st["offered"], st["last"] = True, ts
        return event("contact_offered", eid, ts, contact_id=task, queue=queue,
                     channel=channel, customer_id=customer)

    @staticmethod
    def _step(st: dict[str, Any], kind: str, eid: str, task: str, ts: float,
              **fields: Any) -> Event:
        stamp = max(ts, st.get("last", 0.0))
        st["last"] = stamp
        return event(kind, eid, stamp, contact_id=task, **fields)

    def _activity(self, payload: dict[str, Any], ts: float, eid: str) -> Outcome:
        name = payload.get("WorkerActivityName")
        agent = self.agent(payload.get("WorkerName") or payload.get("WorkerSid"))
        if agent is None:
            return Outcome.fail("no_worker")
        state = self.options.twilio_activities.get(str(name))
        if state is None:
            return Outcome.fail(f"unknown_activity:{name}")
        last = self.state.get(NS_WORKER, agent)
        if last is not None and ts < last["ts"]:
            return Outcome.ignore("stale_activity")  # a late callback: a newer one applied
        self.state.put(NS_WORKER, agent, {"ts": ts}, ts)
        return Outcome([event("agent_state", eid, ts, agent_id=agent, state=state)])


def _attributes(raw: object) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}
