"""The simulator's bad events: one per rejection reason of contract section 4.

Kept apart from the realistic stream so each can be read on its own. ``BadEvents`` is
mixed into the generator: it reads the generator's recent entities and its random
source, so bad events are as deterministic as good ones. Version 2 of the contract
brought agent states and id-typed ticket fields, so there are bad ones of those too:
an unknown state, a queue list that is no list of ids, a non-string priority or
product, an agent state stamped before the agent's previous one. Leaf module (no
project imports), which is why the small contract vocabulary shared with the generator
lives here too.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

HOUR = 3600
CHANNELS = ("voice", "chat", "email", "messaging", "social")
KIND_RANGE = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
WAITING, ANSWERED, CLOSED, ABANDONED = range(4)  # contact states
OPEN, RESOLVED = range(2)  # ticket states

# A reason is drawn uniformly, then one of its variants uniformly.
BAD_VARIANTS: dict[str, tuple[str, ...]] = {
    "invalid_json": ("truncated", "array", "number", "bad_utf8"),
    "schema": ("missing_field", "wrong_type", "empty_id", "long_id", "bad_ts",
               "unknown_channel", "unknown_kind", "unknown_state", "queues_not_array",
               "queues_empty_id", "ticket_id_fields"),
    "unknown_type": ("contact_transferred", "ticket_escalated", "survey_clicked", "agent_login"),
    "out_of_range": ("csat", "nps", "ces", "contacts_zero"),
    "too_late": ("offered", "opened", "response", "closed"),
    "future_ts": ("response", "sent"),
    "duplicate": ("resend",),
    "unknown_entity": ("ghost_answer", "ghost_resolve", "second_close", "answer_after_abandon",
                       "reply_to_resolved", "reopen_open"),
    "out_of_order": ("close_before_answer", "answer_before_offer", "reply_before_last",
                     "resolve_before_last", "agent_state_before_last"),
}
BAD_REASONS = tuple(BAD_VARIANTS)
BAD_TS = ("yesterday", "2026-02-30T10:00:00Z", "2026-11-22T25:61:00Z", "22/11/2026 10:00")
TOO_LATE_BY = 30 * HOUR  # retention (24 h) plus a margin no clock drift can eat
FUTURE_BY = 2 * HOUR  # far beyond the 300 s skew


def iso(t: float, plus_one: bool = False) -> str:
    """ISO-8601 with milliseconds; floor to the ms so a time-ordered stream stays ordered."""
    sec, milli = divmod(int(t * 1000), 1000)
    if plus_one:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec + HOUR)) + f".{milli:03d}+01:00"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{milli:03d}Z"


class BadEvents:
    """Mixin: ``_bad`` is the heap action that emits one bad event."""

    # Provided by the generator.
    rng: random.Random
    tag: str
    n_ev: itertools.count[int]
    bad_rate: float
    n_good: int
    queue_names: list[str]
    recent_good: deque[bytes]
    agents: list[Any]
    waiting_recent: deque[Any]
    answered: deque[Any]
    closed: deque[Any]
    abandoned: deque[Any]
    open_tickets: deque[Any]
    resolved: deque[Any]
    _push: Callable[[float, int, Any], None]
    _id: Callable[[str], str]
    _worker: Callable[[int], Any]
    _clock: Callable[[float], float]
    out: list[tuple[float, bytes, str | None]]
    BAD_ACTION: int

    def _bad(self, t: float, _: Any) -> None:
        """``t`` and ``bad_rate`` are on the model's clock; the bad event, on event time:
        late, future and out-of-order offsets are about the consumer's clock, not the
        center's pace."""
        rng = self.rng
        self._push(t + rng.expovariate(self.bad_rate), self.BAD_ACTION, None)
        t = self._clock(t)
        if not self.n_good:
            return  # no clock yet downstream: a too_late event could still be accepted
        reason = rng.choice(BAD_REASONS)
        variants = list(BAD_VARIANTS[reason])
        first = rng.choice(variants)
        variants.remove(first)
        rng.shuffle(variants)
        for variant in (first, *variants):  # fall back when no entity fits the variant yet
            data = self._make_bad(t, reason, variant)
            if data is not None:
                self.out.append((t, data, f"{reason}/{variant}"))
                return

    def _pick(self, pool: deque[Any], state: int) -> Any:
        for _ in range(6):
            if not pool:
                return None
            ent = pool[self.rng.randrange(len(pool))]
            if ent.state == state:
                return ent
        return None

    def _pick_agent(self) -> Any:
        """An agent with a state already sent: only it can get one out of order."""
        for _ in range(6):
            a = self.agents[int(self.rng.random() * len(self.agents))]
            if a.last_ts >= 0:
                return a
        return None

    def _make_bad(self, t: float, reason: str, variant: str) -> bytes | None:
        """One bad event whose FIRST failing contract check is ``reason``; None if impossible."""
        rng, now = self.rng, iso(t)
        q = int(rng.random() * len(self.queue_names))
        queue = self.queue_names[q]
        channel = rng.choice(CHANNELS)

        def ev(etype: str, ts: str = now, **fields: Any) -> dict[str, Any]:
            eid = f"ev-{self.tag}-{next(self.n_ev)}"
            return {"event_id": eid, "type": etype, "ts": ts, **fields}

        def offered(ts: str = now) -> dict[str, Any]:
            return ev("contact_offered", ts, contact_id=self._id("c"), queue=queue,
                      channel=channel)

        def survey(etype: str, kind: str = "csat", ts: str = now) -> dict[str, Any]:
            d = ev(etype, ts, survey_id=self._id("s"), kind=kind, queue=queue, channel=channel)
            if etype == "survey_response":
                d["score"] = rng.randint(*KIND_RANGE[kind])
            return d

        agent = self._worker(q).id

        def state(ts: str = now, **fields: Any) -> dict[str, Any]:
            return ev("agent_state", ts, **{"agent_id": agent, "state": "available", **fields})
        d: dict[str, Any] | None = None
        if reason == "duplicate":
            return rng.choice(self.recent_good)  # a redelivery, byte for byte
        if reason == "invalid_json":
            src = rng.choice(self.recent_good)
            if variant == "truncated":
                return src[: rng.randint(10, len(src) - 2)]
            if variant == "array":
                return b"[" + src + b"]"
            if variant == "number":
                return str(rng.randrange(1, 10**6)).encode()
            return orjson.dumps({**offered(), "customer_id": "cust-@@"}).replace(b"@@", b"\xff\xfe")
        if reason == "schema":
            if variant == "missing_field":
                d = offered()
                del d[rng.choice(("channel", "queue", "contact_id", "ts", "event_id"))]
            elif variant == "wrong_type":
                d = rng.choice((
                    lambda: {**offered(), "contact_id": rng.randrange(10**6)},
                    lambda: {**survey("survey_response"), "score": "4"},
                    lambda: ev("ticket_resolved", ticket_id=self._id("t"), contacts="1"),
                    lambda: {**offered(), "ts": int(t)}))()
            elif variant == "empty_id":
                d = {**offered(), rng.choice(("contact_id", "event_id")): ""}
            elif variant == "long_id":
                d = {**offered(), "contact_id": "c-" + "9" * rng.randint(127, 300)}
            elif variant == "bad_ts":
                d = offered(rng.choice(BAD_TS))
            elif variant == "unknown_channel":
                d = {**offered(), "channel": rng.choice(("fax", "pager", "carrier-pigeon"))}
            elif variant == "unknown_kind":
                d = {**survey(rng.choice(("survey_sent", "survey_response"))),
                     "kind": rng.choice(("stars", "thumbs", "nes"))}
            elif variant == "unknown_state":
                d = state(state=rng.choice(("ringing", "away", "lunch", "AVAILABLE", "")))
            elif variant == "queues_not_array":
                d = state(queues=rng.choice((queue, {"queue": queue}, 3,
                                             [queue] * rng.randint(101, 120))))
            elif variant == "queues_empty_id":
                d = state(queues=rng.choice(([queue, ""], [""], [queue, 7], [queue, "q" * 129])))
            else:  # ticket_id_fields: v2 makes priority and product ids
                d = ev("ticket_opened", ticket_id=self._id("t"), queue=queue, channel=channel)
                bad = rng.choice((3, 1.5, True, ["high"], {"level": 1}))
                d[rng.choice(("priority", "product"))] = bad
        elif reason == "unknown_type":
            if variant == "contact_transferred":
                d = ev(variant, contact_id=self._id("c"), queue=queue)
            elif variant == "ticket_escalated":
                d = ev(variant, ticket_id=self._id("t"), priority="urgent")
            elif variant == "survey_clicked":
                d = ev(variant, survey_id=self._id("s"))
            else:
                d = ev(variant, agent_id=agent)
        elif reason == "out_of_range":
            if variant == "contacts_zero":
                tk = self._pick(self.open_tickets, OPEN)
                d = ev("ticket_resolved", ticket_id=tk.id if tk else self._id("t"),
                       contacts=rng.choice((0, -1)))
            else:
                lo, hi = KIND_RANGE[variant]
                d = {**survey("survey_response", variant),
                     "score": rng.choice((lo - 1, hi + 1, hi + 5))}
        elif reason == "too_late":
            old = iso(t - TOO_LATE_BY - rng.uniform(0, HOUR))
            if variant == "offered":
                d = offered(old)
            elif variant == "opened":
                d = ev("ticket_opened", old, ticket_id=self._id("t"), queue=queue, channel=channel)
            elif variant == "response":
                d = survey("survey_response", rng.choice(tuple(KIND_RANGE)), old)
            elif c := self._pick(self.answered, ANSWERED):
                d = ev("contact_closed", old, contact_id=c.id)
        elif reason == "future_ts":
            ahead = iso(t + FUTURE_BY + rng.uniform(0, 600))
            d = survey("survey_response" if variant == "response" else "survey_sent", "nps", ahead)
        elif reason == "unknown_entity":
            if variant == "ghost_answer":
                d = ev("contact_answered", contact_id=self._id("c"), agent_id=agent)
            elif variant == "ghost_resolve":
                d = ev("ticket_resolved", ticket_id=self._id("t"), contacts=1)
            elif variant == "second_close" and (c := self._pick(self.closed, CLOSED)):
                d = ev("contact_closed", contact_id=c.id)
            elif variant == "answer_after_abandon" and (c := self._pick(self.abandoned, ABANDONED)):
                d = ev("contact_answered", contact_id=c.id, agent_id=agent)
            elif variant == "reply_to_resolved" and (tk := self._pick(self.resolved, RESOLVED)):
                d = ev("ticket_replied", ticket_id=tk.id, agent_id=agent)
            elif variant == "reopen_open" and (tk := self._pick(self.open_tickets, OPEN)):
                d = ev("ticket_reopened", ticket_id=tk.id)
        else:  # out_of_order: valid for the entity's state, but stamped before its last event
            back = rng.uniform(1, 60)

            def before(last: float) -> str:  # entities keep the model's clock
                return iso(self._clock(last) - back)

            if variant == "close_before_answer" and (c := self._pick(self.answered, ANSWERED)):
                d = ev("contact_closed", before(c.last), contact_id=c.id)
            elif variant == "answer_before_offer" and (c := self._pick(self.waiting_recent,
                                                                       WAITING)):
                d = ev("contact_answered", before(c.last), contact_id=c.id, agent_id=agent)
            elif variant == "reply_before_last" and (tk := self._pick(self.open_tickets, OPEN)):
                d = ev("ticket_replied", before(tk.last), ticket_id=tk.id, agent_id=agent)
            elif variant == "resolve_before_last" and (tk := self._pick(self.open_tickets, OPEN)):
                d = ev("ticket_resolved", before(tk.last), ticket_id=tk.id, contacts=1)
            elif variant == "agent_state_before_last":
                a = self._pick_agent()
                if a is not None:
                    d = ev("agent_state", before(a.last_ts), agent_id=a.id,
                           state=rng.choice(("available", "paused", "offline")))
        return None if d is None else orjson.dumps(d)
