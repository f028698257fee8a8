"""The directory's rules, pure: ids and names of tenants, subscriptions, users, groups and service principals; which
token audience a requested OAuth2 scope means; and why a presented token is refused.

Everything here takes values and returns decisions or raises: an `errors.ArmError` for the directory's management
API and ARM, an `OAuthError` (OAuth2's own error envelope) for the token endpoint.
"""

from __future__ import annotations

import re
import uuid
from enum import Enum

from . import errors

# The tenant the bootstrap setup (the admin token, the CLI's default subscription) belongs to.
DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000001"
DEFAULT_TENANT_NAME = "Default Directory"
# The CLI's default subscription: made in the default tenant by migration 0006.
BOOTSTRAP_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"

# The two spellings of ARM's audience: azure-mgmt-* ask for the first, az (its cloud's
# active_directory_resource_id) for the second.
ARM_AUDIENCES = ("https://management.core.windows.net/", "https://management.azure.com/")
# OpenID Connect scopes MSAL adds beside the resource's `.default`: they ask for an id token and a refresh token, not
# for a resource.
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
# Tenant segments that are not a tenant: the authority answers for the user's own tenant (password grant only).
MULTI_TENANT_SEGMENTS = frozenset({"common", "organizations"})
# The well-known public client id of az; any public client id is accepted for the password grant.
AZ_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

MAX_NAME = 256
_UPN = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)


class SubscriptionNotFound(errors.ArmError):
    status, code = 404, "SubscriptionNotFound"


class TenantNotFound(errors.ArmError):
    status, code = 404, "TenantNotFound"


class DirectoryObjectNotFound(errors.ArmError):
    status, code = 404, "Request_ResourceNotFound"


class AdminOnly(errors.ArmError):
    status, code = 403, "AuthorizationFailed"


def guid(value: object, target: str) -> str:
    """A GUID in its canonical spelling (lower case, dashed); InvalidParameter naming `target` otherwise."""
    if isinstance(value, str) and len(value) == 36:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise errors.InvalidParameter(f"The {target} '{str(value)[:64]}' is not a valid GUID.", target)


def display_name(value: object, target: str) -> str:
    """A name shown to people: 1 to 256 printable characters, not only spaces."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or not value.isprintable():
        raise errors.InvalidParameter(
            f"The {target} must be 1 to {MAX_NAME} printable characters, not only spaces.", target
        )
    return value.strip()


def user_principal_name(value: object) -> str:
    """A UPN, `alias@domain`, as given; its lookup key is `upn_key`."""
    if not isinstance(value, str) or len(value) > 113 or not _UPN.fullmatch(value):
        raise errors.InvalidParameter(
            f"The userPrincipalName '{str(value)[:120]}' is not valid: it must be alias@domain (at most 113 "
            "characters: letters, digits and . _ - ' in the alias, a DNS name after the @).",
            "userPrincipalName",
        )
    return value


def upn_key(upn: str) -> str:
    """UPNs compare without case, as Entra ID's do."""
    return upn.lower()


def password(value: object) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= 256:
        raise errors.InvalidParameter("The password must be 8 to 256 characters long.", "password")
    return value


# -- OAuth2 ------------------------------------------------------------------------------------------------------
class OAuthError(Exception):
    """A token request refused in OAuth2's envelope; `aadsts` is Entra ID's error number, which clients print."""

    def __init__(self, status: int, error: str, aadsts: int, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description

    def body(self) -> dict[str, object]:
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.aadsts}: {self.description}",
            "error_codes": [self.aadsts],
        }


def token_tenant(segment: str, *, allow_multi: bool) -> str | None:
    """The tenant id a token URL's first segment names, or None for `common`/`organizations` (where allowed)."""
    if segment.lower() in MULTI_TENANT_SEGMENTS:
        if allow_multi:
            return None
        raise OAuthError(
            400,
            "invalid_request",
            50059,
            f"No tenant-identifying information found in the request: '{segment}' cannot be used with this grant; "
            "use the tenant id.",
        )
    try:
        return guid(segment, "tenant")
    except errors.ArmError:
        raise OAuthError(400, "invalid_request", 90002, f"Tenant '{segment[:64]}' not found.") from None


def requested_audience(scope: str | None, audiences: tuple[str, ...]) -> tuple[str, list[str]]:
    """The audience a token request's `scope` asks for, and the OIDC scopes beside it.

    A resource scope is `{resource}/.default`; `https://management.core.windows.net//.default` (az's spelling) and
    `https://management.azure.com/.default` both name a resource by its URL, compared with one trailing slash.
    """
    words = (scope or "").split()
    oidc = [w for w in words if w in OIDC_SCOPES]
    resources = [w for w in words if w not in OIDC_SCOPES]
    if len(resources) != 1:
        raise OAuthError(
            400,
            "invalid_scope",
            70011,
            "The provided request must include exactly one resource scope of the form '{resource}/.default'; "
            f"got '{(scope or '')[:200]}'.",
        )
    requested = resources[0]
    if not requested.endswith("/.default"):
        raise OAuthError(
            400,
            "invalid_scope",
            70011,
            f"The scope '{requested[:200]}' is not valid: only '{{resource}}/.default' scopes are issued.",
        )
    resource = requested.removesuffix(".default").rstrip("/") + "/"
    for audience in audiences:
        if resource.lower() == audience.lower():
            return audience, oidc
    raise OAuthError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource[:200]} was not found in the tenant; this authority issues tokens "
        f"for {', '.join(audiences)}.",
    )


# -- presented tokens ------------------------------------------------------------------------------------------
class Rejection(str, Enum):
    """Why a bearer token was refused; each reason is named in the 401's message."""

    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    UNSUPPORTED_ALGORITHM = "unsupported algorithm"
    UNKNOWN_KEY = "unknown key"
    BAD_SIGNATURE = "bad signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    WRONG_AUDIENCE = "wrong audience"
    WRONG_ISSUER = "wrong issuer"
    UNKNOWN_PRINCIPAL = "unknown principal"


# ARM's codes for the reasons it names apart; the rest are InvalidAuthenticationToken.
_REJECTION_CODES = {
    Rejection.EXPIRED: "ExpiredAuthenticationToken",
    Rejection.WRONG_AUDIENCE: "InvalidAuthenticationTokenAudience",
}


class TokenRejected(errors.Unauthenticated):
    def __init__(self, reason: Rejection, detail: str):
        super().__init__(
            f"The access token is invalid ({reason.value}): {detail}",
            code=_REJECTION_CODES.get(reason, "InvalidAuthenticationToken"),
        )
        self.reason = reason
