"""How big the simulated center is, and how fast it runs, for a given ``rate``.

``rate`` means "events per second of event time", and the benchmark and tests rely on
``rate * duration`` events coming out. A believable center, though, has a size (agents,
traffic) and a shape over the day; and every queue and agent is a scope of the KPI
snapshot, so a center grown without bound would make the consumer measure scopes, not
events. The two meet here, in two regimes:

- **Real time, below about 5 events/s** (an hour at the day's peak; about 3 events/s
  over a whole day, which is what a live stream is sized on). The center is as many
  standard sites as ``rate`` needs (a site: the four queues of ``staffing``, ~75 Erlangs
  at the peak, ~200 agents a day), at most ``MAX_SITES``, scaled together so that the
  expected events of the window, at the asked ``load``, are ``rate * duration``. Talk
  times, waits, service level and shifts are those of a real center.
- **Sped up, above that.** The center keeps ``MAX_SITES`` standard sites (or the
  ``sites`` asked for) and runs ``speed`` times faster: the model keeps its own clock,
  and event time is ``start + (model time - start) / speed``. Every duration (talk,
  wrap-up, patience, breaks, shifts, ticket and survey delays, the intraday curve's
  time axis) is divided by ``speed`` and arrivals are multiplied by it, so the stream
  carries ``rate`` events/s with the same mix, the same consistency (an agent is busy
  exactly while handling a contact, answers only when available and for its queues)
  and the same four queues and few hundred agents. It is for throughput, latency and
  soak tests: its durations are proportionally shorter (at 2,000 events/s the day
  lasts about two minutes), so service level and handle times are not believable there,
  while occupancy and abandon share, which do not depend on the clock, still are.

Asked ``sites`` override the default: more sites than needed are smaller ones in real
time, fewer are sped up. ``load`` is traffic against the plan in both regimes.

Every site serves the same queue names (``billing``, ``tech``, ``sales``, ``returns``):
a site is another team on the same queues, not another set of queues. Each site keeps
its own lines, and the traffic is split between the sites on arrival in proportion to
their size, as network routing does in a multi-site center. That keeps each site's
Erlang-C plan exactly right for the traffic it gets, so the service level and occupancy
are those of one site whatever the number of sites. Lines shared by all sites would
make a bigger pool than any site was planned for (four standard sites as one pool need
~730 agents a day, not ~800): the center would beat its plan by more the more sites it
has. The price, as in such centers: a queue may show a waiting contact at one site
while an agent of the same queue is free at another.

The expected count accounts for what a window really holds: the intraday curve over
the window, the follow-ups (closes, surveys, ticket replies) of late arrivals that
fall after its end, the agents' shift events, and the burst of agent states when the
stream starts with a shift already on the floor.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from stream_app.tools.simulator import backoffice as bo
from stream_app.tools.simulator.agents import BREAK_JITTER, LOGIN_EARLY, LOGIN_LATE
from stream_app.tools.simulator.staffing import (
    ABSENCE_P,
    CHANNELS,
    CURVE,
    CURVE_MEAN,
    DAY,
    LOBS,
    SITE_PEAK_CONTACTS,
    SPEED_RANGE,
    TALK,
    TICKET_SHARE,
    WRAP,
    WRAP_SIGMA,
    Shift,
    site_shifts,
)

GRID = 36 * 60  # minutes of follow-up delay tabulated; later ones are all in
CURVE_PREFIX = tuple(accumulate((60 * c for c in CURVE), initial=0.0))  # per minute of the day
CURVE_DAY = CURVE_PREFIX[-1]
MAX_SITES = 4  # the default cap: ~800 agents a day, a center one can believe and run
# Events an agent's day adds besides its contacts: a break costs its end (available)
# and, only when the agent was idle at its start, a paused (otherwise the wrap-up end
# turns into the pause); a logout is mostly a wrap-up end turned offline.
LOGIN_EVENTS, BREAK_EVENTS, LOGOUT_EVENTS = 1.0, 1.2, 0.2


@dataclass(frozen=True)
class Plan:
    sites: int
    volume: float  # of each site, relative to the standard site
    shifts: tuple[Shift, ...]  # of each site
    speed: float = 1.0  # seconds of the center's own time per second of event time

    @property
    def queues(self) -> list[str]:
        """The queue names: the same in every site."""
        return [name for name, _, _, _ in LOBS]


def abandon_share(load: float) -> float:
    """Rough share of contacts abandoned: a few at plan, the excess beyond capacity above."""
    return max(0.04, 1 - 1.15 / load)


def _lognorm(rng: random.Random, median: float, sigma: float, cap: float) -> float:
    return min(cap, rng.lognormvariate(math.log(median), sigma))


def _cumulate(hist: list[float], n: int) -> tuple[float, ...]:
    out, acc = [], 0.0
    for v in hist:
        acc += v / n
        out.append(acc)
    return tuple(out)


@lru_cache(maxsize=1)
def _follow_ups() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Expected events per answered contact / per ticket within k+1 minutes of arrival.

    A Monte Carlo of the lifecycles, with its own fixed seed: the tables are the same
    on every run and do not consume the model's random numbers.
    """
    rng, n = random.Random(20261122), 4000
    weights = [share * w for _, share, ws, _ in LOBS for w in ws]
    channels = [ch for _ in LOBS for ch in CHANNELS]
    contact, ticket = [0.0] * (GRID + 1), [0.0] * (GRID + 1)

    def add(hist: list[float], delay: float, weight: float = 1.0) -> None:
        hist[min(int(delay / 60), GRID)] += weight

    for ch in rng.choices(channels, weights, k=n):
        talk = _lognorm(rng, *TALK[ch], 4 * 3600) * rng.uniform(*SPEED_RANGE)
        wrap = _lognorm(rng, WRAP[ch], WRAP_SIGMA, 900)
        add(contact, 0, 2)  # answered, busy
        add(contact, talk, 2)  # closed, wrap_up
        add(contact, talk + wrap)  # available (or paused / offline)
        sent = talk + rng.uniform(5, 120)
        p = bo.CONTACT_SURVEY_P
        add(contact, sent, p * (1 - bo.SURVEY_RESPONSE_P * bo.SURVEY_ORPHAN_P))
        add(contact, sent + _lognorm(rng, 900, 1.0, 6 * 3600), p * bo.SURVEY_RESPONSE_P)
    for _ in range(n):
        add(ticket, 0)
        prio = rng.choices(bo.PRIORITIES, (20, 55, 20, 5))[0]
        t = _lognorm(rng, bo.FIRST_REPLY[prio], 0.9, 10 * 3600)
        add(ticket, t)
        for _ in range(rng.choices((0, 1, 2, 3), (50, 30, 15, 5))[0]):
            t += _lognorm(rng, 2400, 0.8, 6 * 3600)
            add(ticket, t)
        t += _lognorm(rng, 1800, 1.0, 8 * 3600)
        resolves = [t]
        add(ticket, t)
        if rng.random() < bo.REOPEN_P:
            t += _lognorm(rng, 3600, 0.8, bo.REOPEN_CAP)
            add(ticket, t)
            if rng.random() < 0.7:
                t += _lognorm(rng, 1200, 0.8, 4 * 3600)
                add(ticket, t)
            t += _lognorm(rng, 1800, 1.0, 8 * 3600)
            resolves.append(t)
            add(ticket, t)
        for r in resolves:
            sent = r + rng.uniform(60, 600)
            p = bo.TICKET_SURVEY_P
            add(ticket, sent, p * (1 - bo.SURVEY_RESPONSE_P * bo.SURVEY_ORPHAN_P))
            add(ticket, sent + _lognorm(rng, 900, 1.0, 6 * 3600), p * bo.SURVEY_RESPONSE_P)
    return _cumulate(contact, n), _cumulate(ticket, n)


def _curve_integral(t: float) -> float:
    """Integral of the intraday curve from epoch 0 to ``t`` (s): exact for a curve that is
    constant within each minute, so a window of any length costs the same."""
    days, rest = divmod(t, DAY)
    minute = int(rest // 60)
    return days * CURVE_DAY + CURVE_PREFIX[minute] + CURVE[minute] * (rest - 60 * minute)


def _arrival_events(start: float, duration: float, load: float, endless: bool = False) -> float:
    """Expected good events of the contacts and tickets of one standard site.

    ``endless``: a live stream, sized on the mean day, so its rate does not depend on the
    hour it starts at. Otherwise the curve over the window, and for the last ``GRID``
    minutes only the follow-ups that still fall inside it.
    """
    per_contact, per_ticket = _follow_ups()
    p_ab = abandon_share(load)
    tickets_per_contact = TICKET_SHARE / (1 - TICKET_SHARE)
    contact_rate = SITE_PEAK_CONTACTS * load

    def per(k: int) -> float:
        return 1 + p_ab + (1 - p_ab) * per_contact[k] + tickets_per_contact * per_ticket[k]

    if endless:
        return contact_rate * CURVE_MEAN * duration * per(GRID)
    end = start + duration
    t = max(start, end - GRID * 60)
    total = (_curve_integral(t) - _curve_integral(start)) * per(GRID)
    while t < end:
        step = min(60.0 - t % 60, end - t)
        k = min(int((end - t - step / 2) / 60), GRID)
        total += CURVE[int(t % DAY) // 60] * step * per(k)
        t += step
    return contact_rate * total


def _shift_events(shifts: tuple[Shift, ...], start: float, duration: float) -> float:
    """Expected agent events of one site's shifts (and the opening burst) in the window."""
    end = start + duration
    present = 1 - ABSENCE_P
    if duration > 3 * DAY:
        per_day = sum(LOGIN_EVENTS + LOGOUT_EVENTS + BREAK_EVENTS * len(s.breaks)
                      for s in shifts)
        return present * (per_day * duration / DAY + len(shifts) * 0.4)  # ~ the share on
    total = 0.0
    first, last = int(start // DAY) - 1, int(end // DAY)
    jitter = 2 * BREAK_JITTER
    for s in shifts:
        for day in range(first, last + 1):
            begin = day * DAY + s.start
            finish = begin + s.length
            if begin <= start < finish:  # on the floor when the stream starts, maybe paused
                total += LOGIN_EVENTS + sum(
                    _overlap(start - begin - off - length, start - begin - off) / jitter
                    for off, length, _ in s.breaks)
            elif start < begin < end + LOGIN_EARLY:
                total += LOGIN_EVENTS * min(1.0, (end - begin + LOGIN_EARLY)
                                            / (LOGIN_EARLY + LOGIN_LATE))
            if start <= finish < end:
                total += LOGOUT_EVENTS
            total += BREAK_EVENTS * sum(
                _overlap(start - begin - off, end - begin - off) / jitter
                for off, _, _ in s.breaks)
    return total * present


def _overlap(lo: float, hi: float) -> float:
    """Length of [lo, hi) within the jitter of a break, [-BREAK_JITTER, BREAK_JITTER)."""
    return max(0.0, min(hi, BREAK_JITTER) - max(lo, -BREAK_JITTER))


def _site_count(size: float) -> int:
    return max(1, round(size))


def _volume_key(volume: float) -> float:
    # Few distinct volumes: each one costs an Erlang-C plan of the day
    return round(volume, 3) if volume < 1 else round(volume, 2)


def _fit_volume(target: float, per_volume: float, start: float, horizon: float,
                sites: int | None) -> tuple[int, float]:
    """Real time: the sites (unless given) and the volume of each whose stream carries
    ``target`` good events in the window."""
    size = max(target / (per_volume + 1e-9), 1e-3)
    for _ in range(8):  # fixed point: shift events are a small, nearly linear extra
        count = sites or _site_count(size)
        volume = _volume_key(size / count)
        total = count * (volume * per_volume + _shift_events(site_shifts(volume), start, horizon))
        if abs(total - target) <= 0.003 * target:
            break
        size = max(1e-3, size * target / max(total, 1e-9))
    count = sites or _site_count(size)
    return count, _volume_key(size / count)


def _fit_speed(target: float, start: float, horizon: float, load: float, sites: int,
               endless: bool) -> float:
    """The speed at which ``sites`` standard sites carry ``target`` good events in the
    window, which then spans ``speed * horizon`` seconds of the center's own time.

    The count grows with the speed but not in proportion (a longer span runs into the
    night or the peak), so the root is bracketed, then found by regula falsi (Illinois).
    The count steps a little where a shift ends in the window, so a short window may have
    no exact root: the search stops when the bracket has closed on the step.
    """
    shifts = site_shifts(1.0)

    def excess(speed: float) -> float:
        span = speed * horizon
        got = sites * (_arrival_events(start, span, load, endless)
                       + _shift_events(shifts, start, span))
        return got - target

    lo, f_lo = 1.0, excess(1.0)
    if f_lo >= 0:
        return 1.0
    hi = target / max(f_lo + target, 1e-9)
    while (f_hi := excess(hi)) < 0:
        lo, f_lo, hi = hi, f_hi, hi * 2
    speed, side = hi, 0
    for _ in range(100):
        speed = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        got = excess(speed)
        if abs(got) <= 0.002 * target or hi - lo <= 1e-6 * hi:
            break
        if got < 0:
            lo, f_lo = speed, got
            if side == -1:
                f_hi /= 2  # the same end twice: halve the other to keep converging
            side = -1
        else:
            hi, f_hi = speed, got
            if side == 1:
                f_lo /= 2
            side = 1
    return speed


def plan_center(rate: float, duration: float, start: float, load: float,
                sites: int | None = None) -> Plan:
    """The sites, their shifts and the speed whose stream carries ~``rate`` good events/s.

    As many sites as ``rate`` needs in real time, unless ``sites`` is given, and by
    default no more than ``MAX_SITES``; fewer sites than needed are standard ones, sped up.
    """
    endless = not math.isfinite(duration)
    horizon = 7 * DAY if endless else duration  # live: the mean day
    target = rate * horizon
    per_volume = _arrival_events(start, horizon, load, endless)
    needed, volume = _fit_volume(target, per_volume, start, horizon, None)
    count = min(MAX_SITES, needed) if sites is None else sites
    if count == needed:
        return Plan(count, volume, site_shifts(volume))
    if count > needed:  # more, smaller sites, still in real time
        _, volume = _fit_volume(target, per_volume, start, horizon, count)
        return Plan(count, volume, site_shifts(volume))
    speed = _fit_speed(target, start, horizon, load, count, endless)
    return Plan(count, 1.0, site_shifts(1.0), speed)
