"""`vmgallery role assignment create|list|delete`, as `az role assignment`: the same options and requests (a role
name is looked up with `$filter=roleName eq '...'` at the scope, the assignment PUT under a new GUID with
api-version 2022-04-01), and az's output: assignments flattened, with `roleDefinitionName`."""

from __future__ import annotations

import re
import uuid
from typing import Annotated
from urllib.parse import quote

import typer

from . import arm
from .client import ArmClient, CliError
from .options import AzCommand, Endpoint, Output, Query, Subscription, sub_app
from .output import OutputFormat, emit
from .session import connect

app = sub_app("Manage Azure role-based access control (Azure RBAC).")
assignment = sub_app("Manage role assignments.")
app.add_typer(assignment, name="assignment")

ASSIGNMENT_API = "2022-04-01"
DEFINITION_API = "2022-05-01-preview"
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
COLUMNS = (
    ("Principal", "principalId"),
    ("Role", "roleDefinitionName"),
    ("Scope", "scope"),
)

Role = Annotated[str | None, typer.Option("--role", help="Role name or id.")]
Assignee = Annotated[
    str | None,
    typer.Option(
        "--assignee",
        help="Represent a user, group, or service principal: an object id, a userPrincipalName or an app id.",
    ),
]
AssigneeObjectId = Annotated[
    str | None, typer.Option("--assignee-object-id", help="Use this parameter instead of '--assignee' (object id).")
]
PrincipalType = Annotated[
    str | None,
    typer.Option("--assignee-principal-type", help=f"Use with --assignee-object-id: {', '.join(PRINCIPAL_TYPES)}."),
]
Scope = Annotated[
    str | None,
    typer.Option("--scope", help="Scope at which the role assignment or definition applies to, e.g. a gallery id."),
]
Group = Annotated[
    str | None,
    typer.Option(
        "--resource-group",
        "-g",
        help="Use it only if the role or assignment was added at the level of a resource group.",
    ),
]


def _scope(client: ArmClient, scope: str | None, resource_group: str | None) -> str:
    if scope and resource_group:
        raise CliError("Resource group and scope cannot be used together.")
    if resource_group:
        return arm.group(client.subscription, resource_group)
    if scope:
        return "/" + scope.strip("/")
    return f"/subscriptions/{client.subscription}"


def _principal(client: ArmClient, assignee: str | None, object_id: str | None) -> tuple[str, str | None] | None:
    """The object id (and, when looked up, the principal type) of `--assignee-object-id`, or of `--assignee` found
    as az finds it in the server's Graph: a user by userPrincipalName (it has an @), else a service principal by
    app id; a GUID nothing matches is taken as an object id."""
    if object_id is not None:
        if not GUID.match(object_id):
            raise CliError(f"--assignee-object-id '{object_id}' is not an object id (a GUID).")
        return object_id.lower(), None
    if assignee is None:
        return None
    if "@" in assignee:
        path, wanted, kind = "/v1.0/users", f"userPrincipalName eq '{assignee}'", "User"
    else:
        path, wanted, kind = (
            "/v1.0/servicePrincipals",
            f"servicePrincipalNames/any(c:c eq '{assignee}')",
            "ServicePrincipal",
        )
    try:
        found = client.send("GET", f"{path}?$filter={quote(wanted, safe='')}").json().get("value") or []
    except CliError:
        found = []
    if found:
        return str(found[0]["id"]).lower(), kind
    if GUID.match(assignee):
        return assignee.lower(), None
    raise CliError(
        f"Cannot find user or service principal in graph database for '{assignee}'. If the assignee is an appId, "
        "make sure the corresponding service principal is created; or give its object id with "
        "--assignee-object-id OBJECT_ID --assignee-principal-type TYPE."
    )


def _list(client: ArmClient, path: str, api_version: str, filter_: str | None) -> list[dict]:
    """A list with a `$filter` (the client's own list sends the api-version as its only query parameter)."""
    query = f"?api-version={api_version}"
    if filter_:
        query += "&$filter=" + quote(filter_, safe="")
    items: list[dict] = []
    url: str | None = path + query
    while url:
        page = client.send("GET", url).json()
        items.extend(page.get("value") or [])
        url = page.get("nextLink")
    return items


def _definitions(client: ArmClient, scope: str, role: str | None = None) -> list[dict]:
    path = f"{scope}/providers/Microsoft.Authorization/roleDefinitions"
    return _list(client, path, DEFINITION_API, None if role is None else f"roleName eq '{role}'")


def _role_id(client: ArmClient, scope: str, role: str) -> str:
    """A role given by name, GUID or id: the id of its definition."""
    tail = role.rstrip("/").rsplit("/", 1)[-1]
    if GUID.match(tail):
        if "/" in role:
            return role
        return f"/subscriptions/{client.subscription}/providers/Microsoft.Authorization/roleDefinitions/{tail}"
    found = _definitions(client, scope, role)
    if not found:
        raise CliError(f"Role '{role}' doesn't exist.")
    if len(found) > 1:
        raise CliError(f"Multiple roles are named '{role}'; give its id with --role.")
    return str(found[0]["id"])


def _shown(item: dict, names: dict[str, str]) -> dict:
    flat = {k: v for k, v in item.items() if k != "properties"}
    flat.update(item.get("properties") or {})
    guid = str(flat.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
    flat["roleDefinitionName"] = names.get(guid)
    return flat


def _role_names(client: ArmClient, scope: str) -> dict[str, str]:
    return {d["name"].lower(): d["properties"]["roleName"] for d in _definitions(client, scope)}


@assignment.command(cls=AzCommand)
def create(
    role: Annotated[str, typer.Option("--role", help="Role name or id.")],
    assignee: Assignee = None,
    assignee_object_id: AssigneeObjectId = None,
    assignee_principal_type: PrincipalType = None,
    scope: Scope = None,
    resource_group: Group = None,
    description: Annotated[str | None, typer.Option("--description", help="Description of role assignment.")] = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create a new role assignment for a user, group, or service principal."""
    if assignee_principal_type is not None and assignee_principal_type not in PRINCIPAL_TYPES:
        raise CliError(f"--assignee-principal-type must be one of {', '.join(PRINCIPAL_TYPES)}.")
    if assignee is None and assignee_object_id is None:
        raise CliError("usage error: --assignee STRING | --assignee-object-id GUID")
    with connect(endpoint, subscription) as client:
        found = _principal(client, assignee, assignee_object_id)
        assert found is not None
        principal_id, found_type = found
        where = _scope(client, scope, resource_group)
        props: dict = {"roleDefinitionId": _role_id(client, where, role), "principalId": principal_id}
        if assignee_principal_type or found_type:
            props["principalType"] = assignee_principal_type or found_type
        if description is not None:
            props["description"] = description
        path = f"{where}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
        created = client.send("PUT", path, ASSIGNMENT_API, {"properties": props}).json()
        emit(_shown(created, _role_names(client, where)), output, query, COLUMNS)


def _matching(
    client: ArmClient,
    where: str,
    principal_id: str | None,
    role: str | None,
    every: bool,
    inherited: bool,
) -> tuple[list[dict], dict[str, str]]:
    clauses = [] if every else ["atScope()"]
    if principal_id:
        clauses.append(f"principalId eq '{principal_id}'")
    path = f"{where}/providers/Microsoft.Authorization/roleAssignments"
    items = _list(client, path, ASSIGNMENT_API, " and ".join(clauses) or None)
    names = _role_names(client, where)
    if not every and not inherited:
        items = [i for i in items if i["properties"]["scope"].lower().rstrip("/") == where.lower().rstrip("/")]
    if role is not None:
        wanted = _role_id(client, where, role).rsplit("/", 1)[-1].lower()
        items = [i for i in items if i["properties"]["roleDefinitionId"].rsplit("/", 1)[-1].lower() == wanted]
    return items, names


@assignment.command("list", cls=AzCommand)
def list_(
    assignee: Assignee = None,
    role: Role = None,
    scope: Scope = None,
    resource_group: Group = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Show all assignments under the current subscription (or scope).")
    ] = False,
    include_inherited: Annotated[
        bool, typer.Option("--include-inherited", help="Include assignments applied on parent scopes.")
    ] = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List role assignments (at the scope; with --all, also those under it)."""
    with connect(endpoint, subscription) as client:
        where = _scope(client, scope, resource_group)
        found = _principal(client, assignee, None)
        items, names = _matching(client, where, found[0] if found else None, role, all_, include_inherited)
        emit([_shown(i, names) for i in items], output, query, COLUMNS)


@assignment.command(cls=AzCommand)
def delete(
    ids: Annotated[list[str] | None, typer.Option("--ids", help="Space-separated role assignment ids.")] = None,
    assignee: Assignee = None,
    role: Role = None,
    scope: Scope = None,
    resource_group: Group = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Delete role assignments (by --ids, or those matching --assignee / --role at --scope)."""
    with connect(endpoint, subscription) as client:
        if ids:
            targets = list(ids)
        else:
            found = _principal(client, assignee, None)
            principal_id = found[0] if found else None
            if principal_id is None and role is None:
                raise CliError("Please provide at least one of these arguments: --ids, --assignee, --role.")
            where = _scope(client, scope, resource_group)
            items, _ = _matching(client, where, principal_id, role, False, False)
            targets = [i["id"] for i in items]
            if not targets:
                raise CliError("No matched assignments were found to delete.")
        for target in targets:
            client.send("DELETE", target, ASSIGNMENT_API)
