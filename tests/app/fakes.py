"""In-memory fakes of the ports (app/ports.py), for use-case tests that need no server and no database.

`FakeMetadata` keeps the metadata tables as dictionaries. A write transaction works on a copy of them that replaces
the committed state when its block ends (an exception discards it), and writers run one at a time, as SQLite's
BEGIN IMMEDIATE makes them; the uniqueness and reference rules the real schema enforces raise `ConcurrentChange`.
The chunk stores are the real `RegionStores` and `ChunkStore` over in-memory blob backends.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vmgallery.adapters.blobs.memory import MemoryBackend
from vmgallery.adapters.blobs.regions import RegionStores
from vmgallery.app.ports import (
    ConcurrentChange,
    GrantRow,
    JobRow,
    OperationRow,
    ReplicaRow,
    ResourceRow,
    StorageAccountError,
)
from vmgallery.app.replication import usable_regions
from vmgallery.domain import sharing as sharing_rules
from vmgallery.domain import versions as version_rules
from vmgallery.domain.manifests import Manifest
from vmgallery.domain.validate import Body


class FakeClock:
    """Wall-clock time that moves only when a test moves it."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _Resource:
    row: ResourceRow
    subscription: str
    group_key: str | None


@dataclass
class _Job:
    id: int
    operation_id: str | None
    subject_key: str
    kind: str
    payload: Body | None
    state: str = "queued"
    lease_owner: str | None = None
    lease_until: float | None = None
    attempts: int = 0
    not_before: float = 0.0

    def row(self) -> JobRow:
        return JobRow(
            self.id, self.operation_id, self.subject_key, self.kind, copy.deepcopy(self.payload), self.attempts
        )


@dataclass
class _Tables:
    seq: int = 0
    resources: dict[str, _Resource] = field(default_factory=dict)
    operations: dict[str, OperationRow] = field(default_factory=dict)
    jobs: dict[int, _Job] = field(default_factory=dict)
    manifests: dict[str, Manifest] = field(default_factory=dict)
    # (resource key, slot) -> (manifest id, source version key, replica it reads first)
    contents: dict[tuple[str, str], tuple[str, str | None, int | None]] = field(default_factory=dict)
    uploads: dict[tuple[str, int], str] = field(default_factory=dict)
    grants: dict[str, GrantRow] = field(default_factory=dict)
    replicas: dict[tuple[str, str, int], ReplicaRow] = field(default_factory=dict)


class FakeMetadata:
    """The `Metadata` port in memory."""

    def __init__(self) -> None:
        self.tables = _Tables()
        self._writer = threading.Lock()

    @contextlib.contextmanager
    def write(self) -> Iterator[FakeTransaction]:
        with self._writer:
            working = copy.deepcopy(self.tables)
            yield FakeTransaction(working)
            self.tables = working

    @contextlib.contextmanager
    def read(self) -> Iterator[FakeTransaction]:
        yield FakeTransaction(copy.deepcopy(self.tables), writable=False)

    def resource(self, key: str) -> ResourceRow | None:
        found = self.tables.resources.get(key)
        return _copy(found.row) if found else None


def _copy(row: ResourceRow) -> ResourceRow:
    return copy.deepcopy(row)


class FakeTransaction:
    """The `Transaction` port over `_Tables`."""

    def __init__(self, tables: _Tables, writable: bool = True):
        self.t = tables
        self.writable = writable

    def _writing(self) -> None:
        if not self.writable:
            raise RuntimeError("a read transaction may not write")

    def lock(self, name: str) -> None:
        """Writers are serial already."""

    # -- resources ---------------------------------------------------------------------------------------------
    def get(self, key: str, *, for_update: bool = False) -> ResourceRow | None:
        found = self.t.resources.get(key)
        return _copy(found.row) if found else None

    def insert(
        self,
        *,
        key: str,
        type: str,
        parent_key: str,
        subscription: str,
        group_key: str | None,
        location: str | None,
        natural_key: str | None,
        state: str,
        body: Body,
        now: float,
    ) -> None:
        self._writing()
        if key in self.t.resources:
            raise ConcurrentChange(f"resources.key {key} exists")
        if natural_key is not None and self.find_natural(parent_key, type, natural_key) is not None:
            raise ConcurrentChange(f"resources natural key {natural_key} exists")
        self.t.seq += 1
        row = ResourceRow(self.t.seq, key, type, parent_key, location, natural_key, state, copy.deepcopy(body))
        self.t.resources[key] = _Resource(row, subscription, group_key)

    def update(self, key: str, *, state: str, body: Body, now: float) -> None:
        self._writing()
        if key in self.t.resources:
            row = self.t.resources[key].row
            row.state, row.body = state, copy.deepcopy(body)

    def delete(self, key: str) -> None:
        self._writing()
        self.t.resources.pop(key, None)

    def find_natural(self, parent_key: str, type: str, natural_key: str) -> ResourceRow | None:
        for r in self.t.resources.values():
            if (r.row.parent_key, r.row.type, r.row.natural_key) == (parent_key, type, natural_key):
                return _copy(r.row)
        return None

    def _ordered(self) -> list[_Resource]:
        return sorted(self.t.resources.values(), key=lambda r: r.row.seq)

    def children(self, parent_key: str, limit: int = 20) -> list[ResourceRow]:
        return [_copy(r.row) for r in self._ordered() if r.row.parent_key == parent_key][:limit]

    def count_children(self, parent_key: str) -> int:
        return sum(1 for r in self.t.resources.values() if r.row.parent_key == parent_key)

    def in_group(self, group_key: str) -> list[ResourceRow]:
        return [_copy(r.row) for r in self._ordered() if r.group_key == group_key and r.row.key != group_key]

    def count_in_region(self, subscription: str, location: str, type: str) -> int:
        return sum(
            1
            for r in self.t.resources.values()
            if (r.subscription, r.row.location, r.row.type) == (subscription, location, type)
        )

    def latest_version(self, definition_key: str, region: str | None) -> ResourceRow | None:
        """The rule applied to every version, as the store's one query must agree with."""
        rows = {
            r.row.key.rsplit("/", 1)[1]: r.row
            for r in self.t.resources.values()
            if r.row.parent_key == definition_key and r.row.type == "microsoft.compute/galleries/images/versions"
        }
        facts = [
            version_rules.version_facts(name, row.body, usable_regions=usable_regions(self, row.key))
            for name, row in rows.items()
        ]
        name = version_rules.latest_version(facts, region)
        return _copy(rows[name]) if name else None

    def page(
        self,
        *,
        type: str,
        after: int,
        limit: int,
        parent_key: str | None = None,
        subscription: str | None = None,
        group_key: str | None = None,
        within: frozenset[str] | None = None,
    ) -> list[ResourceRow]:
        rows = [
            r
            for r in self._ordered()
            if r.row.type == type
            and r.row.seq > after
            and (parent_key is None or r.row.parent_key == parent_key)
            and (subscription is None or r.subscription == subscription)
            and (group_key is None or r.group_key == group_key)
            and (within is None or bool({r.row.key, r.row.parent_key, r.group_key} & within))
        ]
        return [_copy(r.row) for r in rows[:limit]]

    def galleries_shared_with(self, kind: str, target: str) -> list[ResourceRow]:
        """The rule applied to every gallery, as the store's index must agree with."""
        return [
            _copy(r.row)
            for r in self._ordered()
            if r.row.type == "microsoft.compute/galleries"
            and (kind, target.lower()) in sharing_rules.share_targets(r.row.body)
        ]

    # -- operations and jobs -----------------------------------------------------------------------------------
    def insert_operation(self, op: OperationRow) -> None:
        self._writing()
        self.t.operations[op.id] = copy.deepcopy(op)

    def get_operation(self, op_id: str) -> OperationRow | None:
        return copy.deepcopy(self.t.operations.get(op_id))

    def active_operation(self, resource_key: str) -> OperationRow | None:
        for op in self.t.operations.values():
            if op.resource_key == resource_key and op.status == "InProgress":
                return copy.deepcopy(op)
        return None

    def finish_operation(
        self, op_id: str, status: str, now: float, error: Body | None = None, result: Body | None = None
    ) -> None:
        self._writing()
        op = self.t.operations[op_id]
        op.status, op.error, op.end_time, op.result = status, error, now, result
        if status == "Succeeded":
            op.percent = 100

    def set_operation_percent(self, op_id: str, percent: int) -> None:
        self._writing()
        self.t.operations[op_id].percent = percent

    def queue_operation_job(self, *, operation_id: str, subject_key: str, kind: str, now: float) -> None:
        self._writing()
        job_id = max(self.t.jobs, default=0) + 1
        self.t.jobs[job_id] = _Job(job_id, operation_id, subject_key, kind, None)

    def queue_background_job(
        self, *, kind: str, subject_key: str, payload: Body, now: float, not_before: float = 0
    ) -> bool:
        self._writing()
        live = ("queued", "running")
        jobs = self.t.jobs.values()
        if any(j.operation_id is None and j.subject_key == subject_key and j.state in live for j in jobs):
            return False  # one live background job per subject, as the schema's partial unique index says
        job_id = max(self.t.jobs, default=0) + 1
        self.t.jobs[job_id] = _Job(job_id, None, subject_key, kind, copy.deepcopy(payload), not_before=not_before)
        return True

    def _claim(self, job: _Job, owner: str, now: float, lease: float) -> JobRow:
        job.state, job.lease_owner, job.lease_until = "running", owner, now + lease
        job.attempts += 1
        return job.row()

    def claim_job(self, owner: str, now: float, lease: float) -> JobRow | None:
        self._writing()
        for job in sorted(self.t.jobs.values(), key=lambda j: j.id):
            queued = job.state == "queued" and job.not_before <= now
            expired = job.state == "running" and (job.lease_until or 0) < now
            if queued or expired:
                return self._claim(job, owner, now, lease)
        return None

    def claim_operation_job(self, operation_id: str, owner: str, now: float, lease: float) -> JobRow | None:
        self._writing()
        for job in self.t.jobs.values():
            if job.operation_id == operation_id and job.state == "queued":
                return self._claim(job, owner, now, lease)
        return None

    def owns_job(self, job_id: int, owner: str) -> bool:
        job = self.t.jobs.get(job_id)
        return job is not None and job.lease_owner == owner and job.state == "running"

    def extend_lease(self, job_id: int, owner: str, until: float) -> bool:
        self._writing()
        if not self.owns_job(job_id, owner):
            return False
        self.t.jobs[job_id].lease_until = until
        return True

    def finish_job(self, job_id: int, state: str) -> None:
        self._writing()
        job = self.t.jobs[job_id]
        job.state, job.lease_owner, job.lease_until = state, None, None

    def retry_job(self, job_id: int, not_before: float) -> None:
        self._writing()
        job = self.t.jobs[job_id]
        job.state, job.lease_owner, job.lease_until, job.not_before = "queued", None, None, not_before

    def running_jobs_owned_by(self, owner_prefix: str) -> list[tuple[int, str]]:
        return [
            (j.id, j.lease_owner)
            for j in self.t.jobs.values()
            if j.state == "running" and j.lease_owner and j.lease_owner.startswith(owner_prefix)
        ]

    def pending_jobs(self) -> int:
        return sum(1 for j in self.t.jobs.values() if j.state in ("queued", "running"))

    # -- manifests ---------------------------------------------------------------------------------------------
    def put_manifest(self, manifest: Manifest, now: float) -> str:
        self._writing()
        self.t.manifests.setdefault(manifest.id, manifest)
        return manifest.id

    def get_manifest(self, manifest_id: str) -> Manifest:
        return self.t.manifests[manifest_id]

    def set_content(
        self, resource_key: str, slot: str, manifest_id: str, source_key: str | None = None, replica: int | None = None
    ) -> None:
        self._writing()
        if manifest_id not in self.t.manifests:
            raise ConcurrentChange(f"disk_contents names manifest {manifest_id}, which does not exist")
        self.t.contents[(resource_key, slot)] = (manifest_id, source_key, replica)

    def content_source(self, resource_key: str) -> tuple[str | None, int | None]:
        for (key, _slot), (_m, source, replica) in self.t.contents.items():
            if key == resource_key:
                return source, replica
        return None, None

    def count_made_from(self, source_key: str) -> int:
        return len({key for (key, _slot), (_m, source, _r) in self.t.contents.items() if source == source_key})

    def contents(self, resource_key: str) -> dict[str, str]:
        return {slot: m for (key, slot), (m, _s, _r) in self.t.contents.items() if key == resource_key}

    def drop_contents(self, resource_key: str) -> None:
        self._writing()
        for k in [k for k in self.t.contents if k[0] == resource_key]:
            del self.t.contents[k]

    def manifests_owned_in(self, region: str) -> set[str]:
        return {
            m
            for (key, _slot), (m, _s, _r) in self.t.contents.items()
            if key in self.t.resources and self.t.resources[key].row.location == region
        }

    def replica_manifests_in(self, region: str) -> list[tuple[int, str, str]]:
        found = {
            (r.idx, r.storage_type, m)
            for r in self.t.replicas.values()
            if r.region == region
            for m in self.contents(r.version_key).values()
        }
        return sorted(found)

    def used_manifest_ids(self) -> set[str]:
        return {m for m, _s, _r in self.t.contents.values()}

    def all_manifest_ids(self) -> set[str]:
        return set(self.t.manifests)

    def delete_manifest(self, manifest_id: str) -> None:
        self._writing()
        if manifest_id in self.used_manifest_ids():
            raise ConcurrentChange(f"manifest {manifest_id} is named by disk_contents")
        self.t.manifests.pop(manifest_id, None)

    # -- uploads -----------------------------------------------------------------------------------------------
    def upload_span(self, disk_key: str, first: int, last: int) -> dict[int, str]:
        return {idx: d for (key, idx), d in self.t.uploads.items() if key == disk_key and first <= idx <= last}

    def swap_upload_chunks(self, disk_key: str, swaps) -> list[int]:
        self._writing()
        lost = []
        for idx, old, new in swaps:
            if self.t.uploads.get((disk_key, idx)) != old:
                lost.append(idx)
            elif new is None:
                self.t.uploads.pop((disk_key, idx), None)
            else:
                self.t.uploads[(disk_key, idx)] = new
        return lost

    def upload_rows(self, disk_key: str) -> dict[int, str]:
        return {idx: d for (key, idx), d in self.t.uploads.items() if key == disk_key}

    def clear_upload(self, disk_key: str) -> None:
        self._writing()
        for k in [k for k in self.t.uploads if k[0] == disk_key]:
            del self.t.uploads[k]

    def upload_digests(self) -> set[str]:
        return set(self.t.uploads.values())

    # -- grants ------------------------------------------------------------------------------------------------
    def add_grant(self, grant_id: str, resource_key: str, access: str, expires_at: float) -> None:
        self._writing()
        self.t.grants[grant_id] = GrantRow(grant_id, resource_key, access, expires_at)

    def get_grant(self, grant_id: str) -> GrantRow | None:
        return copy.deepcopy(self.t.grants.get(grant_id))

    def revoke_grants(self, resource_key: str) -> None:
        self._writing()
        for g in [g for g, row in self.t.grants.items() if row.resource_key == resource_key]:
            del self.t.grants[g]

    # -- replicas ----------------------------------------------------------------------------------------------
    def add_replica(
        self, version_key: str, region: str, idx: int, storage_type: str, now: float, state: str = "Pending"
    ) -> None:
        self._writing()
        key = (version_key, region, idx)
        if key in self.t.replicas:
            raise ConcurrentChange(f"replica {key} exists")
        self.t.replicas[key] = ReplicaRow(version_key, region, idx, storage_type, state, 0, 0, 0, 0, None, now)

    def replicas_of(self, version_key: str) -> list[ReplicaRow]:
        rows = [r for r in self.t.replicas.values() if r.version_key == version_key]
        return copy.deepcopy(sorted(rows, key=lambda r: (r.region, r.idx)))

    def get_replica(self, version_key: str, region: str, idx: int) -> ReplicaRow | None:
        return copy.deepcopy(self.t.replicas.get((version_key, region, idx)))

    def move_replica(
        self,
        version_key: str,
        region: str,
        idx: int,
        *,
        expected: str,
        to: str,
        now: float,
        error: str | None = None,
        bytes_total: int | None = None,
        bytes_done: int | None = None,
        bytes_copied: int | None = None,
        chunks_copied: int | None = None,
    ) -> bool:
        self._writing()
        row = self.t.replicas.get((version_key, region, idx))
        if row is None or row.state != expected:
            return False
        row.state, row.error, row.updated_at = to, error, now
        counters = {
            "bytes_total": bytes_total,
            "bytes_done": bytes_done,
            "bytes_copied": bytes_copied,
            "chunks_copied": chunks_copied,
        }
        for name, value in counters.items():
            if value is not None:
                setattr(row, name, value)
        return True

    def replica_progress(
        self,
        version_key: str,
        region: str,
        idx: int,
        *,
        bytes_done: int,
        bytes_copied: int,
        chunks_copied: int,
        now: float,
    ) -> bool:
        self._writing()
        row = self.t.replicas.get((version_key, region, idx))
        if row is None or row.state != "Replicating":
            return False
        row.bytes_done, row.bytes_copied, row.chunks_copied = bytes_done, bytes_copied, chunks_copied
        row.updated_at = now
        return True

    def replicas_in(self, region: str, *, state: str, updated_after: float) -> list[ReplicaRow]:
        rows = [r for r in self.t.replicas.values() if (r.region, r.state) == (region, state)]
        return copy.deepcopy([r for r in rows if r.updated_at > updated_after])

    def drop_replica(self, version_key: str, region: str, idx: int) -> None:
        self._writing()
        self.t.replicas.pop((version_key, region, idx), None)

    def drop_replicas(self, version_key: str) -> None:
        self._writing()
        for k in [k for k in self.t.replicas if k[0] == version_key]:
            del self.t.replicas[k]

    def all_replicas(self) -> list[ReplicaRow]:
        return copy.deepcopy(sorted(self.t.replicas.values(), key=lambda r: (r.version_key, r.region, r.idx)))


def fake_region_stores(
    regions: tuple[str, ...], chunk_size: int, clock: FakeClock, zones: int = 3, grace_seconds: float = 3600.0
) -> RegionStores:
    """The real region stores over in-memory zones (nothing touches the file system)."""
    backends = {r: [MemoryBackend(f"{r}/zone{z + 1}", clock) for z in range(zones)] for r in regions}
    return RegionStores(Path("/nonexistent"), regions, chunk_size, grace_seconds, zones=backends)


class _FakeBlob:
    def __init__(self, data: bytes):
        self.data = data

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    def iter_ranges(self, chunk_size: int) -> Iterator[tuple[int, bytes]]:
        for offset in range(0, len(self.data), chunk_size):
            yield offset, self.data[offset : offset + chunk_size]


class FakeStorageAccounts:
    """Storage accounts holding blobs in memory: {account id: {blob URL: bytes}}; ids match case-insensitively."""

    def __init__(self, accounts: dict[str, dict[str, bytes]]):
        self.accounts = {a.lower(): blobs for a, blobs in accounts.items()}

    def __contains__(self, account_id: str) -> bool:
        return account_id.lower() in self.accounts

    def account_for(self, uri: str) -> str | None:
        return next((a for a, blobs in self.accounts.items() if uri in blobs), None)

    def open_blob(self, storage_account_id: str, uri: str) -> _FakeBlob:
        blobs = self.accounts.get(storage_account_id.lower())
        if blobs is None or uri not in blobs:
            raise StorageAccountError(f"no blob {uri}", account_id=storage_account_id, uri=uri)
        return _FakeBlob(blobs[uri])


class FakeSubscriptionTenants:
    """A fake of the identity directory's `tenant_of`: the subscriptions in `known` belong to their tenant, every
    other one to no known tenant."""

    def __init__(self, known: dict[str, str] | None = None):
        self.known = {k.lower(): v.lower() for k, v in (known or {}).items()}

    def tenant_of(self, subscription: str) -> str | None:
        return self.known.get(subscription.lower())
