"""The ``kpi-stream bench`` report: runs every measurement, prints one table, writes JSON."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from stream_app.tools.bench.bench import (
    bare_consume,
    console,
    latency,
    memory,
    new_deployment,
    replay_speed,
    run_workers,
    sla_snapshot,
    sparkline,
    write_file,
)
from stream_app.tools.deployment import ROOT
from stream_app.tools.producer import produce_lines

# --- the run ---------------------------------------------------------------
#: the center's definitions the throughput runs use unless told otherwise: every rule of
#: contract v2 section 9 (time zone, day start, thresholds, business hours, two SLA policies)
DEFINITIONS = ROOT / "tests" / "definitions" / "center.toml"


def run_bench(events: int, memory_events: int, latency_seconds: float, skip: set[str],
              soak_seconds: float = 1800.0, definitions: Path | None = DEFINITIONS) -> None:
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "ram_gb": round(psutil.virtual_memory().total / 2**30),
        },
        "events": events,
        "definitions": str(definitions.relative_to(ROOT)) if definitions else None,
    }
    rows: list[tuple[str, str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="kpi-bench-"))
    data = work / "events.jsonl"
    with console.status(f"generating {events:,} events of the simulator's mix"):
        write_file(data, events)
    lines = [ln for ln in data.read_bytes().split(b"\n") if ln]
    results["agent_event_share"] = sum(b'"agent_state"' in ln for ln in lines) / len(lines)
    env = {"KPI_RULES_FILE": str(definitions)} if definitions else {}
    if "live" not in skip:
        dep = new_deployment(**env)
        asyncio.run(dep.create_topics())
        with console.status("filling the topics"):
            asyncio.run(produce_lines(dep.bootstrap, dep.topics, lines))
        with console.status("bare aiokafka + orjson consumer"):
            bare = asyncio.run(bare_consume(dep, len(lines)))
        with console.status("one worker"):
            one = run_workers(dep, len(lines), 1)
        dep2 = new_deployment(**env)
        asyncio.run(dep2.create_topics())
        asyncio.run(produce_lines(dep2.bootstrap, dep2.topics, lines))
        with console.status("two workers"):
            two = run_workers(dep2, len(lines), 2)
        results.update(
            bare_consumer_per_s=bare,
            one_worker=one,
            two_workers=two,
            ratio_to_bare=one["events_per_s"] / bare,
            two_vs_one=two["events_per_s"] / one["events_per_s"],
        )
        rows += [
            ("bare aiokafka + orjson.loads", f"{bare:,.0f} ev/s", "the physical limit"),
            (
                "kpi-stream, 1 worker",
                f"{one['events_per_s']:,.0f} ev/s",
                f"{one['events_per_s'] / bare:.0%} of bare; target 25,000 and 40 %",
            ),
            (
                "kpi-stream, 2 workers",
                f"{two['events_per_s']:,.0f} ev/s",
                f"x{two['events_per_s'] / one['events_per_s']:.2f} of 1 worker",
            ),
        ]
    if "latency" not in skip:
        with console.status(f"latency at 2,000 ev/s for {latency_seconds:.0f} s"):
            lat = asyncio.run(latency(2000, latency_seconds))
        results["latency"] = lat
        rows.append(
            (
                "event -> Redis @2,000 ev/s",
                f"p50 {lat['p50_ms']:.0f} / p99 {lat['p99_ms']:.0f} / max {lat['max_ms']:.0f} ms",
                f"{lat['probes']} probes; target p99 < 500 ms",
            )
        )
    if "memory" not in skip:
        with console.status(f"memory over {memory_events:,} events (replay core)"):
            mem = memory(memory_events, days=4)
        results["memory"] = mem
        rows.append(
            (
                "RSS, replay core, 4 days of events",
                f"{mem['rss_mb_after_warmup_min']:.0f}-{mem['rss_mb_after_warmup_max']:.0f} MB",
                f"spread {mem['spread_pct']:.1f} % after day 1; "
                + sparkline([mb for _, mb in mem["samples"]]),
            )
        )
    if "replay" not in skip:
        with console.status("replay vs bare orjson loop"):
            rep = replay_speed(data, definitions)
        results["replay"] = rep
        rows.append(
            (
                "replay",
                f"{rep['replay_per_s']:,.0f} ev/s",
                f"{rep['ratio']:.0%} of a bare orjson loop "
                f"({rep['bare_per_s']:,.0f}/s); target 50 %; core "
                + ("compiled" if rep["compiled_core"] else "NOT compiled (make native)"),
            )
        )
        rows.append(
            (
                "floor (decode+time+dedup)",
                f"{rep['floor_per_s']:,.0f} ev/s",
                f"{rep['floor_ratio']:.0%} of the bare loop: the most any replay could reach",
            )
        )
    if "sla" not in skip and definitions:
        with console.status("snapshot with 100,000 open tickets under SLA policies"):
            sla = sla_snapshot(definitions)
        results["sla_snapshot"] = sla
        rows.append(("snapshot, 100,000 open tickets",
                     f"{sla['first_snapshot_ms']:,.0f} ms first, {sla['snapshot_ms']:,.1f} ms next",
                     f"two SLA policies, business hours; {sla['breached']:,} breached"))
    if "gateway" not in skip:
        from connectors.bench import bench_gateway

        with console.status("webhook gateway: 20,000 webhooks over 64 connections"):
            gw = asyncio.run(bench_gateway(20_000, 64))
        results["gateway"] = gw
        rows.append(("webhook gateway", f"{gw['webhooks_per_s']:,.0f} webhooks/s",
                     f"p99 {gw['latency_p99_ms']:.0f} ms; target 2,000/s"))
    if "soak" not in skip:
        from stream_app.tools.bench.soak import run_soak

        with console.status(f"soak: 2,000 ev/s for {soak_seconds / 60:.0f} min with faults"):
            soak = run_soak(new_deployment(), soak_seconds, 2000.0, work,
                            ROOT / "bench" / "results")
        results["soak"] = {k: v for k, v in soak.items() if k != "samples"}
        rows.append(("soak with faults", f"equals replay: {soak['equals_replay']}",
                     f"RSS max {soak['rss_mb_max']} MB, p99 {soak['latency_p99_ms']:.0f} ms, "
                     f"lag max {soak['lag_max']}; bench/results/soak-*.png"))
    share = results["agent_event_share"]
    table = Table(title=f"kpi-stream bench, {events:,} events ({share:.0%} agent states), "
                        f"{os.cpu_count()} cores")
    for col in ("what", "result", "notes"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%MZ")
    out = ROOT / "bench" / "results" / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    console.print(f"written to {out.relative_to(ROOT)}")
