"""Managed images: where their disks' bytes come from when they are created.

A disk or snapshot source moves no bytes: the create transaction names its manifest in the image's slot (`os`,
`data:<lun>`). VHD blob sources are read by one job, `image_import`: its slow phase reads every blob of the image
into chunks, its commit names the manifests. Azure's image API names a blob by URL alone, so the storage account is
the configured one whose blob endpoint the URL lies under.
"""

from __future__ import annotations

from ..domain import disks as disk_rules
from ..domain import errors
from ..domain import images as rules
from ..domain.ids import ResourceId
from ..domain.manifests import Manifest
from ..domain.validate import Body, given
from . import sources
from .disks import Prepared, import_blob
from .operations import JobContext, with_state
from .ports import Clock, Dependencies, OperationRow, RegionStores, StorageAccounts, Transaction

NOUNS = {"disk": "managed disk", "snapshot": "snapshot"}


def _set_size(spec: Body, disk: rules.ImageDisk, size_gb: int) -> None:
    profile = spec["properties"]["storageProfile"]
    target = profile["osDisk"] if disk.lun is None else next(d for d in profile["dataDisks"] if d["lun"] == disk.lun)
    target["diskSizeGB"] = size_gb


def prepare_image(resources: Dependencies, tx: Transaction, rid: ResourceId, spec: Body, location: str) -> Prepared:
    """Check every source and name the manifests of the managed ones; blobs are left to the import job."""
    contents: dict[str, str] = {}
    blobs = False
    for disk in rules.image_disks(spec):
        if disk.kind == "vhd":
            sources.account_of(resources.accounts, given(disk.uri, "blobUri"), disk.target)
            blobs = True
            continue
        source_id = given(disk.id, "managedDisk/snapshot id").text
        source, manifest_id = sources.disk(tx, source_id, NOUNS[disk.kind], disk.target, location)
        what = f"{NOUNS[disk.kind]} '{source_id}'"
        rules.check_source_facts(spec, disk, source.body, what)
        manifest = tx.get_manifest(manifest_id)
        _set_size(spec, disk, rules.size_gb_fits(disk, disk_rules.raw_size_gb(manifest.size), what))
        contents[disk.slot] = manifest_id
    spec["properties"].setdefault("hyperVGeneration", "V1")
    return Prepared(spec, contents, job="image_import" if blobs else "provision")


class _Share:
    """Progress of one blob among several, reported as the job's overall percentage."""

    def __init__(self, ctx: JobContext, index: int, count: int):
        self.ctx, self.index, self.count = ctx, index, count

    def heartbeat(self, percent: int | None = None) -> None:
        overall = None if percent is None else (self.index * 100 + percent) // self.count
        self.ctx.heartbeat(overall)


class ImageImport:
    """Read the image's VHD blobs into chunks (slow, idempotent), then name their manifests (once)."""

    def __init__(self, stores: RegionStores, accounts: StorageAccounts, clock: Clock):
        self.stores, self.accounts, self.clock = stores, accounts, clock

    def work(self, ctx: JobContext, op: OperationRow) -> dict[str, Manifest]:
        with ctx.db.read() as tx:
            row = tx.get(op.resource_key)
        if row is None:
            raise errors.NotFound(f"The image '{op.resource_id}' disappeared while it was being imported.")
        vhds = [d for d in rules.image_disks(row.body) if d.kind == "vhd"]
        manifests: dict[str, Manifest] = {}
        for index, disk in enumerate(vhds):
            uri = given(disk.uri, "blobUri")
            account = sources.account_of(self.accounts, uri, disk.target)
            manifest = import_blob(
                _Share(ctx, index, len(vhds)), self.stores, self.accounts, op.location, account, uri, disk.target
            )
            rules.size_gb_fits(disk, disk_rules.raw_size_gb(manifest.size), f"blob '{disk.uri}'")
            manifests[disk.slot] = manifest
        return manifests

    def finish(self, tx: Transaction, op: OperationRow, manifests: dict[str, Manifest]) -> None:
        row = tx.get(op.resource_key, for_update=True)
        if row is None:
            raise errors.NotFound(f"The image '{op.resource_id}' disappeared while it was being imported.")
        now = self.clock()
        body = with_state(row.body, "Succeeded")
        for disk in rules.image_disks(body):
            manifest = manifests.get(disk.slot)
            if manifest is None:
                continue
            tx.put_manifest(manifest, now)
            tx.set_content(row.key, disk.slot, manifest.id)
            _set_size(body, disk, disk.size_gb or disk_rules.raw_size_gb(manifest.size))
        tx.update(row.key, state="Succeeded", body=body, now=now)
