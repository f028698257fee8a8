"""Disk bytes over signed URLs: `disk upload` and `disk download`, the steps Azure's docs have users do by hand.

Page writes and ranged GETs go through the standard library's http.client, one connection per thread: a write's
body is encrypted straight from the file's bytes, and a read's `readinto` decrypts straight into the piece's buffer.
Against azure-storage-blob's `upload_page` (a 256 MiB random file, 4 MiB pages, one after another, to a running
server, 2 cores) the SDK's request pipeline cost 2.15 s of client CPU per GiB against 1.13, and 246 MB/s against
328; reads through httpx, whose h11 parses every 64 KiB in Python, cost 5.3 s per GiB against 1.5, at 0.6x the
throughput. The page list goes the same way. Not the SDK for reads either: its ranged `download_blob` sends a Get Page
Ranges with every piece (two requests a piece: 1.04x and 1.48x the time of httpx in two runs, and a round trip more
per 4 MiB on a real network); its whole-blob downloader fetches whole 4 MiB chunks around each listed range (2.8x
the time on a sparse disk) or, with 1 MiB chunks, four times the requests on a dense one (1.9x); and its import
alone (0.2 s of CPU) plus the HEAD its page list needs for the size made a sparse download cost 1.24x the CPU.

Upload: probe the file; convert it to raw with qemu-img unless it is raw or a fixed VHD already; create the disk
with createOption Upload and the VHD size (raw rounded up to 1 MiB, plus the footer); beginGetAccess Write; PUT the
blocks that hold data, up to 4 MiB a write, several pages in flight; endGetAccess. The VHD is never written out:
the pages are read from the raw bytes, zero padding and the footer as they are sent. Zeros are skipped twice: the
holes of a sparse file (SEEK_DATA/SEEK_HOLE) are not even read, and a 1 MiB block read as all zeros (a memcmp
against a zero buffer) is not sent, since a new disk reads as zeros.

Resuming: a failed or killed upload (or a killed server) leaves the disk in ActiveUpload with the pages that landed.
A new Write grant reads the page list, and a block is sent again only if some of its bytes outside the listed ranges
are not zero (unlisted ranges read as zeros, so those blocks already hold what we would write). The server lists a
range only once its chunk is stored whole, so the list is the journal: nothing is kept on the client's side.
endGetAccess is sent only after every block landed: ending access folds what is there into the disk, which would make
a partial upload final.

Download: beginGetAccess Read, the page list, parallel ranged GETs of the listed ranges into `FILE.partial`, sparse
(all-zero blocks are not written either), endGetAccess, then the format: the served bytes are a fixed VHD; raw drops
the footer; the others convert from raw with qemu-img. The target appears only when complete (rename).

Resuming a download: `FILE.partial.json`, the journal, names the blob's ETag and size and the ranges of the partial
file that hold the blob's bytes. A range is recorded only after the partial file was fdatasync'd, and the journal is
replaced whole (written, fsync'd, renamed), so whatever a crash leaves, the journal claims no more than is on disk.
A stopped download keeps both; `--resume` fetches only what the journal lacks, and refuses if the blob's ETag or size
changed (the server's ETag is its manifest's id: the bytes, not the disk, so the temporary disk of each `sig
image-version download` has the same one while the version's bytes are the same). Without --resume both are replaced.
"""

from __future__ import annotations

import base64
import bisect
import concurrent.futures as futures
import contextlib
import errno
import http.client
import json
import os
import signal
import ssl
import tempfile
import threading
import time
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from urllib.parse import SplitResult, unquote, urlsplit

import typer
from rich import filesize
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ...adapters.disks import formats
from ...domain import vhd
from . import lro
from .client import TIMEOUT_SECONDS, ArmClient, CliError

PAGE = 4 << 20  # the page-blob protocol's largest write
# Zeros are found, and writes cut, in blocks of 1 MiB: the disk size's alignment and the server's chunk size, so
# a write covers whole chunks (a partial one makes the server merge it with what it holds).
BLOCK = 1 << 20
# Pages in flight (as many again are queued, read ahead), unless VMGALLERY_TRANSFER_PARALLEL says otherwise. The
# server decrypts every connection on one event loop, so more connections add switching, not throughput: a 1 GiB
# upload to a server on the same 2 cores took 1.59-1.76 s with 2 in flight, 1.85-1.92 with 4 and 1.97-2.07 with 8
# (server CPU 1.27, 1.45 and 1.55 s); with 1, 1.63-1.72. Downloads were within noise of each other at 2 and 4. Two
# pages in flight still carry 8 MiB per round trip (800 MB/s at 10 ms); a longer round trip wants more.
PARALLEL = 2
ENV_PARALLEL = "VMGALLERY_TRANSFER_PARALLEL"
RETRIES = 3
RETRY_DELAY = 0.5
ACCESS_SECONDS = 24 * 3600
DOWNLOAD_FORMATS = ("vhd", "vhdx", "qcow2", "raw", "vmdk")
_EXTENSIONS = {".vhd": "vhd", ".vhdx": "vhdx", ".qcow2": "qcow2", ".raw": "raw", ".img": "raw", ".vmdk": "vmdk"}

Ranges = list[tuple[int, int]]  # [start, end) byte ranges, sorted
T = TypeVar("T")
R = TypeVar("R")


def parallel() -> int:
    """How many pages a transfer keeps in flight."""
    value = os.environ.get(ENV_PARALLEL)
    if not value:
        return PARALLEL
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise CliError(f"{ENV_PARALLEL} must be a whole number from 1 to 64, not '{value}'.", "InvalidArgumentValue")
    return int(value)


# ---- beginGetAccess / endGetAccess ----------------------------------------------------------------------------


def access_action(client: ArmClient, path: str, api_version: str, action: str, body: dict | None = None) -> dict | None:
    """POST `{path}/{action}` and wait for its result as ARM's `location` final state: GET the Location URL until
    it stops answering 202; its body (or None) is the result. A failed operation answers its error there."""
    response = client.send("POST", f"{path}/{action}", api_version, body if body is not None else {})
    if response.status_code == 200 and response.content:
        return response.json()
    location = response.headers.get("Location")
    if not location:
        return None
    while True:
        result = client.send("GET", location)
        if result.status_code != 202:
            return result.json() if result.status_code == 200 and result.content else None
        time.sleep(lro.retry_after(result))
        location = result.headers.get("Location", location)


def grant(client: ArmClient, path: str, api_version: str, access: str, seconds: int = ACCESS_SECONDS) -> str:
    result = (
        access_action(client, path, api_version, "beginGetAccess", {"access": access, "durationInSeconds": seconds})
        or {}
    )
    url = result.get("accessSAS") or result.get("accessSas")
    if not url:
        raise CliError(f"beginGetAccess on {path} returned no accessSAS.", "InvalidResponse")
    return url


def revoke(client: ArmClient, path: str, api_version: str) -> None:
    access_action(client, path, api_version, "endGetAccess")


# ---- the page-blob protocol on a signed URL, through http.client ------------------------------------------------

STORAGE_VERSION = "2021-08-06"  # what the storage SDK of the time sends; the server accepts any


def _storage_error(status: int, headers: Any, content: bytes, what: str) -> CliError:
    code = headers.get("x-ms-error-code") or f"HTTP{status}"
    message = None
    with contextlib.suppress(ElementTree.ParseError):
        message = ElementTree.fromstring(content).findtext("Message") if content else None
    return CliError(message or f"{what} answered HTTP {status}.", code)


class PageBlob:
    """The signed URL of a disk: page writes, ranged reads and the page list through http.client, one connection
    per thread (see the module's note). Safe to use from several threads."""

    def __init__(self, url: str, ca_bundle: str | None):
        self.url = url
        self._parts = urlsplit(url)
        self._context = ssl.create_default_context(cafile=ca_bundle)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []

    def close(self) -> None:
        for conn in self._connections:
            conn.close()

    def put_page(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write `data` at `offset` (Put Page). A dropped connection is retried: a page written twice holds the same
        bytes."""
        what = f"writing bytes {offset}-{offset + len(data) - 1}"
        headers = {"x-ms-page-write": "update", "x-ms-range": f"bytes={offset}-{offset + len(data) - 1}"}
        self._exchange("PUT", "&comp=page", headers, data, what, http.client.HTTPResponse.read)

    def read(self, start: int, end: int, etag: str | None = None) -> bytearray:
        """Bytes [start, end) (see read_into)."""
        data = bytearray(end - start)
        self.read_into(start, data, etag)
        return data

    def read_into(self, start: int, buffer: bytearray, etag: str | None = None) -> None:
        """Bytes [start, start + len(buffer)) into `buffer`, by a ranged GET of our own: the SDK's ranged
        download_blob sends a Get Page Ranges with every piece, and its whole-blob downloader fetches whole 4 MiB
        chunks around each listed range (see the module's note). With `etag`, bytes of another version of the blob
        are refused."""
        end = start + len(buffer)
        what = f"reading bytes {start}-{end - 1}"
        view = memoryview(buffer)

        def fill(response: http.client.HTTPResponse) -> None:
            if etag is not None and response.headers.get("ETag", etag) != etag:
                raise CliError(
                    f"The disk changed while it was being read (ETag {etag}, now {response.headers['ETag']}).",
                    "SourceChanged",
                )
            got = 0
            while got < len(view) and (n := response.readinto(view[got:])):
                got += n
            if got != len(view) or response.read(1):
                raise CliError(f"{what} returned {got} bytes or more, not {len(view)}.", "TransferFailed")

        self._exchange("GET", "", {"x-ms-range": f"bytes={start}-{end - 1}"}, None, what, fill)

    def page_ranges(self) -> PageList:
        """The blob's size, ETag and the ranges that hold data, in one request (the SDK's list_page_ranges needs a
        HEAD for the size)."""

        def answer(response: http.client.HTTPResponse) -> tuple[http.client.HTTPMessage, bytes]:
            return response.headers, response.read()

        headers, content = self._exchange("GET", "&comp=pagelist", {}, None, "listing page ranges", answer)
        root = ElementTree.fromstring(content)
        ranges = [(int(r.findtext("Start") or 0), int(r.findtext("End") or 0) + 1) for r in root.iter("PageRange")]
        size = headers.get("x-ms-blob-content-length")  # Azure's Get Page Ranges sends it, as the server does
        if size is None:
            raise CliError("Listing page ranges answered without the blob's size.", "InvalidResponse")
        return PageList(int(size), headers.get("ETag"), sorted(ranges))

    def _exchange(
        self,
        method: str,
        comp: str,
        headers: dict[str, str],
        body: Any,
        what: str,
        consume: Callable[[http.client.HTTPResponse], R],
    ) -> R:
        """One request on this thread's connection and `consume` of its answer, tried again from the start if the
        connection drops on the way (briefly: a server that is gone should end the command with its --resume hint
        in seconds; every request here is idempotent). A storage error is raised as the CLI's; after any error the
        connection is closed, since its answer may be half read."""
        target = f"{self._parts.path}?{self._parts.query}{comp}"
        headers = {"x-ms-version": STORAGE_VERSION, **headers}
        for attempt in range(RETRIES + 1):
            conn = self._connection()
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                if response.status >= 400:
                    raise _storage_error(response.status, response.headers, response.read(), what)
                return consume(response)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if attempt == RETRIES:
                    raise CliError(f"{what} failed: {exc}", "TransferFailed") from None
                time.sleep(RETRY_DELAY * 2**attempt)
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            parts = self._parts
            proxy = _proxy(parts)
            host, port = (proxy.host, proxy.port) if proxy else (parts.hostname or "", parts.port)
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(host, port, timeout=TIMEOUT_SECONDS, context=self._context)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
            if proxy:
                conn.set_tunnel(parts.hostname or "", parts.port, headers=proxy.headers)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn


class Proxy(NamedTuple):
    host: str
    port: int
    headers: dict[str, str]


def _proxy(url: SplitResult) -> Proxy | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY, unless NO_PROXY covers
    it), as httpx finds it for the ARM calls: the signed URL's bytes take the same way, through a CONNECT tunnel."""
    if urllib.request.proxy_bypass_environment(url.netloc):
        return None
    proxies = urllib.request.getproxies_environment()
    named = proxies.get(url.scheme) or proxies.get("all")
    if not named:
        return None
    proxy = urlsplit(named if "://" in named else f"http://{named}")
    if proxy.scheme != "http" or not proxy.hostname:
        raise CliError(
            f"The proxy '{named}' is not one the CLI can use for disk bytes: give it as http://HOST:PORT.",
            "InvalidArgumentValue",
        )
    headers = {}
    if proxy.username is not None:
        credentials = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    return Proxy(proxy.hostname, proxy.port or 80, headers)


class PageList(NamedTuple):
    size: int
    etag: str | None
    ranges: Ranges


_ZEROS = memoryview(bytes(BLOCK))


def _is_zero(data: bytes, start: int, end: int) -> bool:
    """Whether data[start:end] is all zeros: a memcmp in place against a zero buffer (no slice copied)."""
    return all(data.startswith(_ZEROS[: min(BLOCK, end - at)], at) for at in range(start, end, BLOCK))


def write_sparse(fd: int, data: bytes, offset: int) -> None:
    """pwrite the blocks of `data` that are not all zeros: the file was truncated to its size, so it reads as zeros
    already, and the holes stay holes on disk."""
    view = memoryview(data)
    for a in range(0, len(data), BLOCK):
        b = min(a + BLOCK, len(data))
        if not _is_zero(data, a, b):
            os.pwrite(fd, view[a:b], offset + a)


# ---- progress -----------------------------------------------------------------------------------------------------


class _WireColumn(ProgressColumn):
    """The bytes that crossed the wire and their rate: the bar counts the skipped zeros too."""

    def render(self, task: Task) -> Text:
        wire = task.fields.get("wire", 0)
        rate = wire / task.elapsed if task.elapsed else 0
        return Text(
            f"{task.fields['verb']} {filesize.decimal(wire)}, {filesize.decimal(int(rate))}/s",
            style="progress.data.speed",
        )


class Meter:
    """A transfer's progress bar on stderr: `done(n, wire)` (thread-safe) adds n bytes of the disk, of which
    `wire` crossed the network."""

    def __init__(self, progress: Progress, task: TaskID):
        self._progress, self._task = progress, task
        self._lock = threading.Lock()
        self.wire = 0

    def done(self, n: int, wire: int) -> None:
        with self._lock:
            self.wire += wire
            self._progress.update(self._task, advance=n, wire=self.wire)


@contextlib.contextmanager
def byte_progress(description: str, total: int | None, verb: str) -> Iterator[Meter]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        DownloadColumn(),
        _WireColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as progress:
        yield Meter(progress, progress.add_task(description, total=total, wire=0, verb=verb))


@contextlib.contextmanager
def fraction_progress(description: str) -> Iterator[Callable[[float], None]]:
    """A progress bar for qemu-img conversions, which report fractions of the work."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), console=Console(stderr=True)
    ) as progress:
        task = progress.add_task(description, total=1.0)
        yield lambda fraction: progress.update(task, completed=fraction)


# ---- upload -------------------------------------------------------------------------------------------------------


def data_extents(path: str, size: int) -> Ranges:
    """The ranges of the file's first `size` bytes that may hold data: its extents by SEEK_DATA/SEEK_HOLE, so the
    holes of a sparse file are neither read nor scanned; the whole range where the file system cannot tell."""
    if not hasattr(os, "SEEK_DATA"):
        return [(0, size)] if size else []
    extents: Ranges = []
    with open(path, "rb") as f:
        at = 0
        while at < size:
            try:
                start = os.lseek(f.fileno(), at, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after `at`
                    break
                return [(0, size)]
            if start >= size:
                break
            end = min(os.lseek(f.fileno(), start, os.SEEK_HOLE), size)
            extents.append((start, end))
            at = end
    return extents


@dataclass(frozen=True)
class UploadImage:
    """A disk image as it is uploaded: `data_size` bytes of `path`, zeros to the next MiB, then `footer`."""

    path: str
    data_size: int
    footer: bytes
    source_format: str

    @property
    def size(self) -> int:
        return vhd.azure_upload_size(self.data_size)

    def extents(self) -> Ranges:
        """Where the image may hold data: the file's extents and the footer."""
        return [*data_extents(self.path, self.data_size), (self.size - vhd.FOOTER_SIZE, self.size)]

    def read(self, fd: int, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) of the image, `fd` open on `path`."""
        footer_at = self.size - vhd.FOOTER_SIZE
        if offset + length <= self.data_size:
            data = os.pread(fd, length, offset)
            if len(data) == length:
                return data
            raise CliError(f"The file '{self.path}' shrank while it was being uploaded.", "FileChanged")
        out = bytearray(length)
        if offset < self.data_size:
            got = os.pread(fd, min(length, self.data_size - offset), offset)
            out[: len(got)] = got
        if offset + length > footer_at:
            start = max(footer_at, offset)
            out[start - offset :] = self.footer[start - footer_at : start - footer_at + offset + length - start]
        return bytes(out)


def prepare_upload(path: str, workdir: str) -> UploadImage:
    """The file as an UploadImage, converted to raw in `workdir` when it is neither raw nor a fixed VHD."""
    try:
        info = formats.probe(path)
    except FileNotFoundError:
        raise CliError(f"The file '{path}' does not exist.", "FileNotFound") from None
    except vhd.DiskFormatError as exc:
        raise CliError(str(exc), "UnsupportedImage") from None
    if info.format == "vhd" and info.subformat == "fixed" and vhd.is_azure_vhd_size(info.file_size):
        with open(path, "rb") as f:
            footer = os.pread(f.fileno(), vhd.FOOTER_SIZE, info.file_size - vhd.FOOTER_SIZE)
        return UploadImage(path, info.virtual_size, footer, "vhd")
    if info.format == "raw" or (info.format == "vhd" and info.subformat == "fixed"):
        raw = path
    else:
        raw = os.path.join(workdir, "disk.raw")
        try:
            with fraction_progress(f"Converting {info.format} to raw") as advance:
                formats.to_raw(path, raw, progress=advance)
        except vhd.DiskFormatError as exc:
            raise CliError(str(exc), "ConversionFailed") from None
    size = vhd.azure_virtual_size(info.virtual_size)
    return UploadImage(raw, info.virtual_size, vhd.vhd_footer(size), info.format)


def _uncovered(ranges: Ranges, start: int, end: int) -> Ranges:
    """The parts of [start, end) that `ranges` (sorted, disjoint) do not cover."""
    gaps, at = [], start
    first = max(0, bisect.bisect_right(ranges, start, key=lambda r: r[0]) - 1)
    for i in range(first, len(ranges)):
        a, b = ranges[i]
        if b <= at:
            continue
        if a >= end:
            break
        if a > at:
            gaps.append((at, a))
        at = max(at, b)
    if at < end:
        gaps.append((at, end))
    return gaps


def _overlaps(ranges: Ranges, start: int, end: int) -> bool:
    """Whether [start, end) meets one of `ranges` (sorted, disjoint)."""
    return _uncovered(ranges, start, end) != [(start, end)]


def writes_needed(data: bytes, offset: int, landed: Ranges) -> list[tuple[int, int]]:
    """The page writes that put `data` (read at `offset`) onto a disk holding `landed`: runs of whole blocks, at
    most a page each, of the blocks with a non-zero byte outside the landed ranges. Unlisted ranges read as
    zeros, so an all-zero block never needs sending, nor does one whose bytes are all landed already."""
    runs: list[tuple[int, int]] = []
    for a in range(0, len(data), BLOCK):
        b = min(a + BLOCK, len(data))
        if any(not _is_zero(data, x - offset, y - offset) for x, y in _uncovered(landed, offset + a, offset + b)):
            if runs and runs[-1][1] == a:
                runs[-1] = (runs[-1][0], b)
            else:
                runs.append((a, b))
    return runs


def in_parallel(work: Iterable[T], fn: Callable[[T], None]) -> None:
    """fn(item) for every item, parallel() at a time, with at most as many again queued (so the pages read ahead stay
    few). The first failure stops the rest: nothing new starts, and it is raised once the calls in flight ended."""
    stop = threading.Event()

    def guarded(item: T) -> None:
        if stop.is_set():
            return
        try:
            fn(item)
        except BaseException:
            stop.set()
            raise

    workers = parallel()
    with futures.ThreadPoolExecutor(workers) as pool:
        pending: set[futures.Future] = set()
        try:
            for item in work:
                if len(pending) >= workers * 2:
                    done, pending = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                    for f in done:
                        f.result()
                pending.add(pool.submit(guarded, item))
            for f in futures.as_completed(pending):
                f.result()
        except BaseException:
            stop.set()
            for f in pending:
                f.cancel()
            raise


def upload_pages(blob: PageBlob, image: UploadImage, landed: Ranges) -> int:
    """Send every block the server lacks, several pages in flight; the bytes sent. Raises CliError on the first
    failure, after the writes in flight have ended (each landed whole or not at all)."""
    extents = image.extents()

    def windows() -> Iterator[tuple[int, int]]:
        for offset in range(0, image.size, PAGE):
            length = min(PAGE, image.size - offset)
            if _overlaps(extents, offset, offset + length):
                yield offset, length
            else:
                meter.done(length, 0)  # a hole of the file: zeros, which the disk holds already

    def one(window: tuple[int, int]) -> None:
        offset, length = window
        data = image.read(fd, offset, length)
        sent = 0
        for a, b in writes_needed(data, offset, landed):
            blob.put_page(offset + a, data if (a, b) == (0, length) else data[a:b])
            sent += b - a
        meter.done(length, sent)

    fd = os.open(image.path, os.O_RDONLY)
    try:
        with byte_progress("Uploading", image.size, "sent") as meter:
            in_parallel(windows(), one)
        return meter.wire
    finally:
        os.close(fd)


# ---- download -----------------------------------------------------------------------------------------------------


def format_for(path: str, fmt: str | None) -> str:
    """The --format, else the one the file's extension names, else vhd (the bytes as served)."""
    if fmt:
        return fmt
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower(), "vhd")


def _pieces(ranges: Ranges) -> list[tuple[int, int]]:
    return [(a, min(a + PAGE, end)) for start, end in ranges for a in range(start, end, PAGE)]


def _merged(ranges: Iterable[tuple[int, int]]) -> Ranges:
    out: Ranges = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


# A download records what landed after this many bytes or seconds, whichever comes first: what a killed download
# may fetch again. Each record is an fdatasync of the partial file (its dirty pages, which the final fsync would
# write anyway) and a small file replaced.
JOURNAL_BYTES = 64 << 20
JOURNAL_SECONDS = 2.0


class Journal:
    """A partial download: the file `partial` (the blob's bytes at their offsets, holes sparse), open as `fd`, and
    the ranges of it known to be on disk, kept in `partial + '.json'` with the blob's ETag and size. `landed(a, b)`
    is called, from any thread, once bytes [a, b) are written; every JOURNAL_BYTES or JOURNAL_SECONDS the thread
    that crosses the mark records them (the others go on), and `close` records the rest."""

    def __init__(self, partial: str, listing: PageList, resume: bool):
        self.partial, self.path = partial, f"{partial}.json"
        self.etag, self.size = listing.etag, listing.size
        saved = self._saved() if resume else None
        self.resumed = saved is not None
        if saved is not None and (saved.get("etag"), saved.get("size")) != (self.etag, self.size):
            raise CliError(
                f"The disk is not the one '{partial}' was downloaded from: its ETag {saved.get('etag')} and size "
                f"{saved.get('size')} are now {self.etag} and {self.size}. The partial download is kept; run the "
                "command without --resume to download it again.",
                "SourceChanged",
            )
        if saved is None:
            # The old journal must be gone for good before the file it describes is emptied.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
                _fsync_directory(self.path)
            self.fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
            self.done: Ranges = []
        else:
            self.fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o666)
            # A range past the file's end is not there (the footer, after a raw conversion truncated the file).
            length = os.fstat(self.fd).st_size
            self.done = [(a, min(b, length)) for a, b in _merged(map(tuple, saved.get("done", []))) if a < length]
        os.ftruncate(self.fd, self.size)
        self._lock, self._recording = threading.Lock(), threading.Lock()
        self._pending: Ranges = []
        self._pending_bytes = 0
        self._due = time.monotonic() + JOURNAL_SECONDS

    def _saved(self) -> dict | None:
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except ValueError:
            raise CliError(f"The journal '{self.path}' cannot be read: it is not JSON.", "InvalidJournal") from None

    def landed(self, start: int, end: int) -> None:
        with self._lock:
            self._pending.append((start, end))
            self._pending_bytes += end - start
            due = self._pending_bytes >= JOURNAL_BYTES or time.monotonic() >= self._due
        if due and self._recording.acquire(blocking=False):
            try:
                self._record()
            finally:
                self._recording.release()

    def _record(self) -> None:
        with self._lock:
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            self._due = time.monotonic() + JOURNAL_SECONDS
        os.fdatasync(self.fd)  # the bytes first, then the record that names them
        if not batch:
            return  # still synced: `close` makes the file durable before it is published, whatever was recorded
        self.done = _merged([*self.done, *batch])
        temp = f"{self.path}.tmp"
        with open(temp, "w") as f:
            json.dump({"etag": self.etag, "size": self.size, "done": self.done}, f)
            f.flush()
            os.fsync(f.fileno())
        # No directory fsync: a rename lost in a crash leaves the previous journal, which claims less.
        os.replace(temp, self.path)

    def close(self) -> None:
        """Record what landed and close the file."""
        try:
            with self._recording:
                self._record()
        finally:
            os.close(self.fd)

    def remove(self) -> None:
        """Drop the journal and what is left of the partial file, once the target is in place."""
        for name in (self.path, self.partial):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)


def _fsync_directory(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def download_blob(blob: PageBlob, partial: str, resume: bool) -> Journal:
    """Fetch the blob's bytes into `partial` (holes left sparse), or with `resume` those its journal lacks; the
    journal, closed, which records all of them."""
    listing = blob.page_ranges()
    journal = Journal(partial, listing, resume)
    try:
        if journal.resumed:
            have = sum(b - a for a, b in journal.done)
            typer.echo(f"Resuming: {have} of {listing.size} bytes are already in '{partial}'.", err=True)
        elif resume:
            typer.echo(f"There is no partial download '{partial}' to resume: downloading all of it.", err=True)
        pieces = _pieces([gap for a, b in listing.ranges for gap in _uncovered(journal.done, a, b)])

        def one(piece: tuple[int, int]) -> None:
            data = blob.read(*piece, etag=listing.etag)
            write_sparse(journal.fd, data, piece[0])
            journal.landed(*piece)
            meter.done(len(data), len(data))

        with byte_progress("Downloading", listing.size, "got") as meter:
            meter.done(listing.size - sum(b - a for a, b in pieces), 0)  # the holes and what is there already
            in_parallel(pieces, one)
    finally:
        journal.close()
    return journal


@contextlib.contextmanager
def atomic_target(path: str) -> Iterator[Callable[[str], str]]:
    """Temporary files next to `path`; yields `temp(suffix) -> name`. Whatever is left is removed at the end, so
    the caller renames the finished file onto `path` itself."""
    directory = os.path.dirname(os.path.abspath(path))
    made: list[str] = []

    def temp(suffix: str) -> str:
        fd, name = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=directory)
        os.close(fd)
        made.append(name)
        return name

    try:
        yield temp
    finally:
        for name in made:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)


def _publish(done: str, target: str) -> None:
    """Rename a finished temporary file onto the target, with the mode a new file would get (mkstemp's is 0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(done, 0o666 & ~umask)
    os.replace(done, target)


def write_image(served: str, size: int, target: str, fmt: str) -> None:
    """Turn the served bytes (a fixed VHD of `size` bytes in `served`) into `target` in format `fmt`. `served` is
    renamed (vhd, raw) or left as it is, so that a stopped conversion can be resumed."""
    if fmt != "vhd":
        os.truncate(served, size - vhd.FOOTER_SIZE)
    if fmt in ("vhd", "raw"):
        _publish(served, target)
        return
    with atomic_target(target) as temp:
        converted = temp(f".{fmt}")
        try:
            with fraction_progress(f"Converting raw to {fmt}") as advance:
                formats.from_raw(served, converted, fmt, progress=advance)
        except vhd.DiskFormatError as exc:
            raise CliError(str(exc), "ConversionFailed") from None
        _publish(converted, target)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (a `kill`, a closed terminal) end a transfer as Ctrl-C does, where by default they would end
    the process on the spot: an upload says how to resume, a download ends its access and keeps what it fetched, and
    `sig image-version download` deletes its temporary disk."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _kept(partial: str, message: str, code: str) -> CliError:
    return CliError(
        f"{message} What was downloaded is kept in '{partial}': run the same command with --resume to continue.", code
    )


def download(client: ArmClient, path: str, api_version: str, target: str, fmt: str, resume: bool = False) -> None:
    """Read the disk or snapshot at ARM `path` into the file `target` in format `fmt`, through `target.partial`:
    with `resume`, fetch only what an earlier run's journal lacks. A failure or Ctrl-C keeps the partial download
    and says how to resume it."""
    partial = f"{target}.partial"
    url = grant(client, path, api_version, "Read")
    blob = PageBlob(url, client.profile.ca_bundle)
    failed = True
    try:
        with terminate_as_interrupt():
            journal = download_blob(blob, partial, resume)
        failed = False
    except CliError as exc:
        if exc.code in ("SourceChanged", "InvalidJournal"):
            raise
        raise _kept(partial, exc.message, exc.code or "DownloadInterrupted") from None
    except KeyboardInterrupt:
        raise _kept(partial, "Interrupted.", "DownloadInterrupted") from None
    except OSError as exc:
        raise _kept(partial, f"Writing '{partial}' failed: {exc.strerror}.", "WriteFailed") from None
    finally:
        blob.close()
        try:
            revoke(client, path, api_version)
        except CliError:
            if not failed:  # else the download's error is the one to tell (the server may be gone)
                raise
    write_image(partial, journal.size, target, fmt)
    journal.remove()
