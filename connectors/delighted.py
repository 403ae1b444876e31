"""Delighted survey webhooks (``survey_response.created`` / ``.updated``,
https://app.delighted.com/docs/api/webhooks) to ``survey_response``.

Delighted sends ``created`` when the person gives a score and ``updated`` when they add a
comment (or change the score). The contract counts every ``survey_response``, so both
map to one event id per Delighted response: the engine keeps the first and drops the
other as a duplicate - a response is counted once, with the score it was given first.

Queue, channel and agent are not Delighted concepts: they come from the person's
properties (``person_properties``), under names set in ``[delighted]`` of the config
(defaults ``queue``, ``channel``, ``agent``), with ``default_queue`` /
``default_channel`` when absent. Delighted documents no request signature, so the
gateway authenticates it with the token in the webhook URL (docs/connectors.md).
"""

from __future__ import annotations

from typing import Any

from connectors.base import CHANNELS, Outcome, as_int, clean_id, event, make_id, parse_time, pick
from connectors.mapping import Mapper

#: Delighted survey types -> contract kinds (smileys are a 1-5 CSAT scale)
KINDS = {"nps": "nps", "csat": "csat", "smileys": "csat", "ces": "ces", "ces7": "ces"}
RANGES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


class DelightedMapper(Mapper):
    source = "delighted"
    tag = "dl"

    def map(self, payload: dict[str, Any], now: float | None) -> Outcome:
        kind = payload.get("event_type")
        if kind not in ("survey_response.created", "survey_response.updated"):
            if isinstance(kind, str):
                return Outcome.ignore(f"event:{kind}")
            return Outcome.fail("no_event_type")
        data = payload.get("event_data")
        if not isinstance(data, dict):
            return Outcome.fail("no_event_data")
        response = clean_id(data.get("id"))
        survey_type = str(data.get("survey_type") or "nps").lower()
        contract_kind = KINDS.get(survey_type)
        score = as_int(data.get("score"))
        if response is None or score is None:
            return Outcome.fail("no_response_or_score")
        if contract_kind is None:
            return Outcome.fail(f"unknown_survey_type:{survey_type}")
        low, high = RANGES[contract_kind]
        if not low <= score <= high:
            return Outcome.fail("score_out_of_range")
        ts = parse_time(data.get("created_at")) or parse_time(data.get("updated_at")) or now
        if ts is None:
            return Outcome.fail("no_timestamp")
        conf = self.options.delighted
        props = data.get("person_properties")
        props = props if isinstance(props, dict) else {}
        queue = self.queue(props.get(conf["queue_property"])) or clean_id(conf["default_queue"])
        raw_channel = props.get(conf["channel_property"])
        channel = (self.channel(raw_channel, {c: c for c in CHANNELS})
                   if raw_channel else None) or conf["default_channel"]
        if channel not in CHANNELS:
            return Outcome.fail(f"unknown_channel:{raw_channel}")
        survey = f"delighted-{response}"
        return Outcome([event(
            "survey_response", make_id(self.tag, survey), ts, survey_id=survey,
            kind=contract_kind, score=score, queue=queue, channel=channel,
            agent_id=self.agent(props.get(conf["agent_property"])),
            customer_id=clean_id(pick(data, "person", "id")))])
