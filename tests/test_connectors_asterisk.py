"""Asterisk queue_log -> contract events (connectors/asterisk.py, asterisk_agents.py).

Line formats are the ``ast_queue_log(...)`` calls of asterisk/asterisk ``apps/app_queue.c``
(1.4.44, 1.8.32, 13.38, current master) and the "Queue Logs" page,
https://docs.asterisk.org/Operation/Logging/Queue-Logs/ . Real samples: that page's
example line, and the Wazo documentation's queue_log rows (wazo-pbx/xivo-doc
``source/api_sdk/queue_log.rst``, turned from their table into file lines, times taken
as the server's -04:00 - the callids, creation epochs, agree with that).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from connectors.asterisk import QueueLogConverter, convert_lines
from connectors.commands import register
from stream_app.tools.replay import replay_paths
from tests.connectors_data.helpers import DATA, by_id, converted, write_jsonl
from tests.connectors_data.make_queue_log import generate

T = 1_767_225_600


def run(lines: list[str], **kwargs: object) -> list[dict]:
    conv = QueueLogConverter(**kwargs)  # type: ignore[arg-type]
    return list(convert_lines(lines, conv))


def lifecycle(events: list[dict]) -> list[tuple]:
    return [(e["type"], e["ts"][11:19], e.get("agent_id")) for e in events
            if e["type"] != "agent_state"]


# (lines, expected lifecycle (type, hh:mm:ss, agent)) - one row per verb and version
CASES = {
    "answered and completed by the caller (1.8+ CONNECT with ring time)": (
        [f"{T}|1.1|sales|NONE|ENTERQUEUE||5551234|1",
         f"{T + 12}|1.1|sales|PJSIP/102|CONNECT|12|1.2|4",
         f"{T + 70}|1.1|sales|PJSIP/102|COMPLETECALLER|12|58|1"],
        [("contact_offered", "00:00:00", None), ("contact_answered", "00:00:12", "PJSIP/102"),
         ("contact_closed", "00:01:10", "PJSIP/102")]),
    "1.4 CONNECT (no ring time) and COMPLETEAGENT": (
        [f"{T}|1.1|q|NONE|ENTERQUEUE||5551234", f"{T + 5}|1.1|q|SIP/1|CONNECT|5|1.2",
         f"{T + 9}|1.1|q|SIP/1|COMPLETEAGENT|5|4|1"],
        [("contact_offered", "00:00:00", None), ("contact_answered", "00:00:05", "SIP/1"),
         ("contact_closed", "00:00:09", "SIP/1")]),
    "ABANDON": ([f"{T}|1.1|q|NONE|ENTERQUEUE||1|1", f"{T + 30}|1.1|q|NONE|ABANDON|1|1|30"],
                [("contact_offered", "00:00:00", None), ("contact_abandoned", "00:00:30", None)]),
    "EXITWITHTIMEOUT 1.4 (position only)": (
        [f"{T}|1.1|q|NONE|ENTERQUEUE||1", f"{T + 60}|1.1|q|NONE|EXITWITHTIMEOUT|1"],
        [("contact_offered", "00:00:00", None), ("contact_abandoned", "00:01:00", None)]),
    "EXITEMPTY": ([f"{T}|1.1|q|NONE|ENTERQUEUE||1|1", f"{T + 1}|1.1|q|NONE|EXITEMPTY|1|1|1"],
                  [("contact_offered", "00:00:00", None),
                   ("contact_abandoned", "00:00:01", None)]),
    "EXITWITHKEY 1.4 (key|pos)": (
        [f"{T}|1.1|q|NONE|ENTERQUEUE||1", f"{T + 7}|1.1|q|NONE|EXITWITHKEY|5|1"],
        [("contact_offered", "00:00:00", None), ("contact_abandoned", "00:00:07", None)]),
    "TRANSFER 1.4 (4 fields)": (
        [f"{T}|1.1|q|NONE|ENTERQUEUE||1", f"{T + 3}|1.1|q|SIP/1|CONNECT|3|1.2",
         f"{T + 40}|1.1|q|SIP/1|TRANSFER|200|from-internal|3|37"],
        [("contact_offered", "00:00:00", None), ("contact_answered", "00:00:03", "SIP/1"),
         ("contact_closed", "00:00:40", "SIP/1")]),
    "BLINDTRANSFER (12+)": (
        [f"{T}|1.1|q|NONE|ENTERQUEUE||1|1", f"{T + 3}|1.1|q|SIP/1|CONNECT|3|1.2|1",
         f"{T + 40}|1.1|q|SIP/1|BLINDTRANSFER|200|from-internal|3|37|1"],
        [("contact_offered", "00:00:00", None), ("contact_answered", "00:00:03", "SIP/1"),
         ("contact_closed", "00:00:40", "SIP/1")]),
    "ATTENDEDTRANSFER (12+, method data with its own field)": (
        [f"{T}|1.1|q|NONE|ENTERQUEUE||1|1", f"{T + 3}|1.1|q|SIP/1|CONNECT|3|1.2|1",
         f"{T + 40}|1.1|q|SIP/1|ATTENDEDTRANSFER|BRIDGE|abc-123|3|37|1"],
        [("contact_offered", "00:00:00", None), ("contact_answered", "00:00:03", "SIP/1"),
         ("contact_closed", "00:00:40", "SIP/1")]),
    "CONNECT without ENTERQUEUE: offer rebuilt from the hold time": (
        [f"{T + 20}|1.1|q|SIP/1|CONNECT|15|1.2|1"],
        [("contact_offered", "00:00:05", None), ("contact_answered", "00:00:20", "SIP/1")]),
    "COMPLETE without ENTERQUEUE nor CONNECT: rebuilt from hold and talk times": (
        [f"{T + 100}|1.1|q|SIP/1|COMPLETECALLER|10|60|1"],
        [("contact_offered", "00:00:30", None), ("contact_answered", "00:00:40", "SIP/1"),
         ("contact_closed", "00:01:40", "SIP/1")]),
    "ABANDON without ENTERQUEUE: rebuilt from the wait": (
        [f"{T + 50}|1.1|q|NONE|ABANDON|1|1|20"],
        [("contact_offered", "00:00:30", None), ("contact_abandoned", "00:00:50", None)]),
    "1.4 EXITWITHTIMEOUT without ENTERQUEUE: no wait on the line, nothing invented": (
        [f"{T + 50}|1.1|q|NONE|EXITWITHTIMEOUT|1"], []),
    "a call moving queue is a new contact": (
        [f"{T}|1.1|a|NONE|ENTERQUEUE||1|1", f"{T + 5}|1.1|a|NONE|EXITWITHTIMEOUT|1|1|5",
         f"{T + 6}|1.1|b|NONE|ENTERQUEUE||1|1", f"{T + 8}|1.1|b|SIP/1|CONNECT|2|1.3|1"],
        [("contact_offered", "00:00:00", None), ("contact_abandoned", "00:00:05", None),
         ("contact_offered", "00:00:06", None), ("contact_answered", "00:00:08", "SIP/1")]),
    "QUEUESTART ends what is open": (
        [f"{T}|1.1|q|NONE|ENTERQUEUE||1|1", f"{T + 1}|1.2|q|NONE|ENTERQUEUE||1|1",
         f"{T + 2}|1.2|q|SIP/1|CONNECT|1|1.3|1", f"{T + 9}|NONE|NONE|NONE|QUEUESTART|"],
        [("contact_offered", "00:00:00", None), ("contact_offered", "00:00:01", None),
         ("contact_answered", "00:00:02", "SIP/1"), ("contact_abandoned", "00:00:09", None),
         ("contact_closed", "00:00:09", "SIP/1")]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_verbs_map_as_documented(name: str) -> None:
    lines, expected = CASES[name]
    assert lifecycle(run(lines)) == expected


def test_contact_ids_customer_ids_and_salted_callers() -> None:
    lines = [f"{T}|1.1|q|NONE|ENTERQUEUE||5551234|1|John Doe",
             f"{T + 1}|1.2|q|NONE|ENTERQUEUE||anonymous|1", f"{T + 2}|1.3|q|NONE|ENTERQUEUE||"]
    plain = [e for e in run(lines) if e["type"] == "contact_offered"]
    assert [e.get("customer_id") for e in plain] == ["5551234", None, None]
    assert [e["contact_id"] for e in plain] == ["1.1@q", "1.2@q", "1.3@q"]
    assert all(e["channel"] == "voice" and e["queue"] == "q" for e in plain)
    salted = [e for e in run(lines, customer_salt="s3cret") if e["type"] == "contact_offered"]
    assert salted[0]["customer_id"].startswith("cid-")
    assert "5551234" not in salted[0]["customer_id"]
    again = [e for e in run(lines, customer_salt="s3cret") if e["type"] == "contact_offered"]
    assert again[0]["customer_id"] == salted[0]["customer_id"]


def test_same_queue_reentry_gets_a_visit_number() -> None:
    lines = [f"{T}|1.1|q|NONE|ENTERQUEUE||1|1", f"{T + 5}|1.1|q|NONE|EXITWITHTIMEOUT|1|1|5",
             f"{T + 9}|1.1|q|NONE|ENTERQUEUE||1|1", f"{T + 12}|1.1|q|NONE|ABANDON|1|1|3"]
    ids = [e["contact_id"] for e in run(lines)]
    assert ids == ["1.1@q", "1.1@q", "1.1@q#2", "1.1@q#2"]


def test_agent_states_queue_lists_pauses_and_wrapup() -> None:
    lines = [f"{T}|MANAGER|sales|PJSIP/1|ADDMEMBER|",
             f"{T + 1}|MANAGER|support|PJSIP/1|ADDMEMBER|",
             f"{T + 2}|NONE|sales|PJSIP/1|PAUSE|lunch",
             f"{T + 3}|NONE|sales|PJSIP/1|UNPAUSE|",
             f"{T + 10}|1.1|sales|NONE|ENTERQUEUE||1|1",
             f"{T + 12}|1.1|sales|PJSIP/1|CONNECT|2|1.2|1",
             f"{T + 20}|1.1|sales|PJSIP/1|COMPLETEAGENT|2|8|1",
             f"{T + 40}|MANAGER|sales|PJSIP/1|REMOVEMEMBER|",
             f"{T + 50}|MANAGER|support|PJSIP/1|REMOVEMEMBER|"]
    states = [(e["ts"][17:19], e["state"], e["queues"], e.get("reason"))
              for e in run(lines, wrapup=15) if e["type"] == "agent_state"]
    assert states == [
        ("00", "available", ["sales"], None), ("01", "available", ["sales", "support"], None),
        ("02", "paused", ["sales", "support"], "lunch"),
        ("03", "available", ["sales", "support"], None),
        ("12", "busy", ["sales", "support"], None), ("20", "wrap_up", ["sales", "support"], None),
        ("35", "available", ["sales", "support"], None),
        ("40", "available", ["support"], None), ("50", "offline", [], None)]


def test_wrapup_end_waits_for_time_and_yields_to_other_changes() -> None:
    base = [f"{T}|1.1|q|NONE|ENTERQUEUE||1|1", f"{T + 1}|1.1|q|SIP/1|CONNECT|1|1.2|1",
            f"{T + 5}|1.1|q|SIP/1|COMPLETEAGENT|1|4|1"]
    conv = QueueLogConverter(wrapup=30)
    for line in base:
        conv.feed(line)
    # time has not passed the end of wrap-up: nothing pending is written
    assert conv.feed(f"{T + 20}|NONE|NONE|NONE|CONFIGRELOAD|") == []
    # something else changes the agent first: the pending end is dropped
    paused = conv.feed(f"{T + 25}|NONE|q|SIP/1|PAUSE|coffee")
    assert [e["state"] for e in paused] == ["paused"]
    assert conv.advance(T + 100) == [] and conv.finish() == []
    # at the end of the input a pending end of wrap-up is written at its own time
    ends = run(base, wrapup=30)
    assert ends[-1]["state"] == "available" and ends[-1]["ts"] == "2026-01-01T00:00:35Z"


def test_no_agent_state_goes_back_in_time_and_wazo_logoff_unpause_keeps_offline() -> None:
    events = converted("asterisk-queue-log", "wazo_queue_log.log", wrapup=5)
    states = [e for e in events if e["type"] == "agent_state"]
    assert [s["state"] for s in states][:2] == ["available", "offline"]
    assert states[2]["state"] == "busy"  # back through the CONNECT, not through UNPAUSE
    stamps = [s["ts"] for s in states]
    assert stamps == sorted(stamps)


def test_real_samples() -> None:
    docs = converted("asterisk-queue-log", "asterisk_docs_queue_log.log")
    assert docs == []  # the docs' example is a RINGNOANSWER: read, counted, not mapped
    wazo = lifecycle(converted("asterisk-queue-log", "wazo_queue_log.log"))
    assert wazo == [
        ("contact_offered", "11:33:21", None), ("contact_answered", "11:33:23", "Agent/3001"),
        ("contact_offered", "11:37:32", None), ("contact_answered", "11:37:34", "Agent/3001"),
        ("contact_closed", "11:37:46", "Agent/3001"),
        ("contact_offered", "11:49:46", None), ("contact_abandoned", "11:49:52", None)]


def test_synthetic_log_matches_its_ground_truth(tmp_path: Path) -> None:
    lines, truth = generate()
    assert (DATA / "synthetic_queue_log.log").read_text().splitlines() == lines
    events = converted("asterisk-queue-log", "synthetic_queue_log.log")
    by_contact: dict[str, dict[str, dict]] = {}
    for ev in events:
        if ev["type"] != "agent_state":
            by_contact.setdefault(ev["contact_id"], {})[ev["type"]] = ev
    assert set(by_contact) == set(truth)
    from connectors.base import parse_time

    for cid, t in truth.items():
        got = by_contact[cid]
        assert parse_time(got["contact_offered"]["ts"]) == t.offered, cid
        assert got["contact_offered"].get("inferred", False) is not t.in_file_offer, cid
        if t.in_file_offer:
            assert got["contact_offered"].get("customer_id") == t.customer, cid
        if t.outcome.startswith("answered"):
            assert parse_time(got["contact_answered"]["ts"]) == t.answered, cid
            assert got["contact_answered"]["agent_id"] == t.agent, cid
        if t.outcome == "answered+closed":
            assert parse_time(got["contact_closed"]["ts"]) == t.ended, cid
        if t.outcome == "abandoned":
            assert parse_time(got["contact_abandoned"]["ts"]) == t.ended, cid
        if t.outcome == "waiting":
            assert set(got) == {"contact_offered"}, cid
    # the engine accepts every lifecycle event; per agent, time never goes back
    snap = replay_paths([str(write_jsonl(tmp_path / "out.jsonl", events))]).snapshot()
    assert set(snap["rejected"]) <= {"unknown_type"}  # agent_state: replay support pending
    assert snap["duplicates"] == 0
    last: dict[str, str] = {}
    for ev in events:
        if ev["type"] == "agent_state":
            assert ev["ts"] >= last.get(ev["agent_id"], ""), ev
            last[ev["agent_id"]] = ev["ts"]
    row = next(r for r in snap["rows"] if r["scope"] == "all" and r["window"] == "24h")
    answered = [t for t in truth.values() if t.outcome.startswith("answered")]
    assert row["contacts_answered"] == len(answered)
    assert row["contacts_abandoned"] == sum(t.outcome == "abandoned" for t in truth.values())
    assert row["asa_seconds"] == pytest.approx(
        sum(t.answered - t.offered for t in answered) / len(answered))  # type: ignore[operator]


def test_convert_is_deterministic_and_lines_never_crash() -> None:
    first = converted("asterisk-queue-log", "synthetic_queue_log.log", wrapup=20)
    second = converted("asterisk-queue-log", "synthetic_queue_log.log", wrapup=20)
    assert first == second
    by_id(first)  # one id, one event
    junk = ["", "|||||", "1|2", "x|y|z|w|v", "1767225600|1|q|NONE|CONNECT|notanumber",
            "1767225600|1|q|NONE|ENTERQUEUE", "1767225600|1|q|NONE|COMPLETECALLER|a|b",
            "\x00\xff|bad", "9" * 400 + "|a|b|c|D", "1767225600|1.1|" + "q" * 300 + "|NONE|"
            "ENTERQUEUE||1|1"]
    events = run(junk)
    assert all(len(e.get("contact_id", "x")) <= 128 for e in events)


def test_state_dump_and_restore_continue_exactly() -> None:
    lines, _ = generate(seed=3, calls=200)
    whole = run(lines, wrapup=12)
    first = QueueLogConverter(wrapup=12)
    out = [e for line in lines[:1500] for e in first.feed(line)]
    saved = orjson.loads(orjson.dumps(first.dump()))
    second = QueueLogConverter(wrapup=12)
    second.restore(saved)
    out += [e for line in lines[1500:] for e in second.feed(line)] + second.finish()
    assert out == whole


def test_cli_convert_with_agent_map_and_summary(tmp_path: Path) -> None:
    agent_map = tmp_path / "agents.csv"
    agent_map.write_text("# member,agent\nPJSIP/102,ann\nLocal/101@from-queue/n,bob\n")
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, [
        "convert", "asterisk", str(DATA / "synthetic_queue_log.log"), "--agent-map",
        str(agent_map), "--wrapup", "10", "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    events = [orjson.loads(x) for x in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    agents = {e["agent_id"] for e in events if "agent_id" in e}
    assert {"ann", "bob"} <= agents and "PJSIP/102" not in agents
    assert "records read" in result.output and "ignored:RINGNOANSWER" in result.output
    bad = CliRunner().invoke(app, ["convert", "nope", "x"])
    assert bad.exit_code == 2 and "unknown source" in bad.output
    missing = CliRunner().invoke(app, ["convert", "asterisk", str(tmp_path / "none.log")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_overlapping_files_do_not_count_twice(tmp_path: Path) -> None:
    """Rotated files that overlap (copy-truncate) or a file given twice: same events."""
    lines, _ = generate(seed=5, calls=120)
    whole = converted("asterisk-queue-log", str(write_log(tmp_path / "a.log", lines)))
    first = write_log(tmp_path / "log.1", lines[:900])
    second = write_log(tmp_path / "log", lines[850:])  # 50 lines in both
    overlapped = converted("asterisk-queue-log", str(first), str(second))
    lifecycle_ids = {e["event_id"] for e in whole if e["type"] != "agent_state"}
    assert {e["event_id"] for e in overlapped if e["type"] != "agent_state"} == lifecycle_ids
    twice = converted("asterisk-queue-log", str(first), str(first))
    once = converted("asterisk-queue-log", str(first))
    assert [e for e in twice if e["type"] != "agent_state"] == [
        e for e in once if e["type"] != "agent_state"]


def write_log(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_late_lines_are_skipped_but_one_corrupt_epoch_does_not_poison_the_clock() -> None:
    lines = [f"{T}|1.1|q|NONE|ENTERQUEUE||1|1",
             f"{T + 9_000_000}|9.9|q|NONE|ENTERQUEUE||1|1",  # a corrupt epoch, months ahead
             f"{T + 30}|1.1|q|NONE|ABANDON|1|1|30",
             f"{T - 7200}|0.1|q|NONE|ENTERQUEUE||1|1"]  # two hours back: misplaced input
    conv = QueueLogConverter()
    events = [e for line in lines for e in conv.feed(line)]
    assert [e["type"] for e in events] == ["contact_offered", "contact_offered",
                                            "contact_abandoned"]
    assert conv.summary.skipped["late_line"] == 1
