"""What the use cases need from outside, as typed Protocols: the adapters implement them, `wiring.py` passes them in.

- `Metadata` / `Transaction`: the unit of work over the metadata database (adapters/db/store.py). A write
  transaction commits when its block ends and rolls back on an exception; a constraint it breaks (a concurrent
  insert of the same name, a manifest deleted while named) surfaces as `ConcurrentChange`, never as a driver error.
- `RegionStores` / `ChunkStore` / `ChunkReader`: each region's content-addressed chunk stores (adapters/blobs).
- `StorageAccounts` / `BlobSource`: VHD blobs read from the storage accounts the operator configured.
- `Signer`: signs and checks the SAS URLs of disk grants.
- `Clock`: wall-clock seconds; injected so tests decide what time it is.

The row types are plain values: what the use cases read, not how a table stores it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ..config import Settings
from ..domain.manifests import Manifest
from ..domain.placement import Placement
from ..domain.validate import Body

Clock = Callable[[], float]


class ConcurrentChange(Exception):
    """A write broke a uniqueness or reference rule because a concurrent transaction got there first."""


class StorageAccountError(Exception):
    """A VHD blob could not be read; `account_id` and `uri` name what was being read."""

    def __init__(self, message: str, *, account_id: str | None = None, uri: str | None = None):
        super().__init__(message)
        self.account_id = account_id
        self.uri = uri


class SasDenied(Exception):
    """A signed URL that is invalid, tampered with, expired or revoked (the data plane answers 403)."""


# -- rows ---------------------------------------------------------------------------------------------------------
@dataclass
class ResourceRow:
    seq: int
    key: str
    type: str
    parent_key: str
    location: str | None
    natural_key: str | None
    state: str
    body: Body

    @property
    def region(self) -> str:
        """The location of a resource that has one (everything but subscriptions)."""
        if self.location is None:
            raise ValueError(f"the resource {self.key} has no location")
        return self.location


@dataclass
class OperationRow:
    id: str
    resource_key: str
    resource_id: str
    namespace: str
    subscription: str
    location: str
    action: str
    status: str
    percent: int
    error: Body | None
    prior_body: Body | None
    start_time: float
    end_time: float | None
    result: Body | None = None


@dataclass
class JobRow:
    id: int
    operation_id: str | None  # None for a background job
    subject_key: str
    kind: str
    payload: Body | None
    attempts: int


@dataclass
class ReplicaRow:
    version_key: str
    region: str
    idx: int
    storage_type: str
    state: str
    bytes_total: int
    bytes_done: int
    bytes_copied: int
    chunks_copied: int
    error: str | None
    updated_at: float


@dataclass
class GrantRow:
    id: str
    resource_key: str
    access: str
    expires_at: float


# -- the unit of work ---------------------------------------------------------------------------------------------
class Transaction(Protocol):
    """Every query the use cases run. Reads see one consistent state; writes are only allowed in `Metadata.write`."""

    def lock(self, name: str) -> None:
        """Serialize, until the transaction ends, writers that check-then-insert under the same name."""

    # resources
    def get(self, key: str, *, for_update: bool = False) -> ResourceRow | None: ...
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
    ) -> None: ...
    def update(self, key: str, *, state: str, body: Body, now: float) -> None: ...
    def delete(self, key: str) -> None: ...
    def find_natural(self, parent_key: str, type: str, natural_key: str) -> ResourceRow | None: ...
    def children(self, parent_key: str, limit: int = 20) -> list[ResourceRow]: ...
    def count_children(self, parent_key: str) -> int: ...
    def in_group(self, group_key: str) -> list[ResourceRow]: ...
    def count_in_region(self, subscription: str, location: str, type: str) -> int: ...
    def latest_version(self, definition_key: str, region: str | None) -> ResourceRow | None:
        """The version of the definition `latest` names (domain.versions.latest_version's rule; in `region`, usable
        there: all its replicas there Completed), or None."""
        ...

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
        """A page of one type's rows, oldest first; with `within`, only rows whose key, parent key or group key is
        one of those scope keys (what a caller may read)."""
        ...

    def galleries_shared_with(self, kind: str, target: str) -> list[ResourceRow]:
        """The galleries whose domain.sharing.share_targets hold (kind, target), in creation order."""
        ...

    # operations and jobs
    def insert_operation(self, op: OperationRow) -> None: ...
    def get_operation(self, op_id: str) -> OperationRow | None: ...
    def active_operation(self, resource_key: str) -> OperationRow | None: ...
    def finish_operation(
        self, op_id: str, status: str, now: float, error: Body | None = None, result: Body | None = None
    ) -> None: ...
    def set_operation_percent(self, op_id: str, percent: int) -> None: ...
    def queue_operation_job(self, *, operation_id: str, subject_key: str, kind: str, now: float) -> None: ...
    def queue_background_job(
        self, *, kind: str, subject_key: str, payload: Body, now: float, not_before: float = 0
    ) -> bool:
        """Queue it to run from `not_before` on; False if the subject has a live background job already."""
        ...

    def claim_job(self, owner: str, now: float, lease: float) -> JobRow | None: ...
    def claim_operation_job(self, operation_id: str, owner: str, now: float, lease: float) -> JobRow | None: ...
    def owns_job(self, job_id: int, owner: str) -> bool: ...
    def extend_lease(self, job_id: int, owner: str, until: float) -> bool: ...
    def finish_job(self, job_id: int, state: str) -> None: ...
    def retry_job(self, job_id: int, not_before: float) -> None: ...
    def running_jobs_owned_by(self, owner_prefix: str) -> list[tuple[int, str]]: ...
    def pending_jobs(self) -> int: ...

    # manifests and what uses them
    def put_manifest(self, manifest: Manifest, now: float) -> str: ...
    def get_manifest(self, manifest_id: str) -> Manifest: ...
    def set_content(
        self, resource_key: str, slot: str, manifest_id: str, source_key: str | None = None, replica: int | None = None
    ) -> None: ...
    def content_source(self, resource_key: str) -> tuple[str | None, int | None]: ...
    def count_made_from(self, source_key: str) -> int: ...
    def contents(self, resource_key: str) -> dict[str, str]: ...
    def drop_contents(self, resource_key: str) -> None: ...
    def manifests_owned_in(self, region: str) -> set[str]: ...
    def replica_manifests_in(self, region: str) -> list[tuple[int, str, str]]: ...
    def used_manifest_ids(self) -> set[str]: ...
    def all_manifest_ids(self) -> set[str]: ...
    def delete_manifest(self, manifest_id: str) -> None: ...

    # uploads in progress
    def upload_span(self, disk_key: str, first: int, last: int) -> dict[int, str]:
        """The digests of chunks `first`..`last` of an upload (a hole has none)."""
        ...

    def swap_upload_chunks(self, disk_key: str, swaps: Sequence[tuple[int, str | None, str | None]]) -> list[int]:
        """Compare-and-set chunks of an upload, each (idx, old, new); the indexes another writer changed first."""
        ...

    def upload_rows(self, disk_key: str) -> dict[int, str]: ...
    def clear_upload(self, disk_key: str) -> None: ...
    def upload_digests(self) -> set[str]: ...

    # grants
    def add_grant(self, grant_id: str, resource_key: str, access: str, expires_at: float) -> None: ...
    def get_grant(self, grant_id: str) -> GrantRow | None: ...
    def revoke_grants(self, resource_key: str) -> None: ...

    # replicas
    def add_replica(
        self, version_key: str, region: str, idx: int, storage_type: str, now: float, state: str = "Pending"
    ) -> None: ...
    def replicas_of(self, version_key: str) -> list[ReplicaRow]: ...
    def get_replica(self, version_key: str, region: str, idx: int) -> ReplicaRow | None: ...
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
        """Compare-and-set: False if the replica is no longer in `expected` (or gone)."""
        ...

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
        """Only while Replicating; False if it is not (any more)."""
        ...

    def replicas_in(self, region: str, *, state: str, updated_after: float) -> list[ReplicaRow]: ...
    def drop_replica(self, version_key: str, region: str, idx: int) -> None: ...
    def drop_replicas(self, version_key: str) -> None: ...
    def all_replicas(self) -> list[ReplicaRow]: ...

    # image builder logs
    def append_build_log(self, template_key: str, lines: list[tuple[float, str]]) -> None: ...
    def build_log(self, template_key: str, after: int, limit: int) -> list[tuple[int, float, str]]:
        """(seq, time, line) of the log lines after `after`, in order."""
        ...

    def clear_build_log(self, template_key: str) -> None: ...


class Metadata(Protocol):
    def write(self) -> AbstractContextManager[Transaction]:
        """A transaction that may change rows; its constraint violations raise `ConcurrentChange`."""
        ...

    def read(self) -> AbstractContextManager[Transaction]:
        """A consistent read."""
        ...

    def resource(self, key: str) -> ResourceRow | None:
        """One resource's row, read by one statement outside any transaction (a plain GET needs no more)."""
        ...


# -- chunk stores -------------------------------------------------------------------------------------------------
class Taken(Protocol):
    """A stored object moved out of the way by GC: put it back (a writer refreshed it) or drop it for good."""

    mtime: float

    def restore(self) -> None: ...

    def drop(self) -> None: ...


class Batch(Protocol):
    """Puts that become visible and durable together at `commit`; `abort` takes back what it can."""

    def put(self, path: str, data: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class ChunkReader(Protocol):
    """Reads verified chunks: one store, or several in order of preference (a replica reader)."""

    @property
    def chunk_size(self) -> int: ...

    def get(self, digest: bytes) -> bytes:
        """The chunk's bytes, verified against the digest; MissingChunk or CorruptChunk otherwise."""
        ...

    def zeros(self, n: int) -> bytes:
        """`n` zero bytes: the content of a hole."""
        ...


class ChunkStore(ChunkReader, Protocol):
    @property
    def name(self) -> str: ...

    def put(self, data: bytes | memoryview) -> bytes | None:
        """Store a chunk; its digest, or None for an all-zero chunk (stored as nothing). A view is read during the
        call only."""
        ...

    def has(self, digest: bytes) -> bool: ...

    def refresh(self, digest: bytes) -> bool:
        """True if the chunk is present, refreshed so a concurrent GC sweep leaves it."""
        ...

    def frame(self, digest: bytes) -> bytes:
        """The stored (compressed) form of a chunk, verified."""
        ...

    def read_frame(self, digest: bytes) -> bytes:
        """The stored form of a chunk, unverified (for a copy whose `put_frame` verifies it)."""
        ...

    def put_frame(self, digest: bytes, frame: bytes, batch: Batch | None = None) -> None:
        """Store a chunk copied from another store, after checking it decodes to its digest."""
        ...

    def batch(self) -> Batch: ...

    def chunks(self) -> Iterator[tuple[str, float]]:
        """(path, modification time) of every chunk stored here."""
        ...

    def take(self, path: str) -> Taken | None:
        """Move a chunk out of the way for GC (None if it is already gone)."""
        ...

    def debris(self, older_than: float) -> int:
        """Remove what writers that died mid-write left behind, older than `older_than` seconds."""
        ...


class RegionStores(Protocol):
    """Each configured region's chunk stores, and where each replica of a version is placed."""

    @property
    def regions(self) -> tuple[str, ...]: ...

    def store(self, region: str) -> ChunkStore:
        """The region's primary store (replica 0): where uploads and captures land."""
        ...

    def placement(self, region: str, index: int, storage_type: str) -> Placement: ...

    def replica(self, placement: Placement) -> ChunkStore: ...

    def is_primary(self, placement: Placement) -> bool: ...

    def stores_for(self, placement: Placement) -> list[ChunkStore]:
        """The stores a replica fills: its own, and for replica 0 the region's primary store too."""
        ...

    def chunks_in(self, region: str) -> Iterator[tuple[ChunkStore, str, float]]:
        """Every chunk the region holds: (the store it belongs to, its path, its modification time)."""
        ...

    def debris(self, older_than: float) -> int:
        """Remove writers' leftovers in every zone of every region."""
        ...


# -- storage accounts, signer -------------------------------------------------------------------------------------
class BlobSource(Protocol):
    """One blob read consistently: a change while it is read fails the read (StorageAccountError)."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...

    def iter_ranges(self, chunk_size: int) -> Iterator[tuple[int, bytes]]:
        """(offset, bytes) of each chunk-sized piece in order; unwritten page ranges come as zeros, not downloaded."""
        ...


class StorageAccounts(Protocol):
    def __contains__(self, account_id: str) -> bool: ...

    def account_for(self, uri: str) -> str | None:
        """The configured account whose blob endpoint holds `uri`, if any."""
        ...

    def open_blob(self, storage_account_id: str, uri: str) -> BlobSource:
        """The blob, opened; StorageAccountError if it cannot be read."""
        ...

    def write_page_blob(self, uri: str, size: int, pages: Iterator[tuple[int, bytes]]) -> None:
        """Create (or replace) the page blob at `uri`, in the configured account whose endpoint holds it, `size`
        bytes of zeros, then write each (offset, bytes) of `pages` (512-byte aligned, at most 4 MiB each; its
        container is made if missing); StorageAccountError if it cannot be written."""
        ...

    def write_block_blob(self, uri: str, data: bytes) -> None:
        """Create (or replace) the block blob at `uri` with `data`, as `write_page_blob` does a page blob."""
        ...


class Signer(Protocol):
    def query(self, grant_id: str, permissions: str, expiry: int) -> str:
        """The query string of a signed URL for a grant."""
        ...

    def check(self, grant_id: str, params: dict[str, str], now: float) -> str:
        """The permissions a URL's query carries; SasDenied unless it is authentic and unexpired."""
        ...


# -- what a resource kind's hooks use -----------------------------------------------------------------------------
class Dependencies(Protocol):
    """What the kinds table's hooks (prepare, on_update, plan) use of the use case that calls them."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def stores(self) -> RegionStores: ...
    @property
    def accounts(self) -> StorageAccounts: ...
    @property
    def subscription_tenants(self) -> SubscriptionTenants: ...
    @property
    def principals(self) -> ManagedPrincipals | None: ...


# -- tenancy (implemented by the identity directory) -------------------------------------------------------------------
class SubscriptionTenants(Protocol):
    def tenant_of(self, subscription: str) -> str | None:
        """The id of the tenant `subscription` belongs to (lower-case), or None if no tenant is known for it."""
        ...


class ManagedPrincipals(Protocol):
    """The directory's service principals that stand for managed identities: made with the ids the identity shows,
    without a secret anyone holds (a managed identity signs in through the platform, never with a password)."""

    def add_managed_identity(self, tenant_id: str, object_id: str, app_id: str, name: str) -> None: ...
    def remove_managed_identity(self, object_id: str) -> None:
        """The principal and its application; nothing if it is gone already."""
        ...
