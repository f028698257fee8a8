"""Managed images (`Microsoft.Compute/images`): an OS disk and data disks, each from one managed disk, snapshot or
VHD blob, frozen at creation.

Each disk of `properties.storageProfile` names exactly one source: `managedDisk.id`, `snapshot.id` or `blobUri`.
A managed image from a virtual machine (`sourceVirtualMachine`) is not supported. Only tags change after creation.
The server fills what Azure fills: `caching`, `storageAccountType`, `zoneResilient`, `dataDisks` when absent, and
once the sources are read, each disk's `diskSizeGB` and the image's `hyperVGeneration` (a source that states one
decides, else V1). A request that leaves those out on a later PUT means "as stored", so re-sending the creating
request is no change.

`normalize_image` validates a body; `image_disks` reads a normalized spec into the `ImageDisk`s the app resolves;
`check_source_facts` compares a disk with what its source turned out to be.
"""

from __future__ import annotations

from dataclasses import dataclass

from .disks import SKUS
from .errors import InvalidParameter, MissingRequiredProperty, NotSupported
from .ids import ResourceId, parse_resource_id
from .validate import (
    Body,
    check_enum,
    check_int,
    check_tags,
    check_uri,
    data_disk_luns,
    forbid_changes,
    require_object,
    strip_read_only,
)

API_VERSIONS = (
    "2016-04-30-preview",
    "2017-03-30",
    "2017-12-01",
    "2018-04-01",
    "2018-06-01",
    "2018-10-01",
    "2019-03-01",
    "2019-07-01",
    "2019-12-01",
    "2020-06-01",
    "2020-12-01",
    "2021-03-01",
    "2021-04-01",
    "2021-07-01",
    "2021-11-01",
    "2022-03-01",
    "2022-08-01",
    "2022-11-01",
    "2023-03-01",
    "2023-07-01",
    "2023-09-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-04-01",
    "2025-11-01",
    "2026-04-01",
)

STORAGE = "properties.storageProfile"
OS_TYPES = ("Windows", "Linux")
OS_STATES = ("Generalized", "Specialized")
HYPERV_GENERATIONS = ("V1", "V2")
CACHING = ("None", "ReadOnly", "ReadWrite")
# An image's disks become managed disks: the same storage types.
STORAGE_ACCOUNT_TYPES = SKUS
# Azure VMs attach data disks at LUN 0-63.
MAX_LUN = 63
MAX_DISK_GB = 32767
SOURCE_KEYS = ("managedDisk", "snapshot", "blobUri")

READ_ONLY = ("id", "name", "type", "systemData", "properties.provisioningState")
UPDATABLE = {"tags"}


@dataclass(frozen=True)
class ImageDisk:
    """One disk of an image and where its bytes come from."""

    slot: str  # "os" or "data:<lun>": the image's disk_contents slot
    lun: int | None  # None for the OS disk
    kind: str  # "disk", "snapshot" or "vhd"
    id: ResourceId | None  # the managed disk or snapshot
    uri: str | None  # the VHD blob
    size_gb: int | None  # diskSizeGB as stated or filled
    target: str  # the property naming the source, for error messages
    at: str  # the disk's own path, e.g. properties.storageProfile.dataDisks[0]


# -- normalization -----------------------------------------------------------------------------------------------
def _source_id(disk: Body, key: str, resource: str, at: str) -> str:
    target = f"{at}.{key}.id"
    ref = require_object(disk, key, required=True, target=f"{at}.{key}")
    value = ref.get("id")
    if value is None:
        raise MissingRequiredProperty(f"Required property '{target}' is missing.", target)
    rid = parse_resource_id(value) if isinstance(value, str) else None
    if (
        rid is None
        or (rid.namespace or "").lower() != "microsoft.compute"
        or len(rid.chain) != 1
        or rid.chain[0][0].lower() != resource
    ):
        noun = "managed disk" if resource == "disks" else "snapshot"
        raise InvalidParameter(
            f"'{value}' is not the id of a {noun} (.../Microsoft.Compute/{resource}/{{name}}) for '{target}'.", target
        )
    ref["id"] = rid.text
    return rid.text


def _normalize_disk(disk: Body, at: str, *, os_disk: bool) -> None:
    for key in [k for k, v in disk.items() if v is None]:
        del disk[key]
    given = [k for k in SOURCE_KEYS if k in disk]
    if not given:
        raise MissingRequiredProperty(
            f"'{at}' has no source; give one of managedDisk.id (a managed disk), snapshot.id (a snapshot) or "
            "blobUri (a VHD blob in a storage account).",
            at,
        )
    if len(given) > 1:
        raise InvalidParameter(
            f"'{at}' gives {' and '.join(given)}; a disk has exactly one source.", f"{at}.{given[1]}"
        )
    if "managedDisk" in disk:
        _source_id(disk, "managedDisk", "disks", at)
    elif "snapshot" in disk:
        _source_id(disk, "snapshot", "snapshots", at)
    else:
        check_uri(disk, "blobUri", f"{at}.blobUri")
    if disk.get("diskEncryptionSet") is not None:
        raise NotSupported(
            f"Disk encryption sets are not supported by this server; leave out '{at}.diskEncryptionSet'.",
            f"{at}.diskEncryptionSet",
        )
    check_enum(disk, "caching", CACHING, f"{at}.caching", default="ReadWrite" if os_disk else "None")
    account_type = check_enum(
        disk, "storageAccountType", STORAGE_ACCOUNT_TYPES, f"{at}.storageAccountType", default="Standard_LRS"
    )
    if os_disk and account_type == "UltraSSD_LRS":
        raise InvalidParameter("UltraSSD_LRS is for data disks only, not the OS disk.", f"{at}.storageAccountType")
    check_int(disk, "diskSizeGB", f"{at}.diskSizeGB", minimum=1, maximum=MAX_DISK_GB)


def _data_disks(profile: Body) -> list[Body]:
    target = f"{STORAGE}.dataDisks"
    data = profile.get("dataDisks")
    if data is None:
        data = profile["dataDisks"] = []
    for i, disk, _lun in data_disk_luns(data, target, "dataDisks", MAX_LUN):
        at = f"{target}[{i}]"
        _normalize_disk(disk, at, os_disk=False)
    return data


def _keep_stored_facts(props: Body, stored: Body) -> None:
    """On a later PUT, server-filled facts left out of the request read as the stored ones."""
    stored_props = stored.get("properties", {})
    if "hyperVGeneration" in stored_props:
        props.setdefault("hyperVGeneration", stored_props["hyperVGeneration"])
    stored_profile = stored_props.get("storageProfile", {})
    profile = props["storageProfile"]
    stored_os = stored_profile.get("osDisk", {})
    if "diskSizeGB" in stored_os:
        profile["osDisk"].setdefault("diskSizeGB", stored_os["diskSizeGB"])
    stored_data = {d.get("lun"): d for d in stored_profile.get("dataDisks", []) if isinstance(d, dict)}
    for disk in profile["dataDisks"]:
        old = stored_data.get(disk["lun"], {})
        if "diskSizeGB" in old:
            disk.setdefault("diskSizeGB", old["diskSizeGB"])


def normalize_image(body: Body, existing: Body | None = None) -> Body:
    """The canonical spec of an image request; `existing` is the stored image when the request replaces it."""
    body = strip_read_only(body, READ_ONLY)
    check_tags(body)
    if body.get("extendedLocation") is not None:
        raise NotSupported(
            "Images in extended locations (edge zones) are not supported by this server.", "extendedLocation"
        )
    body.pop("extendedLocation", None)
    props = require_object(body, "properties", required=True)
    body["properties"] = props
    if props.get("sourceVirtualMachine") is not None:
        raise NotSupported(
            "Creating a managed image from a virtual machine (properties.sourceVirtualMachine) is "
            "not supported; capture the VM's disks as snapshots and name them in "
            "properties.storageProfile.",
            "properties.sourceVirtualMachine",
        )
    props.pop("sourceVirtualMachine", None)
    check_enum(props, "hyperVGeneration", HYPERV_GENERATIONS, "properties.hyperVGeneration")
    profile = require_object(props, "storageProfile", required=True, target=STORAGE)
    props["storageProfile"] = profile
    os_disk = require_object(profile, "osDisk", required=True, target=f"{STORAGE}.osDisk")
    profile["osDisk"] = os_disk
    check_enum(os_disk, "osType", OS_TYPES, f"{STORAGE}.osDisk.osType", required=True)
    check_enum(os_disk, "osState", OS_STATES, f"{STORAGE}.osDisk.osState", required=True)
    _normalize_disk(os_disk, f"{STORAGE}.osDisk", os_disk=True)
    _data_disks(profile)
    zone_resilient = profile.get("zoneResilient")
    if zone_resilient is None:
        profile["zoneResilient"] = False
    elif not isinstance(zone_resilient, bool):
        raise InvalidParameter(
            f"'{STORAGE}.zoneResilient' must be true or false, not {zone_resilient!r}.", f"{STORAGE}.zoneResilient"
        )
    if existing is not None:
        _keep_stored_facts(props, existing)
    return body


def check_image_update(old: Body, new: Body) -> None:
    forbid_changes(old, new, UPDATABLE, "image")


# -- reading a spec ----------------------------------------------------------------------------------------------
def _image_disk(disk: Body, lun: int | None, at: str) -> ImageDisk:
    slot = "os" if lun is None else f"data:{lun}"
    size = disk.get("diskSizeGB")
    if "blobUri" in disk:
        return ImageDisk(slot, lun, "vhd", None, disk["blobUri"], size, f"{at}.blobUri", at)
    key, kind = ("managedDisk", "disk") if "managedDisk" in disk else ("snapshot", "snapshot")
    return ImageDisk(slot, lun, kind, parse_resource_id(disk[key]["id"]), None, size, f"{at}.{key}.id", at)


def image_disks(spec: Body) -> list[ImageDisk]:
    """The disks of a normalized image spec: the OS disk first, then the data disks in request order."""
    profile = spec["properties"]["storageProfile"]
    disks = [_image_disk(profile["osDisk"], None, f"{STORAGE}.osDisk")]
    disks += [_image_disk(d, d["lun"], f"{STORAGE}.dataDisks[{i}]") for i, d in enumerate(profile["dataDisks"])]
    return disks


def size_gb_fits(disk: ImageDisk, source_gb: int, source: str) -> int:
    """The disk's diskSizeGB: the source's unless the request asks for more; asking for less is refused."""
    if disk.size_gb is None:
        return source_gb
    if disk.size_gb < source_gb:
        raise InvalidParameter(
            f"'{disk.at}.diskSizeGB' is {disk.size_gb}, smaller than its source {source} ({source_gb} GB); a disk "
            "can grow, never shrink.",
            f"{disk.at}.diskSizeGB",
        )
    return disk.size_gb


def check_source_facts(spec: Body, disk: ImageDisk, source: Body, source_text: str) -> None:
    """An OS disk's source that states its OS type or Hyper-V generation must agree with the image; a generation
    the request left out is taken from the source."""
    if disk.lun is not None:
        return
    props, src = spec["properties"], source.get("properties", {})
    os_type = props["storageProfile"]["osDisk"]["osType"]
    if src.get("osType") and src["osType"] != os_type:
        raise InvalidParameter(
            f"The OS disk's source {source_text} is a {src['osType']} disk; the image says osType {os_type}.",
            f"{STORAGE}.osDisk.osType",
        )
    generation = src.get("hyperVGeneration")
    if generation and props.get("hyperVGeneration", generation) != generation:
        raise InvalidParameter(
            f"The OS disk's source {source_text} is Hyper-V generation {generation}; the image "
            f"says {props['hyperVGeneration']}.",
            "properties.hyperVGeneration",
        )
    if generation:
        props.setdefault("hyperVGeneration", generation)
