"""Azure RBAC's rules, pure: role definitions, action patterns, scopes and their ancestry, and which action each API
operation needs.

- An action is Azure's string (`Microsoft.Compute/galleries/images/versions/write`); a role's `actions` and
  `notActions` are patterns over them where `*` stands for any run of characters, compared case-insensitively. A
  role permits an action when some `actions` pattern matches it and no `notActions` pattern does.
- A scope is `/`, a subscription, a resource group or a resource id; its key is the lower-cased text without a
  trailing slash. A role assigned at a scope applies there and at every scope under it (a role on a gallery reaches
  its image definitions and versions, a role on a definition reaches its versions but not the gallery).
- A principal is permitted an action at a scope when one of the assignments along the scope's path (to the caller
  or to one of its groups) names a role that permits it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .errors import ArmError, InvalidParameter
from .ids import ResourceId, canonical_path, parse_resource_id

AUTHORIZATION = "Microsoft.Authorization"
ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITIONS = "Microsoft.Authorization/roleDefinitions"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class AuthorizationFailed(ArmError):
    status, code = 403, "AuthorizationFailed"


class LinkedAuthorizationFailed(ArmError):
    status, code = 403, "LinkedAuthorizationFailed"


# -- role definitions -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Permission:
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def body(self) -> dict[str, list[str]]:
        return {
            "actions": list(self.actions),
            "notActions": list(self.not_actions),
            "dataActions": list(self.data_actions),
            "notDataActions": list(self.not_data_actions),
        }


@dataclass(frozen=True)
class RoleDefinition:
    guid: str  # lower-case
    name: str  # roleName
    description: str
    permissions: tuple[Permission, ...]
    built_in: bool = True
    assignable_scopes: tuple[str, ...] = ("/",)
    scope: str = "/"  # where a custom role was created

    def permits(self, action: str) -> bool:
        return any(
            any(pattern_matches(p, action) for p in perm.actions)
            and not any(pattern_matches(p, action) for p in perm.not_actions)
            for perm in self.permissions
        )

    def assignable_at(self, scope_key: str) -> bool:
        return any(is_within(scope_key, scope_key_of(s)) for s in self.assignable_scopes)


def _builtin(
    guid: str, name: str, description: str, actions: Sequence[str], not_actions: Sequence[str] = ()
) -> RoleDefinition:
    return RoleDefinition(guid, name, description, (Permission(tuple(actions), tuple(not_actions)),))


# Azure's own GUIDs, names and permissions (learn.microsoft.com, "Azure built-in roles": privileged and compute).
OWNER = _builtin(
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Owner",
    "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
    ["*"],
)
CONTRIBUTOR = _builtin(
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Contributor",
    "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage "
    "assignments in Azure Blueprints, or share image galleries.",
    ["*"],
    [
        "Microsoft.Authorization/*/Delete",
        "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action",
        "Microsoft.Blueprint/blueprintAssignments/write",
        "Microsoft.Blueprint/blueprintAssignments/delete",
        "Microsoft.Compute/galleries/share/action",
    ],
)
READER = _builtin(
    "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Reader",
    "View all resources, but does not allow you to make any changes.",
    ["*/read"],
)
USER_ACCESS_ADMINISTRATOR = _builtin(
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "User Access Administrator",
    "Lets you manage user access to Azure resources.",
    ["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
)
COMPUTE_GALLERY_SHARING_ADMIN = _builtin(
    "1ef6a3be-d0ac-425d-8c01-acb62866290b",
    "Compute Gallery Sharing Admin",
    "This role allows user to share gallery to another subscription/tenant or share it to the public.",
    ["Microsoft.Compute/galleries/share/action"],
)
COMPUTE_GALLERY_ARTIFACTS_PUBLISHER = _builtin(
    "85a2d0d9-2eba-4c9c-b355-11c2cc0788ab",
    "Compute Gallery Artifacts Publisher",
    "This is the role for publishing gallery artifacts.",
    [
        "Microsoft.Compute/galleries/*",
        "Microsoft.Compute/locations/capsOperations/read",
        "Microsoft.Compute/locations/communityGalleries/*",
        "Microsoft.Compute/locations/sharedGalleries/*",
        "Microsoft.Compute/images/*",
        "Microsoft.Compute/virtualMachines/write",
        "Microsoft.Compute/disks/write",
        "Microsoft.Authorization/*/read",
        "Microsoft.Insights/alertRules/*",
        "Microsoft.Resources/deployments/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
    ],
    ["Microsoft.Compute/galleries/share/action"],
)
COMPUTE_GALLERY_IMAGE_READER = _builtin(
    "cf7c76d2-98a3-4358-a134-615aa78bf44d",
    "Compute Gallery Image Reader",
    "This is the role for reading gallery images.",
    ["Microsoft.Compute/galleries/images/read", "Microsoft.Compute/galleries/images/versions/read"],
)
BUILT_IN_ROLES: dict[str, RoleDefinition] = {
    r.guid: r
    for r in (
        OWNER,
        CONTRIBUTOR,
        READER,
        USER_ACCESS_ADMINISTRATOR,
        COMPUTE_GALLERY_SHARING_ADMIN,
        COMPUTE_GALLERY_ARTIFACTS_PUBLISHER,
        COMPUTE_GALLERY_IMAGE_READER,
    )
}
BUILT_IN_BY_NAME = {r.name.lower(): r for r in BUILT_IN_ROLES.values()}


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.IGNORECASE)


def pattern_matches(pattern: str, action: str) -> bool:
    """Whether an `actions`/`notActions` pattern covers the action (`*` is any run of characters, any case)."""
    return _pattern(pattern).fullmatch(action) is not None


# -- scopes ------------------------------------------------------------------------------------------------------
def scope_key_of(scope: str) -> str:
    """The key of a scope: lower-cased, no trailing slash, `/` for the root."""
    key = scope.strip().rstrip("/").lower()
    return key or "/"


def is_within(scope_key: str, ancestor_key: str) -> bool:
    """`scope_key` is `ancestor_key` or lies under it."""
    return ancestor_key == "/" or scope_key == ancestor_key or scope_key.startswith(ancestor_key + "/")


def scope_path(rid: ResourceId) -> tuple[str, ...]:
    """The keys of every scope an assignment may sit at to reach `rid`: the root, the subscription, the group and
    each resource of its chain, outermost first."""
    keys = ["/", f"/subscriptions/{rid.subscription}".lower()]
    if rid.resource_group is not None:
        keys.append(rid.group_key)
        at = ResourceId(rid.subscription, rid.resource_group, rid.namespace, ())
        for pair in rid.chain:
            at = ResourceId(at.subscription, at.resource_group, at.namespace, at.chain + (pair,))
            keys.append(at.key)
    return tuple(keys)


@dataclass(frozen=True)
class Scope:
    """A scope as a request names it: its text (for ids and messages) and, below a subscription, its parsed id."""

    text: str
    subscription: str | None
    resource: ResourceId | None  # a resource group or resource; None for `/` and subscriptions

    @property
    def key(self) -> str:
        return scope_key_of(self.text)

    @property
    def path(self) -> tuple[str, ...]:
        if self.resource is not None:
            return scope_path(self.resource)
        if self.subscription is not None:
            return ("/", self.key)
        return ("/",)


def parse_scope(text: str) -> Scope:
    """`/`, `/subscriptions/{s}`, a resource group or a resource id; InvalidParameter otherwise."""
    canonical = canonical_path("/" + text.strip("/")) if text.strip("/") else "/"
    if canonical == "/":
        return Scope("/", None, None)
    parts = canonical.split("/")
    if len(parts) == 3 and parts[1] == "subscriptions" and parts[2]:
        return Scope(canonical, parts[2], None)
    rid = parse_resource_id(canonical)
    if rid is None:
        raise InvalidParameter(f"The scope '{text}' is not a valid scope.", "scope", code="InvalidScope")
    return Scope(rid.text, rid.subscription, rid)


# -- definition ids ----------------------------------------------------------------------------------------------
def definition_guid(value: str) -> str | None:
    """The GUID of a role definition id (`[/subscriptions/{s}]/providers/Microsoft.Authorization/roleDefinitions/
    {guid}`) or of a bare GUID; None if it is neither."""
    tail = value.rstrip("/").rsplit("/", 1)[-1]
    if not GUID.match(tail):
        return None
    if "/" in value.strip("/") and "/providers/microsoft.authorization/roledefinitions/" not in value.lower():
        return None
    return tail.lower()


def definition_id(guid: str, subscription: str | None) -> str:
    prefix = f"/subscriptions/{subscription}" if subscription else ""
    return f"{prefix}/providers/{ROLE_DEFINITIONS}/{guid}"


# -- assignments and the check -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """One role assignment that reaches the caller: where it sits and what its role permits."""

    scope_key: str
    role: RoleDefinition


@dataclass
class Access:
    """What a caller's assignments (to it and to its groups) permit, for checks along one scope path or for a
    list's visibility."""

    grants: list[Grant] = field(default_factory=list)

    def permits(self, action: str, scope_key: str) -> bool:
        return any(is_within(scope_key, g.scope_key) and g.role.permits(action) for g in self.grants)

    def visible_under(self, action: str, scope_key: str) -> set[str] | None:
        """For a list at `scope_key`: None when the caller may read everything there (a grant at or above it), else
        the scopes under it where a grant permits the action (possibly none)."""
        below: set[str] = set()
        for g in self.grants:
            if not g.role.permits(action):
                continue
            if is_within(scope_key, g.scope_key):
                return None
            if is_within(g.scope_key, scope_key):
                below.add(g.scope_key)
        return below


def denied(principal_name: str | None, object_id: str, action: str, scope: str) -> AuthorizationFailed:
    client = principal_name or object_id
    return AuthorizationFailed(
        f"The client '{client}' with object id '{object_id}' does not have authorization to perform action "
        f"'{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh "
        "your credentials."
    )


# -- the action each operation needs -----------------------------------------------------------------------------
RESOURCE_GROUP_TYPE = "microsoft.resources/resourcegroups"


def resource_action(resource_type: str, verb: str) -> str:
    """`read`, `write`, `delete` or `<name>/action` on a resource type, as Azure spells the action."""
    if resource_type.lower() == RESOURCE_GROUP_TYPE:
        return f"Microsoft.Resources/subscriptions/resourceGroups/{verb}"
    return f"{resource_type}/{verb}"


SHARE = "Microsoft.Compute/galleries/share/action"
LIST_KEYS = "Microsoft.Storage/storageAccounts/listKeys/action"
VM_WRITE = "Microsoft.Compute/virtualMachines/write"
ASSIGN_IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
IMAGE_READ = "Microsoft.Compute/images/read"
IMAGE_WRITE = "Microsoft.Compute/images/write"
VERSION_READ = "Microsoft.Compute/galleries/images/versions/read"
VERSION_WRITE = "Microsoft.Compute/galleries/images/versions/write"
IMAGE_TEMPLATES = "microsoft.virtualmachineimages/imagetemplates"

# The operations of each resource type's routes (entrypoints/http): method -> verb.
VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete", "PLAN": "write"}


def operation_action(namespace: str, which: str) -> str:
    """Polling a long-running operation: its status (`capsOperations`) or its result (`operationResults`)."""
    return f"{namespace}/locations/{'capsOperations' if which == 'status' else 'operations'}/read"


# -- the sources a create names (linked access) ------------------------------------------------------------------
@dataclass(frozen=True)
class Linked:
    """A resource a request names as its source: the action it needs there, and the property naming it."""

    action: str
    scope: str  # a resource id; for a VHD blob named only by URL, the URL until the app finds its account
    target: str
    noun: str
    blob_uri: str | None = None  # a VHD given by URL without a storage account id


def _get(body: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(body, list) or step >= len(body):
                return None
        elif not isinstance(body, dict) or step not in body:
            return None
        body = body[step]
    return body


def _id_source(value: Any, target: str) -> Linked | None:
    """A disk, snapshot, managed image, version or VM id: the action its kind of source needs."""
    if not isinstance(value, str):
        return None
    rid = parse_resource_id(value)
    if rid is None or not rid.chain:
        return None
    types = [t.lower() for t, _ in rid.chain]
    if types in (["disks"], ["snapshots"]):
        noun = "managed disk" if types == ["disks"] else "snapshot"
        return Linked(resource_action(rid.type, "write"), rid.text, target, noun)
    if types == ["images"]:
        return Linked(resource_action(rid.type, "read"), rid.text, target, "managed image")
    if types == ["galleries", "images", "versions"]:
        return Linked(resource_action(rid.type, "read"), rid.text, target, "gallery image version")
    if types == ["virtualmachines"]:
        return Linked(VM_WRITE, rid.text, target, "virtual machine")
    return Linked(resource_action(rid.type, "read"), rid.text, target, "resource")


def _vhd(account: Any, uri: Any, target: str) -> Linked | None:
    if isinstance(account, str) and account.strip():
        return Linked(LIST_KEYS, account, target, "storage account")
    if isinstance(uri, str) and uri.strip():
        return Linked(LIST_KEYS, uri, target, "storage account", blob_uri=uri)
    return None


def linked_sources(resource_type: str, body: Any) -> list[Linked]:
    """Every source a create or replace body names, read the way the kinds' rules read them (keys as spelt there),
    whatever the rest of the body holds: the rules refuse a bad body after this check."""
    kind = resource_type.lower()
    props = _get(body, "properties")
    found: list[Linked | None] = []
    if kind in ("microsoft.compute/disks", "microsoft.compute/snapshots"):
        data = _get(props, "creationData")
        at = "properties.creationData"
        found.append(_id_source(_get(data, "sourceResourceId"), f"{at}.sourceResourceId"))
        found.append(_id_source(_get(data, "galleryImageReference", "id"), f"{at}.galleryImageReference.id"))
        found.append(_id_source(_get(data, "imageReference", "id"), f"{at}.imageReference.id"))
        found.append(_vhd(_get(data, "storageAccountId"), _get(data, "sourceUri"), f"{at}.storageAccountId"))
    elif kind == "microsoft.compute/images":
        found.append(_id_source(_get(props, "sourceVirtualMachine", "id"), "properties.sourceVirtualMachine.id"))
        storage = _get(props, "storageProfile")
        disks: list[tuple[Any, str]] = [(_get(storage, "osDisk"), "properties.storageProfile.osDisk")]
        data_disks = _get(storage, "dataDisks")
        if isinstance(data_disks, list):
            disks += [(d, f"properties.storageProfile.dataDisks[{i}]") for i, d in enumerate(data_disks)]
        for disk, at in disks:
            found.append(_id_source(_get(disk, "managedDisk", "id"), f"{at}.managedDisk.id"))
            found.append(_id_source(_get(disk, "snapshot", "id"), f"{at}.snapshot.id"))
            found.append(_vhd(_get(disk, "storageAccountId"), _get(disk, "blobUri"), f"{at}.blobUri"))
    elif kind == "microsoft.compute/galleries/images/versions":
        storage = _get(props, "storageProfile")
        at = "properties.storageProfile"
        found.append(_id_source(_get(storage, "source", "id"), f"{at}.source.id"))
        found.append(_id_source(_get(storage, "source", "virtualMachineId"), f"{at}.source.virtualMachineId"))
        disks = [(_get(storage, "osDiskImage"), f"{at}.osDiskImage")]
        data_disks = _get(storage, "dataDiskImages")
        if isinstance(data_disks, list):
            disks += [(d, f"{at}.dataDiskImages[{i}]") for i, d in enumerate(data_disks)]
        for disk, where in disks:
            source = _get(disk, "source")
            found.append(_id_source(_get(source, "id"), f"{where}.source.id"))
            found.append(
                _vhd(_get(source, "storageAccountId"), _get(source, "uri"), f"{where}.source.storageAccountId")
            )
    elif kind == IMAGE_TEMPLATES:
        found += _template_links(props)
    return [f for f in found if f is not None]


def _template_links(props: Any) -> list[Linked | None]:
    """An image template reads its source and writes each distribution target: a managed image source needs
    images/read, a gallery version source versions/read (a platform image, nothing); a SharedImage target needs
    versions/write on its definition (or the version it names), a ManagedImage target images/write on the image
    (a role on its resource group reaches it), a VHD written to a storage account that account's listKeys."""
    src = _get(props, "source")
    found: list[Linked | None] = []
    kind = _get(src, "type")
    if kind == "ManagedImage" and isinstance(_get(src, "imageId"), str):
        found.append(Linked(IMAGE_READ, src["imageId"], "properties.source.imageId", "managed image"))
    elif kind == "SharedImageVersion" and isinstance(_get(src, "imageVersionId"), str):
        found.append(
            Linked(VERSION_READ, src["imageVersionId"], "properties.source.imageVersionId", "gallery image version")
        )
    targets = _get(props, "distribute")
    for i, item in enumerate(targets if isinstance(targets, list) else []):
        at = f"properties.distribute[{i}]"
        kind = _get(item, "type")
        if kind == "SharedImage" and isinstance(_get(item, "galleryImageId"), str):
            found.append(
                Linked(VERSION_WRITE, item["galleryImageId"], f"{at}.galleryImageId", "gallery image definition")
            )
        elif kind == "ManagedImage" and isinstance(_get(item, "imageId"), str):
            found.append(Linked(IMAGE_WRITE, item["imageId"], f"{at}.imageId", "managed image"))
        elif kind == "VHD":
            found.append(_vhd(None, _get(item, "uri"), f"{at}.uri"))
    return found


def named_identities(resource_type: str, body: Any) -> list[str]:
    """The user-assigned identities an image template names: the builder acts as them (it reads the source and
    writes the outputs with their roles), and the caller must be allowed to hand them over (assign/action)."""
    if resource_type.lower() != IMAGE_TEMPLATES:
        return []
    identity = _get(body, "identity")
    named = _get(identity, "userAssignedIdentities")
    kind = _get(identity, "type")
    if not isinstance(kind, str) or kind.lower() != "userassigned" or not isinstance(named, dict):
        return []
    return [i for i in named if isinstance(i, str)]


def identity_denied(identity_id: str, principal_id: str, missing: Iterable[Linked]) -> LinkedAuthorizationFailed:
    """The identity a template builds as lacks a role on its source or a target (checked at creation and again
    when a run starts)."""
    missing = list(missing)
    named = ", ".join(f"the {m.noun} named by {m.target}" for m in missing)
    return LinkedAuthorizationFailed(
        f"The user-assigned identity '{identity_id}' with object id '{principal_id}', which the image builder acts "
        f"as, does not have permission to perform action(s) {', '.join(repr(m.action) for m in missing)} on the "
        f"linked scope(s) {', '.join(repr(m.scope) for m in missing)} ({named}) or the linked scope(s) are invalid. "
        "Assign the identity a role there that permits it (Reader on a source, Contributor on a target).",
        missing[0].target,
    )


def linked_denied(
    principal_name: str | None,
    object_id: str,
    action: str,
    scope: str,
    missing: Iterable[Linked],
    tenants_without_token: Sequence[str] = (),
) -> LinkedAuthorizationFailed:
    """`tenants_without_token`: the tenants holding a missing source for which the request carried no auxiliary
    token (the refusal then says which token to send, as the cause Azure's own message leaves out)."""
    missing = list(missing)
    client = principal_name or object_id
    first = missing[0]
    named = ", ".join(f"the {m.noun} named by {m.target}" for m in missing)
    return LinkedAuthorizationFailed(
        f"The client '{client}' with object id '{object_id}' has permission to perform action '{action}' on scope "
        f"'{scope}'; however, it does not have permission to perform action(s) "
        f"{', '.join(repr(m.action) for m in missing)} on the linked scope(s) "
        f"{', '.join(repr(m.scope) for m in missing)} ({named}) "
        "or the linked scope(s) are invalid."
        + (
            f" The linked scope(s) are in tenant(s) {', '.join(repr(t) for t in tenants_without_token)}, and the "
            "request carries no token for them: send the caller's token for each such tenant in the header "
            "'x-ms-authorization-auxiliary' ('Bearer <token>', comma-separated)."
            if tenants_without_token
            else ""
        ),
        first.target,
    )
