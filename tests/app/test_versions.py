"""Versions on fakes of the ports: capture from each kind of source, the source rules, `latest`, disks from a
version, and VHD imports through a fake storage account."""

from __future__ import annotations

import pytest

from vmgallery.app.content import read_range
from vmgallery.app.kinds import DISK, IMAGE_VERSION
from vmgallery.app.replication import reader_for
from vmgallery.domain import errors

from .conftest import ACCOUNT, BLOB, MIB


def test_a_version_from_a_disk_moves_no_bytes_and_replicates_to_each_region(world):
    world.gallery_with_definition()
    disk = world.empty_disk("os")
    created = world.version_from("1.0.0", disk, "eastus", "westus")
    assert created.body["properties"]["provisioningState"] == "Creating"
    with world.db.read() as tx:
        assert tx.contents(world.version("1.0.0").key) == {"os": tx.contents(disk.key)["disk"]}
    world.run_jobs()
    status = world.resources.get(world.version("1.0.0"), IMAGE_VERSION, expand="ReplicationStatus")
    assert status["properties"]["provisioningState"] == "Succeeded"
    summary = status["properties"]["replicationStatus"]["summary"]
    assert {(s["region"], s["state"]) for s in summary} == {("eastus", "Completed"), ("westus", "Completed")}
    assert status["properties"]["storageProfile"]["osDiskImage"]["sizeInGB"] == 1


def test_latest_resolves_among_usable_versions_and_a_disk_reads_its_bytes_there(world):
    world.gallery_with_definition()
    source = world.empty_disk("os")
    world.version_from("1.0.0", source, "eastus", "westus")
    world.version_from("2.0.0", source, "eastus")
    world.run_jobs()
    made = world.disk("made")
    latest = world.version("latest").text
    body = {"location": "westus", "properties": {"creationData": {"createOption": "FromImage"}}}
    body["properties"]["creationData"]["galleryImageReference"] = {"id": latest}
    world.put(made, body, DISK)
    world.run_jobs()
    with world.db.read() as tx:
        assert tx.content_source(made.key) == (world.version("1.0.0").key, 0)  # 2.0.0 is not in westus
        manifest = tx.get_manifest(tx.contents(made.key)["disk"])
        reader = reader_for(tx, world.resources.stores, made.key, "westus")
    tail = read_range(reader, manifest, manifest.size - 512, 512)
    assert tail.startswith(b"conectix") and read_range(reader, manifest, 0, MIB) == bytes(MIB)


@pytest.mark.parametrize("where", ["other region", "upload not ended", "unknown account"])
def test_a_source_that_breaks_a_rule_is_refused_and_nothing_is_written(world, where):
    world.gallery_with_definition()
    if where == "other region":
        source = world.empty_disk("os", location="westus")
        expected, target = errors.InvalidParameter, "properties.storageProfile.osDiskImage.source.id"
        call = lambda: world.version_from("1.0.0", source)  # noqa: E731
    elif where == "upload not ended":
        source = world.disk("up")
        upload = {"creationData": {"createOption": "Upload", "uploadSizeBytes": MIB + 512}, "osType": "Linux"}
        world.put(source, {"location": "eastus", "properties": upload}, DISK)
        world.run_jobs()
        expected, target = errors.OperationNotAllowed, "properties.storageProfile.osDiskImage.source.id"
        call = lambda: world.version_from("1.0.0", source)  # noqa: E731
    else:
        expected, target = errors.InvalidParameter, "properties.storageProfile.osDiskImage.source.storageAccountId"
        other = ACCOUNT.replace("vhds", "unknown")
        call = lambda: world.put(world.version("1.0.0"), vhd_version(BLOB, other), IMAGE_VERSION)  # noqa: E731
    with pytest.raises(expected) as refused:
        call()
    assert refused.value.target == target
    with world.db.read() as tx:
        assert tx.get(world.version("1.0.0").key) is None and tx.replicas_of(world.version("1.0.0").key) == []


def vhd_version(uri: str, account: str) -> dict:
    return {
        "location": "eastus",
        "properties": {
            "storageProfile": {"osDiskImage": {"source": {"uri": uri, "storageAccountId": account}}},
            "publishingProfile": {"targetRegions": [{"name": "eastus"}]},
        },
    }


def test_a_vhd_source_is_imported_by_its_job(world):
    world.gallery_with_definition()
    created = world.put(world.version("1.0.0"), vhd_version(BLOB, ACCOUNT), IMAGE_VERSION)
    with world.db.read() as tx:
        assert tx.contents(world.version("1.0.0").key) == {}  # nothing is read before the job runs
    world.run_jobs()
    op, body = world.resources.operation(world.subscription, created.operation.id)
    assert op.status == "Succeeded" and body["properties"]["provisioningState"] == "Succeeded"
    with world.db.read() as tx:
        manifest = tx.get_manifest(tx.contents(world.version("1.0.0").key)["os"])
    store = world.resources.stores.store("eastus")
    assert manifest.size == MIB + 512 and read_range(store, manifest, 0, MIB) == b"\x01" * MIB
