"""The activity log's rules: which requests are writes worth recording and what they are called (Azure's
operation names), and the `$filter` grammar of Microsoft.Insights' eventtypes/management/values as az and
azure-mgmt-monitor send it. Pure: no clock, no storage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from .errors import InvalidParameter

WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})
RESOURCE_GROUPS = "Microsoft.Resources/subscriptions/resourceGroups"
# POSTs that change nothing (a vmgallery extension answering what a PATCH would do) are not writes.
NOT_WRITES = frozenset({"replicationplan"})


@dataclass(frozen=True)
class Write:
    """One write request as the activity log names it."""

    subscription: str
    resource_group: str | None
    resource_id: str  # the resource the write acts on (an action's path without the action)
    provider: str
    operation: str  # e.g. Microsoft.Compute/galleries/write, Microsoft.Compute/disks/beginGetAccess/action


def describe(method: str, path: str) -> Write | None:
    """The write a request makes, or None: not a write method, or not under a subscription (the identity admin
    API, token endpoints)."""
    method = method.upper()
    if method not in WRITE_METHODS:
        return None
    parts = path.rstrip("/").split("/")
    if len(parts) < 3 or parts[0] != "" or parts[1].lower() != "subscriptions" or not parts[2]:
        return None
    subscription = parts[2]
    group = parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else None
    last = max((i for i, p in enumerate(parts) if p.lower() == "providers"), default=None)
    action: str | None = None
    if last is None:
        if group is None or len(parts) not in (5, 6):
            return None
        if len(parts) == 6:
            action, parts = parts[5], parts[:5]
        provider, rtype = "Microsoft.Resources", RESOURCE_GROUPS
    else:
        provider = parts[last + 1] if len(parts) > last + 1 else ""
        rest = parts[last + 2 :]
        if not provider or not rest:
            return None
        if len(rest) % 2:
            action, rest, parts = rest[-1], rest[:-1], parts[:-1]
            if not rest:
                return None
        rtype = "/".join([provider, *rest[0::2]])
    if action is not None:
        if action.lower() in NOT_WRITES or method != "POST":
            return None
        verb = f"{action}/action"
    else:
        verb = "delete" if method == "DELETE" else "write" if method in ("PUT", "PATCH") else ""
        if not verb:
            return None
    return Write(subscription, group, "/".join(parts), provider, f"{rtype}/{verb}")


# -- $filter -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filter:
    start: float
    end: float
    resource_group: str | None = None
    resource_id: str | None = None
    provider: str | None = None
    correlation_id: str | None = None
    caller: str | None = None


_CLAUSE = re.compile(
    r"^\s*(?P<field>eventTimestamp|eventTimestamp|resourceGroupName|resourceUri|resourceId|resourceProvider|"
    r"correlationId|caller|eventChannels|levels|status)\s+(?P<op>eq|ge|le|gt|lt)\s+'(?P<value>[^']*)'\s*$",
    re.IGNORECASE,
)
_FIELDS = {
    "resourcegroupname": "resource_group",
    "resourceuri": "resource_id",
    "resourceid": "resource_id",
    "resourceprovider": "provider",
    "correlationid": "correlation_id",
    "caller": "caller",
}
_IGNORED = ("eventchannels", "levels", "status")  # az adds eventChannels; every event here is Admin/Informational


def _bad(text: str, why: str) -> InvalidParameter:
    return InvalidParameter(
        f"The $filter '{text}' is not supported: {why}. Use eventTimestamp ge '...' and eventTimestamp le '...', "
        "optionally with resourceGroupName, resourceId, resourceProvider, correlationId or caller eq '...', "
        "joined by 'and'.",
        "$filter",
        code="BadRequest",
    )


def parse_time(value: str) -> float:
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    # Python's parser takes at most 6 fraction digits; Azure's clients may send 7.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError("no time zone")
    return stamp.timestamp()


def parse_filter(text: str | None) -> Filter:
    """The clauses az and the SDK send; `eventTimestamp ge` is required (Azure's rule too), `le` defaults to
    whatever `now` the caller passes in later (here: +inf)."""
    if not text or not text.strip():
        raise _bad(text or "", "the $filter is required")
    start: float | None = None
    end = float("inf")
    found: dict[str, str] = {}
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(clause)
        if m is None:
            raise _bad(text, f"cannot read '{clause.strip()}'")
        field, op, value = m["field"].lower(), m["op"].lower(), m["value"]
        if field == "eventtimestamp":
            try:
                when = parse_time(value)
            except ValueError:
                raise _bad(text, f"'{value}' is not an ISO 8601 time with a time zone") from None
            if op in ("ge", "gt"):
                start = when
            elif op in ("le", "lt"):
                end = when
            else:
                raise _bad(text, "eventTimestamp takes ge and le")
        elif field in _IGNORED:
            continue
        elif op != "eq":
            raise _bad(text, f"{m['field']} takes eq")
        else:
            found[_FIELDS[field]] = value
    if start is None:
        raise _bad(text, "eventTimestamp ge '...' is required")
    if end < start:
        raise _bad(text, "the end time is before the start time")
    return Filter(start, end, **found)
