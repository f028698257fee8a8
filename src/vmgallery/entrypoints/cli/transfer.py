"""Disk bytes over signed URLs: `disk upload` and `disk download`, the steps Azure's docs have users do by hand.

Upload: probe the file; convert it to raw with qemu-img unless it is raw or a fixed VHD already; create the disk
with createOption Upload and the VHD size (raw rounded up to 1 MiB, plus the footer); beginGetAccess Write; PUT the
4 MiB pages that hold data, a few at a time; endGetAccess. The VHD is never written out: the pages are read from
the raw bytes, zero padding and the footer as they are sent.

Resuming: a failed or killed upload leaves the disk in ActiveUpload with the pages that landed. A new Write grant
reads the page list, and a page is sent again only if some of its bytes outside the listed ranges are not zero
(unlisted ranges read as zeros, so those pages already hold what we would write). endGetAccess is sent only after
every page landed: ending access folds what is there into the disk, which would make a partial upload final.

Download: beginGetAccess Read, the page list, parallel ranged GETs of the listed ranges into a sparse temporary
file next to the target, endGetAccess, then the format: the served bytes are a fixed VHD; raw drops the footer;
the others convert from raw with qemu-img. The target appears only when complete (rename).
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import os
import ssl
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ...adapters.disks import formats
from . import lro
from .client import TIMEOUT_SECONDS, ArmClient, CliError

PAGE = 4 << 20  # the page-blob protocol's largest write
PARALLEL = 4
RETRIES = 3
RETRY_DELAY = 0.5
ACCESS_SECONDS = 24 * 3600
DOWNLOAD_FORMATS = ("vhd", "vhdx", "qcow2", "raw", "vmdk")
_EXTENSIONS = {".vhd": "vhd", ".vhdx": "vhdx", ".qcow2": "qcow2", ".raw": "raw", ".img": "raw", ".vmdk": "vmdk"}

Ranges = list[tuple[int, int]]  # [start, end) byte ranges, sorted


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


# ---- the page-blob protocol on a signed URL ---------------------------------------------------------------------


def _storage_error(response: httpx.Response, what: str) -> CliError:
    code = response.headers.get("x-ms-error-code") or f"HTTP{response.status_code}"
    message = None
    with contextlib.suppress(ElementTree.ParseError):
        message = ElementTree.fromstring(response.content).findtext("Message") if response.content else None
    return CliError(message or f"{what} answered HTTP {response.status_code}.", code)


class PageBlob:
    """The signed URL of a disk: page writes, ranged reads, the page list. Safe to use from several threads."""

    def __init__(self, url: str, ca_bundle: str | None):
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self.url = url
        self._http = httpx.Client(
            verify=verify, timeout=TIMEOUT_SECONDS, limits=httpx.Limits(max_connections=PARALLEL * 2)
        )

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, what: str, comp: str | None = None, **kw) -> httpx.Response:
        """One request; a dropped connection is retried (every call here is idempotent: a page written twice holds
        the same bytes), as the storage SDKs do."""
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

    def put_page(self, offset: int, data: bytes) -> None:
        self._send(
            "PUT",
            f"writing bytes {offset}-{offset + len(data) - 1}",
            "page",
            content=data,
            headers={"x-ms-page-write": "update", "x-ms-range": f"bytes={offset}-{offset + len(data) - 1}"},
        )

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end)."""
        response = self._send(
            "GET", f"reading bytes {start}-{end - 1}", headers={"x-ms-range": f"bytes={start}-{end - 1}"}
        )
        if len(response.content) != end - start:
            raise CliError(f"reading bytes {start}-{end - 1} returned {len(response.content)} bytes.", "TransferFailed")
        return response.content

    def page_ranges(self) -> tuple[int, Ranges]:
        """The blob's size and the ranges that hold data."""
        response = self._send("GET", "listing page ranges", "pagelist")
        root = ElementTree.fromstring(response.content)
        ranges = [(int(r.findtext("Start")), int(r.findtext("End")) + 1) for r in root.iter("PageRange")]
        size = response.headers.get("x-ms-blob-content-length")
        if size is None:
            size = self._send("HEAD", "reading the size").headers["Content-Length"]
        return int(size), sorted(ranges)


# ---- progress -----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def byte_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar with bytes and rate on stderr; yields `advance(n)` (thread-safe, as rich's tasks are)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


@contextlib.contextmanager
def fraction_progress(description: str) -> Iterator[Callable[[float], None]]:
    """A progress bar for qemu-img conversions, which report fractions of the work."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), console=Console(stderr=True)
    ) as progress:
        task = progress.add_task(description, total=1.0)
        yield lambda fraction: progress.update(task, completed=fraction)


# ---- upload -------------------------------------------------------------------------------------------------------


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

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray(length)
        if offset < self.data_size:
            with open(self.path, "rb") as f:
                got = os.pread(f.fileno(), min(length, self.data_size - offset), offset)
            out[: len(got)] = got
        footer_at = self.size - formats.FOOTER_SIZE
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


def _covered(ranges: Ranges, start: int, end: int) -> Ranges:
    """The parts of [start, end) that `ranges` do not cover."""
    gaps, at = [], start
    for a, b in ranges:
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


def _page_needed(data: bytes, offset: int, landed: Ranges) -> bool:
    """Whether the server lacks some of these bytes: unlisted ranges read as zeros, so only non-zero bytes outside
    the landed ranges need sending."""
    return any(data[a - offset : b - offset].count(0) != b - a for a, b in _covered(landed, offset, offset + len(data)))


def upload_pages(blob: PageBlob, image: UploadImage, landed: Ranges) -> int:
    """Send every page the server lacks; the bytes sent. Raises CliError on the first failure."""

    def one(offset: int) -> int:
        data = image.read(offset, min(PAGE, image.size - offset))
        if _page_needed(data, offset, landed):
            blob.put_page(offset, data)
            sent = len(data)
        else:
            sent = 0
        advance(len(data))
        return sent

    total = 0
    with byte_progress("Uploading", image.size) as advance, futures.ThreadPoolExecutor(PARALLEL) as pool:
        pending: set[futures.Future] = set()
        try:
            for offset in range(0, image.size, PAGE):
                if len(pending) >= PARALLEL * 2:
                    done, pending = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                    total += sum(f.result() for f in done)
                pending.add(pool.submit(one, offset))
            total += sum(f.result() for f in futures.as_completed(pending))
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    return total


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
        os.pwrite(fd, data, piece[0])
        advance(len(data))

    with byte_progress("Downloading", size) as advance, futures.ThreadPoolExecutor(PARALLEL) as pool:
        advance(size - sum(b - a for a, b in pieces))  # the holes are already there
        list(pool.map(one, pieces))  # re-raises the first failure
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
