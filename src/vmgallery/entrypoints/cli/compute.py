"""What `disk`, `snapshot` and `image` share: show/list/delete, grant-access/revoke-access, and az's reading of
`--source` (a blob URI, a disk or snapshot id, or a bare name looked up as a snapshot, then as a disk)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from . import arm
from .client import ArmClient, CliError
from .options import AzCommand, Endpoint, NoWait, Output, Query, ResourceGroup, Subscription
from .output import Columns, OutputFormat, emit, flatten
from .session import connect, write

Name = Annotated[str, typer.Option("--name", "-n", help="Name of the resource.")]
ListGroup = Annotated[
    str | None,
    typer.Option("--resource-group", "-g", help="Name of resource group; without it, the whole subscription."),
]


class OsType(str, Enum):
    Linux = "Linux"
    Windows = "Windows"


class HyperVGeneration(str, Enum):
    V1 = "V1"
    V2 = "V2"


class AccessLevel(str, Enum):
    Read = "Read"
    Write = "Write"


OsTypeOption = Annotated[
    OsType | None, typer.Option("--os-type", case_sensitive=False, help="The Operating System type.")
]
HyperVOption = Annotated[
    HyperVGeneration | None,
    typer.Option(
        "--hyper-v-generation", case_sensitive=False, help="The hypervisor generation of the Virtual Machine."
    ),
]


def is_uri(value: str) -> bool:
    return value.lower().startswith(("https://", "http://"))


def storage_source(client: ArmClient, resource_group: str, value: str) -> tuple[str, str]:
    """az's `_figure_out_storage_source`: ('blob', uri), ('disks', id) or ('snapshots', id).

    A bare name is tried as a snapshot, then as a disk, in the resource group (GETs, as az does).
    """
    if is_uri(value):
        return "blob", value
    if arm.is_resource_id(value):
        kind = arm.type_of(value)
        if kind not in ("disks", "snapshots"):
            raise CliError(f"'{value}' is not the id of a disk or snapshot.", "InvalidArgumentValue")
        return kind, value
    for kind in ("snapshots", "disks"):
        path = arm.compute_resource(client.subscription, resource_group, kind, value)
        try:
            return kind, client.get(path, arm.DISK_API)["id"]
        except CliError as exc:
            if exc.code not in ("ResourceNotFound", "NotFound"):
                raise
    raise CliError(f"No snapshot or disk named '{value}' in the resource group '{resource_group}'.", "ResourceNotFound")


def add_read_delete(app: typer.Typer, type_: str, noun: str, api_version: str, columns: Columns) -> None:
    """`show`, `list` and `delete` for the Microsoft.Compute resource type `type_` (`disks`, ...)."""

    @app.command(cls=AzCommand, help=f"Get information about a {noun}.")
    def show(
        resource_group: ResourceGroup,
        name: Name,
        output: Output = OutputFormat.json,
        query: Query = None,
        subscription: Subscription = None,
        endpoint: Endpoint = None,
    ) -> None:
        with connect(endpoint, subscription) as client:
            path = arm.compute_resource(client.subscription, resource_group, type_, name)
            emit(flatten(client.get(path, api_version)), output, query, columns)

    @app.command("list", cls=AzCommand, help=f"List {noun}s in a resource group or a subscription.")
    def list_(
        resource_group: ListGroup = None,
        output: Output = OutputFormat.json,
        query: Query = None,
        subscription: Subscription = None,
        endpoint: Endpoint = None,
    ) -> None:
        with connect(endpoint, subscription) as client:
            items = client.list(arm.compute_resources(client.subscription, resource_group, type_), api_version)
            emit([flatten(i) for i in items], output, query, columns)

    @app.command(cls=AzCommand, help=f"Delete a {noun}.")
    def delete(
        resource_group: ResourceGroup,
        name: Name,
        no_wait: NoWait = False,
        subscription: Subscription = None,
        endpoint: Endpoint = None,
    ) -> None:
        with connect(endpoint, subscription) as client:
            write(
                client,
                "DELETE",
                arm.compute_resource(client.subscription, resource_group, type_, name),
                api_version,
                no_wait=no_wait,
                what=f"{noun} '{name}'",
            )


def add_access(app: typer.Typer, type_: str, noun: str) -> None:
    """`grant-access` and `revoke-access`: a signed URL to a disk's or snapshot's bytes, and its revocation."""

    @app.command("grant-access", cls=AzCommand, help=f"Grant a resource access to a {noun} (a signed URL).")
    def grant_access(
        resource_group: ResourceGroup,
        name: Name,
        duration_in_seconds: Annotated[
            int, typer.Option("--duration-in-seconds", help="Time duration in seconds until the SAS access expires.")
        ],
        access_level: Annotated[
            AccessLevel, typer.Option("--access-level", case_sensitive=False, help="Access level.")
        ] = AccessLevel.Read,
        output: Output = OutputFormat.json,
        query: Query = None,
        subscription: Subscription = None,
        endpoint: Endpoint = None,
    ) -> None:
        from . import transfer

        with connect(endpoint, subscription) as client:
            path = arm.compute_resource(client.subscription, resource_group, type_, name)
            url = transfer.grant(client, path, arm.DISK_API, access_level.value, duration_in_seconds)
            emit({"accessSAS": url}, output, query, (("AccessSAS", "accessSAS"),))

    @app.command("revoke-access", cls=AzCommand, help=f"Revoke every signed URL of a {noun}.")
    def revoke_access(
        resource_group: ResourceGroup, name: Name, subscription: Subscription = None, endpoint: Endpoint = None
    ) -> None:
        from . import transfer

        with connect(endpoint, subscription) as client:
            transfer.revoke(
                client, arm.compute_resource(client.subscription, resource_group, type_, name), arm.DISK_API
            )
