"""The state of one input partition, and the one entry every message goes through.

:meth:`PartitionState.feed` takes raw message bytes and a clock policy
(:mod:`tables.clock`) and returns the verdict: counted (None), ``duplicate``,
or the reason of contract section 4 -- checks in the contract's order:
decode and validation, ``too_late`` / ``future_ts``, duplicate, then the
lifecycle rules of the entity books (:mod:`tables.contacts`,
:mod:`tables.tickets`; surveys have no lifecycle). The replay, the live fast
path and the live re-processing after a crash all call it.

Replay runs one ``PartitionState`` over the whole file; the live worker runs
one per Kafka partition (events of one entity share a key, so a partition).
What the live changelog stores of it, and the rebuild from there, are
:meth:`records`, :meth:`take_journal` and the ``load_*`` / :meth:`rebuild`
methods; the format is :mod:`tables.changelog`'s.
"""

from __future__ import annotations

from typing import Any

from tables import aggregate as A
from tables.agents import AgentBook
from tables.cells import CellBuffer, Journal
from tables.clock import Clock
from tables.contacts import ContactBook
from tables.entities import (  # noqa: F401 - re-exported: the state's vocabulary
    ABANDONED,
    ANSWERED,
    CLOSED,
    DUPLICATE,
    NO_AGENT,
    OPEN,
    RESOLVED,
    WAITING,
    CellKey,
    Cells,
    Config,
    Contact,
    Ticket,
)
from tables.events import (
    TOO_LARGE,
    AgentState,
    ContactAbandoned,
    ContactAnswered,
    ContactClosed,
    ContactOffered,
    Event,
    SurveyResponse,
    SurveySent,
    TicketOpened,
    TicketReopened,
    TicketReplied,
    TicketResolved,
    decode,
    to_us,
)
from tables.live import PartLive
from tables.ticketcsat import CsatRefs
from tables.tickets import TicketBook
from tables.windows import MINUTE_US, US

_CONTACT_EVENTS = (ContactOffered, ContactAnswered, ContactAbandoned, ContactClosed)
_TICKET_EVENTS = (TicketOpened, TicketReplied, TicketResolved, TicketReopened)


class PartitionState:
    """Entities, seen event ids, pending measurement cells and rejection counts."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.buffer = CellBuffer()
        self.journal = Journal()
        self.contacts = ContactBook(cfg, self.buffer, self.journal)
        self.tickets = TicketBook(cfg, self.buffer, self.journal)
        self.agents = AgentBook(cfg.skew_us, self.buffer, self.journal)
        #: CSAT responses that name a ticket (tables.ticketcsat), kept for the retention
        self.csat_refs = CsatRefs()
        #: event_id -> event time (us); insertion order is roughly time order, which expiry uses.
        self.seen: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.duplicates = 0
        #: the last message fed, decoded (None when it did not decode): what the live
        #: worker counts by type
        self.last: Event | None = None
        #: the event time of ``last`` (us)
        self.last_ts = 0
        self._last_ttl_scan = 0
        self.max_bytes = cfg.max_message_bytes

    # --- the pipeline -----------------------------------------------------------------------------
    def feed(self, raw: bytes, clock: Clock) -> str | None:
        """One raw message through every check of the contract, in its order.

        Returns None when it counted, ``DUPLICATE``, or the rejection reason (already
        counted in ``rejected``). ``clock`` decides ``too_late`` / ``future_ts`` (and moves,
        for the replay's event clock) before the duplicate and lifecycle checks. A message
        larger than ``Config.max_message_bytes`` is ``too_large`` before anything else.
        """
        if len(raw) > self.max_bytes:
            self.last = None
            self.reject(TOO_LARGE)
            return TOO_LARGE
        ev = decode(raw)
        if isinstance(ev, str):
            self.last = None
            self.reject(ev)
            return ev
        self.last = ev
        ts = self.last_ts = to_us(ev.ts)
        reason = clock.admit(ts)
        if reason is not None:
            self.reject(reason)
            return reason
        return self.apply(ev, ts, clock.now)

    def apply(self, ev: Event, ts: int, clock: int) -> str | None:
        """Duplicate and lifecycle checks, then state + measurement (after the clock checks)."""
        eid = ev.event_id
        seen = self.seen
        # One probe of the largest dict of the state (every id of the retention):
        # insert if new, and learn in the same step whether it was there.
        size = len(seen)
        prev = seen.setdefault(eid, ts)
        if len(seen) == size:
            if prev >= clock - self.cfg.retention_us:
                self.duplicates += 1
                return DUPLICATE
            # Seen before the retention: a new event as far as the contract goes.
            # Re-inserted so the dict's order stays the time order expiry relies on.
            del seen[eid]
            seen[eid] = ts
        # Recorded before the lifecycle checks: a redelivered message is a duplicate
        # whatever the first copy's fate was (contract: "a repeated event_id").
        self.journal.seen(eid, ts)
        # Exact types (the event structs have no subclasses), most frequent first:
        # compiled, each test is a pointer comparison where isinstance would ask the
        # msgspec metaclass, and the call that follows is a direct one.
        if type(ev) is ContactOffered:
            reason = self.contacts.offered(ev, ts, clock)
        elif type(ev) is ContactAnswered:
            reason = self.contacts.answered(ev, ts, clock)
        elif type(ev) is ContactClosed:
            reason = self.contacts.closed(ev, ts, clock)
        elif type(ev) is ContactAbandoned:
            reason = self.contacts.abandoned(ev, ts, clock)
        elif type(ev) is TicketOpened:
            reason = self.tickets.opened(ev, ts, clock)
        elif type(ev) is TicketReplied:
            reason = self.tickets.replied(ev, ts, clock)
        elif type(ev) is TicketResolved:
            reason = self.tickets.resolved(ev, ts, clock)
        elif type(ev) is SurveySent:
            reason = self._sent(ev, ts)
        elif type(ev) is SurveyResponse:
            reason = self._response(ev, ts)
        elif type(ev) is AgentState:
            reason = self.agents.state(ev, ts, clock)
        elif type(ev) is TicketReopened:
            reason = self.tickets.reopened(ev, ts, clock)
        else:
            raise TypeError(f"not an event: {type(ev).__name__}")
        if reason is not None:
            self.reject(reason)
        return reason

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    # --- surveys (no lifecycle) -----------------------------------------------------------------
    def _sent(self, ev: SurveySent, ts: int) -> str | None:
        # An agent on survey_sent is not a measurement of the agent (section 7: sent is 0).
        self.buffer.at(ts, ev.queue, ev.channel, NO_AGENT)[A.SENT] += 1
        return None

    def _response(self, ev: SurveyResponse, ts: int) -> str | None:
        cell = self.buffer.at(ts, ev.queue, ev.channel, ev.agent_id or NO_AGENT)
        score = ev.score
        if ev.kind == "csat":
            cell[A.CSAT_N] += 1
            if score >= 4:
                cell[A.CSAT_GOOD] += 1
            if ev.ticket_id is not None:  # CSAT per product, beside the snapshot
                self.csat_refs.add(ev.event_id, ts, ev.ticket_id, score >= 4)
                self.journal.ref([ev.event_id, ts, ev.ticket_id, score >= 4])
        elif ev.kind == "nps":
            cell[A.NPS_N] += 1
            if score >= 9:
                cell[A.NPS_PRO] += 1
            elif score <= 6:
                cell[A.NPS_DET] += 1
        else:
            cell[A.CES_N] += 1
            cell[A.CES_SUM] += score
        return None

    # --- re-processing a message a crash may have half stored (live) ------------------------------
    def feed_isolated(
        self, raw: bytes, clock: Clock
    ) -> tuple[str | None, Cells, dict[str, int], int]:
        """:meth:`feed`, with the measurements and counts it makes handed back instead of
        kept: ``(verdict, cells, rejected, duplicates)``. Entity and id changes stay."""
        saved_cells = self.buffer.swap({})
        saved = (self.rejected, self.duplicates)
        self.rejected, self.duplicates = {}, 0
        cells: Cells = {}
        try:
            verdict = self.feed(raw, clock)
            return verdict, cells, self.rejected, self.duplicates
        finally:
            # Also when feed raised: the batch's pending cells must survive one bad record.
            cells.update(self.buffer.swap(saved_cells))
            self.rejected, self.duplicates = saved

    def stored_before(self, raw: bytes, offset: int) -> bool:
        """True when the entity of this message was stored with the message already
        applied (``upto >= offset``): then so were its counts, and only its id is
        remembered again."""
        if len(raw) > self.max_bytes:
            return False  # never applied: it is rejected again, before decoding
        ev = decode(raw)
        if isinstance(ev, str):
            return False
        ent: Any = None
        if isinstance(ev, _CONTACT_EVENTS):
            ent = self.contacts.contacts.get(ev.contact_id)
        elif isinstance(ev, _TICKET_EVENTS):
            ent = self.tickets.tickets.get(ev.ticket_id)
        elif isinstance(ev, AgentState):
            ent = self.agents.agents.get(ev.agent_id)
        if ent is None or ent.upto < offset:
            return False
        self.seen[ev.event_id] = to_us(ev.ts)
        return True

    def add_counts(self, rejected: dict[str, int], duplicates: int) -> None:
        for reason, n in rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        self.duplicates += duplicates

    def take_cells(self) -> Cells:
        return self.buffer.take()

    # --- what the live changelog stores ---------------------------------------------------------
    def start_journal(self, offset: int = -1) -> None:
        self.journal.start()
        self.journal.offset = offset

    def set_offset(self, offset: int) -> None:
        """The input offset of the message about to be fed (stamped on what it changes)."""
        self.journal.offset = offset

    def take_journal(
        self,
    ) -> tuple[list[list[Any]], list[tuple[str, int]], list[tuple[str, int, str, str]]]:
        """Entity records ``[kind, id, wire-or-None]``, new ids and new customer offers since
        the last call."""
        dirty, ids, offers = self.journal.take()
        records = [self._book(kind).record(key) for kind, key in dirty]
        return records, ids, offers

    def _book(self, kind: str) -> ContactBook | TicketBook | AgentBook:
        if kind == "c":
            return self.contacts
        return self.tickets if kind == "t" else self.agents

    def records(
        self,
    ) -> tuple[list[list[Any]], list[tuple[str, int]], list[tuple[str, int, str, str]]]:
        """Every entity record, remembered id and kept offer (a checkpoint)."""
        records = self.contacts.records() + self.tickets.records() + self.agents.records()
        offers = [o for per in self.contacts.offers.values() for o in per]
        return records, list(self.seen.items()), offers

    def load_records(self, records: list[list[Any]]) -> None:
        """Entity records as :meth:`records` / :meth:`take_journal` wrote them (None: gone)."""
        for kind, key, wire in records:
            self._book(kind).load(key, wire)

    def load_ids(self, ids: list[list[Any]] | list[tuple[str, int]]) -> None:
        self.seen.update((eid, ts) for eid, ts in ids)

    def load_refs(self, refs: list[list[Any]]) -> None:
        self.csat_refs.load(refs)

    def load_offers(self, offers: list[list[Any]] | list[tuple[str, int, str, str]]) -> None:
        for customer, ts, queue, channel in offers:
            self.contacts.add_offer((customer, ts, queue, channel))

    def load_counts(self, rejected: dict[str, int], duplicates: int) -> None:
        self.rejected, self.duplicates = dict(rejected), duplicates

    def rebuild(self) -> None:
        """Derived structures, exactly as processing the same events would have left them."""
        self.contacts.rebuild()
        self.tickets.rebuild()
        self.seen = dict(sorted(self.seen.items(), key=lambda kv: kv[1]))

    # --- live state and expiry --------------------------------------------------------------------
    def live_part(self) -> PartLive:
        """This partition's share of the ``now`` rows (clock-free, see :mod:`tables.live`)."""
        return PartLive(self.contacts.live(), self.tickets.live(), self.agents.live())

    def expire(self, clock: int) -> None:
        """Forget what the contract lets us forget, so memory stays flat."""
        cutoff = clock - self.cfg.retention_us
        self.contacts.expire(cutoff)
        self.contacts.expire_offers(cutoff - self.cfg.defs.repeat_window_us)
        self.csat_refs.expire(cutoff)
        if self.agents.clip:  # time older than every window is never read: do not spread it
            self.agents.floor_minute = clock // MINUTE_US - self.cfg.largest_window + 1
        self.tickets.expire(cutoff)
        dead = []
        for eid, ts in self.seen.items():
            if ts >= cutoff:
                break
            dead.append(eid)
        for eid in dead:
            del self.seen[eid]
        if clock - self._last_ttl_scan >= 3600 * US:
            self._last_ttl_scan = clock
            horizon = clock - self.cfg.open_ttl_us
            self.contacts.drop_idle(horizon)
            self.tickets.drop_idle(horizon)
