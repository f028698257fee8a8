"""Garbage collection of disk bytes: drop manifests nothing uses, then chunks no manifest or upload names.

Safe against concurrent writers without stopping them (docs/storage-format.md): chunks are marked from every
manifest still in the table (so a transaction about to reference one keeps its chunks for this pass), only chunks
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


@dataclass
class GcReport:
    manifests_deleted: int = 0
    chunks_deleted: int = 0
    chunks_kept: int = 0
    chunks_restored: int = 0


def collect(db: Database, stores: list[ChunkStore], clock: Callable[[], float], grace_seconds: float) -> GcReport:
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
    live: set[bytes] = set()
    with db.read() as tx:
        for manifest_id in tx.all_manifest_ids():
            live |= tx.get_manifest(manifest_id).live()
        live |= {bytes.fromhex(d) for d in tx.upload_digests()}

    for store in stores:
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
    log.info("gc done", extra=report.__dict__)
    return report
