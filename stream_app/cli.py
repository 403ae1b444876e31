"""The ``kpi-stream`` command line (also ``python -m stream_app``).

Heavy imports stay inside the commands so ``--help`` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="kpi-stream: live customer-service KPIs from Kafka events.",
)


@app.command()
def simulate(
    rate: Annotated[
        float,
        typer.Option(
            help="Events per second (event time). Up to ~5/s (~3/s over a whole day) the "
            "center is sized to it and runs in real time; above, the same center (--sites) "
            "runs faster, its durations shortened in proportion.",
        ),
    ] = 200.0,
    duration: Annotated[
        float | None,
        typer.Option(help="Seconds of event time to generate; default: forever (live)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same stream.")] = 1,
    to_file: Annotated[
        Path | None, typer.Option("--to-file", help="Write JSONL here instead of Kafka.")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(help="With --to-file: ISO time of the last event (default: now)."),
    ] = None,
    bad_share: Annotated[
        float, typer.Option(help="Share of bad events (every rejection reason).")
    ] = 0.01,
    load: Annotated[
        float,
        typer.Option(help="Traffic against the staffing plan: 1.0 a normal day, 1.5 overload."),
    ] = 1.0,
    sites: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Sites of ~200 agents a day serving the same four queues; default: what "
            "--rate needs, at most 4.",
        ),
    ] = None,
) -> None:
    """Produce a realistic stream of contract events to Kafka (or a file)."""
    from stream_app.tools.simulator.run import run_simulate

    run_simulate(
        rate=rate,
        duration=duration,
        seed=seed,
        to_file=to_file,
        end=end,
        bad_share=bad_share,
        load=load,
        sites=sites,
    )


@app.command()
def produce(
    files: Annotated[list[Path], typer.Argument(help="JSONL files ('-' for stdin).")],
) -> None:
    """Send JSONL lines to the contract topics with the contract's keys."""
    from stream_app.tools.producer import run_produce

    run_produce(files)


@app.command()
def replay(
    files: Annotated[list[str], typer.Argument(help="JSONL files ('-' for stdin).")],
    at: Annotated[str | None, typer.Option(help="Fix the clock at this ISO time.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or table.")] = "json",
    definitions: Annotated[
        str | None,
        typer.Option(help="Definitions file (contract v2 §9); default: KPI_RULES_FILE."),
    ] = None,
) -> None:
    """Offline replay: read JSONL events and print the KPI snapshot."""
    from stream_app.tools.replay import run_replay

    run_replay(files, at=at, fmt=fmt, definitions=definitions)


@app.command()
def report(
    files: Annotated[list[str], typer.Argument(help="JSONL files ('-' for stdin).")],
    interval: Annotated[str, typer.Option(help="15m, 30m, 1h or 1d (local time).")] = "30m",
    at: Annotated[str | None, typer.Option(help="Fix the clock at this ISO time.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, json or table.")] = "csv",
    definitions: Annotated[
        str | None,
        typer.Option(help="Definitions file (contract v2 §9); default: KPI_RULES_FILE."),
    ] = None,
) -> None:
    """Interval report: every KPI per local interval and scope (contract v2 §8)."""
    from stream_app.tools.report import run_report

    run_report(files, interval, at, fmt, definitions)


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="debug, info, warning, error")] = "warning",
) -> None:
    """Run a live worker: consume, compute, serve /api/snapshot (and publish)."""
    from stream_app.worker.startup import run_worker

    run_worker(loglevel)


@app.command()
def snapshot(
    fmt: Annotated[str, typer.Option("--format", help="json or table.")] = "json",
    url: Annotated[
        str | None, typer.Option(help="Worker base URL (default: from KPI_WEB_HOST/PORT).")
    ] = None,
    from_redis: Annotated[
        bool, typer.Option("--from-redis", help="Read the snapshot the worker left in Redis.")
    ] = False,
) -> None:
    """Print the live snapshot of a running worker (or, if none answers, from Redis)."""
    from stream_app.tools.snapshot import run_snapshot

    run_snapshot(fmt=fmt, url=url, from_redis=from_redis)


@app.command()
def bench(
    events: Annotated[int, typer.Option(help="Events in the throughput runs.")] = 1_000_000,
    memory_events: Annotated[int, typer.Option(help="Events through the memory run.")] = 10_000_000,
    latency_seconds: Annotated[float, typer.Option(help="Length of the latency run.")] = 60.0,
    skip: Annotated[
        list[str] | None,
        typer.Option(help="Skip: live, latency, memory, replay, sla, gateway, soak."),
    ] = None,
    soak_seconds: Annotated[
        float, typer.Option(help="Length of the soak run with faults (2,000 ev/s).")
    ] = 1800.0,
    definitions: Annotated[
        Path | None, typer.Option(help="The center's definitions for the throughput runs "
                                  "(default: tests/definitions/center.toml, every v2 rule).")
    ] = None,
) -> None:
    """Measure throughput, latency and memory (needs the stack: `make bench`)."""
    try:
        import psutil  # noqa: F401 - only to say what is missing
    except ImportError as exc:
        typer.echo(
            "kpi-stream bench needs the bench extra: pip install 'kpi-stream[bench]' "
            "(make install has it)",
            err=True,
        )
        raise typer.Exit(2) from exc
    from stream_app.tools.bench.report import DEFINITIONS, run_bench

    run_bench(events, memory_events, latency_seconds, set(skip or []), soak_seconds,
              definitions or DEFINITIONS)


alerts_app = typer.Typer(help="SLA rules as Prometheus alerting rules.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("export")
def alerts_export(
    rules_file: Annotated[
        Path | None, typer.Option("--rules", help="Rules file (default: KPI_RULES_FILE).")
    ] = None,
) -> None:
    """Write a Prometheus rules file for the kpi_* gauges (stdout)."""
    from stream_app.outputs.alerts_export import run_export

    run_export(rules_file)


def _connectors() -> None:
    """``convert``, ``tail`` and ``gateway``: the connectors to real sources."""
    from connectors.commands import register

    register(app)


_connectors()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
