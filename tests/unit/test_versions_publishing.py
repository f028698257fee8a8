"""The publishing profile of a version: target regions, replica counts, storage types, Shallow mode, defaults."""

from __future__ import annotations

import copy

import pytest

from vmgallery.domain.errors import ArmError, InvalidParameter, MissingRequiredProperty, NotSupported
from vmgallery.domain.versions import normalize_version

REGIONS = ("westus", "eastus", "northeurope")
IMAGE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/img"
P = "properties.publishingProfile"


def body(**profile) -> dict:
    out = {"location": "westus", "properties": {"storageProfile": {"source": {"id": IMAGE}}}}
    if profile:
        out["properties"]["publishingProfile"] = profile
    return out


def profile_of(b: dict, location: str = "westus") -> dict:
    return normalize_version(b, location=location, regions=REGIONS)["properties"]["publishingProfile"]


def rejected(b: dict, location: str = "westus") -> ArmError:
    before = copy.deepcopy(b)
    with pytest.raises(ArmError) as exc:
        normalize_version(b, location=location, regions=REGIONS)
    assert b == before
    assert exc.value.status == 400
    return exc.value


# -- defaults ---------------------------------------------------------------------------------------------------
def test_defaults_written_out_like_azure_echoes_them():
    assert profile_of(body()) == {
        "replicaCount": 1,
        "storageAccountType": "Standard_LRS",
        "replicationMode": "Full",
        "excludeFromLatest": False,
        "targetRegions": [
            {
                "name": "westus",
                "regionalReplicaCount": 1,
                "storageAccountType": "Standard_LRS",
                "excludeFromLatest": False,
            }
        ],
    }


def test_default_target_region_is_the_folded_location():
    b = body()
    b["location"] = "West US"
    spec = normalize_version(b, location="West US", regions=REGIONS)
    assert spec["location"] == "westus"
    assert [r["name"] for r in spec["properties"]["publishingProfile"]["targetRegions"]] == ["westus"]


def test_regions_inherit_the_profiles_count_and_type():
    p = profile_of(
        body(
            replicaCount=3,
            storageAccountType="premium_lrs",
            targetRegions=[
                {"name": "westus"},
                {"name": "eastus", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"},
            ],
        )
    )
    assert p["replicaCount"] == 3 and p["storageAccountType"] == "Premium_LRS"
    assert p["targetRegions"] == [
        {"name": "westus", "regionalReplicaCount": 3, "storageAccountType": "Premium_LRS", "excludeFromLatest": False},
        {"name": "eastus", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS", "excludeFromLatest": False},
    ]


def test_nulls_read_as_absent():
    p = profile_of(
        body(
            replicaCount=None,
            storageAccountType=None,
            replicationMode=None,
            excludeFromLatest=None,
            endOfLifeDate=None,
            targetRegions=[
                {"name": "westus", "regionalReplicaCount": None, "storageAccountType": None, "encryption": None}
            ],
        )
    )
    assert p == profile_of(body())


# -- canonical spelling -----------------------------------------------------------------------------------------
def test_region_names_are_folded():
    p = profile_of(body(targetRegions=[{"name": "West US"}, {"name": "North  Europe"}, {"name": "EASTUS"}]))
    assert [r["name"] for r in p["targetRegions"]] == ["westus", "northeurope", "eastus"]


@pytest.mark.parametrize(
    "typed, canonical",
    [
        ("standard_zrs", "Standard_ZRS"),
        ("STANDARD_LRS", "Standard_LRS"),
        ("premium_lrs", "Premium_LRS"),
        ("premiumv2_lrs", "PremiumV2_LRS"),
    ],
)
def test_storage_types_canonical(typed, canonical):
    p = profile_of(body(storageAccountType=typed, targetRegions=[{"name": "westus", "storageAccountType": typed}]))
    assert p["storageAccountType"] == canonical and p["targetRegions"][0]["storageAccountType"] == canonical


def test_replication_mode_canonical():
    assert profile_of(body(replicationMode="shallow"))["replicationMode"] == "Shallow"


# -- target regions ---------------------------------------------------------------------------------------------
def test_unknown_region_named():
    err = rejected(body(targetRegions=[{"name": "westus"}, {"name": "Mars Central"}]))
    assert isinstance(err, InvalidParameter)
    assert err.target == f"{P}.targetRegions[1].name" and "'Mars Central'" in err.message and "eastus" in err.message


def test_no_region_check_when_regions_not_given():
    b = body(targetRegions=[{"name": "westus"}, {"name": "retiredregion"}])
    spec = normalize_version(b, location="westus", regions=None)
    assert spec["properties"]["publishingProfile"]["targetRegions"][1]["name"] == "retiredregion"


def test_duplicate_region_even_when_spelt_differently():
    err = rejected(body(targetRegions=[{"name": "West US"}, {"name": "eastus"}, {"name": "westus"}]))
    assert err.target == f"{P}.targetRegions[2].name"
    assert "'westus'" in err.message and "targetRegions[0]" in err.message and "targetRegions[2]" in err.message


def test_source_region_must_be_a_target():
    err = rejected(body(targetRegions=[{"name": "eastus"}, {"name": "northeurope"}]))
    assert err.target == f"{P}.targetRegions"
    assert "'westus'" in err.message and "eastus, northeurope" in err.message


def test_source_region_compared_folded():
    assert (
        profile_of(body(targetRegions=[{"name": "West US"}]), location="West US")["targetRegions"][0]["name"]
        == "westus"
    )


@pytest.mark.parametrize(
    "regions, target",
    [
        ([], f"{P}.targetRegions"),
        ("westus", f"{P}.targetRegions"),
        (["westus"], f"{P}.targetRegions[0]"),
        ([{"regionalReplicaCount": 1}], f"{P}.targetRegions[0].name"),
        ([{"name": ""}], f"{P}.targetRegions[0].name"),
        ([{"name": 5}], f"{P}.targetRegions[0].name"),
    ],
)
def test_malformed_target_regions(regions, target):
    assert rejected(body(targetRegions=regions)).target == target


def test_region_name_required():
    assert isinstance(rejected(body(targetRegions=[{"regionalReplicaCount": 1}])), MissingRequiredProperty)


def test_region_encryption_and_extras_kept():
    enc = {"osDiskImage": {"diskEncryptionSetId": "/subscriptions/s/x"}, "dataDiskImages": [{"lun": 0}]}
    p = profile_of(body(targetRegions=[{"name": "westus", "encryption": enc, "excludeFromLatest": True}]))
    assert p["targetRegions"][0] == {
        "name": "westus",
        "regionalReplicaCount": 1,
        "storageAccountType": "Standard_LRS",
        "encryption": enc,
        "excludeFromLatest": True,
    }
    assert (
        rejected(body(targetRegions=[{"name": "westus", "encryption": "yes"}])).target
        == f"{P}.targetRegions[0].encryption"
    )


# -- counts, types, flags, dates ----------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 50, 100])
def test_replica_counts_allowed(count):
    p = profile_of(body(replicaCount=count, targetRegions=[{"name": "westus", "regionalReplicaCount": count}]))
    assert p["replicaCount"] == count and p["targetRegions"][0]["regionalReplicaCount"] == count


@pytest.mark.parametrize("count", [0, -1, 101, 1.5, "2", True])
def test_replica_count_rejected(count):
    err = rejected(body(replicaCount=count))
    assert err.target == f"{P}.replicaCount" and str(count) in err.message


@pytest.mark.parametrize("count", [0, 101])
def test_regional_replica_count_rejected(count):
    err = rejected(body(targetRegions=[{"name": "westus", "regionalReplicaCount": count}]))
    assert err.target == f"{P}.targetRegions[0].regionalReplicaCount" and str(count) in err.message


def test_storage_type_rejected_names_value():
    err = rejected(body(storageAccountType="StandardSSD_LRS"))
    assert err.target == f"{P}.storageAccountType" and "'StandardSSD_LRS'" in err.message
    err = rejected(body(targetRegions=[{"name": "westus", "storageAccountType": "UltraSSD_LRS"}]))
    assert err.target == f"{P}.targetRegions[0].storageAccountType" and "'UltraSSD_LRS'" in err.message


def test_replication_mode_rejected():
    err = rejected(body(replicationMode="Partial"))
    assert err.target == f"{P}.replicationMode" and "'Partial'" in err.message


@pytest.mark.parametrize("key", ["excludeFromLatest"])
def test_flags_must_be_booleans(key):
    assert rejected(body(**{key: "true"})).target == f"{P}.{key}"
    assert rejected(body(targetRegions=[{"name": "westus", key: 1}])).target == f"{P}.targetRegions[0].{key}"


def test_end_of_life_date():
    assert profile_of(body(endOfLifeDate="2030-01-01T12:59:59Z"))["endOfLifeDate"] == "2030-01-01T12:59:59Z"
    err = rejected(body(endOfLifeDate="next year"))
    assert err.target == f"{P}.endOfLifeDate" and "'next year'" in err.message


def test_published_date_is_read_only():
    assert "publishedDate" not in profile_of(body(publishedDate="2018-01-01T00:00:00Z"))


def test_storage_account_strategy():
    assert (
        profile_of(body(storageAccountStrategy="preferstandard_zrs"))["storageAccountStrategy"] == "PreferStandard_ZRS"
    )
    assert rejected(body(storageAccountStrategy="Cheapest")).target == f"{P}.storageAccountStrategy"


def test_edge_zones_not_supported():
    err = rejected(body(targetExtendedLocations=[{"name": "westus", "extendedLocation": {"name": "z"}}]))
    assert isinstance(err, NotSupported) and err.target == f"{P}.targetExtendedLocations"
    assert "targetExtendedLocations" not in profile_of(body(targetExtendedLocations=[]))


def test_profile_must_be_an_object():
    b = body()
    b["properties"]["publishingProfile"] = ["westus"]
    assert rejected(b).target == P


# -- Shallow ----------------------------------------------------------------------------------------------------
def test_shallow_in_the_source_region_only():
    p = profile_of(body(replicationMode="Shallow", targetRegions=[{"name": "West US", "regionalReplicaCount": 1}]))
    assert p["replicationMode"] == "Shallow" and p["replicaCount"] == 1
    assert profile_of(body(replicationMode="Shallow"))["targetRegions"][0]["name"] == "westus"


def test_shallow_rejects_other_regions():
    err = rejected(body(replicationMode="Shallow", targetRegions=[{"name": "westus"}, {"name": "East US"}]))
    assert err.target == f"{P}.targetRegions" and "'westus'" in err.message and "eastus" in err.message


def test_shallow_rejects_more_replicas():
    err = rejected(body(replicationMode="Shallow", replicaCount=2))
    assert err.target == f"{P}.replicaCount" and "replicaCount is 2" in err.message
    err = rejected(body(replicationMode="Shallow", targetRegions=[{"name": "westus", "regionalReplicaCount": 3}]))
    assert err.target == f"{P}.targetRegions[0].regionalReplicaCount" and "3" in err.message


# -- the rest of the body ---------------------------------------------------------------------------------------
def test_read_only_fields_dropped_and_safety_profile_kept():
    b = body()
    b.update({"id": "/x", "name": "1.0.0", "type": "Microsoft.Compute/galleries/images/versions", "tags": {"a": "b"}})
    b["properties"].update(
        {
            "provisioningState": "Succeeded",
            "replicationStatus": {"aggregatedState": "Completed", "summary": []},
            "safetyProfile": {
                "allowDeletionOfReplicatedLocations": True,
                "blockDeletionBeforeEndOfLife": False,
                "reportedForPolicyViolation": True,
                "policyViolations": [{"category": "Other"}],
            },
        }
    )
    spec = normalize_version(b, location="westus", regions=REGIONS)
    assert set(spec) == {"location", "tags", "properties"}
    assert set(spec["properties"]) == {"publishingProfile", "storageProfile", "safetyProfile"}
    assert spec["properties"]["safetyProfile"] == {
        "allowDeletionOfReplicatedLocations": True,
        "blockDeletionBeforeEndOfLife": False,
    }


@pytest.mark.parametrize("key", ["allowDeletionOfReplicatedLocations", "blockDeletionBeforeEndOfLife"])
def test_safety_flags_must_be_booleans(key):
    b = body()
    b["properties"]["safetyProfile"] = {key: "no"}
    assert rejected(b).target == f"properties.safetyProfile.{key}"


def test_properties_required_and_tags_checked():
    assert isinstance(rejected({"location": "westus"}), MissingRequiredProperty)
    b = body()
    b["tags"] = {"a": 5}
    assert rejected(b).target == "tags.a"


def test_input_not_changed():
    b = body(targetRegions=[{"name": "West US", "storageAccountType": "standard_zrs"}])
    before = copy.deepcopy(b)
    normalize_version(b, location="westus", regions=REGIONS)
    assert b == before


def test_normalizing_a_spec_again_changes_nothing():
    spec = normalize_version(
        body(
            replicaCount=2,
            endOfLifeDate="2030-01-01T00:00:00Z",
            targetRegions=[{"name": "West US"}, {"name": "eastus", "excludeFromLatest": True}],
        ),
        location="westus",
        regions=REGIONS,
    )
    assert normalize_version(spec, location="westus", regions=REGIONS) == spec
