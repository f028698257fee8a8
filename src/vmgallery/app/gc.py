"""Garbage collection of disk bytes: drop manifests nothing uses, then chunks no manifest or upload names.

Safe against concurrent writers without stopping them (docs/storage-format.md): each store keeps the chunks of the
manifests placed on it and of every manifest nothing uses yet (so a transaction about to reference one keeps its
chunks for this pass); only chunks older than the grace period are candidates, and a candidate refreshed by a writer
while being taken is put back. A replica job refreshes every chunk it finds present before relying on it, so a chunk
it needs is either fresh or copied anew.

Workers run it as a recurring background job (`GarbageCollection`): every run has the one subject `JOB_SUBJECT`, so the
jobs table's partial unique index lets one be queued or running in the whole deployment, however many workers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .operations import JobContext
from .ports import ChunkStore, Clock, ConcurrentChange, JobRow, Metadata, RegionStores, Transaction

log = logging.getLogger("vmgallery.gc")

DEBRIS_SECONDS = 24 * 3600
JOB_KIND = "gc"
JOB_SUBJECT = "gc"


@dataclass
class GcReport:
    manifests_deleted: int = 0
    chunks_deleted: int = 0
    chunks_kept: int = 0
    chunks_restored: int = 0


class _Live:
    """The chunks each store must keep, built from manifests (each unpacked once)."""

    def __init__(self, tx: Transaction):
        self.tx = tx
        self._chunks: dict[str, set[bytes]] = {}

    def of(self, manifest_ids: Iterable[str]) -> set[bytes]:
        live: set[bytes] = set()
        for manifest_id in manifest_ids:
            if manifest_id not in self._chunks:
                self._chunks[manifest_id] = self.tx.get_manifest(manifest_id).live()
            live |= self._chunks[manifest_id]
        return live


def collect(
    db: Metadata,
    regions: RegionStores,
    clock: Clock,
    grace_seconds: float,
    progress: Callable[[GcReport], None] | None = None,
) -> GcReport:
    """Each replica's store keeps only the chunks of the versions placed on it, and each region's primary store those
    of the region's own resources too, so a removed replica's or region's copies go. `progress(report)`, if given,
    is called as each chunk is looked at."""
    report = GcReport()
    with db.read() as tx:
        unused = tx.all_manifest_ids() - tx.used_manifest_ids()
    for manifest_id in unused:
        try:
            with db.write() as tx:
                if manifest_id not in tx.used_manifest_ids():
                    tx.delete_manifest(manifest_id)
                    report.manifests_deleted += 1
        except ConcurrentChange:
            pass  # a resource started using it meanwhile (the foreign key says so): keep it

    cutoff = clock() - grace_seconds
    with db.read() as tx:
        live = _Live(tx)
        every = tx.all_manifest_ids()
        # A create may be about to name an unused manifest, and uploads name chunks no manifest has yet: every
        # store keeps those this pass.
        common = live.of(every - tx.used_manifest_ids()) | {bytes.fromhex(d) for d in tx.upload_digests()}
        keep: dict[int, set[bytes]] = {}
        for region in regions.regions:
            by_store: dict[int, set[str]] = {id(regions.store(region)): tx.manifests_owned_in(region)}
            for idx, storage_type, manifest_id in tx.replica_manifests_in(region):
                for store in regions.stores_for(regions.placement(region, idx, storage_type)):
                    by_store.setdefault(id(store), set()).add(manifest_id)
            keep.update({key: live.of(ids) | common for key, ids in by_store.items()})
    listing: Iterator[tuple[ChunkStore, str, float]] = (
        entry for region in regions.regions for entry in regions.chunks_in(region)
    )
    for store, path, mtime in listing:
        if progress:
            progress(report)
        digest = bytes.fromhex(path.rsplit("/", 1)[-1])
        if digest in keep.get(id(store), common) or mtime >= cutoff:
            report.chunks_kept += 1
            continue
        taken = store.take(path)
        if taken is None:
            continue
        if taken.mtime >= cutoff:
            taken.restore()
            report.chunks_restored += 1
        else:
            taken.drop()
            report.chunks_deleted += 1
    regions.debris(DEBRIS_SECONDS)  # temporary files of writers that died mid-write
    log.info("gc done", extra=report.__dict__)
    return report


class GarbageCollection:
    """`collect` as a background job that runs again `interval_seconds` after each run ends, failed or not."""

    def __init__(self, regions: RegionStores, grace_seconds: float, interval_seconds: float):
        self.regions = regions
        self.grace_seconds = grace_seconds
        self.interval_seconds = interval_seconds

    def work(self, ctx: JobContext) -> GcReport:
        # A long sweep keeps its lease, so no other worker starts a second collector meanwhile.
        return collect(ctx.db, self.regions, ctx.clock, self.grace_seconds, progress=lambda _: ctx.heartbeat())

    def commit(self, tx: Transaction, job: JobRow, result: GcReport, now: float) -> float:
        return now + self.interval_seconds

    def failed(self, tx: Transaction, job: JobRow, error: Exception, now: float) -> float:
        log.error("garbage collection failed; it will run again", exc_info=error)
        return now + self.interval_seconds


def schedule(tx: Transaction, now: float, interval_seconds: float) -> bool:
    """Queue the first garbage collection `interval_seconds` from now, unless one is queued or running already."""
    return tx.queue_background_job(
        kind=JOB_KIND, subject_key=JOB_SUBJECT, payload={}, now=now, not_before=now + interval_seconds
    )
