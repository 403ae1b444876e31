"""Prometheus metrics (outputs.metrics) from real snapshots, on a fresh registry: no stack."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream_app.outputs.metrics import WAIT_BUCKETS, KpiMetrics, split_scope
from tables.engine import Replayer
from tables.kpis import BUCKETED_NAMES as KPI_FIELDS
from tables.kpis import LIVE_NAMES as LIVE_FIELDS
from tables.state import Config

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


def iso(sec: float) -> str:
    return (T0 + dt.timedelta(seconds=sec)).isoformat().replace("+00:00", "Z")


def e(etype: str, sec: float, **fields: Any) -> dict[str, Any]:
    return {"type": etype, "ts": iso(sec), **fields}


_IDS = itertools.count()


def feed(rep: Replayer, *events: dict[str, Any]) -> None:
    for ev in events:
        ev = {"event_id": f"e{next(_IDS)}", **ev}
        assert rep.feed(orjson.dumps(ev)) is None, ev


#: A small center, hand-computed below: two queues, three channels, two agents,
#: a waiting contact and an open ticket at the end (clock = 10:11:40).
CENTER = [
    e("contact_offered", 0, contact_id="c1", queue="billing", channel="voice"),
    e("contact_answered", 12, contact_id="c1", agent_id="ann"),
    e("contact_offered", 30, contact_id="c2", queue="billing", channel="chat"),
    e("contact_offered", 40, contact_id="c3", queue="tech", channel="voice"),
    e("ticket_opened", 50, ticket_id="t1", queue="billing", channel="email"),
    e("contact_answered", 60, contact_id="c2", agent_id="bob"),
    e("ticket_opened", 60, ticket_id="t2", queue="tech", channel="email"),
    e("contact_abandoned", 100, contact_id="c3"),
    e("contact_closed", 160, contact_id="c2"),
    e("ticket_replied", 170, ticket_id="t1", agent_id="ann"),
    e("survey_sent", 200, survey_id="s1", kind="csat", queue="billing", channel="voice",
      agent_id="ann"),
    e("survey_sent", 210, survey_id="s3", kind="ces", queue="tech", channel="chat"),
    e("contact_closed", 312, contact_id="c1"),
    e("survey_response", 400, survey_id="s1", kind="csat", score=5, queue="billing",
      channel="voice", agent_id="ann"),
    e("contact_offered", 600, contact_id="c4", queue="tech", channel="voice"),
    e("ticket_resolved", 650, ticket_id="t1", contacts=1, agent_id="ann"),
    e("survey_response", 700, survey_id="s2", kind="nps", score=6, queue="tech",
      channel="voice"),
]


@pytest.fixture(scope="module")
def center() -> dict[str, Any]:
    rep = Replayer(Config())
    feed(rep, *CENTER)
    return rep.snapshot()


def fresh(agent_series: bool = True, **kw: Any) -> tuple[CollectorRegistry, KpiMetrics]:
    reg = CollectorRegistry(auto_describe=True)
    return reg, KpiMetrics(reg, agent_series=agent_series, **kw)


def kpi(reg: CollectorRegistry, name: str, window: str, scope: str) -> float | None:
    scope_type, part = split_scope(scope)
    return reg.get_sample_value(f"kpi_{name}",
                                {"window": window, "scope_type": scope_type, "scope": part})


def live(reg: CollectorRegistry, name: str, scope: str) -> float | None:
    scope_type, part = split_scope(scope)
    return reg.get_sample_value(f"kpi_{name}", {"scope_type": scope_type, "scope": part})


# --- the snapshot gauges ---------------------------------------------------------------------
def test_every_row_value_is_a_sample_and_every_null_is_none(center: dict[str, Any]) -> None:
    reg, m = fresh()
    m.update(center)
    checked = nulls = 0
    for row in center["rows"]:
        fields = LIVE_FIELDS if row["window"] == "now" else KPI_FIELDS
        for f in fields:
            got = (live(reg, f, row["scope"]) if row["window"] == "now"
                   else kpi(reg, f, row["window"], row["scope"]))
            if row[f] is None:
                assert got is None, (row["scope"], row["window"], f)
                nulls += 1
            else:
                assert got == float(row[f]), (row["scope"], row["window"], f, got)
                checked += 1
    assert checked > 300 and nulls > 20  # the center really has both


def test_hand_checked_values(center: dict[str, Any]) -> None:
    reg, m = fresh()
    m.update(center)
    # all, 15m: waits 12 s and 30 s, one abandoned; handle 300 s and 100 s.
    assert kpi(reg, "contacts_offered", "15m", "all") == 4
    assert kpi(reg, "asa_seconds", "15m", "all") == 21
    assert kpi(reg, "service_level", "15m", "all") == 1 / 3
    assert kpi(reg, "abandonment_rate", "15m", "all") == 1 / 3
    assert kpi(reg, "aht_seconds", "15m", "all") == 200
    assert kpi(reg, "first_reply_seconds", "15m", "all") == 120
    assert kpi(reg, "resolution_seconds", "15m", "all") == 600
    assert kpi(reg, "fcr_rate", "15m", "all") == 1
    assert kpi(reg, "csat", "15m", "all") == 1
    assert kpi(reg, "nps", "15m", "all") == -100
    assert kpi(reg, "survey_response_rate", "15m", "all") == 1
    assert kpi(reg, "ces", "15m", "all") is None  # sent, never answered
    # 5m = 10:07:00-10:11:59: only c4 offered, t1 resolved and the nps response.
    assert kpi(reg, "contacts_offered", "5m", "all") == 1
    assert kpi(reg, "contacts_answered", "5m", "all") == 0
    assert kpi(reg, "asa_seconds", "5m", "all") is None
    assert kpi(reg, "tickets_resolved", "5m", "all") == 1
    # queues, channels, agents
    assert kpi(reg, "service_level", "1h", "queue:billing") == 0.5
    assert kpi(reg, "asa_seconds", "1h", "queue:tech") is None
    assert kpi(reg, "service_level", "1h", "queue:tech") == 0
    assert kpi(reg, "abandonment_rate", "24h", "queue:tech") == 1
    assert kpi(reg, "contacts_offered", "24h", "channel:voice") == 3
    assert kpi(reg, "asa_seconds", "24h", "agent:ann") == 12
    assert kpi(reg, "service_level", "24h", "agent:ann") == 1
    assert kpi(reg, "aht_seconds", "24h", "agent:bob") == 100
    assert kpi(reg, "nps", "24h", "agent:ann") is None
    # live state at 10:11:40: c4 waits since 10:10:00, t2 is open
    assert live(reg, "contacts_waiting", "all") == 1
    assert live(reg, "longest_wait_seconds", "queue:tech") == 100
    assert live(reg, "longest_wait_seconds", "queue:billing") == 0
    assert live(reg, "open_tickets", "channel:email") == 1
    assert reg.get_sample_value("kpi_snapshot_timestamp_seconds") == (
        T0 + dt.timedelta(seconds=700)).timestamp()


def test_rejected_and_duplicates_of_the_snapshot() -> None:
    rep = Replayer(Config())
    sent = orjson.dumps({"event_id": "s9", **e("survey_sent", 0, survey_id="s9", kind="nps",
                                               queue="q", channel="chat")})
    verdicts = [rep.feed(raw) for raw in (
        sent, sent, b"[1]", b"{",
        orjson.dumps({"event_id": "x", "type": "nope", "ts": iso(5)}))]
    assert verdicts == [None, "duplicate", "invalid_json", "invalid_json", "unknown_type"]
    reg, m = fresh()
    m.update(rep.snapshot())
    assert reg.get_sample_value("kpi_rejected", {"reason": "invalid_json"}) == 2
    assert reg.get_sample_value("kpi_rejected", {"reason": "unknown_type"}) == 1
    assert reg.get_sample_value("kpi_rejected", {"reason": "schema"}) is None
    assert reg.get_sample_value("kpi_duplicates") == 1


def test_nothing_before_the_first_publish_and_publish_time() -> None:
    reg, m = fresh()
    assert reg.get_sample_value("kpi_snapshot_timestamp_seconds") is None
    assert reg.get_sample_value("kpi_last_publish_timestamp_seconds") is None
    m.update({"as_of": iso(0), "rows": [], "rejected": {}, "duplicates": 0}, now=1234.5)
    assert reg.get_sample_value("kpi_last_publish_timestamp_seconds") == 1234.5
    assert reg.get_sample_value("kpi_duplicates") == 0


def test_null_drops_a_sample_and_a_gone_scope_drops_its_series() -> None:
    rep = Replayer(Config())
    feed(rep,
         {"type": "contact_offered", "ts": iso(0), "contact_id": "c1", "queue": "old",
          "channel": "voice"},
         {"type": "contact_answered", "ts": iso(10), "contact_id": "c1", "agent_id": "x:y"})
    reg, m = fresh()
    m.update(rep.snapshot())
    assert kpi(reg, "asa_seconds", "5m", "queue:old") == 10
    assert kpi(reg, "asa_seconds", "5m", "agent:x:y") == 10  # split at the first colon only
    assert kpi(reg, "service_level", "24h", "channel:voice") == 1

    # Ten minutes later the answer is out of the 5m window: the count is a real 0,
    # the mean has no denominator and its sample goes; the 24h window keeps it.
    feed(rep, {"type": "contact_offered", "ts": iso(600), "contact_id": "c2", "queue": "new",
               "channel": "chat"})
    m.update(rep.snapshot())
    assert kpi(reg, "contacts_answered", "5m", "queue:old") == 0
    assert kpi(reg, "asa_seconds", "5m", "queue:old") is None
    assert kpi(reg, "asa_seconds", "24h", "queue:old") == 10
    assert live(reg, "contacts_waiting", "queue:new") == 1

    # A day later nothing of queue "old" is in any window: every series of it goes.
    feed(rep, {"type": "contact_answered", "ts": iso(25 * 3600), "contact_id": "c2",
               "agent_id": "a2"})
    m.update(rep.snapshot())
    text = generate_latest(reg).decode()
    assert 'scope="old"' not in text and 'scope="voice"' not in text
    assert 'scope="x:y"' not in text
    assert kpi(reg, "contacts_answered", "5m", "queue:new") == 1
    assert live(reg, "contacts_waiting", "queue:new") == 0  # still in the snapshot's now rows


def test_agent_series_switch(center: dict[str, Any]) -> None:
    reg, m = fresh(agent_series=False)
    m.update(center)
    text = generate_latest(reg).decode()
    assert 'scope_type="agent"' not in text
    assert kpi(reg, "asa_seconds", "15m", "queue:billing") == 21
    reg2, m2 = fresh(agent_series=True)
    m2.update(center)
    assert 'scope_type="agent"' in generate_latest(reg2).decode()


def test_exposition_text_round_trips_exactly(center: dict[str, Any]) -> None:
    reg, m = fresh()
    m.update(center)
    samples = {}
    for fam in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in fam.samples:
            if "window" in s.labels:
                samples[(s.name, s.labels["window"], s.labels["scope_type"],
                         s.labels["scope"])] = s.value
    row = next(r for r in center["rows"] if r["scope"] == "all" and r["window"] == "1h")
    for f in KPI_FIELDS:
        got = samples.get((f"kpi_{f}", "1h", "all", "all"))
        assert got == (None if row[f] is None else float(row[f])), f


def test_names_are_registered_once_per_registry() -> None:
    reg, _ = fresh()
    with pytest.raises(ValueError, match="Duplicated"):
        KpiMetrics(reg)


# --- processing metrics ----------------------------------------------------------------------
def test_wait_histogram_buckets_around_the_threshold() -> None:
    reg, m = fresh()
    assert 20.0 in WAIT_BUCKETS and WAIT_BUCKETS[-1] == 1800.0
    m.observe_waits("billing", "voice", [5.0, 19.9, 20.0, 20.1, 45.0, 4000.0])
    m.observe_waits("billing", "voice", [1.0])
    m.observe_waits("tech", "chat", [30.0])
    lb = {"queue": "billing", "channel": "voice"}

    def bucket(le: str, labels: dict[str, str] = lb) -> float | None:
        return reg.get_sample_value("kpi_contact_wait_seconds_bucket", {**labels, "le": le})

    assert bucket("1.0") == 1
    assert bucket("5.0") == 2
    assert bucket("17.0") == 2
    assert bucket("20.0") == 4  # le is <=: exactly the contract's "wait <= threshold"
    assert bucket("22.0") == 5
    assert bucket("1800.0") == 6
    assert bucket("+Inf") == 7
    assert reg.get_sample_value("kpi_contact_wait_seconds_count", lb) == 7
    assert math.isclose(reg.get_sample_value("kpi_contact_wait_seconds_sum", lb) or 0,
                        5 + 19.9 + 20 + 20.1 + 45 + 4000 + 1)
    assert bucket("30.0", {"queue": "tech", "channel": "chat"}) == 1


def test_other_threshold_becomes_a_bucket_bound() -> None:
    reg, m = fresh(sl_threshold_seconds=27)
    m.observe_waits("q", "voice", [26.0, 27.0, 28.0])
    assert reg.get_sample_value("kpi_contact_wait_seconds_bucket",
                                {"queue": "q", "channel": "voice", "le": "27.0"}) == 2


def test_counters_add_deltas() -> None:
    reg, m = fresh()
    m.events_processed({"contact_offered": 3, "ticket_opened": 1})
    m.events_processed({"contact_offered": 2, "survey_sent": 0})
    m.rejected({"schema": 2})
    m.rejected({"schema": 1, "too_late": 4})
    m.duplicates(2)
    m.duplicates(0)
    m.duplicates(1)
    get = reg.get_sample_value
    assert get("kpi_events_processed_total", {"type": "contact_offered"}) == 5
    assert get("kpi_events_processed_total", {"type": "ticket_opened"}) == 1
    assert get("kpi_events_processed_total", {"type": "survey_sent"}) is None
    assert get("kpi_events_rejected_total", {"reason": "schema"}) == 3
    assert get("kpi_events_rejected_total", {"reason": "too_late"}) == 4
    assert get("kpi_events_duplicate_total") == 3


def test_totals_become_deltas() -> None:
    reg, m = fresh()
    m.processor_totals({"contact_offered": 3}, {"schema": 1}, 1)
    m.processor_totals({"contact_offered": 7, "ticket_opened": 2}, {"schema": 1}, 4)
    get = reg.get_sample_value
    assert get("kpi_events_processed_total", {"type": "contact_offered"}) == 7
    assert get("kpi_events_processed_total", {"type": "ticket_opened"}) == 2
    assert get("kpi_events_rejected_total", {"reason": "schema"}) == 1
    assert get("kpi_events_duplicate_total") == 4


def test_publish_latency_and_consumer_lag() -> None:
    reg, m = fresh()
    for s in (0.3, 0.8, 4.0, -1.0):  # a negative (clock skew) counts as 0
        m.publish_latency(s)
    get = reg.get_sample_value
    assert get("kpi_event_to_publish_seconds_bucket", {"le": "0.5"}) == 2
    assert get("kpi_event_to_publish_seconds_bucket", {"le": "1.0"}) == 3
    assert get("kpi_event_to_publish_seconds_count") == 4
    m.consumer_lag({("contact-events", 0): 12, ("contact-events", 1): 0})
    assert get("kpi_consumer_lag", {"topic": "contact-events", "partition": "0"}) == 12
    assert get("kpi_consumer_lag", {"topic": "contact-events", "partition": "1"}) == 0
    m.consumer_lag({("contact-events", 1): 5})  # partition 0 moved to another worker
    assert get("kpi_consumer_lag", {"topic": "contact-events", "partition": "0"}) is None
    assert get("kpi_consumer_lag", {"topic": "contact-events", "partition": "1"}) == 5
