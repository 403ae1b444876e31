"""The workforce plan of one simulated site: forecast, Erlang-C staffing, shifts.

A contact center is believable only when its staff follows its traffic: a fixed head
count either drowns at the peak or idles at night. So each site is planned the way a
workforce-management team plans a real one: a forecast per half hour (the intraday
curve below), the Erlang-C head count that meets the service-level target in each
half hour, 4- to 8-hour shifts laid greedily over the day until every half hour is
covered with breaks counted, and the breaks staggered where the cover has the most to
spare. The simulation then runs against this plan, with what no plan foresees (absent
agents, breaks taken late, long calls); when traffic is higher than forecast
(``load`` > 1) the plan is simply too small, which is what overload looks like.

Everything here is pure and deterministic (no randomness): the random parts (skills,
jitter, who takes a break when) are drawn by the model from its seeded source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

DAY = 86400
SLOT = 1800  # planning interval: half an hour, as most WFM tools use
SLOTS = DAY // SLOT

CHANNELS = ("voice", "chat", "email", "messaging", "social")
# Lines of business of one site: (name, share of its contacts, channel weights in
# CHANNELS order, products). Every site serves these same queues (see ``center``).
LOBS: tuple[tuple[str, float, tuple[int, ...], tuple[str, ...]], ...] = (
    ("billing", 0.35, (50, 20, 8, 14, 8), ("invoices", "payments")),
    ("tech", 0.30, (42, 33, 8, 11, 6), ("app", "router", "api")),
    ("sales", 0.20, (55, 25, 6, 8, 6), ("upgrades", "new-plans")),
    ("returns", 0.15, (40, 22, 12, 16, 10), ("rma", "refunds")),
)
# channel: talk (median s, sigma), wrap-up (median s), patience (median s; None: never
# abandons). Lognormal: handle times are right-skewed with a long tail in every real
# center, and patience too (most callers wait a while, a few hang up at once).
TALK = {"voice": (200, 0.8), "chat": (270, 0.8), "email": (300, 0.8),
        "messaging": (340, 0.8), "social": (250, 0.8)}
WRAP = {"voice": 25, "chat": 15, "email": 40, "messaging": 15, "social": 15}
WRAP_SIGMA = 0.6
PATIENCE: dict[str, tuple[float, float] | None] = {
    "voice": (150, 1.0), "chat": (200, 1.0), "email": None, "messaging": (1200, 1.0),
    "social": (2400, 1.0)}
SPEED_RANGE = (0.8, 1.25)  # per agent: experienced agents talk less

# Arrivals relative to the day's peak, at the middle of each UTC hour: a quiet night, the
# morning ramp, the lunch dip and the afternoon peak. Linear in between.
HOURLY = (0.10, 0.07, 0.05, 0.05, 0.06, 0.10, 0.20, 0.40, 0.68, 0.86, 0.93, 0.90,
          0.72, 0.70, 0.88, 1.00, 0.95, 0.82, 0.62, 0.48, 0.38, 0.30, 0.22, 0.15)
SITE_PEAK_CONTACTS = 0.2  # contacts/s of one standard site at the peak: ~75 Erlangs
TICKET_SHARE = 0.2  # of all arrivals (new work), as before the model existed

SL_SECONDS = 20.0
# The plan's Erlang-C target. The day lands near 80 % within 20 s: pooled skills and
# handle times less variable than Erlang C assumes help, absence and late breaks hurt.
SL_TARGET = 0.70
SHIFT_SLOTS = (16, 12, 8)  # 8 h, 6 h, 4 h
SLACK = 0.3  # of an agent: a 15-minute break need not cost a whole extra shift
# Per shift length: (earliest, latest offset in the shift, length; minutes), reason. Each
# break is placed in its window where the plan has the most agents to spare, as planners
# stagger them; agents then take it with a jitter of their own.
BREAKS: dict[int, tuple[tuple[int, int, int, str], ...]] = {
    16: ((90, 150, 15, "break"), (200, 300, 40, "lunch"), (360, 420, 15, "break")),
    12: ((80, 140, 15, "break"), (180, 250, 30, "lunch")),
    8: ((90, 150, 15, "break"),),
}
ABSENCE_P = 0.09  # agent-days lost to sickness and the like, which no plan foresees
EXTRA_PAUSE_P = 0.12  # an agent-day with a training or a meeting
EXTRA_REASONS = ("training", "meeting")


def _minute_curve() -> tuple[float, ...]:
    out = []
    for m in range(DAY // 60):
        x = (m + 0.5) / 60 - 0.5  # hours after the first hourly point
        i = math.floor(x)
        frac = x - i
        out.append(HOURLY[i % 24] * (1 - frac) + HOURLY[(i + 1) % 24] * frac)
    return tuple(out)


CURVE = _minute_curve()  # per minute of the UTC day
CURVE_MEAN = sum(CURVE) / len(CURVE)


def lognormal_mean(median: float, sigma: float) -> float:
    return median * math.exp(sigma * sigma / 2)


def mean_handle(channel_weights: Sequence[float]) -> float:
    """Mean talk plus wrap-up of a queue's contacts: the Erlang-C service time."""
    speed = sum(SPEED_RANGE) / 2
    total = sum(channel_weights)
    return sum(w * (lognormal_mean(*TALK[ch]) * speed + lognormal_mean(WRAP[ch], WRAP_SIGMA))
               for ch, w in zip(CHANNELS, channel_weights, strict=True)) / total


def erlang_c_agents(rate: float, handle: float, target: float = SL_TARGET,
                    threshold: float = SL_SECONDS) -> int:
    """Fewest agents whose Erlang-C service level (wait <= threshold) reaches target."""
    load = rate * handle
    if load <= 0:
        return 1
    b = 1.0  # Erlang B by its recurrence, which stays stable for large head counts
    n = 0
    while True:
        n += 1
        b = load * b / (n + load * b)
        if n <= load:
            continue
        c = n * b / (n - load * (1 - b))
        if 1 - c * math.exp(-(n - load) * threshold / handle) >= target:
            return n


@dataclass(frozen=True)
class Shift:
    """One agent's daily shift: start (s after UTC midnight, may wrap), length (s)."""

    queue: int  # the LOB the shift was planned for: the agent's first skill
    start: int
    length: int
    breaks: tuple[tuple[int, int, str], ...]  # (offset s, length s, reason)


def _slot_need(vol: float) -> list[list[int]]:
    """Agents taking contacts, per LOB and half hour, for a site of volume vol.

    Erlang C for the site as one pool, since agents with several skills make the site's
    queues behave almost as one; then split by each LOB's share of the work.
    """
    handles = [mean_handle(weights) for _, _, weights, _ in LOBS]
    need: list[list[int]] = [[] for _ in LOBS]
    for slot in range(SLOTS):
        minutes = CURVE[slot * 30:(slot + 1) * 30]
        rate = vol * SITE_PEAK_CONTACTS * sum(minutes) / len(minutes)
        work = [rate * share * h for (_, share, _, _), h in zip(LOBS, handles, strict=True)]
        agents = erlang_c_agents(rate, sum(work) / rate, SL_TARGET)
        for q, w in enumerate(work):
            need[q].append(math.ceil(max(1.0, agents * w / sum(work))))
    return need


def _on_phones(length: int) -> float:
    """Share of a shift's time on the phones, breaks out, before they are placed."""
    return 1 - sum(minutes for _, _, minutes, _ in BREAKS[length]) * 60 / (length * SLOT)


def _lay_shifts(queue: int, need: list[int]) -> list[Shift]:
    """Greedy cover of one LOB's day, from the quietest hour of the night round the clock;
    then each break goes where the cover has the most to spare, as planners stagger them.
    """
    cover = [0.0] * SLOTS
    laid: list[tuple[int, int]] = []
    first = min(range(SLOTS), key=lambda i: sum(CURVE[i * 30:(i + 1) * 30]))
    for k in range(SLOTS):
        i = (first + k) % SLOTS
        while cover[i] < need[i] - SLACK:
            # The longest shift wanted over all its length: long shifts on the plateau,
            # short ones where the demand is about to fall.
            for length in SHIFT_SLOTS:
                if all(cover[(i + j) % SLOTS] < need[(i + j) % SLOTS] for j in range(length)):
                    break
            for j in range(length):
                cover[(i + j) % SLOTS] += _on_phones(length)
            laid.append((i, length))
    # The last shifts of the round wrap onto the first ones: drop those no longer needed.
    kept = []
    for i, length in laid:
        slots = [(i + j) % SLOTS for j in range(length)]
        share = _on_phones(length)
        if all(cover[s] - share >= need[s] - SLACK for s in slots):
            for s in slots:
                cover[s] -= share
        else:
            kept.append((i, length))
    # Cover so far counts each shift's breaks spread evenly; now put them somewhere.
    for i, length in kept:
        for j in range(length):
            cover[(i + j) % SLOTS] += 1 - _on_phones(length)
    shifts = []
    for i, length in kept:
        breaks = []
        for first_min, last_min, minutes, reason in BREAKS[length]:
            def spare(off: int, i: int = i) -> float:
                return cover[(i + off // 30) % SLOTS] - need[(i + off // 30) % SLOTS]
            off = max(range(first_min, last_min + 1, 10), key=spare)
            cover[(i + off // 30) % SLOTS] -= minutes / 30
            breaks.append((off * 60, minutes * 60, reason))
        shifts.append(Shift(queue, i * SLOT, length * SLOT, tuple(breaks)))
    return shifts


@lru_cache(maxsize=64)
def site_shifts(vol: float) -> tuple[Shift, ...]:
    """The shifts of one site of volume ``vol`` (1.0: the standard site), by start."""
    need = _slot_need(vol)
    shifts = [s for q in range(len(LOBS)) for s in _lay_shifts(q, need[q])]
    return tuple(sorted(shifts, key=lambda s: (s.start, s.queue)))
