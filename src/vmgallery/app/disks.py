"""Disks and snapshots: where their bytes come from when they are created.

Empty, Copy and FromImage never move bytes: they write (or reuse) a manifest in the create transaction. Upload
leaves the disk ReadyToUpload for the page-blob protocol. Import is a job: its slow phase reads the VHD blob from
the storage account into chunks, its commit names the manifest.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..domain import disks as rules
from ..domain import errors
from ..domain.ids import ResourceId
from ..domain.manifests import Manifest
from ..domain.timestamps import arm_time
from ..domain.validate import Body, given
from ..domain.vhd import is_azure_vhd_size, parse_vhd_footer, vhd_footer
from . import sources
from .content import write_image
from .operations import JobContext, with_state
from .ports import Clock, OperationRow, RegionStores, StorageAccountError, StorageAccounts, Transaction

if TYPE_CHECKING:
    from .resources import Resources


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


def _fill(spec: Body, *, location: str, image_size: int | None, state: str, now: float) -> Body:
    props = spec["properties"]
    props["uniqueId"] = str(uuid.uuid4())
    props["timeCreated"] = arm_time(now)
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


def prepare_disk(
    resources: Resources, tx: Transaction, rid: ResourceId, spec: Body, location: str, *, snapshot: bool = False
) -> Prepared:
    spec, creation = rules.normalize_disk(spec, snapshot=snapshot)
    now = resources.clock()
    if creation.option == "Empty":
        manifest = footer_manifest(resources.stores, location, given(creation.size_bytes, "diskSizeGB"), now)
        tx.put_manifest(manifest, now)
        return Prepared(
            _fill(spec, location=location, image_size=manifest.size, state="Unattached", now=now), {"disk": manifest.id}
        )
    if creation.option == "Upload":
        return Prepared(_fill(spec, location=location, image_size=creation.size_bytes, state="ReadyToUpload", now=now))
    if creation.option == "Copy":
        source, manifest_id = sources.disk(
            tx,
            given(creation.source_id, "sourceResourceId"),
            "source disk or snapshot",
            "properties.creationData.sourceResourceId",
            location,
        )
        _inherit(spec, source.body)
        manifest = tx.get_manifest(manifest_id)
        return Prepared(
            _fill(spec, location=location, image_size=manifest.size, state="Unattached", now=now), {"disk": manifest_id}
        )
    if creation.option == "FromImage":
        made = sources.version_disk(
            tx,
            given(creation.source_id, "galleryImageReference"),
            creation.source_lun,
            location,
            resources.settings.shallow_max_disks,
        )
        for key, value in made.facts.items():
            spec["properties"].setdefault(key, value)
        manifest = tx.get_manifest(made.manifest_id)
        return Prepared(
            _fill(spec, location=location, image_size=manifest.size, state="Unattached", now=now),
            {"disk": made.manifest_id},
            source=(made.version_key, made.replica),
        )
    account = given(creation.storage_account_id, "storageAccountId")
    sources.known_account(resources.accounts, account, "properties.creationData.storageAccountId")
    return Prepared(_fill(spec, location=location, image_size=None, state="Unattached", now=now), job="disk_import")


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
