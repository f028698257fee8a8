"""A service principal's ARM access token from the server's own authority, as `az login --service-principal` gets one
from Entra ID: OAuth2 client credentials posted to `{endpoint}/{tenant}/oauth2/v2.0/token`; and its renewal before it
expires, which every command asks for through `fresh`.

A plain form POST over the CLI's own HTTP client and TLS trust: azure-identity and MSAL would do the same request,
but neither is a dependency of the CLI (only of the tests, which check the server's authority with them).
"""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import quote

from .client import TIMEOUT_SECONDS, CliError, trust
from .profile import Profile, ServicePrincipal, save_renewed

ARM_SCOPE = "https://management.azure.com/.default"
# Renewed this long before it expires, so a token does not run out in the middle of a command (or of an upload).
RENEW_BEFORE_SECONDS = 300.0


def acquire(profile: Profile, tenant: str, client_id: str, secret: str) -> tuple[str, float]:
    """A new access token for the principal and when it expires (seconds since the epoch); CliError if refused."""
    import httpx

    url = f"{profile.endpoint}/{quote(tenant, safe='')}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": ARM_SCOPE}
    started = time.time()
    try:
        with httpx.Client(verify=trust(profile), timeout=TIMEOUT_SECONDS) as http:
            response = http.post(url, data=form)
    except httpx.HTTPError as exc:
        raise CliError(f"Cannot get a token from {profile.endpoint}: {exc}") from None
    try:
        reply = response.json()
    except ValueError:
        reply = {}
    if response.status_code != 200 or not isinstance(reply, dict) or "access_token" not in reply:
        if isinstance(reply, dict) and reply.get("error_description"):
            raise CliError(reply["error_description"], str(reply.get("error") or f"HTTP{response.status_code}"))
        raise CliError(
            f"The token endpoint {url} answered HTTP {response.status_code}: {response.text[:200]}",
            f"HTTP{response.status_code}",
        )
    return reply["access_token"], started + float(reply.get("expires_in") or 0)


def fresh(profile: Profile, now: float | None = None) -> Profile:
    """The profile with a token that is good for a while: a service principal's expiring token is renewed (and the
    new one saved); any other profile is returned as it is."""
    principal = profile.service_principal
    if principal is None or principal.expires_on - (time.time() if now is None else now) > RENEW_BEFORE_SECONDS:
        return profile
    try:
        token, expires_on = acquire(profile, principal.tenant, principal.client_id, principal.client_secret)
    except CliError as exc:
        exc.message += (
            f" (Renewing the token of service principal '{principal.client_id}' failed; run "
            "`vmgallery login --service-principal` again.)"
        )
        raise
    renewed = replace(profile, token=token, service_principal=replace(principal, expires_on=expires_on))
    save_renewed(renewed)
    return renewed


def signed_in(profile: Profile, tenant: str, client_id: str, secret: str) -> Profile:
    """The profile as `login --service-principal` leaves it: the principal's first token and what renews it."""
    token, expires_on = acquire(profile, tenant, client_id, secret)
    return replace(profile, token=token, service_principal=ServicePrincipal(tenant, client_id, secret, expires_on))
