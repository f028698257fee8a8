"""Disks and snapshots: where their bytes come from when they are created, and how a resize changes them.

Empty, Copy and FromImage never move bytes: they write (or reuse) a manifest in the create transaction. Upload
leaves the disk ReadyToUpload for the page-blob protocol. Import is a job: its slow phase reads the VHD blob from
the storage account into chunks, its commit names the manifest. Growing a disk writes a new manifest in the update
transaction: the old chunks, holes up to the new end, and the footer moved there; only the chunk or two around the
old and the new footer are written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..domain import disks as rules
from ..domain import errors
from ..domain.ids import ResourceId
from ..domain.manifests import Manifest
from ..domain.timestamps import arm_time
from ..domain.validate import Body, given
from ..domain.vhd import is_azure_vhd_size, parse_vhd_footer, vhd_footer
from . import sharing, sources
from .content import read_range, write_image
from .operations import JobContext, with_state
from .ports import (
    Clock,
    Dependencies,
    OperationRow,
    RegionStores,
    ResourceRow,
    StorageAccountError,
    StorageAccounts,
    Transaction,
)
from .replication import reader_for


@dataclass
class Prepared:
    """What a create transaction writes besides the resource row."""

    spec: Body
    contents: dict[str, str] = field(default_factory=dict)
    job: str = "provision"
    state: str = "Creating"
    source: tuple[str, int] | None = None  # a disk made from a version: (version key, replica it reads first)


def footer_manifest(stores: RegionStores, region: str, raw_size: int, now: float) -> Manifest:
    """An all-zero disk image of raw_size bytes: holes, then the VHD footer as its only stored chunk."""
    store = stores.store(region)
    image = raw_size + rules.FOOTER
    base = Manifest.empty(image, store.chunk_size)
    last = len(base.digests) - 1
    offset, length = base.span(last)
    tail = bytes(length - rules.FOOTER) + vhd_footer(raw_size, timestamp=int(now))
    digests = list(base.digests)
    digests[last] = store.put(tail)
    return Manifest(image, store.chunk_size, tuple(digests))


def _fill(spec: Body, *, image_size: int | None, state: str, now: float, snapshot: bool) -> Body:
    props = spec["properties"]
    props["uniqueId"] = str(uuid.uuid4())
    props["timeCreated"] = arm_time(now)
    props["diskState"] = state
    if image_size is not None:
        props["diskSizeGB"] = rules.raw_size_gb(image_size)
        props["diskSizeBytes"] = image_size - rules.FOOTER
    rules.fill_performance(spec, snapshot=snapshot)
    return spec


def _inherit(spec: Body, source: Body, snapshot: bool) -> None:
    """A copy keeps its source's OS facts unless the request states them, and names the source's uniqueId. An
    incremental snapshot belongs to the family of its disk (or of the incremental snapshot it copies)."""
    props, src = spec["properties"], source.get("properties", {})
    for key in ("osType", "hyperVGeneration", "supportedCapabilities", "securityProfile"):
        if key not in props and key in src:
            props[key] = src[key]
    props["creationData"]["sourceUniqueId"] = src.get("uniqueId")
    if snapshot and props.get("incremental"):
        props["incrementalSnapshotFamilyId"] = src.get("incrementalSnapshotFamilyId") or src.get("uniqueId")


def prepare_disk(
    resources: Dependencies, tx: Transaction, rid: ResourceId, spec: Body, location: str, *, snapshot: bool = False
) -> Prepared:
    spec, creation = rules.normalize_disk(spec, snapshot=snapshot)
    now = resources.clock()
    if creation.option == "Empty":
        manifest = footer_manifest(resources.stores, location, given(creation.size_bytes, "diskSizeGB"), now)
        tx.put_manifest(manifest, now)
        return Prepared(
            _fill(spec, image_size=manifest.size, state="Unattached", now=now, snapshot=snapshot),
            {"disk": manifest.id},
        )
    if creation.option == "Upload":
        return Prepared(_fill(spec, image_size=creation.size_bytes, state="ReadyToUpload", now=now, snapshot=False))
    if creation.option == "Copy":
        source, manifest_id = sources.disk(
            tx,
            given(creation.source_id, "sourceResourceId"),
            "source disk or snapshot",
            "properties.creationData.sourceResourceId",
            location,
        )
        _inherit(spec, source.body, snapshot)
        manifest = tx.get_manifest(manifest_id)
        return Prepared(
            _fill(spec, image_size=manifest.size, state="Unattached", now=now, snapshot=snapshot),
            {"disk": manifest_id},
        )
    if creation.option == "FromImage":
        if creation.source_key == "id":
            made = sources.version_disk(
                tx,
                given(creation.source_id, "galleryImageReference"),
                creation.source_lun,
                location,
                resources.settings.shallow_max_disks,
            )
        else:
            made = sharing.consumer_version_disk(
                tx,
                given(creation.source_id, "galleryImageReference"),
                creation.source_key,
                creation.source_lun,
                location,
                resources.settings.shallow_max_disks,
                resources.subscription_tenants,
                rid.subscription,
            )
        for key, value in made.facts.items():
            spec["properties"].setdefault(key, value)
        manifest = tx.get_manifest(made.manifest_id)
        return Prepared(
            _fill(spec, image_size=manifest.size, state="Unattached", now=now, snapshot=snapshot),
            {"disk": made.manifest_id},
            source=(made.version_key, made.replica),
        )
    account = given(creation.storage_account_id, "storageAccountId")
    sources.known_account(resources.accounts, account, "properties.creationData.storageAccountId")
    return Prepared(_fill(spec, image_size=None, state="Unattached", now=now, snapshot=snapshot), job="disk_import")


def update_disk(
    resources: Dependencies, tx: Transaction, existing: ResourceRow, spec: Body, *, snapshot: bool = False
) -> None:
    """An accepted update: a larger diskSizeGB grows the bytes (zeros past the old end, the footer moved to the new
    one); the size and performance Azure reports follow the new size and sku."""
    props, old = spec["properties"], existing.body["properties"]
    if props.get("diskSizeGB") is None:
        props["diskSizeGB"] = old.get("diskSizeGB")
    props["diskSizeBytes"] = old.get("diskSizeBytes")
    if props["diskSizeGB"] is not None and props["diskSizeGB"] != old.get("diskSizeGB"):
        kind = "snapshot" if snapshot else "disk"
        rules.check_resize(existing.body["name"], old.get("diskState", "Unattached"), kind)
        manifest_id = tx.contents(existing.key).get("disk")
        if manifest_id is None:
            raise errors.OperationNotAllowed(
                f"The {kind} '{existing.body['name']}' has no content yet; it can be resized once it has.",
                "properties.diskSizeGB",
            )
        raw = props["diskSizeGB"] * rules.GIB
        grown = grow(resources.stores, tx, existing, tx.get_manifest(manifest_id), raw)
        tx.put_manifest(grown, resources.clock())
        tx.set_content(existing.key, "disk", grown.id, *tx.content_source(existing.key))
        props["diskSizeBytes"] = raw
    rules.fill_performance(spec, snapshot=snapshot)


def grow(stores: RegionStores, tx: Transaction, row: ResourceRow, manifest: Manifest, raw_size: int) -> Manifest:
    """The manifest of `manifest`'s disk grown to `raw_size` raw bytes: the chunks before the old footer as they
    are, zeros (holes) to the new end, then the new footer. The chunk holding the old end is read and rewritten
    only when the old end is not on a chunk boundary (every raw size is whole MiB, so with 1 MiB chunks never)."""
    size, chunk = raw_size + rules.FOOTER, manifest.chunk_size
    old_raw = manifest.size - rules.FOOTER
    keep = old_raw // chunk
    head = read_range(reader_for(tx, stores, row.key, row.region), manifest, keep * chunk, old_raw - keep * chunk)
    footer = vhd_footer(raw_size)
    store = stores.store(row.region)
    digests: list[bytes | None] = list(manifest.digests[:keep])
    for index in range(keep, -(-size // chunk)):
        start, end = index * chunk, min(size, (index + 1) * chunk)
        if end <= raw_size and start >= old_raw:
            digests.append(None)
            continue
        data = bytearray(end - start)
        if start < old_raw:
            data[: old_raw - start] = head[start - keep * chunk :][: old_raw - start]
        if end > raw_size:
            at = max(raw_size, start)
            data[at - start :] = footer[at - raw_size : end - raw_size]
        digests.append(store.put(bytes(data)))
    return Manifest(size, chunk, tuple(digests))


class Progress(Protocol):
    def heartbeat(self, percent: int | None = None) -> None: ...


class DiskImport:
    """Import: read the VHD blob into chunks (slow, idempotent), then name the manifest (once)."""

    def __init__(self, stores: RegionStores, accounts: StorageAccounts, clock: Clock):
        self.stores, self.accounts, self.clock = stores, accounts, clock

    def work(self, ctx: JobContext, op: OperationRow) -> Manifest:
        with ctx.db.read() as tx:
            row = tx.get(op.resource_key)
        if row is None:
            raise errors.NotFound(f"The disk '{op.resource_id}' disappeared while it was being imported.")
        data = row.body["properties"]["creationData"]
        return import_blob(
            ctx,
            self.stores,
            self.accounts,
            op.location,
            data["storageAccountId"],
            data["sourceUri"],
            "properties.creationData.sourceUri",
        )

    def finish(self, tx: Transaction, op: OperationRow, manifest: Manifest) -> None:
        row = tx.get(op.resource_key, for_update=True)
        if row is None:
            raise errors.NotFound(f"The disk '{op.resource_id}' disappeared while it was being imported.")
        now = self.clock()
        tx.put_manifest(manifest, now)
        tx.set_content(row.key, "disk", manifest.id)
        body = with_state(row.body, "Succeeded")
        body["properties"]["diskSizeGB"] = rules.raw_size_gb(manifest.size)
        body["properties"]["diskSizeBytes"] = manifest.size - rules.FOOTER
        rules.fill_performance(body, snapshot=row.type == "microsoft.compute/snapshots")
        tx.update(row.key, state="Succeeded", body=body, now=now)


def import_blob(
    progress: Progress,
    stores: RegionStores,
    accounts: StorageAccounts,
    region: str,
    account_id: str,
    uri: str,
    target: str,
) -> Manifest:
    """Read a VHD blob into the region's chunk store, reporting progress; the manifest of its bytes."""
    store = stores.store(region)
    try:
        blob = accounts.open_blob(account_id, uri)
        size = blob.size
        if not is_azure_vhd_size(size):
            raise errors.InvalidParameter(
                f"The blob '{uri}' is {size} bytes; a VHD to import must be a multiple of 1 MiB plus the 512-byte "
                "footer (a fixed VHD).",
                target,
            )
        try:
            parse_vhd_footer(blob.read(size - rules.FOOTER, rules.FOOTER))
        except ValueError as exc:
            raise errors.InvalidParameter(f"The blob '{uri}' is not a fixed VHD: {exc}", target) from None

        def pieces() -> Iterator[bytes]:
            # iter_ranges skips the unwritten ranges of a page blob: holes cost no download.
            for n, (offset, piece) in enumerate(blob.iter_ranges(store.chunk_size)):
                progress.heartbeat(int((offset + len(piece)) * 100 / size) if n % 64 == 0 else None)
                yield piece

        return write_image(store, pieces(), size)
    except StorageAccountError as exc:
        raise errors.InvalidParameter(f"The VHD blob '{uri}' cannot be read: {exc}", target) from None
