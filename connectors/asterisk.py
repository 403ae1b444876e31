"""Asterisk ``queue_log`` (FreePBX, Issabel, VitalPBX, Wazo) to contract events.

Why the choices below (docs/connectors.md has the full table and the reasoning):

* one contact per queue visit: ``contact_id = callid@queue``; a call that leaves and
  re-enters the same queue gets ``callid@queue#2``;
* a line for a call whose ``ENTERQUEUE`` is not in the input (the log was rotated, or
  tailing started mid-day) is rebuilt from the wait and talk times Asterisk itself wrote
  on it - never from the line's own time, which would fake a zero wait; when the line
  carries no such time (1.4 ``EXITWITHTIMEOUT``) the call is skipped;
* lifecycle ids hash ``(contact, type)``, so a rebuilt offer and the real one (from the
  previous file) are one event to the engine, not two;
* ``QUEUESTART`` (Asterisk restarted): waiting calls are abandoned and calls in progress
  closed at the restart time, members go offline until the log shows them again;
* overlapping input (rotated files, a file given twice) counts once: exact repeats of
  lines that never repeat, and lines an hour behind the log's clock, are skipped.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from connectors.asterisk_agents import TAG, AgentBook
from connectors.asterisk_format import (
    AGENT_VERBS,
    ANONYMOUS,
    CONTACT_VERBS,
    IGNORED_VERBS,
    NO_CALL,
    TIMES_FIELDS,
    WAIT_FIELD,
    parse_line,
    seconds,
)
from connectors.base import Event, Summary, clean_id, event, make_id

#: unfinished calls are forgotten this long after their last line (log time), capped
CALL_TTL = 86400.0
CALL_CAP = 200_000
#: a line this far behind the newest time seen is out of place in a log written in time
#: order: it comes from overlapping or mis-ordered input files, and is skipped
LATE_LINE = 3600.0
#: visit counters and the repeated-line memory outlive their call by this much
VISIT_TTL = 2 * LATE_LINE
#: a line more than a day ahead moves the clock only once 3 lines in a row agree: one
#: corrupt epoch must not make every following line "late"
MAX_JUMP, JUMP_CONFIRM = 86400.0, 3


@dataclass
class Call:
    contact_id: str
    queue: str
    status: str  # "waiting" | "connected"
    last: float  # time of the contact's last event (nothing may be stamped earlier)
    agent: str | None = None
    seen: float = 0.0


@dataclass
class Line:
    epoch: float
    callid: str
    queue: str
    member: str
    verb: str
    data: list[str]
    key: str  # the line's identity for event ids (text + repeat count)


class QueueLogConverter:
    """Feed lines in log order; get contract events back. Deterministic, and its whole
    state can be saved and restored (``tail`` resumes exactly where it stopped)."""

    def __init__(self, agent_map: dict[str, str] | None = None, wrapup: float = 0.0,
                 customer_salt: str | None = None, summary: Summary | None = None) -> None:
        self.agent_map = agent_map or {}
        self.salt = customer_salt
        self.summary = summary or Summary()
        self.agents = AgentBook(wrapup)
        self.calls: OrderedDict[str, Call] = OrderedDict()
        # callid@queue -> [visits so far, time of its last line]
        self.visits: OrderedDict[str, list[float]] = OrderedDict()
        self.singular: OrderedDict[str, float] = OrderedDict()  # lines that never repeat
        self.clock = 0.0
        self._repeat: dict[str, int] = {}
        self._repeat_epoch = -1.0
        self._last_skip: str | None = None
        self._jumps = 0

    # --- entry points ---------------------------------------------------------------------
    def feed(self, text: str) -> list[Event]:
        if not text.strip():
            return []
        self.summary.records += 1
        parsed = parse_line(text)
        if parsed is None:
            self.summary.skipped["unparsable_line"] += 1
            return []
        epoch, fields = parsed
        if not self._tick(epoch):
            self.summary.skipped["late_line"] += 1
            return []
        line = Line(epoch, fields[1], fields[2], fields[3], fields[4].upper(), fields[5:],
                    self._line_key(epoch, text.rstrip("\r\n")))
        out = self.agents.advance(epoch)
        self.summary.add(out)
        try:
            produced = self._dispatch(line)
        except (IndexError, ValueError, KeyError, TypeError) as exc:
            # a line shaped like nothing Asterisk writes: counted, never fatal
            self._last_skip, produced = f"malformed_line:{type(exc).__name__}", []
        if not produced:
            self.summary.skipped[self._last_skip or "no_change"] += 1
        out += produced
        self.summary.add(produced)
        self._forget_stale()
        return out

    def advance(self, now: float) -> list[Event]:
        """Let log time pass (pending ends of wrap-up)."""
        self.clock = max(self.clock, now)
        out = self.agents.advance(now)
        self.summary.add(out)
        return out

    def finish(self) -> list[Event]:
        """End of input: write the wrap-ups still pending (their time is known)."""
        out: list[Event] = []
        while (due := self.agents.next_due()) is not None:
            out += self.advance(due)
        return out

    # --- dispatch -------------------------------------------------------------------------
    def _skip(self, reason: str) -> list[Event]:
        self._last_skip = reason
        return []

    def _dispatch(self, line: Line) -> list[Event]:
        self._last_skip = None
        verb = line.verb
        if verb in ("QUEUESTART", "ENTERQUEUE") and not self._first_time(line):
            # the very same line again: rotated files that overlap (copy-truncate), or a
            # file given twice; a real restart or re-entry is a later line
            return self._skip("duplicate_line")
        if verb == "QUEUESTART":
            return self._restart(line) or self._skip("restart_nothing_open")
        if verb in CONTACT_VERBS:
            if line.callid in NO_CALL or not line.queue or line.queue == "NONE":
                return self._skip("no_callid")
            return getattr(self, "_" + CONTACT_VERBS[verb])(line)
        if verb in AGENT_VERBS:
            return self._member(line, AGENT_VERBS[verb])
        if verb in IGNORED_VERBS:
            return self._skip(f"ignored:{verb}")
        return self._skip(f"unknown_verb:{verb[:32]}")

    def _offered(self, line: Line) -> list[Event]:
        key = f"{line.callid}@{line.queue}"
        call = self.calls.get(key)
        if call is not None:
            # a second ENTERQUEUE without an exit: the first visit's end was not logged
            # (old Asterisk, see docs); it stays open until the engine's TTL.
            self.summary.notes["enter_without_exit"] += 1
        visit = int(self.visits[key][0]) + 1 if key in self.visits else 1
        self._visit(key, visit, line.epoch)
        contact = _contact_id(key, visit)
        cid = line.data[1] if len(line.data) > 1 else ""
        self.calls[key] = Call(contact, line.queue, "waiting", line.epoch, seen=line.epoch)
        self.calls.move_to_end(key)
        return [event("contact_offered", make_id(TAG, contact, "contact_offered"), line.epoch,
                      contact_id=contact, queue=clean_id(line.queue), channel="voice",
                      customer_id=self._customer(cid))]

    def _answered(self, line: Line) -> list[Event]:
        key = f"{line.callid}@{line.queue}"
        agent = self._agent_name(line.member)
        call = self.calls.get(key)
        out: list[Event] = []
        if call is None:
            if key in self.visits:
                return self._skip("after_end")
            hold = seconds(line.data, 0)
            call = self._reconstruct(key, line, line.epoch - hold if hold is not None else None)
            if call is None:
                # the member is busy even when the call cannot be counted
                self.summary.notes["answer_without_offer"] += 1
                self._skip("answer_without_offer")
                return self.agents.connect(agent, line.epoch, line.queue, f"{key}#?", line.key)
            out += self._offer_event(call)
        if call.status != "waiting":
            return out or self._skip("duplicate_answer")
        call.status, call.agent, call.seen = "connected", agent, line.epoch
        out.append(self._lifecycle(call, "contact_answered", line.epoch, agent_id=agent))
        out += self.agents.connect(agent, line.epoch, line.queue, call.contact_id, line.key)
        return out

    def _abandoned(self, line: Line) -> list[Event]:
        key = f"{line.callid}@{line.queue}"
        call = self.calls.get(key)
        out: list[Event] = []
        if call is None:
            if key in self.visits:
                return self._skip("after_end")
            wait = seconds(line.data, WAIT_FIELD.get(line.verb, 2))
            call = self._reconstruct(key, line, line.epoch - wait if wait is not None else None)
            if call is None:
                return self._skip("abandon_without_offer")
            out += self._offer_event(call)
        if call.status != "waiting":
            return out or self._skip("abandon_after_answer")
        out.append(self._lifecycle(call, "contact_abandoned", line.epoch))
        self._close(key, line.epoch)
        return out

    def _closed(self, line: Line) -> list[Event]:
        key = f"{line.callid}@{line.queue}"
        agent = self._agent_name(line.member)
        call = self.calls.get(key)
        out: list[Event] = []
        hold_at, talk_at = TIMES_FIELDS[line.verb]
        talk = seconds(line.data, talk_at)
        if call is None:
            if key in self.visits:
                return self._skip("after_end")
            hold = seconds(line.data, hold_at)
            start = line.epoch - talk - hold if talk is not None and hold is not None else None
            call = self._reconstruct(key, line, start)
            if call is None:
                self.summary.notes["end_without_offer"] += 1
                self._skip("end_without_offer")
                return self.agents.complete(agent, line.epoch, line.queue, f"{key}#?", line.key)
            out += self._offer_event(call)
        if call.status == "waiting":
            # the CONNECT line is missing: the talk time says when the answer was
            answered_at = line.epoch - talk if talk is not None else line.epoch
            call.status, call.agent = "connected", agent
            self.summary.notes["inferred_answer"] += 1
            out.append(self._lifecycle(call, "contact_answered", answered_at, agent_id=agent))
        out.append(self._lifecycle(call, "contact_closed", line.epoch,
                                   agent_id=agent or call.agent))
        out += self.agents.complete(agent, line.epoch, line.queue, call.contact_id, line.key)
        self._close(key, line.epoch)
        return out

    def _member(self, line: Line, action: str) -> list[Event]:
        name = self._agent_name(line.member)
        if line.member in ("", "NONE"):
            return self._skip("no_member")
        queue = line.queue if line.queue not in ("", "NONE") else None
        book, ts, key = self.agents, line.epoch, line.key
        if action == "login":
            paused = bool(line.data) and line.data[0].upper() == "PAUSED"
            return book.add_member(name, ts, queue, paused, key)
        if action == "agent_login":
            return book.agent_login(name, ts, key)
        if action == "remove":
            return book.remove_member(name, ts, queue, key)
        if action == "logoff":
            return book.logoff(name, ts, key)
        if action == "pause":
            reason = clean_id(line.data[0]) if line.data else None
            return book.pause(name, ts, queue, reason, key)
        return book.unpause(name, ts, queue, key)

    def _restart(self, line: Line) -> list[Event]:
        out: list[Event] = []
        for key in list(self.calls):
            call = self.calls[key]
            if call.status == "waiting":
                out.append(self._lifecycle(call, "contact_abandoned", line.epoch))
            else:
                out.append(self._lifecycle(call, "contact_closed", line.epoch,
                                           agent_id=call.agent))
            self._close(key, line.epoch)
            self.summary.notes["ended_by_restart"] += 1
        return out + self.agents.restart(line.epoch, line.key)

    # --- helpers ----------------------------------------------------------------------------
    def _tick(self, epoch: float) -> bool:
        """Move the log clock with a line; False when the line is late (skip it)."""
        if self.clock == 0.0 or epoch <= self.clock + MAX_JUMP:
            if epoch < self.clock - LATE_LINE:
                return False
            self.clock, self._jumps = max(self.clock, epoch), 0
            return True
        self._jumps += 1
        if self._jumps >= JUMP_CONFIRM:
            self.clock, self._jumps = epoch, 0
        return True

    def _first_time(self, line: Line) -> bool:
        text = line.key.rsplit("\x1f", 1)[0]
        if text in self.singular:
            return False
        self.singular[text] = line.epoch
        return True

    def _visit(self, key: str, visit: int, epoch: float) -> None:
        self.visits[key] = [visit, epoch]
        self.visits.move_to_end(key)

    def _close(self, key: str, epoch: float) -> None:
        self.calls.pop(key, None)
        if key in self.visits:  # remembered a while: late lines of it are recognised
            self._visit(key, int(self.visits[key][0]), epoch)

    def _reconstruct(self, key: str, line: Line, offered_at: float | None) -> Call | None:
        """A call first seen mid-life: rebuild its offer from the times on the line."""
        if key in self.visits or offered_at is None or offered_at > line.epoch:
            return None  # already ended (a late duplicate line) or no usable time
        self._visit(key, 1, line.epoch)
        call = Call(_contact_id(key, 1), line.queue, "waiting", offered_at, seen=line.epoch)
        self.calls[key] = call
        self.summary.notes["inferred_offer"] += 1
        return call

    @staticmethod
    def _offer_event(call: Call) -> list[Event]:
        """The offer of a reconstructed call, at the time its own line implies."""
        return [event("contact_offered", make_id(TAG, call.contact_id, "contact_offered"),
                      call.last, contact_id=call.contact_id, queue=clean_id(call.queue),
                      channel="voice", inferred=True)]

    @staticmethod
    def _lifecycle(call: Call, kind: str, ts: float, **fields: Any) -> Event:
        stamp = max(ts, call.last)  # never earlier than the contact's previous event
        call.last = stamp
        return event(kind, make_id(TAG, call.contact_id, kind), stamp,
                     contact_id=call.contact_id, **fields)

    def _agent_name(self, member: str) -> str:
        name = self.agent_map.get(member, member)
        return clean_id(name) or "unknown"

    def _customer(self, cid: str) -> str | None:
        if cid.strip().lower() in ANONYMOUS:
            return None
        if self.salt is not None:
            digest = hashlib.sha256(f"{self.salt}\x1f{cid}".encode()).hexdigest()[:24]
            return f"cid-{digest}"
        return clean_id(cid)

    def _line_key(self, epoch: float, text: str) -> str:
        # identical lines in one second are distinct events (PAUSE, UNPAUSE, PAUSE)
        if epoch != self._repeat_epoch:
            self._repeat, self._repeat_epoch = {}, epoch
        count = self._repeat.get(text, 0)
        self._repeat[text] = count + 1
        return f"{text}\x1f{count}"

    def _forget_stale(self) -> None:
        """Calls that never end (a lost line, a crash without QUEUESTART) are forgotten a
        day of log time after their last line, and at most CALL_CAP are kept."""
        while self.calls:
            key, call = next(iter(self.calls.items()))
            if call.seen >= self.clock - CALL_TTL and len(self.calls) <= CALL_CAP:
                break
            self.calls.popitem(last=False)
            if call.status == "connected":
                self.agents.drop_call(call.contact_id)
            self.summary.notes["forgotten_unfinished_call"] += 1
        horizon = self.clock - VISIT_TTL
        for _ in range(len(self.visits)):  # ordered by last line
            key, (_, last) = next(iter(self.visits.items()))
            if last >= horizon and len(self.visits) <= CALL_CAP * 2:
                break
            if key in self.calls:
                self.visits.move_to_end(key)  # an open call keeps its counter
            else:
                self.visits.popitem(last=False)
        while self.singular and next(iter(self.singular.values())) < horizon:
            self.singular.popitem(last=False)  # older repeats are late lines anyway

    # --- persistence (tail) ---------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {"calls": [[k, asdict(c)] for k, c in self.calls.items()],
                "visits": list(self.visits.items()), "singular": list(self.singular.items()),
                "clock": self.clock, "jumps": self._jumps, "agents": self.agents.dump(),
                "repeat": [self._repeat_epoch, self._repeat]}

    def restore(self, data: dict[str, Any]) -> None:
        self.calls = OrderedDict((k, Call(**c)) for k, c in data.get("calls", []))
        self.visits = OrderedDict((k, list(v)) for k, v in data.get("visits", []))
        self.singular = OrderedDict((k, float(t)) for k, t in data.get("singular", []))
        self.clock, self._jumps = float(data.get("clock", 0.0)), int(data.get("jumps", 0))
        self._repeat_epoch, self._repeat = data.get("repeat", [-1.0, {}])
        self.agents = AgentBook.load(data.get("agents", {}), self.agents.wrapup)


def convert_lines(lines: Iterable[str], converter: QueueLogConverter) -> Iterable[Event]:
    yield from (ev for text in lines for ev in converter.feed(text))
    yield from converter.finish()


def _contact_id(key: str, visit: int) -> str:
    return clean_id(key if visit == 1 else f"{key}#{visit}") or key
