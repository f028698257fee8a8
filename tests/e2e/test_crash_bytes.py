"""kill -9 of the server while bytes move: during a page upload and during a version's VHD capture. After a restart
on the same data dir the upload resumes (or the capture finishes, or is cleanly Failed), and no chunk is lost or
corrupt."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import blake3
import zstandard
from azure.storage.blob import BlobClient

from tests.azurite import Azurite, azurite  # noqa: F401  (the session fixture)
from vmgallery.domain.vhd import vhd_footer

from ..api.sdk import compute_client

MIB = 1 << 20
ACCOUNT_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/storage/providers/"
    "Microsoft.Storage/storageAccounts/devstoreaccount1"
)


def moved(url: str, server) -> str:
    """The same signed URL, on the restarted server's port."""
    return server.url + "/_blob/" + url.split("/_blob/", 1)[1]


def assert_store_sound(data_dir: Path) -> int:
    """Every chunk file decodes and matches the digest it is named by; no half-written file took a chunk's name."""
    count = 0
    for path in (data_dir / "blobs").rglob("chunks/*/*/*"):
        data = zstandard.ZstdDecompressor().decompress(path.read_bytes())
        assert blake3.blake3(data).hexdigest() == path.name, f"corrupt chunk {path}"
        count += 1
    return count


def group(server, sub: str) -> None:
    with server.http() as client:
        r = client.put(f"/subscriptions/{sub}/resourceGroups/rg?api-version=2024-11-01", json={"location": "eastus"})
        assert r.status_code == 201


def test_upload_resumes_after_the_server_is_killed(make_server):
    sub = str(uuid.uuid4())
    data = os.urandom(24 * MIB) + vhd_footer(24 * MIB)
    srv = make_server()
    group(srv, sub)
    with compute_client(srv, sub) as compute:
        compute.disks.begin_create_or_update(
            "rg",
            "d",
            {
                "location": "eastus",
                "properties": {
                    "osType": "Linux",
                    "creationData": {"createOption": "Upload", "uploadSizeBytes": len(data)},
                },
            },
        ).result()
        sas = compute.disks.begin_grant_access("rg", "d", {"access": "Write", "durationInSeconds": 3600}).result()
    acknowledged = threading.Event()
    written: list[int] = []

    def uploader():
        client = BlobClient.from_blob_url(sas.access_sas, connection_verify=srv.ca, retry_total=0)
        for offset in range(0, len(data), MIB):
            try:
                client.upload_page(data[offset : offset + MIB], offset=offset, length=min(MIB, len(data) - offset))
            except Exception:
                return
            written.append(offset)
            if len(written) == 6:
                acknowledged.set()

    t = threading.Thread(target=uploader)
    t.start()
    assert acknowledged.wait(60)
    srv.kill()  # mid-stream: pages are in flight
    t.join()
    assert 6 <= len(written) < 25

    srv = make_server()
    url = moved(sas.access_sas, srv)
    client = BlobClient.from_blob_url(url, connection_verify=srv.ca)
    landed = {i for r in client.list_page_ranges() for i in range(r.start // MIB, r.end // MIB + 1)}
    assert set(written) <= {i * MIB for i in landed}, "an acknowledged page was lost"
    for offset in range(0, len(data), MIB):  # resume: write what is not known to have landed
        if offset // MIB not in landed:
            client.upload_page(data[offset : offset + MIB], offset=offset, length=min(MIB, len(data) - offset))
    with compute_client(srv, sub) as compute:
        compute.disks.begin_revoke_access("rg", "d").result()
        read = compute.disks.begin_grant_access("rg", "d", {"access": "Read", "durationInSeconds": 60}).result()
    assert BlobClient.from_blob_url(read.access_sas, connection_verify=srv.ca).download_blob().readall() == data
    assert assert_store_sound(srv.data_dir) >= 24


def _version(http, path: str, until, timeout: float = 120):
    """GET the version until `until(response)` holds (the capture runs in a worker; there is no event to await)."""
    deadline = time.monotonic() + timeout
    while True:
        got = http.get(path)
        if until(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_capture_killed_midway_finishes_after_restart(make_server, azurite, tmp_path):  # noqa: F811
    sub = str(uuid.uuid4())
    vhd = tmp_path / "big.vhd"
    vhd.write_bytes(os.urandom(96 * MIB) + vhd_footer(96 * MIB))
    uri = azurite.upload(vhd)
    srv = make_server(
        f'sync_wait_seconds = 0\n[storage_accounts."{ACCOUNT_ID}"]\n'
        f'blob_endpoint = "{azurite.endpoint}"\naccount_key = "{azurite.account_key}"\n'
    )
    group(srv, sub)
    path = (
        f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i/versions/"
        "1.0.0?api-version=2024-03-03&$expand=ReplicationStatus"
    )
    with compute_client(srv, sub) as compute:
        compute.galleries.begin_create_or_update("rg", "g", {"location": "eastus"}).result()
        compute.gallery_images.begin_create_or_update(
            "rg",
            "g",
            "i",
            {
                "location": "eastus",
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
                },
            },
        ).result()
        compute.gallery_image_versions.begin_create_or_update(
            "rg",
            "g",
            "i",
            "1.0.0",
            {
                "location": "eastus",
                "properties": {
                    "storageProfile": {"osDiskImage": {"source": {"uri": uri, "storageAccountId": ACCOUNT_ID}}}
                },
            },
        )
    with srv.http() as http:
        got = _version(http, path, lambda r: r.json()["properties"]["replicationStatus"]["summary"][0]["progress"] > 0)
    summary = got.json()["properties"]["replicationStatus"]["summary"][0]
    assert summary["state"] == "Replicating" and summary["progress"] < 100
    srv.kill()  # the capture is under way: some chunks are written, the manifest is not

    srv = make_server()
    with srv.http() as http:
        got = _version(
            http,
            path,
            lambda r: r.status_code == 404 or r.json()["properties"]["provisioningState"] in ("Succeeded", "Failed"),
        )
    assert got.status_code == 200 and got.json()["properties"]["provisioningState"] == "Succeeded"
    with compute_client(srv, sub) as compute:
        compute.disks.begin_create_or_update(
            "rg",
            "d",
            {
                "location": "eastus",
                "properties": {
                    "creationData": {"createOption": "FromImage", "galleryImageReference": {"id": got.json()["id"]}}
                },
            },
        ).result()
        read = compute.disks.begin_grant_access("rg", "d", {"access": "Read", "durationInSeconds": 60}).result()
    assert (
        BlobClient.from_blob_url(read.access_sas, connection_verify=srv.ca).download_blob(max_concurrency=4).readall()
        == vhd.read_bytes()
    )
    assert assert_store_sound(srv.data_dir) >= 96


def test_deleted_disks_free_their_chunks_and_shared_ones_stay(make_server):
    sub = str(uuid.uuid4())
    srv = make_server("gc_grace_seconds = 0.5\ngc_interval_seconds = 0.2\n")
    group(srv, sub)
    shared, own = os.urandom(MIB), os.urandom(MIB)
    images = {"keep": shared + bytes(MIB) + vhd_footer(2 * MIB), "drop": shared + own + vhd_footer(2 * MIB)}
    with compute_client(srv, sub) as compute:
        for name, data in images.items():
            compute.disks.begin_create_or_update(
                "rg",
                name,
                {
                    "location": "eastus",
                    "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": len(data)}},
                },
            ).result()
            sas = compute.disks.begin_grant_access("rg", name, {"access": "Write", "durationInSeconds": 60}).result()
            client = BlobClient.from_blob_url(sas.access_sas, connection_verify=srv.ca)
            client.upload_page(data[: 2 * MIB], offset=0, length=2 * MIB)
            client.upload_page(data[2 * MIB :], offset=2 * MIB, length=512)
            compute.disks.begin_revoke_access("rg", name).result()
        chunks = (srv.data_dir / "blobs" / "eastus").rglob("chunks/*/*/*")
        own_digest = blake3.blake3(own).hexdigest()
        assert own_digest in {p.name for p in chunks}
        compute.disks.begin_delete("rg", "drop").result()
        deadline = time.monotonic() + 30
        while own_digest in {p.name for p in (srv.data_dir / "blobs").rglob("chunks/*/*/*")}:
            assert time.monotonic() < deadline, "the collector never freed the deleted disk's own chunk"
            time.sleep(0.1)
        read = compute.disks.begin_grant_access("rg", "keep", {"access": "Read", "durationInSeconds": 60}).result()
    assert (
        BlobClient.from_blob_url(read.access_sas, connection_verify=srv.ca).download_blob().readall() == images["keep"]
    )
