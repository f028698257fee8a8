"""`vmgallery admin verify [--repair]`: check every replica's chunks, and repair bad ones from a good copy.

Each Completed replica of each version must hold every chunk of the version's manifests, decoding to its digest.
With repair, a missing or corrupt chunk is rewritten from another replica (any region) that holds a sound copy;
a replica that cannot be repaired is marked Failed, so replication copies it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ..domain import replication as rules
from ..domain.manifests import CorruptChunk, MissingChunk
from .ports import Clock, Metadata, RegionStores, ReplicaRow
from .replication import chunks_of, copy_chunk, manifests_of, move, queue_copy

log = logging.getLogger("vmgallery.verify")


@dataclass
class VerifyReport:
    replicas: int = 0
    chunks_checked: int = 0
    missing: int = 0
    corrupt: int = 0
    repaired: int = 0
    unrepairable: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return self.missing == self.corrupt == 0 or (self.repaired == self.missing + self.corrupt)


def verify(
    db: Metadata,
    stores: RegionStores,
    repair: bool,
    clock: Clock,
    progress: Callable[[VerifyReport, int], None] | None = None,
) -> VerifyReport:
    """`progress(report, replicas_total)`, if given, is called after each chunk is checked."""
    report = VerifyReport()
    with db.read() as tx:
        rows = [r for r in tx.all_replicas() if r.state == rules.COMPLETED]
        by_version: dict[str, list[ReplicaRow]] = {}
        for r in rows:
            by_version.setdefault(r.version_key, []).append(r)
        chunks = {key: chunks_of(manifests_of(tx, key)) for key in by_version}
    for key, replicas in by_version.items():
        placed = {
            (r.region, r.idx): stores.stores_for(stores.placement(r.region, r.idx, r.storage_type)) for r in replicas
        }
        every = [s for filled in placed.values() for s in filled]
        for r in replicas:
            report.replicas += 1
            for store, digest in ((s, d) for s in placed[(r.region, r.idx)] for d, _size in chunks[key]):
                report.chunks_checked += 1
                if progress:
                    progress(report, len(rows))
                try:
                    store.frame(digest)
                    continue
                except MissingChunk:
                    report.missing += 1
                except CorruptChunk:
                    report.corrupt += 1
                log.warning(
                    "bad chunk",
                    extra={
                        "version": key,
                        "region": r.region,
                        "replica": r.idx,
                        "chunk": digest.hex(),
                        "store": store.name,
                    },
                )
                if not repair:
                    continue
                others = [s for s in every if s is not store]
                try:
                    copy_chunk(others, store, digest)
                    report.repaired += 1
                except (MissingChunk, CorruptChunk) as exc:
                    report.unrepairable.append(f"{key} {r.region}/{r.idx} {digest.hex()}: {exc}")
                    with db.write() as tx:
                        failed = move(
                            tx,
                            key,
                            r.region,
                            r.idx,
                            expected=rules.COMPLETED,
                            to=rules.FAILED,
                            now=clock(),
                            error=f"verify: {exc}",
                        )
                        if failed:
                            queue_copy(tx, key, r.region, r.idx, clock())
    return report
