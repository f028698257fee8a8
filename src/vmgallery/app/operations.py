"""Finishing operations: the job handlers, and how a request waits for its operation.

A job has two phases. `work` does the slow part (reading a VHD blob, hashing chunks) outside any transaction; it
must be idempotent, because after a crash another worker runs it again. `finish` commits the outcome in one
transaction with the operation's end, so it happens exactly once. If either raises, the operation is marked Failed
and the resource put back as it was: a failed create leaves no resource, a failed update or delete the previous one.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..domain import errors
from ..domain.validate import Body
from .ports import Clock, JobRow, Metadata, OperationRow, Transaction

log = logging.getLogger("vmgallery.operations")


@dataclass
class JobContext:
    """What a handler's slow phase may use: the database and its lease (handlers hold their own adapters)."""

    db: Metadata
    clock: Clock
    owner: str
    job: JobRow
    lease_seconds: float = 60.0
    _last_beat: float = field(default=0.0)

    def heartbeat(self, percent: int | None = None) -> None:
        """Extend the lease (and report progress); raises LeaseLost if another worker took the job over."""
        now = self.clock()
        if percent is None and now - self._last_beat < self.lease_seconds / 4:
            return
        with self.db.write() as tx:
            if not tx.extend_lease(self.job.id, self.owner, now + self.lease_seconds):
                raise LeaseLost(f"job {self.job.id} was taken over by another worker")
            if percent is not None:
                tx.set_operation_percent(self.job.operation_id, percent)
        self._last_beat = now


class LeaseLost(Exception):
    pass


class Handler(Protocol):
    def work(self, ctx: JobContext, op: OperationRow) -> Any: ...

    def finish(self, tx: Transaction, op: OperationRow, result: Any) -> object: ...


def with_state(body: Body, state: str) -> Body:
    """A copy of a resource body in another provisioning state."""
    body = copy.deepcopy(body)
    body.setdefault("properties", {})["provisioningState"] = state
    return body


class Provision:
    """Metadata-only operations: the row already holds the new state; make it final (or remove it)."""

    def __init__(self, clock: Clock):
        self.clock = clock

    def work(self, ctx: JobContext, op: OperationRow) -> None:
        return None

    def finish(self, tx: Transaction, op: OperationRow, result: None) -> None:
        row = tx.get(op.resource_key, for_update=True)
        if op.action == "delete":
            if row is not None:
                for key in _descendants_first(tx, row.key, row.type) + [row.key]:
                    tx.drop_contents(key)
                    tx.drop_replicas(key)
                    tx.delete(key)
            return
        if row is None:
            raise errors.NotFound(f"The resource '{op.resource_id}' disappeared while it was being provisioned.")
        tx.update(row.key, state="Succeeded", body=with_state(row.body, "Succeeded"), now=self.clock())


def _descendants_first(tx: Transaction, key: str, type_: str) -> list[str]:
    """Keys of what a delete takes with it, deepest first. Only a resource group holds anything at delete time."""
    if type_ != "microsoft.resources/resourcegroups":
        return []
    rows = tx.in_group(key)
    return [r.key for r in sorted(rows, key=lambda r: r.key.count("/"), reverse=True)]


MAX_ATTEMPTS = 5
# What a finish returns when its operation goes on after the job (a version waiting for its source region's replicas).
KEEP_RUNNING = object()


class OperationWaiter:
    """Lets a request thread wait for its operation, woken early by in-process workers."""

    def __init__(self, db: Metadata):
        self.db = db
        self._cond = threading.Condition()
        self._kick = threading.Event()

    def kick(self) -> None:
        self._kick.set()

    def wait_for_kick(self, timeout: float) -> None:
        self._kick.wait(timeout)
        self._kick.clear()

    def finished(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait(self, op_id: str, timeout: float) -> OperationRow:
        deadline = time.monotonic() + timeout
        while True:
            with self.db.read() as tx:
                op = tx.get_operation(op_id)
            if op is None:
                raise errors.NotFound(f"Operation '{op_id}' was not found.", "operationId")
            remaining = deadline - time.monotonic()
            if op.status != "InProgress" or remaining <= 0:
                return op
            with self._cond:
                # Operations finished by workers in other processes are seen at the next 50 ms check.
                self._cond.wait(min(remaining, 0.05))


def run_job(
    db: Metadata,
    job: JobRow,
    owner: str,
    clock: Clock,
    handlers: dict[str, Any],
    lease_seconds: float = 60.0,
) -> None:
    """Run one claimed job to its end: Succeeded, or Failed with the resource restored."""
    handler = handlers.get(job.kind)
    if getattr(handler, "operationless", False):
        _run_background(db, job, owner, clock, handler, lease_seconds)
        return
    try:
        if handler is None:
            raise errors.InternalError(f"No worker here knows how to run a '{job.kind}' job.")
        if job.attempts > MAX_ATTEMPTS:
            # Each attempt died without recording an outcome (killed workers, or a failure while failing):
            # end it rather than let leases hand it round for ever.
            raise errors.InternalError(f"The operation was abandoned after {job.attempts - 1} interrupted attempts.")
        with db.read() as tx:
            op = tx.get_operation(job.operation_id)
            mine = tx.owns_job(job.id, owner)
        if not mine:
            return  # our lease expired and another worker took over
        result = (
            handler.work(JobContext(db, clock, owner, job, lease_seconds), op)
            if op is not None and op.status == "InProgress"
            else None
        )
        with db.write() as tx:
            if not tx.owns_job(job.id, owner):
                return
            op = tx.get_operation(job.operation_id)
            if op is not None and op.status == "InProgress":
                if handler.finish(tx, op, result) is not KEEP_RUNNING:
                    tx.finish_operation(op.id, "Succeeded", clock())
            tx.finish_job(job.id, "done")
        log.info("job finished", extra={"job": job.id, "kind": job.kind, "operation": job.operation_id})
    except LeaseLost:
        log.warning("lease lost; another worker continues", extra={"job": job.id})
    except Exception as exc:  # a handler's failure must fail its operation, never the worker
        error = (
            exc
            if isinstance(exc, errors.ArmError)
            else errors.ArmError(f"Internal error while running {job.kind}: {exc}", code="InternalOperationError")
        )
        if not isinstance(exc, errors.ArmError):
            log.exception("job crashed", extra={"job": job.id, "kind": job.kind})
        _fail(db, job, owner, error, clock)


def _run_background(db: Metadata, job: JobRow, owner: str, clock: Clock, handler: Any, lease_seconds: float) -> None:
    """A job with no operation behind it (a replica's copy): commit on success; on failure let the handler record
    it and say when to try again."""
    try:
        result = handler.work(JobContext(db, clock, owner, job, lease_seconds), None)
        with db.write() as tx:
            if tx.owns_job(job.id, owner):
                handler.commit(tx, job, result, clock())
                tx.finish_job(job.id, "done")
    except LeaseLost:
        log.warning("lease lost; another worker continues", extra={"job": job.id})
    except Exception as exc:
        with db.write() as tx:
            if not tx.owns_job(job.id, owner):
                return
            retry_at = handler.failed(tx, job, exc, clock())
            if retry_at is None:
                tx.finish_job(job.id, "failed")
            else:
                tx.retry_job(job.id, retry_at)


def _fail(db: Metadata, job: JobRow, owner: str, error: errors.ArmError, clock: Clock) -> None:
    with db.write() as tx:
        if not tx.owns_job(job.id, owner):
            return
        op = tx.get_operation(job.operation_id)
        if op is not None and op.status == "InProgress":
            if op.action == "create":
                tx.drop_contents(op.resource_key)
                tx.delete(op.resource_key)
            elif op.prior_body is not None and tx.get(op.resource_key) is not None:
                state = op.prior_body.get("properties", {}).get("provisioningState", "Succeeded")
                tx.update(op.resource_key, state=state, body=op.prior_body, now=clock())
            tx.finish_operation(op.id, "Failed", clock(), {"status": error.status, **error.body()})
        tx.finish_job(job.id, "failed")
    log.warning("operation failed", extra={"job": job.id, "operation": job.operation_id, "code": error.code})
