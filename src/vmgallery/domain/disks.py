"""Managed disks and snapshots: creation options, sizes, updates, and the disk-state machine of SAS access.

A disk's bytes are a disk image: the raw disk (whole MiBs) followed by the 512-byte VHD footer, which is exactly
what an Azure upload writes and what a Read SAS serves (docs/storage-format.md).

Azure echoes more than a client sends: the sku's tier, platform-key encryption, the network access policy, and for
disks the performance (IOPS, MB/s) of the sku at that size, from the documented tables below. vmgallery stores every
disk the same way, so these describe what the disk is billed and promised as in Azure, not how fast it is here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import (
    InvalidParameter,
    MissingRequiredProperty,
    NotSupported,
    OperationNotAllowed,
    PropertyChangeNotAllowed,
)
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
SNAPSHOT_CREATE_OPTIONS = ("Empty", "Copy", "Import")
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
SNAPSHOT_SKUS = ("Standard_LRS", "Premium_LRS", "Standard_ZRS")
SKU_TIERS = {
    "Standard_LRS": "Standard",
    "Standard_ZRS": "Standard",
    "Premium_LRS": "Premium",
    "Premium_ZRS": "Premium",
    "StandardSSD_LRS": "StandardSSD",
    "StandardSSD_ZRS": "StandardSSD",
    "UltraSSD_LRS": "Ultra",
    "PremiumV2_LRS": "PremiumV2",
}
# Size ceilings in GiB with the IOPS and MB/s Azure documents for each size (managed disk pricing and
# "Azure managed disk types"). Premium SSD sizes are also its performance tiers (properties.tier).
PREMIUM_TIERS = (
    ("P1", 4, 120, 25),
    ("P2", 8, 120, 25),
    ("P3", 16, 120, 25),
    ("P4", 32, 120, 25),
    ("P6", 64, 240, 50),
    ("P10", 128, 500, 100),
    ("P15", 256, 1100, 125),
    ("P20", 512, 2300, 150),
    ("P30", 1024, 5000, 200),
    ("P40", 2048, 7500, 250),
    ("P50", 4096, 7500, 250),
    ("P60", 8192, 16000, 500),
    ("P70", 16384, 18000, 750),
    ("P80", 32767, 20000, 900),
)
STANDARD_SSD_SIZES = ((4096, 500, 60), (8192, 2000, 400), (16384, 4000, 600), (32767, 6000, 750))
STANDARD_HDD_SIZES = ((4096, 500, 60), (8192, 1300, 300), (16384, 2000, 500), (32767, 2000, 500))
# Ultra and Premium SSD v2 performance is chosen per disk; a disk that names none gets Premium SSD v2's baseline.
PROVISIONED_DEFAULT = (3000, 125)
NETWORK_ACCESS_POLICIES = ("AllowAll", "AllowPrivate", "DenyAll")
PUBLIC_NETWORK_ACCESS = ("Enabled", "Disabled")
DATA_ACCESS_AUTH_MODES = ("AzureActiveDirectory", "None")
PLATFORM_KEY = "EncryptionAtRestWithPlatformKey"
ENCRYPTION_TYPES = (PLATFORM_KEY, "EncryptionAtRestWithCustomerKey", "EncryptionAtRestWithPlatformAndCustomerKeys")
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
    "properties.incrementalSnapshotFamilyId",
    "properties.burstingEnabledTime",
)
# Server facts an update keeps. The size in bytes is not among them: a resize sets it (app/disks.update_disk).
CARRIED = tuple(p for p in READ_ONLY if p != "properties.diskSizeBytes")
# What the spec's DiskUpdateProperties and SnapshotUpdateProperties accept (besides tags and sku).
DISK_UPDATABLE = {
    "tags",
    "sku",
    *(
        f"properties.{p}"
        for p in (
            "osType",
            "diskSizeGB",
            "encryptionSettingsCollection",
            "diskIOPSReadWrite",
            "diskMBpsReadWrite",
            "diskIOPSReadOnly",
            "diskMBpsReadOnly",
            "maxShares",
            "encryption",
            "networkAccessPolicy",
            "diskAccessId",
            "tier",
            "burstingEnabled",
            "purchasePlan",
            "supportedCapabilities",
            "supportsHibernation",
            "publicNetworkAccess",
            "dataAccessAuthMode",
            "optimizedForFrequentAttach",
        )
    ),
}
SNAPSHOT_UPDATABLE = {
    "tags",
    "sku",
    *(
        f"properties.{p}"
        for p in (
            "osType",
            "diskSizeGB",
            "encryptionSettingsCollection",
            "encryption",
            "networkAccessPolicy",
            "diskAccessId",
            "supportsHibernation",
            "publicNetworkAccess",
            "dataAccessAuthMode",
            "supportedCapabilities",
        )
    ),
}


@dataclass(frozen=True)
class Creation:
    """How a disk or snapshot gets its bytes."""

    option: str
    size_bytes: int | None = None  # Empty: raw size; Upload: the whole VHD (raw + footer)
    source_id: str | None = None  # Copy: a disk or snapshot; FromImage: an image version (or latest)
    source_lun: int | None = None  # FromImage: a data disk of the version
    source_uri: str | None = None  # Import
    storage_account_id: str | None = None
    # FromImage: which key of galleryImageReference names the version: `id` (the owner's resource id),
    # `sharedGalleryImageId` or `communityGalleryImageId` (the consumer views' ids, domain.sharing).
    source_key: str = "id"


GALLERY_REFERENCE_KEYS = ("id", "sharedGalleryImageId", "communityGalleryImageId")


def raw_size_gb(image_size: int) -> int:
    """diskSizeGB as Azure reports it: the raw part rounded up to whole GiB."""
    return -(-(image_size - FOOTER) // GIB)


def normalize_disk(body: Body, *, snapshot: bool = False) -> tuple[Body, Creation]:
    kind = "snapshot" if snapshot else "disk"
    body = strip_read_only(body, READ_ONLY)
    check_tags(body)
    sku = require_object(body, "sku", required=False)
    check_enum(sku, "name", SNAPSHOT_SKUS if snapshot else SKUS, "sku.name", default="Standard_LRS")
    body["sku"] = sku
    props = require_object(body, "properties", required=True)
    body["properties"] = props
    check_enum(props, "osType", OS_TYPES, "properties.osType")
    check_enum(props, "hyperVGeneration", HYPERV_GENERATIONS, "properties.hyperVGeneration")
    caps = require_object(props, "supportedCapabilities", required=False, target="properties.supportedCapabilities")
    if caps:
        check_enum(caps, "architecture", ARCHITECTURES, "properties.supportedCapabilities.architecture")
        props["supportedCapabilities"] = caps
    _normalize_settings(props, snapshot)
    if snapshot:
        incremental = _check_bool(props, "incremental", default=False)
        if incremental and sku["name"] == "Premium_LRS":
            raise InvalidParameter(
                "An incremental snapshot is kept on standard storage; use sku Standard_LRS or Standard_ZRS, not "
                "Premium_LRS.",
                "sku.name",
            )
    else:
        _check_bool(props, "incremental")
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

    if size_gb is not None:
        fill_performance(body, snapshot=snapshot)
    if option == "Empty":
        if size_gb is None:
            raise MissingRequiredProperty(f"An Empty {kind} needs properties.diskSizeGB.", "properties.diskSizeGB")
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
                "FromImage needs properties.creationData.galleryImageReference.id (a gallery image version), or its "
                "sharedGalleryImageId or communityGalleryImageId.",
                "properties.creationData.galleryImageReference",
            )
        given_keys = [k for k in GALLERY_REFERENCE_KEYS if ref.get(k) is not None]
        if len(given_keys) > 1:
            raise InvalidParameter(
                f"galleryImageReference names its version twice ({' and '.join(given_keys)}); give only one of "
                f"{', '.join(GALLERY_REFERENCE_KEYS)}.",
                f"properties.creationData.galleryImageReference.{given_keys[1]}",
            )
        lun = check_int(ref, "lun", "properties.creationData.galleryImageReference.lun", minimum=0)
        if given_keys and given_keys[0] != "id":
            key = given_keys[0]
            source = check_string(ref, key, f"properties.creationData.galleryImageReference.{key}", required=True)
            return body, Creation(option, source_id=source, source_lun=lun, source_key=key)
        source = check_string(ref, "id", "properties.creationData.galleryImageReference.id", required=True)
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


def _check_bool(props: Body, key: str, *, default: bool | None = None) -> bool | None:
    value = props.get(key)
    if value is None:
        if default is None:
            props.pop(key, None)
            return None
        props[key] = value = default
    if not isinstance(value, bool):
        raise InvalidParameter(f"'properties.{key}' must be true or false, not {value!r}.", f"properties.{key}")
    return value


def _normalize_settings(props: Body, snapshot: bool) -> None:
    """The settings Azure stores and echoes; defaults written out as Azure answers them."""
    check_enum(
        props, "networkAccessPolicy", NETWORK_ACCESS_POLICIES, "properties.networkAccessPolicy", default="AllowAll"
    )
    check_enum(props, "publicNetworkAccess", PUBLIC_NETWORK_ACCESS, "properties.publicNetworkAccess")
    check_enum(props, "dataAccessAuthMode", DATA_ACCESS_AUTH_MODES, "properties.dataAccessAuthMode")
    check_string(props, "diskAccessId", "properties.diskAccessId")
    encryption = require_object(props, "encryption", required=False, target="properties.encryption")
    check_enum(encryption, "type", ENCRYPTION_TYPES, "properties.encryption.type", default=PLATFORM_KEY)
    if encryption["type"] != PLATFORM_KEY or encryption.get("diskEncryptionSetId") is not None:
        raise NotSupported(
            "Disk encryption sets (customer-managed keys) are not supported by this server; data is encrypted at "
            f"rest with platform keys ({PLATFORM_KEY}).",
            "properties.encryption",
        )
    encryption.pop("diskEncryptionSetId", None)
    props["encryption"] = encryption
    for key in ("supportsHibernation",) if snapshot else ("supportsHibernation", "burstingEnabled"):
        _check_bool(props, key)
    if snapshot:
        return
    _check_bool(props, "optimizedForFrequentAttach")
    check_int(props, "maxShares", "properties.maxShares", minimum=1)
    for key in ("diskIOPSReadWrite", "diskMBpsReadWrite", "diskIOPSReadOnly", "diskMBpsReadOnly"):
        check_int(props, key, f"properties.{key}", minimum=1, maximum=2**53)
    tier = check_string(props, "tier", "properties.tier")
    if tier is not None and tier not in {t[0] for t in PREMIUM_TIERS}:
        raise InvalidParameter(
            f"'{tier}' is not a performance tier; Premium SSD tiers are {', '.join(t[0] for t in PREMIUM_TIERS)}.",
            "properties.tier",
        )


def fill_performance(body: Body, *, snapshot: bool = False) -> None:
    """sku.tier, and for a disk of known size its performance as Azure documents it for the sku at that size.

    A Premium SSD disk runs at its size's tier or a higher one it asks for (properties.tier); other skus have no
    tier (one carried over from before a sku change is dropped). Ultra and Premium SSD v2 keep the IOPS and MB/s
    they ask for; for the other skus those are the sku's and a request's values are replaced.
    """
    sku = body["sku"]
    sku["tier"] = SKU_TIERS[sku["name"]]
    props = body["properties"]
    size = props.get("diskSizeGB")
    if snapshot or size is None:
        return
    if sku["tier"] == "Premium":
        names = [t[0] for t in PREMIUM_TIERS]
        baseline = next(i for i, t in enumerate(PREMIUM_TIERS) if size <= t[1])
        asked = names.index(props["tier"]) if props.get("tier") in names else 0
        name, _cap, iops, mbps = PREMIUM_TIERS[max(baseline, asked)]
        props["tier"] = name
    else:
        props.pop("tier", None)
        if sku["tier"] in ("Ultra", "PremiumV2"):
            iops = props.get("diskIOPSReadWrite", PROVISIONED_DEFAULT[0])
            mbps = props.get("diskMBpsReadWrite", PROVISIONED_DEFAULT[1])
        else:
            table = STANDARD_SSD_SIZES if sku["tier"] == "StandardSSD" else STANDARD_HDD_SIZES
            _cap, iops, mbps = next(t for t in table if size <= t[0])
    props["diskIOPSReadWrite"], props["diskMBpsReadWrite"] = iops, mbps


def check_disk_update(old: Body, new: Body, *, snapshot: bool = False) -> None:
    """What the spec's update model lists may change; a size only grows; Ultra disks keep their sku (Azure cannot
    convert them). Both arguments are normalized specs."""
    forbid_changes(old, new, SNAPSHOT_UPDATABLE if snapshot else DISK_UPDATABLE, "snapshot" if snapshot else "disk")
    before, after = old["properties"].get("diskSizeGB"), new["properties"].get("diskSizeGB")
    if before is not None and after is not None and after < before:
        raise PropertyChangeNotAllowed(
            f"diskSizeGB can only grow: the {'snapshot' if snapshot else 'disk'} is {before} GB, the request asks "
            f"for {after} GB. Shrinking a disk is not supported.",
            "properties.diskSizeGB",
        )
    skus = old["sku"]["name"], new["sku"]["name"]
    if skus[0] != skus[1] and "UltraSSD_LRS" in skus:
        raise PropertyChangeNotAllowed(
            f"The sku of a disk cannot change from {skus[0]} to {skus[1]}: Ultra disks are not converted; copy the "
            "data to a new disk instead.",
            "sku.name",
        )


def check_resize(name: str, disk_state: str, kind: str = "disk") -> None:
    """Azure resizes an unattached disk only: not while it is uploading or its bytes are being read through SAS."""
    if disk_state != "Unattached":
        raise OperationNotAllowed(
            f"The {kind} '{name}' is {disk_state}; its size can change only when it is Unattached "
            "(end the upload or the read access with endGetAccess first).",
            "properties.diskSizeGB",
        )


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
