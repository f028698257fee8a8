"""Microsoft.Insights' activity log at ARM's path, as azure-mgmt-monitor's `activity_logs.list` and
`az monitor activity-log list` read it, and the one hook that records a write (`record_write`), called by the request
pipeline once a write's response is decided."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ...app.activity import ActivityLog
from ...domain.activity import WRITE_METHODS
from ...domain.apiversions import check_api_version
from ...domain.principals import Principal

log = logging.getLogger("vmgallery.activity")

API_VERSIONS = ("2015-04-01",)
PATH = "/subscriptions/{subscriptionId}/providers/Microsoft.Insights/eventtypes/management/values"


def _operation_id(async_url: str | None) -> str | None:
    """The id of the operation a write started, from its Azure-AsyncOperation URL."""
    if not async_url:
        return None
    return urlsplit(async_url).path.rstrip("/").rsplit("/", 1)[-1] or None


def record_write(
    activity: ActivityLog,
    principal: Principal | None,
    method: str,
    path: str,
    status: int,
    correlation_id: str,
    async_url: str | None,
    arrived: float,
) -> None:
    """Record a write, if the request was one by an authenticated caller (queued: no I/O here). A failure to record
    is logged, never the request's failure: the write has happened."""
    if principal is None or method.upper() not in WRITE_METHODS:
        return
    try:
        activity.record(principal, method, path, status, correlation_id, _operation_id(async_url), arrived)
    except Exception:
        log.exception("activity log: the write was not recorded", extra={"correlation_id": correlation_id})


def register(app: FastAPI, activity: ActivityLog, page_size: int) -> None:
    async def values(request: Request):
        q = request.query_params
        check_api_version(q.get("api-version"), API_VERSIONS, "Microsoft.Insights/eventtypes")
        token = q.get("$skiptoken")  # digits (parsing.py's grammar)
        before = int(token) if token else None
        page = await run_in_threadpool(
            activity.list,
            request.state.principal,
            request.path_params["subscriptionId"],
            q.get("$filter"),
            before,
            page_size,
            q.get("$select"),
        )
        body: dict = {"value": page.value}
        if page.next_seq is not None:
            body["nextLink"] = str(request.url.include_query_params(**{"$skiptoken": str(page.next_seq)}))
        return JSONResponse(body)

    app.add_api_route(PATH, values, methods=["GET"], tags=["Microsoft.Insights"], name="activity log list")
