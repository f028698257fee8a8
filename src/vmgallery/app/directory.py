"""The directory's use cases: tenants, subscriptions, users, groups, service principals and their secrets; what a
principal may see of them (subscriptions, tenants, Graph lookups); and group membership, transitively.

Management (`create_*`, `delete_*`, `reset_credential`) is the admin token's (the HTTP layer lets no one else in).
Secrets and passwords leave here only once, in what a create or reset returns; only their hashes are stored.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from ..domain import errors
from ..domain import identity as rules
from ..domain.principals import Principal, PrincipalType
from .identity_ports import (
    ApplicationRow,
    DirectoryStore,
    DirectoryTx,
    ObjectRow,
    SecretHasher,
    SubscriptionRow,
    TenantRow,
)
from .ports import Clock, ConcurrentChange

# Nested groups deeper than this are cut off (a cycle ends sooner: each group is visited once).
MAX_GROUP_DEPTH = 32


@dataclass(frozen=True)
class NewServicePrincipal:
    """What creating a service principal (with a new application) returns: the secret, this once."""

    app_id: str
    object_id: str
    tenant_id: str
    name: str
    password: str | None


def new_secret() -> str:
    # 32 random bytes in a URL-safe alphabet: nothing to quote in a form body or a shell.
    return secrets.token_urlsafe(32)


def transitive_groups(tx: DirectoryTx, object_id: str) -> frozenset[str]:
    """Every group `object_id` is in, directly or through nested groups."""
    found: set[str] = set()
    frontier: set[str] = {object_id}
    for _ in range(MAX_GROUP_DEPTH):
        parents = tx.groups_containing(frontier) - found
        if not parents:
            break
        found |= parents
        frontier = parents
    found.discard(object_id)
    return frozenset(found)


def existing_subscription(tx: DirectoryTx, subscription_id: str) -> SubscriptionRow:
    sub = rules.guid(subscription_id, "subscriptionId")
    row = tx.subscription(sub)
    if row is None:
        raise rules.SubscriptionNotFound(f"The subscription '{sub}' could not be found.", "subscriptionId")
    return row


class Directory:
    def __init__(
        self,
        store: DirectoryStore,
        hasher: SecretHasher,
        clock: Clock,
        roles: Callable[[Principal], set[str]] | None = None,
    ):
        self.store = store
        self.hasher = hasher
        self.clock = clock
        # The subscriptions where a principal holds any role (RBAC); without it, a principal sees its tenant's.
        self.roles = roles

    # -- tenants ---------------------------------------------------------------------------------------------
    def create_tenant(self, name: object) -> TenantRow:
        row = TenantRow(str(uuid.uuid4()), rules.display_name(name, "name"), self.clock())
        with self._write() as tx:
            tx.add_tenant(row)
        return row

    def tenant(self, tenant_id: str) -> TenantRow:
        tenant_id = rules.guid(tenant_id, "tenantId")
        with self.store.read() as tx:
            return self._tenant(tx, tenant_id)

    def tenants(self) -> list[TenantRow]:
        with self.store.read() as tx:
            return tx.tenants()

    def delete_tenant(self, tenant_id: str) -> None:
        tenant_id = rules.guid(tenant_id, "tenantId")
        if tenant_id == rules.DEFAULT_TENANT_ID:
            raise errors.OperationNotAllowed("The default tenant cannot be deleted.", "tenantId")
        with self._write() as tx:
            self._tenant(tx, tenant_id)
            if tx.subscriptions(tenant_id):
                raise errors.Conflict(
                    f"The tenant '{tenant_id}' still has subscriptions; delete them first.", "tenantId"
                )
            tx.delete_tenant(tenant_id)

    # -- subscriptions ----------------------------------------------------------------------------------------
    def create_subscription(self, tenant_id: object, name: object) -> SubscriptionRow:
        tenant = rules.guid(tenant_id, "tenantId")
        row = SubscriptionRow(str(uuid.uuid4()), tenant, rules.display_name(name, "name"), "Enabled", self.clock())
        with self._write() as tx:
            self._tenant(tx, tenant)
            tx.add_subscription(row)
        return row

    def subscription(self, subscription_id: str) -> SubscriptionRow:
        with self.store.read() as tx:
            return existing_subscription(tx, subscription_id)

    def subscriptions(self, tenant_id: str | None = None) -> list[SubscriptionRow]:
        tenant = rules.guid(tenant_id, "tenantId") if tenant_id else None
        with self.store.read() as tx:
            if tenant:
                self._tenant(tx, tenant)
            return tx.subscriptions(tenant)

    def delete_subscription(self, subscription_id: str) -> None:
        sub = rules.guid(subscription_id, "subscriptionId")
        with self._write() as tx:
            if tx.subscription(sub) is None:
                raise rules.SubscriptionNotFound(f"The subscription '{sub}' could not be found.", "subscriptionId")
            if tx.subscription_in_use(sub):
                raise errors.Conflict(
                    f"The subscription '{sub}' still holds resources; delete its resource groups first.",
                    "subscriptionId",
                )
            tx.delete_subscription(sub)

    def visible_subscriptions(self, principal: Principal) -> list[SubscriptionRow]:
        """The subscriptions `principal` sees (GET /subscriptions): the admin every one; anyone else, as in Azure,
        those of the tenant it signed in to where it holds a role (any role, at any scope inside)."""
        with self.store.read() as tx:
            rows = tx.subscriptions(None if principal.is_admin else principal.tenant_id)
        if principal.is_admin or self.roles is None:
            return rows
        held = {s.lower() for s in self.roles(principal)}
        return [row for row in rows if row.subscription_id.lower() in held]

    def tenant_of(self, subscription: str) -> str | None:
        """The tenant a subscription belongs to (None: no tenant has it); the sharing rules ask."""
        with self.store.read() as tx:
            row = tx.subscription(subscription.lower())
        return row.tenant_id if row else None

    def visible_tenants(self, principal: Principal) -> list[TenantRow]:
        with self.store.read() as tx:
            if principal.is_admin:
                return tx.tenants()
            tenant = tx.tenant(principal.tenant_id)
            return [tenant] if tenant else []

    # -- users and groups ------------------------------------------------------------------------------------
    def create_user(self, tenant_id: object, upn: object, password: object) -> ObjectRow:
        tenant = rules.guid(tenant_id, "tenantId")
        name = rules.user_principal_name(upn)
        hashed = self.hasher.hash(rules.password(password))
        row = ObjectRow(str(uuid.uuid4()), tenant, PrincipalType.USER, name, None, hashed, self.clock())
        with self._write() as tx:
            self._tenant(tx, tenant)
            if tx.user_by_upn(rules.upn_key(name)) is not None:
                raise errors.Conflict(f"Another user already has the userPrincipalName '{name}'.", "userPrincipalName")
            tx.add_object(row)
        return row

    def create_group(self, tenant_id: object, name: object) -> ObjectRow:
        tenant = rules.guid(tenant_id, "tenantId")
        row = ObjectRow(
            str(uuid.uuid4()),
            tenant,
            PrincipalType.GROUP,
            rules.display_name(name, "displayName"),
            None,
            None,
            self.clock(),
        )
        with self._write() as tx:
            self._tenant(tx, tenant)
            tx.add_object(row)
        return row

    def add_member(self, tenant_id: str, group_id: object, member_id: object) -> None:
        tenant = rules.guid(tenant_id, "tenantId")
        group = rules.guid(group_id, "group")
        member = rules.guid(member_id, "member")
        with self._write() as tx:
            self._object(tx, tenant, group, PrincipalType.GROUP)
            self._object(tx, tenant, member, None)
            if member == group or member in transitive_groups(tx, group):
                raise errors.InvalidParameter(
                    f"Adding '{member}' to group '{group}' would make a group a member of itself.", "member"
                )
            if member not in tx.members(group):
                tx.add_member(group, member)

    def remove_member(self, tenant_id: str, group_id: object, member_id: object) -> None:
        tenant = rules.guid(tenant_id, "tenantId")
        group = rules.guid(group_id, "group")
        member = rules.guid(member_id, "member")
        with self._write() as tx:
            self._object(tx, tenant, group, PrincipalType.GROUP)
            if not tx.remove_member(group, member):
                raise rules.DirectoryObjectNotFound(f"'{member}' is not a direct member of group '{group}'.", "member")

    def members(self, tenant_id: str, group_id: object) -> list[ObjectRow]:
        tenant = rules.guid(tenant_id, "tenantId")
        group = rules.guid(group_id, "group")
        with self.store.read() as tx:
            self._object(tx, tenant, group, PrincipalType.GROUP)
            rows = [tx.object(m) for m in tx.members(group)]
        return [r for r in rows if r is not None]

    # -- service principals ----------------------------------------------------------------------------------
    def create_service_principal(self, tenant_id: object, name: object, multi_tenant: bool) -> NewServicePrincipal:
        """A new application homed in the tenant, its service principal there, and its first secret."""
        tenant = rules.guid(tenant_id, "tenantId")
        display = rules.display_name(name, "displayName")
        secret = new_secret()
        now = self.clock()
        app = ApplicationRow(str(uuid.uuid4()), tenant, display, multi_tenant, self.hasher.hash(secret), now)
        sp = ObjectRow(str(uuid.uuid4()), tenant, PrincipalType.SERVICE_PRINCIPAL, display, app.app_id, None, now)
        with self._write() as tx:
            self._tenant(tx, tenant)
            tx.add_application(app)
            tx.add_object(sp)
        return NewServicePrincipal(app.app_id, sp.object_id, tenant, display, secret)

    def add_service_principal(self, tenant_id: object, app_id: object) -> NewServicePrincipal:
        """A service principal in another tenant for a multi-tenant application (it signs in with its secret)."""
        tenant = rules.guid(tenant_id, "tenantId")
        app_guid = rules.guid(app_id, "appId")
        with self._write() as tx:
            self._tenant(tx, tenant)
            app = tx.application(app_guid)
            if app is None:
                raise rules.DirectoryObjectNotFound(f"No application has the appId '{app_guid}'.", "appId")
            if tx.service_principal(tenant, app_guid) is not None:
                raise errors.Conflict(
                    f"The tenant '{tenant}' already has a service principal for the application '{app_guid}'.",
                    "appId",
                )
            if app.home_tenant_id != tenant and not app.multi_tenant:
                raise errors.InvalidParameter(
                    f"The application '{app_guid}' is not multi-tenant: it can have a service principal only in its "
                    f"home tenant '{app.home_tenant_id}'.",
                    "appId",
                )
            sp = ObjectRow(
                str(uuid.uuid4()), tenant, PrincipalType.SERVICE_PRINCIPAL, app.name, app_guid, None, self.clock()
            )
            tx.add_object(sp)
        return NewServicePrincipal(app_guid, sp.object_id, tenant, app.name, None)

    def reset_credential(self, tenant_id: str, app_id: object) -> NewServicePrincipal:
        """A new secret for the application (the old one stops working); `tenant_id` must be its home tenant."""
        tenant = rules.guid(tenant_id, "tenantId")
        app_guid = rules.guid(app_id, "appId")
        secret = new_secret()
        hashed = self.hasher.hash(secret)
        with self._write() as tx:
            self._tenant(tx, tenant)
            app = tx.application(app_guid)
            sp = tx.service_principal(tenant, app_guid)
            if app is None or sp is None or app.home_tenant_id != tenant:
                raise rules.DirectoryObjectNotFound(
                    f"The tenant '{tenant}' is not the home of an application with the appId '{app_guid}'.", "id"
                )
            tx.set_application_secret(app_guid, hashed)
        return NewServicePrincipal(app_guid, sp.object_id, tenant, app.name, secret)

    # -- managed identities' service principals (ports.ManagedPrincipals) -------------------------------------
    def add_managed_identity(self, tenant_id: str, object_id: str, app_id: str, name: str) -> None:
        """The service principal a user-assigned identity stands for, with the ids the identity shows. Its
        application's secret is random and never told: nobody signs in as a managed identity with a password."""
        now = self.clock()
        app = ApplicationRow(app_id, tenant_id, name, False, self.hasher.hash(new_secret()), now)
        sp = ObjectRow(object_id, tenant_id, PrincipalType.SERVICE_PRINCIPAL, name, app_id, None, now)
        with self._write() as tx:
            self._tenant(tx, tenant_id)
            tx.add_application(app)
            tx.add_object(sp)

    def remove_managed_identity(self, object_id: str) -> None:
        with self._write() as tx:
            row = tx.object(object_id)
            if row is None:
                return
            if row.app_id is not None and tx.application(row.app_id) is not None:
                tx.delete_application(row.app_id)
            else:
                tx.delete_object(object_id)

    def application(self, app_id: str) -> ApplicationRow | None:
        with self.store.read() as tx:
            return tx.application(app_id)

    # -- any object ------------------------------------------------------------------------------------------
    def objects(self, tenant_id: str, type: PrincipalType) -> list[ObjectRow]:
        tenant = rules.guid(tenant_id, "tenantId")
        with self.store.read() as tx:
            self._tenant(tx, tenant)
            return tx.objects(tenant, type)

    def object(self, tenant_id: str, object_id: str, type: PrincipalType) -> ObjectRow:
        tenant = rules.guid(tenant_id, "tenantId")
        oid = rules.guid(object_id, "id")
        with self.store.read() as tx:
            return self._object(tx, tenant, oid, type)

    def delete_object(self, tenant_id: str, object_id: str, type: PrincipalType) -> None:
        """A user, group or service principal; a service principal in its application's home tenant takes the
        application (and its service principals in other tenants) with it."""
        tenant = rules.guid(tenant_id, "tenantId")
        oid = rules.guid(object_id, "id")
        with self._write() as tx:
            row = self._object(tx, tenant, oid, type)
            app = tx.application(row.app_id) if row.app_id else None
            if app is not None and app.home_tenant_id == tenant:
                tx.delete_application(app.app_id)
            else:
                tx.delete_object(oid)

    # -- Graph lookups, scoped to the caller's tenant (the admin's: every tenant) -----------------------------
    def find(self, principal: Principal, type: PrincipalType, *, name: str | None = None) -> list[ObjectRow]:
        """Objects of a type, with an appId (service principals), UPN (users) or display name (groups) if given."""
        tenant = None if principal.is_admin else principal.tenant_id
        with self.store.read() as tx:
            if name is None:
                return tx.objects(tenant, type)
            if type is PrincipalType.SERVICE_PRINCIPAL:
                rows = tx.service_principals_of(name.lower())
            elif type is PrincipalType.USER:
                user = tx.user_by_upn(rules.upn_key(name))
                rows = [user] if user else []
            else:
                rows = [r for r in tx.objects(tenant, type) if r.name == name]
        return [r for r in rows if tenant is None or r.tenant_id == tenant]

    def by_ids(self, principal: Principal, ids: Collection[str]) -> list[ObjectRow]:
        found: list[ObjectRow] = []
        with self.store.read() as tx:
            for oid in ids:
                row = tx.object(oid.lower())
                if row is not None and (principal.is_admin or row.tenant_id == principal.tenant_id):
                    found.append(row)
        return found

    # -- helpers ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[DirectoryTx]:
        """A write transaction; a concurrent request that made the same name or membership first is a Conflict."""
        try:
            with self.store.write() as tx:
                yield tx
        except ConcurrentChange:
            raise errors.Conflict(
                "A concurrent request made the same user, membership or service principal; read it and retry."
            ) from None

    @staticmethod
    def _tenant(tx: DirectoryTx, tenant_id: str) -> TenantRow:
        row = tx.tenant(tenant_id)
        if row is None:
            raise rules.TenantNotFound(f"The tenant '{tenant_id}' could not be found.", "tenantId")
        return row

    def _object(self, tx: DirectoryTx, tenant_id: str, object_id: str, type: PrincipalType | None) -> ObjectRow:
        self._tenant(tx, tenant_id)
        row = tx.object(object_id)
        if row is None or row.tenant_id != tenant_id or (type is not None and row.type is not type):
            what = type.value if type is not None else "directory object"
            raise rules.DirectoryObjectNotFound(
                f"The tenant '{tenant_id}' has no {what} with the id '{object_id}'.", "id"
            )
        return row
