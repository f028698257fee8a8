"""Gallery image versions: capturing sources, resolving `latest`, and making disks from a version.

A version's disks are manifests in slots `os` and `data:<lun>`. Capturing from a managed image, a disk, a snapshot
or another version reuses the source's manifests in the create transaction: no byte moves, at any size. A VHD blob
source is imported by a job, after every rule has been checked (sizes included, from the blob's properties).
"""

from __future__ import annotations

from ..domain import errors
from ..domain import replication as replication_rules
from ..domain import sources as src
from ..domain.disks import FOOTER, raw_size_gb
from ..domain.ids import ResourceId
from ..domain.manifests import Manifest
from ..domain.timestamps import arm_time
from ..domain.validate import Body, given
from . import replication, sources
from .disks import Prepared, import_blob
from .operations import KEEP_RUNNING, JobContext
from .ports import Clock, Dependencies, OperationRow, RegionStores, ResourceRow, StorageAccounts, Transaction
from .sources import slot_of


def _disk_facts(tx: Transaction, contents: dict[str, str]) -> tuple[int | None, dict[int, int]]:
    """Raw disk sizes (disk images less their VHD footer) of the OS disk and each data disk."""
    os_size = tx.get_manifest(contents["os"]).size - FOOTER if "os" in contents else None
    data = {
        int(slot.split(":")[1]): tx.get_manifest(m).size - FOOTER
        for slot, m in contents.items()
        if slot.startswith("data:")
    }
    return os_size, data


def prepare_version(resources: Dependencies, tx: Transaction, rid: ResourceId, spec: Body, location: str) -> Prepared:
    definition = tx.get(rid.parent.key) if rid.parent else None
    if definition is None:
        raise errors.ParentResourceNotFound(f"The image definition of '{rid.text}' was not found.", rid.text)
    chosen = src.version_sources(spec)
    contents: dict[str, str] = {}
    job = "version_capture"
    if chosen.kind == src.MANAGED_IMAGE:
        row = sources.finished(tx, given(chosen.id, "source.id").text, "managed image", chosen.target)
        sources.in_region(row, location, "managed image", chosen.target)
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
    elif chosen.kind == src.GALLERY_IMAGE_VERSION:
        row = sources.version(tx, given(chosen.id, "source.id"), location, chosen.target)
        sources.in_region(row, location, "gallery image version", chosen.target)
        contents = tx.contents(row.key)
        props = sources.definition_of(tx, row)
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
        os_facts: dict[str, str | None] = {}
        sizes: dict[int | None, int] = {}
        for disk in (given(chosen.os_disk, "osDiskImage"), *chosen.data_disks):
            if disk.kind == "vhd":
                account = given(disk.storage_account, "storageAccountId").text
                sources.known_account(resources.accounts, account, disk.target.replace(".uri", ".storageAccountId"))
                uri = given(disk.uri, "uri")
                sizes[disk.lun] = sources.vhd_raw_size(resources.accounts, account, uri, disk.target)
                job = "version_import"
                continue
            what = "disk" if disk.kind == "disk" else "snapshot"
            row, manifest_id = sources.disk(tx, given(disk.id, "source.id").text, what, disk.target, location)
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
    now = resources.clock()
    spec["properties"]["publishingProfile"]["publishedDate"] = arm_time(now)
    _fill_sizes(spec, {slot: tx.get_manifest(m).size for slot, m in contents.items()})
    replication.sync_replicas(tx, resources.stores, rid.key, spec, now, location, captured=False)
    return Prepared(spec, contents, job=job)


def _checked_plan(tx: Transaction, existing: ResourceRow, spec: Body) -> replication_rules.Plan:
    """The replica changes an update asks for, refused if it drops replicated regions without the safety flag."""
    current = tx.replicas_of(existing.key)
    plan = replication_rules.plan(((r.region, r.idx) for r in current), spec)
    holding = {r.region for r in current if r.state != replication_rules.PENDING or r.bytes_done}
    replication_rules.check_removal(plan, spec, holding, existing.region)
    return plan


def plan_version_update(resources: Dependencies, tx: Transaction, existing: ResourceRow, spec: Body) -> Body:
    """The replicas an update would add and remove, and the bytes each added region lacks (so would receive)."""
    plan = _checked_plan(tx, existing, spec)
    stores = resources.stores
    chunks = replication.chunks_of(replication.manifests_of(tx, existing.key))
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


def update_version(resources: Dependencies, tx: Transaction, existing: ResourceRow, spec: Body) -> None:
    """Target-region changes: new replicas are queued, dropped ones deleted (only with the safety flag when they
    hold data), the version stays usable throughout."""
    _checked_plan(tx, existing, spec)
    replication.sync_replicas(
        tx, resources.stores, existing.key, spec, resources.clock(), existing.region, captured=True
    )


def _fill_sizes(spec: Body, sizes: dict[str, int]) -> None:
    """Echo each disk's size (and lun) in storageProfile, as Azure does."""
    profile = spec["properties"].setdefault("storageProfile", {})
    if "os" in sizes:
        profile.setdefault("osDiskImage", {})["sizeInGB"] = raw_size_gb(sizes["os"])
        # A capture of an image or version caches its OS disk ReadOnly, as Azure's examples answer.
        profile["osDiskImage"].setdefault("hostCaching", "ReadOnly" if "source" in profile else "ReadWrite")
    data = {int(s.split(":")[1]): size for s, size in sizes.items() if s.startswith("data:")}
    if data:
        disks = {d["lun"]: d for d in profile.get("dataDiskImages", [])}
        for lun, size in sorted(data.items()):
            disk = disks.setdefault(lun, {"lun": lun})
            disk["sizeInGB"] = raw_size_gb(size)
            disk.setdefault("hostCaching", "None")
        profile["dataDiskImages"] = [disks[lun] for lun in sorted(disks)]


def replication_status(tx: Transaction, row: ResourceRow) -> Body:
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

    def __init__(self, stores: RegionStores, clock: Clock):
        self.stores, self.clock = stores, clock

    def work(self, ctx: JobContext, op: OperationRow) -> bool:
        return replication.capture_is_first_replica(ctx, self.stores, op.resource_key, op.location)

    def finish(self, tx: Transaction, op: OperationRow, first_replica: bool) -> object:
        return _captured(tx, op, first_replica, self.clock())


def _captured(tx: Transaction, op: OperationRow, first_replica: bool, now: float) -> object:
    """The version's create ends when its source region is complete, which `replication.settle_version` decides."""
    replication.finish_capture(tx, op.resource_key, op.location, now, first_replica)
    return KEEP_RUNNING


class VersionImport:
    """A version with VHD blob sources: import each blob (slow, idempotent), then name the manifests (once)."""

    def __init__(self, stores: RegionStores, accounts: StorageAccounts, clock: Clock):
        self.stores, self.accounts, self.clock = stores, accounts, clock

    def work(self, ctx: JobContext, op: OperationRow) -> tuple[dict[str, Manifest], bool]:
        with ctx.db.read() as tx:
            row = tx.get(op.resource_key)
        if row is None:
            raise errors.NotFound(f"The gallery image version '{op.resource_id}' disappeared while it was imported.")
        chosen = src.version_sources(row.body)
        imported = {}
        for disk in (given(chosen.os_disk, "osDiskImage"), *chosen.data_disks):
            if disk.kind == "vhd":
                account = given(disk.storage_account, "storageAccountId").text
                uri = given(disk.uri, "uri")
                imported[slot_of(disk.lun)] = import_blob(
                    ctx, self.stores, self.accounts, op.location, account, uri, disk.target
                )
        return imported, replication.capture_is_first_replica(ctx, self.stores, op.resource_key, op.location)

    def finish(self, tx: Transaction, op: OperationRow, result: tuple[dict[str, Manifest], bool]) -> object:
        imported, first_replica = result
        row = tx.get(op.resource_key, for_update=True)
        if row is None:
            raise errors.NotFound(f"The gallery image version '{op.resource_id}' disappeared while it was imported.")
        now = self.clock()
        for slot, manifest in imported.items():
            tx.put_manifest(manifest, now)
            tx.set_content(row.key, slot, manifest.id)
        body = dict(row.body)
        _fill_sizes(body, {slot: tx.get_manifest(m).size for slot, m in tx.contents(row.key).items()})
        tx.update(row.key, state=row.state, body=body, now=now)
        return _captured(tx, op, first_replica, now)
