"""Managed images: where their disks' bytes come from when they are created.

A disk or snapshot source moves no bytes: the create transaction names its manifest in the image's slot (`os`,
`data:<lun>`). VHD blob sources are read by one job, `image_import`: its slow phase reads every blob of the image
into chunks, its commit names the manifests. Azure's image API names a blob by URL alone, so the storage account is
the configured one whose blob endpoint the URL lies under.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..adapters.blobs.chunks import Manifest
from ..adapters.db.store import OperationRow, Tx
from ..domain import disks as disk_rules
from ..domain import errors
from ..domain import images as rules
from ..domain.validate import Body
from .disks import Prepared, import_blob, source_row
from .operations import JobContext, _set_state

NOUNS = {"disk": "managed disk", "snapshot": "snapshot"}


def _account_for(services, disk: rules.ImageDisk) -> str:
    account = services.accounts.account_for(disk.uri)
    if account is None:
        raise errors.InvalidParameter(
            f"The blob '{disk.uri}' is not in a storage account known to this server; the operator maps storage "
            "accounts to blob endpoints in the server's config.toml ([storage_accounts]).",
            disk.target,
        )
    return account


def _set_size(spec: Body, disk: rules.ImageDisk, size_gb: int) -> None:
    profile = spec["properties"]["storageProfile"]
    target = profile["osDisk"] if disk.lun is None else next(d for d in profile["dataDisks"] if d["lun"] == disk.lun)
    target["diskSizeGB"] = size_gb


def prepare_image(resources, tx: Tx, rid, spec: Body, location: str) -> Prepared:
    """Check every source and name the manifests of the managed ones; blobs are left to the import job."""
    services = resources.services
    contents: dict[str, str] = {}
    blobs = False
    for disk in rules.image_disks(spec):
        if disk.kind == "vhd":
            _account_for(services, disk)
            blobs = True
            continue
        what = f"{NOUNS[disk.kind]} '{disk.id.text}'"
        source = source_row(tx, disk.id.text, NOUNS[disk.kind], disk.target)
        if source.location != location:
            raise errors.InvalidParameter(
                f"The {what} is in '{source.location}'; an image in '{location}' can only use sources in its own "
                "region.",
                disk.target,
            )
        manifest_id = tx.contents(source.key).get("disk")
        if manifest_id is None:
            raise errors.Conflict(
                f"The {what} has no content yet (its upload has not ended).", disk.target, code="OperationNotAllowed"
            )
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

    def work(self, ctx: JobContext, op: OperationRow) -> Any:
        with ctx.db.read() as tx:
            row = tx.get(op.resource_key)
        vhds = [d for d in rules.image_disks(row.body) if d.kind == "vhd"]
        manifests: dict[str, Manifest] = {}
        for index, disk in enumerate(vhds):
            account = _account_for(ctx.services, disk)
            manifest = import_blob(
                _Share(ctx, index, len(vhds)), ctx.services, op.location, account, disk.uri, disk.target
            )
            rules.size_gb_fits(disk, disk_rules.raw_size_gb(manifest.size), f"blob '{disk.uri}'")
            manifests[disk.slot] = manifest
        return {"manifests": manifests}

    def finish(self, tx: Tx, op: OperationRow, result: Any) -> None:
        manifests: dict[str, Manifest] = result["manifests"]
        row = tx.get(op.resource_key, for_update=True)
        body = _set_state(row.body, "Succeeded")
        for disk in rules.image_disks(body):
            manifest = manifests.get(disk.slot)
            if manifest is None:
                continue
            tx.put_manifest(manifest, time.time())
            tx.set_content(row.key, disk.slot, manifest.id)
            _set_size(body, disk, disk.size_gb or disk_rules.raw_size_gb(manifest.size))
        tx.update(row.key, state="Succeeded", body=body, now=time.time())


IMAGE_HANDLERS: dict[str, Callable] = {"image_import": ImageImport()}
