"""`vmgallery monitor activity-log list`, as `az monitor activity-log list`: the same options (a time window from
--start-time/--end-time/--offset, default the last 6 hours; --resource-group, --resource-id, --namespace,
--correlation-id, --caller; --max-events) and the same request (eventTimestamp range and one `eq` clause in
`$filter`, api-version 2015-04-01), newest events first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

import typer

from .client import CliError
from .options import AzCommand, Endpoint, Output, Query, Subscription, sub_app
from .output import OutputFormat, emit
from .session import connect

app = sub_app("Manage Azure Monitor.")
activity_log = sub_app("Manage activity logs.")
app.add_typer(activity_log, name="activity-log")

API = "2015-04-01"
COLUMNS = (
    ("Time", "eventTimestamp"),
    ("Operation", "operationName.value"),
    ("Status", "status.value"),
    ("Caller", "caller"),
    ("ResourceId", "resourceId"),
)
_OFFSET = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")


def _offset(text: str) -> timedelta:
    """az's `--offset`: `1d2h30m` style, or a bare number of hours."""
    if text.isdigit():
        return timedelta(hours=int(text))
    m = _OFFSET.match(text.strip())
    if m is None or not any(m.groupdict().values()):
        raise CliError(f"--offset '{text}' is not a time offset such as 6h, 1d or 1d12h30m.")
    return timedelta(days=int(m["d"] or 0), hours=int(m["h"] or 0), minutes=int(m["m"] or 0))


def _time(text: str, option: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{option} '{text}' is not an ISO 8601 date and time.") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _stamp(when: datetime) -> str:
    # With its fraction: cut to the second, the window would end before a write made a moment ago.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _window(start: str | None, end: str | None, offset: str) -> tuple[datetime, datetime]:
    """az's rules: start and end given; one of them and the offset; or the offset back from now."""
    span = _offset(offset)
    if start and end:
        return _time(start, "--start-time"), _time(end, "--end-time")
    if start:
        first = _time(start, "--start-time")
        return first, first + span
    last = _time(end, "--end-time") if end else datetime.now(UTC)
    return last - span, last


@activity_log.command("list", cls=AzCommand)
def list_(
    resource_group: Annotated[
        str | None, typer.Option("--resource-group", "-g", help="Name of resource group.")
    ] = None,
    resource_id: Annotated[str | None, typer.Option("--resource-id", help="Id of the resource.")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", help="Resource provider namespace.")] = None,
    correlation_id: Annotated[str | None, typer.Option("--correlation-id", help="Correlation id to query.")] = None,
    caller: Annotated[str | None, typer.Option("--caller", help="Caller to look for when querying.")] = None,
    start_time: Annotated[
        str | None, typer.Option("--start-time", help="Start time of the query, ISO 8601 (e.g. 2026-11-30T12:00Z).")
    ] = None,
    end_time: Annotated[str | None, typer.Option("--end-time", help="End time of the query, ISO 8601.")] = None,
    offset: Annotated[
        str, typer.Option("--offset", help="Time offset of the query range, in ##d##h##m format (default 6h).")
    ] = "6h",
    max_events: Annotated[int, typer.Option("--max-events", help="Maximum number of records to return.")] = 50,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List and query activity log events."""
    given = [
        n
        for n, v in (
            ("--resource-group", resource_group),
            ("--resource-id", resource_id),
            ("--namespace", namespace),
            ("--correlation-id", correlation_id),
        )
        if v
    ]
    with connect(endpoint, subscription) as client:  # its CliErrors become `(Code) message` and exit code 1
        if len(given) > 1:
            raise CliError(f"Use only one of {', '.join(given)}.")
        first, last = _window(start_time, end_time, offset)
        clauses = [f"eventTimestamp ge '{_stamp(first)}'", f"eventTimestamp le '{_stamp(last)}'"]
        for field, value in (
            ("resourceGroupName", resource_group),
            ("resourceId", resource_id),
            ("resourceProvider", namespace),
            ("correlationId", correlation_id),
            ("caller", caller),
        ):
            if value:
                clauses.append(f"{field} eq '{value}'")
        path = (
            f"/subscriptions/{client.subscription}/providers/Microsoft.Insights/eventtypes/management/values"
            f"?api-version={API}&$filter={quote(' and '.join(clauses), safe='')}"
        )
        items: list[dict] = []
        page = client.send("GET", path).json()  # the query in the path: httpx's params would replace it
        while True:
            items.extend(page.get("value") or [])
            if len(items) >= max_events or not page.get("nextLink"):
                break
            page = client.send("GET", page["nextLink"]).json()
        emit(items[:max_events], output, query, COLUMNS)
