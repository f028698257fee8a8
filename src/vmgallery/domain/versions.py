"""Gallery image versions: names, their order, `latest`, and the rules for a version's body.

A version is named `MAJOR.MINOR.PATCH`, three runs of ASCII digits, each at most 2147483647 (a signed 32-bit
integer). Versions order numerically part by part, so 1.0.10 comes after 1.0.9. Azure documents no rule about leading
zeros, so "1.01.0" is a valid name that orders with 1.1.0; ties between such names break on the name text, which keeps
the order total and `latest` deterministic.

`latest` is the highest version that is eligible: fully provisioned, not excluded from latest, and, when resolving
for a region, not excluded in that region and usable there. Which regions are usable is the caller's knowledge (those
where the version's replicas are Completed: domain/replication), handed in through `VersionFacts.usable_regions`.

The body rules live in `publishing` (publishingProfile) and `sources` (storageProfile); this module puts them
together: `normalize_version` returns the canonical spec, `check_version_update` says what an update may change.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from .errors import InvalidParameter
from .ids import normalize_location
from .publishing import check_bool, check_publishing_update, fill_stored_publishing, normalize_publishing_profile
from .sources import fill_stored_sources, normalize_storage_profile
from .validate import Body, check_tags, forbid_changes, require_object, strip_read_only

MAX_PART = 2**31 - 1
PART_NAMES = ("major", "minor", "patch")
NAME_TARGET = "galleryImageVersionName"

READ_ONLY = (
    "id",
    "name",
    "type",
    "systemData",
    "properties.provisioningState",
    "properties.replicationStatus",
    "properties.publishingProfile.publishedDate",
    "properties.safetyProfile.reportedForPolicyViolation",
    "properties.safetyProfile.policyViolations",
    "properties.validationsProfile",
    "properties.imageMetadataProfiles",
    # Measured from the captured disks: a PUT that leaves them out (az's update does) keeps them.
    "properties.storageProfile.osDiskImage.sizeInGB",
    "properties.storageProfile.dataDiskImages[lun].sizeInGB",
)

UPDATABLE = {
    "tags",
    "properties.publishingProfile.targetRegions",
    "properties.publishingProfile.replicaCount",
    "properties.publishingProfile.excludeFromLatest",
    "properties.publishingProfile.endOfLifeDate",
    "properties.safetyProfile",
}


# -- names and order ---------------------------------------------------------------------------------------------
def parse_version_name(name: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a version name, or InvalidParameter saying which part is wrong and why."""
    if not isinstance(name, str) or not name:
        raise InvalidParameter(
            f"The version name {name!r} is empty; expected MAJOR.MINOR.PATCH, e.g. 1.0.0.", NAME_TARGET
        )
    parts = name.split(".")
    if len(parts) != 3:
        raise InvalidParameter(
            f"The version name '{name}' has {len(parts)} part{'s' if len(parts) != 1 else ''}; "
            "expected MAJOR.MINOR.PATCH, e.g. 1.0.0.",
            NAME_TARGET,
        )
    numbers = []
    for label, part in zip(PART_NAMES, parts):
        if not part:
            raise InvalidParameter(f"The {label} part of version name '{name}' is empty.", NAME_TARGET)
        if not (part.isascii() and part.isdigit()):
            raise InvalidParameter(f"The {label} part '{part}' of version name '{name}' is not digits.", NAME_TARGET)
        number = int(part)
        if number > MAX_PART:
            raise InvalidParameter(
                f"The {label} part '{part}' of version name '{name}' exceeds {MAX_PART}.", NAME_TARGET
            )
        numbers.append(number)
    return numbers[0], numbers[1], numbers[2]


def version_key(name: str) -> tuple[int, int, int, str]:
    """Sort key: numeric (major, minor, patch), then the name text for names that differ only in leading zeros."""
    return (*parse_version_name(name), name)


def latest_rank(name: str) -> str:
    """`version_key` as one text that sorts the same byte by byte (fixed-width parts, then the name), so a database
    index can hand out the highest version without reading the others."""
    major, minor, patch = parse_version_name(name)
    return f"{major:010d}.{minor:010d}.{patch:010d}/{name}"


# -- latest ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionFacts:
    """What `latest` needs to know about one version. Region names are folded on construction."""

    name: str
    succeeded: bool  # provisioningState is Succeeded
    excluded_from_latest: bool = False  # publishingProfile.excludeFromLatest
    excluded_in_regions: frozenset[str] = frozenset()  # targetRegions[] with excludeFromLatest
    usable_regions: frozenset[str] = frozenset()  # regions where the version can be used now

    def __post_init__(self) -> None:
        object.__setattr__(self, "excluded_in_regions", frozenset(map(normalize_location, self.excluded_in_regions)))
        object.__setattr__(self, "usable_regions", frozenset(map(normalize_location, self.usable_regions)))

    def eligible(self, region: str | None = None) -> bool:
        if not self.succeeded or self.excluded_from_latest:
            return False
        if region is None:
            return True
        region = normalize_location(region)
        return region in self.usable_regions and region not in self.excluded_in_regions


def version_facts(name: str, body: Body, usable_regions: Iterable[str] | None = None) -> VersionFacts:
    """Facts of a stored version body; usable_regions defaults to all its target regions."""
    props = body.get("properties") or {}
    profile = props.get("publishingProfile") or {}
    regions = [r for r in profile.get("targetRegions") or [] if isinstance(r, dict) and isinstance(r.get("name"), str)]
    return VersionFacts(
        name=name,
        succeeded=props.get("provisioningState") == "Succeeded",
        excluded_from_latest=profile.get("excludeFromLatest") is True,
        excluded_in_regions=frozenset(r["name"] for r in regions if r.get("excludeFromLatest") is True),
        usable_regions=frozenset(r["name"] for r in regions) if usable_regions is None else frozenset(usable_regions),
    )


def latest_version(candidates: Iterable[VersionFacts], region: str | None = None) -> str | None:
    """The name of the highest eligible version (for `region` when given), or None when none is eligible."""
    eligible = [c.name for c in candidates if c.eligible(region)]
    return max(eligible, key=version_key) if eligible else None


# -- the version body --------------------------------------------------------------------------------------------
def merge_stored(stored: Body, body: Body) -> Body:
    """A PUT body over an existing version, completed from the stored one (a copy; the inputs are not changed).

    `az sig image-version update` GETs the version and PUTs it back with every source set to null, so sources the
    body leaves out or nulls are kept; a different source is refused (PropertyChangeNotAllowed naming it). The other
    properties that may not change (storage account type, replication mode and strategy, the storage type of a
    region that stays, disk caching) also keep their stored value when left out, instead of taking the default.
    """
    if not isinstance(body, dict) or not isinstance(stored, dict):
        return body
    body = copy.deepcopy(body)
    props = body.get("properties")
    if props is None:
        props = body["properties"] = {}
    if not isinstance(props, dict):
        return body
    old = stored.get("properties") or {}
    fill_stored_publishing(old.get("publishingProfile") or {}, props)
    fill_stored_sources(old.get("storageProfile") or {}, props)
    return body


def normalize_version(
    body: Body, *, location: str, regions: Collection[str] | None, existing: Body | None = None
) -> Body:
    """Validate a version body and return its canonical spec, defaults filled, read-only fields removed.

    `location`: the version's location (its source region), stored folded. `regions`: the configured region names (None
    skips that check, for re-reading a stored version). `existing`: the stored version when the PUT replaces one;
    then the body is first completed with `merge_stored`.
    """
    if existing is not None:
        body = merge_stored(existing, body)
    body = strip_read_only(body, READ_ONLY)
    location = body["location"] = normalize_location(location)
    check_tags(body)
    props = require_object(body, "properties", required=True)
    normalize_publishing_profile(props, location=location, regions=regions)
    normalize_storage_profile(props)
    profile = props["storageProfile"]
    if "source" in profile:
        # Azure answers an empty OS disk source when the image or version named at the top brings the disks.
        profile.setdefault("osDiskImage", {})["source"] = {}
    safety = require_object(props, "safetyProfile", required=False, target="properties.safetyProfile")
    for key in ("allowDeletionOfReplicatedLocations", "blockDeletionBeforeEndOfLife"):
        check_bool(safety, key, f"properties.safetyProfile.{key}")
    if not safety:
        props.pop("safetyProfile", None)
    return body


def check_version_update(old: Body, new: Body) -> None:
    """Only target regions, replica count, excludeFromLatest, endOfLifeDate, safetyProfile and tags may change, and
    a region that stays keeps its storage account type. Both arguments are normalized specs."""
    forbid_changes(old, new, UPDATABLE, "gallery image version")
    check_publishing_update(old["properties"]["publishingProfile"], new["properties"]["publishingProfile"])
