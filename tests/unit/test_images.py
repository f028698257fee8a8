"""Managed image rules: one source per disk, luns, defaults, unsupported sources, source facts, updates."""

from __future__ import annotations

import pytest

from vmgallery.domain.errors import ArmError, InvalidParameter, MissingRequiredProperty, NotSupported
from vmgallery.domain.images import check_image_update, check_source_facts, image_disks, normalize_image, size_gb_fits

RG = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute"
SNAP = f"{RG}/snapshots/os"
DISK = f"{RG}/disks/data"
VHD = "https://acct.blob.core.windows.net/vhds/os.vhd"
S = "properties.storageProfile"


def body(os_disk: dict | None = None, data: list | None = None, **props) -> dict:
    os_disk = {"osType": "linux", "osState": "generalized", "snapshot": {"id": SNAP}, **(os_disk or {})}
    profile = {"osDisk": {k: v for k, v in os_disk.items() if v is not None}}
    if data is not None:
        profile["dataDisks"] = data
    return {"location": "westus", "properties": {"storageProfile": profile, **props}}


def rejected(b: dict) -> ArmError:
    with pytest.raises(ArmError) as exc:
        normalize_image(b)
    return exc.value


def test_defaults_and_canonical_spellings():
    spec = normalize_image(body(provisioningState="Succeeded"))
    props = spec["properties"]
    os_disk = props["storageProfile"]["osDisk"]
    assert (os_disk["osType"], os_disk["osState"]) == ("Linux", "Generalized")
    assert (os_disk["caching"], os_disk["storageAccountType"]) == ("ReadWrite", "Standard_LRS")
    assert props["storageProfile"]["dataDisks"] == [] and props["storageProfile"]["zoneResilient"] is False
    assert "provisioningState" not in props and "hyperVGeneration" not in props  # filled once sources are read


def test_disks_and_their_slots():
    spec = normalize_image(
        body(
            {"snapshot": None, "blobUri": VHD},
            [{"lun": 3, "managedDisk": {"id": DISK}}, {"lun": 0, "snapshot": {"id": SNAP}}],
        )
    )
    disks = image_disks(spec)
    assert [(d.slot, d.kind, d.target) for d in disks] == [
        ("os", "vhd", f"{S}.osDisk.blobUri"),
        ("data:3", "disk", f"{S}.dataDisks[0].managedDisk.id"),
        ("data:0", "snapshot", f"{S}.dataDisks[1].snapshot.id"),
    ]
    assert disks[0].uri == VHD and disks[1].id.name == "data"
    assert spec["properties"]["storageProfile"]["dataDisks"][0]["caching"] == "None"


@pytest.mark.parametrize(
    "os_disk, error, target",
    [
        ({"osType": None}, MissingRequiredProperty, f"{S}.osDisk.osType"),
        ({"osState": "Sleepy"}, InvalidParameter, f"{S}.osDisk.osState"),
        ({"snapshot": None}, MissingRequiredProperty, f"{S}.osDisk"),
        ({"blobUri": VHD}, InvalidParameter, f"{S}.osDisk.blobUri"),
        ({"snapshot": {"id": DISK}}, InvalidParameter, f"{S}.osDisk.snapshot.id"),
        ({"snapshot": {}}, MissingRequiredProperty, f"{S}.osDisk.snapshot.id"),
        ({"snapshot": None, "blobUri": "ftp://host/x.vhd"}, InvalidParameter, f"{S}.osDisk.blobUri"),
        ({"diskSizeGB": 0}, InvalidParameter, f"{S}.osDisk.diskSizeGB"),
        ({"storageAccountType": "UltraSSD_LRS"}, InvalidParameter, f"{S}.osDisk.storageAccountType"),
        ({"diskEncryptionSet": {"id": "x"}}, NotSupported, f"{S}.osDisk.diskEncryptionSet"),
    ],
)
def test_os_disk_rules(os_disk, error, target):
    exc = rejected(body(os_disk))
    assert type(exc) is error and exc.target == target, exc.message


def test_data_disk_rules():
    disk = {"managedDisk": {"id": DISK}}
    assert rejected(body(data=[disk])).target == f"{S}.dataDisks[0].lun"
    assert rejected(body(data=[{"lun": 1, **disk}, {"lun": 1, **disk}])).target == f"{S}.dataDisks[1].lun"
    assert rejected(body(data=[{"lun": 64, **disk}])).target == f"{S}.dataDisks[0].lun"
    assert rejected(body(data=[{"lun": 1}])).target == f"{S}.dataDisks[0]"
    assert rejected(body(data={"lun": 1})).target == f"{S}.dataDisks"
    assert normalize_image(body(data=[{"lun": 1, **disk, "storageAccountType": "UltraSSD_LRS"}]))


def test_unsupported_and_missing_sources():
    vm = rejected(body(sourceVirtualMachine={"id": f"{RG}/virtualMachines/vm"}))
    assert isinstance(vm, NotSupported) and vm.target == "properties.sourceVirtualMachine"
    assert rejected({"location": "westus", "properties": {}}).target == S
    assert rejected({"location": "westus", "properties": {"storageProfile": {}}}).target == f"{S}.osDisk"
    assert isinstance(rejected({**body(), "extendedLocation": {"name": "edge", "type": "EdgeZone"}}), NotSupported)


def test_source_facts_and_sizes():
    spec = normalize_image(body())
    (os_disk,) = image_disks(spec)
    check_source_facts(spec, os_disk, {"properties": {"osType": "Linux", "hyperVGeneration": "V2"}}, "snapshot")
    assert spec["properties"]["hyperVGeneration"] == "V2"
    with pytest.raises(InvalidParameter) as exc:
        check_source_facts(spec, os_disk, {"properties": {"osType": "Windows"}}, "snapshot")
    assert exc.value.target == f"{S}.osDisk.osType"
    spec = normalize_image(body(hyperVGeneration="v1"))
    with pytest.raises(InvalidParameter) as exc:
        check_source_facts(spec, os_disk, {"properties": {"hyperVGeneration": "V2"}}, "snapshot")
    assert exc.value.target == "properties.hyperVGeneration"
    assert size_gb_fits(os_disk, 3, "snapshot") == 3
    (sized,) = image_disks(normalize_image(body({"diskSizeGB": 2})))
    assert size_gb_fits(sized, 1, "snapshot") == 2
    with pytest.raises(InvalidParameter) as exc:
        size_gb_fits(sized, 3, "snapshot")
    assert exc.value.target == f"{S}.osDisk.diskSizeGB"


def test_updates_change_tags_only_and_keep_filled_facts():
    stored = normalize_image(
        body({"diskSizeGB": 1}, [{"lun": 0, "snapshot": {"id": SNAP}, "diskSizeGB": 2}], hyperVGeneration="V2")
    )
    again = normalize_image(body(data=[{"lun": 0, "snapshot": {"id": SNAP}}]), stored)
    check_image_update(stored, again)
    check_image_update(stored, {**again, "tags": {"a": "b"}})
    with pytest.raises(ArmError) as exc:
        check_image_update(
            stored,
            normalize_image(
                body({"osState": "Specialized"}, again["properties"]["storageProfile"]["dataDisks"]), stored
            ),
        )
    assert exc.value.code == "PropertyChangeNotAllowed" and exc.value.target == f"{S}.osDisk.osState"
