"""The publishing profile of a gallery image version: where it is replicated, how many replicas, on which storage,
and whether it counts for `latest`.

`normalize_publishing_profile` writes every default out, the way Azure echoes a version: each target region carries
its own regionalReplicaCount, storageAccountType and excludeFromLatest, so a stored spec never leans on a default.
Region names arrive as people type them ("West US") and are stored folded ("westus").
"""

from __future__ import annotations

import copy
from collections.abc import Collection

from .errors import InvalidParameter, NotSupported, PropertyChangeNotAllowed
from .ids import normalize_location
from .validate import Body, check_datetime, check_enum, check_int, check_string, require_object

PROFILE = "properties.publishingProfile"
STORAGE_ACCOUNT_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS")
REPLICATION_MODES = ("Full", "Shallow")
STORAGE_ACCOUNT_STRATEGIES = ("PreferStandard_ZRS", "DefaultStandard_LRS")
MAX_REPLICAS = 100

# Not updatable: a PUT on an existing version that leaves these out keeps the stored value instead of the default.
KEPT_WHEN_OMITTED = ("storageAccountType", "replicationMode", "storageAccountStrategy")


def check_bool(parent: Body, key: str, target: str, *, default: bool | None = None) -> bool | None:
    value = parent.get(key)
    if value is None:
        if default is None:
            parent.pop(key, None)
            return None
        parent[key] = default
        return default
    if not isinstance(value, bool):
        raise InvalidParameter(f"'{target}' must be true or false, not {value!r}.", target)
    return value


def normalize_publishing_profile(props: Body, *, location: str, regions: Collection[str] | None) -> None:
    """Validate `props.publishingProfile` in place and fill its defaults.

    `location` is the version's folded location (its source region); `regions` the configured region names, or None
    to skip that check (when re-reading a stored version after the configuration changed).
    """
    profile = require_object(props, "publishingProfile", required=False, target=PROFILE)
    props["publishingProfile"] = profile
    profile.pop("publishedDate", None)
    replicas = check_int(profile, "replicaCount", f"{PROFILE}.replicaCount", minimum=1, maximum=MAX_REPLICAS)
    if replicas is None:
        replicas = profile["replicaCount"] = 1
    storage = check_enum(
        profile, "storageAccountType", STORAGE_ACCOUNT_TYPES, f"{PROFILE}.storageAccountType", default="Standard_LRS"
    )
    check_enum(profile, "storageAccountStrategy", STORAGE_ACCOUNT_STRATEGIES, f"{PROFILE}.storageAccountStrategy")
    mode = check_enum(profile, "replicationMode", REPLICATION_MODES, f"{PROFILE}.replicationMode", default="Full")
    check_bool(profile, "excludeFromLatest", f"{PROFILE}.excludeFromLatest", default=False)
    check_datetime(profile, "endOfLifeDate", f"{PROFILE}.endOfLifeDate")
    edge = profile.get("targetExtendedLocations")
    if edge:
        raise NotSupported(
            "Extended locations (edge zones) are not supported by this server; leave targetExtendedLocations out.",
            f"{PROFILE}.targetExtendedLocations",
        )
    profile.pop("targetExtendedLocations", None)
    known = tuple(normalize_location(r) for r in regions) if regions is not None else None
    profile["targetRegions"] = _target_regions(profile, location, known, replicas, storage)
    if mode == "Shallow":
        _check_shallow(profile, location)


def _target_regions(
    profile: Body, location: str, known: tuple[str, ...] | None, replicas: int, storage: str
) -> list[Body]:
    target = f"{PROFILE}.targetRegions"
    given = profile.get("targetRegions")
    if given is None:
        given = [{"name": location}]
    if not isinstance(given, list):
        raise InvalidParameter(f"'{target}' must be a list of regions, not {given!r}.", target)
    if not given:
        raise InvalidParameter(
            f"'{target}' is empty; it must list at least the version's own location '{location}'.", target
        )
    out: list[Body] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(given):
        at = f"{target}[{i}]"
        if not isinstance(entry, dict):
            raise InvalidParameter(f"{at} must be an object with a region name, not {entry!r}.", at)
        entry = dict(entry)
        typed = check_string(entry, "name", f"{at}.name", required=True)
        region = normalize_location(typed)
        if known is not None and region not in known:
            raise InvalidParameter(
                f"Target region '{typed}' is not available; configured regions are {', '.join(known)}.",
                f"{at}.name",
            )
        if region in seen:
            raise InvalidParameter(
                f"Target region '{region}' is listed twice: {target}[{seen[region]}] and {target}[{i}].", f"{at}.name"
            )
        seen[region] = i
        count = check_int(entry, "regionalReplicaCount", f"{at}.regionalReplicaCount", minimum=1, maximum=MAX_REPLICAS)
        kind = check_enum(
            entry, "storageAccountType", STORAGE_ACCOUNT_TYPES, f"{at}.storageAccountType", default=storage
        )
        require_object(entry, "encryption", required=False, target=f"{at}.encryption")
        exclude = check_bool(entry, "excludeFromLatest", f"{at}.excludeFromLatest", default=False)
        region_spec: Body = {
            "name": region,
            "regionalReplicaCount": replicas if count is None else count,
            "storageAccountType": kind,
        }
        region_spec.update({k: v for k, v in entry.items() if k not in region_spec and k != "excludeFromLatest"})
        region_spec["excludeFromLatest"] = exclude
        out.append(region_spec)
    if location not in seen:
        raise InvalidParameter(
            f"The version's own location '{location}' (its source region) must be one of its target regions; "
            f"targetRegions lists {', '.join(seen)}.",
            target,
        )
    return out


def _check_shallow(profile: Body, location: str) -> None:
    others = [r["name"] for r in profile["targetRegions"] if r["name"] != location]
    if others:
        raise InvalidParameter(
            f"replicationMode Shallow keeps the version in its source region '{location}' only; targetRegions "
            f"also lists {', '.join(others)}.",
            f"{PROFILE}.targetRegions",
        )
    if profile["replicaCount"] != 1:
        raise InvalidParameter(
            f"replicationMode Shallow allows 1 replica; replicaCount is {profile['replicaCount']}.",
            f"{PROFILE}.replicaCount",
        )
    for i, region in enumerate(profile["targetRegions"]):
        if region["regionalReplicaCount"] != 1:
            raise InvalidParameter(
                f"replicationMode Shallow allows 1 replica; region '{region['name']}' asks for "
                f"{region['regionalReplicaCount']}.",
                f"{PROFILE}.targetRegions[{i}].regionalReplicaCount",
            )


def fill_stored_publishing(old_profile: Body, props: Body) -> None:
    """On a PUT over an existing version: what the body leaves out and may not change anyway keeps its stored value.

    That is the profile's storage type, replication mode and strategy, and the storage type and encryption of every
    region that stays (neither can change for a region, so "not given" can only mean "as before"; Azure's update
    examples answer a region's encryption the request left out).
    """
    profile = props.get("publishingProfile")
    if profile is None:
        profile = props["publishingProfile"] = {}
    if not isinstance(profile, dict):
        return
    for key in KEPT_WHEN_OMITTED:
        if profile.get(key) is None and old_profile.get(key) is not None:
            profile[key] = copy.deepcopy(old_profile[key])
    stored = {
        normalize_location(r["name"]): r
        for r in old_profile.get("targetRegions") or []
        if isinstance(r, dict) and isinstance(r.get("name"), str)
    }
    for entry in profile.get("targetRegions") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        before = stored.get(normalize_location(entry["name"]))
        for key in ("storageAccountType", "encryption"):
            if before is not None and entry.get(key) is None and before.get(key):
                entry[key] = copy.deepcopy(before[key])


def check_publishing_update(old_profile: Body, new_profile: Body) -> None:
    """A region that stays keeps its storage account type (Azure cannot re-home existing replicas)."""
    before = {r["name"]: r["storageAccountType"] for r in old_profile.get("targetRegions", [])}
    for i, region in enumerate(new_profile.get("targetRegions", [])):
        old = before.get(region["name"])
        if old is not None and old != region["storageAccountType"]:
            raise PropertyChangeNotAllowed(
                f"The storage account type of target region '{region['name']}' cannot change from {old} to "
                f"{region['storageAccountType']}; remove the region in one update and add it back in another.",
                f"{PROFILE}.targetRegions[{i}].storageAccountType",
            )
