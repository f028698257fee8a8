"""Operations and jobs on the real metadata database: leases, takeover, and failure leaving no half-made resource."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.app.fakes import FakeSubscriptionTenants
from vmgallery.adapters.blobs.regions import RegionStores
from vmgallery.adapters.storage_accounts import StorageAccounts
from vmgallery.app import gc
from vmgallery.app.gc import GarbageCollection
from vmgallery.app.kinds import GALLERY, RESOURCE_GROUP
from vmgallery.app.operations import JobKinds, OperationWaiter, Provision, run_job
from vmgallery.app.resources import Resources
from vmgallery.config import Settings
from vmgallery.domain import errors
from vmgallery.domain.ids import ResourceId
from vmgallery.entrypoints.workers.runner import WorkerPool


@pytest.fixture
def service(db, tmp_path):
    settings = Settings(data_dir=tmp_path, sync_wait_seconds=0)
    stores = RegionStores(tmp_path / "blobs", settings.regions)
    return Resources(
        db, settings, time.time, OperationWaiter(db), stores, StorageAccounts({}), FakeSubscriptionTenants()
    )


PROVISION = JobKinds({"provision": Provision(time.time)})


def _ids():
    sub = str(uuid.uuid4())
    group = ResourceId(sub, "rg", None, ())
    return group, group.child("galleries", "g1", "Microsoft.Compute")


def _claim(db, owner, now, lease=10.0):
    with db.write() as tx:
        return tx.claim_job(owner, now, lease)


def test_expired_lease_is_taken_over_and_the_old_owner_cannot_finish(db, service):
    group, gallery = _ids()
    service.put(group, {"location": "eastus"}, RESOURCE_GROUP)
    outcome = service.put(gallery, {"location": "eastus"}, GALLERY)
    assert outcome.status == 201 and outcome.body["properties"]["provisioningState"] == "Creating"

    now = time.time()
    job = _claim(db, "host:1:a", now, lease=5)
    assert (job.operation_id, job.subject_key) == (outcome.operation.id, gallery.key)
    assert _claim(db, "host:2:b", now + 1) is None  # leased
    taken = _claim(db, "host:2:b", now + 6)  # the first worker went silent past its lease
    assert taken is not None and taken.id == job.id and taken.attempts == 2

    run_job(db, job, "host:1:a", time.time, PROVISION)  # the old owner wakes up: it must not act
    with db.read() as tx:
        assert tx.get_operation(outcome.operation.id).status == "InProgress"
    run_job(db, taken, "host:2:b", time.time, PROVISION)
    with db.read() as tx:
        assert tx.get_operation(outcome.operation.id).status == "Succeeded"
        assert tx.get(gallery.key).state == "Succeeded"
        assert tx.pending_jobs() == 0


class Failing(Provision):
    """A job whose slow phase fails the way a real one would (a source that cannot be read)."""

    def work(self, ctx, op):
        raise errors.InvalidParameter("the source disk is unreadable", "properties.storageProfile")


def test_failed_create_leaves_no_resource(db, service):
    group, gallery = _ids()
    service.put(group, {"location": "eastus"}, RESOURCE_GROUP)
    op = service.put(gallery, {"location": "eastus"}, GALLERY).operation
    job = _claim(db, "w", time.time())
    run_job(db, job, "w", time.time, kinds=JobKinds({"provision": Failing(time.time)}))
    with db.read() as tx:
        failed = tx.get_operation(op.id)
        assert tx.get(gallery.key) is None
    assert failed.status == "Failed" and failed.end_time is not None
    assert failed.error["status"] == 400
    assert failed.error["error"] == {
        "code": "InvalidParameter",
        "message": "the source disk is unreadable",
        "target": "properties.storageProfile",
    }


def test_failed_update_restores_the_previous_resource(db, service):
    group, gallery = _ids()
    service.put(group, {"location": "eastus"}, RESOURCE_GROUP)
    service.put(gallery, {"location": "eastus", "properties": {"description": "old"}}, GALLERY)
    run_job(db, _claim(db, "w", time.time()), "w", time.time, kinds=PROVISION)
    op = service.patch(gallery, {"properties": {"description": "new"}}, GALLERY).operation
    with db.read() as tx:
        assert tx.get(gallery.key).body["properties"]["description"] == "new"
    run_job(db, _claim(db, "w", time.time()), "w", time.time, kinds=JobKinds({"provision": Failing(time.time)}))
    with db.read() as tx:
        row = tx.get(gallery.key)
        assert tx.get_operation(op.id).status == "Failed"
    assert row.state == "Succeeded"
    assert row.body["properties"]["description"] == "old"
    assert row.body["properties"]["provisioningState"] == "Succeeded"


def test_a_crashing_handler_fails_its_operation_not_the_worker(db, service):
    group, gallery = _ids()
    service.put(group, {"location": "eastus"}, RESOURCE_GROUP)
    op = service.put(gallery, {"location": "eastus"}, GALLERY).operation

    class Crash(Provision):
        def finish(self, tx, op, result):
            raise RuntimeError("disk on fire")

    run_job(db, _claim(db, "w", time.time()), "w", time.time, kinds=JobKinds({"provision": Crash(time.time)}))
    with db.read() as tx:
        failed = tx.get_operation(op.id)
    assert failed.status == "Failed"
    assert failed.error["error"]["code"] == "InternalOperationError"
    assert "disk on fire" in failed.error["error"]["message"]


def test_a_job_interrupted_too_often_or_of_unknown_kind_fails_its_operation(db, service):
    group, gallery = _ids()
    service.put(group, {"location": "eastus"}, RESOURCE_GROUP)
    op = service.put(gallery, {"location": "eastus"}, GALLERY).operation
    now = time.time()
    job = None
    for attempt in range(6):  # five workers die holding it; the sixth claim gives up
        job = _claim(db, f"w{attempt}", now + attempt * 100, lease=1)
    run_job(db, job, "w5", time.time, PROVISION)
    with db.read() as tx:
        failed = tx.get_operation(op.id)
        assert tx.get(gallery.key) is None and tx.pending_jobs() == 0
    assert failed.status == "Failed" and "abandoned after 5" in failed.error["error"]["message"]

    other = _ids()[1]
    service.put(ResourceId(other.subscription, "rg", None, ()), {"location": "eastus"}, RESOURCE_GROUP)
    op = service.put(other, {"location": "eastus"}, GALLERY).operation
    run_job(db, _claim(db, "w", time.time()), "w", time.time, kinds=JobKinds({}))
    with db.read() as tx:
        assert tx.get_operation(op.id).status == "Failed"


def test_a_background_job_runs_from_its_own_registry_and_finishes_no_operation(db, service):
    group, gallery = _ids()
    service.put(group, {"location": "eastus"}, RESOURCE_GROUP)
    op = service.put(gallery, {"location": "eastus"}, GALLERY).operation
    ran = []

    class Note:
        def work(self, ctx):
            return ctx.job.subject_key

        def commit(self, tx, job, result, now):
            ran.append(result)

        def failed(self, tx, job, error, now):
            raise AssertionError(error)

    waiting = _claim(db, "w", time.time())
    with db.write() as tx:
        tx.retry_job(waiting.id, time.time() + 3600)  # the gallery's operation job waits
        assert tx.queue_background_job(kind="note", subject_key="subject-1", payload={}, now=time.time())
        assert tx.queue_background_job(kind="provision", subject_key="subject-2", payload={}, now=time.time())
    kinds = JobKinds({"note": Note()}, {"note": Note()})  # a name in both: the row says which kind of job it is
    run_job(db, _claim(db, "w", time.time()), "w", time.time, kinds=kinds)
    run_job(db, _claim(db, "w", time.time()), "w", time.time, kinds=kinds)  # "provision" is no background kind
    assert ran == ["subject-1"]
    with db.read() as tx:
        assert tx.get_operation(op.id).status == "InProgress"  # untouched by either
        assert tx.pending_jobs() == 1  # the operation's own job, still waiting


class Clock:
    """Wall-clock time a test moves (a GC job waits one interval between runs)."""

    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


class GatedCollection(GarbageCollection):
    """The real collection, whose first run holds until the test lets it go; a run that starts while another is
    running is recorded (and not held, so the test cannot hang)."""

    def __init__(self, stores, interval, fail=False):
        super().__init__(stores, grace_seconds=3600, interval_seconds=interval)
        self.entered, self.release, self.lock = threading.Event(), threading.Event(), threading.Lock()
        self.active, self.overlaps, self.fail = 0, 0, fail

    def work(self, ctx):
        with self.lock:
            self.active += 1
            self.overlaps += self.active > 1
            first = not self.entered.is_set()
            self.entered.set()
        try:
            if first:
                assert self.release.wait(30)
            if self.fail:
                raise OSError("a zone's disk is unreachable")
            return super().work(ctx)
        finally:
            with self.lock:
                self.active -= 1


def _pool(db, clock, collection):
    # threads=0: the test runs each pool's claim loop itself, in the order it wants.
    kinds = JobKinds(background={gc.JOB_KIND: collection})
    return WorkerPool(db, OperationWaiter(db), clock, threads=0, kinds=kinds, gc_interval_seconds=INTERVAL)


INTERVAL = 900.0


@pytest.mark.parametrize("fail", [False, True], ids=["succeeds", "fails"])
def test_two_worker_pools_never_run_two_gc_jobs_at_once_and_each_run_queues_the_next(db, tmp_path, fail):
    clock = Clock()
    collection = GatedCollection(RegionStores(tmp_path / "blobs", ("eastus",)), INTERVAL, fail)
    first, second = _pool(db, clock, collection), _pool(db, clock, collection)
    first.start()
    second.start()
    with db.read() as tx:
        assert tx.pending_jobs() == 1  # both pools asked for a GC job; the deployment has one

    assert first.run_pending("a") == 0  # due one interval after the pools started
    clock.now += INTERVAL
    ran = []
    running = threading.Thread(target=lambda: ran.append(first.run_pending("a")))
    running.start()
    assert collection.entered.wait(30)
    assert second.run_pending("b") == 0  # the one GC job is running under the first pool's lease
    collection.release.set()
    running.join(30)
    # A failed run is logged and retried like a finished one: the worker carries on.
    assert ran == [1] and collection.overlaps == 0

    ended = clock.now
    clock.now = ended + INTERVAL - 1
    assert second.run_pending("b") == 0
    clock.now = ended + INTERVAL
    assert second.run_pending("b") == 1 and collection.overlaps == 0
    with db.read() as tx:
        assert tx.pending_jobs() == 1
