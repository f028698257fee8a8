"""Updating a version: what may change, and a PUT over an existing version (az's GET + PUT with sources nulled)."""

from __future__ import annotations

import copy

import pytest

from vmgallery.domain.errors import InvalidParameter, PropertyChangeNotAllowed
from vmgallery.domain.versions import check_version_update, merge_stored, normalize_version

REGIONS = ("westus", "eastus", "northeurope")
RG = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute"
IMAGE = f"{RG}/images/img"
SNAP = f"{RG}/snapshots/os"
DISK = f"{RG}/disks/data"
P = "properties.publishingProfile"
S = "properties.storageProfile"


def create(storage: dict | None = None, **profile) -> dict:
    props = {
        "storageProfile": storage or {"source": {"id": IMAGE}},
        "publishingProfile": profile
        or {
            "targetRegions": [
                {"name": "westus"},
                {"name": "eastus", "storageAccountType": "Standard_ZRS", "regionalReplicaCount": 2},
            ]
        },
    }
    return normalize_version({"location": "westus", "properties": props}, location="westus", regions=REGIONS)


def stored(spec: dict) -> dict:
    """The stored resource as the app keeps it and GET shows it: the spec plus read-only fields."""
    body = copy.deepcopy(spec)
    body.update(
        {
            "id": f"{RG}/galleries/g/images/def/versions/1.0.0",
            "name": "1.0.0",
            "type": "Microsoft.Compute/galleries/images/versions",
        }
    )
    props = body["properties"]
    props["provisioningState"] = "Succeeded"
    props["publishingProfile"]["publishedDate"] = "2025-01-01T00:00:00Z"
    props["storageProfile"].setdefault("osDiskImage", {}).update({"sizeInGB": 30, "hostCaching": "ReadOnly"})
    return body


def az_update_body(body: dict) -> dict:
    """What `az sig image-version update` PUTs: the GET result with every source nulled."""
    body = copy.deepcopy(body)
    sp = body["properties"]["storageProfile"]
    sp["source"] = None
    sp.setdefault("osDiskImage", {})["source"] = None
    for disk in sp.get("dataDiskImages", []):
        disk["source"] = None
    return body


def put(existing: dict, body: dict) -> dict:
    """What the app does for a PUT over an existing version; returns the new spec."""
    old = normalize_version(existing, location="westus", regions=REGIONS)
    new = normalize_version(body, location="westus", regions=REGIONS, existing=existing)
    check_version_update(old, new)
    return new


def refused(existing: dict, body: dict) -> PropertyChangeNotAllowed:
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        put(existing, body)
    assert exc.value.code == "PropertyChangeNotAllowed" and exc.value.status == 400
    return exc.value


# -- az sig image-version update ------------------------------------------------------------------------------------
def test_az_update_echo_with_sources_nulled_is_no_change():
    existing = stored(create())
    new = put(existing, az_update_body(existing))
    assert new["properties"]["storageProfile"]["source"] == {"id": IMAGE}
    assert new == normalize_version(existing, location="westus", regions=REGIONS)


def test_az_update_keeps_disk_sources():
    existing = stored(
        create(
            {
                "osDiskImage": {"source": {"id": SNAP}},
                "dataDiskImages": [{"lun": 0, "source": {"id": DISK}, "hostCaching": "None"}],
            }
        )
    )
    body = az_update_body(existing)
    body["properties"]["publishingProfile"]["replicaCount"] = 3
    new = put(existing, body)
    sp = new["properties"]["storageProfile"]
    assert sp["osDiskImage"]["source"] == {"id": SNAP}
    assert sp["dataDiskImages"] == [{"lun": 0, "source": {"id": DISK}, "hostCaching": "None"}]
    assert new["properties"]["publishingProfile"]["replicaCount"] == 3


def test_update_without_source_id_example():
    """GalleryImageVersion_Update_WithoutSourceId.json: target regions and an empty storageProfile."""
    existing = stored(create())
    body = {
        "location": "West US",
        "properties": {
            "publishingProfile": {
                "targetRegions": [
                    {"name": "West US", "regionalReplicaCount": 1},
                    {"name": "East US", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"},
                ]
            },
            "storageProfile": {},
        },
    }
    new = put(existing, body)
    assert new["properties"]["storageProfile"]["source"] == {"id": IMAGE}


def test_put_without_storage_profile_or_properties_keeps_the_sources():
    existing = stored(create())
    assert put(existing, {"location": "westus", "properties": {"publishingProfile": {}}})["properties"][
        "storageProfile"
    ]["source"] == {"id": IMAGE}
    new = normalize_version({"location": "westus"}, location="westus", regions=REGIONS, existing=existing)
    assert new["properties"]["storageProfile"]["source"] == {"id": IMAGE}


def test_same_source_in_other_casing_is_no_change():
    existing = stored(create())
    body = az_update_body(existing)
    body["properties"]["storageProfile"]["source"] = {"id": IMAGE.upper()}
    assert put(existing, body)["properties"]["storageProfile"]["source"] == {"id": IMAGE}


def test_different_source_refused_naming_it():
    existing = stored(create())
    body = az_update_body(existing)
    body["properties"]["storageProfile"]["source"] = {"id": f"{RG}/images/other"}
    err = refused(existing, body)
    assert err.target == f"{S}.source.id" and "images/other" in err.message and "images/img" in err.message


def test_disk_source_added_to_an_image_version_refused():
    existing = stored(create())
    body = az_update_body(existing)
    body["properties"]["storageProfile"]["osDiskImage"]["source"] = {"id": SNAP}
    err = refused(existing, body)
    assert err.target == f"{S}.osDiskImage.source.id" and "not set" in err.message


def test_different_data_disk_source_refused():
    existing = stored(
        create({"osDiskImage": {"source": {"id": SNAP}}, "dataDiskImages": [{"lun": 0, "source": {"id": DISK}}]})
    )
    body = az_update_body(existing)
    body["properties"]["storageProfile"]["dataDiskImages"][0]["source"] = {"id": f"{RG}/disks/other"}
    assert refused(existing, body).target == f"{S}.dataDiskImages[0].source.id"


def test_new_data_disk_refused():
    existing = stored(create({"osDiskImage": {"source": {"id": SNAP}}}))
    body = az_update_body(existing)
    body["properties"]["storageProfile"]["dataDiskImages"] = [{"lun": 1, "source": {"id": DISK}}]
    assert refused(existing, body).target == f"{S}.dataDiskImages[0].source.id"


def test_host_caching_kept_when_omitted_and_not_changed():
    existing = stored(create())
    body = az_update_body(existing)
    del body["properties"]["storageProfile"]["osDiskImage"]["hostCaching"]
    assert put(existing, body)["properties"]["storageProfile"]["osDiskImage"]["hostCaching"] == "ReadOnly"
    body["properties"]["storageProfile"]["osDiskImage"]["hostCaching"] = "ReadWrite"
    assert refused(existing, body).target == f"{S}.osDiskImage.hostCaching"


def test_merge_does_not_change_its_inputs():
    existing = stored(create())
    body = az_update_body(existing)
    before_e, before_b = copy.deepcopy(existing), copy.deepcopy(body)
    merge_stored(existing, body)
    assert (existing, body) == (before_e, before_b)


# -- what may change ------------------------------------------------------------------------------------------------
def test_updatable_properties():
    existing = stored(create())
    body = az_update_body(existing)
    body["tags"] = {"team": "os"}
    pp = body["properties"]["publishingProfile"]
    pp.update({"replicaCount": 4, "excludeFromLatest": True, "endOfLifeDate": "2031-01-01T00:00:00Z"})
    pp["targetRegions"] = [{"name": "westus", "regionalReplicaCount": 5}, {"name": "North Europe"}]
    body["properties"]["safetyProfile"] = {"allowDeletionOfReplicatedLocations": True}
    new = put(existing, body)
    assert new["tags"] == {"team": "os"}
    assert new["properties"]["publishingProfile"]["targetRegions"] == [
        {"name": "westus", "regionalReplicaCount": 5, "storageAccountType": "Standard_LRS", "excludeFromLatest": False},
        {
            "name": "northeurope",
            "regionalReplicaCount": 4,
            "storageAccountType": "Standard_LRS",
            "excludeFromLatest": False,
        },
    ]


@pytest.mark.parametrize(
    "key, value",
    [
        ("storageAccountType", "Premium_LRS"),
        ("replicationMode", "Shallow"),
        ("storageAccountStrategy", "DefaultStandard_LRS"),
    ],
)
def test_fixed_profile_properties_refused(key, value):
    existing = stored(create(targetRegions=[{"name": "westus"}]))
    body = az_update_body(existing)
    body["properties"]["publishingProfile"][key] = value
    err = refused(existing, body)
    assert err.target == f"{P}.{key}" and value in err.message


def test_fixed_profile_properties_kept_when_omitted():
    existing = stored(
        create(targetRegions=[{"name": "westus"}], storageAccountType="Premium_LRS", replicationMode="Shallow")
    )
    body = {"location": "westus", "properties": {"publishingProfile": {"targetRegions": [{"name": "westus"}]}}}
    pp = put(existing, body)["properties"]["publishingProfile"]
    assert (pp["storageAccountType"], pp["replicationMode"]) == ("Premium_LRS", "Shallow")
    assert pp["targetRegions"][0]["storageAccountType"] == "Premium_LRS"


def test_region_storage_type_cannot_change_while_the_region_stays():
    existing = stored(create())
    body = az_update_body(existing)
    body["properties"]["publishingProfile"]["targetRegions"][1]["storageAccountType"] = "standard_lrs"
    err = refused(existing, body)
    assert err.target == f"{P}.targetRegions[1].storageAccountType"
    assert "'eastus'" in err.message and "Standard_ZRS" in err.message and "Standard_LRS" in err.message


def test_region_storage_type_kept_when_omitted_for_a_staying_region():
    existing = stored(create())
    body = az_update_body(existing)
    body["properties"]["publishingProfile"]["targetRegions"] = [{"name": "westus"}, {"name": "East US"}]
    regions = put(existing, body)["properties"]["publishingProfile"]["targetRegions"]
    assert [r["storageAccountType"] for r in regions] == ["Standard_LRS", "Standard_ZRS"]


def test_region_removed_then_added_with_another_storage_type():
    existing = stored(create())
    body = az_update_body(existing)
    body["properties"]["publishingProfile"]["targetRegions"] = [{"name": "westus"}]
    removed = stored(put(existing, body))
    body = az_update_body(removed)
    body["properties"]["publishingProfile"]["targetRegions"].append(
        {"name": "eastus", "storageAccountType": "Premium_LRS"}
    )
    assert (
        put(removed, body)["properties"]["publishingProfile"]["targetRegions"][1]["storageAccountType"] == "Premium_LRS"
    )


def test_source_region_cannot_be_dropped_on_update():
    existing = stored(create())
    body = az_update_body(existing)
    body["properties"]["publishingProfile"]["targetRegions"] = [{"name": "eastus"}]
    with pytest.raises(InvalidParameter) as exc:
        put(existing, body)
    assert exc.value.target == f"{P}.targetRegions" and "'westus'" in exc.value.message


def test_check_version_update_alone_refuses_a_source_change():
    old = create()
    new = create({"source": {"id": f"{RG}/images/other"}})
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        check_version_update(old, new)
    assert exc.value.target == f"{S}.source.id"


def test_region_encryption_kept_when_omitted_for_a_staying_region():
    des = {"osDiskImage": {"diskEncryptionSetId": f"{RG}/diskEncryptionSets/des"}}
    existing = stored(create(targetRegions=[{"name": "westus", "encryption": des}, {"name": "eastus"}]))
    body = copy.deepcopy(existing)
    body["properties"]["publishingProfile"]["targetRegions"] = [{"name": "westus"}, {"name": "eastus"}]
    regions = put(existing, body)["properties"]["publishingProfile"]["targetRegions"]
    assert regions[0]["encryption"] == des and "encryption" not in regions[1]


def test_an_image_source_answers_an_empty_os_disk_source():
    assert create()["properties"]["storageProfile"]["osDiskImage"] == {"source": {}}
    disks = create({"osDiskImage": {"source": {"id": SNAP}}})["properties"]["storageProfile"]["osDiskImage"]
    assert disks == {"source": {"id": SNAP}}
