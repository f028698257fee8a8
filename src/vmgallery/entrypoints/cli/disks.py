"""`vmgallery disk create|show|list|delete|grant-access|revoke-access`, as `az disk`, plus `upload` and `download`,
which do what Azure's docs have users do by hand with `az disk create --upload-type`, AzCopy and qemu-img."""

from __future__ import annotations

import tempfile
from enum import Enum
from typing import Annotated

import typer

from . import arm
from .client import ArmClient, CliError
from .compute import HyperVOption, Name, OsTypeOption, add_access, add_read_delete, storage_source
from .options import AzCommand, Endpoint, Location, NoWait, Output, Query, ResourceGroup, Subscription, Tags, sub_app
from .output import OutputFormat, emit, flatten
from .session import connect, group_location, write
from .values import parse_tags

app = sub_app("Manage managed disks, and move disk images in and out of them.")

COLUMNS = (
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("Sku", "sku.name"),
    ("OsType", "osType"),
    ("SizeGb", "diskSizeGB"),
    ("ProvisioningState", "provisioningState"),
    ("DiskState", "diskState"),
)

add_read_delete(app, "disks", "disk", arm.DISK_API, COLUMNS)
add_access(app, "disks", "disk")


class UploadType(str, Enum):
    Upload = "Upload"


class Architecture(str, Enum):
    Arm64 = "Arm64"
    x64 = "x64"


class DownloadFormat(str, Enum):
    vhd = "vhd"
    vhdx = "vhdx"
    qcow2 = "qcow2"
    raw = "raw"
    vmdk = "vmdk"


Sku = Annotated[str | None, typer.Option("--sku", help="Underlying storage SKU, e.g. Standard_LRS.")]
DiskFile = Annotated[str, typer.Option("--file", "-f", help="The disk image file.")]
ResumeDownload = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue a download that failed or was stopped (FILE.partial): fetch only what it lacks. Without it, "
        "a partial download is started over.",
    ),
]
Format = Annotated[
    DownloadFormat | None,
    typer.Option(
        "--format", case_sensitive=False, help="Image format of the file (default: from its extension, else vhd)."
    ),
]


def disk_body(
    location: str,
    creation: dict,
    *,
    size_gb: int | None = None,
    os_type: str | None = None,
    hyper_v: str | None = None,
    architecture: str | None = None,
    sku: str | None = None,
    tags: list[str] | None = None,
) -> dict:
    properties: dict = {"creationData": creation}
    for key, value in (("diskSizeGB", size_gb), ("osType", os_type), ("hyperVGeneration", hyper_v)):
        if value is not None:
            properties[key] = value
    if architecture:
        properties["supportedCapabilities"] = {"architecture": architecture}
    body: dict = {"location": location, "properties": properties}
    if sku:
        body["sku"] = {"name": sku}
    if tags is not None:
        body["tags"] = parse_tags(tags)
    return body


def creation_data(
    client: ArmClient,
    resource_group: str,
    *,
    source: str | None,
    source_storage_account_id: str | None,
    upload_type: UploadType | None,
    upload_size_bytes: int | None,
    image_reference: str | None,
    image_reference_lun: int | None,
    size_gb: int | None,
    snapshot: bool = False,
) -> dict:
    """az's creationData for `disk create` / `snapshot create`, from whichever source option was given."""
    given = [
        o
        for o, v in (
            ("--source", source),
            ("--upload-type", upload_type),
            ("--gallery-image-reference", image_reference),
        )
        if v
    ]
    if len(given) > 1:
        raise CliError(f"usage error: {' and '.join(given)} cannot be used together.", "MutuallyExclusiveArgument")
    if upload_type is not None:
        if not upload_size_bytes:
            raise CliError("usage error: --upload-type Upload needs --upload-size-bytes.", "RequiredArgumentMissing")
        return {"createOption": "Upload", "uploadSizeBytes": upload_size_bytes}
    if image_reference:
        ref: dict = {"id": image_reference}
        if image_reference_lun is not None:
            ref["lun"] = image_reference_lun
        return {"createOption": "FromImage", "galleryImageReference": ref}
    if source:
        kind, value = storage_source(client, resource_group, source)
        if kind != "blob":
            return {"createOption": "Copy", "sourceResourceId": value}
        if not source_storage_account_id:
            raise CliError(
                "usage error: a VHD blob --source needs --source-storage-account-id.", "RequiredArgumentMissing"
            )
        return {"createOption": "Import", "sourceUri": value, "storageAccountId": source_storage_account_id}
    if snapshot:
        raise CliError("usage error: --source is required.", "RequiredArgumentMissing")
    if size_gb is None:
        raise CliError("usage error: --size-gb is required to create an empty disk.", "RequiredArgumentMissing")
    return {"createOption": "Empty"}


@app.command(cls=AzCommand)
def create(
    resource_group: ResourceGroup,
    name: Name,
    size_gb: Annotated[int | None, typer.Option("--size-gb", "-z", help="Size in GB.")] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Source: a disk or snapshot id or name (a copy), or a VHD blob URI (an import)."),
    ] = None,
    source_storage_account_id: Annotated[
        str | None,
        typer.Option("--source-storage-account-id", help="The storage account id of a VHD blob --source."),
    ] = None,
    upload_type: Annotated[
        UploadType | None,
        typer.Option(
            "--upload-type", case_sensitive=False, help="Create the disk for upload (with --upload-size-bytes)."
        ),
    ] = None,
    upload_size_bytes: Annotated[
        int | None, typer.Option("--upload-size-bytes", help="The size of the VHD to upload, footer included.")
    ] = None,
    gallery_image_reference: Annotated[
        str | None,
        typer.Option("--gallery-image-reference", help="The id of a gallery image version to make the disk from."),
    ] = None,
    gallery_image_reference_lun: Annotated[
        int | None,
        typer.Option("--gallery-image-reference-lun", help="The data disk of the image version to use, by lun."),
    ] = None,
    os_type: OsTypeOption = None,
    hyper_v_generation: HyperVOption = None,
    architecture: Annotated[Architecture | None, typer.Option("--architecture", case_sensitive=False)] = None,
    sku: Sku = None,
    location: Location = None,
    tags: Tags = None,
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create a managed disk: empty, for upload, a copy, an import of a VHD blob, or from a gallery image version."""
    with connect(endpoint, subscription) as client:
        creation = creation_data(
            client,
            resource_group,
            source=source,
            source_storage_account_id=source_storage_account_id,
            upload_type=upload_type,
            upload_size_bytes=upload_size_bytes,
            image_reference=gallery_image_reference,
            image_reference_lun=gallery_image_reference_lun,
            size_gb=size_gb,
        )
        body = disk_body(
            group_location(client, resource_group, location),
            creation,
            size_gb=size_gb,
            os_type=os_type.value if os_type else None,
            hyper_v=hyper_v_generation.value if hyper_v_generation else None,
            architecture=architecture.value if architecture else None,
            sku=sku,
            tags=tags,
        )
        path = arm.compute_resource(client.subscription, resource_group, "disks", name)
        result = write(client, "PUT", path, arm.DISK_API, body, no_wait=no_wait, what=f"disk '{name}'")
        if result is not None:
            emit(flatten(result), output, query, COLUMNS)


def _existing(client: ArmClient, path: str) -> dict | None:
    try:
        return client.get(path, arm.DISK_API)
    except CliError as exc:
        if exc.code in ("ResourceNotFound", "NotFound"):
            return None
        raise


def _resumable(disk: dict, name: str, size: int) -> None:
    props = disk.get("properties") or {}
    state = props.get("diskState")
    if state not in ("ReadyToUpload", "ActiveUpload"):
        raise CliError(
            f"The disk '{name}' is {state}, not waiting for an upload: nothing to resume.", "OperationNotAllowed"
        )
    expected = (props.get("creationData") or {}).get("uploadSizeBytes")
    if expected != size:
        raise CliError(
            f"The disk '{name}' expects {expected} bytes but this file makes {size}: it is not the "
            "upload that was started.",
            "InvalidArgumentValue",
        )


@app.command(cls=AzCommand)
def upload(
    resource_group: ResourceGroup,
    name: Name,
    file: Annotated[
        str,
        typer.Option(
            "--file", "-f", help="The disk image to upload: VHD (fixed or dynamic), VHDX, qcow2, raw or VMDK."
        ),
    ],
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue an upload that failed or was stopped: send only the pages not yet there."
        ),
    ] = False,
    os_type: OsTypeOption = None,
    hyper_v_generation: HyperVOption = None,
    architecture: Annotated[Architecture | None, typer.Option("--architecture", case_sensitive=False)] = None,
    sku: Sku = None,
    location: Location = None,
    tags: Tags = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create a disk from a local disk image: convert, create for upload, send the pages, finish."""
    # Loaded by the commands that move bytes only: it brings the disk formats and progress bars.
    from . import transfer

    with connect(endpoint, subscription) as client, tempfile.TemporaryDirectory(prefix="vmgallery-") as workdir:
        path = arm.compute_resource(client.subscription, resource_group, "disks", name)
        disk = _existing(client, path)
        if disk is not None and not resume:
            raise CliError(
                f"The disk '{name}' already exists. Use --resume to continue its upload, or another name.",
                "ResourceExists",
            )
        image = transfer.prepare_upload(file, workdir)
        if disk is None:
            body = disk_body(
                group_location(client, resource_group, location),
                {"createOption": "Upload", "uploadSizeBytes": image.size},
                os_type=os_type.value if os_type else None,
                hyper_v=hyper_v_generation.value if hyper_v_generation else None,
                architecture=architecture.value if architecture else None,
                sku=sku,
                tags=tags,
            )
            write(client, "PUT", path, arm.DISK_API, body, no_wait=False, what=f"disk '{name}'")
        else:
            _resumable(disk, name, image.size)
        was_active = disk is not None and disk["properties"]["diskState"] == "ActiveUpload"
        url = transfer.grant(client, path, arm.DISK_API, "Write")
        blob = transfer.PageBlob(url, client.profile.ca_bundle)
        try:
            landed = blob.page_ranges().ranges if was_active else []
            if landed:
                done = sum(b - a for a, b in landed)
                typer.echo(f"Resuming: {done} of {image.size} bytes are already on the disk.", err=True)
            with transfer.terminate_as_interrupt():
                transfer.upload_pages(blob, image, landed)
        except (CliError, KeyboardInterrupt) as exc:
            message = exc.message if isinstance(exc, CliError) else "Interrupted."
            raise CliError(
                f"{message} The disk '{name}' keeps what was written: run the same command with --resume to continue.",
                getattr(exc, "code", None) or "UploadInterrupted",
            ) from None
        finally:
            blob.close()
        transfer.revoke(client, path, arm.DISK_API)
        emit(flatten(client.get(path, arm.DISK_API)), output, query, COLUMNS)


@app.command(cls=AzCommand)
def download(
    resource_group: ResourceGroup,
    name: Name,
    file: DiskFile,
    format_: Format = None,
    resume: ResumeDownload = False,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Download a disk's bytes into a file: a fixed VHD as served, or raw, VHDX, qcow2 or VMDK."""
    from . import transfer

    with connect(endpoint, subscription) as client:
        path = arm.compute_resource(client.subscription, resource_group, "disks", name)
        fmt = transfer.format_for(file, format_ and format_.value)
        transfer.download(client, path, arm.DISK_API, file, fmt, resume)
