"""Where a gallery image version's bytes come from (`properties.storageProfile`), and whether they fit its definition.

A version has exactly one kind of source:
- `managedImage`: `storageProfile.source.id` names `.../Microsoft.Compute/images/{name}`;
- `galleryImageVersion`: `storageProfile.source.id` names `.../galleries/{g}/images/{i}/versions/{v}` (v may be
  `latest`);
- `disks`: `osDiskImage.source` (and each `dataDiskImages[].source`) is a managed disk or snapshot id, or a VHD
  blob given as `uri` + `storageAccountId`.
An image or version source already brings its OS and data disks, so it is not combined with disk sources (Azure
rejects the mix too); with such a source `osDiskImage` and `dataDiskImages` only say how disks are cached.

`normalize_storage_profile` validates the body; `version_sources` reads a normalized spec into a `SourceSpec` the
app layer resolves; `check_source_fits` compares what the app learnt about the sources with the image definition.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidParameter, MissingRequiredProperty, NotSupported, PropertyChangeNotAllowed
from .ids import ResourceId, parse_resource_id
from .validate import Body, check_enum, check_uri, data_disk_luns, require_object

STORAGE = "properties.storageProfile"
HOST_CACHING = ("None", "ReadOnly", "ReadWrite")
# Azure VMs attach data disks at LUN 0-63; a version's data disks become such disks.
MAX_LUN = 63
GIB = 2**30
MAX_DATA_DISK_GIB = {"Full": 1024, "Shallow": 32768}

MANAGED_IMAGE, GALLERY_IMAGE_VERSION, DISKS = "managedImage", "galleryImageVersion", "disks"
NOUNS = {MANAGED_IMAGE: "managed image", GALLERY_IMAGE_VERSION: "gallery image version"}
IMAGE_SOURCE_KEYS = ("id", "virtualMachineId", "communityGalleryImageId")
DISK_SOURCE_KEYS = ("id", "uri", "storageAccountId")


@dataclass(frozen=True)
class DiskSource:
    """One disk of a version built from disks."""

    lun: int | None  # None for the OS disk
    kind: str  # "disk", "snapshot" or "vhd"
    id: ResourceId | None  # the managed disk or snapshot
    uri: str | None  # the VHD blob
    storage_account: ResourceId | None  # the VHD's storage account
    target: str  # the property that names this source, for error messages


@dataclass(frozen=True)
class SourceSpec:
    """The sources of a version, for the app layer to look up and copy from."""

    kind: str  # MANAGED_IMAGE, GALLERY_IMAGE_VERSION or DISKS
    id: ResourceId | None  # the managed image or image version; None for DISKS
    os_disk: DiskSource | None  # set for DISKS only
    data_disks: tuple[DiskSource, ...]  # DISKS only, in lun order
    target: str  # the property naming the source of the OS disk

    @property
    def latest(self) -> bool:
        """The source is `.../versions/latest`: the app resolves it to the definition's latest version."""
        return self.kind == GALLERY_IMAGE_VERSION and self.id is not None and self.id.name.lower() == "latest"


@dataclass(frozen=True)
class SourceFacts:
    """What the app learnt from the source resources; None (or a missing lun) means not known."""

    os_type: str | None = None
    os_state: str | None = None
    hyper_v_generation: str | None = None
    architecture: str | None = None
    os_disk_size_bytes: int | None = None
    data_disk_sizes: Mapping[int, int] = field(default_factory=dict)  # lun -> bytes


# -- normalization -----------------------------------------------------------------------------------------------
def _drop_nulls(obj: Body) -> None:
    for key in [k for k, v in obj.items() if v is None]:
        del obj[key]


def _compute_id(value: Any, target: str) -> ResourceId:
    rid = parse_resource_id(value) if isinstance(value, str) else None
    if rid is None or not rid.chain:
        raise InvalidParameter(f"'{value}' is not an ARM resource id for '{target}'.", target)
    return rid


def _types(rid: ResourceId) -> tuple[str, ...]:
    """The id's resource type as lower-cased words, e.g. ("microsoft.compute", "galleries", "images", "versions")."""
    return ((rid.namespace or "").lower(),) + tuple(t.lower() for t, _ in rid.chain)


def image_source_kind(rid: ResourceId) -> str | None:
    types = _types(rid)
    if types == ("microsoft.compute", "images"):
        return MANAGED_IMAGE
    if types == ("microsoft.compute", "galleries", "images", "versions"):
        return GALLERY_IMAGE_VERSION
    return None


def disk_source_kind(rid: ResourceId) -> str | None:
    kinds: dict[tuple[str, ...], str] = {
        ("microsoft.compute", "disks"): "disk",
        ("microsoft.compute", "snapshots"): "snapshot",
    }
    return kinds.get(_types(rid))


def _normalize_image_source(profile: Body) -> None:
    target = f"{STORAGE}.source"
    source = require_object(profile, "source", required=False, target=target)
    _drop_nulls(source)
    if not source:
        profile.pop("source", None)
        return
    if "virtualMachineId" in source:
        raise NotSupported(
            "Creating a version from a virtual machine (storageProfile.source.virtualMachineId) is "
            "not supported yet; capture the VM's disks as snapshots and use "
            "storageProfile.osDiskImage.source.id.",
            f"{target}.virtualMachineId",
        )
    if "communityGalleryImageId" in source:
        raise NotSupported(
            "Creating a version from a community gallery image "
            "(storageProfile.source.communityGalleryImageId) is not supported yet.",
            f"{target}.communityGalleryImageId",
        )
    if "id" not in source:
        raise InvalidParameter(f"'{target}' must have an 'id'; it has {', '.join(sorted(source))}.", target)
    rid = _compute_id(source["id"], f"{target}.id")
    kind = image_source_kind(rid)
    if kind is None:
        if disk_source_kind(rid):
            raise InvalidParameter(
                f"'{source['id']}' is a {disk_source_kind(rid)}; a disk or snapshot source goes in "
                "storageProfile.osDiskImage.source.id (or dataDiskImages[].source.id), not storageProfile.source.id.",
                f"{target}.id",
            )
        if _types(rid) == ("microsoft.compute", "virtualmachines"):
            raise NotSupported(
                "Creating a version from a virtual machine is not supported yet; capture its disks "
                "as snapshots and use storageProfile.osDiskImage.source.id.",
                f"{target}.id",
            )
        raise InvalidParameter(
            f"'{source['id']}' is a {rid.type} id; storageProfile.source.id must name a managed image "
            "(.../Microsoft.Compute/images/{name}) or a gallery image version "
            "(.../Microsoft.Compute/galleries/{g}/images/{i}/versions/{v}).",
            f"{target}.id",
        )
    source["id"] = rid.text


def _normalize_disk_source(disk: Body, target: str) -> bool:
    """Validate `disk.source` in place; True when the disk names a source."""
    target = f"{target}.source"
    source = require_object(disk, "source", required=False, target=target)
    _drop_nulls(source)
    if not source:
        disk.pop("source", None)
        return False
    unknown = sorted(set(source) - set(DISK_SOURCE_KEYS))
    if unknown:
        raise InvalidParameter(
            f"'{target}' has unknown properties {', '.join(unknown)}; a disk source is an "
            "'id' (managed disk or snapshot) or a 'uri' with its 'storageAccountId'.",
            f"{target}.{unknown[0]}",
        )
    if "id" in source:
        if "uri" in source or "storageAccountId" in source:
            raise InvalidParameter(
                f"'{target}' gives both an id and a VHD (uri/storageAccountId); give one.", f"{target}.id"
            )
        rid = _compute_id(source["id"], f"{target}.id")
        if disk_source_kind(rid) is None:
            image_kind = image_source_kind(rid)
            if image_kind:
                raise InvalidParameter(
                    f"'{source['id']}' is a {NOUNS[image_kind]}; it goes in storageProfile.source.id, not {target}.id.",
                    f"{target}.id",
                )
            raise InvalidParameter(
                f"'{source['id']}' is a {rid.type} id; '{target}.id' must name a managed disk "
                "(.../Microsoft.Compute/disks/{name}) or a snapshot (.../Microsoft.Compute/snapshots/{name}).",
                f"{target}.id",
            )
        source["id"] = rid.text
        return True
    for key, other in (("uri", "storageAccountId"), ("storageAccountId", "uri")):
        if key not in source:
            raise InvalidParameter(
                f"A VHD source needs both 'uri' and 'storageAccountId'; '{target}' has only '{other}'.",
                f"{target}.{key}",
            )
    check_uri(source, "uri", f"{target}.uri")
    account = _compute_id(source["storageAccountId"], f"{target}.storageAccountId")
    if _types(account) != ("microsoft.storage", "storageaccounts"):
        raise InvalidParameter(
            f"'{source['storageAccountId']}' is a {account.type} id; '{target}.storageAccountId' "
            "must name a storage account (.../Microsoft.Storage/storageAccounts/{name}).",
            f"{target}.storageAccountId",
        )
    source["storageAccountId"] = account.text
    return True


def _normalize_disk(disk: Body, target: str) -> bool:
    disk.pop("sizeInGB", None)
    check_enum(disk, "hostCaching", HOST_CACHING, f"{target}.hostCaching")
    return _normalize_disk_source(disk, target)


def normalize_storage_profile(props: Body) -> None:
    """Validate `props.storageProfile` in place: exactly one kind of source, unique luns, read-only sizes dropped."""
    profile = require_object(props, "storageProfile", required=True, target=STORAGE)
    _normalize_image_source(profile)
    has_image = "source" in profile

    os_disk = require_object(profile, "osDiskImage", required=False, target=f"{STORAGE}.osDiskImage")
    has_os = _normalize_disk(os_disk, f"{STORAGE}.osDiskImage")
    if not os_disk:
        profile.pop("osDiskImage", None)
    if has_image and has_os:
        raise InvalidParameter(
            "storageProfile.source.id already brings the OS disk; do not also give "
            "storageProfile.osDiskImage.source (use one kind of source).",
            f"{STORAGE}.osDiskImage.source",
        )

    data = profile.get("dataDiskImages")
    if data is None:
        profile.pop("dataDiskImages", None)
        data = []
    for i, disk, lun in data_disk_luns(data, f"{STORAGE}.dataDiskImages", "dataDiskImages", MAX_LUN):
        at = f"{STORAGE}.dataDiskImages[{i}]"
        has_source = _normalize_disk(disk, at)
        if has_image and has_source:
            raise InvalidParameter(
                f"storageProfile.source.id already brings the image's data disks; dataDiskImages[{i}] (lun {lun}) "
                "cannot add a source of its own (use one kind of source).",
                f"{at}.source",
            )
        if not has_image and not has_source:
            raise MissingRequiredProperty(
                f"Data disk dataDiskImages[{i}] (lun {lun}) has no source; give source.id (a managed disk or "
                "snapshot) or source.uri with source.storageAccountId.",
                f"{at}.source",
            )
    if not has_image and not has_os:
        if data:
            raise MissingRequiredProperty(
                "A version built from disks needs an OS disk: storageProfile.osDiskImage.source is missing.",
                f"{STORAGE}.osDiskImage.source",
            )
        raise MissingRequiredProperty(
            "A gallery image version needs a source: storageProfile.source.id (a managed image or another image "
            "version), or storageProfile.osDiskImage.source (a managed disk, a snapshot, or a VHD uri with its "
            "storageAccountId).",
            STORAGE,
        )


# -- reading a spec ----------------------------------------------------------------------------------------------
def _disk_source(disk: Body, lun: int | None, target: str) -> DiskSource:
    source = disk["source"]
    if "id" in source:
        rid = _stored_id(source["id"])
        return DiskSource(lun, _known(disk_source_kind(rid)), rid, None, None, f"{target}.source.id")
    return DiskSource(
        lun, "vhd", None, source["uri"], parse_resource_id(source["storageAccountId"]), f"{target}.source.uri"
    )


def version_sources(spec: Body) -> SourceSpec:
    """The sources of a normalized version spec (as returned by `normalize_version`)."""
    profile = spec["properties"]["storageProfile"]
    if "source" in profile:
        rid = _stored_id(profile["source"]["id"])
        return SourceSpec(_known(image_source_kind(rid)), rid, None, (), f"{STORAGE}.source.id")
    os_disk = _disk_source(profile["osDiskImage"], None, f"{STORAGE}.osDiskImage")
    data = sorted(((d["lun"], i, d) for i, d in enumerate(profile.get("dataDiskImages", []))), key=lambda x: x[0])
    disks = tuple(_disk_source(d, lun, f"{STORAGE}.dataDiskImages[{i}]") for lun, i, d in data)
    return SourceSpec(DISKS, None, os_disk, disks, os_disk.target)


def _stored_id(text: str) -> ResourceId:
    """An id of a normalized spec (checked when the spec was made)."""
    rid = parse_resource_id(text)
    if rid is None:
        raise ValueError(f"a normalized version spec holds '{text}', which is not a resource id")
    return rid


def _known(kind: str | None) -> str:
    if kind is None:
        raise ValueError("a normalized version spec names a source of an unknown kind")
    return kind


# -- a PUT over an existing version ------------------------------------------------------------------------------
def _same(old: Any, new: Any) -> bool:
    if isinstance(old, str) and isinstance(new, str):
        a, b = parse_resource_id(old), parse_resource_id(new)
        if a is not None and b is not None:
            return a.key == b.key
    return bool(old == new)


def _keep_source(old: Any, parent: Body, key: str, keys: tuple[str, ...], target: str) -> None:
    """Keep the stored source when the body leaves it out (or nulls it, as `az sig image-version update` does);
    refuse a different one. An equal one (ids compared without case) is stored as it was first spelt."""
    new = parent.get(key)
    if isinstance(new, dict) and all(v is None for v in new.values()):
        new = None
    if new is None:
        if isinstance(old, dict) and old:
            parent[key] = copy.deepcopy(old)
        else:
            parent.pop(key, None)
        return
    if not isinstance(new, dict):
        return
    old = old if isinstance(old, dict) else {}
    for k in keys:
        if not _same(old.get(k), new.get(k)):
            was = f"'{old[k]}'" if old.get(k) is not None else "not set"
            raise PropertyChangeNotAllowed(
                f"The source of an existing gallery image version cannot change: {target}.{k} is {was}, the request "
                f"gives {new.get(k)!r}. Leave the source out (or null) to keep it.",
                f"{target}.{k}",
            )
    parent[key] = copy.deepcopy(old)


def fill_stored_sources(old_profile: Body, props: Body) -> None:
    """On a PUT over an existing version: keep the stored sources and disk settings the body leaves out."""
    profile = props.get("storageProfile")
    if profile is None:
        props["storageProfile"] = copy.deepcopy(old_profile)
        return
    if not isinstance(profile, dict):
        return
    _keep_source(old_profile.get("source"), profile, "source", IMAGE_SOURCE_KEYS, f"{STORAGE}.source")

    old_os = old_profile.get("osDiskImage") or {}
    os_disk = profile.get("osDiskImage")
    if os_disk is None:
        if old_os:
            profile["osDiskImage"] = copy.deepcopy(old_os)
    elif isinstance(os_disk, dict):
        _keep_source(old_os.get("source"), os_disk, "source", DISK_SOURCE_KEYS, f"{STORAGE}.osDiskImage.source")
        if os_disk.get("hostCaching") is None and old_os.get("hostCaching") is not None:
            os_disk["hostCaching"] = old_os["hostCaching"]

    old_data = {d.get("lun"): d for d in old_profile.get("dataDiskImages") or [] if isinstance(d, dict)}
    data = profile.get("dataDiskImages")
    if data is None:
        if old_data:
            profile["dataDiskImages"] = copy.deepcopy(old_profile["dataDiskImages"])
        return
    if not isinstance(data, list):
        return
    for i, disk in enumerate(data):
        if not isinstance(disk, dict):
            continue
        old_disk = old_data.get(disk.get("lun"), {})
        _keep_source(old_disk.get("source"), disk, "source", DISK_SOURCE_KEYS, f"{STORAGE}.dataDiskImages[{i}].source")
        if disk.get("hostCaching") is None and old_disk.get("hostCaching") is not None:
            disk["hostCaching"] = old_disk["hostCaching"]


# -- fit to the image definition ---------------------------------------------------------------------------------
def _gib(size: int) -> str:
    return f"{size // GIB} GiB" if size % GIB == 0 else f"{size / GIB:.2f} GiB ({size} bytes)"


def check_source_fits(definition: Body, spec: Body, facts: SourceFacts) -> None:
    """Refuse sources whose OS type, OS state, Hyper-V generation or architecture differ from the image definition,
    and data disks above the replication mode's size limit. Facts that are None are not known and not checked."""
    props = definition.get("properties") or {}
    sources = version_sources(spec)
    wanted = (
        ("OS type", "osType", props.get("osType"), facts.os_type),
        ("OS state", "osState", props.get("osState"), facts.os_state),
        ("Hyper-V generation", "hyperVGeneration", props.get("hyperVGeneration") or "V1", facts.hyper_v_generation),
        ("architecture", "architecture", props.get("architecture") or "x64", facts.architecture),
    )
    for label, key, expected, actual in wanted:
        if actual is not None and expected is not None and actual.lower() != expected.lower():
            raise InvalidParameter(
                f"The source's {label} is {actual}, but the image definition's {key} is {expected}; a version's "
                f"source must match its definition.",
                sources.target,
            )

    mode = spec["properties"]["publishingProfile"].get("replicationMode", "Full")
    limit = MAX_DATA_DISK_GIB[mode]
    targets = {d.lun: d.target.rsplit(".source", 1)[0] for d in sources.data_disks}
    for lun, size in sorted(facts.data_disk_sizes.items()):
        if size <= limit * GIB:
            continue
        hint = f"; replicationMode Shallow allows up to {MAX_DATA_DISK_GIB['Shallow']} GiB" if mode == "Full" else ""
        raise InvalidParameter(
            f"The data disk at lun {lun} is {_gib(size)}; with replicationMode {mode} a data disk may be at most "
            f"{limit} GiB{hint}.",
            targets.get(lun, sources.target),
        )
