"""The CLI's HTTP client for the ARM API: bearer token, TLS trust, ARM error bodies turned into `CliError`.

`transport` is the one seam: pass an `httpx.BaseTransport` to put something else under the client; every request
the CLI makes goes through `ArmClient.send`.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ... import __version__
from .profile import Profile

if TYPE_CHECKING:
    import ssl

    import httpx

TIMEOUT_SECONDS = 60.0


class CliError(Exception):
    """A failure to report to the user as az does: `(Code) message`, exit code 1."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return f"({self.code}) {self.message}" if self.code else self.message


def trust(profile: Profile) -> ssl.SSLContext | bool:
    if not profile.ca_bundle:
        return True
    import ssl  # with the first client, as httpx: `--version` and `--help` never need it

    try:
        return ssl.create_default_context(cafile=profile.ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"Cannot use the CA bundle '{profile.ca_bundle}': {exc}.") from None


def error_from(response: httpx.Response) -> CliError:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if isinstance(error, dict) and error.get("message"):
        return CliError(error["message"], error.get("code") or f"HTTP{response.status_code}")
    return CliError(
        f"{response.request.method} {response.request.url.path} answered HTTP {response.status_code}: "
        f"{response.text[:200]}",
        f"HTTP{response.status_code}",
    )


@dataclass(frozen=True)
class Fixes:
    """What the user can do about a missing token or an untrusted certificate, in the words of the command run."""

    token: str
    trust: str


COMMAND_FIXES = Fixes(
    token="set VMGALLERY_TOKEN, or save one with `vmgallery login --endpoint URL --data-dir SERVER_DATA_DIR`, or run "
    "the CLI as the user whose default data dir holds the server's admin-token",
    trust="set VMGALLERY_CA_BUNDLE to the server's tls/cert.pem, or save it with `vmgallery login --data-dir` or "
    "`--ca-bundle`",
)


class ArmClient:
    def __init__(self, profile: Profile, transport: httpx.BaseTransport | None = None, fixes: Fixes = COMMAND_FIXES):
        if not profile.token:
            raise CliError(f"No access token: {fixes.token}.")
        # httpx loads with the first client, not at start: `--version` and `--help` never need it. Its package also
        # imports its own command line (click, rich, pygments: about 60 ms) whenever those are installed, as typer's
        # are; marked absent, it falls back to a stub `httpx.main`, which this CLI never calls.
        sys.modules.setdefault("httpx._main", None)
        import httpx

        self.profile = profile
        self._fixes = fixes
        self.subscription = profile.subscription
        try:
            self._http = httpx.Client(
                base_url=profile.endpoint,
                verify=trust(profile),
                transport=transport,
                timeout=TIMEOUT_SECONDS,
                headers={"Authorization": f"Bearer {profile.token}", "User-Agent": f"vmgallery-cli/{__version__}"},
            )
        except (ImportError, ValueError) as exc:  # what httpx says of a proxy it cannot use (SOCKS, a bad URL)
            raise CliError(
                f"The proxy that HTTPS_PROXY, HTTP_PROXY or ALL_PROXY names cannot be used: {exc}",
                "InvalidArgumentValue",
            ) from None

    def __enter__(self) -> ArmClient:
        return self

    def __exit__(self, *exc) -> None:
        self._http.close()

    def send(self, method: str, url: str, api_version: str | None = None, body: Any = None) -> httpx.Response:
        """One request; `url` is a path under the endpoint or an absolute URL the server handed out."""
        params = {"api-version": api_version} if api_version else None
        headers = {"x-ms-client-request-id": str(uuid.uuid4())}
        import httpx

        try:
            try:
                response = self._http.request(method, url, params=params, json=body, headers=headers)
            except httpx.RemoteProtocolError:
                # The server closed an idle kept-alive connection as this request went out on it (uvicorn drops
                # them after a few seconds, e.g. while a long transfer ran): it read nothing, so send it once more.
                response = self._http.request(method, url, params=params, json=body, headers=headers)
        except httpx.ConnectError as exc:
            hint = f" (to trust the server: {self._fixes.trust})" if "CERTIFICATE" in str(exc).upper() else ""
            raise CliError(f"Cannot connect to {self.profile.endpoint}: {exc}{hint}") from None
        except httpx.HTTPError as exc:
            raise CliError(f"Request to {self.profile.endpoint} failed: {exc}") from None
        if response.status_code >= 400:
            raise error_from(response)
        return response

    def get(self, path: str, api_version: str) -> dict:
        return self.send("GET", path, api_version).json()

    def list(self, path: str, api_version: str) -> list[dict]:
        items: list[dict] = []
        page = self.send("GET", path, api_version).json()
        while True:
            items.extend(page.get("value") or [])
            if not page.get("nextLink"):
                return items
            # nextLink already carries api-version and the skip token.
            page = self.send("GET", page["nextLink"]).json()
