"""Reading VHD blobs through StorageAccounts from a real storage account: Azurite, driven by the Azure SDK."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from tests.azurite import Azurite, azurite  # noqa: F401  (the session fixture)
from vmgallery.adapters.disks.formats import probe
from vmgallery.adapters.storage_accounts import (
    BlobAccessDenied,
    BlobChanged,
    BlobNotFound,
    BlobNotInAccount,
    StorageAccountNotConfigured,
    StorageAccounts,
)
from vmgallery.domain.vhd import MIB, DiskType, parse_vhd_footer

ACCOUNT_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/images/providers/"
    "Microsoft.Storage/storageAccounts/devstoreaccount1"
)
OTHER_ID = ACCOUNT_ID.replace("devstoreaccount1", "elsewhere")


@pytest.fixture(scope="module")
def vhd(tmp_path_factory) -> Path:
    """A 4 MiB fixed VHD made by qemu-img: noise, a hole, noise."""
    root = tmp_path_factory.mktemp("vhd")
    raw = root / "disk.raw"
    raw.write_bytes(os.urandom(MIB) + bytes(2 * MIB) + os.urandom(MIB))
    image = root / "disk.vhd"
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", str(raw), str(image)],
        check=True,
    )
    return image


@pytest.fixture(scope="module")
def vhd_uri(azurite: Azurite, vhd: Path) -> str:
    return azurite.upload(vhd, container="vhds")


@pytest.fixture
def accounts(azurite: Azurite) -> StorageAccounts:
    return StorageAccounts({ACCOUNT_ID: {"blob_endpoint": azurite.endpoint, "account_key": azurite.account_key}})


def test_a_page_blob_vhd_reads_back_byte_for_byte(accounts, vhd, vhd_uri):
    expected = vhd.read_bytes()
    source = accounts.open_blob(ACCOUNT_ID, vhd_uri)
    assert source.size == len(expected) == 4 * MIB + 512
    assert source.blob_type == "PageBlob"
    for offset, length in [(0, 512), (MIB - 7, 1000), (3 * MIB, MIB), (0, source.size), (source.size, 0)]:
        assert source.read(offset, length) == expected[offset : offset + length]
    footer = parse_vhd_footer(source.read(source.size - 512, 512))
    assert (footer.disk_type, footer.current_size) == (DiskType.FIXED, 4 * MIB)
    for chunk_size in (MIB, 3 * MIB + 5):
        ranges = list(source.iter_ranges(chunk_size))
        assert [o for o, _ in ranges] == list(range(0, source.size, chunk_size))
        assert b"".join(data for _, data in ranges) == expected


def test_unwritten_pages_are_not_downloaded(azurite, accounts, tmp_path):
    container = azurite.service().get_container_client("sparse")
    container.create_container()
    blob = container.get_blob_client("sparse.vhd")
    blob.create_page_blob(8 * MIB)
    noise = os.urandom(MIB)
    blob.upload_page(noise, offset=5 * MIB, length=MIB)
    source = accounts.open_blob(ACCOUNT_ID, blob.url)
    reads = []
    read = source.read
    source.read = lambda offset, length: reads.append(offset) or read(offset, length)
    ranges = dict(source.iter_ranges(2 * MIB))
    assert reads == [4 * MIB]
    assert ranges[4 * MIB] == bytes(MIB) + noise
    assert b"".join(ranges.values()) == bytes(5 * MIB) + noise + bytes(2 * MIB)


def test_a_block_blob_reads_too(azurite, accounts, tmp_path):
    path = tmp_path / "disk.bin"
    path.write_bytes(os.urandom(MIB + 3))
    source = accounts.open_blob(ACCOUNT_ID, azurite.upload(path, page_blob=False))
    assert (source.size, source.blob_type) == (MIB + 3, "BlockBlob")
    assert b"".join(d for _, d in source.iter_ranges(MIB)) == path.read_bytes()


def test_the_account_id_matches_case_insensitively(accounts, vhd_uri):
    assert accounts.open_blob(ACCOUNT_ID.upper(), vhd_uri).size == 4 * MIB + 512
    assert ACCOUNT_ID.lower() in accounts


def test_blob_names_are_url_decoded(azurite, accounts, vhd):
    uri = azurite.upload(vhd, container="vhds", name="nested dir/disk #1.vhd")
    assert quote("nested dir/disk #1.vhd") in uri
    assert accounts.open_blob(ACCOUNT_ID, uri).read(0, 1024) == vhd.read_bytes()[:1024]


def test_connection_string_and_sas_configs(azurite, vhd, vhd_uri):
    sas = generate_container_sas(
        azurite.account_name,
        "vhds",
        account_key=azurite.account_key,
        permission=ContainerSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    for settings in (
        {"connection_string": azurite.connection_string},
        {"blob_endpoint": azurite.endpoint + "/", "sas_token": "?" + sas},
    ):
        source = StorageAccounts({ACCOUNT_ID: settings}).open_blob(ACCOUNT_ID, vhd_uri)
        assert source.read(source.size - 512, 512) == vhd.read_bytes()[-512:]


def test_a_vhd_copied_out_of_azurite_is_the_image(accounts, vhd, vhd_uri, tmp_path):
    copy = tmp_path / "copy.vhd"
    with open(copy, "wb") as f:
        for _, data in accounts.open_blob(ACCOUNT_ID, vhd_uri).iter_ranges(MIB):
            f.write(data)
    info = probe(copy)
    assert (info.format, info.subformat, info.virtual_size) == ("vhd", "fixed", 4 * MIB)


# ---- refusals ---------------------------------------------------------------------------------------------------


def test_an_unconfigured_account_is_refused(accounts, vhd_uri):
    with pytest.raises(StorageAccountNotConfigured, match="elsewhere.*not configured") as caught:
        accounts.open_blob(OTHER_ID, vhd_uri)
    assert caught.value.account_id == OTHER_ID


@pytest.mark.parametrize(
    "edit",
    [
        lambda uri: uri.replace("/devstoreaccount1/", "/devstoreaccount2/"),  # another account, same host
        lambda uri: uri.replace("127.0.0.1", "localhost"),  # another host
        lambda uri: uri.replace("http://", "https://"),
        lambda uri: uri.rsplit("/", 1)[0],  # a container, no blob
        lambda uri: "https://devstoreaccount1.blob.core.windows.net/vhds/disk.vhd",
    ],
)
def test_a_uri_outside_the_account_is_refused(accounts, vhd_uri, edit):
    with pytest.raises(BlobNotInAccount, match="is not in storage account") as caught:
        accounts.open_blob(ACCOUNT_ID, edit(vhd_uri))
    assert caught.value.uri == edit(vhd_uri)


def test_the_default_endpoint_is_azures():
    accounts = StorageAccounts({OTHER_ID: {}})
    with pytest.raises(BlobNotInAccount, match="https://elsewhere.blob.core.windows.net"):
        accounts.open_blob(OTHER_ID, "https://someoneelse.blob.core.windows.net/vhds/disk.vhd")


def test_missing_blobs_and_containers(accounts, vhd_uri):
    with pytest.raises(BlobNotFound, match="missing.vhd.*the blob does not exist"):
        accounts.open_blob(ACCOUNT_ID, vhd_uri.rsplit("/", 1)[0] + "/missing.vhd")
    with pytest.raises(BlobNotFound, match="container does not exist"):
        accounts.open_blob(ACCOUNT_ID, vhd_uri.replace("/vhds/", "/nocontainer/"))


@pytest.mark.parametrize(
    "key",
    [
        "Zm9yZ2VkIGtleSBmb3IgYSB0ZXN0IHRoYXQgbXVzdCBiZSByZWZ1c2VkIGJ5IGF6dXJpdGU=",  # valid base64, wrong key
        "not base64!",
    ],
)
def test_a_wrong_key_is_access_denied(azurite, vhd_uri, key):
    accounts = StorageAccounts({ACCOUNT_ID: {"blob_endpoint": azurite.endpoint, "account_key": key}})
    with pytest.raises(BlobAccessDenied, match="access denied") as caught:
        accounts.open_blob(ACCOUNT_ID, vhd_uri)
    assert caught.value.uri == vhd_uri


def test_a_blob_that_changes_while_read_fails_the_read(azurite, accounts, tmp_path):
    path = tmp_path / "changing.vhd"
    path.write_bytes(os.urandom(MIB))
    uri = azurite.upload(path)
    source = accounts.open_blob(ACCOUNT_ID, uri)
    source.read(0, 512)
    azurite.upload(path, container=uri.split("/")[-2], name="changing.vhd")
    with pytest.raises(BlobChanged, match="changed while it was being read"):
        source.read(512, 512)


def test_reads_outside_the_blob_are_refused(accounts, vhd_uri):
    source = accounts.open_blob(ACCOUNT_ID, vhd_uri)
    with pytest.raises(ValueError, match="outside blob"):
        source.read(source.size - 1, 2)
    with pytest.raises(ValueError, match="outside blob"):
        source.read(-1, 1)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d": {}}, "not a storage account id"),
        ({ACCOUNT_ID: {"account_key": "k", "sas_token": "s"}}, "give one of"),
        ({ACCOUNT_ID: {"blob_endpoit": "http://x"}}, "unknown keys"),
        ({ACCOUNT_ID: {}, ACCOUNT_ID.upper(): {}}, "configured twice"),
        ({ACCOUNT_ID: {"blob_endpoint": "ftp://x/y"}}, "http"),
        (
            {ACCOUNT_ID: {"blob_endpoint": "http://x/y", "connection_string": "AccountName=a;AccountKey=b"}},
            "drop blob_endpoint",
        ),
    ],
)
def test_a_malformed_config_fails_at_construction(config, message):
    with pytest.raises(ValueError, match=message):
        StorageAccounts(config)


def test_the_account_of_a_blob_url_is_the_one_whose_endpoint_holds_it():
    second = ACCOUNT_ID.replace("devstoreaccount1", "second")
    accounts = StorageAccounts(
        {
            OTHER_ID: {},  # https://elsewhere.blob.core.windows.net
            ACCOUNT_ID: {"blob_endpoint": "http://127.0.0.1:10000/devstoreaccount1/"},
            second: {"blob_endpoint": "http://127.0.0.1:10000/devstoreaccount1/second"},
        }
    )
    assert accounts.account_for("https://Elsewhere.blob.core.windows.net/vhds/os.vhd?sv=1") == OTHER_ID
    assert accounts.account_for("http://127.0.0.1:10000/devstoreaccount1/vhds/os.vhd") == ACCOUNT_ID
    assert accounts.account_for("http://127.0.0.1:10000/devstoreaccount1/second/os.vhd") == second
    assert accounts.account_for("http://127.0.0.1:10000/devstoreaccount10/vhds/os.vhd") is None
    assert accounts.account_for("https://127.0.0.1:10000/devstoreaccount1/vhds/os.vhd") is None
    assert accounts.account_for("https://other.blob.core.windows.net/vhds/os.vhd") is None


def test_blobs_are_written_in_a_new_container_and_only_outside_their_account_refused(azurite, accounts):
    uri = f"{azurite.endpoint}/written{os.urandom(4).hex()}/out.vhd"
    accounts.write_page_blob(uri, 3 * MIB, iter([(0, b"a" * 512), (2 * MIB, b"b" * 1024)]))
    blob = accounts.open_blob(ACCOUNT_ID, uri)
    assert (blob.size, blob.blob_type) == (3 * MIB, "PageBlob")
    assert blob.read(0, 512) == b"a" * 512 and blob.read(512, 512) == bytes(512)
    assert blob.read(2 * MIB, 1024) == b"b" * 1024
    accounts.write_page_blob(uri, 1024, iter([]))  # replaced, not appended to
    assert accounts.open_blob(ACCOUNT_ID, uri).read(0, 1024) == bytes(1024)
    with pytest.raises(StorageAccountNotConfigured):
        accounts.write_page_blob(uri.replace("127.0.0.1", "localhost"), 512, iter([]))
    with pytest.raises(BlobNotInAccount):
        accounts.write_page_blob(uri.rsplit("/", 1)[0], 512, iter([]))
    accounts.write_block_blob(uri, b"log\n")  # a block blob replaces the page blob
    assert accounts.open_blob(ACCOUNT_ID, uri).blob_type == "BlockBlob"
    with pytest.raises(StorageAccountNotConfigured):
        accounts.write_block_blob(uri.replace("127.0.0.1", "localhost"), b"")
