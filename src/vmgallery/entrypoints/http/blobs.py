"""The Azure page-blob protocol on signed URLs: what `PageBlobClient.from_blob_url(accessSAS)` speaks.

PUT ?comp=page (x-ms-page-write update|clear, x-ms-range or Range, 512-byte aligned, at most 4 MiB) writes an
upload; GET (with Range/x-ms-range) and HEAD read a disk; GET ?comp=pagelist lists the ranges that hold data.
Errors are the storage service's XML with `x-ms-error-code`, which the storage SDK turns into its exceptions.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import email.utils
import gc
import logging
import re
import time
import uuid
from xml.sax.saxutils import escape

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ...app.access import DiskAccess, Target
from ...app.content import iter_range
from ...app.ports import SasDenied
from ...app.uploads import MAX_WRITE, PAGE, StreamedWrite
from .protocol import BODY_INTO
from .threads import start_in_thread, to_thread

log = logging.getLogger("vmgallery.blobs")

STORAGE_VERSION = "2021-08-06"
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class StorageError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def storage_error(exc: StorageError) -> Response:
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{exc.code}</Code>'
        f"<Message>{escape(exc.message)}</Message></Error>"
    )
    return Response(
        body, status_code=exc.status, media_type="application/xml", headers={"x-ms-error-code": exc.code, **_common()}
    )


def _common() -> dict[str, str]:
    return {
        "x-ms-version": STORAGE_VERSION,
        "x-ms-request-id": str(uuid.uuid4()),
        "Date": email.utils.formatdate(usegmt=True),
    }


def _range(request: Request) -> tuple[int, int] | None:
    raw = request.headers.get("x-ms-range") or request.headers.get("range")
    if raw is None:
        return None
    m = RANGE.match(raw.strip())
    if not m:
        raise StorageError(400, "InvalidHeaderValue", f"The range '{raw}' is not of the form bytes=start-end.")
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else None
    return start, end


def _page_write(request: Request) -> tuple[str, int, int]:
    """A Put Page's mode and range (start, end inclusive), checked as far as they can be without the disk."""
    mode = (request.headers.get("x-ms-page-write") or "").lower()
    if mode not in ("update", "clear"):
        raise StorageError(400, "InvalidHeaderValue", "x-ms-page-write must be 'update' or 'clear'.")
    rng = _range(request)
    if rng is None or rng[1] is None:
        raise StorageError(400, "MissingRequiredHeader", "Put Page needs x-ms-range: bytes=start-end.")
    start, end = rng
    length = end - start + 1
    if start % PAGE or length <= 0 or length % PAGE:
        raise StorageError(
            416,
            "InvalidPageRange",
            f"The range {start}-{end} is not 512-byte aligned (start and end+1 must be multiples of 512).",
        )
    if length > MAX_WRITE:
        raise StorageError(413, "RequestBodyTooLarge", f"A page write is at most 4 MiB; got {length} bytes.")
    return mode, start, end


def _blob_headers(target) -> dict[str, str]:
    etag = f'"{target.manifest.id[:32]}"' if target.manifest else f'"{target.row.body["properties"]["uniqueId"]}"'
    return {
        "x-ms-blob-type": "PageBlob",
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": email.utils.formatdate(time.time(), usegmt=True),
        "x-ms-blob-sequence-number": "0",
        "x-ms-server-encrypted": "true",
        **_common(),
    }


SAS_PREFIX = "/_blob/sas/"
# Bodies of full 4 MiB page writes kept for the next: a new one costs the event loop 4 MiB of zeroing and page faults
# (about 5% of its time in an upload, bench/README.md, throughput.py).
BODY_BUFFERS = 4
# Page writes pass 1 MiB buffers through several threads, and glibc keeps what they free in per-thread arenas: once
# the data plane has been idle this long, the free memory goes back to the system (bench/README.md: idle RSS).
IDLE_TRIM_SECONDS = 1.0
_malloc_trim = getattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_trim", None)


class DataPlane:
    """The ASGI app the server runs: signed URLs (`/_blob/sas/<grant>`) are served here, everything else is handed
    to the ARM app. Page writes carry nearly all of a server's bytes, and a signed URL is its own credential, so
    they skip the ARM request pipeline (a BaseHTTPMiddleware that relays every body message through a task group,
    FastAPI's routing): about a tenth of the server's time per 4 MiB write (bench/README.md, throughput.py). Each
    request still gets its request id and its access log line."""

    def __init__(self, app: ASGIApp, access: DiskAccess):
        self.app = app
        self.access = access
        self._in_flight = 0
        self._trim: asyncio.TimerHandle | None = None
        self._bodies: list[bytearray] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(SAS_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        request = Request(scope, receive)
        request_id = str(uuid.uuid4())
        self._in_flight += 1
        if self._trim is not None:
            self._trim.cancel()
        try:
            response = await self._dispatch(request, scope["path"][len(SAS_PREFIX) :])
        except Exception:
            # Caught here, not left to the server: the request is logged, and the connection stays open.
            log.exception("unhandled error", extra={"request_id": request_id})
            response = storage_error(
                StorageError(500, "InternalError", f"The server hit an unexpected error (request id {request_id}).")
            )
        response.headers["x-ms-request-id"] = request_id
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id and len(client_request_id) <= 256 and client_request_id.isascii():
            response.headers["x-ms-client-request-id"] = client_request_id
        try:
            await response(scope, receive, send)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._trim = asyncio.get_running_loop().call_later(IDLE_TRIM_SECONDS, self._idle)
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": scope["path"][:512],
                "status": response.status_code,
                "ms": round((time.monotonic() - started) * 1000, 1),
                "request_id": request_id,
            },
        )

    def _idle(self) -> None:
        self._bodies.clear()
        # A closed connection's objects form reference cycles (its protocol, request cycles, scopes, the body
        # extension) that hold its buffers until the cyclic GC's next full pass, which may be far off: idle RSS
        # after parallel uploads was 120-124 MiB without this collection, 109 with it.
        gc.collect()
        if _malloc_trim is not None:
            _malloc_trim(0)

    def _body(self, length: int) -> bytearray:
        """A buffer for a page write's body; its old bytes are all overwritten before any is staged."""
        return self._bodies.pop() if length == MAX_WRITE and self._bodies else bytearray(length)

    def _done_with(self, body: bytearray) -> None:
        """Called once no thread reads `body` any more."""
        if len(body) == MAX_WRITE and len(self._bodies) < BODY_BUFFERS:
            self._bodies.append(body)

    async def _dispatch(self, request: Request, grant_id: str) -> Response:
        if not grant_id or "/" in grant_id:
            return storage_error(StorageError(404, "ResourceNotFound", "The specified resource does not exist."))
        if request.method == "PUT":
            return await self.put(request, grant_id)
        if request.method in ("GET", "HEAD"):
            return await self.get(request, grant_id)
        return storage_error(
            StorageError(405, "UnsupportedHttpVerb", f"The method '{request.method}' is not supported here.")
        )

    async def resolve(self, request: Request, grant_id: str, need: str):
        try:
            return await to_thread(self.access.resolve, grant_id, dict(request.query_params), need)
        except SasDenied as exc:
            raise StorageError(
                403, "AuthenticationFailed", f"Server failed to authenticate the request. {exc}"
            ) from None

    async def put(self, request: Request, grant_id: str) -> Response:
        try:
            if request.query_params.get("comp") != "page":
                raise StorageError(
                    400, "UnsupportedOperation", "Only Put Page (?comp=page) is supported on a disk's upload URL."
                )
            # The headers are read first, but a problem with them is told only after the signature is checked.
            problem, mode, start, end = None, "", 0, 0
            try:
                mode, start, end = _page_write(request)
            except StorageError as exc:
                problem = exc
            params = dict(request.query_params)
            body = self._body(end - start + 1) if mode == "update" and problem is None else None

            def begin() -> tuple[Target, StreamedWrite | None]:
                target = self.access.resolve(grant_id, params, "w")
                if body is None or end >= target.size:
                    return target, None
                return target, self.access.begin_write(target, start, body)

            # The signature check and the write's start run on a thread while the body arrives: nothing is staged
            # before the check has passed, and a refused request is answered as soon as it is known.
            starting = start_in_thread(begin)
            latest = 0

            def arrived(upto: int) -> None:
                nonlocal latest
                latest = upto
                if starting.done() and not starting.cancelled() and starting.exception() is None:
                    write = starting.result()[1]
                    if write is not None:
                        write.received(upto)

            starting.add_done_callback(lambda _: arrived(latest))
            received, disconnected = 0, False
            if body is not None:
                into = request.scope.get("extensions", {}).get(BODY_INTO)
                direct = None
                if into is not None and request.headers.get("content-length") == str(len(body)):
                    direct = into(body, arrived)
                if direct is not None:
                    await asyncio.wait((direct, starting), return_when=asyncio.FIRST_COMPLETED)
                    if not direct.done() and starting.exception() is not None:
                        direct.cancel()  # refused: the rest of the body is not wanted
                    else:
                        received = await direct
                        disconnected = received < len(body)
                else:
                    try:
                        async for part in request.stream():
                            if received + len(part) <= len(body):
                                body[received : received + len(part)] = part
                            received += len(part)
                            if starting.done() and starting.exception() is not None:
                                break
                            arrived(min(received, len(body)))
                    except ClientDisconnect:
                        disconnected = True
            try:
                target, write = await starting
            except SasDenied as exc:
                raise StorageError(
                    403, "AuthenticationFailed", f"Server failed to authenticate the request. {exc}"
                ) from None
            if disconnected:
                log.info("client went away mid-upload; nothing was written", extra={"range": f"{start}-{end}"})
                return Response(status_code=400)
            if problem:
                raise problem
            if end >= target.size:
                raise StorageError(
                    416,
                    "InvalidPageRange",
                    f"The range {start}-{end} is beyond the end of the disk ({target.size} bytes).",
                )
            length = end - start + 1
            if write is not None:
                if received != length:
                    raise StorageError(
                        400, "InvalidHeaderValue", f"The body has {received} bytes but the range names {length}."
                    )
                await to_thread(self.access.commit_write, write)
                self._done_with(write.body)
            else:
                await to_thread(self.access.write, target, start, None, length)
            return Response(status_code=201, headers={**_blob_headers(target), "x-ms-request-server-encrypted": "true"})
        except StorageError as exc:
            return storage_error(exc)

    async def get(self, request: Request, grant_id: str) -> Response:
        try:
            target = await self.resolve(request, grant_id, "r")
            manifest = target.manifest or await to_thread(self.access.manifest, target)
            if request.query_params.get("comp") == "pagelist":
                return _page_list(manifest, target)
            headers = _blob_headers(target)
            rng = _range(request)
            if request.method == "HEAD":
                return Response(
                    status_code=200,
                    headers={
                        **headers,
                        "Content-Length": str(manifest.size),
                        "Content-Type": "application/octet-stream",
                    },
                )
            if rng is None:
                start, end, status = 0, manifest.size - 1, 200
            else:
                start, end = rng
                end = manifest.size - 1 if end is None else min(end, manifest.size - 1)
                if start >= manifest.size or end < start:
                    raise StorageError(
                        416,
                        "InvalidRange",
                        f"The range specified is invalid for the current size of the resource ({manifest.size} bytes).",
                    )
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{manifest.size}"
            headers["Content-Length"] = str(end - start + 1)
            return StreamingResponse(
                iter_range(target.reader, manifest, start, end + 1),
                status_code=status,
                headers=headers,
                media_type="application/octet-stream",
            )
        except StorageError as exc:
            return storage_error(exc)


def _page_list(manifest, target) -> Response:
    ranges = []
    for i, digest in enumerate(manifest.digests):
        if digest is None:
            continue
        start, length = manifest.span(i)
        if ranges and ranges[-1][1] + 1 == start:
            ranges[-1][1] = start + length - 1
        else:
            ranges.append([start, start + length - 1])
    body = (
        '<?xml version="1.0" encoding="utf-8"?><PageList>'
        + "".join(f"<PageRange><Start>{a}</Start><End>{b}</End></PageRange>" for a, b in ranges)
        + "</PageList>"
    )
    return Response(
        body,
        media_type="application/xml",
        headers={**_blob_headers(target), "x-ms-blob-content-length": str(manifest.size)},
    )
