"""The discrete-event model of the contact center that produces the simulated stream.

A contact's wait is not a number drawn on its own: it is what the queue in front of
it and the agents serving it make of it. So the model keeps the center's real state
(agents and their states, a FIFO line per queue, contacts in progress) and moves it
forward through one event queue ordered by time. Arrivals are Poisson per queue and
channel, following the intraday curve and scaled by ``load``; a contact is answered
when an agent of its queue is free, or abandons when its patience runs out first.
Waiting lines, service level and occupancy then come out of the queueing itself, and
at ``load`` 1.5 the plan is short of agents and the lines grow as in a real overload.

Each step schedules only its entity's next step, so the stream comes out in event-time
order and memory holds just what is in progress. The model runs on its own clock, which
is event time for a center in real time and ``speed`` times faster for a sped-up one
(see ``center``): mapping the clock once, where events are stamped, shortens every
duration alike and keeps every ordering. Everything random comes from one
``random.Random(seed)``: same arguments, same bytes.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from bisect import bisect
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from heapq import heappush
from itertools import accumulate
from statistics import NormalDist
from typing import Any

from orjson import dumps

from stream_app.tools.simulator.agents import BUSY, WRAP_UP, Agent, AgentFloor
from stream_app.tools.simulator.backoffice import CONTACT_SURVEY_P, BackOffice, Contact, Ticket
from stream_app.tools.simulator.bad import ABANDONED, ANSWERED, CLOSED, WAITING, BadEvents, iso
from stream_app.tools.simulator.center import plan_center
from stream_app.tools.simulator.staffing import (
    CHANNELS,
    CURVE,
    CURVE_MEAN,
    DAY,
    LOBS,
    PATIENCE,
    SITE_PEAK_CONTACTS,
    SPEED_RANGE,
    TALK,
    TICKET_SHARE,
    WRAP,
    WRAP_SIGMA,
)

# Standard normal quantiles: a table lookup is ~5x cheaper than random.gauss on the hot
# path, and +-4 sigma is tail enough for handle times of "some minutes".
NORMAL_N = 1 << 15
NORMAL = [NormalDist().inv_cdf((i + 0.5) / NORMAL_N) for i in range(NORMAL_N)]
HOUR = 3600
SKILL_EXTRA_CUM = list(accumulate((60, 30, 10)))  # 0, 1 or 2 queues beyond the first
(ARRIVAL, ABANDON, CLOSE, WRAP_END, LOGIN, BREAK, BREAK_END, LOGOUT_, REPLY, RESOLVE, REOPEN,
 SENT, RESPONSE, BAD) = range(14)

Emitted = tuple[float, bytes, str | None]
Step = tuple[float, int, int, Any]  # (time, tie-breaker, action, entity)


class Generator(AgentFloor, BackOffice, BadEvents):
    """One simulation run; ``run()`` yields ``(emit_time, bytes, label)``.

    ``label`` is None for a good event, else ``"<reason>/<variant>"`` (reason as in
    contract section 4, ``duplicate`` for a re-emission).
    """

    LOGIN, BREAK, BREAK_END, LOGOUT_ = LOGIN, BREAK, BREAK_END, LOGOUT_
    REPLY, RESOLVE, REOPEN, SENT, RESPONSE, BAD_ACTION = REPLY, RESOLVE, REOPEN, SENT, RESPONSE, BAD

    def __init__(self, rate: float, duration: float, seed: int, start: float, bad_share: float,
                 tag: str, load: float = 1.0, sites: int | None = None):
        self.rng = random.Random(seed)
        self.plan = plan = plan_center(rate * (1.0 - bad_share), duration, start, load, sites)
        # The model runs on its own clock, ``speed`` times event time from ``start``: one
        # affine map at the output shortens every duration of the center alike.
        self.speed, self.inv_speed = plan.speed, 1.0 / plan.speed
        self.tag, self.start, self.load = tag, start, load
        self.end = start + duration * plan.speed
        self.head = f'{{"event_id":"ev-{tag}-'
        self.bad_rate = rate * bad_share / plan.speed  # per second of the model's clock
        # A timing wheel: one list per second of the future, sorted only when its second comes
        # (a sorted list is a valid heap). Far cheaper than one big heap of ~1e5 pending steps.
        self.wheel: dict[int, list[Step]] = {}
        self.heap: list[Step] = []  # the current second
        self.sec = int(start) - 1
        self.seq = itertools.count()
        self.n = itertools.count(1)  # entity ids
        self.n_ev = itertools.count(1)  # event ids
        self.n_good = 0
        self.out: list[Emitted] = []
        self.sec_cache, self.prefix_cache = -1, ""
        self._build_center()
        n_queues = len(self.queue_names)
        self.waiting: list[deque[Contact]] = [deque() for _ in range(n_queues)]
        self.idle: list[OrderedDict[Agent, None]] = [OrderedDict() for _ in range(n_queues)]
        # Contacts per second, per minute of the day; tickets come on top of these.
        peak = plan.sites * plan.volume * SITE_PEAK_CONTACTS * load / (1 - TICKET_SHARE)
        self.minute_rate = [peak * c for c in CURVE]
        daily_contacts = peak * (1 - TICKET_SHARE) * CURVE_MEAN * DAY
        self.customers = max(1000, int(4 * daily_contacts))  # ~20 % repeat within a day
        self.recent_good: deque[bytes] = deque(maxlen=256)
        # A few recent entities per state: the raw material of lifecycle-breaking bad events.
        self.waiting_recent: deque[Contact] = deque(maxlen=64)
        self.answered: deque[Contact] = deque(maxlen=64)
        self.closed: deque[Contact] = deque(maxlen=64)
        self.abandoned: deque[Contact] = deque(maxlen=64)
        self.open_tickets: deque[Ticket] = deque(maxlen=64)
        self.resolved: deque[Ticket] = deque(maxlen=64)
        self.handlers: list[Callable[[float, Any], None]] = [
            self._arrival, self._abandon, self._close, self._wrap_end, self._login, self._break,
            self._break_end, self._logout, self._reply, self._resolve, self._reopen, self._sent,
            self._response, self._bad]

    def _build_center(self) -> None:
        """Queues, agents (skills, speed, mood) and the draw tables of the arrivals."""
        rng, plan = self.rng, self.plan
        n_lobs = len(LOBS)
        # One line per site and queue, the queue names shared by all sites (see ``center``).
        self.queue_names = [LOBS[q][0] for _ in range(plan.sites) for q in range(n_lobs)]
        self.products = [LOBS[q][3] for _ in range(plan.sites) for q in range(n_lobs)]
        self.agents, self.roster = [], [[] for _ in self.queue_names]
        for site in range(plan.sites):
            for shift in plan.shifts:
                first = site * n_lobs + shift.queue
                others = [site * n_lobs + q for q in range(n_lobs) if q != shift.queue]
                extra = bisect(SKILL_EXTRA_CUM, rng.random() * SKILL_EXTRA_CUM[-1])
                queues = (first, *sorted(rng.sample(others, extra)))
                agent = Agent(len(self.agents) + 1, queues, self.queue_names, shift,
                              rng.uniform(*SPEED_RANGE), rng.gauss(0, 0.35))
                self.agents.append(agent)
                for q in queues:
                    self.roster[q].append(agent)
        # One draw picks site, queue and channel: the network splits the traffic between
        # equal sites, as each was planned for its share
        combos = [(s * n_lobs + q, ch, share * w)
                  for s in range(plan.sites) for q, (_, share, weights, _) in enumerate(LOBS)
                  for ch, w in zip(CHANNELS, weights, strict=True)]
        self.contact_kinds = [(q, ch) for q, ch, _ in combos]
        self.contact_cum = list(accumulate(w for _, _, w in combos))
        self.ticket_cum = list(accumulate(LOBS[q % n_lobs][1] for q in range(len(self.roster))))

    # ---------------------------------------------------------------- plumbing
    def run(self) -> Iterator[Emitted]:
        self._open_floor(self.start)
        self._push(self._next_arrival(self.start), ARRIVAL, None)
        if self.bad_rate > 0:
            self._push(self.start + self.rng.expovariate(self.bad_rate), BAD, None)
        pop, wheel, handlers, out = heapq.heappop, self.wheel, self.handlers, self.out
        heap, end = self.heap, self.end
        while True:
            if not heap:
                if not wheel:
                    return
                sec = self.sec + 1
                while sec not in wheel:  # every second has arrivals but the quietest nights
                    sec += 1
                    if sec > end:
                        return
                self.sec = sec
                heap = self.heap = wheel.pop(sec)
                heap.sort()
            t, _, action, obj = pop(heap)
            if t >= end:
                return
            handlers[action](t, obj)
            if out:
                yield from out
                out.clear()

    def _push(self, t: float, action: int, obj: Any) -> None:
        sec, step = int(t), (t, next(self.seq), action, obj)
        if sec <= self.sec:
            heappush(self.heap, step)
        elif (slot := self.wheel.get(sec)) is not None:
            slot.append(step)
        else:
            self.wheel[sec] = [step]

    def _clock(self, t: float) -> float:
        """Event time of the model's time ``t``."""
        return self.start + (t - self.start) * self.inv_speed

    def _emit_raw(self, t: float, etype: str, tail: bytes) -> None:
        """``tail`` is the event's own fields as orjson writes them, without the ``{``."""
        t = self.start + (t - self.start) * self.inv_speed  # _clock, inlined: the hot path
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
        data = f'{self.head}{next(self.n_ev)}","type":"{etype}","ts":"{ts}",'.encode() + tail
        self.recent_good.append(data)
        self.n_good += 1
        self.out.append((t, data, None))

    def _emit(self, t: float, etype: str, fields: dict[str, Any]) -> None:
        self._emit_raw(t, etype, dumps(fields)[1:])

    def _lognorm(self, median: float, sigma: float, cap: float) -> float:
        z = NORMAL[int(self.rng.random() * NORMAL_N)]
        return min(cap, median * math.exp(sigma * z))

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{self.tag}-{next(self.n)}"

    # ---------------------------------------------------------------- arrivals
    def _next_arrival(self, t: float) -> float:
        """Non-homogeneous Poisson: the rate is constant within each minute of the curve."""
        need = self.rng.expovariate(1.0)
        rates = self.minute_rate
        while True:
            edge = (t // 60 + 1) * 60
            mass = rates[int(t % DAY) // 60] * (edge - t)
            if mass > need:
                return t + need / mass * (edge - t)
            need -= mass
            t = edge

    def _arrival(self, t: float, _: Any) -> None:
        rng = self.rng
        self._push(self._next_arrival(t), ARRIVAL, None)
        customer = (f"cust-{int(rng.random() * self.customers) + 1}"
                    if rng.random() < 0.9 else None)
        if rng.random() < TICKET_SHARE:
            cum = self.ticket_cum
            self._new_ticket(t, bisect(cum, rng.random() * cum[-1]), customer)
        else:
            cum = self.contact_cum
            queue, channel = self.contact_kinds[bisect(cum, rng.random() * cum[-1])]
            self._new_contact(t, queue, channel, customer)

    # ---------------------------------------------------------------- contacts
    def _new_contact(self, t: float, queue: int, channel: str, customer: str | None) -> None:
        c = Contact(self._id("c"), queue, channel, customer, t)
        fields = {"contact_id": c.id, "queue": self.queue_names[queue], "channel": channel}
        if customer:
            fields["customer_id"] = customer
        self._emit(t, "contact_offered", fields)
        idle = self.idle[queue]
        if idle:
            agent = next(iter(idle))  # idle longest
            self._unidle(agent)
            self._answer(t, c, agent)
            return
        self.waiting[queue].append(c)
        self.waiting_recent.append(c)
        patience = PATIENCE[channel]
        if patience is not None:
            self._push(t + self._lognorm(*patience, 6 * HOUR), ABANDON, c)

    def _answer(self, t: float, c: Contact, agent: Agent) -> None:
        c.state, c.agent, c.wait, c.last = ANSWERED, agent, t - c.last, t
        self._emit_raw(t, "contact_answered",
                       dumps({"contact_id": c.id, "agent_id": agent.id})[1:])
        agent.state, agent.contact = BUSY, c
        self._state(t, agent, agent.tails[BUSY])
        self.answered.append(c)
        median, sigma = TALK[c.channel]
        self._push(t + self._lognorm(median * agent.speed, sigma, 4 * HOUR), CLOSE, c)

    def _abandon(self, t: float, c: Contact) -> None:
        if c.state == WAITING:  # else answered in time: this step is void
            c.state, c.last = ABANDONED, t
            self._emit_raw(t, "contact_abandoned", dumps({"contact_id": c.id})[1:])
            self.abandoned.append(c)

    def _close(self, t: float, c: Contact) -> None:
        rng, agent = self.rng, c.agent
        c.state, c.last = CLOSED, t
        fields = {"contact_id": c.id}
        if rng.random() < 0.7:  # the contract lets the close name its agent, or not
            fields["agent_id"] = agent.id
        self._emit(t, "contact_closed", fields)
        agent.state = WRAP_UP
        self._state(t, agent, agent.tails[WRAP_UP])
        self.closed.append(c)
        self._push(t + self._lognorm(WRAP[c.channel], WRAP_SIGMA, 900), WRAP_END, agent)
        if rng.random() < CONTACT_SURVEY_P:
            self._contact_survey(t, c)
