"""`vmgallery identity ...`: the directory (tenants, subscriptions, users, groups, service principals) of a running
server, through its management API (`/vmgallery/identity`, the admin token only). `sp create` prints what
`az ad sp create-for-rbac` prints; a secret is printed once, by the command that made it, and never again."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .client import ArmClient
from .options import AzCommand, Endpoint, Output, Query, sub_app
from .output import Columns, OutputFormat, emit
from .session import connect

PREFIX = "/vmgallery/identity"

app = sub_app("Manage the directory: tenants, subscriptions, users, groups and service principals.")
tenant_app = sub_app("Manage tenants.")
subscription_app = sub_app("Manage subscriptions (each belongs to a tenant).")
user_app = sub_app("Manage users (sign in with a password).")
group_app = sub_app("Manage groups (members may be users, service principals and groups).")
member_app = sub_app("Manage a group's members.")
sp_app = sub_app("Manage service principals (applications signing in with a client secret).")
credential_app = sub_app("Manage a service principal's secret.")
signing_key_app = sub_app("Manage the keys the server signs tokens with.")
app.add_typer(tenant_app, name="tenant")
app.add_typer(subscription_app, name="subscription")
app.add_typer(user_app, name="user")
app.add_typer(group_app, name="group")
group_app.add_typer(member_app, name="member")
app.add_typer(sp_app, name="sp")
sp_app.add_typer(credential_app, name="credential")
app.add_typer(signing_key_app, name="signing-key")

Tenant = Annotated[str, typer.Option("--tenant", help="Tenant ID.")]
Id = Annotated[str, typer.Option("--id", help="Object ID.")]
Name = Annotated[str, typer.Option("--name", "-n", help="Name.")]

TENANT_COLUMNS: Columns = (("TenantId", "tenantId"), ("Name", "name"))
SUBSCRIPTION_COLUMNS: Columns = (("SubscriptionId", "subscriptionId"), ("TenantId", "tenantId"), ("Name", "name"))
USER_COLUMNS: Columns = (("ObjectId", "objectId"), ("UserPrincipalName", "userPrincipalName"))
GROUP_COLUMNS: Columns = (("ObjectId", "objectId"), ("DisplayName", "displayName"))
MEMBER_COLUMNS: Columns = (("ObjectId", "objectId"), ("Type", "type"), ("Name", "userPrincipalName || displayName"))
SP_COLUMNS: Columns = (("AppId", "appId"), ("ObjectId", "objectId"), ("DisplayName", "displayName"))


def _call(endpoint: str | None, method: str, path: str, body: Any = None) -> Any:
    with connect(endpoint, None) as client:
        return _send(client, method, path, body)


def _send(client: ArmClient, method: str, path: str, body: Any = None) -> Any:
    response = client.send(method, PREFIX + path, None, body)
    return response.json() if response.content else None


def _list(endpoint: str | None, path: str) -> list[dict]:
    return _call(endpoint, "GET", path)["value"]


# -- tenants -------------------------------------------------------------------------------------------------------
@tenant_app.command("create", cls=AzCommand)
def tenant_create(name: Name, output: Output = OutputFormat.json, query: Query = None, endpoint: Endpoint = None):
    """Create a tenant."""
    emit(_call(endpoint, "POST", "/tenants", {"name": name}), output, query, TENANT_COLUMNS)


@tenant_app.command("list", cls=AzCommand)
def tenant_list(output: Output = OutputFormat.json, query: Query = None, endpoint: Endpoint = None):
    """List tenants."""
    emit(_list(endpoint, "/tenants"), output, query, TENANT_COLUMNS)


@tenant_app.command("show", cls=AzCommand)
def tenant_show(
    id: Annotated[str, typer.Option("--id", "--tenant", help="Tenant ID.")],
    output: Output = OutputFormat.json,
    query: Query = None,
    endpoint: Endpoint = None,
):
    """Show a tenant."""
    emit(_call(endpoint, "GET", f"/tenants/{id}"), output, query, TENANT_COLUMNS)


@tenant_app.command("delete", cls=AzCommand)
def tenant_delete(id: Annotated[str, typer.Option("--id", "--tenant", help="Tenant ID.")], endpoint: Endpoint = None):
    """Delete a tenant with everything in its directory (its subscriptions must be deleted first)."""
    _call(endpoint, "DELETE", f"/tenants/{id}")


# -- subscriptions -------------------------------------------------------------------------------------------------
@subscription_app.command("create", cls=AzCommand)
def subscription_create(
    tenant: Tenant, name: Name, output: Output = OutputFormat.json, query: Query = None, endpoint: Endpoint = None
):
    """Create a subscription in a tenant."""
    body = {"tenantId": tenant, "name": name}
    emit(_call(endpoint, "POST", "/subscriptions", body), output, query, SUBSCRIPTION_COLUMNS)


@subscription_app.command("list", cls=AzCommand)
def subscription_list(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's.")] = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    endpoint: Endpoint = None,
):
    """List subscriptions."""
    path = "/subscriptions" + (f"?tenant={tenant}" if tenant else "")
    emit(_list(endpoint, path), output, query, SUBSCRIPTION_COLUMNS)


@subscription_app.command("show", cls=AzCommand)
def subscription_show(
    id: Annotated[str, typer.Option("--id", "--subscription", help="Subscription ID.")],
    output: Output = OutputFormat.json,
    query: Query = None,
    endpoint: Endpoint = None,
):
    """Show a subscription."""
    emit(_call(endpoint, "GET", f"/subscriptions/{id}"), output, query, SUBSCRIPTION_COLUMNS)


@subscription_app.command("delete", cls=AzCommand)
def subscription_delete(
    id: Annotated[str, typer.Option("--id", "--subscription", help="Subscription ID.")], endpoint: Endpoint = None
):
    """Delete a subscription (it must hold no resources)."""
    _call(endpoint, "DELETE", f"/subscriptions/{id}")


# -- users, groups, service principals: list/show/delete alike --------------------------------------------------------
def _object_commands(group: typer.Typer, collection: str, what: str, columns: Columns) -> None:
    @group.command("list", cls=AzCommand)
    def list_(tenant: Tenant, output: Output = OutputFormat.json, query: Query = None, endpoint: Endpoint = None):
        emit(_list(endpoint, f"/tenants/{tenant}/{collection}"), output, query, columns)

    @group.command("show", cls=AzCommand)
    def show(
        tenant: Tenant, id: Id, output: Output = OutputFormat.json, query: Query = None, endpoint: Endpoint = None
    ):
        emit(_call(endpoint, "GET", f"/tenants/{tenant}/{collection}/{id}"), output, query, columns)

    @group.command("delete", cls=AzCommand)
    def delete(tenant: Tenant, id: Id, endpoint: Endpoint = None):
        _call(endpoint, "DELETE", f"/tenants/{tenant}/{collection}/{id}")

    list_.__doc__ = f"List a tenant's {what}s."
    show.__doc__ = f"Show a {what}."
    delete.__doc__ = f"Delete a {what}."


@user_app.command("create", cls=AzCommand)
def user_create(
    tenant: Tenant,
    name: Annotated[str, typer.Option("--name", "-n", "--user-principal-name", help="User principal name.")],
    password: Annotated[str, typer.Option("--password", help="The user's password.")],
    output: Output = OutputFormat.json,
    query: Query = None,
    endpoint: Endpoint = None,
):
    """Create a user."""
    body = {"userPrincipalName": name, "password": password}
    emit(_call(endpoint, "POST", f"/tenants/{tenant}/users", body), output, query, USER_COLUMNS)


@group_app.command("create", cls=AzCommand)
def group_create(
    tenant: Tenant,
    name: Annotated[str, typer.Option("--name", "-n", "--display-name", help="Display name.")],
    output: Output = OutputFormat.json,
    query: Query = None,
    endpoint: Endpoint = None,
):
    """Create a group."""
    emit(_call(endpoint, "POST", f"/tenants/{tenant}/groups", {"displayName": name}), output, query, GROUP_COLUMNS)


Group = Annotated[str, typer.Option("--group", "-g", help="Group object ID.")]
Member = Annotated[str, typer.Option("--member", "--member-id", help="Object ID of the member.")]


@member_app.command("add", cls=AzCommand)
def member_add(tenant: Tenant, group: Group, member: Member, endpoint: Endpoint = None):
    """Add a member (user, service principal or group) to a group."""
    _call(endpoint, "POST", f"/tenants/{tenant}/groups/{group}/members", {"memberId": member})


@member_app.command("remove", cls=AzCommand)
def member_remove(tenant: Tenant, group: Group, member: Member, endpoint: Endpoint = None):
    """Remove a member from a group."""
    _call(endpoint, "DELETE", f"/tenants/{tenant}/groups/{group}/members/{member}")


@member_app.command("list", cls=AzCommand)
def member_list(
    tenant: Tenant, group: Group, output: Output = OutputFormat.json, query: Query = None, endpoint: Endpoint = None
):
    """List a group's direct members."""
    emit(_list(endpoint, f"/tenants/{tenant}/groups/{group}/members"), output, query, MEMBER_COLUMNS)


@sp_app.command("create", cls=AzCommand)
def sp_create(
    tenant: Tenant,
    name: Annotated[str | None, typer.Option("--name", "-n", "--display-name", help="Display name.")] = None,
    multi_tenant: Annotated[
        bool, typer.Option("--multi-tenant", help="The application may get service principals in other tenants.")
    ] = False,
    app_id: Annotated[
        str | None,
        typer.Option("--app-id", help="Add this multi-tenant application's service principal to the tenant instead."),
    ] = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    endpoint: Endpoint = None,
):
    """Create an application and its service principal with a secret (printed once), or, with --app-id, a
    multi-tenant application's service principal in another tenant."""
    if (name is None) == (app_id is None):
        typer.echo("Give either --name (a new application) or --app-id (an existing multi-tenant one).", err=True)
        raise typer.Exit(2)
    body: dict[str, Any] = {"appId": app_id} if app_id else {"displayName": name, "multiTenant": multi_tenant}
    emit(_call(endpoint, "POST", f"/tenants/{tenant}/servicePrincipals", body), output, query, SP_COLUMNS)


@credential_app.command("reset", cls=AzCommand)
def credential_reset(
    tenant: Tenant,
    id: Annotated[str, typer.Option("--id", help="The application's appId.")],
    output: Output = OutputFormat.json,
    query: Query = None,
    endpoint: Endpoint = None,
):
    """Give the application a new secret (printed once); the old one stops working."""
    result = _call(endpoint, "POST", f"/tenants/{tenant}/applications/{id}/resetCredential", {})
    emit(result, output, query, (("AppId", "appId"), ("Password", "password"), ("Tenant", "tenant")))


@signing_key_app.command("rotate", cls=AzCommand)
def signing_key_rotate(output: Output = OutputFormat.json, query: Query = None, endpoint: Endpoint = None):
    """Sign new tokens with a new key; tokens signed with the old one stay valid until they expire."""
    emit(_call(endpoint, "POST", "/signingKeys/rotate", {}), output, query, (("Kid", "kid"),))


_object_commands(user_app, "users", "user", USER_COLUMNS)
_object_commands(group_app, "groups", "group", GROUP_COLUMNS)
_object_commands(sp_app, "servicePrincipals", "service principal", SP_COLUMNS)
