"""Changelog layout of one partition's state, and its rebuild. Pure: bytes in, bytes out.

Everything of input partition ``p`` (its contacts, tickets, seen ids, minute
cells and counters, from all three input topics) lives in partition ``p`` of
one changelog-backed table, under these keys::

    M|p|<minute>          minute cells of p (absolute), + offsets they include
    R|p                   rejected/duplicate counters of p, + offsets
    L|p|<seq>|<chunk>     redo log of one batch: entities it changed, ids it saw
    K|p  K|p|<n>|<chunk>  checkpoint: every entity and id, replacing older logs
    A|p                   offsets of the last batch whose writes all went out

Per batch the worker writes them in that order (M, R, L, A) to one changelog
partition, so after a crash the changelog holds a *prefix* of the writes of
the last batch. Rebuild (below) plus the gating in the live processor make
re-processing that batch exact:

* messages at or below ``A`` are skipped (everything they did is stored);
* an entity stored with ``upto >= offset`` already has the message applied,
  and then (M, R before L) so do the counts: the message is skipped;
* otherwise the message is applied, but its cells only count where the stored
  minute's offsets are below it, its rejection only if ``R``'s are.

Every value carries ``o``: ``{family: offset}`` of the last message of each
input topic whose effects it includes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from tables import aggregate as A
from tables.state import (
    ABANDONED,
    RESOLVED,
    WAITING,
    Cells,
    Config,
    Contact,
    PartitionState,
    Ticket,
)

Offsets = dict[str, int]
#: changelog values are at most this many entity records / ids (stay below 1 MB messages)
CHUNK = 4000


def key(*parts: object) -> bytes:
    return "|".join(str(p) for p in parts).encode()


def encode_minute(cells: dict[tuple[str, str, str], A.Agg], o: Offsets) -> bytes:
    return orjson.dumps(
        {"o": o, "c": [[q, ch, a, A.to_wire(agg)] for (q, ch, a), agg in cells.items()]}
    )


def decode_minute(raw: bytes) -> tuple[dict[tuple[str, str, str], A.Agg], Offsets]:
    data = orjson.loads(raw)
    return {(q, ch, a): A.from_wire(w) for q, ch, a, w in data["c"]}, data["o"]


def encode_counters(rejected: dict[str, int], duplicates: int, o: Offsets) -> bytes:
    return orjson.dumps({"o": o, "rej": rejected, "dup": duplicates})


def encode_log(records: list[list[Any]], ids: list[tuple[str, int]], o: Offsets) -> list[bytes]:
    """One batch's redo log, chunked; every chunk carries the batch's offsets."""
    chunks: list[bytes] = []
    for i in range(0, max(len(records), len(ids), 1), CHUNK):
        chunks.append(orjson.dumps({"o": o, "e": records[i : i + CHUNK], "d": ids[i : i + CHUNK]}))
    return chunks


def encode_checkpoint(state: PartitionState) -> list[bytes]:
    records = [["c", k, c.to_wire()] for k, c in state.contacts.items()]
    records += [["t", k, t.to_wire()] for k, t in state.tickets.items()]
    ids = list(state.seen.items())
    return [
        orjson.dumps({"e": records[i : i + CHUNK], "d": ids[i : i + CHUNK]})
        for i in range(0, max(len(records), len(ids), 1), CHUNK)
    ]


@dataclass
class Restored:
    """One partition's state as rebuilt from the table, plus what gating needs."""

    state: PartitionState
    applied: Offsets
    minutes: Cells
    minute_offsets: dict[int, Offsets]
    counters_offsets: Offsets
    #: highest offset per family any stored value includes (gating stops above it)
    recover_upto: Offsets
    log_seq: int = 0
    checkpoint_seq: int = 0
    checkpoint_log_seq: int = 0
    log_keys: list[bytes] = field(default_factory=list)
    checkpoint_keys: list[bytes] = field(default_factory=list)


def _covered(o: Offsets, applied: Offsets) -> bool:
    return all(off <= applied.get(f, -1) for f, off in o.items())


def _apply_records(state: PartitionState, records: list[list[Any]]) -> None:
    for kind, k, wire in records:
        store: dict[str, Any] = state.contacts if kind == "c" else state.tickets
        if wire is None:
            store.pop(k, None)
        else:
            store[k] = Contact.from_wire(wire) if kind == "c" else Ticket.from_wire(wire)


def _bump(upto: Offsets, o: Offsets) -> None:
    for f, off in o.items():
        if off > upto.get(f, -1):
            upto[f] = off


def restore(cfg: Config, partition: int, items: dict[bytes, bytes]) -> Restored:
    """Rebuild partition ``partition`` from the table's key/values of that partition."""
    pre = f"|{partition}".encode()
    get = items.get
    applied: Offsets = orjson.loads(get(b"A" + pre, b'{"o":{}}'))["o"]
    state = PartitionState(cfg)
    out = Restored(state, applied, {}, {}, {}, dict(applied))

    header = get(b"K" + pre)
    if header is not None:
        h = orjson.loads(header)
        out.checkpoint_seq, out.checkpoint_log_seq = h["seq"], h["log"]
        for i in range(h["chunks"]):
            chunk = orjson.loads(items[key("K", partition, h["seq"], i)])
            _apply_records(state, chunk["e"])
            state.seen.update((eid, ts) for eid, ts in chunk["d"])

    logs: list[tuple[int, int, bytes]] = []
    for k in items:
        parts = k.split(b"|")
        if parts[0] == b"L" and int(parts[1]) == partition:
            logs.append((int(parts[2]), int(parts[3]), k))
            out.log_keys.append(k)
        elif parts[0] == b"K" and len(parts) == 4 and int(parts[1]) == partition:
            out.checkpoint_keys.append(k)
        elif parts[0] == b"M" and int(parts[1]) == partition:
            cells, o = decode_minute(items[k])
            out.minutes[int(parts[2])] = cells
            out.minute_offsets[int(parts[2])] = o
            _bump(out.recover_upto, o)
    for seq, _, k in sorted(logs):
        out.log_seq = max(out.log_seq, seq)
        if seq <= out.checkpoint_log_seq:
            continue
        log = orjson.loads(items[k])
        _apply_records(state, log["e"])
        _bump(out.recover_upto, log["o"])
        # Ids of a batch that never completed are left out: re-processing that
        # batch must not find its own messages already "seen".
        if _covered(log["o"], applied):
            state.seen.update((eid, ts) for eid, ts in log["d"])

    # Logs the checkpoint replaced may all be gone: numbering continues after it.
    out.log_seq = max(out.log_seq, out.checkpoint_log_seq)
    counters = get(b"R" + pre)
    if counters is not None:
        c = orjson.loads(counters)
        state.rejected, state.duplicates, out.counters_offsets = c["rej"], c["dup"], c["o"]
        _bump(out.recover_upto, c["o"])

    # Derived structures, exactly as processing would have left them.
    fin: list[tuple[int, str, str]] = []
    for cid, con in state.contacts.items():
        if con.status == WAITING:
            state.wait_add(cid, con)
        elif con.status >= ABANDONED:
            fin.append((con.last, "c", cid))
    for tid, t in state.tickets.items():
        if t.status == RESOLVED:
            fin.append((t.last, "t", tid))
        else:
            k2 = (t.queue, t.channel)
            state.open_tickets[k2] = state.open_tickets.get(k2, 0) + 1
    state.finished = deque(sorted(fin))
    state.seen = dict(sorted(state.seen.items(), key=lambda kv: kv[1]))
    return out
