"""Targets and SLA rules: one TOML file for the wallboard colours and the alerts.

A rule says when a KPI of some rows is bad::

    [[rule]]
    name = "service-level"      # unique
    kpi = "service_level"       # a KPI of the snapshot (contract section 6)
    window = "15m"              # a configured window, or "now" for live-state KPIs
    scope = "queue:*"           # glob over scope names: all, queue:*, channel:voice ...
    op = "<"                    # breach when  value <op> threshold   (<, <=, >, >=)
    threshold = 0.80
    warn = 0.85                 # optional: amber when value <op> warn (before breaching)
    clear = 0.82                # optional hysteresis: a breach clears only past this
    min_samples = 10            # optional: ignore rows with fewer samples (tables/kpis.py)
    for = "60s"                 # optional: the breach must hold this long to fire
    severity = "critical"       # info | warning | critical

A broken file stops the worker at start with the rule's name and field.
"""

from __future__ import annotations

import fnmatch
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stream_app.settings import parse_duration
from tables import kpis

OPS = {
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
}
DEFAULT_RULES = "rules.default.toml"


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the rule and the field."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1)
    kpi: str
    window: str
    scope: str = "all"
    op: Literal["<", "<=", ">", ">="]
    threshold: float
    warn: float | None = None
    clear: float | None = None
    min_samples: int = Field(0, ge=0)
    for_: str = Field("0s", alias="for")
    severity: Literal["info", "warning", "critical"] = "warning"

    @field_validator("kpi")
    @classmethod
    def _kpi(cls, v: str) -> str:
        if v not in kpis.BY_NAME:
            raise ValueError(f"unknown KPI {v!r}")
        return v

    @field_validator("for_")
    @classmethod
    def _for(cls, v: str) -> str:
        parse_duration(v)
        return v

    @model_validator(mode="after")
    def _coherent(self) -> Rule:
        live = kpis.BY_NAME[self.kpi].row == kpis.NOW
        if live != (self.window == "now"):
            raise ValueError(f"{self.kpi} needs window {'now' if live else 'of 5m/15m/...'}")
        if self.clear is not None and OPS[self.op](self.clear, self.threshold):
            raise ValueError("clear must lie on the good side of threshold")
        return self

    @property
    def for_seconds(self) -> float:
        return float(parse_duration(self.for_))

    def applies(self, scope: str, window: str) -> bool:
        return window == self.window and fnmatch.fnmatchcase(scope, self.scope)

    def samples(self, row: dict[str, Any]) -> int:
        return sum(int(row.get(f) or 0) for f in kpis.samples(self.kpi))

    def status(self, row: dict[str, Any]) -> str | None:
        """ "breach", "warn", "ok", or None when the row says nothing (null, too few)."""
        value = row.get(self.kpi)
        if value is None or self.samples(row) < self.min_samples:
            return None
        if OPS[self.op](value, self.threshold):
            return "breach"
        if self.warn is not None and OPS[self.op](value, self.warn):
            return "warn"
        return "ok"

    def cleared(self, row: dict[str, Any]) -> bool:
        """Hysteresis: a firing breach clears only once past ``clear`` (or threshold)."""
        value = row.get(self.kpi)
        if value is None or self.samples(row) < self.min_samples:
            return False
        limit = self.threshold if self.clear is None else self.clear
        return not OPS[self.op](value, limit)


def _parse(text: str, origin: str, windows: list[str] | None) -> list[Rule]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{origin}: not valid TOML: {exc}") from exc
    items = data.get("rule", [])
    if not isinstance(items, list):
        raise RulesError(f"{origin}: use [[rule]] tables")
    rules: list[Rule] = []
    for i, item in enumerate(items):
        label = item.get("name") if isinstance(item, dict) else None
        try:
            rule = Rule.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "rule"
            raise RulesError(
                f"{origin}: rule {label or f'#{i + 1}'!s}: field {field!r}: {err['msg']}"
            ) from exc
        if windows is not None and rule.window != "now" and rule.window not in windows:
            raise RulesError(
                f"{origin}: rule {rule.name}: field 'window': "
                f"{rule.window!r} is not one of {windows}"
            )
        if any(r.name == rule.name for r in rules):
            raise RulesError(f"{origin}: rule {rule.name}: field 'name': used twice")
        rules.append(rule)
    return rules


def load_rules(path: str | Path | None = None, windows: list[str] | None = None) -> list[Rule]:
    """The rules of ``path``, or the defaults shipped with the project."""
    if path:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise RulesError(f"cannot read rules file {p}: {exc.strerror}") from exc
        return _parse(text, str(p), windows)
    text = resources.files("stream_app.outputs").joinpath(DEFAULT_RULES).read_text()
    return _parse(text, DEFAULT_RULES, windows)


def rules_json(rules: list[Rule]) -> list[dict[str, Any]]:
    return [r.model_dump(by_alias=True) for r in rules]
