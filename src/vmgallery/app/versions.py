"""Gallery image versions: capturing sources, resolving `latest`, and making disks from a version.

A version's disks are manifests in slots `os` and `data:<lun>`. Capturing from a managed image, a disk, a snapshot
or another version reuses the source's manifests in the create transaction: no byte moves, at any size. A VHD blob
source is imported by a job, after every rule has been checked (sizes included, from the blob's properties).
"""

from __future__ import annotations

import time
from typing import Any

from ..adapters.db.store import OperationRow, ResourceRow, Tx
from ..domain import errors
from ..domain import replication as replication_rules
from ..domain import sources as src
from ..domain import versions as rules
from ..domain.disks import FOOTER
from ..domain.ids import ResourceId, parse_resource_id
from ..domain.validate import Body
from . import replication
from .disks import Prepared, import_blob, iso, source_row
from .operations import KEEP_RUNNING, JobContext

VERSION_TYPE = "microsoft.compute/galleries/images/versions"
GIB = 1 << 30


def slot_of(lun: int | None) -> str:
    return "os" if lun is None else f"data:{lun}"


def _size_gb(image_size: int) -> int:
    return -(-(image_size - FOOTER) // GIB)


def resolve(tx: Tx, rid: ResourceId, region: str | None, target: str) -> ResourceRow:
    """The version a reference names, `latest` resolved among versions usable in `region`."""
    if rid.name.lower() != "latest":
        row = tx.get(rid.key)
        if row is None:
            raise errors.NotFound(f"The gallery image version '{rid.text}' was not found.", target)
        if row.state != "Succeeded":
            raise errors.Conflict(
                f"The gallery image version '{rid.text}' is {row.state}.", target, code="OperationNotAllowed"
            )
        return row
    definition = rid.parent
    rows = {r.body["name"]: r for r in tx.page(type=VERSION_TYPE, after=0, limit=10**6, parent_key=definition.key)}
    candidates = [
        rules.version_facts(name, r.body, usable_regions=replication.usable_regions(tx, r.key))
        for name, r in rows.items()
    ]
    name = rules.latest_version(candidates, region)
    if name is None:
        if tx.get(definition.key) is None:
            raise errors.NotFound(f"The gallery image definition '{definition.text}' was not found.", target)
        where = f" in region '{region}'" if region else ""
        raise errors.NotFound(
            f"The gallery image definition '{definition.name}' has no version that can be "
            f"used as latest{where} (none finished, or all excluded from latest).",
            target,
        )
    return rows[name]


def resolve_disk(tx: Tx, version_id: str, lun: int | None, location: str, settings) -> tuple[str, dict, tuple]:
    """For a disk made FromImage: the manifest of the version's OS disk (or data disk `lun`), OS facts, and which of
    the version's replicas in the disk's region the disk reads first (spread round-robin over them)."""
    target = "properties.creationData.galleryImageReference.id"
    row = resolve(tx, parse_resource_id(version_id), location, target)
    if location not in replication.usable_regions(tx, row.key):
        raise errors.Conflict(
            f"The gallery image version '{row.body['id']}' is not (yet) replicated to "
            f"'{location}'; its replication status says where it is usable.",
            target,
            code="OperationNotAllowed",
        )
    made = tx.count_made_from(row.key)
    profile = row.body["properties"]["publishingProfile"]
    if profile.get("replicationMode") == "Shallow" and made >= settings.shallow_max_disks:
        raise errors.Conflict(
            f"The shallow version '{row.body['id']}' already has {made} disks made from it; a shallow version "
            f"serves at most {settings.shallow_max_disks} (replicate it fully to deploy more).",
            target,
            code="OperationNotAllowed",
        )
    replicas = [r.idx for r in tx.replicas_of(row.key) if r.region == location]
    manifest_id = tx.contents(row.key).get(slot_of(lun))
    if manifest_id is None:
        raise errors.InvalidParameter(
            f"The gallery image version '{row.body['id']}' has no data disk at lun {lun}.",
            "properties.creationData.galleryImageReference.lun",
        )
    facts: dict[str, Any] = {}
    if lun is None:
        definition = tx.get(parse_resource_id(row.body["id"]).parent.key).body["properties"]
        facts = {
            "osType": definition["osType"],
            "hyperVGeneration": definition.get("hyperVGeneration", "V1"),
            "supportedCapabilities": {"architecture": definition.get("architecture", "x64")},
        }
    return manifest_id, facts, (row.key, replicas[made % len(replicas)])


def _same_region(row: ResourceRow, location: str, what: str, target: str) -> None:
    if row.location != location:
        raise errors.InvalidParameter(
            f"The {what} '{row.body['id']}' is in '{row.location}'; a version's sources must be in its own region "
            f"'{location}'.",
            target,
        )


def _disk_facts(tx: Tx, contents: dict[str, str]) -> tuple[int | None, dict[int, int]]:
    """Raw disk sizes (disk images less their VHD footer) of the OS disk and each data disk."""
    os_size = tx.get_manifest(contents["os"]).size - FOOTER if "os" in contents else None
    data = {
        int(slot.split(":")[1]): tx.get_manifest(m).size - FOOTER
        for slot, m in contents.items()
        if slot.startswith("data:")
    }
    return os_size, data


def prepare_version(resources, tx: Tx, rid: ResourceId, spec: Body, location: str) -> Prepared:
    definition = tx.get(rid.parent.key)
    sources = src.version_sources(spec)
    contents: dict[str, str] = {}
    job = "version_capture"
    if sources.kind == src.MANAGED_IMAGE:
        row = source_row(tx, sources.id.text, "managed image", sources.target)
        _same_region(row, location, "managed image", sources.target)
        contents = tx.contents(row.key)
        os_disk = row.body["properties"]["storageProfile"]["osDisk"]
        os_size, data = _disk_facts(tx, contents)
        facts = src.SourceFacts(
            os_type=os_disk.get("osType"),
            os_state=os_disk.get("osState"),
            hyper_v_generation=row.body["properties"].get("hyperVGeneration", "V1"),
            os_disk_size_bytes=os_size,
            data_disk_sizes=data,
        )
    elif sources.kind == src.GALLERY_IMAGE_VERSION:
        row = resolve(tx, sources.id, location, sources.target)
        _same_region(row, location, "gallery image version", sources.target)
        contents = tx.contents(row.key)
        props = tx.get(parse_resource_id(row.body["id"]).parent.key).body["properties"]
        os_size, data = _disk_facts(tx, contents)
        facts = src.SourceFacts(
            os_type=props["osType"],
            os_state=props["osState"],
            hyper_v_generation=props.get("hyperVGeneration", "V1"),
            architecture=props.get("architecture", "x64"),
            os_disk_size_bytes=os_size,
            data_disk_sizes=data,
        )
    else:
        os_facts: dict[str, Any] = {}
        sizes: dict[int | None, int] = {}
        for disk in (sources.os_disk, *sources.data_disks):
            if disk.kind == "vhd":
                account = disk.storage_account.text
                if account not in resources.services.accounts:
                    raise errors.InvalidParameter(
                        f"The storage account '{account}' is not known to this server; the operator maps storage "
                        "accounts to blob endpoints in config.toml ([storage_accounts]).",
                        disk.target.replace(".uri", ".storageAccountId"),
                    )
                try:
                    sizes[disk.lun] = resources.services.accounts.open_blob(account, disk.uri).size - FOOTER
                except Exception as exc:
                    raise errors.InvalidParameter(
                        f"The VHD blob '{disk.uri}' cannot be read: {exc}", disk.target
                    ) from None
                job = "version_import"
                continue
            what = "disk" if disk.kind == "disk" else "snapshot"
            row = source_row(tx, disk.id.text, what, disk.target)
            _same_region(row, location, what, disk.target)
            manifest_id = tx.contents(row.key).get("disk")
            if manifest_id is None:
                raise errors.Conflict(
                    f"The {what} '{disk.id.text}' has no content yet (its upload has not ended).",
                    disk.target,
                    code="OperationNotAllowed",
                )
            contents[slot_of(disk.lun)] = manifest_id
            sizes[disk.lun] = tx.get_manifest(manifest_id).size - FOOTER
            if disk.lun is None:
                props = row.body["properties"]
                os_facts = {
                    "os_type": props.get("osType"),
                    "hyper_v_generation": props.get("hyperVGeneration"),
                    "architecture": (props.get("supportedCapabilities") or {}).get("architecture"),
                }
        facts = src.SourceFacts(
            **os_facts,
            os_disk_size_bytes=sizes.get(None),
            data_disk_sizes={lun: size for lun, size in sizes.items() if lun is not None},
        )
    src.check_source_fits(definition.body, spec, facts)
    spec["properties"]["publishingProfile"]["publishedDate"] = iso(resources.clock())
    _fill_sizes(spec, {slot: tx.get_manifest(m).size for slot, m in contents.items()})
    replication.sync_replicas(tx, resources.services.stores, rid.key, spec, resources.clock(), location, captured=False)
    return Prepared(spec, contents, job=job)


def _checked_plan(tx: Tx, existing: ResourceRow, spec: Body) -> replication_rules.Plan:
    """The replica changes an update asks for, refused if it drops replicated regions without the safety flag."""
    current = tx.replicas_of(existing.key)
    plan = replication_rules.plan(((r.region, r.idx) for r in current), spec)
    holding = {r.region for r in current if r.state != replication_rules.PENDING or r.bytes_done}
    replication_rules.check_removal(plan, spec, holding, existing.location)
    return plan


def plan_version_update(resources, tx: Tx, existing: ResourceRow, spec: Body) -> Body:
    """The replicas an update would add and remove, and the bytes each added region lacks (so would receive)."""
    plan = _checked_plan(tx, existing, spec)
    stores = resources.services.stores
    chunks = replication._chunks(replication._manifests(tx, existing.key))
    added: dict[str, int] = {}
    moving: dict[str, int] = {}
    for w in plan.added:
        added[w.region] = added.get(w.region, 0) + 1
        for dest in stores.stores_for(stores.placement(w.region, w.index, w.storage_type)):
            moving[w.region] = moving.get(w.region, 0) + sum(size for d, size in chunks if not dest.has(d))
    removed: dict[str, int] = {}
    for region, _idx in plan.removed:
        removed[region] = removed.get(region, 0) + 1
    return {
        "added": [{"region": r, "replicas": n} for r, n in sorted(added.items())],
        "removed": [{"region": r, "replicas": n} for r, n in sorted(removed.items())],
        "bytesToMove": dict(sorted(moving.items())),
        "totalBytesToMove": sum(moving.values()),
    }


def update_version(resources, tx: Tx, existing: ResourceRow, spec: Body) -> None:
    """Target-region changes: new replicas are queued, dropped ones deleted (only with the safety flag when they
    hold data), the version stays usable throughout."""
    _checked_plan(tx, existing, spec)
    replication.sync_replicas(
        tx, resources.services.stores, existing.key, spec, resources.clock(), existing.location, captured=True
    )


def _fill_sizes(spec: Body, sizes: dict[str, int]) -> None:
    """Echo each disk's size (and lun) in storageProfile, as Azure does."""
    profile = spec["properties"].setdefault("storageProfile", {})
    if "os" in sizes:
        profile.setdefault("osDiskImage", {})["sizeInGB"] = _size_gb(sizes["os"])
        # A capture of an image or version caches its OS disk ReadOnly, as Azure's examples answer.
        profile["osDiskImage"].setdefault("hostCaching", "ReadOnly" if "source" in profile else "ReadWrite")
    data = {int(s.split(":")[1]): size for s, size in sizes.items() if s.startswith("data:")}
    if data:
        disks = {d["lun"]: d for d in profile.get("dataDiskImages", [])}
        for lun, size in sorted(data.items()):
            disk = disks.setdefault(lun, {"lun": lun})
            disk["sizeInGB"] = _size_gb(size)
            disk.setdefault("hostCaching", "None")
        profile["dataDiskImages"] = [disks[lun] for lun in sorted(disks)]


def replication_status(tx: Tx, row: ResourceRow) -> Body:
    """`$expand=ReplicationStatus`: per region, from its replicas; while the capture runs, the source region's
    first replica shows the capture's progress."""
    states = replication.states(tx, row.key)
    active = tx.active_operation(row.key)
    if active is not None and active.action == "create":
        states = [
            replication_rules.ReplicaState(s.region, s.index, replication_rules.REPLICATING, 100, active.percent)
            if (s.region, s.index) == (row.location, 0) and s.state == replication_rules.PENDING
            else s
            for s in states
        ]
    return replication_rules.summary(states)


class VersionCapture:
    """A version whose bytes are already in vmgallery: the capture is the manifests the create named."""

    def work(self, ctx: JobContext, op: OperationRow) -> Any:
        return replication.capture_is_first_replica(ctx, op.resource_key, op.location)

    def finish(self, tx: Tx, op: OperationRow, result: Any) -> Any:
        return _captured(tx, op, result)


def _captured(tx: Tx, op: OperationRow, first_replica: bool) -> Any:
    """The version's create ends when its source region is complete, which `replication.settle_version` decides."""
    replication.finish_capture(tx, op.resource_key, op.location, time.time(), first_replica)
    return KEEP_RUNNING


class VersionImport:
    """A version with VHD blob sources: import each blob (slow, idempotent), then name the manifests (once)."""

    def work(self, ctx: JobContext, op: OperationRow) -> Any:
        with ctx.db.read() as tx:
            row = tx.get(op.resource_key)
        sources = src.version_sources(row.body)
        imported = {}
        for disk in (sources.os_disk, *sources.data_disks):
            if disk.kind == "vhd":
                imported[slot_of(disk.lun)] = import_blob(
                    ctx, ctx.services, op.location, disk.storage_account.text, disk.uri, disk.target
                )
        return imported, replication.capture_is_first_replica(ctx, op.resource_key, op.location)

    def finish(self, tx: Tx, op: OperationRow, result: Any) -> Any:
        imported, first_replica = result
        row = tx.get(op.resource_key, for_update=True)
        for slot, manifest in imported.items():
            tx.put_manifest(manifest, time.time())
            tx.set_content(row.key, slot, manifest.id)
        body = dict(row.body)
        _fill_sizes(body, {slot: tx.get_manifest(m).size for slot, m in tx.contents(row.key).items()})
        tx.update(row.key, state=row.state, body=body, now=time.time())
        return _captured(tx, op, first_replica)


VERSION_HANDLERS = {"version_import": VersionImport(), "version_capture": VersionCapture()}
