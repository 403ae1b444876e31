"""``kpi-stream tail asterisk-queue-log PATH``: follow the live queue_log into Kafka.

Neither skip nor repeat across crashes: lines are read in batches, their events sent and
acknowledged (``acks=all``), and only then is the position committed to a small state
file (written to a temporary file, fsynced, renamed). The state file also holds the
converter's memory (open calls, agents, pending wrap-ups), so a restart continues as if
it had never stopped. A crash after the acknowledgement but before the commit re-reads
the last batch: its events carry the same deterministic ids, so they are duplicates the
engine drops.

Rotation: the position names the file by content, not by name - its inode, a hash of its
first bytes and of the bytes just before the offset. On a restart, or when the path stops
being the file we were reading (rename + new file), or the file shrank or changed its
first bytes (copy-truncate), the rotated siblings (``queue_log.1``, ``queue_log-2026…``)
are searched for the file we were reading: its rest is read, then any file rotated after
it, then the live file from its start. A rotated file compressed before we read its rest
cannot be resumed (use ``delaycompress``); that is logged, and reading restarts at the
live file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from connectors.asterisk import QueueLogConverter
from connectors.asterisk_format import parse_line
from connectors.base import ConnectorError, Event
from connectors.produce import KafkaSink

log = logging.getLogger("kpi.connectors.tail")
HEAD = 4096  # bytes fingerprinting a file's start
TAIL = 256  # bytes fingerprinting the committed position
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4")
READ_CHUNK = 1 << 20


@dataclass
class Position:
    inode: int = 0
    dev: int = 0
    offset: int = 0
    head_len: int = 0
    head_hash: str = ""
    tail_hash: str = ""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_at(path: Path, start: int, length: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(max(start, 0))
        return handle.read(max(length, 0))


def _matches(path: Path, pos: Position) -> bool:
    """Is ``path`` the file ``pos`` was taken in (same first bytes, same bytes before the
    offset, long enough)?"""
    try:
        if path.stat().st_size < pos.offset:
            return False
        if _sha(_read_at(path, 0, pos.head_len)) != pos.head_hash:
            return False
        start = max(0, pos.offset - TAIL)
        return _sha(_read_at(path, start, pos.offset - start)) == pos.tail_hash
    except OSError:
        return False


def _first_epoch(path: Path) -> float:
    try:
        with path.open("rb") as handle:
            for raw in handle:
                parsed = parse_line(raw.decode("utf-8", "replace"))
                if parsed is not None:
                    return parsed[0]
    except OSError:
        pass
    return float("inf")


def siblings(live: Path) -> list[Path]:
    """Rotated copies next to the live file (``queue_log.1``, ``queue_log-20261122``)."""
    try:
        names = list(live.parent.iterdir())
    except OSError:
        return []
    base = live.name
    return [p for p in names
            if p.name != base and p.name.startswith((base + ".", base + "-"))
            and not p.name.endswith(COMPRESSED) and p.is_file()]


def resume_plan(live: Path, pos: Position | None) -> list[tuple[Path, int]]:
    """The files to read, each from an offset, to continue exactly after ``pos``."""
    if pos is None or pos.offset == 0:
        return [(live, 0)]
    candidates = [live, *siblings(live)]
    same_inode = [p for p in candidates if _inode(p) == (pos.dev, pos.inode)]
    origin = next((p for p in same_inode + candidates if _matches(p, pos)), None)
    if origin is None:
        log.warning("the file last read (inode %s, offset %s) is no longer next to %s: "
                    "reading %s from its start; lines written in between may be missing "
                    "(keep rotated files uncompressed for one cycle: delaycompress)",
                    pos.inode, pos.offset, live, live)
        return [(live, 0)]
    if origin == live:
        return [(live, pos.offset)]
    start = _first_epoch(origin)
    later = sorted((p for p in siblings(live) if p != origin and _first_epoch(p) > start),
                   key=lambda p: (_first_epoch(p), p.stat().st_mtime))
    return [(origin, pos.offset), *[(p, 0) for p in later], (live, 0)]


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Follower:
    def __init__(self, path: str | Path, state_file: str | Path, converter: QueueLogConverter,
                 sink: KafkaSink, poll: float = 0.25, batch_lines: int = 5000,
                 from_end: bool = False) -> None:
        self.live = Path(path)
        self.state_file = Path(state_file)
        self.conv, self.sink = converter, sink
        self.poll, self.batch_lines, self.from_end = poll, batch_lines, from_end
        self.pos: Position | None = None
        self._head = b""
        self._recent = b""
        self._last_line_at = (0.0, time.monotonic())  # (log epoch, monotonic)
        self._missing_logged = False

    # --- state file --------------------------------------------------------------------
    def load(self) -> None:
        try:
            data = orjson.loads(self.state_file.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConnectorError(f"state file {self.state_file} is unreadable ({exc}); "
                                 "move it away to start over from the log's beginning") \
                from exc
        self.pos = Position(**data["position"])
        self.conv.restore(data["converter"])
        self._last_line_at = (self.conv.clock, time.monotonic())

    def commit(self) -> None:
        if self.pos is None:
            return
        data = {"version": 1, "log": str(self.live), "position": asdict(self.pos),
                "converter": self.conv.dump()}
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        with tmp.open("wb") as handle:
            handle.write(orjson.dumps(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.state_file)

    # --- reading -----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        self.load()
        if self.pos is None and self.from_end and self.live.exists():
            with self.live.open("rb") as handle:
                self._adopt(handle.fileno(), os.fstat(handle.fileno()).st_size)
            self.commit()
        while not stop.is_set():
            plan = resume_plan(self.live, self.pos)
            for path, offset in plan[:-1]:
                await self._read_file(path, offset, follow=False, stop=stop)
            path, offset = plan[-1]
            await self._read_file(path, offset, follow=True, stop=stop)

    async def _read_file(self, path: Path, offset: int, follow: bool,
                         stop: asyncio.Event) -> None:
        """Read ``path`` from ``offset``; when ``follow``, keep reading as it grows and
        return once it was rotated away (the caller then re-plans)."""
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            if not self._missing_logged:
                log.info("waiting for %s to appear", path)
                self._missing_logged = True
            await asyncio.sleep(self.poll)  # e.g. between a rename and the new file
            return
        self._missing_logged = False
        with handle:
            self._adopt(handle.fileno(), offset)
            handle.seek(offset)
            rest, complete = b"", not follow
            while not stop.is_set():
                chunk = handle.read(READ_CHUNK)
                if chunk and follow and self._replaced(handle.fileno()):
                    # copy-truncate, then new lines: what we just read is the new file's
                    # middle, not our continuation; the copy has our continuation
                    rest = b""
                    break
                if chunk:
                    rest = await self._consume(rest + chunk)
                    continue
                if not follow:
                    break
                if self._rotated(path):
                    assert self.pos is not None
                    if _inode(path) != (self.pos.dev, self.pos.inode):
                        # renamed: our handle still reads the old file, intact
                        rest += handle.read()
                        complete = True
                    else:
                        # copy-truncate: our file was cut; the copy holds what we have
                        # not committed yet, whole lines included
                        rest = b""
                    break
                await self._idle()
                await asyncio.sleep(self.poll)
            if rest and complete and not stop.is_set():
                await self._consume(rest, final=True)  # a last line without its newline

    def _adopt(self, fd: int, offset: int) -> None:
        st = os.fstat(fd)
        head = os.pread(fd, min(offset, HEAD), 0) if offset else b""
        self._recent = os.pread(fd, min(offset, TAIL), max(0, offset - TAIL)) if offset else b""
        self._head = head
        self.pos = Position(st.st_ino, st.st_dev, offset, len(head), _sha(head),
                            _sha(self._recent))

    def _replaced(self, fd: int) -> bool:
        """Our open file no longer starts with the bytes it started with."""
        assert self.pos is not None
        if self.pos.head_len == 0:
            return False
        return _sha(os.pread(fd, self.pos.head_len, 0)) != self.pos.head_hash

    def _rotated(self, path: Path) -> bool:
        assert self.pos is not None
        if _inode(path) != (self.pos.dev, self.pos.inode):
            return True
        try:
            return path.stat().st_size < self.pos.offset or (
                self.pos.head_len > 0
                and _sha(_read_at(path, 0, self.pos.head_len)) != self.pos.head_hash)
        except OSError:
            return True

    async def _consume(self, data: bytes, final: bool = False) -> bytes:
        """Convert, send and commit the complete lines of ``data`` in batches; return the
        incomplete rest (not committed: re-read if we stop here). ``final``: the rest is
        a last line without its newline (the file was rotated after it)."""
        assert self.pos is not None
        raws = data.split(b"\n")
        rest = raws.pop()
        chunks = [raw + b"\n" for raw in raws]
        if final and rest:
            chunks.append(rest)
            rest = b""
        for start in range(0, len(chunks), self.batch_lines):
            batch = chunks[start:start + self.batch_lines]
            events: list[Event] = []
            for raw in batch:
                events += self.conv.feed(raw.decode("utf-8", "replace"))
            self._last_line_at = (self.conv.clock, time.monotonic())
            await self.sink.send(events)
            self._advance(b"".join(batch))
            self.commit()
        return rest

    def _advance(self, consumed: bytes) -> None:
        assert self.pos is not None
        self.pos.offset += len(consumed)
        if len(self._head) < HEAD:
            self._head = (self._head + consumed)[:HEAD]
            self.pos.head_len, self.pos.head_hash = len(self._head), _sha(self._head)
        self._recent = (self._recent + consumed)[-TAIL:]
        self.pos.tail_hash = _sha(self._recent)

    async def _idle(self) -> None:
        """No new line: let log time run on at wall-clock speed from the last line, so a
        wrap-up ends on time even when the queue is quiet."""
        due = self.conv.agents.next_due()
        if due is None:
            return
        epoch, seen_at = self._last_line_at
        clock = epoch + (time.monotonic() - seen_at)
        if due <= clock:
            await self.sink.send(self.conv.advance(clock))
            self.commit()
