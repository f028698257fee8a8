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
from ..domain import sources as src
from ..domain import versions as rules
from ..domain.disks import FOOTER
from ..domain.ids import ResourceId, parse_resource_id
from ..domain.validate import Body
from .disks import Prepared, import_blob, iso, source_row
from .operations import JobContext, _set_state

VERSION_TYPE = "microsoft.compute/galleries/images/versions"
GIB = 1 << 30


def slot_of(lun: int | None) -> str:
    return "os" if lun is None else f"data:{lun}"


def _size_gb(image_size: int) -> int:
    return -(-(image_size - FOOTER) // GIB)


def check_regions(spec: Body, location: str) -> None:
    """Until replication arrives, a version lives in its source region only; say so rather than pretend."""
    others = [r["name"] for r in spec["properties"]["publishingProfile"]["targetRegions"] if r["name"] != location]
    if others:
        raise errors.NotSupported(
            f"Replication to other regions ({', '.join(others)}) is not available on this server yet; target only "
            f"the source region '{location}'.", "properties.publishingProfile.targetRegions")


def resolve(tx: Tx, rid: ResourceId, region: str | None, target: str) -> ResourceRow:
    """The version a reference names, `latest` resolved among versions usable in `region`."""
    if rid.name.lower() != "latest":
        row = tx.get(rid.key)
        if row is None:
            raise errors.NotFound(f"The gallery image version '{rid.text}' was not found.", target)
        if row.state != "Succeeded":
            raise errors.Conflict(f"The gallery image version '{rid.text}' is {row.state}.", target,
                                  code="OperationNotAllowed")
        return row
    definition = rid.parent
    rows = {r.body["name"]: r for r in tx.page(type=VERSION_TYPE, after=0, limit=10**6, parent_key=definition.key)}
    candidates = [rules.version_facts(name, r.body, usable_regions=[r.location]) for name, r in rows.items()]
    name = rules.latest_version(candidates, region)
    if name is None:
        if tx.get(definition.key) is None:
            raise errors.NotFound(f"The gallery image definition '{definition.text}' was not found.", target)
        where = f" in region '{region}'" if region else ""
        raise errors.NotFound(f"The gallery image definition '{definition.name}' has no version that can be "
                              f"used as latest{where} (none finished, or all excluded from latest).", target)
    return rows[name]


def resolve_disk(tx: Tx, version_id: str, lun: int | None, location: str) -> tuple[str, dict]:
    """For a disk made FromImage: the manifest of the version's OS disk (or data disk `lun`) and OS facts."""
    target = "properties.creationData.galleryImageReference.id"
    row = resolve(tx, parse_resource_id(version_id), location, target)
    if row.location != location:
        raise errors.InvalidParameter(f"The gallery image version '{row.body['id']}' is not available in "
                                      f"'{location}'.", target)
    manifest_id = tx.contents(row.key).get(slot_of(lun))
    if manifest_id is None:
        raise errors.InvalidParameter(f"The gallery image version '{row.body['id']}' has no data disk at lun {lun}.",
                                      "properties.creationData.galleryImageReference.lun")
    facts: dict[str, Any] = {}
    if lun is None:
        definition = tx.get(parse_resource_id(row.body["id"]).parent.key).body["properties"]
        facts = {"osType": definition["osType"], "hyperVGeneration": definition.get("hyperVGeneration", "V1"),
                 "supportedCapabilities": {"architecture": definition.get("architecture", "x64")}}
    return manifest_id, facts


def _same_region(row: ResourceRow, location: str, what: str, target: str) -> None:
    if row.location != location:
        raise errors.InvalidParameter(
            f"The {what} '{row.body['id']}' is in '{row.location}'; a version's sources must be in its own region "
            f"'{location}'.", target)


def _disk_facts(tx: Tx, contents: dict[str, str]) -> tuple[int | None, dict[int, int]]:
    """Raw disk sizes (disk images less their VHD footer) of the OS disk and each data disk."""
    os_size = tx.get_manifest(contents["os"]).size - FOOTER if "os" in contents else None
    data = {int(slot.split(":")[1]): tx.get_manifest(m).size - FOOTER
            for slot, m in contents.items() if slot.startswith("data:")}
    return os_size, data


def prepare_version(resources, tx: Tx, rid: ResourceId, spec: Body, location: str) -> Prepared:
    check_regions(spec, location)
    definition = tx.get(rid.parent.key)
    sources = src.version_sources(spec)
    contents: dict[str, str] = {}
    job = "provision"
    if sources.kind == src.MANAGED_IMAGE:
        row = source_row(tx, sources.id.text, "managed image", sources.target)
        _same_region(row, location, "managed image", sources.target)
        contents = tx.contents(row.key)
        os_disk = row.body["properties"]["storageProfile"]["osDisk"]
        os_size, data = _disk_facts(tx, contents)
        facts = src.SourceFacts(os_type=os_disk.get("osType"), os_state=os_disk.get("osState"),
                                hyper_v_generation=row.body["properties"].get("hyperVGeneration", "V1"),
                                os_disk_size_bytes=os_size, data_disk_sizes=data)
    elif sources.kind == src.GALLERY_IMAGE_VERSION:
        row = resolve(tx, sources.id, location, sources.target)
        _same_region(row, location, "gallery image version", sources.target)
        contents = tx.contents(row.key)
        props = tx.get(parse_resource_id(row.body["id"]).parent.key).body["properties"]
        os_size, data = _disk_facts(tx, contents)
        facts = src.SourceFacts(os_type=props["osType"], os_state=props["osState"],
                                hyper_v_generation=props.get("hyperVGeneration", "V1"),
                                architecture=props.get("architecture", "x64"), os_disk_size_bytes=os_size,
                                data_disk_sizes=data)
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
                        disk.target.replace(".uri", ".storageAccountId"))
                try:
                    sizes[disk.lun] = resources.services.accounts.open_blob(account, disk.uri).size - FOOTER
                except Exception as exc:
                    raise errors.InvalidParameter(f"The VHD blob '{disk.uri}' cannot be read: {exc}",
                                                  disk.target) from None
                job = "version_import"
                continue
            what = "disk" if disk.kind == "disk" else "snapshot"
            row = source_row(tx, disk.id.text, what, disk.target)
            _same_region(row, location, what, disk.target)
            manifest_id = tx.contents(row.key).get("disk")
            if manifest_id is None:
                raise errors.Conflict(f"The {what} '{disk.id.text}' has no content yet (its upload has not ended).",
                                      disk.target, code="OperationNotAllowed")
            contents[slot_of(disk.lun)] = manifest_id
            sizes[disk.lun] = tx.get_manifest(manifest_id).size - FOOTER
            if disk.lun is None:
                props = row.body["properties"]
                os_facts = {"os_type": props.get("osType"), "hyper_v_generation": props.get("hyperVGeneration"),
                            "architecture": (props.get("supportedCapabilities") or {}).get("architecture")}
        facts = src.SourceFacts(**os_facts, os_disk_size_bytes=sizes.get(None),
                                data_disk_sizes={lun: size for lun, size in sizes.items() if lun is not None})
    src.check_source_fits(definition.body, spec, facts)
    spec["properties"]["publishingProfile"]["publishedDate"] = iso(resources.clock())
    _fill_sizes(spec, {slot: tx.get_manifest(m).size for slot, m in contents.items()})
    return Prepared(spec, contents, job=job)


def _fill_sizes(spec: Body, sizes: dict[str, int]) -> None:
    """Echo each disk's size (and lun) in storageProfile, as Azure does."""
    profile = spec["properties"].setdefault("storageProfile", {})
    if "os" in sizes:
        profile.setdefault("osDiskImage", {})["sizeInGB"] = _size_gb(sizes["os"])
        profile["osDiskImage"].setdefault("hostCaching", "ReadWrite")
    data = {int(s.split(":")[1]): size for s, size in sizes.items() if s.startswith("data:")}
    if data:
        disks = {d["lun"]: d for d in profile.get("dataDiskImages", [])}
        for lun, size in sorted(data.items()):
            disk = disks.setdefault(lun, {"lun": lun})
            disk["sizeInGB"] = _size_gb(size)
            disk.setdefault("hostCaching", "None")
        profile["dataDiskImages"] = [disks[lun] for lun in sorted(disks)]


def replication_status(row: ResourceRow, percent: int) -> Body:
    """`$expand=ReplicationStatus`: one region (the source) until replication arrives."""
    state = {"Succeeded": "Completed", "Failed": "Failed"}.get(row.state, "Replicating")
    return {"aggregatedState": {"Completed": "Completed", "Failed": "Failed"}.get(state, "InProgress"),
            "summary": [{"region": row.location, "state": state, "progress": 100 if state == "Completed" else percent,
                         "details": "" if state != "Failed" else "capture failed"}]}


class VersionImport:
    """A version with VHD blob sources: import each blob (slow, idempotent), then name the manifests (once)."""

    def work(self, ctx: JobContext, op: OperationRow) -> Any:
        with ctx.db.read() as tx:
            row = tx.get(op.resource_key)
        sources = src.version_sources(row.body)
        imported = {}
        for disk in (sources.os_disk, *sources.data_disks):
            if disk.kind == "vhd":
                imported[slot_of(disk.lun)] = import_blob(ctx, ctx.services, op.location, disk.storage_account.text,
                                                          disk.uri, disk.target)
        return imported

    def finish(self, tx: Tx, op: OperationRow, result: Any) -> None:
        row = tx.get(op.resource_key, for_update=True)
        for slot, manifest in result.items():
            tx.put_manifest(manifest, time.time())
            tx.set_content(row.key, slot, manifest.id)
        body = _set_state(row.body, "Succeeded")
        _fill_sizes(body, {slot: tx.get_manifest(m).size for slot, m in tx.contents(row.key).items()})
        tx.update(row.key, state="Succeeded", body=body, now=time.time())


VERSION_HANDLERS = {"version_import": VersionImport()}
