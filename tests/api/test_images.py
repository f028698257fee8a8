"""Managed images through the real SDK: from uploaded disks and snapshots without copying bytes, with data disks,
the source rules (missing, other region, still uploading), updates, list and delete."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from .test_disks import _chunk_files, image, read_disk, upload_disk

S = "properties.storageProfile"


def image_body(os_disk: dict, data: list[dict] = (), location: str = "eastus", **props) -> dict:
    os_disk = {"osType": "Linux", "osState": "Generalized", **os_disk}
    return {
        "location": location,
        "properties": {"storageProfile": {"osDisk": os_disk, "dataDisks": list(data)}, **props},
    }


def path(subscription: str, group: str, name: str, version: str = "2026-04-01") -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/images/{name}"
        f"?api-version={version}"
    )


def refused(http, subscription, group, body, name="bad") -> dict:
    """PUT body and expect a refusal that leaves nothing behind; the error."""
    r = http.put(path(subscription, group, name), json=body)
    assert r.status_code >= 400, r.text
    assert http.get(path(subscription, group, name)).status_code == 404
    return {"status": r.status_code, **r.json()["error"]}


def test_image_from_an_uploaded_disk_copies_no_bytes(compute, server, group):
    upload_disk(compute, server, group, "os", image(4, seed=11))
    disk = compute.disks.get(group, "os")
    before = _chunk_files(server)
    made = compute.images.begin_create_or_update(group, "img", image_body({"managedDisk": {"id": disk.id}})).result()
    assert _chunk_files(server) == before
    assert made.provisioning_state == "Succeeded" and made.type == "Microsoft.Compute/images"
    assert made.hyper_v_generation == "V2"  # taken from the disk, which states it
    os_disk = made.storage_profile.os_disk
    assert os_disk.managed_disk.id == disk.id and os_disk.disk_size_gb == 1
    assert os_disk.caching == "ReadWrite" and os_disk.storage_account_type == "Standard_LRS"
    assert made.storage_profile.data_disks == [] and made.storage_profile.zone_resilient is False
    assert compute.images.get(group, "img").as_dict() == made.as_dict()
    # The image holds its own reference to the bytes: the source disk can go.
    compute.disks.begin_delete(group, "os").result()
    assert compute.images.get(group, "img").provisioning_state == "Succeeded"


def test_image_from_snapshots_and_disks_with_data_disks(compute, server, group):
    os_bytes = image(3, seed=12)
    upload_disk(compute, server, group, "os", os_bytes)
    upload_disk(compute, server, group, "data0", image(2, seed=13))
    compute.disks.begin_create_or_update(
        group,
        "data5",
        {"location": "eastus", "properties": {"diskSizeGB": 2, "creationData": {"createOption": "Empty"}}},
    ).result()
    compute.snapshots.begin_create_or_update(
        group,
        "os-snap",
        {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "Copy", "sourceResourceId": compute.disks.get(group, "os").id}
            },
        },
    ).result()
    before = _chunk_files(server)
    made = compute.images.begin_create_or_update(
        group,
        "img",
        image_body(
            {"snapshot": {"id": compute.snapshots.get(group, "os-snap").id}, "caching": "ReadOnly"},
            [
                {"lun": 5, "managedDisk": {"id": compute.disks.get(group, "data5").id}},
                {
                    "lun": 0,
                    "managedDisk": {"id": compute.disks.get(group, "data0").id},
                    "diskSizeGB": 4,
                    "storageAccountType": "Premium_LRS",
                },
            ],
            hyperVGeneration="V2",
        ),
    ).result()
    assert _chunk_files(server) == before
    profile = made.storage_profile
    assert profile.os_disk.caching == "ReadOnly" and profile.os_disk.disk_size_gb == 1
    assert [(d.lun, d.disk_size_gb, d.caching, d.storage_account_type) for d in profile.data_disks] == [
        (5, 2, "None", "Standard_LRS"),
        (0, 4, "None", "Premium_LRS"),
    ]
    assert made.hyper_v_generation == "V2"
    # The snapshot under the image still reads back as the uploaded disk.
    assert read_disk(compute, server, group, "os-snap", snapshot=True) == os_bytes


def test_missing_other_region_and_uploading_sources_are_refused(compute, server, group, http, subscription, resources):
    prefix = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute"
    missing = refused(http, subscription, group, image_body({"snapshot": {"id": f"{prefix}/snapshots/nope"}}))
    assert (missing["status"], missing["code"], missing["target"]) == (
        404,
        "ResourceNotFound",
        f"{S}.osDisk.snapshot.id",
    )
    assert "nope" in missing["message"]

    resources.resource_groups.create_or_update(f"{group}-w", {"location": "westus"})
    compute.disks.begin_create_or_update(
        f"{group}-w",
        "west",
        {"location": "westus", "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}}},
    ).result()
    west = compute.disks.get(f"{group}-w", "west").id
    upload_disk(compute, server, group, "os", image(2, seed=14))
    os_id = compute.disks.get(group, "os").id
    other = refused(
        http, subscription, group, image_body({"managedDisk": {"id": os_id}}, [{"lun": 1, "managedDisk": {"id": west}}])
    )
    assert (other["status"], other["code"], other["target"]) == (
        400,
        "InvalidParameter",
        f"{S}.dataDisks[0].managedDisk.id",
    )
    assert "westus" in other["message"] and "eastus" in other["message"]

    compute.disks.begin_create_or_update(
        group,
        "pending",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "creationData": {"createOption": "Upload", "uploadSizeBytes": (1 << 20) + 512},
            },
        },
    ).result()
    pending = refused(
        http, subscription, group, image_body({"managedDisk": {"id": compute.disks.get(group, "pending").id}})
    )
    assert (pending["status"], pending["code"], pending["target"]) == (
        409,
        "OperationNotAllowed",
        f"{S}.osDisk.managedDisk.id",
    )
    assert "upload" in pending["message"]

    windows = refused(http, subscription, group, image_body({"managedDisk": {"id": os_id}, "osType": "Windows"}))
    assert windows["target"] == f"{S}.osDisk.osType" and "Linux" in windows["message"]
    generation = refused(http, subscription, group, image_body({"managedDisk": {"id": os_id}}, hyperVGeneration="V1"))
    assert generation["target"] == "properties.hyperVGeneration"
    compute.disks.begin_create_or_update(
        group, "big", {"location": "eastus", "properties": {"diskSizeGB": 3, "creationData": {"createOption": "Empty"}}}
    ).result()
    shrink = refused(
        http,
        subscription,
        group,
        image_body(
            {"managedDisk": {"id": os_id}},
            [{"lun": 0, "managedDisk": {"id": compute.disks.get(group, "big").id}, "diskSizeGB": 2}],
        ),
    )
    assert shrink["target"] == f"{S}.dataDisks[0].diskSizeGB" and "3" in shrink["message"]
    blob = refused(
        http, subscription, group, image_body({"blobUri": "https://elsewhere.blob.core.windows.net/vhds/os.vhd"})
    )
    assert (blob["code"], blob["target"]) == ("InvalidParameter", f"{S}.osDisk.blobUri")
    assert "config.toml" in blob["message"]
    assert list(compute.images.list_by_resource_group(group)) == []


@pytest.mark.parametrize(
    "change, target",
    [
        ({"osState": None}, f"{S}.osDisk.osState"),
        ({"osType": "Solaris"}, f"{S}.osDisk.osType"),
        ({"managedDisk": None}, f"{S}.osDisk"),
        ({"blobUri": "https://a.blob.core.windows.net/c/b.vhd"}, f"{S}.osDisk.blobUri"),
        (
            {"managedDisk": {"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/i"}},
            f"{S}.osDisk.managedDisk.id",
        ),
        ({"caching": "Sometimes"}, f"{S}.osDisk.caching"),
        ({"storageAccountType": "UltraSSD_LRS"}, f"{S}.osDisk.storageAccountType"),
    ],
)
def test_body_rules(http, subscription, group, change, target):
    os_disk = {
        "osType": "Linux",
        "osState": "Generalized",
        "managedDisk": {
            "id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/disks/d"
        },
    }
    os_disk.update(change)
    body = {
        "location": "eastus",
        "properties": {"storageProfile": {"osDisk": {k: v for k, v in os_disk.items() if v is not None}}},
    }
    error = refused(http, subscription, group, body)
    assert (error["status"], error["target"]) == (400, target), error


def test_data_disk_and_virtual_machine_rules(http, subscription, group):
    disk = {
        "managedDisk": {
            "id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/disks/d"
        }
    }
    twice = refused(http, subscription, group, image_body(disk, [{"lun": 2, **disk}, {"lun": 2, **disk}]))
    assert twice["target"] == f"{S}.dataDisks[1].lun" and "twice" in twice["message"]
    no_lun = refused(http, subscription, group, image_body(disk, [disk]))
    assert no_lun["target"] == f"{S}.dataDisks[0].lun"
    high = refused(http, subscription, group, image_body(disk, [{"lun": 64, **disk}]))
    assert high["target"] == f"{S}.dataDisks[0].lun"
    vm = refused(
        http,
        subscription,
        group,
        image_body(
            disk,
            sourceVirtualMachine={
                "id": f"/subscriptions/{subscription}/resourceGroups/{group}"
                "/providers/Microsoft.Compute/virtualMachines/v"
            },
        ),
    )
    assert (vm["code"], vm["target"]) == ("NotSupported", "properties.sourceVirtualMachine")


def test_only_tags_change_and_the_creating_request_repeats(compute, server, group, http, subscription):
    upload_disk(compute, server, group, "os", image(2, seed=15))
    body = {**image_body({"managedDisk": {"id": compute.disks.get(group, "os").id}}), "tags": {"a": "1"}}
    compute.images.begin_create_or_update(group, "img", body).result()
    again = http.put(path(subscription, group, "img"), json=body)  # without the filled diskSizeGB/hyperVGeneration
    assert again.status_code == 200, again.text
    assert again.json()["properties"]["storageProfile"]["osDisk"]["diskSizeGB"] == 1
    updated = compute.images.begin_update(group, "img", {"tags": {"b": "2"}}).result()
    assert updated.tags == {"b": "2"} and updated.storage_profile.os_disk.disk_size_gb == 1
    echoed = http.get(path(subscription, group, "img")).json()
    assert http.put(path(subscription, group, "img"), json=echoed).status_code == 200  # GET + PUT, as az does
    echoed["properties"]["storageProfile"]["osDisk"]["osState"] = "Specialized"
    r = http.put(path(subscription, group, "img"), json=echoed)
    assert r.status_code == 400 and r.json()["error"]["code"] == "PropertyChangeNotAllowed"
    assert r.json()["error"]["target"] == f"{S}.osDisk.osState"
    assert compute.images.get(group, "img").storage_profile.os_disk.os_state == "Generalized"


def test_list_and_delete(compute, server, group, resources, http, subscription):
    upload_disk(compute, server, group, "os", image(2, seed=16))
    os_id = compute.disks.get(group, "os").id
    for name in ("a", "b", "c"):
        compute.images.begin_create_or_update(group, name, image_body({"managedDisk": {"id": os_id}})).result()
    assert sorted(i.name for i in compute.images.list_by_resource_group(group)) == ["a", "b", "c"]
    assert sorted(i.name for i in compute.images.list()) == ["a", "b", "c"]
    compute.images.begin_delete(group, "b").result()
    with pytest.raises(ResourceNotFoundError):
        compute.images.get(group, "b")
    assert sorted(i.name for i in compute.images.list_by_resource_group(group)) == ["a", "c"]
    compute.images.begin_delete(group, "b").result()  # deleting what is gone is no error
    # Old clients' api-versions reach the same resource.
    assert http.get(path(subscription, group, "a", "2017-03-30")).json()["name"] == "a"
    assert http.get(path(subscription, group, "a", "2015-06-15")).status_code == 400
    resources.resource_groups.begin_delete(group).result()
    assert list(compute.images.list()) == []
    with pytest.raises(HttpResponseError):
        compute.images.get(group, "a")
