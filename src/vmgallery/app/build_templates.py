"""Image templates' pre-flight: everything a build will need is checked when the template is created, not after an
hour of building. The source is resolved (platform image catalog, managed image, gallery image version) and its
facts decide which customizers may run and which distribution targets fit; every URI a build will fetch is one it
may fetch; the staging resource group is made (or the user's, which must be empty, is taken).

Also what a template's delete takes with it: its staging resource group, its run outputs and its log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..domain import errors
from ..domain import image_builder as rules
from ..domain.ids import ResourceId, normalize_location, parse_resource_id
from ..domain.timestamps import arm_time
from ..domain.validate import Body
from ..domain.versions import parse_version_name
from . import platform_images, sources
from .disks import Prepared
from .managed_identities import show_template_identities
from .ports import Dependencies, ResourceRow, Transaction

RUN_SUFFIX = (
    "/runs/current"  # the run operation's subject: a template's key + this (a run never makes the template busy)
)
RUN_OUTPUT_TYPE = rules.RUN_OUTPUT_TYPE.lower()
GROUP_TYPE = "microsoft.resources/resourcegroups"


@dataclass(frozen=True)
class Source:
    """A template's resolved source: the row holding its bytes (content slot `os`) and what it is."""

    row: ResourceRow
    facts: rules.ImageFacts
    version: str | None  # PlatformImage / SharedImageVersion: the exact version resolved


def resolve_source(tx: Transaction, spec: Body, location: str) -> Source:
    src = spec["properties"]["source"]
    if src["type"] == "PlatformImage":
        row = platform_images.resolve(tx, location, src["publisher"], src["offer"], src["sku"], src["version"])
        p = row.body["properties"]
        facts = rules.ImageFacts(p["osType"], p["hyperVGeneration"], p["architecture"])
        return Source(row, facts, row.body["name"])
    if src["type"] == "ManagedImage":
        target = "properties.source.imageId"
        try:
            row = sources.finished(tx, src["imageId"], "managed image", target)
        except errors.ArmError as exc:
            raise errors.InvalidParameter(exc.message, target, code="BadManagedImageSource") from None
        if row.type != "microsoft.compute/images":
            raise errors.InvalidParameter(
                f"'{src['imageId']}' is not a managed image.", target, code="BadManagedImageSource"
            )
        sources.in_region(row, location, "managed image", target)
        props = row.body["properties"]
        os_disk = props["storageProfile"]["osDisk"]
        facts = rules.ImageFacts(os_disk["osType"], props.get("hyperVGeneration", "V1"), "x64", os_disk["osState"])
        return Source(row, facts, None)
    target = "properties.source.imageVersionId"
    rid = parse_resource_id(src["imageVersionId"])
    if rid is None or len(rid.chain) != 3 or rid.chain[2][0].lower() != "versions":
        raise errors.InvalidParameter(
            f"'{src['imageVersionId']}' is not a gallery image version id.", target, code="BadSharedImageVersionSource"
        )
    try:
        row = sources.version(tx, rid, location, target)
    except errors.ArmError as exc:
        raise errors.InvalidParameter(exc.message, target, code="BadSharedImageVersionSource") from None
    if row.type != "microsoft.compute/galleries/images/versions":
        raise errors.InvalidParameter(
            f"'{src['imageVersionId']}' is not a gallery image version.", target, code="BadSharedImageVersionSource"
        )
    props = sources.definition_of(tx, row)
    facts = rules.ImageFacts(
        props["osType"], props.get("hyperVGeneration", "V1"), props.get("architecture", "x64"), props["osState"]
    )
    return Source(row, facts, row.body["name"])


def target_definition(tx: Transaction, item: Body, target: str) -> tuple[ResourceRow, str | None]:
    """A SharedImage target's image definition row, and the explicit version it names (None: versioning decides)."""
    rid = parse_resource_id(item["galleryImageId"])
    chain = [t.lower() for t, _ in rid.chain] if rid else []
    if rid is None or chain[:2] != ["galleries", "images"] or len(chain) not in (2, 3):
        raise errors.InvalidParameter(
            f"'{item['galleryImageId']}' is not a gallery image definition or version id.",
            target,
            code="BadSharedImageDistribute",
        )
    version = rid.name if len(chain) == 3 else None
    definition_id = rid.parent if version is not None else rid
    definition = tx.get(definition_id.key) if definition_id else None
    if definition is None or definition.type != "microsoft.compute/galleries/images":
        raise errors.InvalidParameter(
            f"The gallery image definition '{item['galleryImageId']}' was not found.",
            target,
            code="BadSharedImageDistribute",
        )
    return definition, version


def _check_targets(tx: Transaction, spec: Body, facts: rules.ImageFacts, location: str) -> list[str]:
    """Every distribution target fits the build's output; the OS states the targets want."""
    states: list[str] = []
    for i, item in enumerate(spec["properties"]["distribute"]):
        target = f"properties.distribute[{i}]"
        if item["type"] == "SharedImage":
            definition, version = target_definition(tx, item, f"{target}.galleryImageId")
            props = definition.body["properties"]
            rules.check_target_fits(props, facts, f"{target}.galleryImageId")
            if definition.location != location:
                raise errors.InvalidParameter(
                    f"The gallery image definition is in '{definition.location}'; this server builds in the "
                    f"template's region '{location}' and publishes there first (targetRegions replicate further).",
                    f"{target}.galleryImageId",
                    code="BadSharedImageDistribute",
                )
            if version is not None:
                parse_version_name(version)
            states.append(props.get("osState", "Generalized"))
        elif item["type"] == "ManagedImage":
            rid = parse_resource_id(item["imageId"])
            if rid is None or [t.lower() for t, _ in rid.chain] != ["images"]:
                raise errors.InvalidParameter(f"'{item['imageId']}' is not a managed image id.", f"{target}.imageId")
            if normalize_location(item["location"]) != location:
                raise errors.InvalidParameter(
                    f"A managed image output is made in the template's region '{location}'.", f"{target}.location"
                )
            if tx.get(rid.group_key) is None:
                raise errors.InvalidParameter(
                    f"The resource group of '{item['imageId']}' does not exist.", f"{target}.imageId"
                )
            states.append("Generalized")
        else:
            states.append("Generalized")
    return states


def check_uris(deps: Dependencies, spec: Body) -> None:
    for uri, target in rules.template_uris(spec):
        rules.uri_kind(
            uri, deps.accounts.account_for(uri) is not None, deps.settings.builder.allowed_source_prefixes, target
        )
    check_vhd_uris(deps, spec)


def check_vhd_uris(deps: Dependencies, spec: Body) -> None:
    for uri, target in rules.vhd_uris(spec):
        rules.check_vhd_uri(uri, deps.accounts.account_for(uri) is not None, target)


def _staging_group(deps: Dependencies, tx: Transaction, rid: ResourceId, spec: Body, location: str) -> None:
    props = spec["properties"]
    given = props.get("stagingResourceGroup")
    if given:
        group_id = parse_resource_id(given)
        if group_id is None or group_id.chain or group_id.subscription.lower() != rid.subscription.lower():
            raise errors.InvalidParameter(
                f"'{given}' is not a resource group id in this subscription.",
                "properties.stagingResourceGroup",
                code="BadStagingResourceGroup",
            )
    else:
        name = rules.staging_group_name(rid.resource_group or "", rid.name, str(uuid.uuid4()))
        group_id = ResourceId(rid.subscription, name, None, ())
    existing = tx.get(group_id.key, for_update=True)
    if existing is not None:
        if tx.in_group(group_id.key):
            raise errors.InvalidParameter(
                f"The staging resource group '{group_id.text}' must be empty.",
                "properties.stagingResourceGroup",
                code="BadStagingResourceGroup",
            )
    else:
        body: Body = {
            "id": group_id.text,
            "name": group_id.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "tags": {"createdBy": "AzureVMImageBuilder", "imageTemplateName": rid.name},
            "properties": {"provisioningState": "Succeeded"},
        }
        tx.insert(
            key=group_id.key,
            type=GROUP_TYPE,
            parent_key=f"/subscriptions/{rid.subscription}".lower(),
            subscription=rid.subscription.lower(),
            group_key=group_id.key,
            location=location,
            natural_key=None,
            state="Succeeded",
            body=body,
            now=deps.clock(),
        )
    props["exactStagingResourceGroup"] = group_id.text


def prepare_template(deps: Dependencies, tx: Transaction, rid: ResourceId, spec: Body, location: str) -> Prepared:
    """The pre-flight of a new template (see the module's docstring)."""
    source = resolve_source(tx, spec, location)
    rules.check_customizers_fit(spec, source.facts.os_type)
    _check_targets(tx, spec, source.facts, location)
    check_uris(deps, spec)
    engine = spec["properties"].get(rules.ENGINE_PROPERTY)
    if engine == "vm" and source.facts.architecture.lower() != "x64":
        raise errors.InvalidParameter("The vm engine builds x64 images only.", f"properties.{rules.ENGINE_PROPERTY}")
    _staging_group(deps, tx, rid, spec, location)
    show_template_identities(tx, spec)
    return Prepared(spec)


def check_distribute_update(deps: Dependencies, tx: Transaction, existing: ResourceRow, spec: Body) -> None:
    """A PATCH of distribute is checked as at creation (the source is the one stored)."""
    source = resolve_source(tx, spec, existing.region)
    _check_targets(tx, spec, source.facts, existing.region)
    check_vhd_uris(deps, spec)
    show_template_identities(tx, spec)


def drop_template_extras(tx: Transaction, template_key: str, body: Body) -> None:
    """What a template's delete takes with it: its run outputs, its log, its staging resource group."""
    for row in tx.children(template_key, 1000):
        tx.delete(row.key)
    tx.clear_build_log(template_key)
    staging = body.get("properties", {}).get("exactStagingResourceGroup")
    group = parse_resource_id(staging) if staging else None
    if group is None or tx.get(group.key) is None:
        return
    for row in sorted(tx.in_group(group.key), key=lambda r: r.key.count("/"), reverse=True):
        tx.drop_contents(row.key)
        tx.delete(row.key)
    tx.delete(group.key)


def stale_run(tx: Transaction, row: ResourceRow) -> bool:
    """A run shown as Running/Canceling whose operation has ended (a worker gave up on it): it is over."""
    status = row.body["properties"].get("lastRunStatus") or {}
    if status.get("runState") not in ("Running", "Canceling"):
        return False
    return tx.active_operation(row.key + RUN_SUFFIX) is None


def view(tx: Transaction, row: ResourceRow) -> Body:
    """A template as GET shows it: a run whose job was given up (its workers died every time) shows as Failed."""
    if not stale_run(tx, row):
        return row.body
    status = dict(row.body["properties"]["lastRunStatus"])
    status.update(runState="Failed", message="The run was interrupted and did not finish.")
    status.pop("runSubState", None)
    return {**row.body, "properties": {**row.body["properties"], "lastRunStatus": status}}


def close_stale_run(tx: Transaction, row: ResourceRow, now: float) -> Body:
    body = row.body
    status = dict(body["properties"]["lastRunStatus"])
    status.update(runState="Failed", endTime=arm_time(now), message="The run was interrupted and did not finish.")
    status.pop("runSubState", None)
    body = {**body, "properties": {**body["properties"], "lastRunStatus": status}}
    tx.update(row.key, state=row.state, body=body, now=now)
    return body
