"""Who is calling: the principal an access token (or the bootstrap admin token) stands for.

Authentication (the HTTP entry point, checking a token) makes one; authorization (role assignments, sharing) and the
activity log read it. It is a plain value: the directory that knows tenants, users, groups and service principals
resolves `group_ids` (transitively, nested groups included) when the token is issued or checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class PrincipalType(str, Enum):
    """ARM's `principalType` spelling, plus the bootstrap admin."""

    USER = "User"
    GROUP = "Group"
    SERVICE_PRINCIPAL = "ServicePrincipal"
    ADMIN = "Admin"  # the bootstrap admin token: global administrator of every tenant


@dataclass(frozen=True)
class Principal:
    object_id: str
    tenant_id: str
    type: PrincipalType
    group_ids: frozenset[str] = field(default_factory=frozenset)
    app_id: str | None = None  # service principals: the application's id (`appid`/`azp` in the token)
    name: str | None = None  # userPrincipalName or display name, for messages and the activity log
    # The same caller in other tenants, from the tokens of `x-ms-authorization-auxiliary` (cross-tenant creation);
    # empty for ordinary calls.
    auxiliary: tuple[Principal, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.type is PrincipalType.ADMIN


# The bootstrap admin token's principal. Its tenant is the default tenant the bootstrap subscription belongs to.
ADMIN_OBJECT_ID = "00000000-0000-0000-0000-00000000ad01"
