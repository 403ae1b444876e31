"""A long synthetic Asterisk queue_log with the quirks of real ones, and its ground truth.

``python tests/connectors_data/make_queue_log.py`` rewrites ``synthetic_queue_log.log``;
the tests regenerate it in memory and check the file still matches.

The generator writes lines the way ``apps/app_queue.c`` does across versions and keeps,
independently of the converter, what each contact really was (offered, answered by
whom, when it ended): the tests compare the converter's events with that.

Quirks covered: 1.4 / 1.8 / 13+ / 18+ data fields (ENTERQUEUE with and without position
and caller name; CONNECT with and without ring time; TRANSFER with 4 and 5 fields,
BLINDTRANSFER, ATTENDEDTRANSFER; EXITWITHKEY and EXITWITHTIMEOUT old and new),
RINGNOANSWER storms, members written Local/…@from-queue/n, PJSIP/, SIP/, Agent/ and by
name, NONE agents, lines with extra or missing fields, garbage lines, anonymous callers,
calls that never end, calls whose ENTERQUEUE precedes the file (answered, completed and
abandoned), re-entries in another queue and in the same queue, pauses with reasons,
PAUSEALL, a QUEUESTART with calls waiting and in progress.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

START = 1_767_225_600  # 2026-01-01T00:00:00Z
QUEUES = ("sales", "support", "400")
MEMBERS = ("Local/101@from-queue/n", "PJSIP/102", "SIP/103", "Agent/104", "Alice Smith",
           "Local/106@from-queue/n")


@dataclass
class Truth:
    contact_id: str
    queue: str
    offered: float
    outcome: str  # answered+closed | answered | abandoned | waiting
    answered: float | None = None
    agent: str | None = None
    ended: float | None = None
    in_file_offer: bool = True
    customer: str | None = None


@dataclass
class Log:
    rng: random.Random
    rows: list[tuple[float, int, str]] = field(default_factory=list)
    truth: dict[str, Truth] = field(default_factory=dict)
    seq: int = 0
    latest: float = 0.0

    def put(self, ts: float, text: str) -> None:
        self.seq += 1
        self.latest = max(self.latest, ts)
        self.rows.append((ts, self.seq, text))

    def line(self, ts: float, callid: str, queue: str, agent: str, verb: str,
             *data: object) -> None:
        self.put(ts, "|".join([str(int(ts)), callid, queue, agent, verb,
                               *(str(d) for d in data)]))


def generate(seed: int = 7, calls: int = 900) -> tuple[list[str], dict[str, Truth]]:
    rng = random.Random(seed)
    log = Log(rng)
    t = START
    log.line(t, "NONE", "NONE", "NONE", "QUEUESTART")
    for i, member in enumerate(MEMBERS):
        if member == "Agent/104":
            log.line(t + 1 + i, "1767225601.1", "NONE", member, "AGENTLOGIN", "PJSIP/104-0001")
        elif member != "SIP/103":  # SIP/103 is a static member: never an ADDMEMBER line
            for q in QUEUES[: 1 + i % 3]:
                log.line(t + 1 + i, "MANAGER", q, member, "ADDMEMBER", "")
    # calls already in progress when the file starts
    log.line(t + 20, "1767225000.5", "sales", "PJSIP/102", "COMPLETECALLER", 35, 120, 1)
    log.truth["1767225000.5@sales"] = Truth("1767225000.5@sales", "sales", t + 20 - 155,
                                            "answered+closed", t + 20 - 120, "PJSIP/102", t + 20,
                                            in_file_offer=False)
    log.line(t + 25, "1767225100.6", "support", "SIP/103", "CONNECT", 18, "1767225120.7", 4)
    log.truth["1767225100.6@support"] = Truth("1767225100.6@support", "support", t + 25 - 18,
                                              "answered", t + 25, "SIP/103", in_file_offer=False)
    log.line(t + 30, "1767225200.8", "400", "NONE", "ABANDON", 2, 3, 44)
    log.truth["1767225200.8@400"] = Truth("1767225200.8@400", "400", t + 30 - 44, "abandoned",
                                          ended=t + 30, in_file_offer=False)
    log.line(t + 31, "1767225210.9", "400", "NONE", "EXITWITHTIMEOUT", 1)  # 1.4: no wait
    t += 60
    restart_at = START + calls * 40 // 2
    restarted = False
    for n in range(calls):
        t += rng.randint(5, 60)
        if not restarted and t >= restart_at:
            restarted = True
            t = log.latest + 60  # no line of an older call after the restart
            _restart(log, t)
            t += 5
        _call(log, rng, t, n)
    _garbage(log, rng, START + 100)
    for member, q in (("PJSIP/102", "sales"), ("Alice Smith", "NONE")):
        at = START + rng.randint(300, calls * 20)
        verb = "PAUSEALL" if q == "NONE" else "PAUSE"
        log.line(at, "NONE", q, member, verb, rng.choice(["lunch", "meeting", ""]))
        log.line(at + 600, "NONE", q, member, "UNPAUSEALL" if q == "NONE" else "UNPAUSE", "")
    log.rows.sort()
    return [text for _, _, text in log.rows], log.truth


def _restart(log: Log, t: float) -> None:
    """Asterisk restarts with one call waiting and one in progress (and whatever never
    ended before): waiting calls are abandoned then, calls in progress closed then."""
    for truth in log.truth.values():
        if truth.outcome == "waiting":
            truth.outcome, truth.ended = "abandoned", t
        elif truth.outcome == "answered":
            truth.outcome, truth.ended = "answered+closed", t
    log.line(t - 30, "1767999000.1", "sales", "NONE", "ENTERQUEUE", "", "5550001", 1)
    log.truth["1767999000.1@sales"] = Truth("1767999000.1@sales", "sales", t - 30, "abandoned",
                                            ended=t, customer="5550001")
    log.line(t - 29, "1767999000.2", "support", "NONE", "ENTERQUEUE", "", "5550002", 1)
    log.line(t - 20, "1767999000.2", "support", "PJSIP/102", "CONNECT", 9, "1767999000.3", 2)
    log.truth["1767999000.2@support"] = Truth("1767999000.2@support", "support", t - 29,
                                              "answered+closed", t - 20, "PJSIP/102", t,
                                              customer="5550002")
    log.line(t, "NONE", "NONE", "NONE", "QUEUESTART", "")


def _call(log: Log, rng: random.Random, t: float, n: int) -> None:
    callid = f"{int(t)}.{n}"
    queue = rng.choice(QUEUES)
    cid = rng.choice(["5551234", "+442071234567", "anonymous", "", f"555{n:04d}"])
    style = rng.choice(["1.4", "1.8", "13", "18"])
    enter = {"1.4": ("", cid), "1.8": ("", cid, 1), "13": ("", cid, 1),
             "18": ("", cid, 1, "John Doe")}[style]
    key = f"{callid}@{queue}"
    log.line(t, callid, queue, "NONE", "ENTERQUEUE", *enter)
    truth = Truth(key, queue, t, "waiting",
                  customer=None if cid in ("anonymous", "") else cid)
    log.truth[key] = truth
    roll = rng.random()
    wait = rng.randint(0, 90)
    for k in range(rng.randint(0, 6) if roll < 0.8 else 40):  # storms now and then
        log.line(t + min(k * 2, wait), callid, queue, rng.choice(MEMBERS), "RINGNOANSWER", 15000)
    if roll < 0.62:
        agent = rng.choice(MEMBERS)
        connect = (wait, f"{callid}1") if style == "1.4" else (wait, f"{callid}1", 3)
        log.line(t + wait, callid, queue, agent, "CONNECT", *connect)
        truth.outcome, truth.answered, truth.agent = "answered", t + wait, agent
        if rng.random() < 0.03:
            return  # never ends (a lost line)
        talk = rng.randint(20, 600)
        end = t + wait + talk
        verb = rng.choice(["COMPLETECALLER", "COMPLETEAGENT", "COMPLETEAGENT", "TRANSFER",
                           "BLINDTRANSFER", "ATTENDEDTRANSFER"])
        data: tuple[object, ...] = {
            "COMPLETECALLER": (wait, talk, 1), "COMPLETEAGENT": (wait, talk, 1),
            "TRANSFER": ("200", "from-internal", wait, talk) + (() if style == "1.4" else (1,)),
            "BLINDTRANSFER": ("200", "from-internal", wait, talk, 1),
            "ATTENDEDTRANSFER": ("BRIDGE", "abc-123", wait, talk, 1)}[verb]
        log.line(end, callid, queue, agent, verb, *data)
        truth.outcome, truth.ended = "answered+closed", end
    elif roll < 0.97:
        verb = rng.choice(["ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"])
        old = style == "1.4"
        data = {"ABANDON": (2, 1, wait), "EXITEMPTY": (1, 1, wait),
                "EXITWITHTIMEOUT": (1,) if old else (1, 1, wait),
                "EXITWITHKEY": ("5", 1) if old else ("5", 1, 1, wait)}[verb]
        log.line(t + wait, callid, queue, "NONE", verb, *data)
        truth.outcome, truth.ended = "abandoned", t + wait
        if rng.random() < 0.15:  # the caller is sent on: another queue, or the same again
            again = queue if rng.random() < 0.5 else rng.choice(
                [q for q in QUEUES if q != queue])
            visit = f"{callid}@{again}" + ("#2" if again == queue else "")
            log.line(t + wait + 1, callid, again, "NONE", "ENTERQUEUE", "", cid, 1)
            log.line(t + wait + 20, callid, again, "NONE", "ABANDON", 1, 1, 19)
            log.truth[visit] = Truth(visit, again, t + wait + 1, "abandoned",
                                     ended=t + wait + 20, customer=truth.customer)
    # else: waits forever (the dialplan lost it); the engine's TTL forgets it


def _garbage(log: Log, rng: random.Random, t: float) -> None:
    log.put(t, "")
    log.put(t, "this is not a queue_log line")
    log.put(t, "1767225700|1767225700.1|sales|NONE")  # too few fields
    log.put(t, "notanumber|1767225700.2|sales|NONE|ENTERQUEUE||123|1")
    log.put(t, "1767225700|NONE|sales|PJSIP/102|PENALTY|3")
    log.put(t, "1767225700|NONE|NONE|NONE|CONFIGRELOAD|")
    log.put(t, "1767225700|1767225700.3|sales|NONE|DID|5551000")
    log.put(t, "1767225700|1767225700.4|sales|NONE|SOMETHINGNEW|x|y")


def main() -> None:
    lines, _ = generate()
    target = Path(__file__).with_name("synthetic_queue_log.log")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} lines to {target}")


if __name__ == "__main__":
    main()
