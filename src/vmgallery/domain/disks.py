"""Managed disks and snapshots: creation options, sizes, and the disk-state machine of SAS access.

A disk's bytes are a disk image: the raw disk (whole MiBs) followed by the 512-byte VHD footer, which is exactly
what an Azure upload writes and what a Read SAS serves (docs/storage-format.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidParameter, MissingRequiredProperty, OperationNotAllowed
from .ids import parse_resource_id
from .validate import (
    Body,
    check_enum,
    check_int,
    check_string,
    check_tags,
    forbid_changes,
    require_object,
    strip_read_only,
)
from .vhd import FOOTER_SIZE, MIB

GIB = 1 << 30
FOOTER = FOOTER_SIZE  # a disk image is its raw bytes and a fixed-VHD footer
MAX_DISK_GB = 32767
MAX_SAS_SECONDS = 7 * 24 * 3600

DISK_CREATE_OPTIONS = ("Empty", "Upload", "Copy", "FromImage", "Import")
SNAPSHOT_CREATE_OPTIONS = ("Copy", "Import")
OS_TYPES = ("Windows", "Linux")
HYPERV_GENERATIONS = ("V1", "V2")
ARCHITECTURES = ("x64", "Arm64")
SKUS = (
    "Standard_LRS",
    "Premium_LRS",
    "StandardSSD_LRS",
    "UltraSSD_LRS",
    "Premium_ZRS",
    "StandardSSD_ZRS",
    "PremiumV2_LRS",
)
ACCESS = ("Read", "Write")

READ_ONLY = (
    "id",
    "name",
    "type",
    "systemData",
    "managedBy",
    "managedByExtended",
    "properties.timeCreated",
    "properties.diskSizeBytes",
    "properties.uniqueId",
    "properties.provisioningState",
    "properties.diskState",
    "properties.completionPercent",
    "properties.LastOwnershipUpdateTime",
    "properties.shareInfo",
    "properties.propertyUpdatesInProgress",
    "properties.creationData.sourceUniqueId",
)
UPDATABLE = {"tags"}


@dataclass(frozen=True)
class Creation:
    """How a disk or snapshot gets its bytes."""

    option: str
    size_bytes: int | None = None  # Empty: raw size; Upload: the whole VHD (raw + footer)
    source_id: str | None = None  # Copy: a disk or snapshot; FromImage: an image version (or latest)
    source_lun: int | None = None  # FromImage: a data disk of the version
    source_uri: str | None = None  # Import
    storage_account_id: str | None = None


def raw_size_gb(image_size: int) -> int:
    """diskSizeGB as Azure reports it: the raw part rounded up to whole GiB."""
    return -(-(image_size - FOOTER) // GIB)


def normalize_disk(body: Body, *, snapshot: bool = False) -> tuple[Body, Creation]:
    kind = "snapshot" if snapshot else "disk"
    body = strip_read_only(body, READ_ONLY)
    check_tags(body)
    sku = require_object(body, "sku", required=False)
    if sku:
        check_enum(sku, "name", SKUS, "sku.name")
        body["sku"] = sku
    props = require_object(body, "properties", required=True)
    body["properties"] = props
    check_enum(props, "osType", OS_TYPES, "properties.osType")
    check_enum(props, "hyperVGeneration", HYPERV_GENERATIONS, "properties.hyperVGeneration")
    caps = require_object(props, "supportedCapabilities", required=False, target="properties.supportedCapabilities")
    if caps:
        check_enum(caps, "architecture", ARCHITECTURES, "properties.supportedCapabilities.architecture")
        props["supportedCapabilities"] = caps
    if "incremental" in props and not isinstance(props["incremental"], bool):
        raise InvalidParameter("'properties.incremental' must be true or false.", "properties.incremental")
    data = require_object(props, "creationData", required=True, target="properties.creationData")
    options = SNAPSHOT_CREATE_OPTIONS if snapshot else DISK_CREATE_OPTIONS
    option = data.get("createOption")
    if isinstance(option, str) and option.lower() not in {o.lower() for o in options}:
        raise InvalidParameter(
            f"createOption '{option}' is not supported for a {kind}; use one of {', '.join(options)}.",
            "properties.creationData.createOption",
        )
    option = check_enum(data, "createOption", options, "properties.creationData.createOption", required=True)
    size_gb = check_int(props, "diskSizeGB", "properties.diskSizeGB", minimum=1, maximum=MAX_DISK_GB)

    if option == "Empty":
        if size_gb is None:
            raise MissingRequiredProperty("An Empty disk needs properties.diskSizeGB.", "properties.diskSizeGB")
        return body, Creation(option, size_bytes=size_gb * GIB)
    if option == "Upload":
        upload = check_int(
            data,
            "uploadSizeBytes",
            "properties.creationData.uploadSizeBytes",
            minimum=MIB + FOOTER,
            maximum=MAX_DISK_GB * GIB + FOOTER,
        )
        if upload is None:
            raise MissingRequiredProperty(
                "An Upload disk needs properties.creationData.uploadSizeBytes.",
                "properties.creationData.uploadSizeBytes",
            )
        if (upload - FOOTER) % MIB:
            raise InvalidParameter(
                f"uploadSizeBytes {upload} is not VHD sized: it must be a multiple of 1 MiB (1048576) plus the "
                f"512-byte footer, e.g. {((upload - FOOTER) // MIB + 1) * MIB + FOOTER}.",
                "properties.creationData.uploadSizeBytes",
            )
        return body, Creation(option, size_bytes=upload)
    if option == "Copy":
        source = check_string(data, "sourceResourceId", "properties.creationData.sourceResourceId", required=True)
        rid = parse_resource_id(source)
        if rid is None or not rid.chain or rid.chain[-1][0] not in ("disks", "snapshots"):
            raise InvalidParameter(
                f"sourceResourceId '{source}' is not the id of a disk or snapshot.",
                "properties.creationData.sourceResourceId",
            )
        return body, Creation(option, source_id=source)
    if option == "FromImage":
        ref = require_object(
            data, "galleryImageReference", required=False, target="properties.creationData.galleryImageReference"
        )
        if not ref:
            raise MissingRequiredProperty(
                "FromImage needs properties.creationData.galleryImageReference.id (a gallery image version).",
                "properties.creationData.galleryImageReference",
            )
        source = check_string(ref, "id", "properties.creationData.galleryImageReference.id", required=True)
        lun = check_int(ref, "lun", "properties.creationData.galleryImageReference.lun", minimum=0)
        rid = parse_resource_id(source)
        if rid is None or [t for t, _ in rid.chain] != ["galleries", "images", "versions"]:
            raise InvalidParameter(
                f"galleryImageReference.id '{source}' is not the id of a gallery image version.",
                "properties.creationData.galleryImageReference.id",
            )
        return body, Creation(option, source_id=source, source_lun=lun)
    uri = check_string(data, "sourceUri", "properties.creationData.sourceUri", required=True)
    account = check_string(data, "storageAccountId", "properties.creationData.storageAccountId", required=True)
    if not uri.lower().startswith(("https://", "http://")):
        raise InvalidParameter(
            f"sourceUri '{uri}' is not an http(s) URL of a VHD blob.", "properties.creationData.sourceUri"
        )
    return body, Creation(option, source_uri=uri, storage_account_id=account)


def check_disk_update(old: Body, new: Body) -> None:
    forbid_changes(old, new, UPDATABLE, "disk")


def check_grant(body: Body, disk_state: str, name: str) -> tuple[str, int]:
    """Validate a beginGetAccess request against the disk's state; the access and its duration."""
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object with access and durationInSeconds.")
    access = check_enum(body, "access", ACCESS, "access", required=True)
    seconds = check_int(body, "durationInSeconds", "durationInSeconds", minimum=1, maximum=MAX_SAS_SECONDS)
    if seconds is None:
        raise MissingRequiredProperty("durationInSeconds is required.", "durationInSeconds")
    if access == "Write" and disk_state not in ("ReadyToUpload", "ActiveUpload"):
        raise OperationNotAllowed(
            f"Write access needs a disk created with createOption Upload; '{name}' is {disk_state}.", "access"
        )
    if access == "Read" and disk_state not in ("Unattached", "ActiveSAS"):
        raise OperationNotAllowed(f"Read access is not possible while the disk '{name}' is {disk_state}.", "access")
    return access, seconds


def state_after_grant(access: str) -> str:
    return "ActiveUpload" if access == "Write" else "ActiveSAS"


def state_after_end(disk_state: str) -> str:
    return {"ActiveUpload": "Unattached", "ActiveSAS": "Unattached"}.get(disk_state, disk_state)
