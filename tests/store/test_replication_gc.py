"""Garbage collection against replication, at the one moment that matters, made to happen on purpose: the collector
has read which chunks each store must keep (westus: none) and listed westus's old copies as candidates; before it
takes the first, a westus replica is added and its real job runs to completion, finding those copies present. The
collector must put them back; the replica must end Completed with every chunk sound. Real folders, real database."""

from __future__ import annotations

import os
import time

from vmgallery.adapters.blobs.folder import FolderBackend
from vmgallery.adapters.blobs.regions import RegionStores
from vmgallery.app.content import write_image
from vmgallery.app.gc import collect
from vmgallery.app.operations import JobKinds, run_job
from vmgallery.app.replication import RegionThrottle, Replicate, subject, sync_replicas

CHUNK = 4096
VERSION = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/galleries/g/images/i/versions/1.0.0"


def spec(*regions: str) -> dict:
    """A version body's target regions as stored (defaults filled in)."""
    return {
        "properties": {
            "publishingProfile": {
                "targetRegions": [
                    {"name": r, "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS"} for r in regions
                ]
            }
        }
    }


class JobInTheWindow(FolderBackend):
    """westus's zone: the first time GC takes a chunk, the replica job runs first (between GC's listing and take)."""

    run_job = None

    def take(self, path):
        job, self.run_job = self.run_job, None
        if job:
            job()
        return super().take(path)


def test_gc_puts_back_what_a_replica_job_found_present_in_its_window(db, tmp_path):
    west = JobInTheWindow(tmp_path / "westus")
    regions = RegionStores(
        tmp_path / "blobs", ("eastus", "westus"), chunk_size=CHUNK, grace_seconds=3600, zones={"westus": [west]}
    )
    data = os.urandom(CHUNK * 6)
    manifest = write_image(
        regions.store("eastus"), (data[i : i + CHUNK] for i in range(0, len(data), CHUNK)), len(data)
    )
    write_image(regions.store("westus"), (data[i : i + CHUNK] for i in range(0, len(data), CHUNK)), len(data))
    old = time.time() - 7200  # what a removed westus replica left: garbage, older than the grace period
    for path, _ in west.list("chunks/"):
        os.utime(west.root / path, (old, old))
    now = time.time()
    with db.write() as tx:
        tx.insert(
            key=VERSION,
            type="Microsoft.Compute/galleries/images/versions",
            parent_key=VERSION.rsplit("/", 2)[0],
            subscription="s",
            group_key=None,
            location="eastus",
            natural_key=None,
            state="Succeeded",
            body={},
            now=now,
        )
        tx.set_content(VERSION, "os", tx.put_manifest(manifest, now))
        sync_replicas(tx, regions, VERSION, spec("eastus"), now, "eastus", captured=True)
    replicate = Replicate(regions, RegionThrottle({}), 1 << 20)

    def add_westus_and_replicate():
        with db.write() as tx:
            sync_replicas(tx, regions, VERSION, spec("eastus", "westus"), time.time(), "eastus", captured=True)
            job = tx.claim_job("test-worker", time.time(), 60)
        assert job.operation_id is None and job.subject_key == subject(VERSION, "westus", 0)
        run_job(db, job, "test-worker", time.time, JobKinds(background={"replicate": replicate}), 60)

    west.run_job = add_westus_and_replicate
    report = collect(db, regions, time.time, grace_seconds=3600)

    assert west.run_job is None, "the job never ran in the collector's window"
    with db.read() as tx:
        row = tx.get_replica(VERSION, "westus", 0)
    assert row.state == "Completed" and row.chunks_copied == 0  # every chunk was found present: nothing copied
    assert report.chunks_restored == 1 and report.chunks_deleted == 0  # the taken one went back; the rest: fresh
    store = regions.store("westus")
    assert b"".join(store.get(d) for d in manifest.digests) == data
