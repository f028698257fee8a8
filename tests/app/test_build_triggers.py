"""The source_image_trigger job on the fakes: what it records on the trigger for each way a run can (not) start."""

from __future__ import annotations

from vmgallery.app.build_triggers import JOB_KIND, TRIGGER_TYPE, SourceImageTrigger, queue_fired
from vmgallery.app.operations import JobContext
from vmgallery.app.ports import JobRow
from vmgallery.domain import errors

from .fakes import FakeClock, FakeMetadata

TEMPLATE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.VirtualMachineImages/imageTemplates/t"
TRIGGER = TEMPLATE + "/triggers/src"
VERSION = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d/versions/1.0.1"


def insert(tx, key: str, type_: str, parent: str, body: dict) -> None:
    tx.insert(
        key=key.lower(),
        type=type_,
        parent_key=parent.lower(),
        subscription="s",
        group_key="rg",
        location="eastus",
        natural_key=None,
        state="Succeeded",
        body=body,
        now=0,
    )


def world(run_state: str | None = None) -> FakeMetadata:
    db = FakeMetadata()
    template = {"id": TEMPLATE, "properties": {"lastRunStatus": {"runState": run_state} if run_state else None}}
    trigger = {"id": TRIGGER, "properties": {"kind": "SourceImage", "status": {"code": "Healthy", "message": ""}}}
    with db.write() as tx:
        insert(tx, TEMPLATE, "t", "rg", template)
        insert(tx, TRIGGER, "t", TEMPLATE, trigger)
    return db


def fire(db: FakeMetadata, start_run) -> tuple[str, str]:
    job = JobRow(1, None, TRIGGER.lower(), JOB_KIND, {"version": VERSION}, 1)
    handler = SourceImageTrigger(start_run)
    result = handler.work(JobContext(db, FakeClock(), "w", job))
    with db.write() as tx:
        handler.commit(tx, job, result, 1_700_000_000.0)
    return result


def status(db: FakeMetadata) -> dict:
    with db.read() as tx:
        row = tx.get(TRIGGER.lower())
    assert row is not None
    return row.body["properties"]["status"]


def test_a_started_run_is_recorded_with_the_version():
    db, started = world(), []
    assert fire(db, started.append)[0] == "Healthy"
    assert [r.text for r in started] == [TEMPLATE]
    assert VERSION in status(db)["message"] and "started" in status(db)["message"]
    assert status(db)["time"].startswith("2023-11-14T")


def test_a_run_in_progress_is_recorded_and_none_other_started():
    def busy(_rid):
        raise errors.Conflict("already building", "t")

    db = world("Running")
    fire(db, busy)
    assert status(db)["code"] == "Healthy" and "no second run was started" in status(db)["message"]


def test_a_run_that_cannot_start_makes_the_trigger_unhealthy():
    def refused(_rid):
        raise errors.Conflict("The image template 't' is Deleting.", "t")

    db = world()
    fire(db, refused)
    assert status(db)["code"] == "Unhealthy" and "is Deleting" in status(db)["message"]
    handler = SourceImageTrigger(refused)
    with db.write() as tx:
        handler.failed(tx, JobRow(1, None, TRIGGER.lower(), JOB_KIND, {}, 1), RuntimeError("boom"), 0)
    assert status(db)["code"] == "Unhealthy" and "boom" in status(db)["message"]


def test_a_deleted_trigger_starts_nothing_and_records_nothing():
    db, started = world(), []
    with db.write() as tx:
        tx.delete(TRIGGER.lower())
    assert fire(db, started.append) == ("", "") and started == []
    with db.write() as tx:  # a failure after the delete has nothing to record on
        SourceImageTrigger(started.append).failed(tx, JobRow(1, None, TRIGGER.lower(), JOB_KIND, {}, 1), OSError(), 0)
    assert started == []


DEFINITION = VERSION.rsplit("/versions/", 1)[0]
STAGING = "/subscriptions/s/resourceGroups/IT_rg_t_0"


def with_versions(*versions: tuple[str, bool, str]) -> FakeMetadata:
    """A template following DEFINITION's latest, its trigger, and versions (name, excluded from latest, source id)."""
    db = world()
    with db.write() as tx:
        template = tx.get(TEMPLATE.lower())
        assert template is not None
        template.body["properties"].update(
            source={"type": "SharedImageVersion", "imageVersionId": f"{DEFINITION}/versions/latest"},
            exactStagingResourceGroup=STAGING,
        )
        tx.update(TEMPLATE.lower(), state="Succeeded", body=template.body, now=0)
        trigger = tx.get(TRIGGER.lower())
        assert trigger is not None
        tx.delete(TRIGGER.lower())
        insert(tx, TRIGGER, TRIGGER_TYPE, TEMPLATE, trigger.body)
        for name, excluded, source in versions:
            vid = f"{DEFINITION}/versions/{name}"
            body = {
                "id": vid,
                "properties": {
                    "provisioningState": "Succeeded",
                    "publishingProfile": {"excludeFromLatest": excluded},
                    "storageProfile": {"osDiskImage": {"source": {"id": source}}},
                },
            }
            insert(tx, vid, "microsoft.compute/galleries/images/versions", DEFINITION, body)
    return db


def queued_for(db: FakeMetadata, name: str) -> int:
    with db.write() as tx:
        return queue_fired(tx, f"{DEFINITION}/versions/{name}".lower(), 0)


ELSEWHERE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d"
OWN = STAGING + "/providers/Microsoft.Compute/disks/build"


def test_only_a_new_latest_version_made_elsewhere_queues_the_template():
    assert queued_for(with_versions(("1.0.0", False, ELSEWHERE), ("1.0.1", False, ELSEWHERE)), "1.0.1") == 1
    assert queued_for(with_versions(("1.0.0", False, ELSEWHERE), ("1.0.1", True, ELSEWHERE)), "1.0.1") == 0
    assert queued_for(with_versions(("1.0.2", False, ELSEWHERE), ("1.0.1", False, ELSEWHERE)), "1.0.1") == 0
    # The template's own output (from its staging group) must not start it again, or it would run for ever.
    assert queued_for(with_versions(("1.0.0", False, ELSEWHERE), ("1.0.1", False, OWN)), "1.0.1") == 0
