"""The simulated contact center: queues, channels, agents and the lifecycles of
contacts, tickets and surveys, with realistic (long-tailed) timings.

Each entity schedules only its next step, so the stream comes out in event-time
order and memory holds just the entities in progress. Everything random comes from
one ``random.Random(seed)``: same arguments, same bytes.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from bisect import bisect
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from heapq import heappush
from itertools import accumulate
from statistics import NormalDist
from typing import Any

from orjson import dumps

from stream_app.tools.simulator.bad import (
    ABANDONED,
    ANSWERED,
    CHANNELS,
    CLOSED,
    HOUR,
    KIND_RANGE,
    OPEN,
    RESOLVED,
    WAITING,
    BadEvents,
    iso,
)

# queue: (share of new work, wait factor, agents, channel weights in CHANNELS order, products)
QUEUES: dict[str, tuple[float, float, tuple[int, ...], tuple[int, ...], tuple[str, ...]]] = {
    "billing": (0.35, 1.0, (1, 2, 3, 4, 5, 6), (50, 20, 18, 8, 4), ("invoices", "payments")),
    "tech": (0.30, 1.4, (7, 8, 9, 10, 11, 12, 13), (40, 35, 10, 10, 5), ("app", "router", "api")),
    "sales": (0.20, 0.6, (13, 14, 15, 16, 17), (55, 25, 8, 7, 5), ("upgrades", "new-plans")),
    "returns": (0.15, 1.1, (6, 18, 19, 20), (30, 20, 30, 12, 8), ("rma", "refunds")),
}
QUEUE_NAMES = tuple(QUEUES)
# channel: wait (median s, sigma, cap s), abandon (p, median s), handle (median s, sigma)
WAIT = {"voice": (9, 1.1, 1800), "chat": (14, 1.0, 3600), "messaging": (45, 1.0, 7200),
        "social": (240, 0.9, 14400), "email": (1500, 0.9, 28800)}
ABANDON = {"voice": (0.08, 50), "chat": (0.07, 90), "messaging": (0.05, 400),
           "social": (0.04, 1800), "email": (0.015, 7200)}
HANDLE = {"voice": (270, 0.5), "chat": (420, 0.5), "messaging": (600, 0.6),
          "social": (360, 0.6), "email": (480, 0.7)}
FIRST_REPLY = {"urgent": 600, "high": 1800, "normal": 3600, "low": 7200}  # median s
# Cumulative weights for bisect: much faster than random.choices on the hot path.
PRIORITIES, PRIORITY_CUM = ("low", "normal", "high", "urgent"), list(accumulate((20, 55, 20, 5)))
TICKET_CHANNEL_CUM = list(accumulate((20, 15, 50, 10, 5)))  # tickets come mostly by email
EXTRA_REPLIES_CUM = list(accumulate((50, 30, 15, 5)))
CONTACTS_CUM = list(accumulate((70, 18, 8, 4)))
KINDS = ("csat", "nps", "ces")
VOICE_KIND_CUM, TEXT_KIND_CUM = list(accumulate((50, 30, 20))), list(accumulate((50, 15, 35)))
TICKET_KIND_CUM = list(accumulate((40, 20, 40)))
REOPEN_P, REOPEN_CAP = 0.08, 11.5 * 3600  # stays well inside the 12 h promise
RETENTION = 24 * HOUR
# kind: (mean, sd, drop per unit of bad mood); clamped into the range, so always valid
SCORE_MODEL = {"csat": (4.2, 0.9, 0.9), "nps": (8.0, 1.8, 2.2), "ces": (5.6, 1.1, 1.2)}
# Standard normal quantiles: a table lookup is ~5x cheaper than random.gauss on the hot
# path, and +-4 sigma is tail enough for waits of "some minutes".
NORMAL_N = 1 << 15
NORMAL = [NormalDist().inv_cdf((i + 0.5) / NORMAL_N) for i in range(NORMAL_N)]
LOOKAHEAD = 5  # seconds of already scheduled follow-ups that new arrivals make room for
ARRIVAL, ANSWER, ABANDON_, CLOSE, REPLY, RESOLVE, REOPEN, SENT, RESPONSE, BAD = range(10)


def _cum(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


class _Contact:
    __slots__ = ("id", "queue", "channel", "customer", "agent", "state", "last", "wait")

    def __init__(self, cid: str, queue: str, channel: str, customer: str | None, t: float):
        self.id, self.queue, self.channel, self.customer = cid, queue, channel, customer
        self.agent: str | None = None
        self.state, self.last, self.wait = WAITING, t, 0.0


class _Ticket:
    __slots__ = ("id", "queue", "channel", "customer", "owner", "state", "opened", "last",
                 "replies_left", "contacts", "reopened")

    def __init__(self, tid: str, queue: str, channel: str, customer: str | None, t: float):
        self.id, self.queue, self.channel, self.customer = tid, queue, channel, customer
        self.owner = ""
        self.state, self.opened, self.last = OPEN, t, t
        self.replies_left, self.contacts, self.reopened = 0, 1, False


class _Survey:
    __slots__ = ("id", "kind", "queue", "channel", "agent", "customer", "ref", "mood",
                 "responds", "orphan")

    def __init__(self, sid: str, kind: str, ent: _Contact | _Ticket, agent: str | None,
                 mood: float, responds: bool, orphan: bool):
        self.id, self.kind, self.queue, self.channel = sid, kind, ent.queue, ent.channel
        self.agent, self.customer, self.mood = agent, ent.customer, mood
        self.responds, self.orphan = responds, orphan
        self.ref = ("contact_id" if isinstance(ent, _Contact) else "ticket_id", ent.id)


Emitted = tuple[float, bytes, str | None]
Step = tuple[float, int, int, Any]  # (time, tie-breaker, action, entity)


class Generator(BadEvents):
    """One simulation run; ``run()`` yields ``(emit_time, bytes, label)``.

    ``label`` is None for a good event, else ``"<reason>/<variant>"`` (reason as in
    contract section 4, ``duplicate`` for a re-emission).
    """

    def __init__(self, rate: float, duration: float, seed: int, start: float, bad_share: float,
                 tag: str):
        self.rng = random.Random(seed)
        self.queue_names, self.BAD_ACTION = QUEUE_NAMES, BAD
        self.tag, self.start, self.end = tag, start, start + duration
        self.head = f'{{"event_id":"ev-{tag}-'
        self.good_rate = rate * (1.0 - bad_share)
        self.bad_rate = rate * bad_share
        # A timing wheel: one list per second of the future, sorted only when its second comes
        # (a sorted list is a valid heap). Far cheaper than one big heap of ~1e5 pending steps.
        self.wheel: dict[int, list[Step]] = {}
        self.heap: list[Step] = []  # the current second
        self.sec = int(start) - 1
        self.seq = itertools.count()
        self.n = itertools.count(1)  # entity ids
        self.n_ev = itertools.count(1)  # event ids
        self.n_good = 0
        self.rate_sec, self.soon = int(start) - 1, 0
        self.sec_cache, self.prefix_cache = -1, ""
        self.agent_speed = {a: self.rng.uniform(0.7, 1.4) for a in range(1, 21)}
        self.agent_mood = {a: self.rng.gauss(0, 0.35) for a in range(1, 21)}
        self.queue_cum = _cum(tuple(q[0] for q in QUEUES.values()))
        self.chan_cum = {q: _cum(v[3]) for q, v in QUEUES.items()}
        self.phase = {q: i * 1.7 for i, q in enumerate(QUEUES)}
        self.recent_good: deque[bytes] = deque(maxlen=256)
        # A few recent entities per state: the raw material of lifecycle-breaking bad events.
        self.waiting: deque[_Contact] = deque(maxlen=64)
        self.answered: deque[_Contact] = deque(maxlen=64)
        self.closed: deque[_Contact] = deque(maxlen=64)
        self.abandoned: deque[_Contact] = deque(maxlen=64)
        self.open_tickets: deque[_Ticket] = deque(maxlen=64)
        self.resolved: deque[_Ticket] = deque(maxlen=64)
        self.handlers: list[Callable[[float, Any], Emitted | None]] = [
            self._arrival, self._answer, self._abandon, self._close, self._reply, self._resolve,
            self._reopen, self._sent, self._response, self._bad]

    # ---------------------------------------------------------------- plumbing
    def run(self) -> Iterator[Emitted]:
        rng, end, handlers = self.rng, self.end, self.handlers
        if self.good_rate > 0:
            self._push(self.start + rng.expovariate(self.good_rate), ARRIVAL, None)
        if self.bad_rate > 0:
            self._push(self.start + rng.expovariate(self.bad_rate), BAD, None)
        pop, wheel, heap = heapq.heappop, self.wheel, self.heap
        while True:
            if not heap:
                if not wheel:
                    return
                sec = self.sec + 1
                while sec not in wheel:  # the arrival process keeps these gaps short
                    sec += 1
                    if sec > end:
                        return
                self.sec = sec
                heap = self.heap = wheel.pop(sec)
                heap.sort()
            t, _, action, obj = pop(heap)
            if t >= end:
                return
            item = handlers[action](t, obj)  # every step emits at most one event
            if item is not None:
                yield item

    def _push(self, t: float, action: int, obj: Any) -> None:
        sec, step = int(t), (t, next(self.seq), action, obj)
        if sec <= self.sec:
            heappush(self.heap, step)
        elif (slot := self.wheel.get(sec)) is not None:
            slot.append(step)
        else:
            self.wheel[sec] = [step]

    def _emit(self, t: float, etype: str, fields: dict[str, Any]) -> Emitted:
        ms = int(t * 1000)  # floor to the ms: a time-ordered stream stays ordered
        sec = ms // 1000
        if self.rng.random() < 0.02:  # a few producers send local time with an offset
            ts = iso(t, plus_one=True)
        else:
            if sec != self.sec_cache:  # the stream is time-ordered: one strftime per second
                self.sec_cache = sec
                self.prefix_cache = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            ts = f"{self.prefix_cache}.{ms - sec * 1000:03d}Z"
        # The head is plain ASCII we control, so splicing it before orjson's output of the
        # entity fields is safe, and faster than one merged dict.
        head = f'{self.head}{next(self.n_ev)}","type":"{etype}","ts":"{ts}",'
        data = head.encode() + dumps(fields)[1:]
        self.recent_good.append(data)
        self.n_good += 1
        return t, data, None

    def _lognorm(self, median: float, sigma: float, cap: float) -> float:
        z = NORMAL[int(self.rng.random() * NORMAL_N)]
        return min(cap, median * math.exp(sigma * z))

    def _agent(self, queue: str) -> int:
        agents = QUEUES[queue][2]
        return agents[int(self.rng.random() * len(agents))]

    def _draw(self, items: tuple[Any, ...], cum: Sequence[float]) -> Any:
        return items[bisect(cum, self.rng.random() * cum[-1])]

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{self.tag}-{next(self.n)}"

    # ---------------------------------------------------------------- new work
    def _arrival(self, t: float, _: Any) -> Emitted:
        rng, sec = self.rng, int(t)
        if sec > self.rate_sec:
            wheel = self.wheel
            self.rate_sec = sec
            self.soon = sum(len(wheel.get(s, ())) for s in range(sec + 1, sec + 1 + LOOKAHEAD))
        # New work fills what the follow-ups already scheduled for the next seconds leave of
        # the target rate, plus a slow correction of the running total: the total stays at
        # ``rate`` from the first second on, instead of overshooting while follow-ups ramp up.
        followups = (len(self.heap) + self.soon) / (sec + 1 + LOOKAHEAD - t)
        deficit = self.good_rate * (t - self.start) - self.n_good
        lam = self.good_rate - followups + deficit / 30.0
        lam = min(max(lam, self.good_rate * 0.05), self.good_rate * 3)
        queue = QUEUE_NAMES[bisect(self.queue_cum, rng.random() * self.queue_cum[-1])]
        customer = f"cust-{int(rng.random() * 50000) + 1}" if rng.random() < 0.9 else None
        self._push(t + rng.expovariate(lam), ARRIVAL, None)
        if rng.random() < 0.8:
            return self._new_contact(t, queue, customer)
        return self._new_ticket(t, queue, customer)

    def _congestion(self, t: float, queue: str) -> float:
        # Slow waves of load (90 min period), shifted per queue, so KPIs move over time.
        return 1.0 + 0.5 * math.sin(t * (2 * math.pi / 5400) + self.phase[queue])

    def _new_contact(self, t: float, queue: str, customer: str | None) -> Emitted:
        rng = self.rng
        cum = self.chan_cum[queue]
        channel = CHANNELS[bisect(cum, rng.random() * cum[-1])]
        c = _Contact(self._id("c"), queue, channel, customer, t)
        fields = {"contact_id": c.id, "queue": queue, "channel": channel}
        if customer:
            fields["customer_id"] = customer
        item = self._emit(t, "contact_offered", fields)
        self.waiting.append(c)
        cong = self._congestion(t, queue)
        p_abandon, patience = ABANDON[channel]
        if rng.random() < p_abandon * cong:
            self._push(t + self._lognorm(patience * cong, 0.8, 6 * HOUR), ABANDON_, c)
        else:
            median, sigma, cap = WAIT[channel]
            self._push(t + self._lognorm(median * QUEUES[queue][1] * cong, sigma, cap), ANSWER, c)
        return item

    def _new_ticket(self, t: float, queue: str, customer: str | None) -> Emitted:
        rng = self.rng
        channel = self._draw(CHANNELS, TICKET_CHANNEL_CUM)
        tk = _Ticket(self._id("t"), queue, channel, customer, t)
        priority = self._draw(PRIORITIES, PRIORITY_CUM)
        fields = {"ticket_id": tk.id, "queue": queue, "channel": channel}
        if customer:
            fields["customer_id"] = customer
        fields["priority"] = priority
        fields["product"] = rng.choice(QUEUES[queue][4])
        item = self._emit(t, "ticket_opened", fields)
        self.open_tickets.append(tk)
        tk.owner = f"agent-{self._agent(queue):02d}"
        tk.replies_left = self._draw((0, 1, 2, 3), EXTRA_REPLIES_CUM)
        self._push(t + self._lognorm(FIRST_REPLY[priority], 0.9, 10 * HOUR), REPLY, tk)

    # ---------------------------------------------------------------- contacts
        return item

    def _answer(self, t: float, c: _Contact) -> Emitted:
        a = self._agent(c.queue)
        c.agent, c.state, c.wait, c.last = f"agent-{a:02d}", ANSWERED, t - c.last, t
        item = self._emit(t, "contact_answered", {"contact_id": c.id, "agent_id": c.agent})
        self.answered.append(c)
        median, sigma = HANDLE[c.channel]
        self._push(t + self._lognorm(median * self.agent_speed[a], sigma, 4 * HOUR), CLOSE, c)
        return item

    def _abandon(self, t: float, c: _Contact) -> Emitted:
        c.state, c.last = ABANDONED, t
        item = self._emit(t, "contact_abandoned", {"contact_id": c.id})
        self.abandoned.append(c)
        return item

    def _close(self, t: float, c: _Contact) -> Emitted:
        c.state, c.last = CLOSED, t
        fields = {"contact_id": c.id}
        if self.rng.random() < 0.7:
            fields["agent_id"] = c.agent  # type: ignore[assignment]
        item = self._emit(t, "contact_closed", fields)
        self.closed.append(c)
        rng = self.rng
        if rng.random() < 0.35:
            slow = 1.0 if c.wait > (60 if c.channel in ("voice", "chat") else 3600) else 0.0
            mood = slow - self.agent_mood[int(c.agent[6:])]  # type: ignore[index]
            kind = self._draw(KINDS, VOICE_KIND_CUM if c.channel == "voice" else TEXT_KIND_CUM)
            self._survey(t + rng.uniform(5, 120), c, kind, c.agent, mood)

    # ---------------------------------------------------------------- tickets
        return item

    def _reply(self, t: float, tk: _Ticket) -> Emitted:
        rng = self.rng
        agent = tk.owner if rng.random() < 0.8 else f"agent-{self._agent(tk.queue):02d}"
        tk.last = t
        item = self._emit(t, "ticket_replied", {"ticket_id": tk.id, "agent_id": agent})
        self.open_tickets.append(tk)
        if tk.replies_left > 0:
            tk.replies_left -= 1
            self._push(t + self._lognorm(2400, 0.8, 6 * HOUR), REPLY, tk)
        else:
            self._push(t + self._lognorm(1800, 1.0, 8 * HOUR), RESOLVE, tk)
        return item

    def _resolve(self, t: float, tk: _Ticket) -> Emitted:
        rng = self.rng
        if not tk.reopened:
            tk.contacts = self._draw((1, 2, 3, 4), CONTACTS_CUM)
        fields: dict[str, Any] = {"ticket_id": tk.id, "contacts": tk.contacts}
        if rng.random() < 0.8:
            fields["agent_id"] = tk.owner
        tk.state, tk.last = RESOLVED, t
        item = self._emit(t, "ticket_resolved", fields)
        self.resolved.append(tk)
        if not tk.reopened and rng.random() < REOPEN_P:
            self._push(t + self._lognorm(3600, 0.8, REOPEN_CAP), REOPEN, tk)
        if rng.random() < 0.3:
            mood = (tk.contacts > 2) + tk.reopened + (t - tk.opened > RETENTION) * 0.5
            kind = self._draw(KINDS, TICKET_KIND_CUM)
            agent = tk.owner if "agent_id" in fields else None
            self._survey(t + rng.uniform(60, 600), tk, kind, agent, mood)
        return item

    def _reopen(self, t: float, tk: _Ticket) -> Emitted:
        tk.state, tk.last, tk.reopened = OPEN, t, True
        tk.contacts = min(tk.contacts + 1, 6)
        item = self._emit(t, "ticket_reopened", {"ticket_id": tk.id})
        self.open_tickets.append(tk)
        if self.rng.random() < 0.7:
            self._push(t + self._lognorm(1200, 0.8, 4 * HOUR), REPLY, tk)
        else:
            self._push(t + self._lognorm(2400, 0.8, 6 * HOUR), RESOLVE, tk)

    # ---------------------------------------------------------------- surveys
        return item

    def _survey(self, t: float, ent: _Contact | _Ticket, kind: str, agent: str | None,
                mood: float) -> None:
        rng = self.rng
        responds = rng.random() < 0.4
        orphan = responds and rng.random() < 0.06  # the survey tool lost the "sent"
        agent = agent if rng.random() < 0.85 else None
        s = _Survey(self._id("s"), kind, ent, agent, mood, responds, orphan)
        self._push(t, SENT, s)

    def _survey_fields(self, s: _Survey) -> dict[str, Any]:
        fields: dict[str, Any] = {"survey_id": s.id, "kind": s.kind, "queue": s.queue,
                                  "channel": s.channel}
        if s.agent:
            fields["agent_id"] = s.agent
        if s.customer:
            fields["customer_id"] = s.customer
        fields[s.ref[0]] = s.ref[1]
        return fields

    def _sent(self, t: float, s: _Survey) -> Emitted | None:
        if s.responds:
            self._push(t + self._lognorm(900, 1.0, 6 * HOUR), RESPONSE, s)
        return None if s.orphan else self._emit(t, "survey_sent", self._survey_fields(s))

    def _response(self, t: float, s: _Survey) -> Emitted:
        fields = self._survey_fields(s)
        fields["score"] = self._score(s.kind, s.mood)
        item = self._emit(t, "survey_response", fields)
        return item

    def _score(self, kind: str, mood: float) -> int:
        lo, hi = KIND_RANGE[kind]
        mu, sd, drop = SCORE_MODEL[kind]
        z = NORMAL[int(self.rng.random() * NORMAL_N)]
        return max(lo, min(hi, round(mu - drop * mood + sd * z)))
