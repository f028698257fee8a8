"""Garbage collection of disk bytes: drop manifests nothing uses, then chunks no manifest or upload names.

Safe against concurrent writers without stopping them (docs/storage-format.md): chunks are marked from the manifests
a region uses and from every manifest nothing uses yet (so a transaction about to reference one keeps its chunks for
this pass), only chunks
older than the grace period are candidates, and a candidate refreshed by a writer while being taken is put back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from sqlalchemy.exc import IntegrityError

from ..adapters.blobs.chunks import ChunkStore
from ..adapters.db.store import Database

log = logging.getLogger("vmgallery.gc")

DEBRIS_SECONDS = 24 * 3600


@dataclass
class GcReport:
    manifests_deleted: int = 0
    chunks_deleted: int = 0
    chunks_kept: int = 0
    chunks_restored: int = 0


def _chunks_of(tx, manifest_ids) -> set[bytes]:
    live: set[bytes] = set()
    for manifest_id in manifest_ids:
        live |= tx.get_manifest(manifest_id).live()
    return live


def collect(db: Database, stores: list[ChunkStore], clock: Callable[[], float], grace_seconds: float,
            regions=None) -> GcReport:
    """With `regions` (RegionStores), each region keeps only the chunks its own resources and the versions
    replicated to it use (a removed region's copies go); without, every store keeps every manifest's chunks."""
    report = GcReport()
    with db.read() as tx:
        unused = tx.all_manifest_ids() - tx.used_manifest_ids()
    for manifest_id in unused:
        try:
            with db.write() as tx:
                if manifest_id not in tx.used_manifest_ids():
                    tx.delete_manifest(manifest_id)
                    report.manifests_deleted += 1
        except IntegrityError:
            pass  # a resource started using it meanwhile (the foreign key says so): keep it

    cutoff = clock() - grace_seconds
    with db.read() as tx:
        every = tx.all_manifest_ids()
        unused = every - tx.used_manifest_ids()  # a create may be about to name one: keep their chunks this pass
        uploading = {bytes.fromhex(d) for d in tx.upload_digests()}
        if regions is None:
            live_by_store = {id(s): _chunks_of(tx, every) | uploading for s in stores}
        else:
            live_by_store = {}
            for region in regions.zones:
                live = _chunks_of(tx, tx.manifests_used_in(region) | unused) | uploading
                live_by_store.update({id(s): live for s in regions.region_stores(region)})
    for store in stores if regions is None else regions.all():
        live = live_by_store[id(store)]
        for path, mtime in store.backend.list(store.prefix + "chunks/"):
            digest = bytes.fromhex(path.rsplit("/", 1)[-1])
            if digest in live or mtime >= cutoff:
                report.chunks_kept += 1
                continue
            taken = store.backend.take(path)
            if taken is None:
                continue
            if taken.mtime >= cutoff:
                taken.restore()
                report.chunks_restored += 1
            else:
                taken.drop()
                report.chunks_deleted += 1
    for backend in {id(s.backend): s.backend for s in (stores if regions is None else regions.all())}.values():
        if hasattr(backend, "debris"):
            backend.debris(DEBRIS_SECONDS)  # temp files of writers that died mid-write
    log.info("gc done", extra=report.__dict__)
    return report
