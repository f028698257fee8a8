"""What the authorization use case needs from the metadata store, beyond `ports.Transaction`: role assignments and
custom role definitions (adapters/db/roles.py implements it on the same database and transactions)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ..domain.validate import Body
from .ports import Transaction


@dataclass
class AssignmentRow:
    name: str  # the assignment's GUID, lower-case
    scope: str  # as created (its casing is shown back)
    scope_key: str
    subscription: str | None
    principal_id: str
    principal_type: str
    role_guid: str
    description: str | None
    created_by: str | None
    created_at: float


@dataclass
class CustomRoleRow:
    guid: str
    subscription: str
    scope: str
    body: Body  # the ARM `properties`
    created_by: str | None
    created_at: float
    updated_at: float


@dataclass
class GrantRow:
    """An assignment reaching a caller: its scope, its role, and a custom role's properties (None for built-ins)."""

    scope_key: str
    role_guid: str
    custom: Body | None


class RoleTransaction(Transaction, Protocol):
    def grants_along(self, principal_ids: Sequence[str], scope_keys: Sequence[str]) -> list[GrantRow]:
        """The assignments to any of the principals at any of the scopes, in one query."""
        ...

    def grants_of(self, principal_ids: Sequence[str]) -> list[GrantRow]:
        """Every assignment to any of the principals, wherever it sits."""
        ...

    def assignments(self, *, subscription: str | None = None, principal_id: str | None = None) -> list[AssignmentRow]:
        """Assignments in a subscription (None: every one), optionally of one principal; oldest first."""
        ...

    def get_assignment(self, name: str) -> AssignmentRow | None: ...
    def find_assignment(self, scope_key: str, principal_id: str, role_guid: str) -> AssignmentRow | None: ...
    def insert_assignment(self, row: AssignmentRow) -> None: ...
    def delete_assignment(self, name: str) -> None: ...
    def count_role_assignments(self, role_guid: str) -> int: ...

    def custom_roles(self, subscription: str | None = None) -> list[CustomRoleRow]: ...
    def get_custom_role(self, guid: str) -> CustomRoleRow | None: ...
    def find_custom_role(self, subscription: str, name_key: str) -> CustomRoleRow | None: ...
    def put_custom_role(self, row: CustomRoleRow) -> None: ...
    def delete_custom_role(self, guid: str) -> None: ...


class RoleMetadata(Protocol):
    def grants_along(self, principal_ids: Sequence[str], scope_keys: Sequence[str]) -> list[GrantRow]:
        """`RoleTransaction.grants_along` outside a transaction: what every check of a request runs."""
        ...

    def roles_changed(self) -> None:
        """Called after a committed write of role assignments or definitions: what `grants_along` remembered is
        stale, in this process and the others."""

    def write(self) -> AbstractContextManager[RoleTransaction]: ...

    def read(self) -> AbstractContextManager[RoleTransaction]: ...
