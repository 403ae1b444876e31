"""The changelog and partials format: keys, codecs, and the reading of a stored partition.

This module is the one owner of what the live worker writes to Kafka.
Everything of input partition ``p`` (its contacts, tickets, seen ids, minute
cells and counters, from every input topic) lives in partition ``p`` of one
changelog-backed table, under these keys::

    M|p|<minute>          minute cells of p (absolute), + offsets they include
    R|p                   rejected/duplicate counters of p, + offsets
    L|p|<seq>|<chunk>     redo log of one batch: entities it changed, ids it saw
    K|p  K|p|<n>|<chunk>  checkpoint: every entity and id, replacing older logs
    A|p                   offsets of the last batch whose writes all went out

Per batch the worker writes them in that order (M, R, L, A) to one changelog
partition, so after a crash the changelog holds a *prefix* of the writes of
the last batch. :mod:`tables.partition` rebuilds a partition from it and
re-processes that batch exactly:

* messages at or below ``A`` are skipped (everything they did is stored);
* an entity stored with ``upto >= offset`` already has the message applied,
  and then (M, R before L) so do the counts: the message is skipped;
* otherwise the message is applied, but its cells only count where the stored
  minute's offsets are below it, its rejection only if ``R``'s are.

Every value carries ``o``: ``{family: offset}`` of the last message of each
input topic whose effects it includes.

The redo logs and checkpoints also carry the partition's accepted offers with
a customer (``f``), kept for the retention plus the repeat window: repeat
contacts are found across partitions (:mod:`tables.repeats`).

The compacted *partials* topic, read by every worker's whole-center view, has
``p|<minute>`` (the partition's absolute cells of a minute, None once gone),
``p|S`` (its summary: live state, counters, offsets), ``p|F|<minute>`` (its
offers of a minute), ``p|D|<minute>`` (its open tickets' SLA instants that
fall in a minute, :mod:`tables.sla`), ``p|V|<minute>`` (its CSAT responses
naming a ticket) and ``p|P|<minute>`` (its tickets with a product, by opening
minute: :mod:`tables.ticketcsat`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tables import aggregate as A
from tables.entities import CellKey, Cells
from tables.live import PartLive

Offsets = dict[str, int]
MinuteCells = dict[CellKey, A.Agg]
#: a redo-log or checkpoint chunk starts with at most this many entity records / ids ...
CHUNK = 4000
#: ... and is halved until it encodes to at most this many bytes. The worker sets it from the
#: changelog topic's ``max.message.bytes`` (:func:`set_value_limit`): a chunk the broker
#: refuses would hold the partition's writes for ever.
VALUE_LIMIT = 1_000_000
SUMMARY = "S"
OFFERS = "F"
DEADLINES = "D"
#: CSAT responses naming a ticket, by minute; tickets with a product, by opening minute
CSAT_REFS = "V"
PRODUCTS = "P"
CELLS = "M"
Offer = tuple[str, int, str, str]


def key(*parts: object) -> bytes:
    return "|".join(str(p) for p in parts).encode()


# --- values -----------------------------------------------------------------------------------
def encode_minute(cells: MinuteCells, o: Offsets) -> bytes:
    return encode_wire({k: wire_cell(k, agg) for k, agg in cells.items()}, o)


def wire_cell(key: tuple[str, str, str, str], agg: A.Agg) -> list[Any]:
    """One cell's entry in an encoded minute."""
    q, ch, a, p = key
    return [q, ch, a, p, A.to_wire(agg)]


def encode_wire(entries: dict[Any, list[Any]], o: Offsets) -> bytes:
    """A minute from its cells' entries (:func:`wire_cell`), kept by a writer that
    re-encodes the same minute after every batch."""
    return encode_cells_json(orjson.dumps(list(entries.values())), o)


def encode_cells_json(cells_json: bytes, o: Offsets) -> bytes:
    """:func:`encode_wire` from the entries already encoded: a batch sends the same
    minute to the partials and the changelog, with different offsets. The same bytes
    as ``orjson.dumps({"o": o, "c": entries})``."""
    return b'{"o":' + orjson.dumps(o) + b',"c":' + cells_json + b"}"


def decode_minute(raw: bytes) -> tuple[MinuteCells, Offsets]:
    data = orjson.loads(raw)
    return {(q, ch, a, p): A.from_wire(w) for q, ch, a, p, w in data["c"]}, data["o"]


def decode_minute_since(
    raw: bytes, before: dict[Any, list[Any]] | None, cells: MinuteCells | None
) -> tuple[MinuteCells, dict[Any, list[Any]]]:
    """A minute written again: the cells whose entry equals the one in ``before`` (the
    previous write's entries, whose decoded cells are ``cells``) are taken from ``cells``,
    only the others decoded. Also returns this write's entries, for the next time."""
    entries = {(q, ch, a, p): w for q, ch, a, p, w in orjson.loads(raw)["c"]}
    out: MinuteCells = {}
    if before is None or cells is None:
        for k, w in entries.items():
            out[k] = A.from_wire(w)
        return out, entries
    for k, w in entries.items():
        old = cells.get(k)
        out[k] = old if old is not None and before.get(k) == w else A.from_wire(w)
    return out, entries


def encode_counters(rejected: dict[str, int], duplicates: int, o: Offsets) -> bytes:
    return orjson.dumps({"o": o, "rej": rejected, "dup": duplicates})


def encode_applied(o: Offsets) -> bytes:
    return orjson.dumps({"o": o})


def set_value_limit(max_bytes: int) -> None:
    """The most bytes a log or checkpoint chunk may encode to (see ``VALUE_LIMIT``)."""
    global VALUE_LIMIT
    VALUE_LIMIT = max(1024, int(max_bytes))


def _chunks(
    records: list[list[Any]], ids: list[tuple[str, int]], offers: list[Offer],
    refs: list[list[Any]], o: Offsets | None,
) -> list[bytes]:
    """Index ranges of the four lists, each encoded as one value; a range that encodes to
    more than ``VALUE_LIMIT`` bytes is halved (in order) until it fits or is one item."""
    limit = VALUE_LIMIT

    def encode(i: int, j: int) -> bytes:
        value: dict[str, Any] = {
            "e": records[i:j], "d": ids[i:j], "f": offers[i:j], "v": refs[i:j],
        }
        if o is not None:
            value["o"] = o
        return orjson.dumps(value)

    n = max(len(records), len(ids), len(offers), len(refs))
    todo = [(i, min(i + CHUNK, n)) for i in range(0, max(n, 1), CHUNK)]
    todo.reverse()  # a stack: the next range to encode is last
    out = []
    while todo:
        i, j = todo.pop()
        data = encode(i, j)
        if len(data) <= limit or j - i <= 1:
            out.append(data)  # (one record over the limit is the writer's to report)
            continue
        mid = (i + j) // 2
        todo += [(mid, j), (i, mid)]
    return out


def encode_log(
    records: list[list[Any]], ids: list[tuple[str, int]], offers: list[Offer],
    refs: list[list[Any]], o: Offsets,
) -> list[bytes]:
    """One batch's redo log, chunked; every chunk carries the batch's offsets."""
    return _chunks(records, ids, offers, refs, o)


def encode_checkpoint(
    records: list[list[Any]], ids: list[tuple[str, int]], offers: list[Offer],
    refs: list[list[Any]],
) -> list[bytes]:
    return _chunks(records, ids, offers, refs, None)


def encode_checkpoint_header(seq: int, log_seq: int, chunks: int) -> bytes:
    return orjson.dumps({"seq": seq, "log": log_seq, "chunks": chunks})


# --- partials ---------------------------------------------------------------------------------
@dataclass
class Summary:
    """A partition's summary in the partials topic (``p|S``)."""

    live: PartLive
    rejected: dict[str, int]
    duplicates: int
    offsets: Offsets


def partials_key(partition: int, what: int | str, minute: int | None = None) -> bytes:
    return key(partition, what) if minute is None else key(partition, what, minute)


def encode_summary(s: Summary) -> bytes:
    return orjson.dumps(
        {"live": s.live.to_wire(), "rej": s.rejected, "dup": s.duplicates, "o": s.offsets}
    )


def decode_summary(raw: bytes) -> Summary:
    data = orjson.loads(raw)
    return Summary(PartLive.from_wire(data["live"]), data["rej"], data["dup"], data["o"])


def parse_partials_key(k: bytes) -> tuple[int, str, int]:
    """``b"3|S"`` -> ``(3, "S", 0)``; ``b"3|28123456"`` -> ``(3, "M", 28123456)``;
    ``b"3|F|28123456"`` -> ``(3, "F", 28123456)``."""
    parts = k.decode().split("|")
    if len(parts) == 3:
        return int(parts[0]), parts[1], int(parts[2])
    if parts[1] == SUMMARY:
        return int(parts[0]), SUMMARY, 0
    return int(parts[0]), CELLS, int(parts[1])


def encode_offers(offers: list[Offer]) -> bytes:
    return orjson.dumps(offers)


def decode_offers(raw: bytes) -> list[Offer]:
    return [(c, ts, q, ch) for c, ts, q, ch in orjson.loads(raw)]


def encode_list(records: list[Any]) -> bytes:
    return orjson.dumps(records)


def decode_list(raw: bytes) -> list[Any]:
    data: list[Any] = orjson.loads(raw)
    return data


def encode_deadlines(records: list[list[Any]]) -> bytes:
    return orjson.dumps(records)


def decode_deadlines(raw: bytes) -> list[list[Any]]:
    data: list[list[Any]] = orjson.loads(raw)
    return data


# --- reading a stored partition -----------------------------------------------------------------
@dataclass
class Stored:
    """What the changelog holds of one partition, decoded, in the order to apply it."""

    applied: Offsets
    #: entity records and ids of the checkpoint, then of each later log in order
    checkpoint_records: list[list[Any]] = field(default_factory=list)
    checkpoint_ids: list[Any] = field(default_factory=list)
    checkpoint_offers: list[Any] = field(default_factory=list)
    checkpoint_refs: list[Any] = field(default_factory=list)
    #: per later log: records, ids, offers, CSAT refs, offsets
    logs: list[tuple[list[list[Any]], list[Any], list[Any], list[Any], Offsets]] = field(
        default_factory=list
    )
    minutes: Cells = field(default_factory=dict)
    minute_offsets: dict[int, Offsets] = field(default_factory=dict)
    counters: tuple[dict[str, int], int] | None = None
    counters_offsets: Offsets = field(default_factory=dict)
    log_seq: int = 0
    checkpoint_seq: int = 0
    log_keys: list[bytes] = field(default_factory=list)
    checkpoint_keys: list[bytes] = field(default_factory=list)


def read(partition: int, items: dict[bytes, bytes]) -> Stored:
    """Decode partition ``partition`` from the table's key/values of that partition."""
    pre = f"|{partition}".encode()
    get = items.get
    out = Stored(orjson.loads(get(b"A" + pre, b'{"o":{}}'))["o"])
    checkpoint_log_seq = 0
    header = get(b"K" + pre)
    if header is not None:
        h = orjson.loads(header)
        out.checkpoint_seq, checkpoint_log_seq = h["seq"], h["log"]
        for i in range(h["chunks"]):
            chunk = orjson.loads(items[key("K", partition, h["seq"], i)])
            out.checkpoint_records.extend(chunk["e"])
            out.checkpoint_ids.extend(chunk["d"])
            out.checkpoint_offers.extend(chunk.get("f", ()))
            out.checkpoint_refs.extend(chunk.get("v", ()))
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
    for seq, _, k in sorted(logs):
        out.log_seq = max(out.log_seq, seq)
        if seq <= checkpoint_log_seq:
            continue
        log = orjson.loads(items[k])
        out.logs.append((log["e"], log["d"], log.get("f", []), log.get("v", []), log["o"]))
    # Logs the checkpoint replaced may all be gone: numbering continues after it.
    out.log_seq = max(out.log_seq, checkpoint_log_seq)
    counters = get(b"R" + pre)
    if counters is not None:
        c = orjson.loads(counters)
        out.counters, out.counters_offsets = (c["rej"], c["dup"]), c["o"]
    return out


def partition_items(store: dict[Any, Any], partition: int) -> dict[bytes, bytes]:
    """The key/values of one partition among a table's (keys ``X|p|...``)."""
    tag = str(partition).encode()
    out = {}
    for k, v in store.items():
        parts = k.split(b"|", 2)
        if len(parts) > 1 and parts[1] == tag:
            out[k] = v
    return out
