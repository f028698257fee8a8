"""Image Builder's pure rules: template shape, immutability, customizers per OS, fetchable URIs, versioning."""

from __future__ import annotations

import copy

import pytest

from vmgallery.domain import errors
from vmgallery.domain import image_builder as rules

UAMI = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ib"
DEF = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d"


def body(**props) -> dict:
    return {
        "location": "East US",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {UAMI: {"principalId": "x"}}},
        "properties": {
            "source": {"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s", "version": "latest"},
            "customize": [{"type": "Shell", "name": "a", "inline": ["echo a"]}],
            "distribute": [{"type": "SharedImage", "galleryImageId": DEF, "runOutputName": "out"}],
            **props,
        },
    }


def test_a_template_is_normalized_and_its_read_only_fields_dropped():
    raw = body()
    raw["properties"]["lastRunStatus"] = {"runState": "Succeeded"}
    spec = rules.normalize_template(raw)
    assert spec["location"] == "eastus"
    assert "lastRunStatus" not in spec["properties"]
    assert spec["identity"]["userAssignedIdentities"] == {UAMI: {}}
    assert spec["properties"]["buildTimeoutInMinutes"] == 0


@pytest.mark.parametrize(
    ("change", "target"),
    [
        (lambda b: b.pop("identity"), "identity"),
        (lambda b: b["properties"].pop("distribute"), "properties.distribute"),
        (lambda b: b["properties"]["source"].update(type="Marketplace"), "properties.source.type"),
        (lambda b: b["properties"]["customize"][0].update(scriptUri="https://x/y"), "properties.customize[0]"),
        (lambda b: b["properties"]["customize"][0].pop("inline"), "properties.customize[0]"),
        (
            lambda b: b["properties"]["customize"].append({"type": "Shell", "inline": ["x"], "sha256Checksum": "12"}),
            "properties.customize[1]",
        ),
        (lambda b: b["properties"]["distribute"][0].update(runOutputName="bad name"), "properties.distribute[0]"),
        (lambda b: b["properties"].update(buildTimeoutInMinutes=961), "properties.buildTimeoutInMinutes"),
        (lambda b: b["properties"].update(vmProfile={"vmSize": "Standard_Huge"}), "properties.vmProfile.vmSize"),
        (lambda b: b["properties"].update(vmgalleryEngine="docker"), "properties.vmgalleryEngine"),
    ],
)
def test_bad_templates_are_refused_naming_the_property(change, target):
    raw = body()
    change(raw)
    with pytest.raises(errors.ArmError) as err:
        rules.normalize_template(raw)
    assert err.value.target == target


def test_only_tags_identity_vm_profile_and_distribute_may_change():
    old = rules.normalize_template(body())
    new = copy.deepcopy(old)
    new["tags"] = {"a": "b"}
    new["properties"]["vmProfile"] = {"vmSize": "Standard_D2ds_v4"}
    rules.check_template_update(old, new)
    new["properties"]["customize"][0]["inline"] = ["echo b"]
    with pytest.raises(errors.Conflict) as err:
        rules.check_template_update(old, new)
    assert err.value.status == 409 and err.value.target == "properties.customize"


def test_customizers_must_fit_the_source_os():
    spec = rules.normalize_template(body())
    rules.check_customizers_fit(spec, "Linux")
    with pytest.raises(errors.ArmError) as err:
        rules.check_customizers_fit(spec, "Windows")
    assert err.value.code == "UnsupportedCustomizerType"
    spec["properties"]["customize"] = [{"type": "WindowsUpdate"}]
    rules.check_customizers_fit(spec, "Windows")


@pytest.mark.parametrize(
    "uri",
    [
        "http://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.1.2.3/x",
        "https://[::1]/x",
        "http://example.com/x",
        "https://example.com/x",
        "ftp://example.com/x",
    ],
)
def test_uris_outside_what_the_operator_allows_are_refused(uri):
    with pytest.raises(errors.InvalidParameter) as err:
        rules.uri_kind(uri, False, ["https://scripts.example.org/"], "t")
    assert uri in err.value.message and err.value.target == "t"


def test_uris_the_operator_allows():
    assert rules.uri_kind("https://scripts.example.org/a.sh", False, ["https://scripts.example.org/"], "t") == "allowed"
    assert rules.uri_kind("http://127.0.0.1:10000/devstoreaccount1/c/a", True, [], "t") == "account"
    assert rules.uri_kind("https://10.0.0.5:8443/_blob/sas/g?sig=abc&se=1", False, [], "t") == "own"
    # A prefix must be https; a private address under an allowed https prefix is the operator's choice.
    assert rules.uri_kind("https://10.0.0.9/repo/a.sh", False, ["https://10.0.0.9/repo/"], "t") == "allowed"


@pytest.mark.parametrize(
    ("existing", "major", "expected"),
    [
        ([], -1, "1.0.0"),
        (["1.0.0", "1.0.9", "1.0.10"], -1, "1.0.11"),
        (["1.2.3", "2.0.0"], -1, "2.0.1"),
        (["1.2.3", "2.0.0"], 1, "1.2.4"),
        (["2.0.0"], 3, "3.0.0"),
        (["latest", "1.0.0"], -1, "1.0.1"),
    ],
)
def test_versioning_latest_is_the_next_patch(existing, major, expected):
    assert rules.next_version(existing, major) == expected


def test_machine_shapes_and_defaults():
    spec = rules.normalize_template(body())
    assert rules.machine_shape(spec, "V1") == ("Standard_D1_v2", 1, 3584)
    assert rules.machine_shape(spec, "V2") == ("Standard_D2ds_v4", 2, 8192)
    assert rules.timeout_minutes(spec) == 240
    assert rules.generalized(["Specialized"]) is False
    assert rules.generalized(["Specialized", "Generalized"]) is True


def test_target_regions_always_hold_the_build_region():
    assert rules.target_regions({}, "eastus") == [{"name": "eastus", "regionalReplicaCount": 1}]
    item = {"targetRegions": [{"name": "West US", "replicaCount": 2}], "storageAccountType": "Standard_ZRS"}
    assert rules.target_regions(item, "eastus") == [
        {"name": "eastus", "regionalReplicaCount": 1},
        {"name": "West US", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"},
    ]
    assert rules.target_regions({"replicationRegions": ["eastus", "westus"]}, "eastus") == [
        {"name": "eastus", "regionalReplicaCount": 1},
        {"name": "westus", "regionalReplicaCount": 1},
    ]


def test_versioning_source_takes_only_a_three_part_version():
    from vmgallery.domain import errors
    from vmgallery.domain.image_builder import source_version

    assert source_version("1.2.3") == "1.2.3"
    for bad in ("1.2", "1.2.3.4", "latest", "1.x.3"):
        with pytest.raises(errors.InvalidParameter, match="MAJOR.MINOR.PATCH"):
            source_version(bad)


def test_a_vhd_output_uri_is_a_blob_of_a_configured_account():
    rules.check_vhd_uri("http://127.0.0.1:10000/devstoreaccount1/vhds/a.vhd", True, "t")
    for uri, in_account in (("https://acct.blob.core.windows.net/vhds/a.vhd", False), ("vhds/a.vhd", True)):
        with pytest.raises(errors.InvalidParameter) as err:
            rules.check_vhd_uri(uri, in_account, "t")
        assert err.value.target == "t" and uri in err.value.message
    spec = body(distribute=[{"type": "VHD", "runOutputName": "a"}, {"type": "VHD", "runOutputName": "b", "uri": "u"}])
    assert rules.vhd_uris(spec) == [("u", "properties.distribute[1].uri")]
