"""Where each region keeps its chunks: zones (failure domains), each a blob backend, and replicas placed on them.

Layout of one region (folder backends, the embedded default: DATA_DIR/blobs/<region>/zone<N>):

    zone1/chunks/...             replica 0: the region's primary store (uploads and captures land here)
    zone1/replica3/chunks/...    replica 3 of an LRS version (LRS keeps every replica in one zone)
    zone2/chunks/...             replica 1 of a ZRS version (ZRS spreads replicas over distinct zones)
    premium/replica2/chunks/...  replica 2 of a Premium version, in a region with a premium zone (`premium_zones`)

Which zone and slot replica i of a version goes to is a rule of the domain (domain/placement.py); this module maps
placements to stores. Implements `app.ports.RegionStores`.

The primary store is where captures land and where a region's own disks, snapshots and images find their bytes, so
it must hold every version the region has: a premium replica 0 fills the primary store too (`stores_for`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ...domain.manifests import DEFAULT_CHUNK_SIZE
from ...domain.placement import Placement, place
from .backend import BlobBackend
from .chunks import ChunkStore
from .folder import FolderBackend

DEFAULT_ZONES = 3
_CHUNK_PATH = re.compile(r"(?:replica([1-9][0-9]*)/)?chunks/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}")


class RegionStores:
    def __init__(
        self,
        root: Path,
        regions: tuple[str, ...],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        grace_seconds: float = 3600.0,
        zones: dict[str, list[BlobBackend]] | None = None,
        zones_per_region: int = DEFAULT_ZONES,
        premium: dict[str, BlobBackend] | None = None,
    ):
        self.chunk_size = chunk_size
        self.grace_seconds = grace_seconds
        zones, premium = zones or {}, premium or {}
        unknown = sorted(set(premium) - set(regions))
        if unknown:
            raise ValueError(f"premium_zones names regions that are not configured: {', '.join(unknown)}")
        standard = {
            r: zones.get(r)
            or [FolderBackend(root / r / f"zone{z + 1}", name=f"{r}/zone{z + 1}") for z in range(zones_per_region)]
            for r in regions
        }
        self._standard = {r: len(standard[r]) for r in regions}
        # A region's backends: its standard zones, then its premium zone if it has one.
        self.zones: dict[str, list[BlobBackend]] = {
            r: standard[r] + ([premium[r]] if r in premium else []) for r in regions
        }
        self._stores: dict[tuple[str, int, int], ChunkStore] = {}

    def _store(self, region: str, zone: int, slot: int) -> ChunkStore:
        key = (region, zone, slot)
        if key not in self._stores:
            self._stores[key] = ChunkStore(
                self.zones[region][zone],
                chunk_size=self.chunk_size,
                grace_seconds=self.grace_seconds,
                prefix=f"replica{slot}/" if slot else "",
            )
        return self._stores[key]

    def store(self, region: str) -> ChunkStore:
        """The region's primary store (replica 0)."""
        return self._store(region, 0, 0)

    def placement(self, region: str, index: int, storage_type: str) -> Placement:
        return place(
            region, index, storage_type, self._standard[region], len(self.zones[region]) > self._standard[region]
        )

    def replica(self, placement: Placement) -> ChunkStore:
        return self._store(placement.region, placement.zone, placement.slot)

    def is_primary(self, placement: Placement) -> bool:
        return placement.is_primary

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self.zones)

    def stores_for(self, placement: Placement) -> list[ChunkStore]:
        """The stores a replica fills (and GC keeps its chunks in): its own, and for replica 0 the region's primary
        store too (where the region's own resources read; the same store unless replica 0 is premium)."""
        own = self.replica(placement)
        primary = self.store(placement.region)
        return [own] if placement.index or own is primary else [own, primary]

    def chunks_in(self, region: str) -> Iterator[tuple[ChunkStore, str, float]]:
        """Every chunk the region's zones hold, with the replica store it belongs to and its modification time: one
        listing per zone (on an object store, one paged LIST, however many replica slots it holds)."""
        for zone, backend in enumerate(self.zones[region]):
            for path, mtime in backend.list(""):
                m = _CHUNK_PATH.fullmatch(path)
                if m:
                    yield self._store(region, zone, int(m[1] or 0)), path, mtime

    def debris(self, older_than: float) -> int:
        backends = {id(b): b for zones in self.zones.values() for b in zones}
        return sum(b.debris(older_than) for b in backends.values())
