"""The table of resource types: for each ARM type, its rules, its parent, and how its read-only fields are filled.

Every resource goes through the same use cases (`app.resources`) and the same routes; what differs lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import Settings
from ..domain import definitions, galleries, names
from ..domain import disks as disks_rules
from ..domain import image_builder as builder_rules
from ..domain import images as images_rules
from ..domain import managed_identities as identity_rules
from ..domain import sharing as sharing_rules
from ..domain import versions as versions_rules
from ..domain.apiversions import GALLERY_API_VERSIONS, RESOURCE_API_VERSIONS
from ..domain.ids import ResourceId
from ..domain.validate import Body, check_tags, fold_location, forbid_changes, given, strip_read_only
from . import build_templates, build_triggers, managed_identities
from . import disks as disks_app
from . import images as images_app
from . import versions as versions_app
from .ports import Dependencies, ResourceRow, Transaction


@dataclass(frozen=True)
class Context:
    """What a body's rules may need beyond the body: its parent, its region, the configured regions (None when
    re-reading a stored body, so a configuration change cannot invalidate it), and the stored resource on update."""

    parent: Body | None = None
    location: str | None = None
    regions: tuple[str, ...] | None = None
    existing: Body | None = None


Normalize = Callable[[Body, Context], Body]


@dataclass(frozen=True)
class Kind:
    type: str
    noun: str
    plural: str
    api_versions: tuple[str, ...]
    check_name: Callable[[str], object]
    normalize: Normalize  # (request body, context) -> canonical spec
    check_update: Callable[[Body, Body], None]  # (old spec, new spec) -> raises if not allowed
    parent_type: str | None = None
    natural_key: Callable[[Body], str] | None = None
    describe_natural: Callable[[Body], str] | None = None
    quota: Callable[[Settings], int] | None = None
    read_only_fill: Callable[[Body, ResourceId], None] | None = None
    # Resource groups answer PUT at once, as ARM does; the others are long-running operations.
    long_running: bool = True
    read_only: tuple[str, ...] = ()
    # Create-time work beyond the row: resolve sources, name manifests, choose the job (app.disks.Prepared).
    prepare: Callable[[Dependencies, Transaction, ResourceId, Body, str], disks_app.Prepared] | None = None
    # What a create answers when finished / still running, and what an update answers (disks: 202 for both, as
    # Azure answers and their SDK accepts; it accepts no 201).
    created_status: int = 201
    accepted_status: int = 201
    updated_status: int = 200
    # `$expand=ReplicationStatus` on GET: (tx, row) -> body.
    expand: Callable[[Transaction, ResourceRow], Body] | None = None
    # Side effects of an accepted update beyond the row: (resources, tx, existing row, new spec).
    on_update: Callable[[Dependencies, Transaction, ResourceRow, Body], None] | None = None
    # A dry run of an update: (resources, tx, existing row, new spec) -> what it would do.
    plan: Callable[[Dependencies, Transaction, ResourceRow, Body], Body] | None = None
    # What a delete takes with it beyond the row, in the delete's transaction: (resources, tx, existing row).
    on_delete: Callable[[Dependencies, Transaction, ResourceRow], None] | None = None
    # What a GET answers, when the stored body may be behind what other rows say: (tx, row) -> body.
    view: Callable[[Transaction, ResourceRow], Body] | None = None
    # A proxy resource (an image template's trigger): no location of its own, it lives in its parent's region.
    located_by_parent: bool = False
    patchable: bool = True
    # Kinds that are not long-running: work in another store after a create's commit, (resources, new body); if it
    # fails the new row is removed and the error answered (a managed identity's service principal in the directory).
    on_created: Callable[[Dependencies, Body], None] | None = None
    # Deleted within the request, answered 200 (204 when absent) as Azure answers for managed identities, then
    # `on_deleted` (resources, deleted body) after the commit.
    delete_at_once: bool = False
    on_deleted: Callable[[Dependencies, Body], None] | None = None

    @property
    def type_key(self) -> str:
        return self.type.lower()


def _gallery_fill(body: Body, rid: ResourceId) -> None:
    body.setdefault("properties", {})["identifier"] = {"uniqueName": galleries.unique_name(rid.subscription, rid.name)}


def _definition_normalize(body: Body, ctx: Context) -> Body:
    return definitions.normalize_definition(body, galleries.permissions(ctx.parent or {}))


def _group_normalize(body: Body, _ctx: Context) -> Body:
    body = strip_read_only(body, ("id", "name", "type", "properties", "managedBy"))
    check_tags(body)
    fold_location(body)
    return body


def _group_update(old: Body, new: Body) -> None:
    forbid_changes(old, new, {"tags"}, "resource group")


RESOURCE_GROUP = Kind(
    type="Microsoft.Resources/resourceGroups",
    noun="resource group",
    plural="resource groups",
    api_versions=RESOURCE_API_VERSIONS,
    check_name=names.check_resource_group_name,
    normalize=_group_normalize,
    check_update=_group_update,
    long_running=False,
)

GALLERY = Kind(
    type="Microsoft.Compute/galleries",
    noun="gallery",
    plural="galleries",
    api_versions=GALLERY_API_VERSIONS,
    check_name=names.check_gallery_name,
    normalize=lambda b, _c: galleries.normalize_gallery(b),
    check_update=galleries.check_gallery_update,
    parent_type=RESOURCE_GROUP.type,
    quota=lambda s: s.limits.galleries_per_region,
    read_only_fill=_gallery_fill,
    read_only=galleries.READ_ONLY,
    on_update=lambda _r, _tx, row, spec: sharing_rules.check_profile_change(row.body, spec),
)

IMAGE_DEFINITION = Kind(
    type="Microsoft.Compute/galleries/images",
    noun="gallery image definition",
    plural="gallery image definitions",
    api_versions=GALLERY_API_VERSIONS,
    check_name=names.check_image_definition_name,
    normalize=_definition_normalize,
    check_update=definitions.check_definition_update,
    parent_type=GALLERY.type,
    natural_key=definitions.natural_key,
    describe_natural=definitions.describe_identifier,
    quota=lambda s: s.limits.image_definitions_per_region,
    read_only=definitions.READ_ONLY,
)

DISK_API_VERSIONS = (
    "2018-06-01",
    "2018-09-30",
    "2019-03-01",
    "2019-07-01",
    "2019-11-01",
    "2020-05-01",
    "2020-06-30",
    "2020-09-30",
    "2020-12-01",
    "2021-04-01",
    "2021-08-01",
    "2021-12-01",
    "2022-03-02",
    "2022-07-02",
    "2023-01-02",
    "2023-04-02",
    "2023-10-02",
    "2024-03-02",
    "2025-01-02",
    "2026-03-02",
)

DISK = Kind(
    type="Microsoft.Compute/disks",
    noun="disk",
    plural="disks",
    api_versions=DISK_API_VERSIONS,
    check_name=names.check_disk_name,
    normalize=lambda b, _c: disks_rules.normalize_disk(b)[0],
    check_update=disks_rules.check_disk_update,
    parent_type=RESOURCE_GROUP.type,
    read_only=disks_rules.CARRIED,
    prepare=lambda r, tx, rid, spec, loc: disks_app.prepare_disk(r, tx, rid, spec, loc),
    on_update=disks_app.update_disk,
    created_status=202,
    accepted_status=202,
    updated_status=202,
)

SNAPSHOT = Kind(
    type="Microsoft.Compute/snapshots",
    noun="snapshot",
    plural="snapshots",
    api_versions=DISK_API_VERSIONS,
    check_name=lambda n: names.check_disk_name(n, "snapshot"),
    normalize=lambda b, _c: disks_rules.normalize_disk(b, snapshot=True)[0],
    check_update=lambda old, new: disks_rules.check_disk_update(old, new, snapshot=True),
    parent_type=RESOURCE_GROUP.type,
    read_only=disks_rules.CARRIED,
    prepare=lambda r, tx, rid, spec, loc: disks_app.prepare_disk(r, tx, rid, spec, loc, snapshot=True),
    on_update=lambda r, tx, row, spec: disks_app.update_disk(r, tx, row, spec, snapshot=True),
    created_status=202,
    accepted_status=202,
    updated_status=202,
)

IMAGE_VERSION = Kind(
    type="Microsoft.Compute/galleries/images/versions",
    noun="gallery image version",
    plural="gallery image versions",
    api_versions=GALLERY_API_VERSIONS,
    check_name=versions_rules.parse_version_name,
    normalize=lambda b, c: versions_rules.normalize_version(
        b, location=given(c.location, "location"), regions=c.regions, existing=c.existing
    ),
    check_update=versions_rules.check_version_update,
    parent_type=IMAGE_DEFINITION.type,
    quota=lambda s: s.limits.image_versions_per_region,
    read_only=versions_rules.READ_ONLY,
    prepare=lambda r, tx, rid, spec, loc: versions_app.prepare_version(r, tx, rid, spec, loc),
    expand=lambda tx, row: {
        **row.body,
        "properties": {**row.body["properties"], "replicationStatus": versions_app.replication_status(tx, row)},
    },
    on_update=versions_app.update_version,
    plan=versions_app.plan_version_update,
)

IMAGE = Kind(
    type="Microsoft.Compute/images",
    noun="image",
    plural="images",
    api_versions=images_rules.API_VERSIONS,
    check_name=lambda n: names.check_disk_name(n, "image"),
    normalize=lambda b, c: images_rules.normalize_image(b, c.existing),
    check_update=images_rules.check_image_update,
    parent_type=RESOURCE_GROUP.type,
    read_only=images_rules.READ_ONLY,
    prepare=lambda r, tx, rid, spec, loc: images_app.prepare_image(r, tx, rid, spec, loc),
)

IMAGE_TEMPLATE = Kind(
    type=builder_rules.TYPE,
    noun="image template",
    plural="image templates",
    api_versions=builder_rules.API_VERSIONS,
    check_name=builder_rules.check_template_name,
    normalize=lambda b, _c: builder_rules.normalize_template(b),
    check_update=builder_rules.check_template_update,
    parent_type=RESOURCE_GROUP.type,
    read_only=builder_rules.READ_ONLY,
    prepare=build_templates.prepare_template,
    on_update=build_templates.check_distribute_update,
    on_delete=lambda r, tx, row: build_templates.drop_template_extras(tx, row.key, row.body),
    view=build_templates.view,
    created_status=201,
    accepted_status=201,
    updated_status=200,
)

TRIGGER = Kind(
    type=builder_rules.TRIGGER_TYPE,
    noun="trigger",
    plural="triggers",
    api_versions=builder_rules.TRIGGER_API_VERSIONS,
    check_name=builder_rules.check_trigger_name,
    normalize=lambda b, _c: builder_rules.normalize_trigger(b),
    check_update=builder_rules.check_trigger_update,
    parent_type=IMAGE_TEMPLATE.type,
    read_only=builder_rules.TRIGGER_READ_ONLY,
    prepare=lambda r, tx, rid, spec, _loc: disks_app.Prepared(build_triggers.prepare_trigger(r, tx, rid, spec)),
    located_by_parent=True,
    patchable=False,
)

USER_ASSIGNED_IDENTITY = Kind(
    type=identity_rules.TYPE,
    noun="user-assigned identity",
    plural="user-assigned identities",
    api_versions=identity_rules.API_VERSIONS,
    check_name=identity_rules.check_identity_name,
    normalize=lambda b, _c: identity_rules.normalize_identity(b),
    check_update=identity_rules.check_identity_update,
    parent_type=RESOURCE_GROUP.type,
    long_running=False,
    read_only=identity_rules.SERVER_SET,
    prepare=managed_identities.prepare_identity,
    on_created=managed_identities.created,
    delete_at_once=True,
    on_deleted=managed_identities.deleted,
)

KINDS = {
    k.type_key: k
    for k in (
        RESOURCE_GROUP,
        GALLERY,
        IMAGE_DEFINITION,
        DISK,
        SNAPSHOT,
        IMAGE_VERSION,
        IMAGE,
        IMAGE_TEMPLATE,
        TRIGGER,
        USER_ASSIGNED_IDENTITY,
    )
}
