"""Disks and snapshots answer what Azure answers: updates Azure accepts (resize, sku, tier, settings), every snapshot
sku and createOption Empty, incremental snapshots, the read-only fields Azure fills, and 202 for their PUT."""

from __future__ import annotations

import httpx
import pytest

from vmgallery.domain.vhd import parse_vhd_footer

from ..conftest import running_server
from .rules_support import assert_error
from .sdk import compute_client, resource_client
from .test_disks import _chunk_files, blob_client, image, upload_disk

MIB, GIB = 1 << 20, 1 << 30
API = "api-version=2026-03-02"


def path(subscription: str, group: str, name: str, kind: str = "disks") -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/{kind}/{name}?{API}"


def read_ranges(compute, server, group: str, name: str, ranges: list[tuple[int, int]], *, snapshot=False):
    ops = compute.snapshots if snapshot else compute.disks
    sas = ops.begin_grant_access(group, name, {"access": "Read", "durationInSeconds": 600}).result()
    try:
        client = blob_client(server, sas.access_sas)
        size = client.get_blob_properties().size
        return size, [client.download_blob(offset=o, length=n).readall() for o, n in ranges]
    finally:
        ops.begin_revoke_access(group, name).result()


def test_a_grown_disk_keeps_its_bytes_reads_zeros_past_them_and_moves_its_footer(compute, server, group):
    data = image(5, seed=3)
    raw = data[:-512]
    upload_disk(compute, server, group, "d1", data)
    src = compute.disks.get(group, "d1").id
    compute.snapshots.begin_create_or_update(
        group,
        "before",
        {"location": "eastus", "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": src}}},
    ).result()

    disk = compute.disks.begin_update(group, "d1", {"properties": {"diskSizeGB": 2}}).result()
    assert (disk.disk_size_gb, disk.disk_size_bytes) == (2, 2 * GIB)
    size, (head, gap, tail) = read_ranges(
        compute, server, group, "d1", [(0, len(raw)), (len(raw), 2 * MIB), (2 * GIB - MIB, MIB + 512)]
    )
    assert size == 2 * GIB + 512
    assert head == raw and gap == bytes(2 * MIB) and tail[:MIB] == bytes(MIB)
    footer = parse_vhd_footer(tail[MIB:])
    assert footer.current_size == 2 * GIB and footer.checksum_ok
    # The snapshot taken before still reads the old bytes: the resize wrote a new manifest, not over the old one.
    size, (whole,) = read_ranges(compute, server, group, "before", [(0, len(data))], snapshot=True)
    assert size == len(data) and whole == data


def test_sku_tier_and_settings_change_and_performance_follows(compute, group, http, subscription):
    compute.disks.begin_create_or_update(
        group, "p", {"location": "eastus", "properties": {"diskSizeGB": 4, "creationData": {"createOption": "Empty"}}}
    ).result()
    disk = compute.disks.begin_update(group, "p", {"sku": {"name": "Premium_LRS"}}).result()
    assert (disk.sku.name, disk.sku.tier, disk.tier, disk.disk_iops_read_write) == ("Premium_LRS", "Premium", "P1", 120)
    disk = compute.disks.begin_update(
        group, "p", {"properties": {"tier": "P30", "networkAccessPolicy": "DenyAll", "burstingEnabled": True}}
    ).result()
    assert (disk.tier, disk.disk_iops_read_write, disk.disk_m_bps_read_write) == ("P30", 5000, 200)
    assert disk.network_access_policy == "DenyAll" and disk.bursting_enabled is True
    # az's update is a GET and a PUT of what it got, changed.
    got = http.get(path(subscription, group, "p")).json()
    got["properties"]["diskSizeGB"] = 64
    got["sku"]["name"] = "StandardSSD_ZRS"
    r = http.put(path(subscription, group, "p"), json=got)
    assert r.status_code == 202, r.text
    disk = compute.disks.get(group, "p")
    assert (disk.disk_size_gb, disk.sku.name, disk.sku.tier, disk.tier) == (64, "StandardSSD_ZRS", "StandardSSD", None)
    assert (disk.disk_iops_read_write, disk.disk_m_bps_read_write) == (500, 60)
    assert disk.network_access_policy == "DenyAll"  # kept: the PUT echoed it


def test_a_disk_never_shrinks_nor_resizes_while_uploading_or_read(compute, server, group, http, subscription):
    compute.disks.begin_create_or_update(
        group, "big", {"location": "eastus", "properties": {"diskSizeGB": 2, "creationData": {"createOption": "Empty"}}}
    ).result()
    r = http.patch(path(subscription, group, "big"), json={"properties": {"diskSizeGB": 1}})
    assert_error(r, 400, "PropertyChangeNotAllowed", "properties.diskSizeGB", "2 GB")
    assert http.get(path(subscription, group, "big")).json()["properties"]["diskSizeGB"] == 2

    compute.disks.begin_grant_access(group, "big", {"access": "Read", "durationInSeconds": 60}).result()
    r = http.patch(path(subscription, group, "big"), json={"properties": {"diskSizeGB": 3}})
    assert_error(r, 409, "OperationNotAllowed", "properties.diskSizeGB", "ActiveSAS")
    compute.disks.begin_revoke_access(group, "big").result()

    upload_disk(compute, server, group, "up", image(2), end=False)
    r = http.patch(path(subscription, group, "up"), json={"properties": {"diskSizeGB": 3}})
    assert_error(r, 409, "OperationNotAllowed", "properties.diskSizeGB", "ActiveUpload")
    r = http.patch(path(subscription, group, "up"), json={"tags": {"a": "b"}})  # other changes are fine
    assert r.status_code in (200, 202) and r.json()["tags"] == {"a": "b"}
    assert http.get(path(subscription, group, "up")).json()["properties"]["diskState"] == "ActiveUpload"


@pytest.mark.parametrize("sku", ["Standard_LRS", "Premium_LRS", "Standard_ZRS"])
def test_snapshots_of_every_sku_and_empty_ones(compute, server, group, sku):
    snap = compute.snapshots.begin_create_or_update(
        group,
        "s",
        {
            "location": "eastus",
            "sku": {"name": sku},
            "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
        },
    ).result()
    assert snap.sku.name == sku and snap.sku.tier == ("Premium" if sku == "Premium_LRS" else "Standard")
    assert snap.disk_size_gb == 1 and snap.incremental is False
    size, (tail,) = read_ranges(compute, server, group, "s", [(GIB - 512, 1024)], snapshot=True)
    assert size == GIB + 512 and tail[:512] == bytes(512) and parse_vhd_footer(tail[512:]).current_size == GIB


def test_full_and_incremental_snapshots_are_instant_and_say_which_they_are(compute, server, group):
    upload_disk(compute, server, group, "d", image(3, seed=5))
    disk = compute.disks.get(group, "d")
    before = _chunk_files(server)
    for name, incremental in (("full", False), ("incr", True)):
        compute.snapshots.begin_create_or_update(
            group,
            name,
            {
                "location": "eastus",
                "properties": {
                    "incremental": incremental,
                    "creationData": {"createOption": "Copy", "sourceResourceId": disk.id},
                },
            },
        ).result()
    assert _chunk_files(server) == before  # neither copied a byte
    full, incr = compute.snapshots.get(group, "full"), compute.snapshots.get(group, "incr")
    assert (full.incremental, incr.incremental) == (False, True)
    assert full.creation_data.source_unique_id == incr.creation_data.source_unique_id == disk.unique_id
    assert incr.incremental_snapshot_family_id == disk.unique_id and full.incremental_snapshot_family_id is None


def test_read_only_fields_azure_fills(compute, group, http, subscription):
    r = http.put(
        path(subscription, group, "ro"),
        json={"location": "eastus", "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}}},
    )
    assert r.status_code == 202  # Azure's answer to a disk PUT, done or not
    body = http.get(path(subscription, group, "ro")).json()
    props = body["properties"]
    assert body["sku"] == {"name": "Standard_LRS", "tier": "Standard"}
    assert props["encryption"] == {"type": "EncryptionAtRestWithPlatformKey"}
    assert props["networkAccessPolicy"] == "AllowAll"
    assert (props["diskIOPSReadWrite"], props["diskMBpsReadWrite"]) == (500, 60)
    r = http.put(
        path(subscription, group, "ros", "snapshots"),
        json={
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": body["id"]}},
        },
    )
    assert r.status_code == 202
    snap = http.get(path(subscription, group, "ros", "snapshots")).json()
    assert snap["properties"]["creationData"]["sourceUniqueId"] == props["uniqueId"]
    assert snap["properties"]["incremental"] is False and snap["sku"]["tier"] == "Standard"
    assert snap["properties"]["encryption"] == {"type": "EncryptionAtRestWithPlatformKey"}
    assert snap["properties"]["networkAccessPolicy"] == "AllowAll"
    r = http.patch(path(subscription, group, "ros", "snapshots"), json={"properties": {"incremental": True}})
    assert_error(r, 400, "PropertyChangeNotAllowed", "properties.incremental")


def test_a_version_captured_from_an_image_answers_as_azure_and_deletes_answer_202(http, subscription, group):
    rg = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute"
    gallery_api, image_api = "api-version=2023-07-03", "api-version=2024-03-01"

    def put(path: str, body: dict, api: str) -> httpx.Response:
        r = http.put(f"{rg}/{path}?{api}", json=body)
        assert r.status_code in (200, 201, 202), r.text
        return r

    for name in ("os", "data"):
        put(
            f"snapshots/{name}",
            {
                "location": "eastus",
                "properties": {"osType": "Linux", "diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
            },
            API,
        )
    profile = {
        "osDisk": {"osType": "Linux", "osState": "Generalized", "snapshot": {"id": f"{rg}/snapshots/os"}},
        "dataDisks": [{"lun": 1, "snapshot": {"id": f"{rg}/snapshots/data"}}],
    }
    put("images/img", {"location": "eastus", "properties": {"storageProfile": profile}}, image_api)
    put("galleries/g", {"location": "eastus"}, gallery_api)
    identifier = {"publisher": "p", "offer": "o", "sku": "s"}
    definition = {
        "location": "eastus",
        "properties": {"osType": "Linux", "osState": "Generalized", "identifier": identifier},
    }
    put("galleries/g/images/d", definition, gallery_api)
    version = {"location": "eastus", "properties": {"storageProfile": {"source": {"id": f"{rg}/images/img"}}}}
    put("galleries/g/images/d/versions/1.0.0", version, gallery_api)
    storage = http.get(f"{rg}/galleries/g/images/d/versions/1.0.0?{gallery_api}").json()["properties"]["storageProfile"]
    assert storage["osDiskImage"] == {"source": {}, "sizeInGB": 1, "hostCaching": "ReadOnly"}
    assert storage["dataDiskImages"] == [{"lun": 1, "sizeInGB": 1, "hostCaching": "None"}]

    for path in ("galleries/g/images/d/versions/1.0.0", "galleries/g/images/d", "galleries/g", "images/img"):
        api = image_api if path.startswith("images") else gallery_api
        r = http.delete(f"{rg}/{path}?{api}")
        assert r.status_code == 202, (path, r.status_code)  # as Azure answers, even when already done
        assert http.get(r.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded"
        assert http.get(f"{rg}/{path}?{api}").status_code == 404


@pytest.fixture(scope="module")
def odd_chunks(backend, tmp_path_factory):
    """A server whose 3 MiB chunks do not line up with the MiB-sized disks: a disk's end falls inside a chunk."""
    data_dir = tmp_path_factory.mktemp(f"odd-chunks-{backend}")
    with running_server(backend, data_dir, f"chunk_size = {3 * MIB}\n") as srv:
        yield srv


def test_growing_a_disk_whose_end_is_inside_a_chunk(odd_chunks, subscription):
    data = image(4, seed=8)  # the old end, 4 MiB, is inside the chunk [3 MiB, 6 MiB)
    raw = data[:-512]
    with resource_client(odd_chunks, subscription) as arm, compute_client(odd_chunks, subscription) as compute:
        arm.resource_groups.create_or_update("rg", {"location": "eastus"})
        upload_disk(compute, odd_chunks, "rg", "d", data)
        compute.disks.begin_update("rg", "d", {"properties": {"diskSizeGB": 2}}).result()
        size, (head, gap, tail) = read_ranges(
            compute, odd_chunks, "rg", "d", [(0, len(raw)), (len(raw), 3 * MIB), (2 * GIB - 2 * MIB, 2 * MIB + 512)]
        )
    assert size == 2 * GIB + 512 and head == raw and gap == bytes(3 * MIB) and tail[: 2 * MIB] == bytes(2 * MIB)
    assert parse_vhd_footer(tail[2 * MIB :]).current_size == 2 * GIB
