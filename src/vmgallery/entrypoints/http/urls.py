"""The server's own base URL as the client reached it: the operation URLs of ARM writes and the endpoints of the
identity authority's OpenID configuration start with it."""

from __future__ import annotations

from starlette.requests import Request

_BASE_URLS: dict[tuple, str] = {}


def base_url(request: Request) -> str:
    """Starlette's `request.base_url`, without its trailing slash, remembered per scheme, server, Host header and
    root path: building it (URL objects, the Host header's grammar) was a twentieth of a create's CPU. At most 64
    are remembered, so Host headers a client makes up cannot grow the memory."""
    scope = request.scope
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    key = (scope.get("scheme"), scope.get("server"), host, scope.get("app_root_path", scope.get("root_path", "")))
    base = _BASE_URLS.get(key)
    if base is None:
        base = str(request.base_url).rstrip("/")
        if len(_BASE_URLS) < 64:
            _BASE_URLS[key] = base
    return base
