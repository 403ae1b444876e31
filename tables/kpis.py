"""The KPI catalogue: one entry per KPI of the contract, and everything derives from it.

Each :class:`Kpi` says what a KPI is (name, kind, unit, help), where it applies
(the scope kinds of contract section 6; elsewhere it is ``null``), which row
holds it (bucketed windows or the live ``now`` row), the counts behind it
(``samples``: what a rule's ``min_samples`` looks at) and how people see it
(label, format, wallboard and dashboard placement). Its value comes from
``value``: the aggregate of a window (bucketed) or the merged live state of a
scope (``now``).

Snapshot rows, Prometheus gauge names and help, Redis fields, the table
renderer, rule validation, the alert-rule export, the Grafana dashboard and the
wallboard's labels and formats (served as ``/api/kpis``) are all read from
:data:`CATALOGUE`. Adding a KPI is one entry here, its update rule where the
events feed the aggregate (:mod:`tables.state`), and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

from tables import aggregate as A
from tables.aggregate import mean_s, quantile, ratio
from tables.windows import US

# Scope kinds (contract section 6) -----------------------------------------------------------
ALL: Final = "all"
QUEUE: Final = "queue"
CHANNEL: Final = "channel"
AGENT: Final = "agent"
PRODUCT: Final = "product"
SCOPE_KINDS: Final = (ALL, QUEUE, CHANNEL, AGENT, PRODUCT)

# Kinds of KPI: how a value is made, which decides how it is shown and aggregated.
COUNT: Final = "count"
MEAN: Final = "mean"  # a mean in its unit (seconds, score)
RATE: Final = "rate"  # a fraction 0-1
QUANTILE: Final = "quantile"
SCORE: Final = "score"  # nps: -100..100
SECONDS: Final = "seconds"  # a total of time
LIVE: Final = "live"  # a value of the now row

BUCKETED: Final = "bucketed"
NOW: Final = "now"

_CONTACT = frozenset({ALL, QUEUE, CHANNEL, AGENT})
_TICKET = frozenset({ALL, QUEUE, CHANNEL, AGENT, PRODUCT})
_SURVEY = frozenset({ALL, QUEUE, CHANNEL, AGENT})
_AGENT_TIME = frozenset({ALL, QUEUE, AGENT})
_COST = frozenset({ALL, AGENT})
_LIVE_CONTACT = frozenset({ALL, QUEUE, CHANNEL})
_LIVE_TICKET = frozenset({ALL, QUEUE, CHANNEL, PRODUCT})
_LIVE_AGENTS = frozenset({ALL, QUEUE, AGENT})


@dataclass(frozen=True)
class Context:
    """What a formula needs beyond the aggregate: the center's definitions."""

    hourly_cost: float | None = None


#: value(aggregate or live state, context)
Value = Callable[[Any, Context], Any]
#: what a KPI's ``expr`` may use: the aggregate or live state ``a``, the context ``c``
_NAMES: dict[str, Any] = {}


@dataclass(frozen=True)
class Kpi:
    name: str
    kind: str
    #: base unit: "seconds", "ratio" (0-1), "score", or "" for counts
    unit: str
    help: str
    scopes: frozenset[str]
    #: the formula: a Python expression over ``a`` (the window's aggregate, or the scope's
    #: live state for a ``now`` KPI) and ``c`` (the :class:`Context`)
    expr: str
    row: str = BUCKETED
    #: the counts behind the value (a rule's min_samples sums them)
    samples: tuple[str, ...] = ()
    #: for people: a short label and a format (count, percent, duration, score, decimal)
    label: str = ""
    fmt: str = COUNT
    #: the range a value can take, when bounded (dashboards use it)
    lo: float | None = None
    hi: float | None = None
    #: position among the wallboard's queue tiles (None: not a tile)
    board: int | None = None
    #: shown per queue and per channel on the Grafana dashboard
    dashboard: bool = False
    #: position among the columns of the table renderer (``--format table``)
    column: int | None = None
    #: the value moves with the clock between events (time in states and what is made
    #: of it, waits): outputs may refresh it at a slower pace than event-driven values
    ticks: bool = False

    def applies(self, scope_kind: str) -> bool:
        return scope_kind in self.scopes

    @cached_property
    def value(self) -> Value:
        fn: Value = eval(f"lambda a, c: ({self.expr})", _NAMES)  # noqa: S307 - our catalogue
        return fn

    def public(self) -> dict[str, Any]:
        """What a page or an exporter needs to know (``/api/kpis``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "help": self.help,
            "scopes": sorted(self.scopes),
            "row": self.row,
            "samples": list(self.samples),
            "label": self.label,
            "format": self.fmt,
            "lo": self.lo,
            "hi": self.hi,
            "board": self.board,
        }


_ANSWERED = ("contacts_answered",)
_HANDLED = ("contacts_answered", "contacts_abandoned")


def cost(a: A.Agg, c: Context) -> float | None:
    if c.hourly_cost is None or not a[A.CLOSED]:
        return None
    return a[A.STAFFED_US] / US / 3600 * c.hourly_cost / a[A.CLOSED]


CATALOGUE: Final[tuple[Kpi, ...]] = (
    # --- contacts -----------------------------------------------------------------------------
    Kpi("contacts_offered", COUNT, "", "contacts that arrived (contact_offered)", _CONTACT,
        "a[A.OFFERED]", label="Offered", column=0),
    Kpi("contacts_answered", COUNT, "", "contacts that got a first agent response", _CONTACT,
        "a[A.ANSWERED]", label="Answered", column=1),
    Kpi("contacts_abandoned", COUNT, "", "contacts that left while waiting", _CONTACT,
        "a[A.ABANDONED]", label="Abandoned"),
    Kpi("abandonment_rate", RATE, "ratio", "abandoned / (answered + abandoned), 0-1", _CONTACT,
        "ratio(a[A.ABANDONED], a[A.ANSWERED] + a[A.ABANDONED])", samples=_HANDLED,
        label="Abandoned", fmt="percent", lo=0, hi=1, board=4, dashboard=True, column=2),
    Kpi("asa_seconds", MEAN, "seconds",
        "average speed of answer: mean wait of answered contacts, seconds", _CONTACT,
        "mean_s(a[A.WAIT_SUM], a[A.ANSWERED])", samples=_ANSWERED, label="ASA",
        fmt="duration", lo=0, board=3, dashboard=True, column=4),
    Kpi("wait_p50_seconds", QUANTILE, "seconds", "median wait of answered contacts, seconds",
        _CONTACT, "quantile(a[A.WAIT_SK], 0.5)", samples=_ANSWERED, label="Wait p50",
        fmt="duration", lo=0),
    Kpi("wait_p90_seconds", QUANTILE, "seconds",
        "90th percentile wait of answered contacts, seconds", _CONTACT,
        "quantile(a[A.WAIT_SK], 0.9)", samples=_ANSWERED, label="Wait p90",
        fmt="duration", lo=0, column=5),
    Kpi("wait_p95_seconds", QUANTILE, "seconds",
        "95th percentile wait of answered contacts, seconds", _CONTACT,
        "quantile(a[A.WAIT_SK], 0.95)", samples=_ANSWERED, label="Wait p95",
        fmt="duration", lo=0),
    Kpi("service_level", RATE, "ratio",
        "answered within the threshold / (answered + abandoned), 0-1", _CONTACT,
        "ratio(a[A.WITHIN_SL], a[A.ANSWERED] + a[A.ABANDONED])", samples=_HANDLED,
        label="Service level", fmt="percent", lo=0, hi=1, board=2, dashboard=True, column=3),
    Kpi("aht_seconds", MEAN, "seconds", "average handle time (answered to closed), seconds",
        _CONTACT, "mean_s(a[A.HANDLE_SUM], a[A.CLOSED])", samples=_ANSWERED,
        label="AHT", fmt="duration", lo=0, column=6),
    # --- tickets ------------------------------------------------------------------------------
    Kpi("tickets_opened", COUNT, "", "tickets opened", _TICKET, "a[A.OPENED]",
        label="Opened"),
    Kpi("tickets_resolved", COUNT, "", "tickets resolved", _TICKET, "a[A.RESOLVED]",
        label="Resolved"),
    Kpi("tickets_reopened", COUNT, "", "tickets reopened", _TICKET, "a[A.REOPENED]",
        label="Reopened"),
    Kpi("first_reply_seconds", MEAN, "seconds",
        "mean time from ticket opened to first reply, seconds", _TICKET,
        "mean_s(a[A.FIRST_REPLY_SUM], a[A.FIRST_REPLIES])", samples=("tickets_opened",),
        label="First reply", fmt="duration", lo=0),
    Kpi("resolution_seconds", MEAN, "seconds",
        "mean time from ticket opened to resolved, seconds", _TICKET,
        "mean_s(a[A.RESOLUTION_SUM], a[A.RESOLVED])", samples=("tickets_resolved",),
        label="Resolution", fmt="duration", lo=0),
    Kpi("resolution_p90_seconds", QUANTILE, "seconds",
        "90th percentile ticket resolution time, seconds", _TICKET,
        "quantile(a[A.RES_SK], 0.9)", samples=("tickets_resolved",),
        label="Resolution p90", fmt="duration", lo=0),
    Kpi("fcr_rate", RATE, "ratio",
        "first-contact resolution: resolved with one contact / resolved, 0-1", _TICKET,
        "ratio(a[A.FCR], a[A.RESOLVED])", samples=("tickets_resolved",), label="FCR",
        fmt="percent", lo=0, hi=1, board=5, dashboard=True, column=7),
    # --- surveys ------------------------------------------------------------------------------
    Kpi("surveys_sent", COUNT, "", "surveys sent", _SURVEY, "a[A.SENT]", label="Surveys sent"),
    Kpi("csat_responses", COUNT, "", "csat survey responses", _SURVEY, "a[A.CSAT_N]",
        label="CSAT responses"),
    Kpi("csat", RATE, "ratio", "share of csat scores >= 4, 0-1", _SURVEY,
        "ratio(a[A.CSAT_GOOD], a[A.CSAT_N])", samples=("csat_responses",), label="CSAT",
        fmt="percent", lo=0, hi=1, board=6, dashboard=True, column=8),
    Kpi("nps_responses", COUNT, "", "nps survey responses", _SURVEY, "a[A.NPS_N]",
        label="NPS responses"),
    Kpi("nps", SCORE, "score", "net promoter score, -100..100", _SURVEY,
        "ratio((a[A.NPS_PRO] - a[A.NPS_DET]) * 100.0, a[A.NPS_N])",
        samples=("nps_responses",), label="NPS", fmt="score", lo=-100, hi=100, board=7,
        dashboard=True, column=9),
    Kpi("ces_responses", COUNT, "", "ces survey responses", _SURVEY, "a[A.CES_N]",
        label="CES responses"),
    Kpi("ces", MEAN, "score", "mean customer effort score, 1-7 (7 = very easy)", _SURVEY,
        "ratio(a[A.CES_SUM], a[A.CES_N])", samples=("ces_responses",), label="CES",
        fmt="decimal", lo=1, hi=7, dashboard=True, column=10),
    Kpi("survey_response_rate", RATE, "ratio", "survey responses / surveys sent, 0-1", _SURVEY,
        "ratio(a[A.CSAT_N] + a[A.NPS_N] + a[A.CES_N], a[A.SENT])",
        samples=("surveys_sent",), label="Survey responses", fmt="percent", lo=0, hi=1),
    # --- v2: abandon time, agent states, SLA policies, repeats, cost --------------------------
    Kpi("contacts_short_abandoned", COUNT, "",
        "contacts abandoned before the short-abandon time (not in abandoned)", _CONTACT,
        "a[A.SHORT_ABANDONED]", label="Short abandons"),
    Kpi("abandon_seconds", MEAN, "seconds", "mean wait of the abandoned contacts, seconds",
        _CONTACT, "mean_s(a[A.ABANDON_SUM], a[A.ABANDONED])",
        samples=("contacts_abandoned",), label="Abandon time", fmt="duration", lo=0),
    Kpi("staffed_seconds", SECONDS, "seconds", "time agents were logged in, seconds",
        _AGENT_TIME, "a[A.STAFFED_US] / US", label="Staffed", fmt="duration", lo=0, ticks=True),
    Kpi("available_seconds", SECONDS, "seconds", "time agents were available, seconds",
        _AGENT_TIME, "a[A.AVAILABLE_US] / US", label="Available", fmt="duration", lo=0, ticks=True),
    Kpi("busy_seconds", SECONDS, "seconds", "time agents were on a contact, seconds",
        _AGENT_TIME, "a[A.BUSY_US] / US", label="On contact", fmt="duration", lo=0, ticks=True),
    Kpi("wrap_up_seconds", SECONDS, "seconds", "time agents were in after-contact work, seconds",
        _AGENT_TIME, "a[A.WRAP_UP_US] / US", label="Wrap-up", fmt="duration", lo=0, ticks=True),
    Kpi("paused_seconds", SECONDS, "seconds", "time agents were paused (breaks), seconds",
        _AGENT_TIME, "a[A.PAUSED_US] / US", label="Paused", fmt="duration", lo=0, ticks=True),
    Kpi("occupancy", RATE, "ratio", "(busy + wrap-up) / (available + busy + wrap-up), 0-1",
        _AGENT_TIME,
        "ratio(a[A.BUSY_US] + a[A.WRAP_UP_US],"
        " a[A.AVAILABLE_US] + a[A.BUSY_US] + a[A.WRAP_UP_US])",
        label="Occupancy", fmt="percent", lo=0, hi=1, dashboard=True, ticks=True),
    Kpi("first_reply_sla_rate", RATE, "ratio",
        "first replies within their SLA policy's target / first replies with a target, 0-1",
        _TICKET, "ratio(a[A.FR_SLA_OK], a[A.FR_SLA_N])",
        samples=("tickets_opened",), label="First reply in SLA", fmt="percent", lo=0, hi=1),
    Kpi("resolution_sla_rate", RATE, "ratio",
        "resolutions within their SLA policy's target / resolutions with a target, 0-1",
        _TICKET, "ratio(a[A.RES_SLA_OK], a[A.RES_SLA_N])",
        samples=("tickets_resolved",), label="Resolution in SLA", fmt="percent", lo=0, hi=1),
    Kpi("repeat_contacts", COUNT, "",
        "contacts whose customer had another contact within the repeat window before", _CONTACT,
        "a[A.REPEATS]", label="Repeat contacts"),
    Kpi("repeat_contact_rate", RATE, "ratio",
        "repeat contacts / contacts offered with a customer, 0-1", _CONTACT,
        "ratio(a[A.REPEATS], a[A.OFFERED_CUST])", samples=("contacts_offered",),
        label="Repeat rate", fmt="percent", lo=0, hi=1),
    Kpi("cost_per_contact", MEAN, "currency",
        "staffed hours x agent hourly cost / contacts closed (currency units)", _COST, "cost(a, c)",
        samples=("contacts_answered",), label="Cost per contact", fmt="money", lo=0, ticks=True),
    # --- live (the now row) ---------------------------------------------------------------------
    Kpi("contacts_waiting", LIVE, "", "contacts offered and not yet answered or abandoned (now)",
        _LIVE_CONTACT, "a.waiting", row=NOW, label="Waiting", board=0),
    Kpi("longest_wait_seconds", LIVE, "seconds",
        "wait of the oldest waiting contact, seconds (0 when none)", _LIVE_CONTACT,
        "a.longest_wait", row=NOW, label="Longest wait", fmt="duration", lo=0, board=1, ticks=True),
    Kpi("open_tickets", LIVE, "", "tickets opened or reopened and not resolved (now)",
        _LIVE_TICKET, "a.open_tickets", row=NOW, label="Open tickets"),
    Kpi("agents_logged_in", LIVE, "", "agents logged in (any state but offline), now",
        _LIVE_AGENTS, "a.agents[0]", row=NOW, label="Logged in", board=8),
    Kpi("agents_available", LIVE, "", "agents available now", _LIVE_AGENTS,
        "a.agents[1]", row=NOW, label="Available", board=9),
    Kpi("agents_busy", LIVE, "", "agents on a contact now", _LIVE_AGENTS,
        "a.agents[2]", row=NOW, label="On contact", board=10),
    Kpi("agents_wrap_up", LIVE, "", "agents in after-contact work now", _LIVE_AGENTS,
        "a.agents[3]", row=NOW, label="Wrap-up", board=11),
    Kpi("agents_paused", LIVE, "", "agents paused now", _LIVE_AGENTS,
        "a.agents[4]", row=NOW, label="Paused", board=12),
    Kpi("state_seconds", LIVE, "seconds", "time the agent has been in its current state, seconds",
        frozenset({AGENT}), "a.state_seconds", row=NOW, label="In state",
        fmt="duration", lo=0, ticks=True),
    Kpi("tickets_sla_breached", LIVE, "", "open tickets past a running SLA target, now",
        _LIVE_TICKET, "a.sla_breached", row=NOW, label="SLA breached", board=13),
    Kpi("tickets_sla_at_risk", LIVE, "",
        "open tickets not breached but past the at-risk share of a running SLA target, now",
        _LIVE_TICKET, "a.sla_at_risk", row=NOW, label="SLA at risk", board=14),
)

_NAMES.update(A=A, US=US, ratio=ratio, mean_s=mean_s, quantile=quantile, cost=cost)
BY_NAME: Final[Mapping[str, Kpi]] = {k.name: k for k in CATALOGUE}
#: names of the bucketed KPIs, in row order
BUCKETED_NAMES: Final = tuple(k.name for k in CATALOGUE if k.row == BUCKETED)
#: KPIs whose value moves with the clock between events
TICKING: Final = frozenset(k.name for k in CATALOGUE if k.ticks)
#: names of the live KPIs (the now row), in row order
LIVE_NAMES: Final = tuple(k.name for k in CATALOGUE if k.row == NOW)
_BUCKETED: Final = tuple(k for k in CATALOGUE if k.row == BUCKETED)
_LIVE: Final = tuple(k for k in CATALOGUE if k.row == NOW)


def scope_kind(scope: str) -> str:
    """``"queue:billing"`` -> ``"queue"``; ``"all"`` -> ``"all"`` (agent ids may hold colons)."""
    kind, sep, _ = scope.partition(":")
    return kind if sep else scope


_NO_CONTEXT = Context()


def _row_function(kpis: tuple[Kpi, ...], kind: str) -> Value:
    """One function computing a whole row of a scope kind: the catalogue's formulas
    inlined into one dict display (a snapshot of a large center makes thousands of rows
    a second; one call per row instead of one per KPI), ``None`` where a KPI does not
    apply."""
    items = ", ".join(
        f"{k.name!r}: ({k.expr})" if kind in k.scopes else f"{k.name!r}: None" for k in kpis
    )
    fn: Value = eval(f"lambda a, c: {{{items}}}", _NAMES)  # noqa: S307 - our catalogue
    return fn


_BUCKETED_ROW: Final = {kind: _row_function(_BUCKETED, kind) for kind in SCOPE_KINDS}
_LIVE_ROW: Final = {kind: _row_function(_LIVE, kind) for kind in SCOPE_KINDS}


def bucketed_row(agg: A.Agg, kind: str, ctx: Context = _NO_CONTEXT) -> dict[str, Any]:
    """Every bucketed KPI of one window and scope; ``null`` where a KPI does not apply."""
    fn = _BUCKETED_ROW.get(kind) or _row_function(_BUCKETED, kind)
    out: dict[str, Any] = fn(agg, ctx)
    return out


def live_row(state: Any, kind: str, ctx: Context = _NO_CONTEXT) -> dict[str, Any]:
    """Every live KPI of one scope's merged live state (see :mod:`tables.live`)."""
    fn = _LIVE_ROW.get(kind) or _row_function(_LIVE, kind)
    out: dict[str, Any] = fn(state, ctx)
    return out


def samples(name: str) -> tuple[str, ...]:
    kpi = BY_NAME.get(name)
    return kpi.samples if kpi is not None else ()


def columns() -> list[Kpi]:
    """The columns of the table renderer, left to right."""
    return sorted((k for k in CATALOGUE if k.column is not None), key=lambda k: k.column or 0)


def board() -> list[Kpi]:
    """The wallboard's queue tiles, left to right."""
    return sorted((k for k in CATALOGUE if k.board is not None), key=lambda k: k.board or 0)
