"""Simulated contract events: ``generate_events`` (pure, deterministic) and the
``kpi-stream simulate`` command (a JSONL file, or live to Kafka paced by the clock).

This is the public face of the simulator, kept small and stable because the
benchmark and many tests call it. The discrete-event model of the center is in
``model`` (contacts and the event queue), ``agents`` (shifts, breaks, routing),
``backoffice`` (tickets, surveys), ``center`` and ``staffing`` (how many sites and
agents, their shifts, and how fast the center runs); the bad events, one per rejection
reason, in ``bad``. The center is bounded (by default at most four sites on four
queues): above about 5 events/s it is the same center sped up, not a bigger one.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from stream_app.tools.simulator.bad import BAD_REASONS, BAD_VARIANTS, iso
from stream_app.tools.simulator.model import Emitted, Generator

__all__ = ["BAD_REASONS", "BAD_VARIANTS", "Emitted", "generate_events", "run_simulate",
           "timed_events"]


def _generator(rate: float, duration: float, seed: int, start_epoch: float,
               bad_share: float, tag: str | None, load: float, sites: int | None) -> Generator:
    if rate <= 0 or not 0 <= bad_share < 1:
        raise ValueError("rate must be > 0 and bad_share in [0, 1)")
    if not 0 < load <= 10:
        raise ValueError("load must be in (0, 10]")
    if sites is not None and sites < 1:
        raise ValueError("sites must be >= 1")
    return Generator(rate, duration, seed, start_epoch, bad_share, tag or str(seed), load,
                     sites)


def timed_events(rate: float, duration: float, seed: int, start_epoch: float,
                 bad_share: float, tag: str | None = None, load: float = 1.0,
                 sites: int | None = None) -> Iterator[Emitted]:
    """``(emit_time, bytes, label)`` triples; ``label`` names the intended rejection."""
    return _generator(rate, duration, seed, start_epoch, bad_share, tag, load, sites).run()


def generate_events(rate: float, duration: float, seed: int, start_epoch: float,
                    bad_share: float, load: float = 1.0,
                    sites: int | None = None) -> Iterator[bytes]:
    """One JSON line (no newline) per event, in production order (= event time).

    About ``rate`` events per second of event time from ``start_epoch`` for ``duration``
    seconds (``math.inf``: endless), of which a ``bad_share`` fraction are bad events
    (every rejection reason of contract section 4, and exact duplicates). ``load`` is the
    traffic against the staffing plan (1.0: a normal day, 1.5: overloaded). The center
    has ``sites`` sites (default: what ``rate`` needs, at most ``MAX_SITES``) serving the
    queues billing, tech, sales and returns; when they are fewer than ``rate`` needs, the
    center runs faster (see ``center``). Ids are ``ev-<seed>-<n>``,
    ``c-``/``t-``/``s-<seed>-<n>``, agents ``agent-001``.
    """
    for _, data, _ in timed_events(rate, duration, seed, start_epoch, bad_share, load=load,
                                   sites=sites):
        yield data


def describe(gen: Generator) -> str:
    """The center in one line, for the person who runs the command."""
    plan = gen.plan
    speed = f"{plan.speed:,.1f}" if plan.speed < 100 else f"{plan.speed:,.0f}"
    pace = "real time" if plan.speed == 1 else f"{speed}x real time (durations / {speed})"
    return (f"center: {plan.sites} site(s), queues {', '.join(plan.queues)}, "
            f"{len(gen.agents):,} agents on the roster, {pace}")


# -------------------------------------------------------------------- command line
def _parse_end(end: str | None) -> float:
    if end is None:
        return time.time()
    try:
        dt = datetime.fromisoformat(end)
    except ValueError:
        raise typer.BadParameter(f"not an ISO time: {end!r} (e.g. 2026-11-22T10:15:00Z)",
                                 param_hint="--end") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _write_file(path: Path, rate: float, duration: float, seed: int, end: float,
                bad_share: float, load: float, sites: int | None, console: Console) -> None:
    start = end - duration
    gen = _generator(rate, duration, seed, start, bad_share, None, load, sites)
    console.print(describe(gen))
    expected = int(rate * duration)
    out = sys.stdout.buffer if str(path) == "-" else path.open("wb")
    n = n_bad = 0
    t0 = time.perf_counter()
    columns = (TextColumn("writing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=True,
                      disable=expected < 200_000) as progress:
            task = progress.add_task("events", total=expected)
            batch: list[bytes] = []
            for _, data, label in gen.run():
                batch.append(data)
                n_bad += label is not None
                if len(batch) == 20_000:
                    out.write(b"\n".join(batch) + b"\n")
                    n += len(batch)
                    batch.clear()
                    progress.update(task, completed=n)
            if batch:
                out.write(b"\n".join(batch) + b"\n")
                n += len(batch)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        else:
            out.flush()
    elapsed = time.perf_counter() - t0
    console.print(f"wrote {n:,} events ({n_bad:,} bad) from {iso(start)} to {iso(end)} "
                  f"to {path} in {elapsed:.1f} s ({n / max(elapsed, 1e-6):,.0f} events/s)")


async def _live(rate: float, duration: float, seed: int, bad_share: float, load: float,
                sites: int | None, console: Console, stats: dict[str, float]) -> None:
    from stream_app.settings import get_settings
    from stream_app.tools.producer import Sender, check_topics, start_producer

    settings = get_settings()
    bootstrap, topics = settings.kafka_bootstrap_servers, settings.input_topics
    producer = await start_producer(bootstrap)
    try:
        await check_topics(producer, topics.values(), bootstrap)
        sender = Sender(producer, topics)
        start = time.time()
        stats["start"] = start
        # The start second in the ids: a second run with the same seed is not all duplicates.
        gen = _generator(rate, duration, seed, start, bad_share, f"{seed}.{int(start)}", load,
                         sites)
        console.print(describe(gen))
        events = gen.run()
        next_log, last_n, last_at = start + 10, 0, start
        console.print(f"simulating {rate:,.0f} events/s to {bootstrap} "
                      f"({', '.join(topics.values())}); Ctrl-C to stop")
        for t, data, _ in events:
            now = time.time()
            if t > now + 0.002:  # paced by event time, so each event's ts is "now"
                await asyncio.sleep(t - now)
                now = time.time()
            await sender.send(data)
            stats["sent"] = sender.total
            if now >= next_log:
                await sender.settle()
                console.print(f"sent {sender.total:,} events "
                              f"({(sender.total - last_n) / (now - last_at):,.1f}/s, "
                              f"lag {max(0.0, now - t):.1f} s)")
                next_log, last_n, last_at = now + 10, sender.total, now
        await sender.settle()
        await producer.flush()
    finally:
        await producer.stop()


def run_simulate(rate: float, duration: float | None, seed: int, to_file: Path | None,
                 end: str | None, bad_share: float, load: float = 1.0,
                 sites: int | None = None) -> None:
    """``kpi-stream simulate``: a file of ``duration`` seconds ending at ``end``, or live."""
    console = Console(stderr=True, soft_wrap=True)
    if rate <= 0:
        raise typer.BadParameter("must be > 0", param_hint="--rate")
    if not 0 <= bad_share < 1:
        raise typer.BadParameter("must be in [0, 1)", param_hint="--bad-share")
    if not 0 < load <= 10:
        raise typer.BadParameter("must be in (0, 10] (1.0: a normal day)", param_hint="--load")
    if sites is not None and sites < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--sites")
    if duration is not None and duration <= 0:
        raise typer.BadParameter("must be > 0", param_hint="--duration")
    if to_file is not None:
        if duration is None:
            raise typer.BadParameter(
                "is required with --to-file: how many seconds of events to write "
                "(e.g. --duration 3600)", param_hint="--duration")
        _write_file(to_file, rate, duration, seed, _parse_end(end), bad_share, load, sites,
                    console)
        return
    if end is not None:
        raise typer.BadParameter("only applies with --to-file (live events are stamped now)",
                                 param_hint="--end")
    from stream_app.tools.producer import ProduceError

    stats: dict[str, float] = {"sent": 0, "start": time.time()}
    try:
        asyncio.run(_live(rate, math.inf if duration is None else duration, seed, bad_share,
                          load, sites, console, stats))
    except KeyboardInterrupt:
        pass
    except ProduceError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
    except KafkaError as exc:
        console.print(f"[red]error:[/red] sending failed ({exc}): is Kafka still running? "
                      "check `make stack` / KAFKA_BOOTSTRAP_SERVERS")
        raise SystemExit(1) from None
    took = max(time.time() - stats["start"], 1e-6)
    console.print(f"stopped: sent {int(stats['sent']):,} events in {took:.0f} s "
                  f"({stats['sent'] / took:,.1f}/s)")
