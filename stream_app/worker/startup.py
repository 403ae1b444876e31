"""``kpi-stream worker``: the checks before faust starts, then faust's worker.

Everything that can be found wrong before consuming is found here, each as one message
saying what to change, and the process exits with status 2: invalid settings, a broken
rules or definitions file, a cluster that refuses the credentials or the certificate, a
missing topic. Past this point faust runs, and a problem is something to retry or report
(:mod:`stream_app.worker.health`), never a reason to hang at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import typer
from pydantic import ValidationError

from stream_app.settings import Settings

log = logging.getLogger("kpi.worker")


def settings_problem(exc: ValidationError) -> str:
    """A settings error as one line per problem, without pydantic's links and input echo."""
    prefix = "KAFKA_" if exc.title == "KafkaSecurity" else "KPI_"
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        where = "_".join(str(part) for part in err.get("loc", ())).upper()
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        named = not where or "KAFKA_" in msg or "KPI_" in msg
        lines.append(msg if named else f"{prefix}{where}: {msg}")
    return "invalid settings: " + "; ".join(lines)


def load_settings() -> Settings:
    """The settings, or exit 2 saying which variable is wrong."""
    from stream_app.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        typer.echo(f"kpi-stream: {settings_problem(exc)}", err=True)
        raise typer.Exit(2) from None


def run_worker(loglevel: str) -> None:
    from stream_app.definitions import load_definitions
    from stream_app.kafka.client import KafkaConnectionError, describe
    from stream_app.kafka.preflight import preflight
    from stream_app.kafka.worker_topics import TopicsError
    from stream_app.logs import setup_logging
    from stream_app.outputs.rules import RulesError, load_rules
    from tables.definitions import DefinitionsError

    settings = load_settings()
    setup_logging(loglevel)
    try:
        load_definitions(settings.rules_file or None, settings)
        load_rules(settings.rules_file or None, settings.window_names)
    except (RulesError, DefinitionsError) as exc:
        typer.echo(f"kpi-stream: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        limits = asyncio.run(preflight(settings))
    except (KafkaConnectionError, TopicsError) as exc:
        typer.echo(f"kpi-stream: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - turn a stack trace into an instruction
        typer.echo(
            f"kpi-stream: cannot prepare {describe(settings)} ({type(exc).__name__}: {exc}).\n"
            "Start the local stack with `make stack` or set KAFKA_BOOTSTRAP_SERVERS.",
            err=True,
        )
        raise typer.Exit(2) from None
    from stream_app.worker.app import create_app

    app = create_app(settings, limits)
    level = {"warning": "warn", "critical": "crit"}.get(loglevel, loglevel)
    sys.argv = ["kpi-stream", "--quiet", "worker", "--loglevel", level]
    app.main()
