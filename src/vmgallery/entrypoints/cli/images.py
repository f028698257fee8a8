"""`vmgallery image create|show|list|delete`, as `az image`: managed images from disks, snapshots or VHD blobs.

One deliberate difference: az sends hyperVGeneration V1 when --hyper-v-generation is absent; here it is sent only
when given, so the server takes the OS source's generation instead of refusing a V2 disk in a V1 image.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from . import arm
from .client import ArmClient
from .compute import HyperVOption, Name, OsType, add_read_delete, storage_source
from .options import AzCommand, Endpoint, Location, NoWait, Output, Query, ResourceGroup, Subscription, Tags, sub_app
from .output import OutputFormat, emit, flatten
from .session import connect, group_location, write
from .values import az_bool, parse_tags

app = sub_app("Manage custom virtual machine images (managed images).")

COLUMNS = (
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("OsType", "storageProfile.osDisk.osType"),
    ("HyperVGeneration", "hyperVGeneration"),
    ("DataDisks", "storageProfile.dataDisks"),
    ("ProvisioningState", "provisioningState"),
)

add_read_delete(app, "images", "image", arm.IMAGE_API, COLUMNS)


class Caching(str, Enum):
    None_ = "None"
    ReadOnly = "ReadOnly"
    ReadWrite = "ReadWrite"


_SOURCE_FIELD = {"blob": "blobUri", "disks": "managedDisk", "snapshots": "snapshot"}


def image_disk(client: ArmClient, resource_group: str, source: str) -> dict:
    """The source part of an osDisk or dataDisks item: blobUri, managedDisk{id} or snapshot{id}."""
    kind, value = storage_source(client, resource_group, source)
    return {"blobUri": value} if kind == "blob" else {_SOURCE_FIELD[kind]: {"id": value}}


@app.command(cls=AzCommand)
def create(
    resource_group: ResourceGroup,
    name: Name,
    source: Annotated[
        str, typer.Option("--source", help="OS disk source: a managed disk or snapshot id or name, or a VHD blob URI.")
    ],
    os_type: Annotated[OsType, typer.Option("--os-type", case_sensitive=False, help="The OS type.")],
    data_disk_sources: Annotated[
        list[str] | None,
        typer.Option(
            "--data-disk-sources",
            help="Space-separated data disk sources (disk or snapshot ids or names, or blob URIs), at luns 0, 1, ...",
        ),
    ] = None,
    hyper_v_generation: HyperVOption = None,
    os_disk_caching: Annotated[
        Caching | None,
        typer.Option("--os-disk-caching", case_sensitive=False, help="Storage caching type for the OS disk."),
    ] = None,
    data_disk_caching: Annotated[
        Caching | None,
        typer.Option("--data-disk-caching", case_sensitive=False, help="Storage caching type for the data disks."),
    ] = None,
    storage_sku: Annotated[
        str | None, typer.Option("--storage-sku", help="The storage SKU, e.g. Standard_LRS.")
    ] = None,
    zone_resilient: Annotated[
        str | None, typer.Option("--zone-resilient", help="Whether the image is zone resilient: false, true.")
    ] = None,
    location: Location = None,
    tags: Tags = None,
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create a managed image from a disk, a snapshot or a VHD blob, with data disks."""
    with connect(endpoint, subscription) as client:
        os_disk = {"osType": os_type.value, "osState": "Generalized", **image_disk(client, resource_group, source)}
        data_disks = [
            {"lun": lun, **image_disk(client, resource_group, s)} for lun, s in enumerate(data_disk_sources or [])
        ]
        for disk, caching in [(os_disk, os_disk_caching)] + [(d, data_disk_caching) for d in data_disks]:
            if caching is not None:
                disk["caching"] = caching.value
            if storage_sku:
                disk["storageAccountType"] = storage_sku
        storage: dict = {"osDisk": os_disk, "dataDisks": data_disks}
        if zone_resilient is not None:
            storage["zoneResilient"] = az_bool(zone_resilient)
        properties: dict = {"storageProfile": storage}
        if hyper_v_generation is not None:
            properties["hyperVGeneration"] = hyper_v_generation.value
        body = {
            "location": group_location(client, resource_group, location),
            "properties": properties,
            "tags": parse_tags(tags or []),
        }
        path = arm.compute_resource(client.subscription, resource_group, "images", name)
        result = write(client, "PUT", path, arm.IMAGE_API, body, no_wait=no_wait, what=f"image '{name}'")
        if result is not None:
            emit(flatten(result), output, query, COLUMNS)
