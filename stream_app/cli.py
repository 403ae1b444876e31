"""The ``kpi-stream`` command line (also ``python -m stream_app``).

Heavy imports stay inside the commands so ``--help`` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="kpi-stream: live customer-service KPIs from Kafka events.",
)


@app.command()
def simulate(
    rate: Annotated[float, typer.Option(help="Events per second (event time).")] = 200.0,
    duration: Annotated[
        Optional[float], typer.Option(help="Seconds of event time to generate; default: forever (live).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same stream.")] = 1,
    to_file: Annotated[
        Optional[Path], typer.Option("--to-file", help="Write JSONL here instead of Kafka.")
    ] = None,
    end: Annotated[
        Optional[str],
        typer.Option(help="With --to-file: ISO time of the last event (default: now)."),
    ] = None,
    bad_share: Annotated[
        float, typer.Option(help="Share of bad events (every rejection reason).")
    ] = 0.01,
) -> None:
    """Produce a realistic stream of contract events to Kafka (or a file)."""
    from stream_app.simulator import run_simulate

    run_simulate(
        rate=rate, duration=duration, seed=seed, to_file=to_file, end=end, bad_share=bad_share
    )


@app.command()
def produce(
    files: Annotated[list[Path], typer.Argument(help="JSONL files ('-' for stdin).")],
) -> None:
    """Send JSONL lines to the contract topics with the contract's keys."""
    from stream_app.producer import run_produce

    run_produce(files)


@app.command()
def replay(
    files: Annotated[list[str], typer.Argument(help="JSONL files ('-' for stdin).")],
    at: Annotated[
        Optional[str], typer.Option(help="Fix the clock at this ISO time.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or table.")] = "json",
) -> None:
    """Offline replay: read JSONL events and print the KPI snapshot."""
    from stream_app.replay import run_replay

    run_replay(files, at=at, fmt=fmt)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
