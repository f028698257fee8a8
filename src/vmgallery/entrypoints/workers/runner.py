"""Worker threads: claim jobs from the metadata database with a lease and run them.

They run inside `vmgallery serve` by default and alone in `vmgallery worker`; any number of them, in any number
of processes on any hosts sharing the database, cooperate through the leases alone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from ...app import gc
from ...app.operations import JobKinds, OperationWaiter, run_job
from ...app.ports import JobRow, Metadata

log = logging.getLogger("vmgallery.worker")


class WorkerPool:
    def __init__(
        self,
        db: Metadata,
        waiter: OperationWaiter,
        clock: Callable[[], float],
        *,
        threads: int = 1,
        lease_seconds: float = 60.0,
        idle_poll_seconds: float = 0.5,
        kinds: JobKinds | None = None,
        gc_interval_seconds: float = 0,
    ):
        self.db = db
        self.gc_interval = gc_interval_seconds
        self.kinds = kinds or JobKinds()
        self.waiter = waiter
        self.clock = clock
        self.threads = threads
        self.lease = lease_seconds
        # An idle worker looks for ready jobs this often, so a collection runs close to its interval when that is
        # shorter.
        self.idle_poll = min(idle_poll_seconds, gc_interval_seconds) if gc_interval_seconds > 0 else idle_poll_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.owner_prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def reclaim_dead_local_leases(self) -> int:
        """Requeue jobs leased by processes on this host that no longer exist (killed), instead of waiting for
        their leases to run out. Leases of other hosts are left to expire: we cannot see their processes."""
        host = socket.gethostname()
        reclaimed = 0
        with self.db.write() as tx:
            for job_id, owner in tx.running_jobs_owned_by(f"{host}:"):
                pid = int(owner.split(":")[1])
                if not _alive(pid):
                    tx.retry_job(job_id, not_before=0)
                    reclaimed += 1
        if reclaimed:
            log.info("requeued jobs of dead local workers", extra={"jobs": reclaimed})
        return reclaimed

    def start(self) -> None:
        self.reclaim_dead_local_leases()
        if self.gc_interval > 0 and gc.JOB_KIND in self.kinds.background:
            # Each collection queues the next; this starts the chain in a new deployment (or one whose GC job ended).
            with self.db.write() as tx:
                gc.schedule(tx, self.clock(), self.gc_interval)
        for i in range(self.threads):
            t = threading.Thread(target=self._loop, args=(f"{self.owner_prefix}:{i}",), name=f"worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("workers started", extra={"threads": self.threads, "owner": self.owner_prefix})

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the job at hand, take no new one (graceful shutdown)."""
        self._stop.set()
        self.waiter.kick()
        for t in self._threads:
            t.join(timeout)
        log.info("workers stopped")

    def run_operation(self, operation_id: str) -> None:
        """Run one operation's queued job in the calling thread (a request finishing its own quick work), unless a
        worker already took it. A crash midway leaves the job leased; it is requeued like any other."""
        owner = f"{self.owner_prefix}:inline:{threading.get_ident()}"
        with self.db.write() as tx:
            job = tx.claim_operation_job(operation_id, owner, self.clock(), self.lease)
        if job is not None:
            self._run(job, owner)

    def run_pending(self, owner: str | None = None) -> int:
        """Run jobs until none is ready; returns how many ran."""
        owner = owner or f"{self.owner_prefix}:sync"
        ran = 0
        while not self._stop.is_set():
            with self.db.write() as tx:
                job = tx.claim_job(owner, self.clock(), self.lease)
            if job is None:
                return ran
            self._run(job, owner)
            ran += 1
        return ran

    def _run(self, job: JobRow, owner: str) -> None:
        run_job(self.db, job, owner, self.clock, kinds=self.kinds, lease_seconds=self.lease)
        self.waiter.finished()

    def _loop(self, owner: str) -> None:
        while not self._stop.is_set():
            try:
                if self.run_pending(owner) == 0:
                    self.waiter.wait_for_kick(self.idle_poll)
            except Exception:
                log.exception("worker loop error; retrying")
                self._stop.wait(1.0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
