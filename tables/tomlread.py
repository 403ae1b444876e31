"""Reading checked values out of parsed TOML, with the key path in every message.

A settings file is read by people who did not write the parser: when a value
is wrong, the only useful message says which file, which key (down to the
array index) and what value was found there, written as it looks in the file.
Every check raises at the first fault, so nothing is built from a file that
is wrong anywhere.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Any, Final, NoReturn

from tables.windows import US

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_SHOWN_CHARS: Final = 120


def key_path(name: object) -> str:
    """A key as TOML would write it: bare when it can be, quoted otherwise."""
    text = str(name)
    return text if _BARE_KEY.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def show(value: Any) -> str:
    """A value as it would be written in TOML, cut short when long."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dt.date | dt.time):
        text = value.isoformat()
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{key_path(k)} = {show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show(v) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


class Reader:
    """Checks that raise ``error`` as ``<origin>: <path> = <value>: <reason>``."""

    def __init__(self, origin: str, error: type[ValueError] = ValueError) -> None:
        self.origin = origin
        self.error = error

    def fail(self, path: str, value: Any, reason: str) -> NoReturn:
        raise self.error(f"{self.origin}: {path} = {show(value)}: {reason}")

    def missing(self, path: str, parent: Any, reason: str) -> NoReturn:
        raise self.error(f"{self.origin}: {path}: missing in {show(parent)}: {reason}")

    def table(self, value: Any, path: str, known: Collection[str]) -> Mapping[str, Any]:
        """``value`` when it is a table whose keys are all ``known`` (path "" = top level)."""
        if not isinstance(value, Mapping):
            self.fail(path, value, "must be a table")
        for key, item in value.items():
            if key not in known:
                where = f"{path}.{key_path(key)}" if path else key_path(key)
                self.fail(where, item, f"unknown key (known: {', '.join(known)})")
        return value

    def string(self, value: Any, path: str, longest: int | None = None) -> str:
        """A non-empty string, of at most ``longest`` characters when given."""
        if not isinstance(value, str):
            self.fail(path, value, "must be a string")
        if not value:
            self.fail(path, value, "must not be empty")
        if longest is not None and len(value) > longest:
            self.fail(path, value, f"must be a string of 1 to {longest} characters")
        return value

    def number(self, value: Any, path: str) -> float | int:
        """A finite number, 0 or more."""
        # TOML true/false are Python bools, and bool is an int: reject them first.
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, value, "must be a number")
        if not math.isfinite(value):
            self.fail(path, value, "must be a finite number")
        if value < 0:
            self.fail(path, value, "must not be negative")
        return value

    def micros(self, value: Any, path: str) -> int:
        """Seconds (an int or a float, 0 or more) as whole microseconds."""
        seconds = self.number(value, path)
        return seconds * US if isinstance(seconds, int) else round(seconds * US)

    def names(self, value: Any, path: str, longest: int) -> frozenset[str]:
        """A list of non-empty strings of at most ``longest`` characters, as a set."""
        if not isinstance(value, list):
            self.fail(path, value, "must be a list of strings")
        return frozenset(self.string(item, f"{path}[{i}]", longest) for i, item in enumerate(value))
