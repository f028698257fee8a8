"""Running jobs: the two kinds a worker knows, and how a request waits for its operation.

An **operation job** finishes an ARM operation (a create, update or delete a client polls). It has two phases.
`work` does the slow part (reading a VHD blob, hashing chunks) outside any transaction; it must be idempotent,
because after a crash another worker runs it again. `finish` commits the outcome in one transaction with the
operation's end, so it happens exactly once. If either raises, the operation is marked Failed and the resource put
back as it was: a failed create leaves no resource, a failed update or delete the previous one.

A **background job** works on a subject no client waits on (a replica's copy, garbage collection): `work`, then
`commit` in one transaction; on failure `failed` records what went wrong. Either says when to run again (a recurring
job, a retry) or that the job is over. It finishes no operation.

Each kind has its own registry (`JobKinds`); a job row is an operation job exactly when it names an operation.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from collections.abc import Iterator, Mapping
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
            if percent is not None and self.job.operation_id is not None:
                tx.set_operation_percent(self.job.operation_id, percent)
        self._last_beat = now

    @contextlib.contextmanager
    def holding_lease(self) -> Iterator[Transaction]:
        """A write transaction that commits only while this worker still holds the job's lease (else LeaseLost):
        a worker that lost its job writes nothing more of it."""
        with self.db.write() as tx:
            if not tx.owns_job(self.job.id, self.owner):
                raise LeaseLost(f"job {self.job.id} was taken over by another worker")
            yield tx


class LeaseLost(Exception):
    pass


class OperationJob(Protocol):
    """Finishes an ARM operation: `finish` returns KEEP_RUNNING when the operation's end is decided elsewhere."""

    def work(self, ctx: JobContext, op: OperationRow) -> Any: ...

    def finish(self, tx: Transaction, op: OperationRow, result: Any) -> Any: ...


class BackgroundJob(Protocol):
    """Works on `job.subject_key` with no operation behind it."""

    def work(self, ctx: JobContext) -> Any: ...

    def commit(self, tx: Transaction, job: JobRow, result: Any, now: float) -> float | None:
        """Record the outcome; when to run again, or None to end the job."""
        ...

    def failed(self, tx: Transaction, job: JobRow, error: Exception, now: float) -> float | None:
        """Record the failure; when to run again, or None to end the job."""
        ...


@dataclass(frozen=True)
class JobKinds:
    """The job kinds a worker runs, by name, one registry per kind of job."""

    operation: Mapping[str, OperationJob] = field(default_factory=dict)
    background: Mapping[str, BackgroundJob] = field(default_factory=dict)


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

    def finish(self, tx: Transaction, op: OperationRow, result: Any) -> None:
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
# What a finish returns when its operation's end is decided elsewhere (a version's create ends when its source region's
# replicas are complete: `replication.settle_version`).
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
    kinds: JobKinds,
    lease_seconds: float = 60.0,
) -> None:
    """Run one claimed job to its end (or to its next try, for a background job)."""
    ctx = JobContext(db, clock, owner, job, lease_seconds)
    if job.operation_id is None:
        _run_background(ctx, kinds.background.get(job.kind))
    else:
        _run_operation(ctx, job.operation_id, kinds.operation.get(job.kind))


def _run_operation(ctx: JobContext, operation_id: str, handler: OperationJob | None) -> None:
    """Succeeded, or Failed with the resource restored."""
    db, job, owner, clock = ctx.db, ctx.job, ctx.owner, ctx.clock
    try:
        if handler is None:
            raise errors.InternalError(f"No worker here knows how to run a '{job.kind}' job.")
        if job.attempts > MAX_ATTEMPTS:
            # Each attempt died without recording an outcome (killed workers, or a failure while failing):
            # end it rather than let leases hand it round for ever.
            raise errors.InternalError(f"The operation was abandoned after {job.attempts - 1} interrupted attempts.")
        with db.read() as tx:
            op = tx.get_operation(operation_id)
            mine = tx.owns_job(job.id, owner)
        if not mine:
            return  # our lease expired and another worker took over
        result = handler.work(ctx, op) if op is not None and op.status == "InProgress" else None
        with db.write() as tx:
            if not tx.owns_job(job.id, owner):
                return
            op = tx.get_operation(operation_id)
            if op is not None and op.status == "InProgress":
                if handler.finish(tx, op, result) is not KEEP_RUNNING:
                    tx.finish_operation(op.id, "Succeeded", clock())
            tx.finish_job(job.id, "done")
        log.info("job finished", extra={"job": job.id, "kind": job.kind, "operation": operation_id})
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
        _fail(db, job, operation_id, owner, error, clock)


def _run_background(ctx: JobContext, handler: BackgroundJob | None) -> None:
    """Commit on success, or let the handler record the failure; either way the handler says when to run again."""
    db, job, owner, clock = ctx.db, ctx.job, ctx.owner, ctx.clock
    if handler is None:
        log.error("no worker here knows this kind of job", extra={"job": job.id, "kind": job.kind})
        with db.write() as tx:
            if tx.owns_job(job.id, owner):
                tx.finish_job(job.id, "failed")
        return
    try:
        result = handler.work(ctx)
        with db.write() as tx:
            if tx.owns_job(job.id, owner):
                again_at = handler.commit(tx, job, result, clock())
                if again_at is None:
                    tx.finish_job(job.id, "done")
                else:
                    tx.retry_job(job.id, again_at)
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


def _fail(db: Metadata, job: JobRow, operation_id: str, owner: str, error: errors.ArmError, clock: Clock) -> None:
    with db.write() as tx:
        if not tx.owns_job(job.id, owner):
            return
        op = tx.get_operation(operation_id)
        if op is not None and op.status == "InProgress":
            if op.action == "create":
                tx.drop_contents(op.resource_key)
                tx.delete(op.resource_key)
            elif op.prior_body is not None and tx.get(op.resource_key) is not None:
                state = op.prior_body.get("properties", {}).get("provisioningState", "Succeeded")
                tx.update(op.resource_key, state=state, body=op.prior_body, now=clock())
            tx.finish_operation(op.id, "Failed", clock(), {"status": error.status, **error.body()})
        tx.finish_job(job.id, "failed")
    log.warning("operation failed", extra={"job": job.id, "operation": operation_id, "code": error.code})
