"""VHD blobs from a storage account, through the real SDK: disk and snapshot Import, managed images from blobUri,
and imports that must fail cleanly. Azurite is the storage account; this module's server maps it in config.toml."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.azurite import Azurite, azurite  # noqa: F401  (the session fixture)
from vmgallery.domain.vhd import vhd_footer

from ..conftest import running_server
from .test_disks import _chunk_files, read_disk

MIB = 1 << 20
ACCOUNT_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/storage/providers/"
    "Microsoft.Storage/storageAccounts/devstoreaccount1"
)
UNKNOWN_ID = ACCOUNT_ID.replace("devstoreaccount1", "unknown")


@pytest.fixture(scope="module")
def server(backend, azurite: Azurite, tmp_path_factory):  # noqa: F811  (this module's own server)
    """A server whose config maps ACCOUNT_ID to Azurite, on each database."""
    data_dir = tmp_path_factory.mktemp(f"imports-{backend}")
    (data_dir / "config.toml").write_text(
        f'[storage_accounts."{ACCOUNT_ID}"]\n'
        f'blob_endpoint = "{azurite.endpoint}"\n'
        f'account_key = "{azurite.account_key}"\n'
    )
    with running_server(backend, data_dir) as srv:
        yield srv


def ext4_vhd(folder: Path, mib: int = 4) -> Path:
    """A fixed VHD of an ext4 file system holding a few files: real metadata, data, and zero regions."""
    tree = folder / f"tree-{uuid.uuid4().hex[:6]}"
    tree.mkdir()
    (tree / "hello.txt").write_text("hello from vmgallery\n")
    (tree / "noise.bin").write_bytes(os.urandom(300_000))
    raw = folder / f"{tree.name}.raw"
    with open(raw, "wb") as f:
        f.truncate(mib * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(raw)], check=True)
    vhd = folder / f"{tree.name}.vhd"
    vhd.write_bytes(raw.read_bytes() + vhd_footer(mib * MIB))
    return vhd


def import_body(uri: str, account: str = ACCOUNT_ID) -> dict:
    return {
        "location": "eastus",
        "properties": {
            "osType": "Linux",
            "creationData": {"createOption": "Import", "sourceUri": uri, "storageAccountId": account},
        },
    }


def test_disk_and_snapshot_import_read_back_byte_identical(compute, server, group, azurite, tmp_path):
    vhd = ext4_vhd(tmp_path)
    uri = azurite.upload(vhd)
    disk = compute.disks.begin_create_or_update(group, "d1", import_body(uri)).result()
    assert disk.provisioning_state == "Succeeded" and disk.disk_state == "Unattached"
    assert disk.disk_size_gb == 1 and disk.disk_size_bytes == 4 * MIB
    assert disk.creation_data.source_uri == uri
    assert read_disk(compute, server, group, "d1") == vhd.read_bytes()
    snap = compute.snapshots.begin_create_or_update(group, "s1", import_body(uri)).result()
    assert snap.provisioning_state == "Succeeded" and snap.disk_size_gb == 1
    assert read_disk(compute, server, group, "s1", snapshot=True) == vhd.read_bytes()


def test_image_from_blob_uris(compute, server, group, azurite, tmp_path):
    os_vhd, data_vhd = ext4_vhd(tmp_path, 4), ext4_vhd(tmp_path, 6)
    os_uri, data_uri = azurite.upload(os_vhd), azurite.upload(data_vhd, name="data disk.vhd")
    made = compute.images.begin_create_or_update(
        group,
        "img",
        {
            "location": "eastus",
            "properties": {
                "storageProfile": {
                    "osDisk": {"osType": "Linux", "osState": "Generalized", "blobUri": os_uri},
                    "dataDisks": [{"lun": 2, "blobUri": data_uri}],
                }
            },
        },
    ).result()
    assert made.provisioning_state == "Succeeded" and made.hyper_v_generation == "V1"
    assert made.storage_profile.os_disk.blob_uri == os_uri and made.storage_profile.os_disk.disk_size_gb == 1
    assert [(d.lun, d.blob_uri, d.disk_size_gb) for d in made.storage_profile.data_disks] == [(2, data_uri, 1)]
    # The image holds exactly the blobs' bytes: importing them again as disks finds every chunk already stored.
    before = _chunk_files(server)
    compute.disks.begin_create_or_update(group, "os", import_body(os_uri)).result()
    compute.disks.begin_create_or_update(group, "data", import_body(data_uri)).result()
    assert _chunk_files(server) == before
    assert read_disk(compute, server, group, "os") == os_vhd.read_bytes()
    assert read_disk(compute, server, group, "data") == data_vhd.read_bytes()


def test_image_mixing_a_managed_disk_and_a_blob(compute, server, group, azurite, tmp_path):
    os_vhd, data_vhd = ext4_vhd(tmp_path), ext4_vhd(tmp_path, 3)
    compute.disks.begin_create_or_update(group, "os", import_body(azurite.upload(os_vhd))).result()
    made = compute.images.begin_create_or_update(
        group,
        "img",
        {
            "location": "eastus",
            "properties": {
                "hyperVGeneration": "V2",
                "storageProfile": {
                    "osDisk": {
                        "osType": "Linux",
                        "osState": "Specialized",
                        "managedDisk": {"id": compute.disks.get(group, "os").id},
                    },
                    "dataDisks": [{"lun": 0, "blobUri": azurite.upload(data_vhd), "diskSizeGB": 8}],
                },
            },
        },
    ).result()
    assert made.provisioning_state == "Succeeded" and made.hyper_v_generation == "V2"
    assert made.storage_profile.os_disk.disk_size_gb == 1 and made.storage_profile.data_disks[0].disk_size_gb == 8


def refused(operation, *phrases: str) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as exc:
        operation().result()
    for phrase in phrases:
        assert phrase in str(exc.value), str(exc.value)
    return exc.value


@pytest.fixture
def bad_blobs(azurite, tmp_path) -> dict[str, str]:
    """URLs of blobs no import may accept, by what is wrong with them."""
    raw = ext4_vhd(tmp_path).read_bytes()[:-512]
    (tmp_path / "raw.img").write_bytes(raw)
    (tmp_path / "bad-footer.vhd").write_bytes(raw + os.urandom(512))
    container = f"bad{uuid.uuid4().hex[:8]}"
    return {
        "missing": azurite.upload(ext4_vhd(tmp_path), container=container).rsplit("/", 1)[0] + "/missing.vhd",
        "size": azurite.upload(tmp_path / "raw.img", container=container),
        "footer": azurite.upload(tmp_path / "bad-footer.vhd", container=container),
    }


@pytest.mark.parametrize(
    "what, phrase", [("missing", "does not exist"), ("size", "multiple of 1 MiB"), ("footer", "not a fixed VHD")]
)
def test_failed_disk_and_snapshot_imports_leave_nothing(compute, group, bad_blobs, what, phrase):
    for ops in (compute.disks, compute.snapshots):
        error = refused(
            lambda: ops.begin_create_or_update(group, "bad", import_body(bad_blobs[what])), phrase, "sourceUri"
        )
        assert "InvalidParameter" in str(error)
        with pytest.raises(ResourceNotFoundError):
            ops.get(group, "bad")


@pytest.mark.parametrize(
    "what, phrase", [("missing", "does not exist"), ("size", "multiple of 1 MiB"), ("footer", "not a fixed VHD")]
)
def test_failed_image_imports_leave_nothing(compute, group, azurite, tmp_path, bad_blobs, what, phrase):
    good = azurite.upload(ext4_vhd(tmp_path))
    refused(
        lambda: compute.images.begin_create_or_update(
            group,
            "bad",
            {
                "location": "eastus",
                "properties": {
                    "storageProfile": {
                        "osDisk": {"osType": "Linux", "osState": "Generalized", "blobUri": good},
                        "dataDisks": [{"lun": 7, "blobUri": bad_blobs[what]}],
                    }
                },
            },
        ),
        phrase,
        bad_blobs[what],
    )
    with pytest.raises(ResourceNotFoundError):
        compute.images.get(group, "bad")
    assert list(compute.images.list_by_resource_group(group)) == []


def test_unconfigured_storage_accounts_are_refused_at_once(compute, group, azurite, tmp_path):
    uri = azurite.upload(ext4_vhd(tmp_path))
    refused(
        lambda: compute.disks.begin_create_or_update(group, "bad", import_body(uri, UNKNOWN_ID)),
        "not known to this server",
        "storageAccountId",
    )
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(group, "bad")
    # A managed image names no account: a blob on a host no configured account serves is refused the same way.
    elsewhere = uri.replace("127.0.0.1", "localhost")
    refused(
        lambda: compute.images.begin_create_or_update(
            group,
            "bad",
            {
                "location": "eastus",
                "properties": {
                    "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized", "blobUri": elsewhere}}
                },
            },
        ),
        "not in a storage account known to this server",
        "blobUri",
    )
    with pytest.raises(ResourceNotFoundError):
        compute.images.get(group, "bad")


def _definition(compute, group: str) -> tuple[str, str]:
    gallery = f"g{uuid.uuid4().hex[:8]}"
    compute.galleries.begin_create_or_update(group, gallery, {"location": "eastus"}).result()
    compute.gallery_images.begin_create_or_update(
        group,
        gallery,
        "linux",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "osState": "Generalized",
                "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
            },
        },
    ).result()
    return gallery, "linux"


def test_version_from_vhd_blobs_and_from_a_managed_image(compute, server, group, azurite, tmp_path):
    gallery, definition = _definition(compute, group)
    os_vhd, data_vhd = ext4_vhd(tmp_path, 4), ext4_vhd(tmp_path, 3)
    os_uri, data_uri = azurite.upload(os_vhd), azurite.upload(data_vhd)
    version = compute.gallery_image_versions.begin_create_or_update(
        group,
        gallery,
        definition,
        "1.0.0",
        {
            "location": "eastus",
            "properties": {
                "storageProfile": {
                    "osDiskImage": {"source": {"uri": os_uri, "storageAccountId": ACCOUNT_ID}},
                    "dataDiskImages": [{"lun": 1, "source": {"uri": data_uri, "storageAccountId": ACCOUNT_ID}}],
                }
            },
        },
    ).result()
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.data_disk_images[0].size_in_gb == 1
    for name, lun, vhd in (("v-os", None, os_vhd), ("v-data", 1, data_vhd)):
        ref = {"id": version.id} if lun is None else {"id": version.id, "lun": lun}
        compute.disks.begin_create_or_update(
            group,
            name,
            {
                "location": "eastus",
                "properties": {"creationData": {"createOption": "FromImage", "galleryImageReference": ref}},
            },
        ).result()
        assert read_disk(compute, server, group, name) == vhd.read_bytes()

    compute.images.begin_create_or_update(
        group,
        "img",
        {
            "location": "eastus",
            "properties": {
                "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized", "blobUri": os_uri}}
            },
        },
    ).result()
    before = _chunk_files(server)
    from_image = compute.gallery_image_versions.begin_create_or_update(
        group,
        gallery,
        definition,
        "1.0.1",
        {
            "location": "eastus",
            "properties": {"storageProfile": {"source": {"id": compute.images.get(group, "img").id}}},
        },
    ).result()
    assert from_image.provisioning_state == "Succeeded" and _chunk_files(server) == before

    specialized = compute.images.begin_create_or_update(
        group,
        "spec",
        {
            "location": "eastus",
            "properties": {
                "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Specialized", "blobUri": os_uri}}
            },
        },
    ).result()
    with pytest.raises(HttpResponseError) as exc:
        compute.gallery_image_versions.begin_create_or_update(
            group,
            gallery,
            definition,
            "1.0.2",
            {"location": "eastus", "properties": {"storageProfile": {"source": {"id": specialized.id}}}},
        ).result()
    assert exc.value.status_code == 400 and "OS state is Specialized" in exc.value.message


def test_version_from_a_bad_blob_fails_and_leaves_nothing(compute, server, group, bad_blobs):
    gallery, definition = _definition(compute, group)
    with pytest.raises(HttpResponseError) as exc:
        compute.gallery_image_versions.begin_create_or_update(
            group,
            gallery,
            definition,
            "1.0.0",
            {
                "location": "eastus",
                "properties": {
                    "storageProfile": {
                        "osDiskImage": {"source": {"uri": bad_blobs["footer"], "storageAccountId": ACCOUNT_ID}}
                    }
                },
            },
        ).result()
    assert "not a fixed VHD" in str(exc.value)
    with pytest.raises(ResourceNotFoundError):
        compute.gallery_image_versions.get(group, gallery, definition, "1.0.0")
