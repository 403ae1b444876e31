"""The SLA rules as a Prometheus rules file over the worker's ``kpi_*`` gauges.

``kpi-stream alerts export [--rules FILE]`` prints it. One alerting rule per
SLA rule, equivalent to what the worker itself raises (stream_app/outputs/alerts.py):

* the rule's scope glob becomes label matchers: ``all`` -> ``scope_type="all"``,
  ``queue:*`` -> ``scope_type="queue"``, ``channel:voice`` ->
  ``scope_type="channel",scope="voice"``, ``queue:bill*`` -> ``scope=~"bill.*"``;
  any other glob is matched exactly, one selector per scope type it can match;
* ``max by (window, scope_type, scope)``: every worker exports the same
  snapshot gauges, so several scraped workers still make one alert per scope;
* ``min_samples`` -> ``and on (...) (<the KPI's sample counts> >= N)``;
* ``clear`` (hysteresis) -> an alert that is already firing (``ALERTS``) keeps
  firing until the KPI is back past ``clear``, as the worker does;
* ``for``, and the labels ``severity``, ``rule``, ``kpi``.

The file is written by hand (it is a tiny subset of YAML): every string is a
JSON string, which YAML reads as a double-quoted scalar, and each PromQL
expression is a literal block, so neither needs any other escaping.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

from stream_app.outputs.rules import Rule, RulesError, load_rules
from tables import kpis

#: Scope types of the contract (section 6); ``all`` is its own type and name.
SCOPE_TYPES = tuple(k for k in kpis.SCOPE_KINDS if k != kpis.ALL)
RATES = {k.name for k in kpis.CATALOGUE if k.kind == kpis.RATE}
GROUP = "kpi-sla"

# --- glob -> label matchers --------------------------------------------------------------
Token = tuple[str, str]  # ("lit", c) | ("any", "") | ("star", "") | ("set", "[...]")
STAR: Token = ("star", "")


def glob_tokens(glob: str) -> tuple[Token, ...]:
    """fnmatch's syntax: ``*``, ``?``, ``[seq]``, ``[!seq]``; an unclosed ``[`` is literal."""
    out: list[Token] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            if not out or out[-1] != STAR:
                out.append(STAR)
        elif c == "?":
            out.append(("any", ""))
        elif c == "[":
            j = i + 1
            if j < len(glob) and glob[j] == "!":
                j += 1
            if j < len(glob) and glob[j] == "]":
                j += 1
            while j < len(glob) and glob[j] != "]":
                j += 1
            if j >= len(glob):
                out.append(("lit", c))
            else:
                out.append(("set", glob[i:j + 1]))
                i = j
        else:
            out.append(("lit", c))
        i += 1
    return tuple(out)


def _step(tokens: tuple[Token, ...], c: str) -> set[tuple[Token, ...]]:
    """What is left of the pattern after it consumed the character ``c``."""
    if not tokens:
        return set()
    kind, text = tokens[0]
    if kind == "star":
        return {tokens} | _step(tokens[1:], c)
    if kind == "any" or (kind == "lit" and text == c) or (
            kind == "set" and fnmatch.fnmatchcase(c, text)):
        return {tokens[1:]}
    return set()


def residuals(glob: str, prefix: str) -> set[tuple[Token, ...]]:
    """The patterns a name must match for ``prefix + name`` to match ``glob``."""
    states = {glob_tokens(glob)}
    for c in prefix:
        states = {r for s in states for r in _step(s, c)}
    return states


def _regex(tokens: tuple[Token, ...]) -> str:
    """RE2 (Prometheus matchers are anchored RE2) for a token sequence."""
    out = []
    for kind, text in tokens:
        if kind == "star":
            out.append(".*")
        elif kind == "any":
            out.append(".")
        elif kind == "lit":
            out.append(re.escape(text))
        else:
            body = text[1:-1]
            neg = body.startswith("!")
            body = body[1:] if neg else body
            body = body.replace("\\", "\\\\")
            if body.startswith("^"):
                body = "\\" + body
            out.append(f"[{'^' if neg else ''}{body}]")
    return "".join(out)


def promql_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def scope_matchers(glob: str, kinds: frozenset[str] | None = None) -> list[str]:
    """One matcher list (``a="b",c=~"d"``) per scope type the glob can match, among the
    scope kinds where the KPI applies (``kinds``; all kinds when None)."""
    out = []
    if fnmatch.fnmatchcase("all", glob) and (kinds is None or kpis.ALL in kinds):
        out.append('scope_type="all"')
    for stype in SCOPE_TYPES:
        if kinds is not None and stype not in kinds:
            continue  # the KPI is null there: no series
        rest = residuals(glob, f"{stype}:")
        if not rest:
            continue
        matcher = f"scope_type={promql_string(stype)}"
        if () in rest and len(rest) == 1:
            continue  # only the empty name: no such scope
        if (STAR,) not in rest:
            if len(rest) == 1 and all(k == "lit" for k, _ in next(iter(rest))):
                name = "".join(t for _, t in next(iter(rest)))
                matcher += f",scope={promql_string(name)}"
            else:
                alts = sorted(_regex(r) for r in rest)
                regex = alts[0] if len(alts) == 1 else "|".join(f"(?:{a})" for a in alts)
                matcher += f",scope=~{promql_string(regex)}"
        out.append(matcher)
    return out


# --- expressions -------------------------------------------------------------------------
def _selectors(metric: str, rule: Rule, live: bool) -> list[str]:
    """The series of ``metric`` a rule looks at, one selector per scope type, in the same
    order for the rule's KPI and its samples (the scope types where the KPI applies)."""
    window = [] if live else [f"window={promql_string(rule.window)}"]
    return [f"{metric}{{{','.join([*window, m])}}}"
            for m in scope_matchers(rule.scope, kpis.BY_NAME[rule.kpi].scopes)]


def rule_expr(rule: Rule, alert: str) -> str | None:
    """PromQL of the rule, or None when its scope glob matches no scope type.

    PromQL binds comparisons tighter than ``and``/``unless``, and those tighter
    than ``or``, which is the grouping wanted here; the parentheses are for people.
    """
    live = rule.window == "now"
    by = "scope_type, scope" if live else "window, scope_type, scope"
    sels = _selectors(f"kpi_{rule.kpi}", rule, live)
    if not sels:
        return None
    value = f"max by ({by}) ({' or '.join(sels)})"
    samples = None
    if rule.min_samples:
        parts = []
        for i in range(len(sels)):
            terms = [_selectors(f"kpi_{f}", rule, live)[i] for f in kpis.samples(rule.kpi)]
            parts.append(" + ".join(terms) if len(sels) == 1 else f"({' + '.join(terms)})")
        samples = f"max by ({by}) ({' or '.join(parts)}) >= {rule.min_samples}"
    breach = [f"{value} {rule.op} {rule.threshold:g}"]
    if samples:
        breach += [f"and on ({by})", samples]
    limit = rule.threshold if rule.clear is None else rule.clear
    if limit == rule.threshold and samples is None:
        return "\n".join(breach)
    # Hysteresis (Rule.cleared): once firing, the alert holds until the KPI is back
    # past `limit` with enough samples to say so. ALERTS is the previous evaluation's.
    keep = [f"{value} {rule.op} {limit:g}"]
    if samples:
        keep += ["or", value, f"  unless on ({by})", f"  {samples}"]
    firing = f"ALERTS{{alertname={promql_string(alert)},alertstate=\"firing\"}}"
    return "\n".join([
        "(", *_indent(breach), ")",
        "or",
        "(", "  (", *_indent(keep, "    "), "  )", f"  and on ({by})",
        f"  max by ({by}) ({firing})", ")",
    ])


def _indent(lines: list[str], by: str = "  ") -> list[str]:
    return [by + line for line in lines]


def alert_name(rule: Rule) -> str:
    """``service-level`` -> ``KpiSlaServiceLevel`` (a valid metric-style name)."""
    words = re.split(r"[^0-9A-Za-z]+", rule.name)
    return "KpiSla" + "".join(w[:1].upper() + w[1:] for w in words if w)


def _fmt(kpi: str, what: str) -> str:
    if kpi in RATES:
        return f"{{{{ {what} | humanizePercentage }}}}"
    if kpi.endswith("_seconds"):
        return f"{{{{ {what} | humanizeDuration }}}}"
    return f'{{{{ {what} | printf "%.1f" }}}}'


def _limit_text(kpi: str, limit: float) -> str:
    if kpi in RATES:
        return f"{limit * 100:g}%"
    if kpi.endswith("_seconds"):
        return f"{limit:g}s"
    return f"{limit:g}"


SCOPE_TEXT = ('{{ if eq $labels.scope_type "all" }}all{{ else }}'
              '{{ $labels.scope_type }}:{{ $labels.scope }}{{ end }}')


def rule_yaml(rule: Rule) -> list[str]:
    if rule.min_samples and not kpis.samples(rule.kpi):
        return [f"      # {rule.name}: min_samples on {rule.kpi} (no sample count) never fires"]
    alert = alert_name(rule)
    expr = rule_expr(rule, alert)
    if expr is None:
        return [f"      # {rule.name}: scope {rule.scope!r} matches no scope type"]
    win = "now" if rule.window == "now" else f"over {rule.window}"
    summary = (f"{rule.kpi} of {SCOPE_TEXT} is {_fmt(rule.kpi, '$value')} "
               f"({rule.op} {_limit_text(rule.kpi, rule.threshold)}, {win})")
    clear = "" if rule.clear is None else (
        f" It clears once back past {_limit_text(rule.kpi, rule.clear)}.")
    samples = "" if not rule.min_samples else (
        f" Only counted with at least {rule.min_samples} "
        f"{' + '.join(kpis.samples(rule.kpi))} in the window.")
    description = (f"SLA rule {rule.name!r}: {rule.kpi} ({win}) {rule.op} "
                   f"{_limit_text(rule.kpi, rule.threshold)} for {rule.for_}.{clear}{samples}")
    out = [f"      - alert: {json.dumps(alert)}", "        expr: |-"]
    out += [f"          {line}" for line in expr.splitlines()]
    if rule.for_seconds > 0:
        out.append(f"        for: {int(rule.for_seconds)}s")
    out += ["        labels:",
            f"          severity: {json.dumps(rule.severity)}",
            f"          rule: {json.dumps(rule.name)}",
            f"          kpi: {json.dumps(rule.kpi)}",
            "        annotations:",
            f"          summary: {json.dumps(summary)}",
            f"          description: {json.dumps(description)}"]
    return out


def export_rules(rules: list[Rule], origin: str) -> str:
    lines = [f"# SLA alerting rules generated by `kpi-stream alerts export` from {origin}.",
             "# Regenerate after editing the rules file instead of editing this one.",
             "groups:", f"  - name: {json.dumps(GROUP)}", "    rules:"]
    body = [line for rule in rules for line in rule_yaml(rule)]
    if not any(line.lstrip().startswith("- alert:") for line in body):
        lines = lines[:2] + [f"# {line.strip()[2:]}" for line in body] + lines[2:]
        lines[-1] = "    rules: []"
        body = []
    return "\n".join(lines + body) + "\n"


def run_export(rules_file: str | Path | None) -> None:
    """``kpi-stream alerts export``: print the rules file for ``rules_file`` (default:
    ``KPI_RULES_FILE``, else the shipped defaults)."""
    import typer

    from stream_app.settings import get_settings

    settings = get_settings()
    path = str(rules_file) if rules_file else settings.rules_file or None
    try:
        rules = load_rules(path, settings.window_names)
    except RulesError as exc:
        typer.echo(f"kpi-stream: {exc}", err=True)
        raise typer.Exit(2) from exc
    origin = Path(path).name if path else "the default rules"
    typer.echo(export_rules(rules, origin), nl=False)
