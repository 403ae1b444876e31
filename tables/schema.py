"""The events of the contract (sections 2-4) as msgspec structs, and the reasons.

Kept apart from :mod:`tables.events` because these classes are built by
msgspec's metaclass at import time and stay plain Python, while the
decoding functions beside them may be compiled (see ``infra/build_native.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

import msgspec

# --- reasons, in the contract's order --------------------------------------------------------
INVALID_JSON: Final = "invalid_json"
#: larger than ``KPI_MAX_MESSAGE_BYTES``: rejected before decoding (not a contract reason:
#: a bound on what one message may cost the worker)
TOO_LARGE: Final = "too_large"
SCHEMA: Final = "schema"
UNKNOWN_TYPE: Final = "unknown_type"
OUT_OF_RANGE: Final = "out_of_range"
TOO_LATE: Final = "too_late"
FUTURE_TS: Final = "future_ts"
UNKNOWN_ENTITY: Final = "unknown_entity"
OUT_OF_ORDER: Final = "out_of_order"
REASONS: Final = (
    INVALID_JSON,
    SCHEMA,
    UNKNOWN_TYPE,
    OUT_OF_RANGE,
    TOO_LATE,
    FUTURE_TS,
    UNKNOWN_ENTITY,
    OUT_OF_ORDER,
    TOO_LARGE,
)
#: the live worker's dead-letter reason for a record whose processing raised (a bug, not the
#: message's fault); never counted in a snapshot, which the contract defines
INTERNAL_ERROR: Final = "internal_error"

CHANNELS: Final = ("voice", "chat", "email", "messaging", "social")
AGENT_STATES: Final = ("available", "busy", "wrap_up", "paused", "offline")
#: at most this many queue names in an agent_state's ``queues``, as sent (repeats included)
MAX_QUEUES: Final = 100
KINDS: Final = ("csat", "nps", "ces")
SCORE_RANGE: Final = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
#: JSON integers beyond 64 bits are a wrong type on both paths (orjson reads them as floats).
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Ts = Annotated[dt.datetime, msgspec.Meta(tz=True)]
Channel = Literal["voice", "chat", "email", "messaging", "social"]
State = Literal["available", "busy", "wrap_up", "paused", "offline"]
Queues = Annotated[list[Id], msgspec.Meta(max_length=100)]
Kind = Literal["csat", "nps", "ces"]

#: Years a timestamp may carry: an epoch clock has no place for earlier ones.
MIN_YEAR: Final = 1970
MAX_YEAR: Final = 9998


class _Event(msgspec.Struct, tag_field="type", gc=False):
    event_id: Id
    ts: Ts


# Contacts -------------------------------------------------------------------------------------
class ContactOffered(_Event, tag="contact_offered"):
    contact_id: Id
    queue: Id
    channel: Channel
    customer_id: Id | None = None


class ContactAnswered(_Event, tag="contact_answered"):
    contact_id: Id
    agent_id: Id


class ContactAbandoned(_Event, tag="contact_abandoned"):
    contact_id: Id


class ContactClosed(_Event, tag="contact_closed"):
    contact_id: Id
    agent_id: Id | None = None


# Tickets --------------------------------------------------------------------------------------
class TicketOpened(_Event, tag="ticket_opened"):
    ticket_id: Id
    queue: Id
    channel: Channel
    customer_id: Id | None = None
    priority: Id | None = None
    product: Id | None = None


class TicketReplied(_Event, tag="ticket_replied"):
    ticket_id: Id
    agent_id: Id


class TicketResolved(_Event, tag="ticket_resolved"):
    ticket_id: Id
    contacts: Int64
    agent_id: Id | None = None


class TicketReopened(_Event, tag="ticket_reopened"):
    ticket_id: Id


# Surveys --------------------------------------------------------------------------------------
class SurveySent(_Event, tag="survey_sent"):
    survey_id: Id
    kind: Kind
    queue: Id
    channel: Channel
    agent_id: Id | None = None
    customer_id: Id | None = None
    contact_id: Id | None = None
    ticket_id: Id | None = None


class SurveyResponse(_Event, tag="survey_response"):
    survey_id: Id
    kind: Kind
    score: Int64
    queue: Id
    channel: Channel
    agent_id: Id | None = None
    customer_id: Id | None = None
    contact_id: Id | None = None
    ticket_id: Id | None = None


# Agents (v2) -----------------------------------------------------------------------------------
class AgentState(_Event, tag="agent_state"):
    agent_id: Id
    state: State
    queues: Queues | None = None
    reason: Id | None = None


Event = (
    ContactOffered
    | ContactAnswered
    | ContactAbandoned
    | ContactClosed
    | TicketOpened
    | TicketReplied
    | TicketResolved
    | TicketReopened
    | SurveySent
    | SurveyResponse
    | AgentState
)
EVENT_TYPES: Final[dict[str, type[_Event]]] = {
    c.__struct_config__.tag: c  # type: ignore[misc]
    for c in (
        ContactOffered,
        ContactAnswered,
        ContactAbandoned,
        ContactClosed,
        TicketOpened,
        TicketReplied,
        TicketResolved,
        TicketReopened,
        SurveySent,
        SurveyResponse,
        AgentState,
    )
}

DECODER: Final = msgspec.json.Decoder(Event)
TS_DECODER: Final = msgspec.json.Decoder(Ts)
