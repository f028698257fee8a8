"""Replication planning (what an update of target regions adds, removes and moves) and garbage collection, on
fakes of the ports."""

from __future__ import annotations

import pytest

from vmgallery.app import gc
from vmgallery.app.content import write_image
from vmgallery.app.gc import collect
from vmgallery.app.kinds import IMAGE_VERSION
from vmgallery.domain import errors

from .conftest import GC_INTERVAL


def _regions(*names: str, safety: bool = False) -> dict:
    props: dict = {"publishingProfile": {"targetRegions": [{"name": n} for n in names]}}
    if safety:
        props["safetyProfile"] = {"allowDeletionOfReplicatedLocations": True}
    return {"properties": props}


def test_a_plan_names_the_replicas_and_bytes_an_update_would_add_and_changes_nothing(world):
    world.gallery_with_definition()
    world.version_from("1.0.0", world.empty_disk("os"), "eastus")
    world.run_jobs()
    plan = world.resources.plan_update(world.version("1.0.0"), _regions("eastus", "westus"), IMAGE_VERSION)
    # An empty disk stores one chunk: the last one, holding the VHD footer.
    with world.db.read() as tx:
        manifest = tx.get_manifest(tx.contents(world.version("1.0.0").key)["os"])
        assert tx.pending_jobs() == 0 and {r.region for r in tx.replicas_of(world.version("1.0.0").key)} == {"eastus"}
    assert plan["added"] == [{"region": "westus", "replicas": 1}] and plan["removed"] == []
    assert plan["bytesToMove"] == {"westus": manifest.stored_bytes()} == {"westus": plan["totalBytesToMove"]}

    world.resources.patch(world.version("1.0.0"), _regions("eastus", "westus"), IMAGE_VERSION)
    world.run_jobs()
    again = world.resources.plan_update(world.version("1.0.0"), _regions("eastus", "westus"), IMAGE_VERSION)
    assert again["added"] == [] and again["totalBytesToMove"] == 0


def test_removing_a_replicated_region_needs_the_safety_flag(world):
    world.gallery_with_definition()
    world.version_from("1.0.0", world.empty_disk("os"), "eastus", "westus")
    world.run_jobs()
    with pytest.raises(errors.Conflict) as refused:
        world.resources.plan_update(world.version("1.0.0"), _regions("eastus"), IMAGE_VERSION)
    assert refused.value.code == "ChangeOfReplicatedLocationsNotAllowed"
    with pytest.raises(errors.InvalidParameter, match="source region"):
        world.resources.patch(world.version("1.0.0"), _regions("westus", safety=True), IMAGE_VERSION)

    world.resources.patch(world.version("1.0.0"), _regions("eastus", safety=True), IMAGE_VERSION)
    world.run_jobs()
    with world.db.read() as tx:
        assert [(r.region, r.idx) for r in tx.replicas_of(world.version("1.0.0").key)] == [("eastus", 0)]


def test_gc_drops_unused_manifests_and_old_unnamed_chunks_and_keeps_the_rest(world):
    world.gallery_with_definition()
    disk = world.empty_disk("os")
    stores = world.resources.stores
    store = stores.store("eastus")
    chunk = store.chunk_size
    orphan = write_image(store, [b"\x07" * chunk], chunk)
    with world.db.write() as tx:
        tx.put_manifest(orphan, world.clock())
    world.clock.advance(2 * 3600)
    fresh = store.put(b"\x08" * chunk)

    report = collect(world.db, stores, world.clock, grace_seconds=3600)

    assert report.manifests_deleted == 1 and report.chunks_deleted == 1
    with world.db.read() as tx:
        named = tx.get_manifest(tx.contents(disk.key)["disk"])
        assert tx.all_manifest_ids() == {named.id}
    assert all(store.has(d) for d in named.live())
    assert store.has(fresh) and not store.has(orphan.digests[0])


def test_the_gc_job_collects_then_queues_its_next_run_one_interval_later(world):
    store = world.resources.stores.store("eastus")
    old = store.put(b"\x07" * store.chunk_size)
    world.clock.advance(2 * 3600)  # past the grace period: garbage
    with world.db.write() as tx:
        assert gc.schedule(tx, world.clock(), GC_INTERVAL)
        assert not gc.schedule(tx, world.clock(), GC_INTERVAL)  # one live GC job, whoever asks
    world.clock.advance(GC_INTERVAL - 1)
    assert world.run_jobs() == 0 and store.has(old)  # not due yet

    world.clock.advance(1)
    assert world.run_jobs() == 1  # collected, and queued again rather than run again at once
    assert not store.has(old)
    with world.db.read() as tx:
        assert tx.pending_jobs() == 1
    world.clock.advance(GC_INTERVAL)
    assert world.run_jobs() == 1
