"""The center's definitions (contract v2 §9), read from the rules file.

One TOML file holds both the alert rules (``[[rule]]``, :mod:`stream_app.outputs.rules`)
and the definitions that change numbers (time zone, day start, service-level
thresholds, business hours, SLA policies, repeat window, agent cost). This is
where the file is read; the checking is :mod:`tables.definitions`'s, and a
broken file stops the caller with a message naming the key and the value.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from stream_app.settings import Settings
from tables.definitions import Definitions, DefinitionsError, parse_definitions


def load_definitions(path: str | Path | None, settings: Settings | None = None) -> Definitions:
    """The definitions of ``path`` (None or "": the defaults). ``KPI_SL_THRESHOLD_SECONDS``
    is the default threshold when the file sets none."""
    data: dict[str, object] = {}
    origin = "definitions"
    if path:
        p = Path(path)
        origin = str(p)
        try:
            text = p.read_text()
        except OSError as exc:
            raise DefinitionsError(f"cannot read definitions file {p}: {exc.strerror}") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DefinitionsError(f"{p}: not valid TOML: {exc}") from exc
    defs = parse_definitions(data, origin)
    sl = data.get("service_level")
    has_threshold = isinstance(sl, dict) and "threshold_seconds" in sl
    if settings is not None and not has_threshold and settings.sl_threshold_seconds != 20.0:
        defs = parse_definitions(
            {**data, "service_level": {**(sl if isinstance(sl, dict) else {}),
                                       "threshold_seconds": settings.sl_threshold_seconds}},
            origin,
        )
    return defs
