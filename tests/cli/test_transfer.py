"""How `disk upload` and `disk download` use the wire: the holes of a sparse file are neither read nor sent, zero
blocks are not sent, a resumed upload sends only what the server lacks, a download leaves holes as holes, and the
progress bar shows the rate. The bytes are checked on a real server; the reads and page writes of the CLI are
recorded by wrapping its own functions (which still do the work)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import socket
import socketserver
import threading
from urllib.parse import urlsplit

import pytest

from vmgallery.domain.vhd import FOOTER_SIZE
from vmgallery.entrypoints.cli import transfer

MIB = 1 << 20


def sparse_file(path, size_mib: int, data: dict[int, bytes]) -> bytes:
    """A sparse file of `size_mib` MiB with `data` written at the given offsets (the rest holes); its bytes."""
    with open(path, "wb") as f:
        f.truncate(size_mib * MIB)
        for offset, chunk in data.items():
            f.seek(offset)
            f.write(chunk)
    return path.read_bytes()


@pytest.fixture
def recorded(monkeypatch):
    """The (offset, length) of every read of the image and every page write, as the CLI does them."""
    seen: dict[str, list[tuple[int, int]]] = {"read": [], "put": []}
    read, put = transfer.UploadImage.read, transfer.PageBlob.put_page

    def reading(self, fd, offset, length):
        seen["read"].append((offset, length))
        return read(self, fd, offset, length)

    def putting(self, offset, data):
        seen["put"].append((offset, len(data)))
        return put(self, offset, data)

    monkeypatch.setattr(transfer.UploadImage, "read", reading)
    monkeypatch.setattr(transfer.PageBlob, "put_page", putting)
    return seen


def test_a_sparse_upload_reads_and_sends_only_the_blocks_with_data(cli, group, tmp_path, recorded):
    # 3 MiB of data from 10 MiB (blocks 10-12), 5000 bytes at 40 MiB + 7 (block 40), a zero-filled (not sparse)
    # MiB at 20 MiB, and holes elsewhere in 64 MiB.
    data = {10 * MIB: os.urandom(3 * MIB), 40 * MIB + 7: os.urandom(5000), 20 * MIB: bytes(MIB)}
    original = sparse_file(tmp_path / "sparse.raw", 64, data)
    result = cli.ok("disk", "upload", "-g", group, "-n", "sparse", "--file", str(tmp_path / "sparse.raw"))

    end = 64 * MIB + FOOTER_SIZE
    # A write stays inside its 4 MiB window: blocks 10-11, then 12.
    assert sorted(recorded["put"]) == [(10 * MIB, 2 * MIB), (12 * MIB, MIB), (40 * MIB, MIB), (64 * MIB, FOOTER_SIZE)]
    # Read: the 4 MiB windows that meet the file's extents (the written zeros are an extent) and the footer's.
    assert sorted(recorded["read"]) == [(8 * MIB, 4 * MIB), (12 * MIB, 4 * MIB), (20 * MIB, 4 * MIB)] + [
        (40 * MIB, 4 * MIB),
        (64 * MIB, FOOTER_SIZE),
    ]
    assert re.search(r"sent 4\.2 MB, [0-9.]+ [kMG]?B/s", result.stderr), result.stderr

    back = tmp_path / "back.raw"
    result = cli.ok("disk", "download", "-g", group, "-n", "sparse", "--file", str(back))
    assert back.read_bytes() == original and back.stat().st_size == end - FOOTER_SIZE
    assert back.stat().st_blocks * 512 <= 6 * MIB, "the download filled the holes"
    assert re.search(r"got 4\.2 MB, [0-9.]+ [kMG]?B/s", result.stderr), result.stderr


def test_a_dense_file_of_zero_blocks_sends_only_its_data(cli, group, tmp_path, recorded):
    """Zeros written out (no holes for SEEK_HOLE to find) are found by the scan and not sent."""
    image = tmp_path / "dense.raw"
    payload = bytes(5 * MIB) + os.urandom(MIB + 512) + bytes(2 * MIB - 512)
    image.write_bytes(payload)
    cli.ok("disk", "upload", "-g", group, "-n", "dense", "--file", str(image))
    assert sorted(recorded["put"]) == [(5 * MIB, 2 * MIB), (8 * MIB, FOOTER_SIZE)]
    assert sorted(recorded["read"]) == [(0, 4 * MIB), (4 * MIB, 4 * MIB), (8 * MIB, FOOTER_SIZE)]
    cli.ok("disk", "download", "-g", group, "-n", "dense", "--file", str(tmp_path / "back.raw"))
    assert hashlib.sha256((tmp_path / "back.raw").read_bytes()).digest() == hashlib.sha256(payload).digest()


def test_writes_needed_cuts_runs_of_blocks_the_server_lacks():
    zero, one = bytes(MIB), b"\x01" * MIB
    data = one + zero + one + one + one + one[:512]
    at = 8 * MIB
    assert transfer.writes_needed(data, at, []) == [(0, MIB), (2 * MIB, 5 * MIB + 512)]
    # Landed: block 3 whole, and all but the last 512 bytes of block 4.
    landed = [(at + 3 * MIB, at + 5 * MIB - 512)]
    assert transfer.writes_needed(data, at, landed) == [(0, MIB), (2 * MIB, 3 * MIB), (4 * MIB, 5 * MIB + 512)]
    # A block whose only non-zero bytes landed is not sent again; zeros are never sent.
    assert transfer.writes_needed(one + zero, at, [(at, at + MIB)]) == []
    assert transfer.writes_needed(zero + zero, at, []) == []


def test_a_refused_write_or_read_is_the_servers_storage_error(cli, server, group):
    """Both clients (the SDK's writes, the ranged reads) report the storage error code and message as the CLI's."""
    cli.ok("disk", "create", "-g", group, "-n", "up", "--upload-type", "Upload", "--upload-size-bytes", str(MIB + 512))
    url = cli.json(
        "disk", "grant-access", "-g", group, "-n", "up", "--duration-in-seconds", "60", "--access-level", "Write"
    )["accessSAS"]
    blob = transfer.PageBlob(url, server.ca)
    try:
        with pytest.raises(transfer.CliError) as beyond:
            blob.put_page(MIB, bytes(1024))  # past the end of the disk
        assert beyond.value.code == "InvalidPageRange" and "beyond the end" in beyond.value.message
        cli.ok("disk", "revoke-access", "-g", group, "-n", "up")
        with pytest.raises(transfer.CliError) as write:
            blob.put_page(0, bytes(512))
        with pytest.raises(transfer.CliError) as read:
            blob.read(0, 512)
    finally:
        blob.close()
    assert write.value.code == read.value.code == "AuthenticationFailed"
    assert write.value.message.startswith("Server failed to authenticate the request.")
    assert read.value.message.startswith("Server failed to authenticate the request.")


def test_ranged_reads_refuse_another_version_of_the_blob(cli, server, group):
    cli.ok("disk", "create", "-g", group, "-n", "ver", "--upload-type", "Upload", "--upload-size-bytes", str(MIB + 512))
    url = cli.json(
        "disk", "grant-access", "-g", group, "-n", "ver", "--duration-in-seconds", "60", "--access-level", "Write"
    )["accessSAS"]
    page = os.urandom(4096)
    writer = transfer.PageBlob(url, server.ca)
    try:
        writer.put_page(8192, page)
    finally:
        writer.close()
    cli.ok("disk", "revoke-access", "-g", group, "-n", "ver")
    url = cli.json(
        "disk", "grant-access", "-g", group, "-n", "ver", "--duration-in-seconds", "60", "--access-level", "Read"
    )["accessSAS"]
    blob = transfer.PageBlob(url, server.ca)
    try:
        listing = blob.page_ranges()
        with pytest.raises(transfer.CliError) as changed:
            blob.read(0, MIB, etag='"another"')
        assert changed.value.code == "SourceChanged"
        # The refused answer was not read to its end: the next read gets a clean connection.
        assert blob.read(8192, 8192 + 4096, etag=listing.etag) == page
        assert blob.read(0, 8192, etag=listing.etag) == bytes(8192)
    finally:
        blob.close()


class ConnectProxy:
    """A forward proxy that tunnels CONNECT only, as corporate proxies do: it records each tunnel's target and
    Proxy-Authorization header, and the bytes it relayed each way."""

    def __init__(self):
        self.tunnels: list[tuple[str, str | None]] = []
        self.sent = self.received = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                head = self.rfile.readline().decode().split()
                headers = {}
                while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                if head[:1] != ["CONNECT"]:
                    self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    return
                proxy.tunnels.append((head[1], headers.get("proxy-authorization")))
                host, port = head[1].rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                # Bytes the client sent after its CONNECT head (none, with http.client or httpx) would sit in rfile.
                threading.Thread(target=proxy.relay, args=(upstream, self.connection, False), daemon=True).start()
                proxy.relay(self.connection, upstream, True)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def relay(self, source: socket.socket, target: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                with self.lock:  # counted before it is passed on: whoever waits for the answer sees the count
                    if upstream:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def proxies(https: str | None, no: str | None) -> dict[str, str | None]:
    """The proxy settings in both spellings (urllib prefers the lower case one, and a machine may set either)."""
    return {"HTTPS_PROXY": https, "https_proxy": https, "NO_PROXY": no, "no_proxy": no}


def test_disk_bytes_take_the_proxy_the_environment_names(cli, server, group, tmp_path):
    """HTTPS_PROXY (with its credentials) carries the page writes and reads as it carries the ARM calls, and
    NO_PROXY keeps both off it."""
    proxy = ConnectProxy()
    image = tmp_path / "disk.raw"
    payload = os.urandom(6 * MIB)
    image.write_bytes(payload)
    target = urlsplit(server.url).netloc
    try:
        cli.env |= proxies(proxy.url.replace("http://", "http://user:p%40ss@"), None)
        cli.ok("disk", "upload", "-g", group, "-n", "proxied", "--file", str(image))
        assert proxy.sent > len(payload)
        cli.ok("disk", "download", "-g", group, "-n", "proxied", "--file", str(tmp_path / "back.raw"))
        assert proxy.received > len(payload)
        assert (tmp_path / "back.raw").read_bytes() == payload
        assert {tunnel for tunnel in proxy.tunnels} == {(target, "Basic " + base64.b64encode(b"user:p@ss").decode())}

        tunnels, sent = len(proxy.tunnels), proxy.sent
        cli.env |= proxies(proxy.url.replace("http://", "http://user:p%40ss@"), urlsplit(server.url).hostname)
        cli.ok("disk", "download", "-g", group, "-n", "proxied", "--file", str(tmp_path / "direct.raw"))
        assert (tmp_path / "direct.raw").read_bytes() == payload
        assert (len(proxy.tunnels), proxy.sent) == (tunnels, sent)

        cli.env |= proxies("socks5://127.0.0.1:1080", None)
        refused = cli.fails("disk", "download", "-g", group, "-n", "proxied", "--file", str(tmp_path / "never.raw"))
        assert "The proxy that HTTPS_PROXY, HTTP_PROXY or ALL_PROXY names cannot be used" in refused.stderr
        assert not (tmp_path / "never.raw.partial").exists()
    finally:
        proxy.close()


def test_disk_bytes_refuse_a_proxy_they_cannot_tunnel_through(monkeypatch):
    for name, value in proxies("https://proxy.example:3129", None).items():
        monkeypatch.delenv(name, raising=False)
        if value:
            monkeypatch.setenv(name, value)
    with pytest.raises(transfer.CliError) as refused:
        transfer.PageBlob("https://vmgallery.example/sas/x?sig=y", None).read(0, 512)
    assert refused.value.message.startswith("The proxy 'https://proxy.example:3129' is not one the CLI can use")
    monkeypatch.setenv("https_proxy", "proxy.example:3128")  # no scheme: http, as curl and httpx read it
    assert transfer._proxy(urlsplit("https://vmgallery.example/sas/x")) == ("proxy.example", 3128, {})
    monkeypatch.setenv("no_proxy", ".example")
    assert transfer._proxy(urlsplit("https://vmgallery.example/sas/x")) is None
