"""What the identity use cases (app/directory.py, app/authority.py) need from outside, as typed Protocols.

- `DirectoryStore` / `DirectoryTx`: tenants, subscriptions, directory objects (users, groups, service principals),
  applications and group memberships (adapters/db/directory.py). A write transaction commits when its block ends.
- `KeyRing`: signs access and id tokens (RS256) and checks a presented token's signature against the current and
  recently retired keys (adapters/identity_keys.py); it raises `domain.identity.TokenRejected` for anything its
  signature check refuses.
- `SecretHasher`: one-way hashes of passwords and client secrets, and their constant-time check.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from ..domain.principals import PrincipalType


@dataclass(frozen=True)
class TenantRow:
    tenant_id: str
    name: str
    created_at: float


@dataclass(frozen=True)
class SubscriptionRow:
    subscription_id: str
    tenant_id: str
    name: str
    state: str
    created_at: float


@dataclass(frozen=True)
class ObjectRow:
    """A user, group or service principal of one tenant. `name` is a user's UPN or the display name; `secret_hash`
    is a user's password hash (service principals authenticate with their application's secret)."""

    object_id: str
    tenant_id: str
    type: PrincipalType
    name: str
    app_id: str | None
    secret_hash: str | None
    created_at: float


@dataclass(frozen=True)
class ApplicationRow:
    """An application registration, homed in one tenant; a multi-tenant one may have service principals in others."""

    app_id: str
    home_tenant_id: str
    name: str
    multi_tenant: bool
    secret_hash: str
    created_at: float


class DirectoryTx(Protocol):
    def tenant(self, tenant_id: str) -> TenantRow | None: ...
    def tenants(self) -> list[TenantRow]: ...
    def add_tenant(self, row: TenantRow) -> None: ...
    def delete_tenant(self, tenant_id: str) -> None:
        """The tenant, its objects and their memberships, and the applications homed in it with all their service
        principals."""

    def subscription(self, subscription_id: str) -> SubscriptionRow | None: ...
    def subscriptions(self, tenant_id: str | None = None) -> list[SubscriptionRow]: ...
    def add_subscription(self, row: SubscriptionRow) -> None: ...
    def delete_subscription(self, subscription_id: str) -> None: ...
    def subscription_in_use(self, subscription_id: str) -> bool:
        """Whether any ARM resource lives in the subscription."""

    def object(self, object_id: str) -> ObjectRow | None: ...
    def objects(self, tenant_id: str | None, type: PrincipalType | None = None) -> list[ObjectRow]:
        """Objects of one tenant (None: every tenant), of one type or all, in creation order."""

    def add_object(self, row: ObjectRow) -> None: ...
    def delete_object(self, object_id: str) -> None:
        """The object and every membership it is part of (as group or as member)."""

    def user_by_upn(self, upn_key: str) -> ObjectRow | None: ...
    def service_principal(self, tenant_id: str, app_id: str) -> ObjectRow | None: ...
    def service_principals_of(self, app_id: str) -> list[ObjectRow]: ...

    def application(self, app_id: str) -> ApplicationRow | None: ...
    def add_application(self, row: ApplicationRow) -> None: ...
    def set_application_secret(self, app_id: str, secret_hash: str) -> None: ...
    def delete_application(self, app_id: str) -> None:
        """The application and all its service principals (with their memberships)."""

    def add_member(self, group_id: str, member_id: str) -> None: ...
    def remove_member(self, group_id: str, member_id: str) -> bool: ...
    def members(self, group_id: str) -> list[str]: ...
    def groups_containing(self, member_ids: Collection[str]) -> set[str]:
        """The groups any of `member_ids` is a direct member of."""


@dataclass(frozen=True)
class CallerRow:
    """What checking a token needs of the directory: the principal's object (None when it is gone), every group it is
    in (through nested groups), and whether the subscription the call names exists."""

    object: ObjectRow | None
    groups: frozenset[str]
    subscription_exists: bool


class DirectoryStore(Protocol):
    def read(self) -> AbstractContextManager[DirectoryTx]: ...
    def write(self) -> AbstractContextManager[DirectoryTx]: ...
    def caller(self, object_id: str, subscription_id: str | None) -> CallerRow:
        """`CallerRow` as the database holds it now, in one read."""

    def epoch(self) -> Hashable:
        """A stamp that changes with every committed directory write, by this process or any other sharing the
        database (and data dir): what the authority checks before reusing a principal it read earlier."""


class KeyRing(Protocol):
    def sign(self, claims: dict[str, Any]) -> str: ...
    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token signed (RS256) by one of the ring's keys; TokenRejected otherwise. Times, audience
        and issuer are the caller's to check."""

    def remembered(self, token: str) -> dict[str, Any] | None:
        """`verify`'s claims when this token's signature was checked before and its key is still usable; None when
        it must be checked (without doing so: this is called where no blocking work may run)."""

    def jwks(self) -> dict[str, Any]: ...


class SecretHasher(Protocol):
    def hash(self, secret: str) -> str: ...
    def verify(self, hashed: str, secret: str) -> bool: ...
