"""Disks and snapshots: where their bytes come from when they are created, and how a resize changes them.

Empty, Copy and FromImage never move bytes: they write (or reuse) a manifest in the create transaction. Upload
leaves the disk ReadyToUpload for the page-blob protocol. Import is a job: its slow phase reads the VHD blob from
the storage account into chunks, its commit names the manifest. Growing a disk writes a new manifest in the update
transaction: the old chunks, holes up to the new end, and the footer moved there; only the chunk or two around the
old and the new footer are written.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..adapters.blobs.chunks import Manifest, read_range, write_image
from ..adapters.db.store import OperationRow, ResourceRow, Tx
from ..domain import disks as rules
from ..domain import errors
from ..domain.ids import parse_resource_id
from ..domain.validate import Body
from .operations import JobContext, _set_state
from .replication import reader_for


@dataclass
class Prepared:
    """What a create transaction writes besides the resource row."""

    spec: Body
    contents: dict[str, str] = field(default_factory=dict)
    job: str = "provision"
    state: str = "Creating"
    source: tuple[str, int] | None = None  # a disk made from a version: (version key, replica it reads first)


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e7):07d}+00:00"


def footer_manifest(services, region: str, raw_size: int) -> Manifest:
    """An all-zero disk image of raw_size bytes: holes, then the VHD footer as its only stored chunk."""
    from ..adapters.disks.formats import vhd_footer

    store = services.stores.store(region)
    image = raw_size + rules.FOOTER
    base = Manifest.empty(image, store.chunk_size)
    last = len(base.digests) - 1
    offset, length = base.span(last)
    tail = bytes(length - rules.FOOTER) + vhd_footer(raw_size)
    digests = list(base.digests)
    digests[last] = store.put(tail)
    return Manifest(image, store.chunk_size, tuple(digests))


def source_row(tx: Tx, source_id: str, what: str, target: str) -> ResourceRow:
    rid = parse_resource_id(source_id)
    row = tx.get(rid.key) if rid else None
    if row is None:
        raise errors.NotFound(f"The {what} '{source_id}' was not found.", target)
    if row.state not in ("Succeeded",):
        raise errors.Conflict(
            f"The {what} '{source_id}' is {row.state}; it must have finished provisioning.",
            target,
            code="OperationNotAllowed",
        )
    return row


def _fill(spec: Body, *, image_size: int | None, state: str, now: float, snapshot: bool) -> Body:
    props = spec["properties"]
    props["uniqueId"] = str(uuid.uuid4())
    props["timeCreated"] = iso(now)
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


def prepare_disk(resources, tx: Tx, rid, spec: Body, location: str, *, snapshot: bool = False) -> Prepared:
    services = resources.services
    spec, creation = rules.normalize_disk(spec, snapshot=snapshot)
    now = resources.clock()
    if creation.option == "Empty":
        manifest = footer_manifest(services, location, creation.size_bytes)
        tx.put_manifest(manifest, now)
        return Prepared(
            _fill(spec, image_size=manifest.size, state="Unattached", now=now, snapshot=snapshot),
            {"disk": manifest.id},
        )
    if creation.option == "Upload":
        return Prepared(_fill(spec, image_size=creation.size_bytes, state="ReadyToUpload", now=now, snapshot=False))
    if creation.option == "Copy":
        source = source_row(
            tx, creation.source_id, "source disk or snapshot", "properties.creationData.sourceResourceId"
        )
        if source.location != location:
            raise errors.InvalidParameter(
                f"The source '{creation.source_id}' is in '{source.location}'; a copy must be made in the same "
                f"region, not '{location}'.",
                "properties.creationData.sourceResourceId",
            )
        manifest_id = tx.contents(source.key).get("disk")
        if manifest_id is None:
            raise errors.Conflict(
                f"The source '{creation.source_id}' has no content yet (its upload has not ended).",
                "properties.creationData.sourceResourceId",
                code="OperationNotAllowed",
            )
        _inherit(spec, source.body, snapshot)
        manifest = tx.get_manifest(manifest_id)
        return Prepared(
            _fill(spec, image_size=manifest.size, state="Unattached", now=now, snapshot=snapshot),
            {"disk": manifest_id},
        )
    if creation.option == "FromImage":
        from .versions import resolve_disk  # versions build on disks; the reverse need is only this one

        manifest_id, facts, source = resolve_disk(
            tx, creation.source_id, creation.source_lun, location, resources.settings
        )
        for key, value in facts.items():
            spec["properties"].setdefault(key, value)
        manifest = tx.get_manifest(manifest_id)
        return Prepared(
            _fill(spec, image_size=manifest.size, state="Unattached", now=now, snapshot=snapshot),
            {"disk": manifest_id},
            source=source,
        )
    if creation.storage_account_id not in services.accounts:
        raise errors.InvalidParameter(
            f"The storage account '{creation.storage_account_id}' is not known to this server; the operator maps "
            "storage accounts to blob endpoints in the server's config.toml ([storage_accounts]).",
            "properties.creationData.storageAccountId",
        )
    return Prepared(_fill(spec, image_size=None, state="Unattached", now=now, snapshot=snapshot), job="disk_import")


def update_disk(resources, tx: Tx, existing: ResourceRow, spec: Body, *, snapshot: bool = False) -> None:
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
            raise errors.Conflict(
                f"The {kind} '{existing.body['name']}' has no content yet; it can be resized once it has.",
                "properties.diskSizeGB",
                code="OperationNotAllowed",
            )
        raw = props["diskSizeGB"] * rules.GIB
        grown = grow(resources.services, tx, existing, tx.get_manifest(manifest_id), raw)
        tx.put_manifest(grown, resources.clock())
        tx.set_content(existing.key, "disk", grown.id, *tx.content_source(existing.key))
        props["diskSizeBytes"] = raw
    rules.fill_performance(spec, snapshot=snapshot)


def grow(services, tx: Tx, row: ResourceRow, manifest: Manifest, raw_size: int) -> Manifest:
    """The manifest of `manifest`'s disk grown to `raw_size` raw bytes: the chunks before the old footer as they
    are, zeros (holes) to the new end, then the new footer. The chunk holding the old end is read and rewritten
    only when the old end is not on a chunk boundary (every raw size is whole MiB, so with 1 MiB chunks never)."""
    from ..adapters.disks.formats import vhd_footer

    size, chunk = raw_size + rules.FOOTER, manifest.chunk_size
    old_raw = manifest.size - rules.FOOTER
    keep = old_raw // chunk
    head = read_range(
        reader_for(tx, services.stores, row.key, row.location), manifest, keep * chunk, old_raw - keep * chunk
    )
    footer = vhd_footer(raw_size)
    store = services.stores.store(row.location)
    digests = list(manifest.digests[:keep])
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


class DiskImport:
    """Import: read the VHD blob into chunks (slow, idempotent), then name the manifest (once)."""

    def work(self, ctx: JobContext, op: OperationRow) -> Any:
        with ctx.db.read() as tx:
            row = tx.get(op.resource_key)
        data = row.body["properties"]["creationData"]
        manifest = import_blob(
            ctx,
            ctx.services,
            op.location,
            data["storageAccountId"],
            data["sourceUri"],
            "properties.creationData.sourceUri",
        )
        return {"manifest": manifest}

    def finish(self, tx: Tx, op: OperationRow, result: Any) -> None:
        manifest: Manifest = result["manifest"]
        row = tx.get(op.resource_key, for_update=True)
        tx.put_manifest(manifest, time.time())
        tx.set_content(row.key, "disk", manifest.id)
        body = _set_state(row.body, "Succeeded")
        body["properties"]["diskSizeGB"] = rules.raw_size_gb(manifest.size)
        body["properties"]["diskSizeBytes"] = manifest.size - rules.FOOTER
        rules.fill_performance(body, snapshot=row.type == "microsoft.compute/snapshots")
        tx.update(row.key, state="Succeeded", body=body, now=time.time())


def import_blob(ctx: JobContext, services, region: str, account_id: str, uri: str, target: str) -> Manifest:
    """Read a VHD blob into the region's chunk store, reporting progress; the manifest of its bytes."""
    from ..adapters.disks.formats import is_azure_vhd_size, parse_vhd_footer
    from ..adapters.storage_accounts import StorageAccountError

    store = services.stores.store(region)
    try:
        blob = services.accounts.open_blob(account_id, uri)
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

        def pieces():
            # iter_ranges skips the unwritten ranges of a page blob: holes cost no download.
            for n, (offset, piece) in enumerate(blob.iter_ranges(store.chunk_size)):
                ctx.heartbeat(int((offset + len(piece)) * 100 / size) if n % 64 == 0 else None)
                yield piece

        return write_image(store, pieces(), size)
    except StorageAccountError as exc:
        raise errors.InvalidParameter(f"The VHD blob '{uri}' cannot be read: {exc}", target) from None


IMPORT_HANDLERS: dict[str, Callable] = {"disk_import": DiskImport()}
