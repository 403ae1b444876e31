"""``tail``: the live queue_log into Kafka, through crashes and rotations.

The end-to-end test kills the tail with SIGKILL mid-file, rotates the log by rename + new
file while it is dead and by copy-truncate while it runs, restarts it, and checks that
what reached Kafka is exactly ``convert`` of the whole log: nothing lost, and a re-sent
line only repeats an event id with the same event.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from connectors.asterisk import QueueLogConverter
from connectors.tail import Follower, Position, resume_plan
from stream_app.settings import Settings
from tests.connectors_data.helpers import by_id, converted, events_of, read_topics
from tests.connectors_data.make_queue_log import generate

ROOT = Path(__file__).resolve().parents[1]


def text(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def position(state_file: Path) -> Position | None:
    try:
        return Position(**orjson.loads(state_file.read_bytes())["position"])
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def wait_caught_up(state_file: Path, log: Path, timeout: float = 60.0) -> None:
    """Until the committed position is the end of the live file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pos, st = position(state_file), log.stat()
        if pos is not None and pos.inode == st.st_ino and pos.offset == st.st_size:
            return
        time.sleep(0.05)
    raise AssertionError(f"tail did not catch up with {log}: {position(state_file)}")


def start_tail(log: Path, state_file: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    code = ("from pathlib import Path; from connectors.commands import run_tail; "
            f"run_tail(Path({str(log)!r}), Path({str(state_file)!r}), {{}}, poll=0.05, "
            "loglevel='warning', batch_lines=150)")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)


def test_tail_survives_kill_and_two_rotations(make_topics: Callable[..., list[str]],
                                              unique_name: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPI_TOPIC_PREFIX", f"tl{unique_name}-")
    settings = Settings()
    make_topics([*settings.input_topics.values(), settings.dead_letter_topic])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    lines, _ = generate(seed=11, calls=700)
    cut = [0, 3000, 5000, 7000, 8500, len(lines)]
    part = [lines[a:b] for a, b in zip(cut, cut[1:], strict=False)]
    log, state_file = tmp_path / "queue_log", tmp_path / "tail-state.json"
    log.write_bytes(text(part[0]))
    tail = start_tail(log, state_file, env)
    try:
        wait_caught_up(state_file, log)
        with log.open("ab") as handle:  # more lines, and a crash while they are sent
            handle.write(text(part[1]))
        time.sleep(0.08)
        tail.send_signal(signal.SIGKILL)
        tail.wait(10)
        committed = position(state_file)
        assert committed is not None and 0 < committed.offset < log.stat().st_size
        # rotation 1 while it is down: rename, and the new file gets lines
        log.rename(tmp_path / "queue_log.1")
        log.write_bytes(text(part[2]))
        tail = start_tail(log, state_file, env)
        wait_caught_up(state_file, log)
        # rotation 2 while it runs: copy-truncate (logrotate numbering: .1 -> .2)
        with log.open("ab") as handle:
            handle.write(text(part[3]))
        (tmp_path / "queue_log.1").rename(tmp_path / "queue_log.2")
        shutil.copyfile(log, tmp_path / "queue_log.1")
        with log.open("r+b") as handle:
            handle.truncate(0)
        time.sleep(0.5)
        with log.open("ab") as handle:
            handle.write(text(part[4]))
        wait_caught_up(state_file, log)
    finally:
        tail.send_signal(signal.SIGTERM)
        assert tail.wait(20) == 0
    expected = by_id(converted("asterisk-queue-log", str(write(tmp_path / "whole.log",
                                                                lines))))
    got = read_topics(settings, list(settings.input_topics.values()), len(expected),
                      timeout=60)
    produced = by_id(events_of(got))  # also checks a repeated id is the same event
    assert produced == expected


def write(path: Path, lines: list[str]) -> Path:
    path.write_bytes(text(lines))
    return path


def test_resume_plan_finds_the_file_it_was_reading(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    first = ["1767225600|1.1|q|NONE|ENTERQUEUE||1|1", "1767225601|1.1|q|NONE|ABANDON|1|1|1"]
    log.write_bytes(text(first))
    follower = Follower(log, tmp_path / "s.json", QueueLogConverter(), sink=None)  # type: ignore[arg-type]
    with log.open("rb") as handle:
        follower._adopt(handle.fileno(), len(text(first[:1])))
    pos = follower.pos
    assert resume_plan(log, pos) == [(log, pos.offset)]  # type: ignore[union-attr]
    log.rename(tmp_path / "queue_log.1")  # rename + new file
    log.write_bytes(text(["1767225700|2.1|q|NONE|ENTERQUEUE||1|1"]))
    assert resume_plan(log, pos) == [(tmp_path / "queue_log.1", pos.offset), (log, 0)]  # type: ignore[union-attr]
    (tmp_path / "queue_log.1").rename(tmp_path / "queue_log.2")  # and a copy-truncate
    shutil.copyfile(log, tmp_path / "queue_log.1")
    log.write_bytes(b"")
    assert resume_plan(log, pos) == [  # type: ignore[union-attr]
        (tmp_path / "queue_log.2", pos.offset), (tmp_path / "queue_log.1", 0), (log, 0)]  # type: ignore[union-attr]
    (tmp_path / "queue_log.2").rename(tmp_path / "queue_log.2.gz")  # compressed: gone
    assert resume_plan(log, pos) == [(log, 0)]


def test_idle_tail_ends_a_wrap_up_on_time(tmp_path: Path) -> None:
    """With no new line, log time runs on at wall-clock speed from the last line."""

    class Sink:
        def __init__(self) -> None:
            self.events: list[dict] = []

        async def send(self, events: list[dict]) -> int:
            self.events += events
            return len(events)

    now = int(time.time())
    log = write(tmp_path / "queue_log", [
        f"{now}|1.1|q|NONE|ENTERQUEUE||1|1", f"{now + 1}|1.1|q|SIP/1|CONNECT|1|1.2|1",
        f"{now + 2}|1.1|q|SIP/1|COMPLETEAGENT|1|1|1"])
    sink = Sink()
    follower = Follower(log, tmp_path / "s.json", QueueLogConverter(wrapup=1.0),
                        sink, poll=0.05)  # type: ignore[arg-type]

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(follower.run(stop))
        await asyncio.sleep(0.3)
        states = [e["state"] for e in sink.events if e["type"] == "agent_state"]
        assert states == ["busy", "wrap_up"]  # not yet: a second has not passed
        await asyncio.sleep(1.5)
        stop.set()
        await task

    asyncio.run(scenario())
    states = [(e["state"], e["ts"]) for e in sink.events if e["type"] == "agent_state"]
    assert states[-1][0] == "available"
    assert states[-1] == (states[-1][0], converted("asterisk-queue-log", str(log),
                                                   wrapup=1.0)[-1]["ts"])
    restarted = Follower(log, tmp_path / "s.json", QueueLogConverter(wrapup=1.0), sink)  # type: ignore[arg-type]
    restarted.load()
    assert restarted.pos is not None and restarted.pos.offset == log.stat().st_size
