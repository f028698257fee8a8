"""Disks and snapshots with real bytes: azure-mgmt-compute for the control plane, azure-storage-blob's
BlobClient (its page-blob calls) on the signed URLs for the data plane, both over loopback HTTPS."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobClient

from vmgallery.adapters.security import SasSigner
from vmgallery.domain.vhd import parse_vhd_footer, vhd_footer

MIB = 1 << 20


def vhd(raw: bytes) -> bytes:
    return raw + vhd_footer(len(raw))


def image(mib: int, seed: int = 0) -> bytes:
    """A disk image with data, zeros (holes) and a partly written chunk."""
    rnd = __import__("random").Random(seed)
    raw = bytearray(mib * MIB)
    raw[0:MIB] = rnd.randbytes(MIB)
    raw[MIB + 4096 : MIB + 8192] = rnd.randbytes(4096)
    raw[-MIB:] = rnd.randbytes(MIB)
    return vhd(bytes(raw))


def blob_client(server, url: str) -> BlobClient:
    return BlobClient.from_blob_url(url, connection_verify=server.ca)


def upload_disk(compute, server, group: str, name: str, data: bytes, *, end: bool = True) -> str:
    compute.disks.begin_create_or_update(
        group,
        name,
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "hyperVGeneration": "V2",
                "creationData": {"createOption": "Upload", "uploadSizeBytes": len(data)},
            },
        },
    ).result()
    assert compute.disks.get(group, name).disk_state == "ReadyToUpload"
    sas = compute.disks.begin_grant_access(group, name, {"access": "Write", "durationInSeconds": 600}).result()
    assert compute.disks.get(group, name).disk_state == "ActiveUpload"
    client = blob_client(server, sas.access_sas)
    for offset in range(0, len(data), 4 * MIB):
        piece = data[offset : offset + 4 * MIB]
        if piece.count(0) != len(piece):
            client.upload_page(piece, offset=offset, length=len(piece))
    if end:
        compute.disks.begin_revoke_access(group, name).result()
    return sas.access_sas


def read_disk(compute, server, group: str, name: str, *, snapshot: bool = False) -> bytes:
    ops = compute.snapshots if snapshot else compute.disks
    sas = ops.begin_grant_access(group, name, {"access": "Read", "durationInSeconds": 600}).result()
    try:
        return blob_client(server, sas.access_sas).download_blob(max_concurrency=2).readall()
    finally:
        ops.begin_revoke_access(group, name).result()


def test_upload_then_read_back_byte_identical(compute, server, group):
    data = image(5)
    upload_disk(compute, server, group, "d1", data)
    disk = compute.disks.get(group, "d1")
    assert disk.disk_state == "Unattached" and disk.disk_size_gb == 1 and disk.provisioning_state == "Succeeded"
    assert read_disk(compute, server, group, "d1") == data


def test_signed_urls_refuse_tampering_expiry_and_revocation(compute, server, group):
    data = image(2)
    upload_disk(compute, server, group, "d1", data)
    sas = compute.disks.begin_grant_access(group, "d1", {"access": "Read", "durationInSeconds": 600}).result()
    url = urlsplit(sas.access_sas)
    params = dict(parse_qsl(url.query))
    grant = url.path.rsplit("/", 1)[1]

    def with_params(**changes) -> str:
        return urlunsplit(url._replace(query=urlencode({**params, **changes})))

    tampered = with_params(sp="rw")
    with pytest.raises(HttpResponseError) as exc:
        blob_client(server, tampered).upload_page(b"\1" * 512, offset=0, length=512)
    assert exc.value.status_code == 403
    signer = SasSigner((server.data_dir / "sas-key").read_bytes())
    past = int(time.time()) - 5
    expired = with_params(st=str(past), sig=signer.signature(grant, "r", past))
    with pytest.raises(HttpResponseError) as exc:
        blob_client(server, expired).download_blob().readall()
    assert exc.value.status_code == 403 and "expired" in str(exc.value)
    assert blob_client(server, sas.access_sas).download_blob().readall() == data
    compute.disks.begin_revoke_access(group, "d1").result()
    with pytest.raises(HttpResponseError) as exc:
        blob_client(server, sas.access_sas).download_blob().readall()
    assert exc.value.status_code == 403


def test_page_protocol_rules(compute, server, group, http):
    data = image(2)
    sas = upload_disk(compute, server, group, "d1", data, end=False)
    client = blob_client(server, sas)
    # The SDK refuses unaligned pages itself; the server must too, for clients that do not.
    r = http.put(
        sas + "&comp=page", content=b"x" * 512, headers={"x-ms-page-write": "update", "x-ms-range": "bytes=100-611"}
    )
    assert r.status_code == 416 and r.headers["x-ms-error-code"] == "InvalidPageRange"
    with pytest.raises(HttpResponseError):
        client.upload_page(b"x" * 512, offset=len(data), length=512)
    r = http.put(
        sas + "&comp=page",
        content=b"x" * (4 * MIB + 512),
        headers={"x-ms-page-write": "update", "x-ms-range": f"bytes=0-{4 * MIB + 511}"},
    )
    assert r.status_code == 413 and r.headers["x-ms-error-code"] == "RequestBodyTooLarge"
    client.clear_page(offset=0, length=MIB)
    assert next(iter(client.list_page_ranges())).start >= MIB  # the cleared first MiB is a hole now
    compute.disks.begin_revoke_access(group, "d1").result()
    assert read_disk(compute, server, group, "d1") == bytes(MIB) + data[MIB:]


def test_concurrent_writers_to_one_chunk_lose_nothing(compute, server, group):
    size = 2 * MIB + 512
    sas = upload_disk(compute, server, group, "d1", bytes(size), end=False)
    pages = [os.urandom(512) for _ in range(64)]

    def write(indexes):
        client = blob_client(server, sas)
        for i in indexes:
            client.upload_page(pages[i], offset=i * 512 * 3, length=512)  # spread over the first chunk

    threads = [threading.Thread(target=write, args=(range(k, 64, 4),)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    compute.disks.begin_revoke_access(group, "d1").result()
    got = read_disk(compute, server, group, "d1")
    for i, page in enumerate(pages):
        assert got[i * 1536 : i * 1536 + 512] == page, f"page {i} lost"


UPLOADER = """
import os, sys
from azure.storage.blob import BlobClient
url, ca, path, stop_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = open(path, "rb").read()
client = BlobClient.from_blob_url(url, connection_verify=ca)
for n, offset in enumerate(range(0, len(data), 1 << 20)):
    if n == stop_after:
        os.kill(os.getpid(), 9)  # the client dies half-way, without any goodbye
    client.upload_page(data[offset:offset + (1 << 20)], offset=offset, length=min(1 << 20, len(data) - offset))
"""


def test_upload_resumes_after_the_client_is_killed(compute, server, group, tmp_path):
    data = image(6, seed=5)
    source = tmp_path / "disk.vhd"
    source.write_bytes(data)
    compute.disks.begin_create_or_update(
        group,
        "d1",
        {
            "location": "eastus",
            "properties": {"osType": "Linux", "creationData": {"createOption": "Upload", "uploadSizeBytes": len(data)}},
        },
    ).result()
    sas = compute.disks.begin_grant_access(group, "d1", {"access": "Write", "durationInSeconds": 600}).result()
    proc = subprocess.run([sys.executable, "-c", UPLOADER, sas.access_sas, server.ca, str(source), "3"])
    assert proc.returncode == -9
    client = blob_client(server, sas.access_sas)
    landed = {i for r in client.list_page_ranges() for i in range(r.start // MIB, r.end // MIB + 1)}
    assert landed == {0, 1}  # the first three MiB made it (MiB 2 is all zeros: a hole), nothing after
    for offset in range(3 * MIB, len(data), MIB):
        client.upload_page(data[offset : offset + MIB], offset=offset, length=min(MIB, len(data) - offset))
    compute.disks.begin_revoke_access(group, "d1").result()
    assert read_disk(compute, server, group, "d1") == data


def _chunk_files(server) -> int:
    return sum(1 for _ in (server.data_dir / "blobs" / "eastus").rglob("chunks/*/*/*"))


def test_copies_and_snapshots_share_bytes(compute, server, group):
    data = image(4, seed=9)
    upload_disk(compute, server, group, "d1", data)
    before = _chunk_files(server)
    src = compute.disks.get(group, "d1").id
    compute.snapshots.begin_create_or_update(
        group,
        "s1",
        {"location": "eastus", "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": src}}},
    ).result()
    compute.disks.begin_create_or_update(
        group,
        "d2",
        {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "Copy", "sourceResourceId": compute.snapshots.get(group, "s1").id}
            },
        },
    ).result()
    assert _chunk_files(server) == before  # no byte was copied
    snap = compute.snapshots.get(group, "s1")
    assert snap.os_type == "Linux" and snap.disk_size_gb == 1
    assert read_disk(compute, server, group, "s1", snapshot=True) == data
    assert read_disk(compute, server, group, "d2") == data


def test_zero_pages_store_nothing_and_zeroed_chunks_become_holes(compute, server, group):
    data = vhd(bytes(6 * MIB))
    sas = upload_disk(compute, server, group, "z1", data, end=False)  # upload_disk sends only the footer
    footer = (6 * MIB, 6 * MIB + 511)
    client = blob_client(server, sas)
    before = _chunk_files(server)
    client.upload_page(bytes(4 * MIB), offset=0, length=4 * MIB)
    client.upload_page(bytes(4096), offset=4 * MIB + 4096, length=4096)
    client.clear_page(offset=MIB, length=2 * MIB)
    client.clear_page(offset=5 * MIB + 512, length=1024)
    assert _chunk_files(server) == before and [(r.start, r.end) for r in client.list_page_ranges()] == [footer]

    written = bytearray(data)
    written[0:MIB] = os.urandom(MIB)  # chunk 0 whole, then cleared whole
    written[2 * MIB + 4096 : 2 * MIB + 8192] = os.urandom(4096)  # chunk 2 in part, then zeroed by a page write
    written[4 * MIB : 4 * MIB + 512] = os.urandom(512)  # chunk 4 in part, then cleared in part
    written[5 * MIB + 512 : 5 * MIB + 1024] = os.urandom(512)  # chunk 5 keeps its data
    for start, end in (
        (0, MIB),
        (2 * MIB + 4096, 2 * MIB + 8192),
        (4 * MIB, 4 * MIB + 512),
        (5 * MIB + 512, 5 * MIB + 1024),
    ):
        client.upload_page(bytes(written[start:end]), offset=start, length=end - start)
    assert [(r.start, r.end) for r in client.list_page_ranges()] == [
        (0, MIB - 1),
        (2 * MIB, 3 * MIB - 1),
        (4 * MIB, 6 * MIB + 511),
    ]
    stored = _chunk_files(server)
    assert stored == before + 4
    client.clear_page(offset=0, length=MIB)
    client.upload_page(bytes(8192), offset=2 * MIB, length=8192)
    client.clear_page(offset=4 * MIB, length=4096)
    assert [(r.start, r.end) for r in client.list_page_ranges()] == [(5 * MIB, 6 * MIB + 511)]
    assert _chunk_files(server) == stored  # the zeroed chunks were holes, not new all-zero chunk files
    compute.disks.begin_revoke_access(group, "z1").result()
    expected = bytearray(data)
    expected[5 * MIB + 512 : 5 * MIB + 1024] = written[5 * MIB + 512 : 5 * MIB + 1024]
    assert read_disk(compute, server, group, "z1") == bytes(expected)


def test_empty_disk_is_zeros_with_a_footer(compute, server, group):
    compute.disks.begin_create_or_update(
        group, "e1", {"location": "eastus", "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}}}
    ).result()
    sas = compute.disks.begin_grant_access(group, "e1", {"access": "Read", "durationInSeconds": 60}).result()
    client = blob_client(server, sas.access_sas)
    assert client.get_blob_properties().size == (1 << 30) + 512
    tail = client.download_blob(offset=(1 << 30) - 512, length=1024).readall()
    assert tail[:512] == bytes(512)
    footer = parse_vhd_footer(tail[512:])
    assert footer.current_size == 1 << 30 and footer.checksum_ok


def test_disk_rules(compute, server, group, http, subscription):
    path = (
        f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/disks/bad"
        "?api-version=2026-03-02"
    )
    r = http.put(
        path,
        json={
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": 5 * MIB}},
        },
    )
    assert r.status_code == 400 and r.json()["error"]["target"] == "properties.creationData.uploadSizeBytes"
    assert "5243392" in r.json()["error"]["message"]  # the nearest valid size is suggested
    r = http.put(
        path,
        json={
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": "/nope"}},
        },
    )
    assert r.status_code == 400 and r.json()["error"]["target"] == "properties.creationData.sourceResourceId"
    r = http.put(path, json={"location": "eastus", "properties": {"creationData": {"createOption": "Empty"}}})
    assert r.status_code == 400 and r.json()["error"]["target"] == "properties.diskSizeGB"
    assert http.get(path).status_code == 404
    upload_disk(compute, server, group, "u1", image(2))
    with pytest.raises(ResourceExistsError):
        compute.disks.begin_grant_access(group, "u1", {"access": "Write", "durationInSeconds": 60}).result()


def test_a_refused_page_write_stores_nothing(compute, server, group):
    """The body streams in while the signature is checked; a refused write must not have staged any chunk."""
    url = urlsplit(upload_disk(compute, server, group, "refused", vhd(bytes(8 * MIB)), end=False))
    params = dict(parse_qsl(url.query))
    before = _chunk_files(server)
    for changes in ({"sig": params["sig"][::-1]}, {"sp": "r"}):
        forged = urlunsplit(url._replace(query=urlencode({**params, **changes})))
        with pytest.raises(HttpResponseError) as exc:
            blob_client(server, forged).upload_page(os.urandom(4 * MIB), offset=0, length=4 * MIB)
        assert exc.value.status_code == 403
    assert _chunk_files(server) == before
    blob_client(server, urlunsplit(url)).upload_page(os.urandom(4 * MIB), offset=4 * MIB, length=4 * MIB)
    assert _chunk_files(server) == before + 4  # the same write, signed: its four 1 MiB chunks


def test_full_page_writes_one_after_another_keep_their_own_bytes(compute, server, group, http):
    """Full 4 MiB bodies reuse one buffer after another: no write may carry a byte of the one before it, even a
    write whose body comes up short of its range (refused) into a buffer that still holds the last page."""
    pages = [os.urandom(4 * MIB) for _ in range(3)]
    data = vhd(b"".join(pages))
    sas = upload_disk(compute, server, group, "reuse", data, end=False)
    short = http.put(
        sas + "&comp=page",
        content=os.urandom(MIB),
        headers={"x-ms-page-write": "update", "x-ms-range": f"bytes={4 * MIB}-{8 * MIB - 1}"},
    )
    assert short.status_code == 400 and short.headers["x-ms-error-code"] == "InvalidHeaderValue"
    compute.disks.begin_revoke_access(group, "reuse").result()
    assert read_disk(compute, server, group, "reuse") == data


def _raw_exchange(server, url: str, requests: list[tuple[bytes, list[bytes]]], *, expect_continue: bool = False):
    """Requests over one TLS socket written by hand, each its head and then each piece in its own write (the first
    may travel with the head); their statuses. A piece None: the answer is read there, before the pieces after it
    are sent."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=server.ca)
    statuses = []
    with socket.create_connection((parts.hostname, parts.port)) as raw:
        with context.wrap_socket(raw, server_hostname=parts.hostname) as conn:
            reader = conn.makefile("rb")
            for head, pieces in requests:
                if expect_continue:
                    conn.sendall(head)
                    assert reader.readline().startswith(b"HTTP/1.1 100")
                    assert reader.readline() == b"\r\n"
                    head = b""
                conn.sendall(head + pieces[0])
                for piece in pieces[1:]:
                    if piece is None:
                        statuses.append(_answer(reader))
                    else:
                        conn.sendall(piece)
                if None not in pieces:
                    statuses.append(_answer(reader))
    return statuses


def _answer(reader) -> int:
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) != b"\r\n":
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    reader.read(length)
    return status


def _page_head(url: str, start: int, length: int, *extra: str) -> bytes:
    parts = urlsplit(url)
    lines = [
        f"PUT {parts.path}?{parts.query}&comp=page HTTP/1.1",
        f"Host: {parts.netloc}",
        "x-ms-page-write: update",
        f"x-ms-range: bytes={start}-{start + length - 1}",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_page_bodies_arrive_in_any_pieces(compute, server, group):
    """A body read straight into the data plane's buffer: part of it with the head, the rest in uneven pieces, or
    only after the server's 100 Continue; each lands whole."""
    first, second = os.urandom(4 * MIB), os.urandom(4 * MIB)
    sas = upload_disk(compute, server, group, "pieces", vhd(bytes(8 * MIB)), end=False)
    cuts = [1000, 70_000, 1 << 20, 3 * MIB + 12_345, 4 * MIB]
    pieces = [first[a:b] for a, b in zip([0, *cuts], cuts)]
    forged = sas.replace("sig=", "sig=A")
    # A refused write is answered before its body is in (the rest is sent after the answer); the connection then
    # carries the next request.
    refused = (_page_head(forged, 0, 4 * MIB), [b"x" * MIB, None, b"x" * (3 * MIB)])
    assert _raw_exchange(server, sas, [refused, (_page_head(sas, 0, 4 * MIB), pieces)]) == [403, 201]
    head = _page_head(sas, 4 * MIB, 4 * MIB, "Expect: 100-continue")
    assert _raw_exchange(server, sas, [(head, [second])], expect_continue=True) == [201]
    compute.disks.begin_revoke_access(group, "pieces").result()
    assert read_disk(compute, server, group, "pieces")[: 8 * MIB] == first + second
