"""Everything an ARM request brings, read strictly and within bounds, in one place; each refusal is an ARM error.

- The request head: the URL (path and query) is at most MAX_URL bytes (414), the headers together at most
  MAX_HEADERS bytes (431). A head larger than MAX_HEAD never reaches the application: the HTTP server (`protocol.py`,
  the protocol `vmgallery serve` runs) answers it with a plain-text 400 and closes the connection.
- The query: `api-version`, `$top`, `$skiptoken`, `$filter` and `$expand` each match an explicit ASCII grammar
  of bounded length (400 InvalidParameter / InvalidApiVersionParameter naming the parameter).
- The JSON body: at most `Settings.max_body_bytes` (413), UTF-8 (no invalid bytes, no lone surrogates, no NUL),
  strict JSON (no NaN or Infinity, numbers that fit a 64-bit value or a finite double), nested at most MAX_DEPTH
  levels (400 InvalidRequestContent). The data plane's page writes (`blobs.py`) keep their own 4 MiB rule.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from fastapi import Request

from ...domain import errors

MAX_URL = 8 << 10
MAX_HEADERS = 64 << 10
MAX_HEAD = 2 << 20
MAX_DEPTH = 64
MAX_INT_DIGITS = 20

QUERY_GRAMMAR = {
    # Loose enough that a wrong version (e.g. "latest") is told the supported ones by the route's version check.
    "api-version": re.compile(r"[0-9A-Za-z.-]{1,32}"),
    "$top": re.compile(r"[0-9]{1,9}"),
    "$skiptoken": re.compile(r"[0-9]{1,18}"),
    "$filter": re.compile(r"[\x20-\x7e]{0,1024}"),
    "$expand": re.compile(r"[A-Za-z][A-Za-z/,. ]{0,63}"),
}
QUERY_HINTS = {
    "api-version": "a date, YYYY-MM-DD, with an optional suffix such as -preview (at most 32 characters)",
    "$top": "a whole number of at most 9 digits",
    "$skiptoken": "the token of a nextLink, a whole number",
    "$filter": "at most 1024 printable ASCII characters",
    "$expand": "a property name such as ReplicationStatus",
}
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_head(request: Request) -> None:
    """The URL and header sizes, before anything reads them."""
    scope = request.scope
    url = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string") or b"")
    if url > MAX_URL:
        raise errors.UriTooLong(f"The request URL is {url} bytes long; the limit is {MAX_URL}.")
    size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    if size > MAX_HEADERS:
        raise errors.HeadersTooLarge(f"The request headers are {size} bytes long; the limit is {MAX_HEADERS}.")


def check_query(request: Request) -> None:
    """Every query parameter ARM defines matches its grammar; the handlers then read them without second thought."""
    for name, grammar in QUERY_GRAMMAR.items():
        for value in request.query_params.getlist(name):
            if grammar.fullmatch(value):
                continue
            shown = value if len(value) <= 64 else value[:64] + "..."
            message = f"The query parameter {name}={shown!a} is not valid: it must be {QUERY_HINTS[name]}."
            if name == "api-version":
                raise errors.InvalidApiVersion(message, name)
            raise errors.InvalidParameter(message, name)


async def json_body(request: Request, limit: int) -> Any:
    """The request's JSON document, read strictly (see the module's docstring)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise errors.InvalidRequestContent("The request content is empty; a JSON object is required.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.InvalidRequestContent(
            f"The request content is not valid UTF-8 (byte {exc.start} cannot start or continue a character)."
        ) from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_int=_int, parse_float=_float)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:
        raise errors.InvalidRequestContent(f"The request content is not valid JSON: {exc}.") from None
    _check_tree(value)
    return value


def _too_large(limit: int) -> errors.ArmError:
    return errors.RequestTooLarge(f"The request content is larger than {limit} bytes, the limit for this request.")


def _too_deep() -> errors.ArmError:
    return errors.InvalidRequestContent(f"The request content nests deeper than {MAX_DEPTH} levels.")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"the number {text[:24]}... has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:24]} is out of range")
    return value


def _check_tree(value: Any) -> None:
    """Depth, and strings (keys too) without lone surrogates (JSON's \\ud800 escapes) or NUL characters."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise _too_deep()
            if isinstance(item, dict):
                for key in item:
                    _check_text(key)
                item = item.values()
            pending.extend((v, depth + 1) for v in item)


def _check_text(text: str) -> None:
    if "\x00" in text or (not text.isascii() and _SURROGATE.search(text)):
        raise errors.InvalidRequestContent(
            "The request content holds a string with a lone UTF-16 surrogate or a NUL character; such strings "
            "cannot be stored or returned."
        )
