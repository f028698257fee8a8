"""Image definition rules: required OS facts, features and security types, recommendations, and what may change."""

from __future__ import annotations

from .errors import InvalidParameter, MissingRequiredProperty
from .validate import (
    MAX_DESCRIPTION,
    MAX_EULA,
    Body,
    check_datetime,
    check_enum,
    check_int,
    check_string,
    check_tags,
    check_uri,
    fold_location,
    forbid_changes,
    require_object,
    strip_read_only,
)

OS_TYPES = ("Windows", "Linux")
OS_STATES = ("Generalized", "Specialized")
HYPERV_GENERATIONS = ("V1", "V2")
ARCHITECTURES = ("x64", "Arm64")
DISK_TYPES = (
    "Standard_LRS",
    "StandardSSD_LRS",
    "Premium_LRS",
    "PremiumV2_LRS",
    "UltraSSD_LRS",
    "StandardSSD_ZRS",
    "Premium_ZRS",
)

SECURITY_TYPES = (
    "TrustedLaunchSupported",
    "TrustedLaunch",
    "ConfidentialVmSupported",
    "ConfidentialVM",
    "TrustedLaunchAndConfidentialVmSupported",
)
# These make every VM from the image use the feature, so Azure keeps them out of shared galleries.
PRIVATE_ONLY_SECURITY_TYPES = {"TrustedLaunch": "TrustedLaunchSupported", "ConfidentialVM": "ConfidentialVmSupported"}
BOOLEAN_FEATURES = (
    "IsAcceleratedNetworkSupported",
    "IsHibernateSupported",
    "IsSecureBootSupported",
    "IsMeasuredBootSupported",
)
DISK_CONTROLLER_TYPES = ("SCSI", "SCSI, NVMe")
# Azure's wire name is DiskControllerTypes; the singular is what people often write.
FEATURE_ALIASES = {"diskcontrollertype": "DiskControllerTypes"}
FEATURE_NAMES = ("SecurityType", "DiskControllerTypes") + BOOLEAN_FEATURES

IDENTIFIER_LIMITS = {"publisher": 128, "offer": 64, "sku": 64}

UPDATABLE = {
    "tags",
    "properties.description",
    "properties.recommended",
    "properties.endOfLifeDate",
    "properties.releaseNoteUri",
    "properties.allowUpdateImage",
}

READ_ONLY = ("id", "name", "type", "systemData", "properties.provisioningState")


def _canonical(value: str, allowed: tuple[str, ...]) -> str | None:
    for a in allowed:
        if a.lower() == value.lower():
            return a
    return None


def _normalize_features(props: Body, hyper_v: str, gallery_permissions: str) -> None:
    features = props.get("features")
    if features is None:
        props.pop("features", None)
        return
    if not isinstance(features, list):
        raise InvalidParameter(f"'properties.features' must be a list, not {features!r}.", "properties.features")
    seen: set[str] = set()
    for i, feature in enumerate(features):
        target = f"properties.features[{i}]"
        if not isinstance(feature, dict):
            raise InvalidParameter(f"{target} must be an object with name and value.", target)
        raw_name = check_string(feature, "name", f"{target}.name", required=True)
        name = FEATURE_ALIASES.get(raw_name.lower()) or _canonical(raw_name, FEATURE_NAMES)
        if name is None:
            raise InvalidParameter(
                f"Unknown image feature '{raw_name}'; known features: {', '.join(FEATURE_NAMES)}.", f"{target}.name"
            )
        if name in seen:
            raise InvalidParameter(f"Feature '{name}' is given more than once.", f"{target}.name")
        seen.add(name)
        feature["name"] = name
        value = check_string(feature, "value", f"{target}.value", required=True)
        if name in BOOLEAN_FEATURES:
            canonical = _canonical(value, ("True", "False"))
            if canonical is None:
                raise InvalidParameter(f"Feature {name} must be True or False, not '{value}'.", f"{target}.value")
        elif name == "DiskControllerTypes":
            folded = ", ".join(p.strip() for p in value.split(",") if p.strip())
            canonical = _canonical(folded, DISK_CONTROLLER_TYPES)
            if canonical is None:
                raise InvalidParameter(
                    f"DiskControllerTypes must be 'SCSI' or 'SCSI, NVMe', not '{value}'.", f"{target}.value"
                )
        else:
            canonical = _canonical(value, SECURITY_TYPES)
            if canonical is None:
                raise InvalidParameter(
                    f"SecurityType '{value}' is not valid; allowed: {', '.join(SECURITY_TYPES)}.", f"{target}.value"
                )
            if hyper_v != "V2":
                raise InvalidParameter(
                    f"SecurityType {canonical} needs hyperVGeneration V2; this definition is {hyper_v}.",
                    f"{target}.value",
                )
            if canonical in PRIVATE_ONLY_SECURITY_TYPES and gallery_permissions != "Private":
                raise InvalidParameter(
                    f"SecurityType {canonical} is allowed only in private galleries; this gallery is shared "
                    f"({gallery_permissions}). Use {PRIVATE_ONLY_SECURITY_TYPES[canonical]} instead.",
                    f"{target}.value",
                )
        feature["value"] = canonical
        check_string(feature, "startsAtVersion", f"{target}.startsAtVersion")


def _normalize_range(rec: Body, key: str) -> None:
    target = f"properties.recommended.{key}"
    rng = require_object(rec, key, required=False, target=target)
    lo = check_int(rng, "min", f"{target}.min", minimum=1)
    hi = check_int(rng, "max", f"{target}.max", minimum=1)
    if lo is not None and hi is not None and lo > hi:
        raise InvalidParameter(f"{target}.min ({lo}) must not be greater than {target}.max ({hi}).", f"{target}.min")
    if not rng:
        rec.pop(key, None)


def normalize_definition(body: Body, gallery_permissions: str = "Private") -> Body:
    """Validate an image definition body and return it in canonical form, with defaults filled in."""
    body = strip_read_only(body, READ_ONLY)
    fold_location(body)
    check_tags(body)
    props = require_object(body, "properties", required=True)
    check_enum(props, "osType", OS_TYPES, "properties.osType", required=True)
    check_enum(props, "osState", OS_STATES, "properties.osState", required=True)
    ident = require_object(props, "identifier", required=True, target="properties.identifier")
    for key, limit in IDENTIFIER_LIMITS.items():
        check_string(ident, key, f"properties.identifier.{key}", required=True, max_len=limit)
    hyper_v = check_enum(props, "hyperVGeneration", HYPERV_GENERATIONS, "properties.hyperVGeneration", default="V1")
    check_enum(props, "architecture", ARCHITECTURES, "properties.architecture", default="x64")
    _normalize_features(props, hyper_v, gallery_permissions)

    rec = require_object(props, "recommended", required=False, target="properties.recommended")
    _normalize_range(rec, "vCPUs")
    _normalize_range(rec, "memory")
    if not rec:
        props.pop("recommended", None)

    disallowed = require_object(props, "disallowed", required=False, target="properties.disallowed")
    types = disallowed.get("diskTypes")
    if types is None:
        disallowed.pop("diskTypes", None)
    else:
        if not isinstance(types, list):
            raise InvalidParameter(
                "'properties.disallowed.diskTypes' must be a list.", "properties.disallowed.diskTypes"
            )
        for i, t in enumerate(types):
            canonical = _canonical(t, DISK_TYPES) if isinstance(t, str) else None
            if canonical is None:
                raise InvalidParameter(
                    f"'{t}' is not a disk type; allowed: {', '.join(DISK_TYPES)}.",
                    f"properties.disallowed.diskTypes[{i}]",
                )
            types[i] = canonical
    if not disallowed:
        props.pop("disallowed", None)

    plan = require_object(props, "purchasePlan", required=False, target="properties.purchasePlan")
    given = [k for k in ("name", "publisher", "product") if plan.get(k) is not None]
    if given and len(given) < 3:
        missing = [k for k in ("name", "publisher", "product") if k not in given]
        raise MissingRequiredProperty(
            f"purchasePlan needs name, publisher and product together; missing {', '.join(missing)}.",
            f"properties.purchasePlan.{missing[0]}",
        )
    for k in given:
        check_string(plan, k, f"properties.purchasePlan.{k}", required=True)
    if not plan:
        props.pop("purchasePlan", None)

    check_string(props, "description", "properties.description", max_len=MAX_DESCRIPTION)
    check_string(props, "eula", "properties.eula", max_len=MAX_EULA)
    check_uri(props, "privacyStatementUri", "properties.privacyStatementUri")
    check_uri(props, "releaseNoteUri", "properties.releaseNoteUri")
    check_datetime(props, "endOfLifeDate", "properties.endOfLifeDate")
    if "allowUpdateImage" in props and not isinstance(props["allowUpdateImage"], bool):
        raise InvalidParameter("'properties.allowUpdateImage' must be true or false.", "properties.allowUpdateImage")
    return body


def natural_key(body: Body) -> str:
    """Publisher + offer + sku: unique within a gallery, compared without case as Azure does. A `|` or `\\` inside a
    part is escaped, so no two triples share a key (`a`,`|`,`||` and `a`,`||`,`|` would, joined plainly); a key of
    parts without them reads as before."""
    ident = body["properties"]["identifier"]
    return "|".join(ident[k].lower().replace("\\", "\\\\").replace("|", "\\|") for k in ("publisher", "offer", "sku"))


def describe_identifier(body: Body) -> str:
    ident = body["properties"]["identifier"]
    return f"publisher '{ident['publisher']}', offer '{ident['offer']}', sku '{ident['sku']}'"


def check_definition_update(old: Body, new: Body) -> None:
    updatable = set(UPDATABLE)
    if new.get("properties", {}).get("allowUpdateImage") is True:
        updatable.add("properties.features")
    forbid_changes(old, new, updatable, "gallery image definition")
