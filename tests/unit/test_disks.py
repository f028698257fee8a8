"""Disk and snapshot rules: the skus and create options Azure accepts, the fields it echoes, what an update may do."""

from __future__ import annotations

import pytest

from vmgallery.domain.disks import check_disk_update, check_resize, fill_performance, normalize_disk
from vmgallery.domain.errors import ArmError, NotSupported, OperationNotAllowed, PropertyChangeNotAllowed


def empty(size: int = 1, sku: str | None = None, **props) -> dict:
    body = {"location": "eastus", "properties": {"diskSizeGB": size, "creationData": {"createOption": "Empty"}}}
    body["properties"].update(props)
    if sku:
        body["sku"] = {"name": sku}
    return body


def spec(size: int = 1, sku: str | None = None, *, snapshot: bool = False, **props) -> dict:
    return normalize_disk(empty(size, sku, **props), snapshot=snapshot)[0]


@pytest.mark.parametrize("sku", ["Standard_LRS", "Premium_LRS", "Standard_ZRS"])
def test_snapshots_take_every_sku_of_the_spec_and_an_empty_size(sku):
    body, creation = normalize_disk(empty(3, sku), snapshot=True)
    assert creation.option == "Empty" and creation.size_bytes == 3 << 30
    assert body["sku"] == {"name": sku, "tier": "Premium" if sku == "Premium_LRS" else "Standard"}
    assert body["properties"]["incremental"] is False


def test_an_incremental_snapshot_is_on_standard_storage():
    assert spec(snapshot=True, incremental=True)["properties"]["incremental"] is True
    with pytest.raises(ArmError) as exc:
        spec(sku="Premium_LRS", snapshot=True, incremental=True)
    assert exc.value.target == "sku.name"


def test_defaults_azure_echoes():
    props = spec()["properties"]
    assert props["encryption"] == {"type": "EncryptionAtRestWithPlatformKey"}
    assert props["networkAccessPolicy"] == "AllowAll"
    assert (props["diskIOPSReadWrite"], props["diskMBpsReadWrite"]) == (500, 60)
    assert "tier" not in props
    assert spec()["sku"] == {"name": "Standard_LRS", "tier": "Standard"}


@pytest.mark.parametrize(
    "sku, size, tier, iops, mbps",
    [
        ("Premium_LRS", 4, "P1", 120, 25),
        ("Premium_LRS", 33, "P6", 240, 50),
        ("Premium_ZRS", 1024, "P30", 5000, 200),
        ("StandardSSD_LRS", 8192, None, 2000, 400),
        ("Standard_LRS", 32767, None, 2000, 500),
        ("PremiumV2_LRS", 10, None, 3000, 125),
    ],
)
def test_performance_follows_the_documented_tables(sku, size, tier, iops, mbps):
    props = spec(size, sku)["properties"]
    assert (props.get("tier"), props["diskIOPSReadWrite"], props["diskMBpsReadWrite"]) == (tier, iops, mbps)


def test_a_premium_disk_may_run_at_a_higher_tier_never_below_its_size():
    assert spec(4, "Premium_LRS", tier="P30")["properties"]["diskIOPSReadWrite"] == 5000
    body = spec(4, "Premium_LRS", tier="P30")
    body["properties"]["diskSizeGB"] = 2048  # a resize past the chosen tier
    fill_performance(body)
    assert body["properties"]["tier"] == "P40"
    with pytest.raises(ArmError) as exc:
        spec(4, "Premium_LRS", tier="Q9")
    assert exc.value.target == "properties.tier"


def test_customer_keys_are_not_supported():
    with pytest.raises(NotSupported):
        spec(encryption={"type": "EncryptionAtRestWithCustomerKey", "diskEncryptionSetId": "/x"})
    with pytest.raises(ArmError) as exc:
        spec(networkAccessPolicy="Sometimes")
    assert exc.value.target == "properties.networkAccessPolicy"


def test_updates_grow_change_sku_and_settings_but_never_shrink():
    old = spec(10)
    check_disk_update(old, spec(20, "Premium_LRS", networkAccessPolicy="DenyAll", burstingEnabled=True))
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        check_disk_update(old, spec(5))
    assert exc.value.target == "properties.diskSizeGB"
    with pytest.raises(PropertyChangeNotAllowed):
        check_disk_update(old, spec(10, "UltraSSD_LRS"))
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        check_disk_update(old, spec(10, hyperVGeneration="V2"))
    assert exc.value.target == "properties.hyperVGeneration"


def test_snapshots_change_sku_and_size_but_not_incremental():
    old = spec(1, snapshot=True)
    check_disk_update(old, spec(2, "Standard_ZRS", snapshot=True), snapshot=True)
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        check_disk_update(old, spec(1, snapshot=True, incremental=True), snapshot=True)
    assert exc.value.target == "properties.incremental"


@pytest.mark.parametrize("state", ["ReadyToUpload", "ActiveUpload", "ActiveSAS"])
def test_only_an_unattached_disk_resizes(state):
    check_resize("d", "Unattached")
    with pytest.raises(OperationNotAllowed) as exc:
        check_resize("d", state)
    assert state in exc.value.message
