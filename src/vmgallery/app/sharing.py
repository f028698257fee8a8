"""Sharing seen from the consumer's side: who the caller is, which tenant a subscription belongs to, and finding
an owner's gallery, definitions and versions through the ids consumers know (`SharedGalleries/{uniqueName}`,
`CommunityGalleries/{publicName}`) — each lookup checked with domain.sharing's access rule, so a gallery not shared
with the caller answers exactly as one that does not exist.

What it is given:
- `SubscriptionTenants` (app.ports): which tenant a subscription belongs to (the identity directory answers).
- `ActionCheck`: may this principal perform this action at this scope (raises the 403); the share use case calls it
  with domain.sharing.SHARE_ACTION, and role assignments answer (Owner, Compute Gallery Sharing Admin).
- The caller: the HTTP layer runs a use case inside `calling_as(request.state.principal)`; a use case called with no
  principal set (a worker, a use-case test) runs as the admin.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from ..domain import errors
from ..domain import sharing as rules
from ..domain.identity import DEFAULT_TENANT_ID
from ..domain.principals import ADMIN_OBJECT_ID, Principal, PrincipalType
from ..domain.validate import Body
from . import sources
from .ports import ResourceRow, SubscriptionTenants, Transaction
from .replication import usable_regions

GALLERY_TYPE = "microsoft.compute/galleries"
DEFINITION_TYPE = "microsoft.compute/galleries/images"
VERSION_TYPE = "microsoft.compute/galleries/images/versions"

ADMIN = Principal(ADMIN_OBJECT_ID, DEFAULT_TENANT_ID, PrincipalType.ADMIN, name="admin")

_CALLER: ContextVar[Principal | None] = ContextVar("vmgallery_caller", default=None)


@contextlib.contextmanager
def calling_as(principal: Principal | None) -> Iterator[None]:
    """Run the block as `principal` (None: the admin)."""
    token = _CALLER.set(principal)
    try:
        yield
    finally:
        _CALLER.reset(token)


def caller() -> Principal:
    return _CALLER.get() or ADMIN


class ActionCheck(Protocol):
    def check(self, principal: Principal, action: str, scope: str) -> None:
        """Return if `principal` may perform `action` (e.g. SHARE_ACTION) on the resource id `scope`; raise the
        ARM 403 (AuthorizationFailed) otherwise."""
        ...


# -- finding what a consumer names -------------------------------------------------------------------------------
def _rows(tx: Transaction, type_: str, *, parent_key: str) -> Iterator[ResourceRow]:
    after = 0
    while True:
        page = tx.page(type=type_, after=after, limit=500, parent_key=parent_key)
        yield from page
        if len(page) < 500:
            return
        after = page[-1].seq


def _finished(rows: Iterator[ResourceRow]) -> Iterator[ResourceRow]:
    return (r for r in rows if r.state == "Succeeded")


@dataclass(frozen=True)
class Consumer:
    """Who asks, from where: the caller acting in a consumer subscription, and that subscription's tenant."""

    principal: Principal
    subscription: str
    tenant: str | None

    @classmethod
    def of(cls, subscription: str, tenants: SubscriptionTenants) -> Consumer:
        return cls(caller(), subscription.lower(), tenants.tenant_of(subscription))

    def sees_shared(self, gallery: Body, shared_to: str | None = None) -> bool:
        return rules.may_use_shared(self.principal, self.subscription, self.tenant, rules.group_ids(gallery), shared_to)


def shared_galleries(tx: Transaction, consumer: Consumer, shared_to: str | None) -> list[ResourceRow]:
    """The galleries shared with the consumer's subscription (or, with sharedTo=tenant, its tenant)."""
    if shared_to == "tenant":
        rows = tx.galleries_shared_with("tenant", consumer.tenant) if consumer.tenant else []
    else:
        rows = tx.galleries_shared_with("subscription", consumer.subscription)
    return [r for r in rows if r.state == "Succeeded" and consumer.sees_shared(r.body, shared_to or "subscription")]


def shared_gallery(tx: Transaction, consumer: Consumer, unique_name: str, shared_to: str | None = None) -> ResourceRow:
    """The gallery whose identifier.uniqueName is `unique_name`, if it is shared with the consumer (with `shared_to`,
    through that kind of share only)."""
    candidates = tx.galleries_shared_with("subscription", consumer.subscription)
    if consumer.tenant:
        candidates += tx.galleries_shared_with("tenant", consumer.tenant)
    for row in candidates:
        if (
            row.state == "Succeeded"
            and ((row.body.get("properties") or {}).get("identifier") or {}).get("uniqueName", "").lower()
            == unique_name.lower()
            and consumer.sees_shared(row.body, shared_to)
        ):
            return row
    raise errors.NotFound(
        f"The shared gallery '{unique_name}' was not found, or it is not shared with subscription "
        f"'{consumer.subscription}' or its tenant.",
        "galleryUniqueName",
    )


def community_gallery(tx: Transaction, public_name: str) -> ResourceRow:
    """The enabled community gallery known by `public_name`; any authenticated caller may see it."""
    for row in tx.galleries_shared_with("community", public_name):
        if row.state == "Succeeded" and rules.may_use_community(caller(), row.body):
            return row
    raise errors.NotFound(f"The community gallery '{public_name}' was not found.", "publicGalleryName")


def definitions_of(tx: Transaction, gallery: ResourceRow) -> list[ResourceRow]:
    return list(_finished(_rows(tx, DEFINITION_TYPE, parent_key=gallery.key)))


def definition_in(tx: Transaction, gallery: ResourceRow, name: str, shown: str) -> ResourceRow:
    row = tx.get(f"{gallery.key}/images/{name.lower()}")
    if row is None or row.state != "Succeeded":
        raise errors.NotFound(f"The image '{shown}' was not found.", "galleryImageName")
    return row


def versions_of(tx: Transaction, definition: ResourceRow, location: str) -> list[ResourceRow]:
    """The definition's finished versions usable in `location` (consumers make disks where a version is)."""
    return [
        r
        for r in _finished(_rows(tx, VERSION_TYPE, parent_key=definition.key))
        if location in usable_regions(tx, r.key)
    ]


def version_in(tx: Transaction, definition: ResourceRow, name: str, location: str, shown: str) -> ResourceRow:
    row = tx.get(f"{definition.key}/versions/{name.lower()}")
    if row is None or row.state != "Succeeded" or location not in usable_regions(tx, row.key):
        raise errors.NotFound(
            f"The image version '{shown}' was not found in '{location}' (or is not replicated there yet).",
            "galleryImageVersionName",
        )
    return row


def consumer_version_disk(
    tx: Transaction,
    reference: str,
    key: str,
    lun: int | None,
    location: str,
    shallow_max_disks: int,
    tenants: SubscriptionTenants,
    disk_subscription: str,
) -> sources.VersionDisk:
    """A disk made from a `sharedGalleryImageId` or `communityGalleryImageId` (a version or `latest`): resolved
    through the consumer view, so a gallery not shared with the disk's subscription (or its tenant), or a community
    gallery not enabled, is not found; messages name the consumer id, never the owner's resource id."""
    target = f"properties.creationData.galleryImageReference.{key}"
    ref = rules.parse_consumer_image_id(reference, key == "communityGalleryImageId", target)
    try:
        if ref.community:
            gallery = community_gallery(tx, ref.gallery)
        else:
            gallery = shared_gallery(tx, Consumer.of(disk_subscription, tenants), ref.gallery)
        definition = definition_in(tx, gallery, ref.image, reference)
    except errors.NotFound as exc:
        raise errors.NotFound(exc.message, target) from None
    version_id = f"{definition.body['id']}/versions/{ref.version}"
    return sources.version_disk(tx, version_id, lun, location, shallow_max_disks, target=target, shown=reference)
