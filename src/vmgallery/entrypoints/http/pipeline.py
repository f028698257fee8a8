"""The outer step of every request, as plain ASGI: request ids, the access log, the 500 envelope, the canonical path,
and the gate (limits, grammars, authentication) that may answer before the route does. And how an ARM error is
written.

Plain ASGI rather than Starlette's `BaseHTTPMiddleware`: that one runs the rest of the stack as a task in a task
group and hands the response back through a memory stream, which cost about a third of the CPU of a GET. Here the
response goes straight through, with the id headers added to its first message.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...domain import errors
from ...domain.ids import canonical_path

log = logging.getLogger("vmgallery.http")

Gate = Callable[[Request], Awaitable[Response | None]]
# (scope, status, correlation id, Azure-AsyncOperation URL or None, arrival time): after a request is answered
Done = Callable[[Scope, int, str, str | None, float], None]
# What serves a request without the application's router (`fastpath.FastRoutes`), or None; it is given the request
# the gate saw (its headers and query already parsed)
Direct = Callable[[Scope], Callable[[Request, Send], Awaitable[None]] | None]


def arm_error(exc: errors.ArmError, headers: dict | None = None) -> Response:
    # ASCII-escaped: an error's message may quote what the request sent, and must render whatever that was.
    return Response(
        json.dumps(exc.body(), ensure_ascii=True, separators=(",", ":")),
        status_code=exc.status,
        headers=headers,
        media_type="application/json",
    )


def _echoed(value: str | None) -> str | None:
    """A client's id header as it may be echoed back: short, printable ASCII (else not echoed)."""
    if value and len(value) <= 256 and value.isascii() and value.isprintable():
        return value
    return None


class RequestPipeline:
    """Wraps the application: every HTTP request gets ids and an access-log line, and an unexpected exception becomes
    a logged 500 in the ARM envelope carrying the correlation id, the connection staying open. `gate` sees the
    request (its path already canonical) first, and answers instead of the route when it returns a response."""

    def __init__(self, app: ASGIApp, gate: Gate, on_done: Done | None = None, direct: Direct | None = None):
        self.app = app
        self.gate = gate
        self.on_done = on_done  # told of each answered request (the activity log), after its response
        self.direct = direct  # routes served past the application's router (the ARM resources')

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        arrived = time.time()  # before the handler: an operation may end before its response is sent
        request_id = str(uuid.uuid4())
        headers = Headers(scope=scope)
        correlation_id = _echoed(headers.get("x-ms-correlation-request-id")) or request_id
        client_request_id = _echoed(headers.get("x-ms-client-request-id"))
        path = scope["path"]
        status = 500
        answered = False
        async_url: str | None = None

        async def send_with_ids(message: Message) -> None:
            nonlocal status, answered, async_url
            if message["type"] == "http.response.start":
                answered = True
                status = message["status"]
                out = MutableHeaders(scope=message)
                async_url = out.get("azure-asyncoperation")
                out["x-ms-request-id"] = request_id
                out["x-ms-correlation-request-id"] = correlation_id
                if client_request_id:
                    out["x-ms-client-request-id"] = client_request_id
            await send(message)

        try:
            path = canonical_path(path)
            scope["path"] = path
            request = Request(scope, receive)
            refusal = await self.gate(request)
            if refusal is not None:
                await refusal(scope, receive, send_with_ids)
            elif (serve := self.direct(scope) if self.direct is not None else None) is not None:
                await serve(request, send_with_ids)
            else:
                await self.app(scope, receive, send_with_ids)
        except Exception:
            if answered:
                raise  # too late for an error response: the server ends the connection
            # Caught here, not left to the server: the request is logged, and the connection stays open.
            log.exception("unhandled error", extra={"request_id": request_id, "correlation_id": correlation_id})
            await arm_error(
                errors.InternalError(
                    f"The server hit an unexpected error; its log has the details under correlation id "
                    f"{correlation_id}. Read the resource to see whether the request took effect."
                )
            )(scope, receive, send_with_ids)
        if self.on_done is not None:
            self.on_done(scope, status, correlation_id, async_url, arrived)
        if log.isEnabledFor(logging.INFO):
            # The record made directly: `log.info` would walk the stack for a caller's file and line no one reads.
            extra = {
                "method": scope["method"],
                "path": path[:512],
                "status": status,
                "ms": round((time.monotonic() - started) * 1000, 1),
                "request_id": request_id,
                "correlation_id": correlation_id,
            }
            log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, "request", (), None, extra=extra))
