"""Ticket SLA policies (contract v2 §6.3): targets, and breached / at-risk tickets as of a clock.

A ticket's policy is fixed when it is opened. Elapsed time runs from the
ticket's (original) opening, on the calendar or in business time
(:mod:`tables.business`), and every question turns into an instant computed
once per ticket::

    breached  <=> clock >= reach(opened, target + 1)
    at risk   <=> clock >= reach(opened, ceil(share * target))  and not breached

A ticket's *breach instant* is the earliest of its running targets' (the
first-reply target while it has no reply, the resolution target while it is
open), and so is its *risk instant* (never later than the breach instant).
Then, as of any clock T, among a group of open tickets::

    breached = #{breach <= T}        at risk = #{risk <= T} - #{breach <= T}

so a snapshot counts with two binary searches per group, never per ticket, and
a ticket breaches at 17:59:59 with no event: the clock alone crosses its instant.

Each partition keeps its open tickets' instants by minute (:class:`DeadlineIndex`)
and writes the minutes that changed to the partials topic; every worker merges
them into one :class:`SlaCounter`, which the replay also uses over its own index.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import Any, Final

from tables.business import NEVER, at_risk_amount
from tables.definitions import Definitions, SlaPolicy
from tables.windows import MINUTE_US

NO_POLICY: Final = -1
#: (queue, channel, product) of an open ticket: the live SLA counts' finest grain
Group = tuple[str, str, str]


class SlaClock:
    """The definitions' policies, as instants."""

    def __init__(self, defs: Definitions) -> None:
        self.policies: tuple[SlaPolicy, ...] = defs.sla
        self.share = defs.at_risk_share
        self.calendar = defs.calendar()
        # at_risk_amount reads the share as a decimal through Fraction (~25 µs): once per
        # policy and target here, not once per ticket event
        self.risk: list[tuple[int | None, int | None]] = [
            (self._risk(p.first_reply_us), self._risk(p.resolution_us)) for p in self.policies]

    def _risk(self, target: int | None) -> int | None:
        return None if target is None else at_risk_amount(target, self.share)

    def policy_for(self, priority: str | None, queue: str) -> int:
        for i, p in enumerate(self.policies):
            if p.matches(priority, queue):
                return i
        return NO_POLICY

    def _reach(self, policy: SlaPolicy, opened: int, amount: int) -> int:
        if policy.business_hours:
            return self.calendar.business_reach(opened, amount)
        return opened + amount

    def met(self, policy: int, instants: tuple[int, int, int, int], at: int,
            first_reply: bool) -> bool | None:
        """Whether a first reply / resolution at ``at`` met its target (None: no target),
        from the ticket's :meth:`instants`: elapsed(opened, at) <= target  <=>
        at < reach(opened, target + 1), its breach instant."""
        if policy == NO_POLICY:
            return None
        p = self.policies[policy]
        if (p.first_reply_us if first_reply else p.resolution_us) is None:
            return None
        return at < instants[0 if first_reply else 2]

    def instants(self, policy: int, opened: int) -> tuple[int, int, int, int]:
        """(first-reply breach, first-reply risk, resolution breach, resolution risk);
        NEVER for a target the policy does not have."""
        if policy == NO_POLICY:
            return NEVER, NEVER, NEVER, NEVER
        p = self.policies[policy]
        fr_risk, res_risk = self.risk[policy]
        out = [NEVER, NEVER, NEVER, NEVER]
        for i, target, risk in ((0, p.first_reply_us, fr_risk), (2, p.resolution_us, res_risk)):
            if target is not None and risk is not None:
                out[i] = self._reach(p, opened, target + 1)
                out[i + 1] = self._reach(p, opened, risk)
        return out[0], out[1], out[2], out[3]


def running(instants: tuple[int, int, int, int], replied: bool) -> tuple[int, int]:
    """(breach, risk) of an open ticket: the earliest of its running targets."""
    fr_b, fr_r, res_b, res_r = instants
    if replied:
        return res_b, res_r
    return min(fr_b, res_b), min(fr_r, res_r)


class DeadlineIndex:
    """One partition's open tickets with a running target, by the minute of each instant.

    ``records(minute)`` is what the partials topic holds for that minute; the
    minutes changed since the last :meth:`take_dirty` are the ones to rewrite.
    """

    def __init__(self) -> None:
        #: ticket -> (group, breach, risk)
        self.tickets: dict[str, tuple[Group, int, int]] = {}
        #: minute -> ticket -> ("b" | "r", group, instant)
        self.minutes: dict[int, dict[str, list[Any]]] = {}
        self.dirty: set[int] = set()

    def put(self, tid: str, group: Group, breach: int, risk: int) -> None:
        old = self.tickets.get(tid)
        if old == (group, breach, risk):
            return
        if old is not None:
            self._remove(tid, old)
        if breach >= NEVER:  # nothing runs: the ticket counts nowhere
            self.tickets.pop(tid, None)
            return
        self.tickets[tid] = (group, breach, risk)
        for kind, at in (("b", breach), ("r", risk)):
            m = at // MINUTE_US
            self.minutes.setdefault(m, {})[tid + "|" + kind] = [kind, *group, at]
            self.dirty.add(m)

    def drop(self, tid: str) -> None:
        old = self.tickets.pop(tid, None)
        if old is not None:
            self._remove(tid, old)

    def _remove(self, tid: str, old: tuple[Group, int, int]) -> None:
        _, breach, risk = old
        for kind, at in (("b", breach), ("r", risk)):
            m = at // MINUTE_US
            per = self.minutes.get(m)
            if per is not None:
                per.pop(tid + "|" + kind, None)
                if not per:
                    del self.minutes[m]
                self.dirty.add(m)

    def records(self, minute: int) -> list[list[Any]] | None:
        """``[kind, queue, channel, product, instant]`` of one minute (None: empty)."""
        per = self.minutes.get(minute)
        return sorted(per.values()) if per else None

    def take_dirty(self) -> set[int]:
        dirty, self.dirty = self.dirty, set()
        return dirty


class SlaCounter:
    """Breach and risk instants of many partitions, merged per group; counts as of a clock.

    Fed minute by minute with :meth:`replace` (absolute: a partition's minute is
    replaced, never added twice), like the whole-center roll-up.
    """

    def __init__(self) -> None:
        self._held: dict[tuple[int, int], list[list[Any]]] = {}
        #: group -> (sorted breach instants, sorted risk instants)
        self.groups: dict[Group, tuple[list[int], list[int]]] = {}

    def replace(self, partition: int, minute: int, records: list[list[Any]] | None) -> None:
        key = (partition, minute)
        for kind, q, ch, p, at in self._held.pop(key, ()):
            lists = self.groups[(q, ch, p)]
            seq = lists[0] if kind == "b" else lists[1]
            seq.pop(bisect_right(seq, at) - 1)
            if not lists[0] and not lists[1]:
                del self.groups[(q, ch, p)]
        if records:
            self._held[key] = records
            for kind, q, ch, p, at in records:
                lists = self.groups.setdefault((q, ch, p), ([], []))
                insort(lists[0] if kind == "b" else lists[1], at)

    def counts(self, clock: int) -> dict[Group, tuple[int, int]]:
        """group -> (breached, at risk) as of ``clock``, for groups with any."""
        out: dict[Group, tuple[int, int]] = {}
        for group, (breach, risk) in self.groups.items():
            b = bisect_right(breach, clock)
            r = bisect_right(risk, clock) - b
            if b or r:
                out[group] = (b, r)
        return out
