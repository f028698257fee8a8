"""`vmgallery sig image-version create|update|show|list|delete|wait`, as `az sig image-version`, and `download`.

create builds the body as az's `create_image_version` does: names become ids in the current subscription and
group, targetRegions defaults to the location, a bare end-of-life date gets az's time. update is az's generic
update: GET, the sources set to null (the server keeps the stored ones), the changes, PUT of the whole version.
download makes a temporary disk from the version (FromImage), reads it like `disk download`, and deletes it. Its
--resume goes on with another temporary disk: the server's ETag names the bytes, so theirs is the version's.

Beyond az: `update --add-region/--remove-region` edit the target regions read from the version, `update --dry-run`
asks the server's replicationPlan what the update would add, remove and move instead of updating, `wait --region`
waits for regions' replication, and `show --watch` follows replication per region (see replication.py).
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
import uuid
from enum import Enum
from typing import Annotated

import jmespath
import typer

from ...domain.ids import normalize_location
from . import arm, replication
from .client import ArmClient, CliError
from .disks import DiskFile, Format, ResumeDownload, disk_body
from .options import (
    OPTIONAL_BOOL,
    AzCommand,
    Endpoint,
    GalleryName,
    Location,
    NoWait,
    Output,
    Query,
    ResourceGroup,
    Set,
    Subscription,
    Tags,
    sub_app,
)
from .output import OutputFormat, emit, flatten
from .session import connect, group_location, write
from .values import apply_set, az_bool, end_of_life, parse_tags

app = sub_app("Manage gallery image versions.")


def regions_cell(version: dict) -> str:
    """The version's target regions in its own order, each with its replication state and percent when known."""
    status = replication.summary({"properties": version})
    cells = []
    for target in (version.get("publishingProfile") or {}).get("targetRegions") or []:
        row = status.get(normalize_location(target["name"]))
        cells.append(f"{row['region']} {row.get('state')} {row.get('progress', 0)}%" if row else target["name"])
    return ", ".join(cells)


COLUMNS = (
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("ProvisioningState", "provisioningState"),
    ("PublishedDate", "publishingProfile.publishedDate"),
    ("ExcludeFromLatest", "publishingProfile.excludeFromLatest"),
    ("ReplicationState", "replicationStatus.aggregatedState"),
    ("Regions", regions_cell),
)
STORAGE_TYPES = ("standard_lrs", "standard_zrs", "premium_lrs")


class StorageAccountType(str, Enum):
    Premium_LRS = "Premium_LRS"
    Standard_LRS = "Standard_LRS"
    Standard_ZRS = "Standard_ZRS"


class ReplicationMode(str, Enum):
    Full = "Full"
    Shallow = "Shallow"


class Expand(str, Enum):
    ReplicationStatus = "ReplicationStatus"
    UefiSettings = "UefiSettings"


Definition = Annotated[str, typer.Option("--gallery-image-definition", "-i", help="Gallery image definition.")]
Version = Annotated[
    str,
    typer.Option(
        "--gallery-image-version", "--gallery-image-version-name", "-e", help="Gallery image version, e.g. 1.0.0."
    ),
]
TargetRegions = Annotated[
    list[str] | None,
    typer.Option(
        "--target-regions",
        help="Space-separated regions with optional replica counts and storage types: region[=count][=storage type].",
    ),
]
ReplicaCount = Annotated[int | None, typer.Option("--replica-count", help="The default number of replicas per region.")]
ExcludeFromLatest = Annotated[
    str | None,
    typer.Option(
        "--exclude-from-latest", metavar=OPTIONAL_BOOL, help="Whether `latest` skips this version (bare: true)."
    ),
]
EndOfLife = Annotated[
    str | None,
    typer.Option(
        "--end-of-life-date", help="The end of life date, e.g. '2030-12-31' (sent as 2030-12-31T12:59:59Z, as az does)."
    ),
]
AllowReplicatedDeletion = Annotated[
    str | None,
    typer.Option(
        "--allow-replicated-location-deletion",
        metavar=OPTIONAL_BOOL,
        help="Whether removing regions that hold replicas is allowed (bare: true).",
    ),
]
BlockDeletion = Annotated[
    str | None,
    typer.Option(
        "--block-deletion-before-end-of-life",
        "--block-delete-before-eol",
        metavar=OPTIONAL_BOOL,
        help="Whether deletion is blocked before the end of life (bare: true).",
    ),
]
Interval = Annotated[float, typer.Option("--interval", help="Polling interval in seconds.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Maximum wait in seconds.")]
ExpandOption = Annotated[
    Expand | None, typer.Option("--expand", case_sensitive=False, help="The expand expression to apply.")
]


def emit_versions(client: ArmClient, result: dict | list[dict], output: OutputFormat, query: str | None) -> None:
    """Print versions; the table shows each region's replication, so it reads them with $expand=ReplicationStatus."""
    items = result if isinstance(result, list) else [result]
    if output is OutputFormat.table and not query:
        items = [
            i
            if "replicationStatus" in (i.get("properties") or {})
            else replication.read_version(client, i["id"], "ReplicationStatus")
            for i in items
        ]
    flat = [flatten(i) for i in items]
    emit(flat if isinstance(result, list) else flat[0], output, query, COLUMNS)


def parse_target_regions(items: list[str]) -> list[dict]:
    """az's `region[=count][=storageType]` items; the storage type is sent as typed, as az does."""
    regions = []
    for item in items:
        name, *rest = item.split("=")
        region: dict = {"name": name}
        if not name or len(rest) > 2:
            rest = ["?"]
        for part in rest:
            if part.isdigit() and "regionalReplicaCount" not in region:
                region["regionalReplicaCount"] = int(part)
            elif part.lower() in STORAGE_TYPES and "storageAccountType" not in region:
                region["storageAccountType"] = part
            else:
                raise CliError(
                    f"usage error: {item} is an invalid target region argument. The correct format is "
                    "region[=count][=storage type], e.g. westus=2=standard_lrs.",
                    "InvalidArgumentValue",
                )
        regions.append(region)
    return regions


def _safety(properties: dict, allow: str | None, block: str | None) -> None:
    for key, value in (("allowDeletionOfReplicatedLocations", allow), ("blockDeletionBeforeEndOfLife", block)):
        if value is not None:
            properties.setdefault("safetyProfile", {})[key] = az_bool(value)


def snapshot_or_disk(client: ArmClient, resource_group: str, option: str, value: str) -> str:
    """az's rule for a disk source given by name: a snapshot of that name in the group, else a managed disk."""
    if arm.is_resource_id(value):
        return value
    for type_ in ("snapshots", "disks"):
        path = arm.compute_resource(client.subscription, resource_group, type_, value)
        try:
            return client.get(path, arm.DISK_API)["id"]
        except CliError as exc:
            if exc.code not in ("ResourceNotFound", "NotFound"):
                raise
    raise CliError(
        f"{option}: there is neither a snapshot nor a managed disk named '{value}' in resource group "
        f"'{resource_group}'.",
        "ResourceNotFound",
    )


def storage_profile(
    client: ArmClient,
    resource_group: str,
    *,
    managed_image: str | None,
    image_version: str | None,
    os_snapshot: str | None,
    data_snapshots: list[str],
    data_snapshot_luns: list[int],
    os_vhd_uri: str | None,
    os_vhd_storage_account: str | None,
    data_vhds_uris: list[str],
    data_vhds_luns: list[int],
    data_vhds_storage_accounts: list[str],
) -> dict:
    """az's source options as storageProfile, names expanded to ids in the subscription and group."""
    sub = client.subscription

    def expand(provider_type: str, value: str) -> str:
        return arm.expand_id(sub, resource_group, provider_type, value)

    if managed_image and image_version:
        raise CliError(
            "usage error: --managed-image and --image-version cannot be used together.", "MutuallyExclusiveArgument"
        )
    if not (managed_image or image_version or os_snapshot or os_vhd_uri):
        raise CliError(
            "usage error: one of --managed-image, --image-version, --os-snapshot or --os-vhd-uri is required.",
            "RequiredArgumentMissing",
        )
    snapshot_luns = data_snapshot_luns or list(range(len(data_snapshots)))
    if len(snapshot_luns) != len(data_snapshots):
        raise CliError(
            "usage error: --data-snapshots and --data-snapshot-luns must have the same length.",
            "InvalidArgumentValue",
        )
    profile: dict = {}
    if managed_image:
        profile["source"] = {"id": expand("Microsoft.Compute/images", managed_image)}
    elif image_version:
        profile["source"] = {"id": image_version}
    if os_snapshot:
        profile["osDiskImage"] = {
            "source": {"id": snapshot_or_disk(client, resource_group, "--os-snapshot", os_snapshot)}
        }
    elif os_vhd_uri:
        if not os_vhd_storage_account:
            raise CliError("usage error: --os-vhd-uri needs --os-vhd-storage-account.", "RequiredArgumentMissing")
        profile["osDiskImage"] = {
            "source": {"uri": os_vhd_uri, "storageAccountId": expand(arm.STORAGE_ACCOUNT_TYPE, os_vhd_storage_account)}
        }
    data: list[dict] = []
    data += [
        {"lun": lun, "source": {"id": snapshot_or_disk(client, resource_group, "--data-snapshots", s)}}
        for lun, s in zip(snapshot_luns, data_snapshots)
    ]
    if data_vhds_uris:
        luns = data_vhds_luns or list(range(len(data_vhds_uris)))
        accounts = data_vhds_storage_accounts
        if len(accounts) == 1:
            accounts = accounts * len(data_vhds_uris)
        if len(luns) != len(data_vhds_uris) or len(accounts) != len(data_vhds_uris):
            raise CliError(
                "usage error: --data-vhds-uris, --data-vhds-luns and --data-vhds-storage-accounts must "
                "have the same length.",
                "InvalidArgumentValue",
            )
        data += [
            {"lun": lun, "source": {"uri": uri, "storageAccountId": expand(arm.STORAGE_ACCOUNT_TYPE, sa)}}
            for lun, uri, sa in zip(luns, data_vhds_uris, accounts)
        ]
    if data:
        profile["dataDiskImages"] = data
    return profile


@app.command(cls=AzCommand)
def create(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    gallery_image_version: Version,
    managed_image: Annotated[
        str | None, typer.Option("--managed-image", help="Managed image name (in the same resource group) or id.")
    ] = None,
    image_version: Annotated[
        str | None,
        typer.Option(
            "--image-version", help="Resource id of a gallery image version source (.../versions/latest too)."
        ),
    ] = None,
    os_snapshot: Annotated[
        str | None,
        typer.Option(
            "--os-snapshot",
            help="Name or id of the OS disk's source: a snapshot or a managed disk (a name is looked up in the "
            "resource group, as a snapshot first, then as a disk).",
        ),
    ] = None,
    data_snapshots: Annotated[
        list[str] | None,
        typer.Option(
            "--data-snapshots",
            help="Names or ids (space-separated) of the data disks' sources: snapshots or managed disks.",
        ),
    ] = None,
    data_snapshot_luns: Annotated[
        list[int] | None,
        typer.Option("--data-snapshot-luns", help="Logical unit numbers (space-separated) of the data disk snapshots."),
    ] = None,
    os_vhd_uri: Annotated[str | None, typer.Option("--os-vhd-uri", help="Source VHD URI of the OS disk.")] = None,
    os_vhd_storage_account: Annotated[
        str | None,
        typer.Option("--os-vhd-storage-account", help="Name or id of the storage account of --os-vhd-uri."),
    ] = None,
    data_vhds_uris: Annotated[
        list[str] | None, typer.Option("--data-vhds-uris", help="Source VHD URIs (space-separated) of data disks.")
    ] = None,
    data_vhds_luns: Annotated[
        list[int] | None,
        typer.Option("--data-vhds-luns", help="Logical unit numbers (space-separated) of the data disk VHDs."),
    ] = None,
    data_vhds_storage_accounts: Annotated[
        list[str] | None,
        typer.Option(
            "--data-vhds-storage-accounts",
            "--data-vhds-sa",
            help="Names or ids (space-separated) of the storage accounts of the data disk VHDs.",
        ),
    ] = None,
    target_regions: TargetRegions = None,
    replica_count: ReplicaCount = None,
    storage_account_type: Annotated[
        StorageAccountType | None,
        typer.Option(
            "--storage-account-type", case_sensitive=False, help="The default storage account type per region."
        ),
    ] = None,
    exclude_from_latest: ExcludeFromLatest = None,
    end_of_life_date: EndOfLife = None,
    replication_mode: Annotated[
        ReplicationMode | None,
        typer.Option("--replication-mode", case_sensitive=False, help="The replication mode (not updatable)."),
    ] = None,
    allow_replicated_location_deletion: AllowReplicatedDeletion = None,
    block_deletion_before_end_of_life: BlockDeletion = None,
    location: Location = None,
    tags: Tags = None,
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create a gallery image version from a managed image, snapshots or disks, VHD blobs, or another version."""
    with connect(endpoint, subscription) as client:
        regions = parse_target_regions(target_regions) if target_regions else None
        storage = storage_profile(
            client,
            resource_group,
            managed_image=managed_image,
            image_version=image_version,
            os_snapshot=os_snapshot,
            data_snapshots=data_snapshots or [],
            data_snapshot_luns=data_snapshot_luns or [],
            os_vhd_uri=os_vhd_uri,
            os_vhd_storage_account=os_vhd_storage_account,
            data_vhds_uris=data_vhds_uris or [],
            data_vhds_luns=data_vhds_luns or [],
            data_vhds_storage_accounts=data_vhds_storage_accounts or [],
        )
        location = group_location(client, resource_group, location)
        publishing: dict = {"targetRegions": regions or [{"name": location}]}
        for key, value in (
            ("replicaCount", replica_count),
            ("storageAccountType", storage_account_type.value if storage_account_type else None),
            ("excludeFromLatest", az_bool(exclude_from_latest)),
            ("endOfLifeDate", end_of_life(end_of_life_date) if end_of_life_date else None),
            ("replicationMode", replication_mode.value if replication_mode else None),
        ):
            if value is not None:
                publishing[key] = value
        properties: dict = {"publishingProfile": publishing, "storageProfile": storage}
        _safety(properties, allow_replicated_location_deletion, block_deletion_before_end_of_life)
        body = {"location": location, "tags": parse_tags(tags or []), "properties": properties}
        path = arm.version(
            client.subscription, resource_group, gallery_name, gallery_image_definition, gallery_image_version
        )
        result = write(
            client,
            "PUT",
            path,
            arm.VERSION_API["create"],
            body,
            no_wait=no_wait,
            what=f"image version '{gallery_image_version}'",
        )
        if result is not None:
            emit_versions(client, result, output, query)


def _without_sources(version: dict) -> None:
    """az's update sends the sources as null; the server keeps the stored ones."""
    storage = version.setdefault("properties", {}).setdefault("storageProfile", {})
    storage["source"] = None
    if isinstance(storage.get("osDiskImage"), dict):
        storage["osDiskImage"]["source"] = None
    for disk in storage.get("dataDiskImages") or []:
        disk["source"] = None


@app.command(cls=AzCommand)
def update(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    gallery_image_version: Version,
    target_regions: TargetRegions = None,
    add_region: Annotated[
        list[str] | None,
        typer.Option(
            "--add-region",
            help="Space-separated regions to add (or to change) with optional replica counts and "
            "storage types: region[=count][=storage type].",
        ),
    ] = None,
    remove_region: Annotated[
        list[str] | None,
        typer.Option(
            "--remove-region",
            help="Space-separated regions to remove; regions holding replicas also need "
            "--allow-replicated-location-deletion.",
        ),
    ] = None,
    replica_count: ReplicaCount = None,
    exclude_from_latest: ExcludeFromLatest = None,
    end_of_life_date: EndOfLife = None,
    allow_replicated_location_deletion: AllowReplicatedDeletion = None,
    block_deletion_before_end_of_life: BlockDeletion = None,
    tags: Tags = None,
    set_: Set = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Change nothing: print the replication plan (regions added and removed, bytes to move)."
        ),
    ] = False,
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Update an image version: read it, change it here, write the whole of it back (az's generic update).

    With --dry-run the server says what the update would do to replication, refusing it as the update would be.
    """
    with connect(endpoint, subscription) as client:
        if target_regions and (add_region or remove_region):
            raise CliError(
                "usage error: --target-regions replaces the target regions; it cannot be used with "
                "--add-region or --remove-region.",
                "MutuallyExclusiveArgument",
            )
        path = arm.version(
            client.subscription, resource_group, gallery_name, gallery_image_definition, gallery_image_version
        )
        version = client.get(path, arm.VERSION_API["update"])
        _without_sources(version)
        properties = version["properties"]
        publishing = properties.setdefault("publishingProfile", {})
        if target_regions:
            publishing["targetRegions"] = parse_target_regions(target_regions)
        if add_region or remove_region:
            publishing["targetRegions"] = replication.edit_target_regions(
                publishing.get("targetRegions") or [], parse_target_regions(add_region or []), remove_region or []
            )
        for key, value in (
            ("replicaCount", replica_count),
            ("excludeFromLatest", az_bool(exclude_from_latest)),
            ("endOfLifeDate", end_of_life(end_of_life_date) if end_of_life_date else None),
        ):
            if value is not None:
                publishing[key] = value
        _safety(properties, allow_replicated_location_deletion, block_deletion_before_end_of_life)
        if tags is not None:
            version["tags"] = parse_tags(tags)
        apply_set(version, set_ or [])
        try:
            if dry_run:
                changes = {k: properties[k] for k in ("publishingProfile", "safetyProfile") if k in properties}
                plan = client.send(
                    "POST", f"{path}/replicationPlan", arm.VERSION_API["update"], {"properties": changes}
                ).json()
                replication.emit_plan(plan, output, query)
                return
            result = write(
                client,
                "PUT",
                path,
                arm.VERSION_API["update"],
                version,
                no_wait=no_wait,
                what=f"image version '{gallery_image_version}'",
            )
        except CliError as exc:
            if exc.code == replication.REPLICATED_REMOVAL_REFUSED:
                exc.message += " (With the CLI: --allow-replicated-location-deletion.)"
            raise
        if result is not None:
            emit_versions(client, result, output, query)


def _get(client: ArmClient, path: str, expand: Expand | None) -> dict:
    return replication.read_version(client, path, expand.value if expand else None)


@app.command(cls=AzCommand)
def show(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    gallery_image_version: Version,
    expand: ExpandOption = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="First follow replication on stderr, a progress bar per region (a line per change "
            "when stderr is not a terminal), until every region is Completed; implies --expand "
            "ReplicationStatus.",
        ),
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="With --watch: seconds between reads.")] = 2,
    timeout: Annotated[float, typer.Option("--timeout", help="With --watch: maximum wait in seconds.")] = 3600,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Get information about a gallery image version."""
    with connect(endpoint, subscription) as client:
        path = arm.version(
            client.subscription, resource_group, gallery_name, gallery_image_definition, gallery_image_version
        )
        version = replication.watch(client, path, interval, timeout) if watch else _get(client, path, expand)
        emit_versions(client, version, output, query)


@app.command("list", cls=AzCommand)
def list_(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List gallery image versions of an image definition."""
    with connect(endpoint, subscription) as client:
        items = client.list(
            arm.versions(client.subscription, resource_group, gallery_name, gallery_image_definition),
            arm.VERSION_API["list"],
        )
        emit_versions(client, items, output, query)


@app.command(cls=AzCommand)
def delete(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    gallery_image_version: Version,
    no_wait: NoWait = False,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Delete a gallery image version."""
    with connect(endpoint, subscription) as client:
        write(
            client,
            "DELETE",
            arm.version(
                client.subscription, resource_group, gallery_name, gallery_image_definition, gallery_image_version
            ),
            arm.VERSION_API["delete"],
            no_wait=no_wait,
            what=f"image version '{gallery_image_version}'",
        )


def _condition(
    resource: dict | None, created: bool, updated: bool, deleted: bool, exists: bool, custom: str | None
) -> bool:
    """az's wait conditions on the resource as read (None: it does not exist)."""
    if deleted:
        return resource is None
    if resource is None:
        return False
    state = (resource.get("properties") or {}).get("provisioningState")
    if (created or updated) and state == "Failed":
        raise CliError(f"The resource '{resource.get('name')}' is in provisioningState Failed.", "Failed")
    if created or updated:
        return state == "Succeeded"
    if custom:
        return bool(jmespath.search(custom, flatten(resource)))
    return exists


@app.command(cls=AzCommand)
def wait(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    gallery_image_version: Version,
    expand: ExpandOption = None,
    created: Annotated[
        bool, typer.Option("--created", help="Wait until created with provisioningState Succeeded.")
    ] = False,
    updated: Annotated[
        bool, typer.Option("--updated", help="Wait until updated with provisioningState Succeeded.")
    ] = False,
    deleted: Annotated[bool, typer.Option("--deleted", help="Wait until deleted.")] = False,
    exists: Annotated[bool, typer.Option("--exists", help="Wait until the resource exists.")] = False,
    custom: Annotated[
        str | None, typer.Option("--custom", help="Wait until the resource satisfies a JMESPath query.")
    ] = None,
    region: Annotated[
        list[str] | None,
        typer.Option(
            "--region",
            help="Wait until replication to these regions (space-separated) is Completed. A Failed region "
            "is shown and waited on: the server retries it.",
        ),
    ] = None,
    interval: Interval = 30,
    timeout: Timeout = 3600,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Wait until a condition on the image version is met, as az's `wait`, or until regions are replicated.

    --region shows each region's progress while it waits; to follow all regions and then print the version, use
    `vmgallery sig image-version show --watch`.
    """
    if sum((created, updated, deleted, exists, custom is not None, bool(region))) != 1:
        typer.echo(
            "usage error: give exactly one of --created, --updated, --deleted, --exists, --custom, --region.", err=True
        )
        raise typer.Exit(1)
    with connect(endpoint, subscription) as client:
        path = arm.version(
            client.subscription, resource_group, gallery_name, gallery_image_definition, gallery_image_version
        )
        if region:
            replication.wait_for_regions(client, path, region, interval, timeout)
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                resource: dict | None = _get(client, path, expand)
            except CliError as exc:
                if exc.code not in ("ResourceNotFound", "NotFound"):
                    raise
                resource = None
            if _condition(resource, created, updated, deleted, exists, custom):
                return
            if time.monotonic() + interval > deadline:
                raise CliError(f"Wait operation timed-out after {timeout:g} seconds.", "WaitTimeout")
            time.sleep(interval)


@app.command(cls=AzCommand)
def download(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    gallery_image_version: Version,
    file: DiskFile,
    format_: Format = None,
    lun: Annotated[int | None, typer.Option("--lun", help="Download this data disk instead of the OS disk.")] = None,
    resume: ResumeDownload = False,
    location: Location = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Download an image version's OS disk (or a data disk) into a file, through a temporary disk."""
    # Loaded by the commands that move bytes only: it brings the disk formats and progress bars.
    from . import transfer

    with connect(endpoint, subscription) as client:
        definition = arm.definition(client.subscription, resource_group, gallery_name, gallery_image_definition)
        version_id = arm.version(
            client.subscription, resource_group, gallery_name, gallery_image_definition, gallery_image_version
        )
        region = location or client.get(definition, arm.DEFINITION_API["show"])["location"]
        reference: dict = {"id": version_id} if lun is None else {"id": version_id, "lun": lun}
        _delete_stopped_downloads(client, resource_group)
        disk_name = f"vmgallery-download-{uuid.uuid4().hex[:12]}"
        disk = arm.compute_resource(client.subscription, resource_group, "disks", disk_name)
        body = disk_body(region, {"createOption": "FromImage", "galleryImageReference": reference})
        owner = _this_process()
        if owner:
            body["tags"] = {DOWNLOAD_TAG: owner}
        write(client, "PUT", disk, arm.DISK_API, body, no_wait=False, what=f"disk '{disk_name}'")
        delete = functools.partial(
            write, client, "DELETE", disk, arm.DISK_API, no_wait=False, what=f"disk '{disk_name}'"
        )
        try:
            transfer.download(
                client, disk, arm.DISK_API, file, transfer.format_for(file, format_ and format_.value), resume
            )
        except BaseException:
            with contextlib.suppress(CliError):  # the download's error is the one to tell (the server may be gone)
                delete()
            raise
        delete()


# The temporary disk of `download` names the process that made it: "HOST PID START" (START: its start time in clock
# ticks since boot, so a PID used again is not taken for it). A download ended by SIGKILL, a crash or a lost machine
# cannot delete its disk; the next download into the same group from the same machine deletes the disks whose
# process is gone. Disks made elsewhere are left alone: their processes cannot be seen from here.
DOWNLOAD_TAG = "vmgallery-download"


def _this_process() -> str | None:
    from ...adapters.builders import processes

    me = processes.identity(os.getpid())
    return f"{socket.gethostname()} {me[0]} {me[1]}" if me else None  # None without /proc: nothing to check by


def _delete_stopped_downloads(client: ArmClient, resource_group: str) -> None:
    from ...adapters.builders import processes

    host = socket.gethostname()
    try:
        disks = client.list(arm.compute_resources(client.subscription, resource_group, "disks"), arm.DISK_API)
    except CliError:
        return  # best effort: a caller who may not list the group's disks still may download
    for disk in disks:
        owner = (disk.get("tags") or {}).get(DOWNLOAD_TAG, "").split(" ")
        if len(owner) != 3 or owner[0] != host or not all(part.isdigit() for part in owner[1:]):
            continue
        if processes.alive((int(owner[1]), int(owner[2]))):
            continue
        with contextlib.suppress(CliError):  # gone already (another download's cleanup), or not ours to delete
            write(client, "DELETE", disk["id"], arm.DISK_API, no_wait=False, what=f"disk '{disk['name']}'")
            typer.echo(
                f"Deleted the temporary disk '{disk['name']}' of a download that was stopped (process {owner[1]} "
                "is gone).",
                err=True,
            )
