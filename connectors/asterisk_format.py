"""The queue_log format as Asterisk writes it: verbs, data fields by version, parsing.

Kept apart from the converter because it is reference data (``apps/app_queue.c``'s
``ast_queue_log`` calls across 1.4, 1.8, 13 and 18+), checked line by line against the
source, while the converter is behaviour.
"""

from __future__ import annotations

from connectors.base import as_int

#: verb -> what it means for the contact (the mapping table of docs/connectors.md)
CONTACT_VERBS: dict[str, str] = {
    "ENTERQUEUE": "offered",
    "CONNECT": "answered",
    "ABANDON": "abandoned",
    "EXITWITHTIMEOUT": "abandoned",
    "EXITEMPTY": "abandoned",
    "EXITWITHKEY": "abandoned",
    "WITHDRAW": "abandoned",  # 18+: caller withdrawn through AMI, never served
    "COMPLETECALLER": "closed",
    "COMPLETEAGENT": "closed",
    "TRANSFER": "closed",
    "BLINDTRANSFER": "closed",
    "ATTENDEDTRANSFER": "closed",
}
#: verb -> what it means for the member (agent_state)
AGENT_VERBS: dict[str, str] = {
    "ADDMEMBER": "login",
    "AGENTLOGIN": "agent_login",
    "AGENTCALLBACKLOGIN": "agent_login",
    "REMOVEMEMBER": "remove",
    "AGENTLOGOFF": "logoff",
    "AGENTCALLBACKLOGOFF": "logoff",
    "PAUSE": "pause",
    "PAUSEALL": "pause",
    "UNPAUSE": "unpause",
    "UNPAUSEALL": "unpause",
}
#: verbs read and deliberately not mapped (counted in the summary)
IGNORED_VERBS = frozenset({
    "RINGNOANSWER", "RINGCANCELED", "CONFIGRELOAD", "SYSCOMPAT", "DID", "INFO", "AGENTDUMP",
    "PENALTY", "RINGINUSE", "OUTCALL", "JOINEMPTY", "FULL", "CLOSED", "PAUSEREASON"})
#: where the wait (seconds in queue) sits in an abandon line's data, by verb
WAIT_FIELD = {"ABANDON": 2, "EXITWITHTIMEOUT": 2, "EXITEMPTY": 2, "WITHDRAW": 2,
              "EXITWITHKEY": 3}
#: where (hold time, talk time) sit in an end-of-call line's data; negative = from the end
TIMES_FIELDS = {"COMPLETECALLER": (0, 1), "COMPLETEAGENT": (0, 1), "TRANSFER": (2, 3),
                "BLINDTRANSFER": (2, 3), "ATTENDEDTRANSFER": (-3, -2)}
#: caller ids that identify nobody
ANONYMOUS = frozenset({"", "anonymous", "unknown", "<unknown>", "private", "restricted",
                       "unavailable", "withheld", "none", "null"})
NO_CALL = frozenset({"", "NONE", "REALTIME", "MANAGER", "CLI"})



def parse_line(text: str) -> tuple[float, list[str]] | None:
    """``(epoch, fields)`` or None when the line is not a queue_log line."""
    fields = text.rstrip("\r\n").split("|")
    if len(fields) < 5 or not fields[4].strip():
        return None
    try:
        epoch = float(fields[0].strip())
    except ValueError:
        return None
    if epoch <= 0:
        return None
    return epoch, [f.strip() for f in fields]


def seconds(data: list[str], index: int) -> float | None:
    """A non-negative whole number of seconds at ``data[index]``, else None."""
    if not -len(data) <= index < len(data):
        return None
    value = as_int(data[index])
    return float(value) if value is not None and value >= 0 else None
