"""`vmgallery snapshot create|show|list|delete|grant-access|revoke-access`, as `az snapshot`."""

from __future__ import annotations

from typing import Annotated

import typer

from . import arm
from .compute import HyperVOption, Name, OsTypeOption, add_access, add_read_delete
from .disks import Sku, creation_data, disk_body
from .options import AzCommand, Endpoint, Location, NoWait, Output, Query, ResourceGroup, Subscription, Tags, sub_app
from .output import OutputFormat, emit, flatten
from .session import connect, group_location, write
from .values import az_bool

app = sub_app("Manage point-in-time copies of managed disks.")

COLUMNS = (
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("Sku", "sku.name"),
    ("OsType", "osType"),
    ("SizeGb", "diskSizeGB"),
    ("Incremental", "incremental"),
    ("ProvisioningState", "provisioningState"),
)

add_read_delete(app, "snapshots", "snapshot", arm.DISK_API, COLUMNS)
add_access(app, "snapshots", "snapshot")


@app.command(cls=AzCommand)
def create(
    resource_group: ResourceGroup,
    name: Name,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Source: a disk or snapshot id or name (a copy), or a VHD blob URI (an import)."),
    ] = None,
    source_storage_account_id: Annotated[
        str | None,
        typer.Option("--source-storage-account-id", help="The storage account id of a VHD blob --source."),
    ] = None,
    size_gb: Annotated[int | None, typer.Option("--size-gb", "-z", help="Size in GB.")] = None,
    incremental: Annotated[
        str | None, typer.Option("--incremental", help="Whether the snapshot is incremental: false, true.")
    ] = None,
    os_type: OsTypeOption = None,
    hyper_v_generation: HyperVOption = None,
    sku: Sku = None,
    location: Location = None,
    tags: Tags = None,
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create a snapshot of a disk (or of another snapshot), or import one from a VHD blob."""
    with connect(endpoint, subscription) as client:
        creation = creation_data(
            client,
            resource_group,
            source=source,
            source_storage_account_id=source_storage_account_id,
            upload_type=None,
            upload_size_bytes=None,
            image_reference=None,
            image_reference_lun=None,
            size_gb=size_gb,
            snapshot=True,
        )
        body = disk_body(
            group_location(client, resource_group, location),
            creation,
            size_gb=size_gb,
            os_type=os_type.value if os_type else None,
            hyper_v=hyper_v_generation.value if hyper_v_generation else None,
            sku=sku,
            tags=tags,
        )
        if incremental is not None:
            body["properties"]["incremental"] = az_bool(incremental)
        path = arm.compute_resource(client.subscription, resource_group, "snapshots", name)
        result = write(client, "PUT", path, arm.DISK_API, body, no_wait=no_wait, what=f"snapshot '{name}'")
        if result is not None:
            emit(flatten(result), output, query, COLUMNS)
