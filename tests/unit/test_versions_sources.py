"""Where a version's bytes come from: source kinds, disks and luns, VHDs, unsupported sources, fit to the definition."""

from __future__ import annotations

import copy

import pytest

from vmgallery.domain.errors import ArmError, InvalidParameter, MissingRequiredProperty, NotSupported
from vmgallery.domain.sources import (
    DISKS,
    GALLERY_IMAGE_VERSION,
    GIB,
    MANAGED_IMAGE,
    SourceFacts,
    check_source_fits,
    version_sources,
)
from vmgallery.domain.versions import normalize_version

RG = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute"
IMAGE = f"{RG}/images/img"
VERSION = f"{RG}/galleries/g/images/def/versions/1.0.0"
SNAP = f"{RG}/snapshots/os"
DISK = f"{RG}/disks/data"
ACCOUNT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct"
VHD = "https://acct.blob.core.windows.net/vhds/os.vhd"
S = "properties.storageProfile"


def body(storage: dict, **profile) -> dict:
    props = {"storageProfile": storage}
    if profile:
        props["publishingProfile"] = profile
    return {"location": "westus", "properties": props}


def spec_of(b: dict) -> dict:
    return normalize_version(b, location="westus", regions=("westus", "eastus"))


def storage_of(storage: dict) -> dict:
    return spec_of(body(storage))["properties"]["storageProfile"]


def rejected(storage: dict) -> ArmError:
    b = body(storage)
    before = copy.deepcopy(b)
    with pytest.raises(ArmError) as exc:
        spec_of(b)
    assert b == before
    assert exc.value.status == 400
    return exc.value


# -- image sources ----------------------------------------------------------------------------------------------
def test_managed_image_source():
    spec = spec_of(body({"source": {"id": IMAGE}}))
    src = version_sources(spec)
    assert src.kind == MANAGED_IMAGE and src.id.text == IMAGE and src.os_disk is None and src.data_disks == ()
    assert src.target == f"{S}.source.id" and not src.latest


def test_source_id_keywords_spelt_canonically_names_kept():
    sp = storage_of({"source": {"id": "/SUBSCRIPTIONS/s/resourcegroups/RG/providers/microsoft.compute/IMAGES/Img"}})
    assert sp["source"]["id"] == "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Compute/images/Img"


@pytest.mark.parametrize("version", ["1.0.0", "latest", "LATEST"])
def test_gallery_image_version_source(version):
    rid = f"{RG}/galleries/g/images/def/versions/{version}"
    src = version_sources(spec_of(body({"source": {"id": rid}})))
    assert src.kind == GALLERY_IMAGE_VERSION and src.id.name == version
    assert src.latest == (version.lower() == "latest")


def test_image_source_with_disk_settings_only():
    sp = storage_of(
        {
            "source": {"id": IMAGE},
            "osDiskImage": {"hostCaching": "readonly", "sizeInGB": 10},
            "dataDiskImages": [{"lun": 1, "hostCaching": "none", "sizeInGB": 10}],
        }
    )
    assert sp == {
        "source": {"id": IMAGE},
        "osDiskImage": {"hostCaching": "ReadOnly", "source": {}},  # Azure answers {} when the image brings the disk
        "dataDiskImages": [{"lun": 1, "hostCaching": "None"}],
    }


@pytest.mark.parametrize(
    "rid, words",
    [
        (SNAP, ["is a snapshot", "osDiskImage.source.id"]),
        (DISK, ["is a disk", "osDiskImage.source.id"]),
        (ACCOUNT, ["Microsoft.Storage/storageAccounts", "managed image", "gallery image version"]),
        (f"{RG}/galleries/g/images/def", ["Microsoft.Compute/galleries/images id"]),
        (f"{RG}/galleries/g", ["Microsoft.Compute/galleries id"]),
        ("not-an-id", ["'not-an-id' is not an ARM resource id"]),
        ("/subscriptions/s/resourceGroups/rg", ["is not an ARM resource id"]),
    ],
)
def test_wrong_kind_of_source_id(rid, words):
    err = rejected({"source": {"id": rid}})
    assert isinstance(err, InvalidParameter) and err.target == f"{S}.source.id"
    for w in words:
        assert w in err.message


def test_vm_source_not_supported_yet():
    err = rejected({"source": {"virtualMachineId": f"{RG}/virtualMachines/vm"}})
    assert isinstance(err, NotSupported) and err.code == "NotSupported"
    assert err.target == f"{S}.source.virtualMachineId" and "virtual machine" in err.message
    err = rejected({"source": {"id": f"{RG}/virtualMachines/vm"}})
    assert isinstance(err, NotSupported) and err.target == f"{S}.source.id"


def test_community_source_not_supported_yet():
    err = rejected({"source": {"communityGalleryImageId": "/CommunityGalleries/pub/Images/i/Versions/1.0.0"}})
    assert isinstance(err, NotSupported) and err.target == f"{S}.source.communityGalleryImageId"


def test_source_without_id():
    assert rejected({"source": {"uri": VHD}}).target == f"{S}.source"


# -- disk sources -----------------------------------------------------------------------------------------------
def test_snapshot_and_disk_sources():
    spec = spec_of(
        body(
            {
                "osDiskImage": {"source": {"id": SNAP}, "hostCaching": "ReadOnly"},
                "dataDiskImages": [
                    {"lun": 3, "source": {"id": DISK}},
                    {"lun": 0, "source": {"id": f"{RG}/snapshots/d0"}},
                ],
            }
        )
    )
    src = version_sources(spec)
    assert src.kind == DISKS and src.id is None and src.target == f"{S}.osDiskImage.source.id"
    assert (src.os_disk.kind, src.os_disk.lun, src.os_disk.id.text) == ("snapshot", None, SNAP)
    assert [(d.lun, d.kind, d.target) for d in src.data_disks] == [
        (0, "snapshot", f"{S}.dataDiskImages[1].source.id"),
        (3, "disk", f"{S}.dataDiskImages[0].source.id"),
    ]


def test_vhd_source():
    spec = spec_of(
        body(
            {
                "osDiskImage": {"source": {"uri": VHD, "storageAccountId": ACCOUNT}},
                "dataDiskImages": [{"lun": 1, "source": {"uri": VHD, "storageAccountId": ACCOUNT}}],
            }
        )
    )
    src = version_sources(spec)
    assert src.os_disk.kind == "vhd" and src.os_disk.uri == VHD and src.os_disk.storage_account.text == ACCOUNT
    assert src.target == f"{S}.osDiskImage.source.uri" and src.data_disks[0].kind == "vhd"


@pytest.mark.parametrize(
    "source, target, words",
    [
        ({"uri": VHD}, "storageAccountId", ["needs both 'uri' and 'storageAccountId'"]),
        ({"storageAccountId": ACCOUNT}, "uri", ["needs both"]),
        ({"uri": "ftp://x/y.vhd", "storageAccountId": ACCOUNT}, "uri", ["'ftp://x/y.vhd'", "http(s)"]),
        ({"uri": "os.vhd", "storageAccountId": ACCOUNT}, "uri", ["absolute"]),
        ({"uri": VHD, "storageAccountId": IMAGE}, "storageAccountId", ["Microsoft.Compute/images", "storage account"]),
        ({"id": SNAP, "uri": VHD}, "id", ["both an id and a VHD"]),
        ({"id": IMAGE}, "id", ["is a managed image", "storageProfile.source.id"]),
        ({"id": VERSION}, "id", ["is a gallery image version", "storageProfile.source.id"]),
        ({"id": ACCOUNT}, "id", ["managed disk", "snapshot"]),
        ({"id": "snap"}, "id", ["not an ARM resource id"]),
        ({"blob": VHD}, "blob", ["unknown properties blob"]),
    ],
)
def test_bad_os_disk_source(source, target, words):
    err = rejected({"osDiskImage": {"source": source}})
    assert err.target == f"{S}.osDiskImage.source.{target}"
    for w in words:
        assert w in err.message


def test_data_disk_source_checked_like_the_os_disk():
    err = rejected({"osDiskImage": {"source": {"id": SNAP}}, "dataDiskImages": [{"lun": 0, "source": {"uri": VHD}}]})
    assert err.target == f"{S}.dataDiskImages[0].source.storageAccountId"


# -- luns -------------------------------------------------------------------------------------------------------
def os_and(*data) -> dict:
    return {"osDiskImage": {"source": {"id": SNAP}}, "dataDiskImages": list(data)}


@pytest.mark.parametrize("lun", [0, 1, 63])
def test_luns_allowed(lun):
    assert storage_of(os_and({"lun": lun, "source": {"id": DISK}}))["dataDiskImages"][0]["lun"] == lun


@pytest.mark.parametrize("lun", [-1, 64, "0", 1.0, True])
def test_luns_rejected(lun):
    err = rejected(os_and({"lun": lun, "source": {"id": DISK}}))
    assert err.target == f"{S}.dataDiskImages[0].lun" and str(lun) in err.message


def test_lun_required():
    err = rejected(os_and({"source": {"id": DISK}}))
    assert isinstance(err, MissingRequiredProperty) and err.target == f"{S}.dataDiskImages[0].lun"


def test_duplicate_luns():
    err = rejected(
        os_and(
            {"lun": 2, "source": {"id": DISK}}, {"lun": 1, "source": {"id": DISK}}, {"lun": 2, "source": {"id": SNAP}}
        )
    )
    assert err.target == f"{S}.dataDiskImages[2].lun"
    assert "lun 2" in err.message and "dataDiskImages[0]" in err.message and "dataDiskImages[2]" in err.message


def test_duplicate_luns_with_an_image_source():
    err = rejected({"source": {"id": IMAGE}, "dataDiskImages": [{"lun": 0}, {"lun": 0}]})
    assert err.target == f"{S}.dataDiskImages[1].lun"


def test_data_disks_must_be_a_list_of_objects():
    assert rejected({"source": {"id": IMAGE}, "dataDiskImages": {"lun": 0}}).target == f"{S}.dataDiskImages"
    assert rejected({"source": {"id": IMAGE}, "dataDiskImages": [0]}).target == f"{S}.dataDiskImages[0]"


# -- host caching ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("typed, canonical", [("None", "None"), ("readonly", "ReadOnly"), ("READWRITE", "ReadWrite")])
def test_host_caching(typed, canonical):
    sp = storage_of(
        {
            "osDiskImage": {"source": {"id": SNAP}, "hostCaching": typed},
            "dataDiskImages": [{"lun": 0, "source": {"id": DISK}, "hostCaching": typed}],
        }
    )
    assert sp["osDiskImage"]["hostCaching"] == canonical and sp["dataDiskImages"][0]["hostCaching"] == canonical


def test_host_caching_rejected():
    err = rejected({"osDiskImage": {"source": {"id": SNAP}, "hostCaching": "WriteBack"}})
    assert err.target == f"{S}.osDiskImage.hostCaching" and "'WriteBack'" in err.message
    err = rejected(os_and({"lun": 0, "source": {"id": DISK}, "hostCaching": "Full"}))
    assert err.target == f"{S}.dataDiskImages[0].hostCaching"


def test_size_is_read_only():
    sp = storage_of(
        {
            "osDiskImage": {"source": {"id": SNAP}, "sizeInGB": 30},
            "dataDiskImages": [{"lun": 0, "source": {"id": DISK}, "sizeInGB": 5}],
        }
    )
    assert "sizeInGB" not in sp["osDiskImage"] and "sizeInGB" not in sp["dataDiskImages"][0]


# -- which sources go together ------------------------------------------------------------------------------------
def test_no_source_at_all():
    for storage in (
        {},
        {"source": None, "osDiskImage": {"source": None}},
        {"source": {"id": None}, "osDiskImage": {"hostCaching": "ReadOnly"}},
    ):
        err = rejected(storage)
        assert isinstance(err, MissingRequiredProperty) and err.target == S
        assert "storageProfile.source.id" in err.message and "osDiskImage.source" in err.message


def test_storage_profile_required():
    b = {"location": "westus", "properties": {}}
    with pytest.raises(MissingRequiredProperty) as exc:
        spec_of(b)
    assert exc.value.target == S


def test_image_source_and_os_disk_source_do_not_mix():
    err = rejected({"source": {"id": IMAGE}, "osDiskImage": {"source": {"id": SNAP}}})
    assert err.target == f"{S}.osDiskImage.source" and "already brings the OS disk" in err.message


def test_image_source_and_data_disk_source_do_not_mix():
    err = rejected({"source": {"id": VERSION}, "dataDiskImages": [{"lun": 4, "source": {"id": DISK}}]})
    assert err.target == f"{S}.dataDiskImages[0].source" and "lun 4" in err.message


def test_data_disks_need_an_os_disk():
    err = rejected({"dataDiskImages": [{"lun": 0, "source": {"id": DISK}}]})
    assert err.target == f"{S}.osDiskImage.source" and "OS disk" in err.message


def test_each_data_disk_needs_a_source_when_built_from_disks():
    err = rejected(os_and({"lun": 0, "source": {"id": DISK}}, {"lun": 5}))
    assert isinstance(err, MissingRequiredProperty)
    assert err.target == f"{S}.dataDiskImages[1].source" and "lun 5" in err.message


# -- fit to the definition -----------------------------------------------------------------------------------------
DEFINITION = {
    "properties": {
        "osType": "Linux",
        "osState": "Generalized",
        "hyperVGeneration": "V2",
        "architecture": "x64",
        "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
    }
}


def fits(storage: dict, facts: SourceFacts, definition: dict = DEFINITION, **profile) -> None:
    check_source_fits(definition, spec_of(body(storage, **profile)), facts)


def test_fitting_source_accepted():
    fits({"source": {"id": IMAGE}}, SourceFacts("linux", "generalized", "v2", "X64", 30 * GIB, {0: 1024 * GIB}))
    fits({"source": {"id": IMAGE}}, SourceFacts())  # nothing known, nothing to refuse


@pytest.mark.parametrize(
    "facts, words",
    [
        (SourceFacts(os_type="Windows"), ["OS type is Windows", "osType is Linux"]),
        (SourceFacts(os_state="Specialized"), ["OS state is Specialized", "osState is Generalized"]),
        (SourceFacts(hyper_v_generation="V1"), ["Hyper-V generation is V1", "hyperVGeneration is V2"]),
        (SourceFacts(architecture="Arm64"), ["architecture is Arm64", "architecture is x64"]),
    ],
)
def test_mismatch_names_both_values_and_the_source(facts, words):
    with pytest.raises(InvalidParameter) as exc:
        fits({"source": {"id": IMAGE}}, facts)
    assert exc.value.target == f"{S}.source.id"
    for w in words:
        assert w in exc.value.message


def test_mismatch_targets_the_os_disk_source():
    with pytest.raises(InvalidParameter) as exc:
        fits({"osDiskImage": {"source": {"uri": VHD, "storageAccountId": ACCOUNT}}}, SourceFacts(os_type="Windows"))
    assert exc.value.target == f"{S}.osDiskImage.source.uri"


def test_definition_defaults_v1_x64():
    definition = {"properties": {"osType": "Linux", "osState": "Generalized"}}
    fits({"source": {"id": IMAGE}}, SourceFacts(hyper_v_generation="V1", architecture="x64"), definition)
    with pytest.raises(InvalidParameter, match="hyperVGeneration is V1"):
        fits({"source": {"id": IMAGE}}, SourceFacts(hyper_v_generation="V2"), definition)


def test_data_disk_over_1_tib_rejected_in_full_mode():
    storage = os_and({"lun": 0, "source": {"id": DISK}}, {"lun": 7, "source": {"id": DISK}})
    fits(storage, SourceFacts(data_disk_sizes={0: 1024 * GIB, 7: 10 * GIB}))
    with pytest.raises(InvalidParameter) as exc:
        fits(storage, SourceFacts(data_disk_sizes={0: 10 * GIB, 7: 1025 * GIB}))
    err = exc.value
    assert err.target == f"{S}.dataDiskImages[1]"
    for w in ("lun 7", "1025 GiB", "replicationMode Full", "at most 1024 GiB", "Shallow allows up to 32768 GiB"):
        assert w in err.message


def test_odd_sizes_shown_exactly():
    with pytest.raises(InvalidParameter) as exc:
        fits({"source": {"id": IMAGE}}, SourceFacts(data_disk_sizes={2: 1024 * GIB + 512}))
    assert f"({1024 * GIB + 512} bytes)" in exc.value.message and exc.value.target == f"{S}.source.id"


def test_shallow_allows_up_to_32_tib():
    storage = {"source": {"id": IMAGE}}
    fits(storage, SourceFacts(data_disk_sizes={0: 32768 * GIB}), replicationMode="Shallow")
    with pytest.raises(InvalidParameter) as exc:
        fits(storage, SourceFacts(data_disk_sizes={0: 32769 * GIB}), replicationMode="Shallow")
    assert "32769 GiB" in exc.value.message and "replicationMode Shallow" in exc.value.message
    assert "at most 32768 GiB" in exc.value.message


def test_os_disk_size_alone_is_not_limited_here():
    fits({"source": {"id": IMAGE}}, SourceFacts(os_disk_size_bytes=2048 * GIB))
