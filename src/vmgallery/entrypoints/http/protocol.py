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
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ...domain import errors
from .parsing import MAX_HEAD, MAX_URL

URL_PARSER_LIMIT = 0xFFFF  # llhttp's parse_url keeps offsets and lengths in 16 bits


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    _head_bytes = 0
    _in_head = True  # from the end of one request until the next one's headers are complete
    _refused = False

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

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()
