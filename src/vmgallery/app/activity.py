"""The activity log: every write through the ARM API (who, what, where, how it ended, its correlation id, when) and
its listing as Microsoft.Insights' eventtypes/management/values, shaped as azure-mgmt-monitor's `EventData`.

A write is one row, never its body or its headers. `record` only queues it (the request pays no I/O and no hop to
a thread); a flusher thread inserts what is queued in one statement every `FLUSH_SECONDS`, and a list in the same
process flushes first, so a caller always sees its own writes. A crash loses at most the last fraction of a second
of events; `close` flushes what is left at shutdown. A write that
became a long-running operation is recorded as Started; its end (Succeeded, Failed, Canceled) is read from its
operation row when the log is listed, so the worker that finishes it writes nothing more. A list shows only the
events on scopes the caller may read (`Authorization.visible` with Microsoft.Insights' read action). Rows older than
the retention are pruned when a flush finds it time, at most once per `PRUNE_EVERY_SECONDS` per process.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..domain import activity as rules
from ..domain.principals import Principal
from ..domain.rbac import scope_key_of
from ..domain.timestamps import arm_time
from .authorization import Authorization
from .ports import Clock

READ_ACTION = "Microsoft.Insights/eventtypes/values/read"
log = logging.getLogger("vmgallery.activity")

PRUNE_EVERY_SECONDS = 3600.0
FLUSH_SECONDS = 0.25
FINAL = {"Succeeded": "Succeeded", "Failed": "Failed", "Canceled": "Failed"}


@dataclass(frozen=True)
class EventRow:
    event_id: str
    time: float
    subscription: str
    resource_key: str
    resource_id: str
    resource_group: str | None
    provider: str
    operation: str
    status: str  # Started (an operation is running), Succeeded or Failed
    http_status: int
    caller: str
    caller_id: str
    tenant_id: str
    correlation_id: str
    operation_id: str | None = None
    seq: int = 0


@dataclass(frozen=True)
class OperationEnd:
    status: str
    time: float


class ActivityStore(Protocol):
    def insert_events(self, rows: Sequence[EventRow]) -> None: ...

    def events(
        self, subscription: str, where: rules.Filter, within: frozenset[str] | None, before_seq: int | None, limit: int
    ) -> Sequence[tuple[EventRow, OperationEnd | None]]:
        """Newest first (by `seq`): rows in the time range, or whose operation ended in it."""
        ...

    def prune_events(self, before: float) -> int: ...


@dataclass
class Page:
    value: list[dict[str, Any]]
    next_seq: int | None


def _resource_type(operation: str) -> str:
    return operation.rsplit("/", 2 if operation.endswith("/action") else 1)[0]


def _event(row: EventRow, status: str, time: float, final: bool) -> dict[str, Any]:
    event_id = str(uuid.uuid5(uuid.UUID(row.event_id), "end")) if final else row.event_id
    sub_status = {"Started": "Accepted" if row.operation_id else "", "Failed": str(row.http_status)}.get(status, "")
    op_name = row.operation
    return {
        "authorization": {"action": row.operation, "scope": row.resource_id},
        "caller": row.caller,
        "claims": {},
        "correlationId": row.correlation_id,
        "description": "",
        "eventDataId": event_id,
        "eventName": {"value": "EndRequest" if status != "Started" else "BeginRequest", "localizedValue": ""},
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "id": f"{row.resource_id}/events/{event_id}/ticks/{int(time * 10_000_000) + 621355968000000000}",
        "level": "Informational" if status != "Failed" else "Error",
        "operationId": row.operation_id or row.correlation_id,
        "operationName": {"value": op_name, "localizedValue": op_name},
        "resourceGroupName": row.resource_group,
        "resourceProviderName": {"value": row.provider, "localizedValue": row.provider},
        "resourceType": {"value": _resource_type(op_name), "localizedValue": _resource_type(op_name)},
        "resourceId": row.resource_id,
        "status": {"value": status, "localizedValue": status},
        "subStatus": {"value": sub_status, "localizedValue": sub_status},
        "eventTimestamp": arm_time(time),
        "submissionTimestamp": arm_time(time),
        "subscriptionId": row.subscription,
        "tenantId": row.tenant_id,
        "properties": {"statusCode": str(row.http_status), "callerObjectId": row.caller_id},
        "channels": "Operation",
    }


class ActivityLog:
    def __init__(self, store: ActivityStore, authorization: Authorization | None, clock: Clock, retention_days: float):
        self.store = store
        self.authorization = authorization
        self.clock = clock
        self.retention_seconds = retention_days * 86400
        self._pruned_at = 0.0
        self._queue: list[EventRow] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one flush at a time: rows reach the table in the order recorded
        self._wake = threading.Event()
        self._closed = False
        self._flusher: threading.Thread | None = None

    def record(
        self,
        principal: Principal,
        method: str,
        path: str,
        status: int,
        correlation_id: str,
        operation_id: str | None,
        arrived: float,
    ) -> bool:
        """One write's event (False when the request is no write the log keeps), stamped with the time the request
        arrived (an operation may end before its response is sent). `status` is the response's; `operation_id`
        the long-running operation it started, if any."""
        write = rules.describe(method, path)
        if write is None:
            return False
        if status >= 400:
            outcome = "Failed"
        else:
            outcome = "Started" if operation_id else "Succeeded"
        caller = principal.name or principal.app_id or principal.object_id
        row = EventRow(
            str(uuid.uuid4()),
            arrived,
            write.subscription.lower(),
            scope_key_of(write.resource_id),
            write.resource_id,
            write.resource_group,
            write.provider,
            write.operation,
            outcome,
            status,
            caller,
            principal.object_id,
            principal.tenant_id,
            correlation_id,
            operation_id if status < 400 else None,
        )
        with self._lock:
            self._queue.append(row)
            if self._flusher is None and not self._closed:
                self._flusher = threading.Thread(target=self._flush_loop, name="activity-log", daemon=True)
                self._flusher.start()
        return True

    def _flush_loop(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:
                log.exception("activity log: events not written")

    def flush(self) -> None:
        """Insert what is queued, in one statement; prune if it is time."""
        with self._write_lock:
            with self._lock:
                rows, self._queue = self._queue, []
            if rows:
                self.store.insert_events(rows)
            now = self.clock()
            if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
                self._pruned_at = now
                self.prune(now)

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        with self._lock:
            self._closed = True
            flusher = self._flusher
        self._wake.set()
        if flusher is not None:
            flusher.join()
        self.flush()

    def prune(self, now: float) -> int:
        """Drop the events older than the retention."""
        return self.store.prune_events(now - self.retention_seconds)

    def list(
        self,
        principal: Principal,
        subscription: str,
        filter_text: str | None,
        before_seq: int | None = None,
        limit: int = 200,
        select: str | None = None,
    ) -> Page:
        where = rules.parse_filter(filter_text)
        self.flush()
        within = None
        if self.authorization is not None:
            within = self.authorization.visible(principal, READ_ACTION, f"/subscriptions/{subscription}")
        rows = self.store.events(subscription.lower(), where, within, before_seq, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        value: list[tuple[float, dict[str, Any]]] = []
        for row, end in rows:
            if end is not None and end.status in FINAL and where.start <= end.time <= where.end:
                value.append((end.time, _event(row, FINAL[end.status], end.time, final=True)))
            if where.start <= row.time <= where.end:
                value.append((row.time, _event(row, row.status, row.time, final=False)))
        value.sort(key=lambda item: item[0], reverse=True)
        events = [body for _, body in value]
        if select:
            fields = [f.strip() for f in select.split(",") if f.strip()]
            events = [{f: e[f] for f in fields if f in e} for e in events]
        return Page(events, rows[-1][0].seq if more and rows else None)
