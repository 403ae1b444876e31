"""Amazon Connect contact events (EventBridge, ``detail-type: Amazon Connect Contact Event``).

Connect delivers at least once and in no guaranteed order ("events are not ordered,
they have a timestamp", contact-events docs). The envelope ``id`` is the event id, so a
redelivery is a duplicate the engine drops. For order, every Connect event carries the
timestamps of the steps before it (a ``CONNECTED_TO_AGENT`` has ``queueInfo``), so:

* a step whose predecessor has not arrived yet writes the predecessor first, from those
  timestamps, with id ``<envelope id>:<step>`` (``QUEUED`` arriving later is then dropped
  here, as already written);
* a step that arrives after a later one (a ``QUEUED`` after the ``CONNECTED_TO_AGENT``)
  is dropped here, never sent stamped earlier than what the contact already has - so the
  contract's ``out_of_order`` rule is never hit by our own events; if this gateway's state
  was lost, that same rule (and ``unknown_entity``) is what rejects the stale step.
"""

from __future__ import annotations

from typing import Any

from connectors.base import Event, Outcome, clean_id, event, parse_time, pick
from connectors.mapping import Mapper

CHANNELS = {"VOICE": "voice", "CHAT": "chat", "EMAIL": "email"}  # TASK: see docs
NS = "connect"


def _get(obj: object, *names: str) -> Any:
    """Connect's samples spell some keys both ``agentInfo`` and ``AgentInfo``."""
    for name in names:
        value = pick(obj, name)
        if value is not None:
            return value
    return None


def arn_tail(arn: object) -> str | None:
    """``arn:aws:connect:…:instance/…/queue/<id>`` -> ``<id>``."""
    text = clean_id(arn)
    return text.rsplit("/", 1)[-1] if text else None


class ConnectMapper(Mapper):
    source = "amazon-connect"
    tag = "acn"

    def map(self, payload: dict[str, Any], now: float | None) -> Outcome:
        detail = payload.get("detail")
        if not isinstance(detail, dict) or "eventType" not in detail:
            return Outcome.fail("not_a_contact_event")
        kind = str(detail.get("eventType"))
        envelope = clean_id(payload.get("id"))
        contact = clean_id(detail.get("contactId"))
        if envelope is None or contact is None:
            return Outcome.fail("missing_id")
        if kind not in ("QUEUED", "CONNECTED_TO_AGENT", "DISCONNECTED", "COMPLETED"):
            return Outcome.ignore(f"event:{kind}")
        channel = self.channel(detail.get("channel"), CHANNELS)
        if channel is None:
            return Outcome.fail(f"unknown_channel:{detail.get('channel')}")
        sent = parse_time(payload.get("time")) or now
        queue_info = _get(detail, "queueInfo", "QueueInfo")
        agent_info = _get(detail, "agentInfo", "AgentInfo")
        queue_arn = _get(queue_info, "queueArn", "QueueArn")
        agent_arn = _get(agent_info, "agentArn", "AgentArn")
        times = {
            "queued": parse_time(_get(queue_info, "enqueueTimestamp", "EnqueueTimestamp")),
            "answered": parse_time(_get(agent_info, "connectedToAgentTimestamp",
                                        "ConnectedToAgentTimestamp")),
            "ended": parse_time(detail.get("disconnectTimestamp")),
        }
        st: dict[str, Any] = self.state.get(NS, contact) or {"done": [], "last": 0.0}
        if "closed" in st["done"] or "abandoned" in st["done"]:
            return Outcome.ignore("contact_finished")
        ctx = _Contact(self, st, envelope, contact, channel, queue_arn, agent_arn)
        if kind == "QUEUED":
            ctx.offer(times["queued"] or sent, primary=True)
        elif kind == "CONNECTED_TO_AGENT":
            ctx.offer(times["queued"])
            ctx.answer(times["answered"] or sent, primary=True)
        elif kind == "DISCONNECTED":
            if agent_arn is not None or queue_arn is None:
                # answered: closed when after-contact work is done (COMPLETED);
                # never queued (IVR only, outbound): not a queue contact
                return Outcome.ignore("disconnect_not_abandon")
            ctx.offer(times["queued"])
            ctx.end("contact_abandoned", times["ended"] or sent, primary=True)
        else:  # COMPLETED: after-contact work done
            completed = parse_time(_get(agent_info, "afterContactWorkEndTimestamp")) or sent
            ctx.offer(times["queued"])
            if agent_arn is not None:
                ctx.answer(times["answered"])
                ctx.end("contact_closed", completed, primary=True)
            elif queue_arn is not None:
                ctx.end("contact_abandoned", times["ended"] or completed, primary=True)
        if ctx.missing:
            return Outcome.fail(ctx.missing)
        if not ctx.events:
            return Outcome.ignore("already_written")
        self.state.put(NS, contact, st, st["last"])
        return Outcome(ctx.events)


def _renamed(names: dict[str, str], arn: object) -> str | None:
    """The configured name of an ARN (keyed by full ARN or by its id), else its id."""
    if not isinstance(arn, str) or not arn:
        return None
    tail = arn_tail(arn)
    return clean_id(names.get(arn) or (names.get(tail) if tail else None) or tail)


class _Contact:
    """One contact's steps, written at most once each and never back in time."""

    def __init__(self, mapper: ConnectMapper, st: dict[str, Any], envelope: str, contact: str,
                 channel: str, queue_arn: object, agent_arn: object) -> None:
        self.m, self.st, self.envelope, self.contact = mapper, st, envelope, contact
        self.channel, self.queue_arn, self.agent_arn = channel, queue_arn, agent_arn
        self.events: list[Event] = []
        self.missing: str | None = None

    def _write(self, kind: str, step: str, ts: float | None, primary: bool,
               **fields: Any) -> None:
        if step in self.st["done"] or self.missing:
            return
        if ts is None:
            self.missing = f"no_time_for:{step}"
            return
        stamp = max(ts, self.st["last"])
        eid = self.envelope if primary else f"{self.envelope}:{step}"
        self.events.append(event(kind, eid, stamp, contact_id=self.contact, **fields))
        self.st["done"].append(step)
        self.st["last"] = stamp

    def offer(self, ts: float | None, primary: bool = False) -> None:
        if "offered" in self.st["done"]:
            return
        queue = _renamed(self.m.options.queues, self.queue_arn)
        if queue is None:
            self.missing = "no_queue"
            return
        self._write("contact_offered", "offered", ts, primary, queue=queue,
                    channel=self.channel)

    def answer(self, ts: float | None, primary: bool = False) -> None:
        agent = _renamed(self.m.options.agents, self.agent_arn)
        if agent is None:
            self.missing = "no_agent"
            return
        self.st["agent"] = agent
        self._write("contact_answered", "answered", ts, primary, agent_id=agent)

    def end(self, kind: str, ts: float | None, primary: bool) -> None:
        agent = self.st.get("agent") if kind == "contact_closed" else None
        self._write(kind, kind.split("_", 1)[1], ts, primary, agent_id=agent)
