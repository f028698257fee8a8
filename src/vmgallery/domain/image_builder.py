"""Image Builder's rules, pure: what an image template may hold, what may change, which customizers fit which OS, which
URIs a build may fetch, the build VM's shape, the next version a SharedImage distribution makes, and the deprovision
step a generalized output always ends with.

A template is checked twice before anything is built: here, alone (shape and values), and in the pre-flight
(app/builds.py), against its source and its distribution targets, whose facts (OS type and state, Hyper-V generation,
architecture) are compared by `check_target_fits`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import errors
from .ids import parse_resource_id
from .validate import (
    MAX_URI,
    Body,
    check_enum,
    check_int,
    check_string,
    check_tags,
    flatten,
    fold_location,
    require_object,
    strip_read_only,
)
from .versions import parse_version_name

TYPE = "Microsoft.VirtualMachineImages/imageTemplates"
RUN_OUTPUT_TYPE = "Microsoft.VirtualMachineImages/imageTemplates/runOutputs"
API_VERSIONS = (
    "2020-02-14",
    "2021-10-01",
    "2022-02-14",
    "2022-07-01",
    "2023-07-01",
    "2024-02-01",
    "2025-10-01",
)
READ_ONLY = (
    "id",
    "name",
    "type",
    "systemData",
    "properties.provisioningState",
    "properties.provisioningError",
    "properties.lastRunStatus",
    "properties.exactStagingResourceGroup",
    "properties.source.exactVersion",
)
# What PATCH (and a PUT on an existing template) may change; everything else is fixed at creation, as in Azure.
UPDATABLE = {"tags", "identity", "properties.vmProfile", "properties.distribute"}
ENGINES = ("guestfs", "vm")
ENGINE_PROPERTY = "vmgalleryEngine"  # a vmgallery extension: which build engine runs this template
NAME = re.compile(r"^[A-Za-z0-9-_.]{1,64}$")
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
DEFAULT_TIMEOUT_MINUTES = 240

RUN_STATES = ("Running", "Canceling", "Succeeded", "PartiallySucceeded", "Failed", "Canceled")
RUN_SUBSTATES = ("Queued", "Building", "Customizing", "Validating", "Distributing")
FINISHED_RUN_STATES = ("Succeeded", "PartiallySucceeded", "Failed", "Canceled")

LINUX_CUSTOMIZERS = ("Shell", "File")
WINDOWS_CUSTOMIZERS = ("PowerShell", "WindowsRestart", "WindowsUpdate", "File")
CUSTOMIZERS = ("Shell", "PowerShell", "WindowsRestart", "WindowsUpdate", "File")
VALIDATORS = ("Shell", "PowerShell", "File")
SOURCES = ("PlatformImage", "ManagedImage", "SharedImageVersion")
DISTRIBUTORS = ("SharedImage", "ManagedImage", "VHD")
STORAGE_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS")

# vCPUs and memory (MiB) of the sizes a build VM may have (Azure's published shapes).
VM_SIZES: dict[str, tuple[int, int]] = {
    "Standard_B1s": (1, 1024),
    "Standard_B2s": (2, 4096),
    "Standard_D1_v2": (1, 3584),
    "Standard_D2_v2": (2, 7168),
    "Standard_D3_v2": (4, 14336),
    "Standard_D2s_v3": (2, 8192),
    "Standard_D4s_v3": (4, 16384),
    "Standard_D2ds_v4": (2, 8192),
    "Standard_D4ds_v4": (4, 16384),
    "Standard_D8ds_v4": (8, 32768),
    "Standard_D2ds_v5": (2, 8192),
    "Standard_D4ds_v5": (4, 16384),
    "Standard_F2s_v2": (2, 4096),
}
DEFAULT_VM_SIZE = {"V1": "Standard_D1_v2", "V2": "Standard_D2ds_v4"}

# The waagent -deprovision+user analogue Azure runs last on every generalized Linux build.
DEPROVISION_SCRIPT = "\n".join(
    (
        "set -e",
        ": > /etc/machine-id",
        "rm -f /var/lib/dbus/machine-id",
        "rm -f /etc/ssh/ssh_host_*",
        "rm -rf /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data /var/lib/cloud/sem",
        "find /var/log -type f -exec rm -f {} +",
        "rm -f /root/.bash_history /root/.ash_history /home/*/.bash_history /home/*/.ash_history",
        "echo deprovisioned",
    )
)


def check_template_name(name: str) -> None:
    if not NAME.match(name):
        raise errors.InvalidResourceName(
            f"The image template name '{name}' is invalid: 1 to 64 letters, digits, '-', '_' or '.'.", "name"
        )


def _items(props: Body, key: str, target: str, *, required: bool = False) -> list[Body]:
    value = props.get(key)
    if value is None:
        if required:
            raise errors.MissingRequiredProperty(f"Required property '{target}' is missing.", target)
        props.pop(key, None)
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise errors.InvalidRequestContent(f"'{target}' must be an array of objects.", target)
    return value


def _checksum(item: Body, target: str) -> None:
    value = check_string(item, "sha256Checksum", f"{target}.sha256Checksum")
    if value:
        if not SHA256.match(value):
            raise errors.InvalidParameter(f"'{target}.sha256Checksum' must be 64 hexadecimal digits.", target)
        item["sha256Checksum"] = value.lower()


def _script(item: Body, target: str, what: str) -> None:
    """Shell / PowerShell: inline lines or a scriptUri (with an optional checksum), not both, not neither."""
    uri = check_string(item, "scriptUri", f"{target}.scriptUri", max_len=MAX_URI)
    inline = item.get("inline")
    if inline is not None and (not isinstance(inline, list) or not all(isinstance(i, str) for i in inline)):
        raise errors.InvalidParameter(f"'{target}.inline' must be an array of strings.", f"{target}.inline")
    if bool(uri) == bool(inline):
        raise errors.InvalidParameter(
            f"The {what} '{target}' must have either 'inline' commands or a 'scriptUri', exactly one.",
            target,
            code="NoCustomizerScript" if not uri and not inline else "InvalidParameter",
        )
    _checksum(item, target)


def _step(item: Body, target: str, allowed: Sequence[str], what: str) -> str:
    kind = check_enum(item, "type", allowed, f"{target}.type", required=True)
    check_string(item, "name", f"{target}.name", max_len=256)
    if kind in ("Shell", "PowerShell"):
        _script(item, target, what)
        if kind == "PowerShell":
            codes = item.get("validExitCodes")
            if codes is not None and (not isinstance(codes, list) or not all(isinstance(c, int) for c in codes)):
                raise errors.InvalidParameter(f"'{target}.validExitCodes' must be integers.", target)
    elif kind == "File":
        check_string(item, "sourceUri", f"{target}.sourceUri", required=True, max_len=MAX_URI)
        dest = check_string(item, "destination", f"{target}.destination", required=True, max_len=1024)
        if not dest.startswith("/") and not re.match(r"^[A-Za-z]:\\", dest):
            raise errors.InvalidParameter(f"'{target}.destination' must be an absolute path.", target)
        _checksum(item, target)
    elif kind == "WindowsUpdate":
        check_int(item, "updateLimit", f"{target}.updateLimit", minimum=0)
    return kind


def _source(props: Body) -> str:
    src = require_object(props, "source", required=True, target="properties.source")
    kind = check_enum(src, "type", SOURCES, "properties.source.type", required=True)
    if kind == "PlatformImage":
        for key in ("publisher", "offer", "sku", "version"):
            check_string(src, key, f"properties.source.{key}", required=True, max_len=256)
    elif kind == "ManagedImage":
        check_string(src, "imageId", "properties.source.imageId", required=True, max_len=1024)
    else:
        check_string(src, "imageVersionId", "properties.source.imageVersionId", required=True, max_len=1024)
    return kind


def _distribute(props: Body) -> None:
    items = _items(props, "distribute", "properties.distribute", required=True)
    if not items:
        raise errors.InvalidParameter("'properties.distribute' needs at least one target.", "properties.distribute")
    names: set[str] = set()
    for i, item in enumerate(items):
        target = f"properties.distribute[{i}]"
        kind = check_enum(item, "type", DISTRIBUTORS, f"{target}.type", required=True)
        name = check_string(item, "runOutputName", f"{target}.runOutputName", required=True)
        if not NAME.match(name):
            raise errors.InvalidParameter(
                f"'{target}.runOutputName' '{name}' must be 1 to 64 letters, digits, '-', '_' or '.'.", target
            )
        if name.lower() in names:
            raise errors.InvalidParameter(f"The runOutputName '{name}' is used twice; each must be unique.", target)
        names.add(name.lower())
        if kind == "SharedImage":
            check_string(item, "galleryImageId", f"{target}.galleryImageId", required=True, max_len=1024)
            check_enum(item, "storageAccountType", STORAGE_TYPES, f"{target}.storageAccountType")
            versioning = require_object(item, "versioning", required=False, target=f"{target}.versioning")
            if versioning:
                scheme = check_enum(versioning, "scheme", ("Latest", "Source"), f"{target}.versioning.scheme")
                if scheme == "Latest":
                    check_int(versioning, "major", f"{target}.versioning.major", minimum=-1)
            for j, region in enumerate(_items(item, "targetRegions", f"{target}.targetRegions")):
                check_string(region, "name", f"{target}.targetRegions[{j}].name", required=True)
                check_int(region, "replicaCount", f"{target}.targetRegions[{j}].replicaCount", minimum=1)
                check_enum(
                    region, "storageAccountType", STORAGE_TYPES, f"{target}.targetRegions[{j}].storageAccountType"
                )
            regions = item.get("replicationRegions")
            if regions is not None and (not isinstance(regions, list) or not all(isinstance(r, str) for r in regions)):
                raise errors.InvalidParameter(f"'{target}.replicationRegions' must be region names.", target)
        elif kind == "ManagedImage":
            check_string(item, "imageId", f"{target}.imageId", required=True, max_len=1024)
            check_string(item, "location", f"{target}.location", required=True)
        else:
            check_string(item, "uri", f"{target}.uri", max_len=MAX_URI)


def normalize_template(body: Body) -> Body:
    """The canonical spec of an image template, every value checked (its source and targets are checked later,
    against the store: `check_target_fits`, `check_customizers_fit`)."""
    body = strip_read_only(body, READ_ONLY)
    check_tags(body)
    fold_location(body)
    identity = require_object(body, "identity", required=True)
    kind = check_enum(identity, "type", ("UserAssigned", "None"), "identity.type", required=True)
    uamis = identity.get("userAssignedIdentities")
    if kind == "UserAssigned":
        if not isinstance(uamis, dict) or not uamis:
            raise errors.InvalidParameter(
                "A UserAssigned identity names at least one user-assigned identity resource id.",
                "identity.userAssignedIdentities",
            )
        for uid in uamis:
            if "/providers/microsoft.managedidentity/userassignedidentities/" not in uid.lower():
                raise errors.InvalidParameter(
                    f"'{uid}' is not a Microsoft.ManagedIdentity/userAssignedIdentities resource id.",
                    "identity.userAssignedIdentities",
                )
        # Without RBAC the identity is recorded by name; its ids are the server's to fill.
        identity["userAssignedIdentities"] = {uid: {} for uid in uamis}
    props = require_object(body, "properties", required=True)
    _source(props)
    for i, item in enumerate(_items(props, "customize", "properties.customize")):
        _step(item, f"properties.customize[{i}]", CUSTOMIZERS, "customizer")
    validate = require_object(props, "validate", required=False, target="properties.validate")
    if validate:
        for key in ("continueDistributeOnFailure", "sourceValidationOnly"):
            value = validate.setdefault(key, False)
            if not isinstance(value, bool):
                raise errors.InvalidParameter(f"'properties.validate.{key}' must be a boolean.", key)
        for i, item in enumerate(_items(validate, "inVMValidations", "properties.validate.inVMValidations")):
            _step(item, f"properties.validate.inVMValidations[{i}]", VALIDATORS, "validator")
    handling = require_object(props, "errorHandling", required=False, target="properties.errorHandling")
    if handling:
        for key in ("onCustomizerError", "onValidationError"):
            check_enum(handling, key, ("cleanup", "abort"), f"properties.errorHandling.{key}", default="cleanup")
    _distribute(props)
    profile = require_object(props, "vmProfile", required=False, target="properties.vmProfile")
    if profile:
        size = check_string(profile, "vmSize", "properties.vmProfile.vmSize")
        if size:
            check_enum(profile, "vmSize", VM_SIZES, "properties.vmProfile.vmSize")
        check_int(profile, "osDiskSizeGB", "properties.vmProfile.osDiskSizeGB", minimum=0, maximum=4095)
    timeout = check_int(props, "buildTimeoutInMinutes", "properties.buildTimeoutInMinutes", minimum=0, maximum=960)
    props["buildTimeoutInMinutes"] = timeout or 0
    check_string(props, "stagingResourceGroup", "properties.stagingResourceGroup", max_len=1024)
    check_enum(props, ENGINE_PROPERTY, ENGINES, f"properties.{ENGINE_PROPERTY}")
    return body


def check_template_update(old: Body, new: Body) -> None:
    """Only tags, identity, vmProfile and distribute may change; anything else is 409 naming the property."""
    before, after = flatten(old), flatten(new)
    for path in sorted(set(before) | set(after)):
        if any(path == u or path.startswith(u + ".") for u in UPDATABLE):
            continue
        if before.get(path) != after.get(path):
            raise errors.Conflict(
                f"Changing property '{path}' of an existing image template is not allowed: updating image templates "
                f"is not supported beyond {', '.join(sorted(UPDATABLE))}; delete and recreate it instead.",
                path,
                code="PropertyChangeNotAllowed",
            )


@dataclass(frozen=True)
class ImageFacts:
    """What a build's output is: its source's facts, generalized or not by the build."""

    os_type: str
    hyper_v_generation: str
    architecture: str
    os_state: str = "Generalized"


def check_customizers_fit(spec: Body, os_type: str) -> None:
    """Windows customizers on a Linux source (and Shell on a Windows one) are refused at creation, as in Azure."""
    allowed = LINUX_CUSTOMIZERS if os_type == "Linux" else WINDOWS_CUSTOMIZERS
    props = spec["properties"]
    steps = [(f"properties.customize[{i}]", c) for i, c in enumerate(props.get("customize", []))] + [
        (f"properties.validate.inVMValidations[{i}]", c)
        for i, c in enumerate((props.get("validate") or {}).get("inVMValidations", []))
    ]
    for target, step in steps:
        if step["type"] not in allowed:
            raise errors.InvalidParameter(
                f"The customizer '{step.get('name') or step['type']}' of type {step['type']} cannot run on a "
                f"{os_type} source image; {os_type} builds take {', '.join(allowed)}.",
                f"{target}.type",
                code="UnsupportedCustomizerType",
            )


def check_target_fits(definition: Body, facts: ImageFacts, target: str) -> None:
    """A SharedImage target's definition must describe what the build makes (checked before the build)."""
    wanted = {
        "osType": (definition.get("osType"), facts.os_type),
        "hyperVGeneration": (definition.get("hyperVGeneration", "V1"), facts.hyper_v_generation),
        "architecture": (definition.get("architecture", "x64"), facts.architecture),
    }
    for name, (theirs, ours) in wanted.items():
        if str(theirs).lower() != str(ours).lower():
            raise errors.InvalidParameter(
                f"The gallery image definition's {name} is '{theirs}' but this build makes a '{ours}' image "
                f"(from its source); they must match.",
                target,
                code="BadSharedImageDistribute",
            )


def generalized(target_states: Iterable[str]) -> bool:
    """A build ends with the deprovision step unless every target keeps it Specialized."""
    states = list(target_states)
    return not states or any(s != "Specialized" for s in states)


def machine_shape(spec: Body, hyper_v_generation: str) -> tuple[str, int, int]:
    """(vmSize, vCPUs, memory MiB) of the build VM."""
    size = (spec["properties"].get("vmProfile") or {}).get("vmSize") or DEFAULT_VM_SIZE[hyper_v_generation]
    vcpus, memory = VM_SIZES[size]
    return size, vcpus, memory


def timeout_minutes(spec: Body) -> int:
    return spec["properties"].get("buildTimeoutInMinutes") or DEFAULT_TIMEOUT_MINUTES


def next_version(existing: Iterable[str], major: int = -1) -> str:
    """Versioning scheme Latest: the next patch after the highest version (within `major` when pinned)."""
    parsed = sorted(v for v in (_parse(n) for n in existing) if v is not None and (major < 0 or v[0] == major))
    if not parsed:
        return f"{max(major, 1)}.0.0" if major >= 0 else "1.0.0"
    a, b, c = parsed[-1]
    return f"{a}.{b}.{c + 1}"


def _parse(name: str) -> tuple[int, int, int] | None:
    try:
        return parse_version_name(name)
    except errors.ArmError:
        return None


def source_version(version: str) -> str:
    """Versioning scheme Source: the source's own version, as a gallery version name."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise errors.InvalidParameter(
            f"The source version '{version}' is not MAJOR.MINOR.PATCH; versioning scheme Source cannot use it.",
            "properties.distribute.versioning",
        )
    return version


# -- URIs a build may fetch -------------------------------------------------------------------------------------
OWN_BLOB_PREFIX = "/_blob/"


def uri_kind(uri: str, in_account: bool, allowed_prefixes: Iterable[str], target: str) -> str:
    """ "own" (a signed blob URL of this server), "account" (a configured storage account), or "allowed"; refused
    otherwise, and any loopback, link-local or private address that none of these covers (no SSRF)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.InvalidParameter(f"The URI '{uri}' is not an absolute http(s) URL.", target)
    if parts.path.startswith(OWN_BLOB_PREFIX) and "sig=" in parts.query:
        return "own"
    lowered = uri.lower()
    if in_account:
        return "account"
    if parts.scheme == "https" and any(lowered.startswith(p.lower()) for p in allowed_prefixes if p):
        return "allowed"
    if _internal(parts.hostname):
        raise errors.InvalidParameter(
            f"The URI '{uri}' points at a loopback, link-local or private address that is not a storage account or "
            "an allowed prefix of this server; builds do not fetch from there.",
            target,
        )
    raise errors.InvalidParameter(
        f"The URI '{uri}' is not a signed blob URL of this server, a configured storage account, or under a prefix "
        "the operator allows ([builder] allowed_source_prefixes in config.toml).",
        target,
    )


def _internal(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_link_local or address.is_private or address.is_unspecified


def check_vhd_uri(uri: str, in_account: bool, target: str) -> None:
    """A VHD output's `uri` is a blob (container and name) of a storage account this server may write to."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/").count("/") < 1:
        raise errors.InvalidParameter(f"The VHD output URI '{uri}' is not the URL of a blob in a container.", target)
    if not in_account:
        raise errors.InvalidParameter(
            f"The VHD output URI '{uri}' is not in a storage account configured on this server ([storage_accounts] "
            "in config.toml); leave 'uri' out to have the VHD kept in the staging resource group.",
            target,
        )


def vhd_uris(spec: Body) -> list[tuple[str, str]]:
    """(uri, target) of each VHD output that names where it goes."""
    return [
        (item["uri"], f"properties.distribute[{i}].uri")
        for i, item in enumerate(spec["properties"]["distribute"])
        if item["type"] == "VHD" and item.get("uri")
    ]


def template_uris(spec: Body) -> list[tuple[str, str]]:
    """(uri, target) of everything a build fetches."""
    props = spec["properties"]
    out: list[tuple[str, str]] = []
    groups: list[tuple[str, list[Any]]] = [
        ("properties.customize", props.get("customize", [])),
        ("properties.validate.inVMValidations", (props.get("validate") or {}).get("inVMValidations", [])),
    ]
    for prefix, items in groups:
        for i, item in enumerate(items):
            for key in ("scriptUri", "sourceUri"):
                if item.get(key):
                    out.append((item[key], f"{prefix}[{i}].{key}"))
    return out


def target_regions(item: Body, location: str) -> list[Body]:
    """A SharedImage target's regions as a version's targetRegions (replicationRegions is the older spelling); the
    build's own region is always one of them (the version is made there first)."""
    regions = item.get("targetRegions") or [{"name": n} for n in item.get("replicationRegions") or []]
    out = []
    for region in regions:
        entry: Body = {"name": region["name"], "regionalReplicaCount": region.get("replicaCount", 1)}
        if region.get("storageAccountType") or item.get("storageAccountType"):
            entry["storageAccountType"] = region.get("storageAccountType") or item["storageAccountType"]
        out.append(entry)
    if not any("".join(e["name"].split()).lower() == location for e in out):
        out.insert(0, {"name": location, "regionalReplicaCount": 1})
    return out


def run_status(state: str, sub_state: str | None, start: str, end: str | None = None, message: str = "") -> Body:
    status: Body = {"startTime": start, "runState": state, "message": message}
    if sub_state is not None:
        status["runSubState"] = sub_state
    if end is not None:
        status["endTime"] = end
    return status


def failure_message(name: str, number: int, exit_code: int, tail: Sequence[str]) -> str:
    lines = "\n".join(tail[-10:])
    return f"Step {number} '{name}' failed with exit code {exit_code}. Last output:\n{lines}"


def staging_group_name(group: str, template: str, guid: str) -> str:
    return f"IT_{group}_{template}_{guid}"[:90]


# -- triggers ---------------------------------------------------------------------------------------------------
TRIGGER_TYPE = "Microsoft.VirtualMachineImages/imageTemplates/triggers"
TRIGGER_API_VERSIONS = ("2022-07-01", "2023-07-01", "2024-02-01", "2025-10-01")
TRIGGER_KINDS = ("SourceImage",)
TRIGGER_READ_ONLY = ("id", "name", "type", "systemData", "properties.status", "properties.provisioningState")
LATEST_SUFFIX = "/versions/latest"


def check_trigger_name(name: str) -> None:
    if not NAME.match(name):
        raise errors.InvalidResourceName(
            f"The trigger name '{name}' is invalid: 1 to 64 letters, digits, '-', '_' or '.'.", "name"
        )


def normalize_trigger(body: Body) -> Body:
    """A trigger's canonical spec: only its kind is the caller's (a proxy resource: no location, no tags)."""
    body = strip_read_only(body, TRIGGER_READ_ONLY)
    body.pop("location", None)
    props = require_object(body, "properties", required=True)
    check_enum(props, "kind", TRIGGER_KINDS, "properties.kind", required=True)
    return body


def check_trigger_update(old: Body, new: Body) -> None:
    """A trigger's kind is fixed at creation (x-ms-mutability create, read)."""
    before, after = old.get("properties", {}).get("kind"), new.get("properties", {}).get("kind")
    if before != after:
        raise errors.PropertyChangeNotAllowed(
            f"Changing property 'properties.kind' of an existing trigger is not allowed (from {before!r} to "
            f"{after!r}); delete the trigger and create it again.",
            "properties.kind",
        )


def check_trigger_source(source: Body) -> None:
    """A SourceImage trigger follows the template's source: a gallery image version named by `.../versions/latest`,
    so a new version of that definition is what the template would build from next."""
    if source.get("type") != "SharedImageVersion":
        raise errors.InvalidParameter(
            f"A trigger of kind SourceImage needs an image template whose source is a SharedImageVersion; this "
            f"template's 'properties.source.type' is '{source.get('type')}'.",
            "properties.source.type",
        )
    if not str(source.get("imageVersionId", "")).lower().endswith(LATEST_SUFFIX):
        raise errors.InvalidParameter(
            f"A trigger of kind SourceImage needs the template's 'properties.source.imageVersionId' to name the "
            f"latest version of a gallery image definition ('{LATEST_SUFFIX}'), not '{source.get('imageVersionId')}'.",
            "properties.source.imageVersionId",
        )


def trigger_fires(source: Body, definition_key: str, became_latest: bool) -> bool:
    """Whether a new version of the definition `definition_key` (lower-case id) starts a run of a template with a
    SourceImage trigger and this source: only a version that became the definition's latest does (one excluded
    from latest, or older than the latest, changes nothing the template builds from)."""
    if not became_latest or source.get("type") != "SharedImageVersion":
        return False
    version_id = str(source.get("imageVersionId", ""))
    rid = parse_resource_id(version_id)
    if rid is None or rid.parent is None or not version_id.lower().endswith(LATEST_SUFFIX):
        return False
    return rid.parent.key == definition_key.lower()


def trigger_status(code: str, message: str, time: str) -> Body:
    return {"code": code, "message": message, "time": time}
