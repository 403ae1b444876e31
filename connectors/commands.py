"""The ``convert``, ``tail`` and ``gateway`` commands, added to the project CLI by
:func:`register` (heavy imports stay inside the commands so ``--help`` stays instant).

Secrets never go on the command line (``ps`` would show them): the gateway reads them
from ``KPI_CONNECTORS_*`` environment variables, see docs/connectors.md.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from connectors.base import ConnectorError

if TYPE_CHECKING:
    from connectors.gateway import GatewayConfig
    from connectors.mapping import Options

AgentMap = Annotated[Path | None, typer.Option(
    "--agent-map", help="File renaming members/agents: JSON object or 'from,to' lines.")]
Config = Annotated[Path | None, typer.Option(
    "--config", help="TOML file of renamings and vendor choices: tables agents, queues, "
                     "channels, twilio.activities, delighted (see docs/connectors.md).")]
Wrapup = Annotated[float, typer.Option(
    "--wrapup", min=0, help="queue_log: seconds of wrap-up after a call before the agent "
                            "is available again (0: available at once).")]
Salt = Annotated[str | None, typer.Option(
    "--customer-salt", envvar="KPI_CONNECTORS_CUSTOMER_SALT",
    help="queue_log: hash caller ids with this salt instead of writing them as they are.")]
StateDir = Annotated[Path, typer.Option(
    "--state-dir", help="Where the tail position / gateway state is kept.")]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"kpi-stream: {exc}", err=True)
    return typer.Exit(2)


def _options(config: Path | None, agent_map: Path | None) -> Options:
    from connectors.base import load_map
    from connectors.mapping import load_options

    opts = load_options(config)
    opts.agents.update(load_map(agent_map))
    return opts


CONVERT_HELP = (
    "Convert a vendor's records to contract JSONL on stdout; summary on stderr.\n\n"
    "The backfill path: kpi-stream convert SOURCE FILE... | kpi-stream produce - . "
    "Deterministic: the same input always gives the same lines and event ids.")
TAIL_HELP = (
    "Follow a live queue_log and produce its events to Kafka.\n\n"
    "Survives log rotation (rename and copy-truncate) and restarts: it resumes after the "
    "last line Kafka acknowledged, kept in --state-file.")
GATEWAY_HELP = (
    "Receive vendor webhooks and produce contract events to Kafka.\n\n"
    "POST /webhooks/SOURCE for zendesk, amazon-connect, twilio-taskrouter, chatwoot and "
    "delighted; GET /metrics and /healthz. Requests are authenticated with "
    "KPI_CONNECTORS_TOKEN and/or the vendor secrets KPI_CONNECTORS_ZENDESK_SECRET, "
    "KPI_CONNECTORS_TWILIO_AUTH_TOKEN, KPI_CONNECTORS_CHATWOOT_SECRET.")


def register(app: typer.Typer) -> None:
    """Add ``convert``, ``tail`` and ``gateway`` to ``app``."""
    app.command("convert", help=CONVERT_HELP)(convert_command)
    app.command("tail", help=TAIL_HELP)(tail_command)
    app.command("gateway", help=GATEWAY_HELP)(gateway_command)


def convert_command(
    source: Annotated[str, typer.Argument(help="asterisk-queue-log, zendesk, amazon-connect, "
                                          "twilio-taskrouter, chatwoot or delighted.")],
    files: Annotated[list[str] | None, typer.Argument(
        help="Input files, read as one input in this order; none or '-': stdin.")] = None,
    agent_map: AgentMap = None, config: Config = None, wrapup: Wrapup = 0.0,
    customer_salt: Salt = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the JSONL here instead of stdout.")] = None,
) -> None:
    """``kpi-stream convert`` (help: CONVERT_HELP)."""
    from connectors.convert import convert
    from connectors.sources import canonical

    try:
        name = canonical(source)
        opts = _options(config, agent_map)
        out = output.open("wb") if output else sys.stdout.buffer
        try:
            summary = convert(name, files or ["-"], out, options=opts, wrapup=wrapup,
                              customer_salt=customer_salt)
        finally:
            if output:
                out.close()
            else:
                out.flush()
    except (ConnectorError, OSError) as exc:
        raise _fail(exc) from exc
    typer.echo(summary.render(name), err=True)


def tail_command(
    source: Annotated[str, typer.Argument(help="asterisk-queue-log (the only tailable one).")],
    path: Annotated[Path, typer.Argument(help="The live queue_log, e.g. "
                                         "/var/log/asterisk/queue_log.")],
    agent_map: AgentMap = None, config: Config = None, wrapup: Wrapup = 0.0,
    customer_salt: Salt = None,
    state_dir: StateDir = Path(".run/connectors"),
    state_file: Annotated[Path | None, typer.Option(
        "--state-file", help="Committed position (default: <state-dir>/tail-<log name>.json).")
    ] = None,
    from_end: Annotated[bool, typer.Option(
        "--from-end", help="First start only: skip what the log already holds.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between checks for new lines.")] = 0.25,
    batch_lines: Annotated[int, typer.Option(
        "--batch-lines", min=1, help="Lines per Kafka round trip and position commit.")] = 5000,
    loglevel: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """``kpi-stream tail`` (help: TAIL_HELP)."""
    from connectors.sources import ASTERISK, canonical

    try:
        if canonical(source) != ASTERISK:
            raise ConnectorError("tail reads log files: only asterisk-queue-log; use "
                                 "`kpi-stream gateway` for webhook sources")
        opts = _options(config, agent_map)
        state_dir.mkdir(parents=True, exist_ok=True)
        target = state_file or state_dir / f"tail-{path.name}.json"
        run_tail(path, target, opts.agents, wrapup, customer_salt, from_end, poll, loglevel,
                 batch_lines)
    except (ConnectorError, OSError) as exc:
        raise _fail(exc) from exc


def run_tail(path: Path, state_file: Path, agents: dict[str, str], wrapup: float = 0.0,
             salt: str | None = None, from_end: bool = False, poll: float = 0.25,
             loglevel: str = "info", batch_lines: int = 5000) -> None:
    """The tail's entry point (also for supervisors: SIGTERM stops it cleanly)."""
    from connectors.asterisk import QueueLogConverter
    from connectors.produce import KafkaSink
    from connectors.tail import Follower
    from stream_app.logs import setup_logging
    from stream_app.settings import get_settings

    setup_logging(loglevel)

    async def main() -> None:
        sink = KafkaSink(get_settings())
        await sink.start()
        follower = Follower(path, state_file, QueueLogConverter(agents, wrapup, salt), sink,
                            poll=poll, batch_lines=batch_lines, from_end=from_end)
        try:
            await follower.run(_stop_event())
        finally:
            await sink.stop()

    asyncio.run(main())


def gateway_command(
    host: Annotated[str, typer.Option(help="Listen address (loopback by default: put a "
                                      "TLS proxy in front for vendors).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8787,
    state_dir: StateDir = Path(".run/connectors"),
    config: Config = None, agent_map: AgentMap = None,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", help="The base URL vendors call (Twilio signs the full URL), e.g. "
                             "https://hooks.example.com.")] = None,
    ack_timeout: Annotated[float, typer.Option(
        "--ack-timeout", help="Seconds to wait for Kafka before answering 503.")] = 3.0,
    loglevel: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """``kpi-stream gateway`` (help: GATEWAY_HELP)."""
    from connectors.gateway import GatewayConfig as Config_

    try:
        cfg = Config_(host=host, port=port, state_dir=state_dir,
                            options=_options(config, agent_map), public_url=public_url,
                            ack_timeout=ack_timeout)
        cfg.token, cfg.secrets = secrets_from_env()
        run_gateway(cfg, loglevel)
    except (ConnectorError, OSError) as exc:
        raise _fail(exc) from exc


def secrets_from_env() -> tuple[str | None, dict[str, str]]:
    """(bearer token, signing secret per source) from ``KPI_CONNECTORS_*``."""
    env = os.environ
    secrets = {name: env[var] for name, var in (
        ("zendesk", "KPI_CONNECTORS_ZENDESK_SECRET"),
        ("twilio-taskrouter", "KPI_CONNECTORS_TWILIO_AUTH_TOKEN"),
        ("chatwoot", "KPI_CONNECTORS_CHATWOOT_SECRET")) if env.get(var)}
    return env.get("KPI_CONNECTORS_TOKEN") or None, secrets


def run_gateway(cfg: GatewayConfig, loglevel: str = "info") -> None:
    """The gateway's entry point (SIGTERM/SIGINT stop it cleanly)."""
    from connectors.gateway import serve_until
    from stream_app.logs import setup_logging
    from stream_app.settings import get_settings

    cfg.check()
    setup_logging(loglevel)

    async def main() -> None:
        await serve_until(cfg, get_settings(), _stop_event())

    asyncio.run(main())


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def main(argv: list[str] | None = None) -> None:
    """``python -m connectors …``: the three commands without the rest of the CLI."""
    app = typer.Typer(add_completion=False, no_args_is_help=True,
                      help="kpi-stream connectors: convert, tail, gateway.")
    register(app)
    app(args=argv, prog_name="kpi-stream")
