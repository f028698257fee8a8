"""Image sources, resolved and checked in one place: the disk, snapshot, managed image or gallery image version a
new resource is made from, and the storage account and VHD blob an import reads.

Every rule about a source is written once here: it exists, it has finished provisioning, it is in the new
resource's region, it has content (an upload has ended), a storage account is one the operator configured, and a
version named `latest` resolves among those usable where it is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..domain import errors
from ..domain.disks import FOOTER
from ..domain.ids import ResourceId, parse_resource_id
from ..domain.validate import Body
from .ports import ResourceRow, StorageAccountError, StorageAccounts, Transaction
from .replication import usable_regions

_CONFIGURE = "the operator maps storage accounts to blob endpoints in the server's config.toml ([storage_accounts])."


def slot_of(lun: int | None) -> str:
    """The content slot of a version's or image's disk: `os`, or `data:<lun>`."""
    return "os" if lun is None else f"data:{lun}"


def finished(tx: Transaction, source_id: str, what: str, target: str) -> ResourceRow:
    """The source resource, which must exist and have finished provisioning."""
    rid = parse_resource_id(source_id)
    row = tx.get(rid.key) if rid else None
    if row is None:
        raise errors.NotFound(f"The {what} '{source_id}' was not found.", target)
    if row.state != "Succeeded":
        raise errors.OperationNotAllowed(
            f"The {what} '{source_id}' is {row.state}; it must have finished provisioning.", target
        )
    return row


def in_region(row: ResourceRow, location: str, what: str, target: str) -> None:
    """Sources move no bytes between regions: they must be where the new resource is made."""
    if row.location != location:
        raise errors.InvalidParameter(
            f"The {what} '{row.body['id']}' is in '{row.location}'; a resource in '{location}' can only be made from "
            "sources in its own region.",
            target,
        )


def content(tx: Transaction, row: ResourceRow, what: str, target: str) -> str:
    """The manifest of a disk's or snapshot's bytes; refused while an upload has not ended."""
    manifest_id = tx.contents(row.key).get("disk")
    if manifest_id is None:
        raise errors.OperationNotAllowed(
            f"The {what} '{row.body['id']}' has no content yet (its upload has not ended).", target
        )
    return manifest_id


def disk(tx: Transaction, source_id: str, what: str, target: str, location: str) -> tuple[ResourceRow, str]:
    """A disk or snapshot source: its row and the manifest of its bytes, every rule checked."""
    row = finished(tx, source_id, what, target)
    in_region(row, location, what, target)
    return row, content(tx, row, what, target)


def known_account(accounts: StorageAccounts, account_id: str, target: str) -> None:
    if account_id not in accounts:
        raise errors.InvalidParameter(
            f"The storage account '{account_id}' is not known to this server; {_CONFIGURE}", target
        )


def account_of(accounts: StorageAccounts, uri: str, target: str) -> str:
    """The configured storage account a blob URL lies under (managed images name a blob by URL alone)."""
    account = accounts.account_for(uri)
    if account is None:
        raise errors.InvalidParameter(
            f"The blob '{uri}' is not in a storage account known to this server; {_CONFIGURE}", target
        )
    return account


def vhd_raw_size(accounts: StorageAccounts, account_id: str, uri: str, target: str) -> int:
    """The raw disk size of a fixed VHD blob, read from its properties (checked before a create is accepted)."""
    try:
        return accounts.open_blob(account_id, uri).size - FOOTER
    except StorageAccountError as exc:
        raise errors.InvalidParameter(f"The VHD blob '{uri}' cannot be read: {exc}", target) from None


def version(tx: Transaction, rid: ResourceId, region: str | None, target: str, shown: str | None = None) -> ResourceRow:
    """The version a reference names, `latest` resolved among versions usable in `region`. `shown` is how messages
    name it (a consumer's id instead of the owner's resource id)."""
    if rid.name.lower() != "latest":
        row = tx.get(rid.key)
        if row is None:
            raise errors.NotFound(f"The gallery image version '{shown or rid.text}' was not found.", target)
        if row.state != "Succeeded":
            raise errors.OperationNotAllowed(f"The gallery image version '{shown or rid.text}' is {row.state}.", target)
        return row
    definition = _parent(rid)
    row = tx.latest_version(definition.key, region)
    if row is None:
        if tx.get(definition.key) is None:
            raise errors.NotFound(f"The gallery image definition '{shown or definition.text}' was not found.", target)
        where = f" in region '{region}'" if region else ""
        raise errors.NotFound(
            f"The gallery image definition '{definition.name}' has no version that can be "
            f"used as latest{where} (none finished, or all excluded from latest).",
            target,
        )
    return row


def definition_of(tx: Transaction, version_row: ResourceRow) -> Body:
    """The properties of a version's image definition."""
    definition = tx.get(_parent(parse_resource_id(version_row.body["id"])).key)
    if definition is None:
        raise errors.NotFound(f"The image definition of '{version_row.body['id']}' was not found.")
    props: Body = definition.body["properties"]
    return props


@dataclass
class VersionDisk:
    """A disk made from a version: the manifest it starts from, the OS facts it inherits, and which of the
    version's replicas in its region it reads first."""

    manifest_id: str
    version_key: str
    replica: int
    facts: Body = field(default_factory=dict)


def version_disk(
    tx: Transaction,
    version_id: str,
    lun: int | None,
    location: str,
    shallow_max_disks: int,
    *,
    target: str = "properties.creationData.galleryImageReference.id",
    shown: str | None = None,
) -> VersionDisk:
    """For a disk made FromImage: the version's OS disk (or data disk `lun`), which must be usable in the disk's
    region; disks spread round-robin over the version's replicas there. `shown` names the version in messages when
    the caller must not see its resource id (a consumer of a shared or community gallery)."""
    rid = parse_resource_id(version_id)
    if rid is None:
        raise errors.InvalidParameter(f"'{version_id}' is not a gallery image version id.", target)
    row = version(tx, rid, location, target, shown)
    name = shown or row.body["id"]
    if location not in usable_regions(tx, row.key):
        raise errors.OperationNotAllowed(
            f"The gallery image version '{name}' is not (yet) replicated to "
            f"'{location}'; its replication status says where it is usable.",
            target,
        )
    made = tx.count_made_from(row.key)
    profile = row.body["properties"]["publishingProfile"]
    if profile.get("replicationMode") == "Shallow" and made >= shallow_max_disks:
        raise errors.OperationNotAllowed(
            f"The shallow version '{name}' already has {made} disks made from it; a shallow version "
            f"serves at most {shallow_max_disks} (replicate it fully to deploy more).",
            target,
        )
    replicas = [r.idx for r in tx.replicas_of(row.key) if r.region == location]
    manifest_id = tx.contents(row.key).get(slot_of(lun))
    if manifest_id is None:
        raise errors.InvalidParameter(
            f"The gallery image version '{name}' has no data disk at lun {lun}.",
            "properties.creationData.galleryImageReference.lun",
        )
    facts: Body = {}
    if lun is None:
        definition = definition_of(tx, row)
        facts = {
            "osType": definition["osType"],
            "hyperVGeneration": definition.get("hyperVGeneration", "V1"),
            "supportedCapabilities": {"architecture": definition.get("architecture", "x64")},
        }
    return VersionDisk(manifest_id, row.key, replicas[made % len(replicas)], facts)


def _parent(rid: ResourceId | None) -> ResourceId:
    parent = rid.parent if rid else None
    if parent is None:
        raise errors.InvalidParameter("A gallery image version id names its definition.")
    return parent
