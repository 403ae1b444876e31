"""Tickets and surveys: the slow work of the center, beside the real-time contacts.

Tickets (mostly e-mail cases) are worked between contacts and take hours, so they are
not routed through the agents' real-time states: their lifecycle is drawn from
long-tailed timings (first reply by priority, more replies, resolution, sometimes a
reopening), and the replies come from agents of the ticket's queue, preferably ones
logged in at that moment. Surveys follow a closed contact or a resolved ticket; the
customer's mood (a slow answer, an unlucky agent, a reopened ticket) moves the score.

``BackOffice`` is mixed into the generator, like ``BadEvents``: it reads the
generator's random source and scheduler, so it is as deterministic as the rest.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections import deque
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from stream_app.tools.simulator.bad import CHANNELS, HOUR, KIND_RANGE, OPEN, RESOLVED, WAITING

FIRST_REPLY = {"urgent": 600, "high": 1800, "normal": 3600, "low": 7200}  # median s
PRIORITIES, PRIORITY_CUM = ("low", "normal", "high", "urgent"), list(accumulate((20, 55, 20, 5)))
TICKET_CHANNEL_CUM = list(accumulate((20, 15, 50, 10, 5)))  # tickets come mostly by email
EXTRA_REPLIES_CUM = list(accumulate((50, 30, 15, 5)))
CONTACTS_CUM = list(accumulate((70, 18, 8, 4)))
KINDS = ("csat", "nps", "ces")
VOICE_KIND_CUM, TEXT_KIND_CUM = list(accumulate((50, 30, 20))), list(accumulate((50, 15, 35)))
TICKET_KIND_CUM = list(accumulate((40, 20, 40)))
REOPEN_P, REOPEN_CAP = 0.08, 11.5 * HOUR  # stays well inside a 12 h promise
CONTACT_SURVEY_P, TICKET_SURVEY_P = 0.35, 0.3
SURVEY_RESPONSE_P, SURVEY_ORPHAN_P = 0.4, 0.06
RETENTION = 24 * HOUR
# kind: (mean, sd, drop per unit of bad mood); clamped into the range, so always valid
SCORE_MODEL = {"csat": (4.2, 0.9, 0.9), "nps": (8.0, 1.8, 2.2), "ces": (5.6, 1.1, 1.2)}


class Contact:
    __slots__ = ("id", "queue", "channel", "customer", "agent", "state", "last", "wait")

    def __init__(self, cid: str, queue: int, channel: str, customer: str | None, t: float):
        self.id, self.queue, self.channel, self.customer = cid, queue, channel, customer
        self.agent: Any = None  # the Agent once answered
        self.state, self.last, self.wait = WAITING, t, 0.0


class Ticket:
    __slots__ = ("id", "queue", "channel", "customer", "owner", "state", "opened", "last",
                 "replies_left", "contacts", "reopened")

    def __init__(self, tid: str, queue: int, channel: str, customer: str | None, t: float):
        self.id, self.queue, self.channel, self.customer = tid, queue, channel, customer
        self.owner: Any = None  # an Agent of the queue
        self.state, self.opened, self.last = OPEN, t, t
        self.replies_left, self.contacts, self.reopened = 0, 1, False


class Survey:
    __slots__ = ("id", "kind", "queue", "channel", "agent", "customer", "ref", "mood",
                 "responds", "orphan")

    def __init__(self, sid: str, kind: str, ent: Contact | Ticket, agent: str | None,
                 mood: float, responds: bool, orphan: bool):
        self.id, self.kind, self.queue, self.channel = sid, kind, ent.queue, ent.channel
        self.agent, self.customer, self.mood = agent, ent.customer, mood
        self.responds, self.orphan = responds, orphan
        self.ref = ("contact_id" if isinstance(ent, Contact) else "ticket_id", ent.id)


class BackOffice:
    """Mixin: ticket and survey steps (``_reply``, ``_resolve``, ...)."""

    # Provided by the generator.
    rng: random.Random
    queue_names: list[str]
    products: list[tuple[str, ...]]
    roster: list[list[Any]]  # agents per queue
    open_tickets: deque[Ticket]
    resolved: deque[Ticket]
    _push: Callable[[float, int, Any], None]
    _emit: Callable[[float, str, dict[str, Any]], None]
    _id: Callable[[str], str]
    _lognorm: Callable[[float, float, float], float]
    REPLY: int
    RESOLVE: int
    REOPEN: int
    SENT: int
    RESPONSE: int

    def _draw(self, items: Sequence[Any], cum: Sequence[float]) -> Any:
        return items[bisect(cum, self.rng.random() * cum[-1])]

    def _worker(self, queue: int) -> Any:
        """An agent of the queue, one logged in unless none of them is."""
        roster, rng = self.roster[queue], self.rng
        for _ in range(3):  # most of the day a few tries find one: no list to build
            agent = roster[int(rng.random() * len(roster))]
            if agent.state:  # 0 is offline
                return agent
        on_floor = [a for a in roster if a.state]
        pool = on_floor or roster
        return pool[int(rng.random() * len(pool))]

    def _new_ticket(self, t: float, queue: int, customer: str | None) -> None:
        rng = self.rng
        channel = self._draw(CHANNELS, TICKET_CHANNEL_CUM)
        tk = Ticket(self._id("t"), queue, channel, customer, t)
        priority = self._draw(PRIORITIES, PRIORITY_CUM)
        fields: dict[str, Any] = {"ticket_id": tk.id, "queue": self.queue_names[queue],
                                  "channel": channel}
        if customer:
            fields["customer_id"] = customer
        fields["priority"] = priority
        fields["product"] = rng.choice(self.products[queue])
        self._emit(t, "ticket_opened", fields)
        self.open_tickets.append(tk)
        tk.owner = self._worker(queue)
        tk.replies_left = self._draw((0, 1, 2, 3), EXTRA_REPLIES_CUM)
        self._push(t + self._lognorm(FIRST_REPLY[priority], 0.9, 10 * HOUR), self.REPLY, tk)

    def _reply(self, t: float, tk: Ticket) -> None:
        owner = tk.owner
        agent = owner if owner.state and self.rng.random() < 0.9 else self._worker(tk.queue)
        tk.last = t
        self._emit(t, "ticket_replied", {"ticket_id": tk.id, "agent_id": agent.id})
        self.open_tickets.append(tk)
        if tk.replies_left > 0:
            tk.replies_left -= 1
            self._push(t + self._lognorm(2400, 0.8, 6 * HOUR), self.REPLY, tk)
        else:
            self._push(t + self._lognorm(1800, 1.0, 8 * HOUR), self.RESOLVE, tk)

    def _resolve(self, t: float, tk: Ticket) -> None:
        rng = self.rng
        if not tk.reopened:
            tk.contacts = self._draw((1, 2, 3, 4), CONTACTS_CUM)
        fields: dict[str, Any] = {"ticket_id": tk.id, "contacts": tk.contacts}
        if rng.random() < 0.8:
            fields["agent_id"] = tk.owner.id
        tk.state, tk.last = RESOLVED, t
        self._emit(t, "ticket_resolved", fields)
        self.resolved.append(tk)
        if not tk.reopened and rng.random() < REOPEN_P:
            self._push(t + self._lognorm(3600, 0.8, REOPEN_CAP), self.REOPEN, tk)
        if rng.random() < TICKET_SURVEY_P:
            mood = (tk.contacts > 2) + tk.reopened + (t - tk.opened > RETENTION) * 0.5
            kind = self._draw(KINDS, TICKET_KIND_CUM)
            agent = tk.owner.id if "agent_id" in fields else None
            self._survey(t + rng.uniform(60, 600), tk, kind, agent, mood)

    def _reopen(self, t: float, tk: Ticket) -> None:
        tk.state, tk.last, tk.reopened = OPEN, t, True
        tk.contacts = min(tk.contacts + 1, 6)
        self._emit(t, "ticket_reopened", {"ticket_id": tk.id})
        self.open_tickets.append(tk)
        if self.rng.random() < 0.7:
            self._push(t + self._lognorm(1200, 0.8, 4 * HOUR), self.REPLY, tk)
        else:
            self._push(t + self._lognorm(2400, 0.8, 6 * HOUR), self.RESOLVE, tk)

    def _contact_survey(self, t: float, c: Contact) -> None:
        """After a close: a slow answer or an agent in a bad mood lowers the score."""
        slow = 1.0 if c.wait > (60 if c.channel in ("voice", "chat") else 3600) else 0.0
        kind = self._draw(KINDS, VOICE_KIND_CUM if c.channel == "voice" else TEXT_KIND_CUM)
        self._survey(t + self.rng.uniform(5, 120), c, kind, c.agent.id, slow - c.agent.mood)

    def _survey(self, t: float, ent: Contact | Ticket, kind: str, agent: str | None,
                mood: float) -> None:
        rng = self.rng
        responds = rng.random() < SURVEY_RESPONSE_P
        orphan = responds and rng.random() < SURVEY_ORPHAN_P  # the survey tool lost the "sent"
        agent = agent if rng.random() < 0.85 else None
        self._push(t, self.SENT, Survey(self._id("s"), kind, ent, agent, mood, responds, orphan))

    def _survey_fields(self, s: Survey) -> dict[str, Any]:
        fields: dict[str, Any] = {"survey_id": s.id, "kind": s.kind,
                                  "queue": self.queue_names[s.queue], "channel": s.channel}
        if s.agent:
            fields["agent_id"] = s.agent
        if s.customer:
            fields["customer_id"] = s.customer
        fields[s.ref[0]] = s.ref[1]
        return fields

    def _sent(self, t: float, s: Survey) -> None:
        if s.responds:
            self._push(t + self._lognorm(900, 1.0, 6 * HOUR), self.RESPONSE, s)
        if not s.orphan:
            self._emit(t, "survey_sent", self._survey_fields(s))

    def _response(self, t: float, s: Survey) -> None:
        fields = self._survey_fields(s)
        fields["score"] = self._score(s.kind, s.mood)
        self._emit(t, "survey_response", fields)

    def _score(self, kind: str, mood: float) -> int:
        lo, hi = KIND_RANGE[kind]
        mu, sd, drop = SCORE_MODEL[kind]
        return max(lo, min(hi, round(mu - drop * mood + sd * self.rng.gauss(0, 1))))
