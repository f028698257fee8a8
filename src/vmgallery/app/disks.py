"""Disks and snapshots: where their bytes come from when they are created.

Empty, Copy and FromImage never move bytes: they write (or reuse) a manifest in the create transaction. Upload
leaves the disk ReadyToUpload for the page-blob protocol. Import is a job: its slow phase reads the VHD blob from
the storage account into chunks, its commit names the manifest.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..adapters.blobs.chunks import Manifest, write_image
from ..adapters.db.store import OperationRow, ResourceRow, Tx
from ..domain import disks as rules
from ..domain import errors
from ..domain.ids import parse_resource_id
from ..domain.validate import Body
from .operations import JobContext, _set_state


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


def _fill(spec: Body, *, location: str, image_size: int | None, state: str, now: float) -> Body:
    props = spec["properties"]
    props["uniqueId"] = str(uuid.uuid4())
    props["timeCreated"] = iso(now)
    props["diskState"] = state
    if image_size is not None:
        props["diskSizeGB"] = rules.raw_size_gb(image_size)
        props["diskSizeBytes"] = image_size - rules.FOOTER
    spec.setdefault("sku", {"name": "Standard_LRS", "tier": "Standard"})
    return spec


def _inherit(spec: Body, source: Body) -> None:
    """A copy keeps its source's OS facts unless the request states them."""
    props, src = spec["properties"], source.get("properties", {})
    for key in ("osType", "hyperVGeneration", "supportedCapabilities", "securityProfile"):
        if key not in props and key in src:
            props[key] = src[key]


def prepare_disk(resources, tx: Tx, rid, spec: Body, location: str, *, snapshot: bool = False) -> Prepared:
    services = resources.services
    spec, creation = rules.normalize_disk(spec, snapshot=snapshot)
    now = resources.clock()
    if creation.option == "Empty":
        manifest = footer_manifest(services, location, creation.size_bytes)
        tx.put_manifest(manifest, now)
        return Prepared(
            _fill(spec, location=location, image_size=manifest.size, state="Unattached", now=now), {"disk": manifest.id}
        )
    if creation.option == "Upload":
        return Prepared(_fill(spec, location=location, image_size=creation.size_bytes, state="ReadyToUpload", now=now))
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
        _inherit(spec, source.body)
        manifest = tx.get_manifest(manifest_id)
        return Prepared(
            _fill(spec, location=location, image_size=manifest.size, state="Unattached", now=now), {"disk": manifest_id}
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
            _fill(spec, location=location, image_size=manifest.size, state="Unattached", now=now),
            {"disk": manifest_id},
            source=source,
        )
    if creation.storage_account_id not in services.accounts:
        raise errors.InvalidParameter(
            f"The storage account '{creation.storage_account_id}' is not known to this server; the operator maps "
            "storage accounts to blob endpoints in the server's config.toml ([storage_accounts]).",
            "properties.creationData.storageAccountId",
        )
    return Prepared(_fill(spec, location=location, image_size=None, state="Unattached", now=now), job="disk_import")


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
