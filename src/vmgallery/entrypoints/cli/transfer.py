"""Disk bytes over signed URLs: `disk upload` and `disk download`, the steps Azure's docs have users do by hand.

Page writes go through azure-storage-blob (a BlobClient on the signed URL): against a hand-written httpx client in
the same CLI (a 256 MiB random file and a sparse 1 GiB one, on a shared 2-core machine) it spent the same client CPU
(1.49 against 1.55 s, 1.98 against 1.78 s), with wall times within the noise (1.08x, 1.14x). Reads, the page list
and ranged GETs, are plain httpx: the SDK's ranged `download_blob` sends a Get Page Ranges with every piece (two
requests a piece: 1.04x and 1.48x the time of httpx in two runs, and a round trip more per 4 MiB on a real
network); its whole-blob downloader fetches whole 4 MiB chunks around each listed range (2.8x the time on a sparse
disk) or, with 1 MiB chunks, four times the requests on a dense one (1.9x); and its import alone (0.2 s of CPU)
plus the HEAD its page list needs for the size made a sparse download cost 1.24x the CPU.

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

Download: beginGetAccess Read, the page list, parallel ranged GETs of the listed ranges into a sparse temporary file
next to the target (all-zero blocks are not written either), endGetAccess, then the format:
the served bytes are a fixed VHD; raw drops the footer; the others convert from raw with qemu-img. The target appears
only when complete (rename).
"""

from __future__ import annotations

import bisect
import concurrent.futures as futures
import contextlib
import errno
import os
import ssl
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
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
from . import lro
from .client import TIMEOUT_SECONDS, ArmClient, CliError

PAGE = 4 << 20  # the page-blob protocol's largest write
# Zeros are found, and writes cut, in blocks of 1 MiB: the disk size's alignment and the server's chunk size, so
# a write covers whole chunks (a partial one makes the server merge it with what it holds).
BLOCK = 1 << 20
# Pages in flight (as many again are queued, read ahead). 4 and 8 were within noise of each other on a shared 2-core
# machine where the server shares the cores; 4 was ahead in more runs, and holds less memory.
PARALLEL = 4
RETRIES = 3
RETRY_DELAY = 0.5
ACCESS_SECONDS = 24 * 3600
DOWNLOAD_FORMATS = ("vhd", "vhdx", "qcow2", "raw", "vmdk")
_EXTENSIONS = {".vhd": "vhd", ".vhdx": "vhdx", ".qcow2": "qcow2", ".raw": "raw", ".img": "raw", ".vmdk": "vmdk"}

Ranges = list[tuple[int, int]]  # [start, end) byte ranges, sorted
T = TypeVar("T")


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


# ---- the page-blob protocol on a signed URL: writes by azure-storage-blob, reads by httpx -------------------------


def _failure(exc: Exception, what: str) -> CliError:
    """The SDK's error as the CLI's: the storage error code and the first line of its message."""
    from azure.core.exceptions import HttpResponseError

    if isinstance(exc, HttpResponseError):
        status = exc.response.status_code if exc.response is not None else None
        code = exc.error_code or (f"HTTP{status}" if status else "TransferFailed")
        message = (exc.reason or "") if exc.error_code is None else str(exc.message).split("\n", 1)[0]
        return CliError(message or f"{what} answered HTTP {status}.", code)
    return CliError(f"{what} failed: {exc}", "TransferFailed")


def _storage_error(response: httpx.Response, what: str) -> CliError:
    code = response.headers.get("x-ms-error-code") or f"HTTP{response.status_code}"
    message = None
    with contextlib.suppress(ElementTree.ParseError):
        message = ElementTree.fromstring(response.content).findtext("Message") if response.content else None
    return CliError(message or f"{what} answered HTTP {response.status_code}.", code)


class PageBlob:
    """The signed URL of a disk: page writes through an SDK BlobClient, made at the first write (the SDK costs a
    download 0.2 s of CPU to import and a HEAD for the size); the page list and ranged reads through httpx. Safe
    to use from several threads (the SDK's own parallel transfers share one client too)."""

    def __init__(self, url: str, ca_bundle: str | None):
        self.url = url
        self._ca_bundle = ca_bundle
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self._http = httpx.Client(verify=verify, timeout=TIMEOUT_SECONDS, limits=httpx.Limits(max_connections=PARALLEL))
        self._lock = threading.Lock()
        self._sdk: Any = None

    def close(self) -> None:
        if self._sdk is not None:
            self._sdk.close()
        self._http.close()

    def _writer(self) -> Any:
        with self._lock:
            if self._sdk is None:
                from azure.storage.blob import BlobClient, LinearRetry

                self._sdk = BlobClient.from_blob_url(
                    self.url,
                    connection_verify=self._ca_bundle or True,
                    # A dropped connection is retried (a page written twice holds the same bytes), but briefly: a
                    # server that is gone should end the command with its --resume hint in seconds, not after the
                    # SDK's default backoff (15 s and up, ten times).
                    retry_policy=LinearRetry(
                        backoff=2 * RETRY_DELAY, random_jitter_range=RETRY_DELAY, retry_total=RETRIES
                    ),
                    read_timeout=TIMEOUT_SECONDS,
                )
            return self._sdk

    def put_page(self, offset: int, data: bytes) -> None:
        from azure.core.exceptions import AzureError

        client = self._writer()
        try:
            client.upload_page(data, offset=offset, length=len(data))
        except (AzureError, OSError) as exc:
            raise _failure(exc, f"writing bytes {offset}-{offset + len(data) - 1}") from None

    def _send(self, method: str, what: str, comp: str | None = None, **kw) -> httpx.Response:
        """One request; a dropped connection is retried (reads are idempotent), as the storage SDKs do."""
        # httpx's params= would replace the signature's query string rather than add to it.
        url = f"{self.url}&comp={comp}" if comp else self.url
        for attempt in range(RETRIES + 1):
            try:
                response = self._http.request(method, url, **kw)
                break
            except httpx.TransportError as exc:
                if attempt == RETRIES:
                    raise CliError(f"{what} failed: {exc}", "TransferFailed") from None
                time.sleep(RETRY_DELAY * 2**attempt)
            except httpx.HTTPError as exc:
                raise CliError(f"{what} failed: {exc}", "TransferFailed") from None
        if response.status_code >= 400:
            raise _storage_error(response, what)
        return response

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end), by a ranged GET of our own: the SDK's ranged download_blob sends a Get Page Ranges
        with every piece, and its whole-blob downloader fetches whole 4 MiB chunks around each listed range (see
        the module's note)."""
        what = f"reading bytes {start}-{end - 1}"
        response = self._send("GET", what, headers={"x-ms-range": f"bytes={start}-{end - 1}"})
        if len(response.content) != end - start:
            raise CliError(f"{what} returned {len(response.content)} bytes.", "TransferFailed")
        return response.content

    def page_ranges(self) -> tuple[int, Ranges]:
        """The blob's size and the ranges that hold data, in one request (the SDK's list_page_ranges would need a
        HEAD for the size)."""
        response = self._send("GET", "listing page ranges", "pagelist")
        root = ElementTree.fromstring(response.content)
        ranges = [(int(r.findtext("Start") or 0), int(r.findtext("End") or 0) + 1) for r in root.iter("PageRange")]
        size = response.headers.get("x-ms-blob-content-length")
        if size is None:
            size = self._send("HEAD", "reading the size").headers["Content-Length"]
        return int(size), sorted(ranges)


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
        return formats.azure_upload_size(self.data_size)

    def extents(self) -> Ranges:
        """Where the image may hold data: the file's extents and the footer."""
        return [*data_extents(self.path, self.data_size), (self.size - formats.FOOTER_SIZE, self.size)]

    def read(self, fd: int, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) of the image, `fd` open on `path`."""
        footer_at = self.size - formats.FOOTER_SIZE
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
    except formats.DiskFormatError as exc:
        raise CliError(str(exc), "UnsupportedImage") from None
    if info.format == "vhd" and info.subformat == "fixed" and formats.is_azure_vhd_size(info.file_size):
        with open(path, "rb") as f:
            footer = os.pread(f.fileno(), formats.FOOTER_SIZE, info.file_size - formats.FOOTER_SIZE)
        return UploadImage(path, info.virtual_size, footer, "vhd")
    if info.format == "raw" or (info.format == "vhd" and info.subformat == "fixed"):
        raw = path
    else:
        raw = os.path.join(workdir, "disk.raw")
        try:
            with fraction_progress(f"Converting {info.format} to raw") as advance:
                formats.to_raw(path, raw, progress=advance)
        except formats.DiskFormatError as exc:
            raise CliError(str(exc), "ConversionFailed") from None
    size = formats.azure_virtual_size(info.virtual_size)
    return UploadImage(raw, info.virtual_size, formats.vhd_footer(size), info.format)


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
    """fn(item) for every item, PARALLEL at a time, with at most as many again queued (so the pages read ahead stay
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

    with futures.ThreadPoolExecutor(PARALLEL) as pool:
        pending: set[futures.Future] = set()
        try:
            for item in work:
                if len(pending) >= PARALLEL * 2:
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


def download_blob(blob: PageBlob, fd: int) -> int:
    """Write the blob's bytes into `fd` (holes left sparse); its size."""
    size, ranges = blob.page_ranges()
    os.ftruncate(fd, size)
    pieces = _pieces(ranges)

    def one(piece: tuple[int, int]) -> None:
        data = blob.read(*piece)
        write_sparse(fd, data, piece[0])
        meter.done(len(data), len(data))

    with byte_progress("Downloading", size, "got") as meter:
        meter.done(size - sum(b - a for a, b in pieces), 0)  # the holes are there already
        in_parallel(pieces, one)
    return size


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


def write_image(served: str, size: int, target: str, fmt: str, temp: Callable[[str], str]) -> None:
    """Turn the served bytes (a fixed VHD of `size` bytes in `served`) into `target` in format `fmt`."""
    if fmt != "vhd":
        os.truncate(served, size - formats.FOOTER_SIZE)
    if fmt in ("vhd", "raw"):
        _publish(served, target)
        return
    converted = temp(f".{fmt}")
    try:
        with fraction_progress(f"Converting raw to {fmt}") as advance:
            formats.from_raw(served, converted, fmt, progress=advance)
    except formats.DiskFormatError as exc:
        raise CliError(str(exc), "ConversionFailed") from None
    _publish(converted, target)


def download(client: ArmClient, path: str, api_version: str, target: str, fmt: str) -> None:
    """Read the disk or snapshot at ARM `path` into the file `target` in format `fmt`."""
    with atomic_target(target) as temp:
        served = temp(".vhd")
        url = grant(client, path, api_version, "Read")
        blob = PageBlob(url, client.profile.ca_bundle)
        try:
            fd = os.open(served, os.O_WRONLY)
            try:
                size = download_blob(blob, fd)
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            blob.close()
            revoke(client, path, api_version)
        write_image(served, size, target, fmt, temp)
