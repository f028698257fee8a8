"""The HTTP/1.1 protocol the server speaks: uvicorn's httptools protocol (llhttp, in C), with bounds on the head.

Page writes bring a 4 MiB body each; h11, in Python, copies every body several times over and cost about a sixth
more server CPU per uploaded GiB (bench/README.md, throughput.py). Two things h11 did, llhttp does not, so this
protocol does them itself:
- A bound on the request head (h11's `max_incomplete_event_size`): the bytes that arrive while a request's head is
  incomplete are counted, and past MAX_HEAD (give or take one network read) the request is refused with a
  plain-text 400 and the connection closed, before more of it is buffered.
- URLs beyond what llhttp's URL parser takes (64 KiB) would be a plain 400 "Invalid HTTP request"; they are
  answered here with the ARM error the app gives any URL over MAX_URL (414 RequestUriTooLong).
Heads within these bounds reach the app, which refuses oversized URLs and headers as ARM errors (parsing.py).

The event loop reads into buffers this protocol lends (`LendingProtocol`, an asyncio BufferedProtocol): TLS
decrypts into them in place. A page write's body can go straight into the data plane's own buffer
(`scope["extensions"][BODY_INTO]`) instead of through llhttp's and the ASGI receive queue's copies, one 16 KiB
record at a time: the event loop's CPU per uploaded GiB is then about a third (bench/README.md, throughput.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from ...domain import errors
from .parsing import MAX_HEAD, MAX_URL

URL_PARSER_LIMIT = 0xFFFF  # llhttp's parse_url keeps offsets and lengths in 16 bits
BODY_INTO = "vmgallery.body_into"
SCRATCH = 256 << 10  # what the event loop reads at once into the lent buffer outside a direct body


class _Direct:
    """A body being read straight into its reader's buffer."""

    __slots__ = ("view", "seen", "filled", "arrived", "done")

    def __init__(self, view: memoryview, filled: int, arrived: Callable[[int], None], done: asyncio.Future[int]):
        self.view, self.filled, self.arrived, self.done = view, filled, arrived, done
        self.seen = filled  # what llhttp has parsed of the body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    _head_bytes = 0
    _in_head = True  # from the end of one request until the next one's headers are complete
    _refused = False
    direct: _Direct | None = None

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                self._refused = True
                self.send_400_response(f"The request head is larger than {MAX_HEAD} bytes.")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if len(self.url) > URL_PARSER_LIMIT:
            refusal = errors.UriTooLong(f"The request URL is {len(self.url)} bytes long; the limit is {MAX_URL}.")
            body = json.dumps(refusal.body(), ensure_ascii=True, separators=(",", ":")).encode()
            self._refused = True
            self.transport.write(
                b"HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
            self.transport.close()
            return
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:
            self.scope.setdefault("extensions", {})[BODY_INTO] = functools.partial(self._body_into, cycle)

    def _body_into(
        self, cycle: RequestResponseCycle, dest: bytearray, arrived: Callable[[int], None]
    ) -> asyncio.Future[int] | None:
        """The rest of this request's body, exactly `len(dest)` bytes by its Content-Length, read into `dest`;
        `arrived(n)` is called each time the first n bytes are in. The future gives the bytes read when the body is
        complete or the client has gone; cancelling it hands the rest of the body back to llhttp. None if the body
        cannot be read so (the caller then uses the ASGI receive channel)."""
        if cycle is not self.cycle or self.direct is not None or cycle.disconnected or cycle.response_complete:
            return None
        held = len(cycle.body)  # what came with the head, or before the reader asked
        if held > len(dest) or (not cycle.more_body and held != len(dest)):
            return None
        view = memoryview(dest)
        view[:held] = cycle.body
        cycle.body = bytearray()
        if cycle.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        done: asyncio.Future[int] = self.loop.create_future()
        arrived(held)
        if not cycle.more_body:
            done.set_result(held)
            return done
        self.direct = _Direct(view, held, arrived, done)
        done.add_done_callback(self._direct_ended)
        self.flow.resume_reading()  # paused if more than llhttp's high-water mark came before
        return done

    def _direct_ended(self, done: asyncio.Future[int]) -> None:
        direct = self.direct
        if direct is not None and direct.done is done:
            self._hand_back(direct)

    def _hand_back(self, direct: _Direct) -> None:
        """The reader cancelled: llhttp takes the body from where it left off, what came since included."""
        self.direct = None
        self.data_received(direct.view[direct.seen : direct.filled])  # type: ignore[arg-type]

    def body_arrived(self, nbytes: int) -> None:
        """`nbytes` more of the direct body are in its buffer. llhttp does not see them (it would copy each piece
        once more): at the end of the body the message ends here, and a new parser takes the next request, as
        on a new connection."""
        direct = self.direct
        assert direct is not None
        direct.filled += nbytes
        if direct.done.done():  # cancelled, and its callback has not run yet
            self._hand_back(direct)
            return
        direct.arrived(direct.filled)
        if direct.filled == len(direct.view):
            self.direct = None
            self.parser = httptools.HttpRequestParser(self)
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn's own
            self.on_message_complete()
            direct.done.set_result(direct.filled)

    def connection_lost(self, exc: Exception | None) -> None:
        direct, self.direct = self.direct, None
        super().connection_lost(exc)
        if direct is not None and not direct.done.done():
            direct.done.set_result(direct.filled)

    def on_body(self, body: bytes) -> None:
        if not self._refused and self.direct is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()


class LendingProtocol(asyncio.BufferedProtocol):
    """What the event loop reads into: a buffer lent per read, and the HTTP protocol fed from it. uvloop reads into
    (and decrypts into) a lent buffer only for a protocol that is not an `asyncio.Protocol`, which uvicorn's is, so
    this one stands in front of it; uvicorn keeps managing the HTTP protocol (its connections, its shutdown)."""

    def __init__(self, **uvicorn_kwargs: Any):
        self.http = BoundedHttpToolsProtocol(**uvicorn_kwargs)
        self._scratch = memoryview(bytearray(SCRATCH))

    def get_buffer(self, sizehint: int) -> memoryview:
        direct = self.http.direct
        return direct.view[direct.filled :] if direct is not None else self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        if self.http.direct is not None:
            self.http.body_arrived(nbytes)
        else:
            self.http.data_received(self._scratch[:nbytes])  # type: ignore[arg-type]  # llhttp takes any buffer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.http.connection_made(transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.http.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self.http.eof_received()

    def pause_writing(self) -> None:
        self.http.pause_writing()

    def resume_writing(self) -> None:
        self.http.resume_writing()
