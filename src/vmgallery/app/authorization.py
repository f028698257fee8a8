"""Who may do what: the check every API operation passes, what a list shows, the sources a create names, and the
role assignments and custom role definitions of Microsoft.Authorization.

A check loads the caller's assignments (to it and to its groups) along the scope's path in one query and asks the
domain's rules (domain/rbac.py) whether a role among them permits the action. The bootstrap admin passes every
check. A refusal is `AuthorizationFailed` (403) naming the caller's object id, the action and the scope; it is raised
before anything is looked up, so it says nothing about whether the scope exists.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..domain import errors
from ..domain import rbac as rules
from ..domain.principals import Principal
from ..domain.rbac import Access, Grant, Linked, Permission, RoleDefinition, Scope, parse_scope
from ..domain.timestamps import arm_time
from ..domain.validate import Body
from . import managed_identities
from .managed_identities import NamedIdentity, find_identity
from .ports import Clock, StorageAccounts, SubscriptionTenants
from .rbac_store import AssignmentRow, CustomRoleRow, GrantRow, RoleMetadata, RoleTransaction

PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
ASSIGNMENT_READ = "Microsoft.Authorization/roleAssignments/read"
ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"
DEFINITION_READ = "Microsoft.Authorization/roleDefinitions/read"
DEFINITION_WRITE = "Microsoft.Authorization/roleDefinitions/write"
DEFINITION_DELETE = "Microsoft.Authorization/roleDefinitions/delete"
_CLAUSE = re.compile(
    r"^\s*(?:(?P<at>atScope\(\s*\))|principalId\s+eq\s+'(?P<pid>[^']*)'|assignedTo\(\s*'(?P<to>[^']*)'\s*\)"
    r"|roleName\s+eq\s+'(?P<role>[^']*)'|type\s+eq\s+'(?P<type>[^']*)')\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Filter:
    at_scope: bool = False
    principal_id: str | None = None
    assigned_to: str | None = None
    role_name: str | None = None
    role_type: str | None = None


def parse_filter(text: str | None) -> Filter:
    """The `$filter`s az and the SDKs send: atScope(), principalId eq '..', assignedTo('..'), roleName eq '..',
    type eq '..', joined by `and`."""
    if not text:
        return Filter()
    found: dict[str, Any] = {}
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(clause)
        if m is None:
            raise errors.InvalidParameter(
                f"The $filter '{text}' is not supported; use atScope(), principalId eq '...', assignedTo('...'), "
                "roleName eq '...' or type eq '...', joined by 'and'.",
                "$filter",
                code="UnsupportedQuery",
            )
        if m["at"]:
            found["at_scope"] = True
        for group, name in (
            ("pid", "principal_id"),
            ("to", "assigned_to"),
            ("role", "role_name"),
            ("type", "role_type"),
        ):
            if m[group] is not None:
                found[name] = m[group]
    return Filter(**found)


def _ids(principal: Principal) -> list[str]:
    return [principal.object_id.lower(), *(g.lower() for g in principal.group_ids)]


def custom_role(guid: str, props: Body, scope: str = "/") -> RoleDefinition:
    perms = tuple(
        Permission(
            tuple(p.get("actions") or ()),
            tuple(p.get("notActions") or ()),
            tuple(p.get("dataActions") or ()),
            tuple(p.get("notDataActions") or ()),
        )
        for p in props.get("permissions") or ()
        if isinstance(p, dict)
    )
    return RoleDefinition(
        guid,
        str(props.get("roleName", "")),
        str(props.get("description") or ""),
        perms,
        built_in=False,
        assignable_scopes=tuple(props.get("assignableScopes") or ()),
        scope=scope,
    )


def _access(rows: Sequence[GrantRow]) -> Access:
    grants = []
    for row in rows:
        role = rules.BUILT_IN_ROLES.get(row.role_guid) if row.custom is None else custom_role(row.role_guid, row.custom)
        if role is not None:
            grants.append(Grant(row.scope_key, role))
    return Access(grants)


def _grants_of_identities(tx: RoleTransaction, actors: Sequence[NamedIdentity | None]) -> Access:
    ids = [a.principal_id.lower() for a in actors if a is not None]
    return _access(tx.grants_of(ids)) if ids else Access()


@dataclass
class Result:
    status: int
    body: Body | None


class Authorization:
    def __init__(
        self, db: RoleMetadata, accounts: StorageAccounts, clock: Clock, tenants: SubscriptionTenants | None = None
    ):
        self.db = db
        self.accounts = accounts
        self.clock = clock
        # Which tenant a source's subscription belongs to: a refusal names a tenant whose token the request lacks.
        self.tenants = tenants

    # -- checks ----------------------------------------------------------------------------------------------
    def access(self, principal: Principal, scope: Scope) -> Access:
        """The caller's grants along `scope`'s path."""
        return _access(self.db.grants_along(_ids(principal), scope.path))

    def everywhere(self, principal: Principal) -> Access:
        """All the caller's grants, wherever they sit (for lists and several checks at once)."""
        with self.db.read() as tx:
            return _access(tx.grants_of(_ids(principal)))

    def check(self, principal: Principal, action: str, scope: Scope | str) -> None:
        if principal.is_admin:
            return
        scope = parse_scope(scope) if isinstance(scope, str) else scope
        if not self.access(principal, scope).permits(action, scope.key):
            raise rules.denied(principal.name, principal.object_id, action, scope.text)

    def permitted(self, principal: Principal, action: str, scope: Scope | str) -> bool:
        try:
            self.check(principal, action, scope)
        except rules.AuthorizationFailed:
            return False
        return True

    def check_linked(self, principal: Principal, action: str, scope: str, resource_type: str, body: Any) -> None:
        """The sources a create or replace names (disks, snapshots, images, versions, VMs, VHDs' storage accounts,
        an image template's source and distribution targets): each needs its own action there
        (LinkedAuthorizationFailed naming the ones missing). An image template that names user-assigned identities
        is checked as them, as Azure does (the builder reads and writes with their roles), once the caller has shown
        it may hand them over (assign/action on each)."""
        if principal.is_admin:
            return
        linked = rules.linked_sources(resource_type, body)
        identities = rules.named_identities(resource_type, body)
        if not linked and not identities:
            return
        with self.db.read() as tx:
            # The same caller in the sources' tenants (x-ms-authorization-auxiliary tokens) may hold what they need.
            callers = [_access(tx.grants_of(_ids(p))) for p in (principal, *principal.auxiliary)]
            actors = [find_identity(tx, i) for i in identities]
            acting = _grants_of_identities(tx, actors)
        if identities:
            assign = [
                Linked(rules.ASSIGN_IDENTITY, i, "identity.userAssignedIdentities", "user-assigned identity")
                for i in identities
            ]
            missing = self._missing(assign, callers)
            if missing:
                raise rules.linked_denied(principal.name, principal.object_id, action, scope, missing)
            self._as_identities(list(zip(identities, actors)), acting, linked)
            return
        missing = self._missing(linked, callers)
        if missing:
            raise rules.linked_denied(
                principal.name,
                principal.object_id,
                action,
                scope,
                missing,
                self._tenants_without_token(principal, missing),
            )

    def check_build_identity(self, spec: Body) -> None:
        """When a run starts: the identities the template builds as still hold what its source and targets need (a
        role removed since the template was made fails the run here, before anything is built). An identity the
        template recorded (its principalId is shown) must still exist; one named only by name (the admin token may
        name one before it is made) is checked once it exists."""
        identities = rules.named_identities(rules.IMAGE_TEMPLATES, spec)
        if not identities:
            return
        recorded = spec["identity"]["userAssignedIdentities"]
        with self.db.read() as tx:
            actors = [find_identity(tx, i) for i in identities]
            acting = _grants_of_identities(tx, actors)
        named = [
            (i, a) for i, a in zip(identities, actors) if a is not None or (recorded.get(i) or {}).get("principalId")
        ]
        if named:
            self._as_identities(named, acting, rules.linked_sources(rules.IMAGE_TEMPLATES, spec))

    def _as_identities(
        self, named: Sequence[tuple[str, NamedIdentity | None]], acting: Access, linked: Sequence[Linked]
    ) -> None:
        """`linked` checked as the identities (`acting`: their grants together); each must exist."""
        actors = []
        for identity_id, actor in named:
            if actor is None:
                raise managed_identities.not_found(identity_id)
            actors.append(actor)
        missing = self._missing(linked, [acting])
        if missing:
            raise rules.identity_denied(actors[0].id, actors[0].principal_id, missing)

    def _missing(self, linked: Sequence[Linked], accesses: Sequence[Access]) -> list[Linked]:
        """The linked scopes none of `accesses` permits its action at, each by its resolved scope."""
        missing: list[Linked] = []
        for item in linked:
            target = item.scope
            if item.blob_uri is not None:
                account = self.accounts.account_for(item.blob_uri)
                if account is None:
                    continue  # not in a configured account: the kind's rules refuse it by name
                target = account
            try:
                where = parse_scope(target)
            except errors.ArmError:
                continue  # not an id: the kind's rules refuse it by name
            if not any(access.permits(item.action, where.key) for access in accesses):
                missing.append(Linked(item.action, where.text, item.target, item.noun))
        return missing

    def _tenants_without_token(self, principal: Principal, missing: list[Linked]) -> list[str]:
        """The tenants, other than the caller's, that hold a missing source's subscription and for which the
        request carries no x-ms-authorization-auxiliary token."""
        if self.tenants is None:
            return []
        present = {principal.tenant_id.lower(), *(a.tenant_id.lower() for a in principal.auxiliary)}
        found: list[str] = []
        for item in missing:
            subscription = parse_scope(item.scope).subscription
            tenant = self.tenants.tenant_of(subscription) if subscription else None
            if tenant is not None and tenant.lower() not in present and tenant not in found:
                found.append(tenant)
        return found

    def visible(self, principal: Principal, action: str, scope: Scope | str) -> frozenset[str] | None:
        """For a list at `scope`: None when the caller may read all of it, else the keys of the scopes under it
        whose items (and their children) it may read. AuthorizationFailed when it may read nothing there."""
        if principal.is_admin:
            return None
        scope = parse_scope(scope) if isinstance(scope, str) else scope
        below = self.everywhere(principal).visible_under(action, scope.key)
        if below is None:
            return None
        if not below:
            raise rules.denied(principal.name, principal.object_id, action, scope.text)
        return frozenset(below)

    def subscriptions_with_roles(self, principal: Principal) -> set[str]:
        """The subscriptions (lower-case ids) where the caller or one of its groups holds a role, at the
        subscription or under it: what ARM's GET /subscriptions lists for it."""
        with self.db.read() as tx:
            rows = tx.grants_of(_ids(principal))
        return {g.scope_key.split("/")[2] for g in rows if g.scope_key.startswith("/subscriptions/")}

    # -- role definitions ------------------------------------------------------------------------------------
    def _role(self, tx: RoleTransaction, guid: str) -> RoleDefinition | None:
        built_in = rules.BUILT_IN_ROLES.get(guid)
        if built_in is not None:
            return built_in
        row = tx.get_custom_role(guid)
        return custom_role(row.guid, row.body, row.scope) if row else None

    def _definition_body(self, role: RoleDefinition, subscription: str | None, row: CustomRoleRow | None) -> Body:
        props: Body = {
            "roleName": role.name,
            "type": "BuiltInRole" if role.built_in else "CustomRole",
            "description": role.description,
            "assignableScopes": list(role.assignable_scopes),
            "permissions": [p.body() for p in role.permissions],
        }
        if row is not None:
            props.update(
                createdOn=arm_time(row.created_at),
                updatedOn=arm_time(row.updated_at),
                createdBy=row.created_by,
                updatedBy=row.created_by,
            )
        return {
            "id": rules.definition_id(role.guid, subscription),
            "name": role.guid,
            "type": rules.ROLE_DEFINITIONS,
            "properties": props,
        }

    def list_definitions(self, principal: Principal, scope_text: str, filter_text: str | None) -> list[Body]:
        scope = parse_scope(scope_text)
        if scope.subscription is not None:
            self.check(principal, DEFINITION_READ, scope)
        wanted = parse_filter(filter_text)
        out = []
        with self.db.read() as tx:
            roles: list[tuple[RoleDefinition, CustomRoleRow | None]] = [
                (r, None) for r in rules.BUILT_IN_ROLES.values()
            ]
            if scope.subscription is not None:
                for custom in tx.custom_roles(scope.subscription.lower()):
                    role = custom_role(custom.guid, custom.body, custom.scope)
                    if role.assignable_at(scope.key):
                        roles.append((role, custom))
        for role, row in roles:
            if wanted.role_name is not None and role.name.lower() != wanted.role_name.lower():
                continue
            kind = "BuiltInRole" if role.built_in else "CustomRole"
            if wanted.role_type is not None and kind.lower() != wanted.role_type.lower():
                continue
            out.append(self._definition_body(role, scope.subscription, row))
        return out

    def get_definition(self, principal: Principal, scope_text: str, guid: str) -> Body:
        scope = parse_scope(scope_text)
        if scope.subscription is not None:
            self.check(principal, DEFINITION_READ, scope)
        key = guid.lower()
        with self.db.read() as tx:
            row = tx.get_custom_role(key)
            role = self._role(tx, key)
        if role is None or (row is not None and scope.subscription is None and not principal.is_admin):
            raise _definition_not_found(guid)
        return self._definition_body(role, scope.subscription, row)

    def put_definition(self, principal: Principal, scope_text: str, guid: str, body: Any) -> Result:
        scope = parse_scope(scope_text)
        self.check(principal, DEFINITION_WRITE, scope)
        if scope.subscription is None or (scope.resource is not None and scope.resource.chain):
            raise errors.InvalidParameter(
                "A custom role is created at a subscription or a resource group scope.", "scope", code="InvalidScope"
            )
        key = _guid(guid, "role definition", "InvalidRoleDefinitionId")
        if key in rules.BUILT_IN_ROLES:
            raise rules.AuthorizationFailed(
                f"The built-in role '{key}' cannot be changed.", code="BuiltInRoleCannotBeChanged"
            )
        props = _definition_props(body)
        for assignable in props["assignableScopes"]:
            self.check(principal, DEFINITION_WRITE, assignable)
        name_key = props["roleName"].lower()
        if name_key in rules.BUILT_IN_BY_NAME:
            raise errors.Conflict(
                f"A built-in role is named '{props['roleName']}'; choose another name.",
                "properties.roleName",
                code="RoleDefinitionWithSameNameExists",
            )
        now = self.clock()
        subscription = scope.subscription.lower()
        with self.db.write() as tx:
            existing = tx.get_custom_role(key)
            clash = tx.find_custom_role(subscription, name_key)
            if clash is not None and clash.guid != key:
                raise errors.Conflict(
                    f"A custom role named '{props['roleName']}' exists already ({clash.guid}).",
                    "properties.roleName",
                    code="RoleDefinitionWithSameNameExists",
                )
            if existing is not None and existing.subscription != subscription:
                raise errors.Conflict(
                    f"The role definition '{key}' belongs to another subscription.", key, code="RoleDefinitionExists"
                )
            stored = CustomRoleRow(
                key,
                subscription,
                scope.text,
                props,
                existing.created_by if existing else principal.object_id,
                existing.created_at if existing else now,
                now,
            )
            tx.put_custom_role(stored)
        self.db.roles_changed()
        return Result(
            200 if existing else 201,
            self._definition_body(custom_role(key, props, scope.text), scope.subscription, stored),
        )

    def delete_definition(self, principal: Principal, scope_text: str, guid: str) -> Result:
        scope = parse_scope(scope_text)
        self.check(principal, DEFINITION_DELETE, scope)
        key = guid.lower()
        if key in rules.BUILT_IN_ROLES:
            raise rules.AuthorizationFailed(
                f"The built-in role '{key}' cannot be deleted.", code="BuiltInRoleCannotBeChanged"
            )
        with self.db.write() as tx:
            row = tx.get_custom_role(key)
            if row is None or (scope.subscription or "").lower() != row.subscription:
                return Result(204, None)
            if tx.count_role_assignments(key):
                raise errors.Conflict(
                    f"The role definition '{key}' has role assignments; delete them first.",
                    key,
                    code="RoleDefinitionHasAssignments",
                )
            tx.delete_custom_role(key)
        self.db.roles_changed()
        return Result(200, self._definition_body(custom_role(key, row.body, row.scope), scope.subscription, row))

    # -- role assignments ------------------------------------------------------------------------------------
    def _assignment_body(self, row: AssignmentRow) -> Body:
        prefix = "" if row.scope == "/" else row.scope
        return {
            "id": f"{prefix}/providers/{rules.ROLE_ASSIGNMENTS}/{row.name}",
            "name": row.name,
            "type": rules.ROLE_ASSIGNMENTS,
            "properties": {
                "roleDefinitionId": rules.definition_id(row.role_guid, row.subscription),
                "principalId": row.principal_id,
                "principalType": row.principal_type,
                "scope": row.scope,
                "condition": None,
                "conditionVersion": None,
                "createdOn": arm_time(row.created_at),
                "updatedOn": arm_time(row.created_at),
                "createdBy": row.created_by,
                "updatedBy": row.created_by,
                "delegatedManagedIdentityResourceId": None,
                "description": row.description,
            },
        }

    def _check_scope_exists(self, tx: RoleTransaction, scope: Scope) -> None:
        rid = scope.resource
        if rid is None:
            return
        if tx.get(rid.group_key) is None:
            raise errors.ResourceGroupNotFound(f"Resource group '{rid.resource_group}' could not be found.", "scope")
        if not rid.chain:
            return
        if rid.type.lower() == "microsoft.storage/storageaccounts":
            if rid.text in self.accounts:
                return
        elif tx.get(rid.key) is not None:
            return
        raise errors.NotFound(f"The scope '{scope.text}' was not found.", "scope", code="ResourceNotFound")

    def put_assignment(self, principal: Principal, scope_text: str, name: str, body: Any) -> Result:
        scope = parse_scope(scope_text)
        self.check(principal, ASSIGNMENT_WRITE, scope)
        key = _guid(name, "role assignment", "InvalidRoleAssignmentId")
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise errors.InvalidRequestContent("The request body must be a JSON object with 'properties'.")
        raw_role = props.get("roleDefinitionId")
        role_guid = rules.definition_guid(raw_role) if isinstance(raw_role, str) else None
        if role_guid is None:
            raise errors.InvalidParameter(
                f"'properties.roleDefinitionId' must be a role definition id, not {raw_role!r}.",
                "properties.roleDefinitionId",
                code="InvalidRoleDefinitionId",
            )
        principal_id = _guid(props.get("principalId"), "principal", "InvalidPrincipalId", "properties.principalId")
        principal_type = props.get("principalType") or "User"
        if principal_type not in PRINCIPAL_TYPES:
            raise errors.InvalidParameter(
                f"'properties.principalType' must be one of {', '.join(PRINCIPAL_TYPES)}, not {principal_type!r}.",
                "properties.principalType",
            )
        description = props.get("description")
        if description is not None and not isinstance(description, str):
            raise errors.InvalidParameter("'properties.description' must be a string.", "properties.description")
        row = AssignmentRow(
            key,
            scope.text,
            scope.key,
            scope.subscription.lower() if scope.subscription else None,
            principal_id,
            principal_type,
            role_guid,
            description,
            principal.object_id,
            self.clock(),
        )
        with self.db.write() as tx:
            self._check_scope_exists(tx, scope)
            role = self._role(tx, role_guid)
            if role is None:
                raise errors.InvalidParameter(
                    f"The role definition '{raw_role}' does not exist.",
                    "properties.roleDefinitionId",
                    code="RoleDefinitionDoesNotExist",
                )
            if not role.assignable_at(scope.key):
                raise errors.InvalidParameter(
                    f"The role '{role.name}' cannot be assigned at scope '{scope.text}' (not among its "
                    "assignableScopes).",
                    "scope",
                    code="RoleAssignmentScopeNotAssignableToRoleDefinition",
                )
            existing = tx.get_assignment(key)
            if existing is not None:
                if (existing.scope_key, existing.principal_id, existing.role_guid) != (
                    scope.key,
                    principal_id,
                    role_guid,
                ):
                    raise errors.Conflict(
                        "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                        key,
                        code="RoleAssignmentUpdateNotPermitted",
                    )
                return Result(200, self._assignment_body(existing))
            if tx.find_assignment(scope.key, principal_id, role_guid) is not None:
                raise errors.Conflict("The role assignment already exists.", key, code="RoleAssignmentExists")
            tx.insert_assignment(row)
        self.db.roles_changed()
        return Result(201, self._assignment_body(row))

    def _assignment_at(self, tx: RoleTransaction, scope: Scope, name: str) -> AssignmentRow | None:
        row = tx.get_assignment(name.lower())
        return row if row is not None and row.scope_key == scope.key else None

    def get_assignment(self, principal: Principal, scope_text: str, name: str) -> Body:
        scope = parse_scope(scope_text)
        self.check(principal, ASSIGNMENT_READ, scope)
        with self.db.read() as tx:
            row = self._assignment_at(tx, scope, name)
        if row is None:
            raise errors.NotFound(f"The role assignment '{name}' is not found.", name, code="RoleAssignmentNotFound")
        return self._assignment_body(row)

    def delete_assignment(self, principal: Principal, scope_text: str, name: str) -> Result:
        scope = parse_scope(scope_text)
        self.check(principal, ASSIGNMENT_DELETE, scope)
        with self.db.write() as tx:
            row = self._assignment_at(tx, scope, name)
            if row is None:
                return Result(204, None)
            tx.delete_assignment(row.name)
        self.db.roles_changed()
        return Result(200, self._assignment_body(row))

    def list_assignments(self, principal: Principal, scope_text: str, filter_text: str | None) -> list[Body]:
        """The assignments that apply at the scope (at and above it) and, without atScope(), those under it; of
        the principal a filter names; only those the caller may read."""
        scope = parse_scope(scope_text)
        wanted = parse_filter(filter_text)
        seeing = self.visible(principal, ASSIGNMENT_READ, scope)
        who: set[str] | None = None
        if wanted.principal_id is not None:
            who = {wanted.principal_id.lower()}
        if wanted.assigned_to is not None:
            target = wanted.assigned_to.lower()
            who = set(_ids(principal)) if target == principal.object_id.lower() else {target}
        with self.db.read() as tx:
            rows = tx.assignments(subscription=scope.subscription.lower() if scope.subscription else None)
            if scope.subscription is not None:
                rows = [r for r in tx.assignments(subscription=None) if r.subscription is None] + rows
        access = self.everywhere(principal) if seeing is not None else None
        out = []
        for row in rows:
            above = rules.is_within(scope.key, row.scope_key)
            below = rules.is_within(row.scope_key, scope.key)
            if not (above or (below and not wanted.at_scope)):
                continue
            if who is not None and row.principal_id not in who:
                continue
            if access is not None and not access.permits(ASSIGNMENT_READ, row.scope_key):
                continue
            out.append(self._assignment_body(row))
        return out


def _guid(value: Any, what: str, code: str, target: str | None = None) -> str:
    if not isinstance(value, str) or not rules.GUID.match(value):
        raise errors.InvalidParameter(f"The {what} id {value!r} is not valid; it must be a GUID.", target, code=code)
    return value.lower()


def new_name() -> str:
    return str(uuid.uuid4())


def _definition_not_found(guid: str) -> errors.ArmError:
    return errors.NotFound(f"The role definition '{guid}' could not be found.", guid, code="RoleDefinitionDoesNotExist")


def _strings(value: Any, target: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise errors.InvalidParameter(f"'{target}' must be a list of non-empty strings.", target)
    return list(value)


def _definition_props(body: Any) -> Body:
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise errors.InvalidRequestContent("The request body must be a JSON object with 'properties'.")
    name = props.get("roleName")
    if not isinstance(name, str) or not name.strip():
        raise errors.MissingRequiredProperty(
            "Required property 'properties.roleName' is missing.", "properties.roleName"
        )
    kind = props.get("type", "CustomRole")
    if not isinstance(kind, str) or kind.lower() != "customrole":
        raise errors.InvalidParameter("A role definition created here is a 'CustomRole'.", "properties.type")
    description = props.get("description")
    if description is not None and not isinstance(description, str):
        raise errors.InvalidParameter("'properties.description' must be a string.", "properties.description")
    raw_perms = props.get("permissions")
    if not isinstance(raw_perms, list) or not raw_perms:
        raise errors.InvalidParameter("'properties.permissions' must be a non-empty list.", "properties.permissions")
    permissions = []
    for i, p in enumerate(raw_perms):
        at = f"properties.permissions[{i}]"
        if not isinstance(p, dict):
            raise errors.InvalidParameter(f"'{at}' must be an object.", at)
        permissions.append(
            {
                "actions": _strings(p.get("actions"), f"{at}.actions"),
                "notActions": _strings(p.get("notActions"), f"{at}.notActions"),
                "dataActions": _strings(p.get("dataActions"), f"{at}.dataActions"),
                "notDataActions": _strings(p.get("notDataActions"), f"{at}.notDataActions"),
            }
        )
    scopes = _strings(props.get("assignableScopes"), "properties.assignableScopes")
    if not scopes:
        raise errors.InvalidParameter(
            "'properties.assignableScopes' must name at least one scope.", "properties.assignableScopes"
        )
    canonical = []
    for s in scopes:
        parsed = parse_scope(s)
        if parsed.subscription is None:
            raise errors.InvalidParameter(
                f"The assignable scope '{s}' is not a subscription, resource group or resource.",
                "properties.assignableScopes",
                code="InvalidScope",
            )
        canonical.append(parsed.text)
    return {
        "roleName": name.strip(),
        "type": "CustomRole",
        "description": description or "",
        "assignableScopes": canonical,
        "permissions": permissions,
    }
