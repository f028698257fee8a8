"""Where each region keeps its chunks: zones (failure domains), each a blob backend, and replicas placed on them.

Layout of one region (folder backends, the embedded default: DATA_DIR/blobs/<region>/zone<N>):

    zone1/chunks/...             replica 0: the region's primary store (uploads and captures land here)
    zone1/replica3/chunks/...    replica 3 of an LRS version (LRS keeps every replica in one zone)
    zone2/chunks/...             replica 1 of a ZRS version (ZRS spreads replicas over distinct zones)

Replica i of a version goes to (zone, slot): ZRS -> (i mod Z, i div Z); LRS/Premium -> (0, i). Slot 0 of a zone is
its root, so every region's replica 0 is its primary store and replicas of different versions share chunks (dedup).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .backend import BlobBackend
from .chunks import DEFAULT_CHUNK_SIZE, ChunkStore
from .folder import FolderBackend

DEFAULT_ZONES = 3
MAX_SLOTS = 100  # a region holds at most 100 replicas of a version (regionalReplicaCount 1-100)


@dataclass(frozen=True)
class Placement:
    region: str
    index: int
    zone: int
    slot: int

    @property
    def label(self) -> str:
        return f"{self.region}/zone{self.zone + 1}" + (f"/replica{self.slot}" if self.slot else "")


def place(region: str, index: int, storage_type: str, zones: int) -> Placement:
    if storage_type == "Standard_ZRS":
        return Placement(region, index, index % zones, index // zones)
    return Placement(region, index, 0, index)


class RegionStores:
    def __init__(self, root: Path, regions: tuple[str, ...], chunk_size: int = DEFAULT_CHUNK_SIZE,
                 grace_seconds: float = 3600.0, zones: dict[str, list[BlobBackend]] | None = None,
                 zones_per_region: int = DEFAULT_ZONES):
        self.chunk_size = chunk_size
        self.grace_seconds = grace_seconds
        zones = zones or {}
        self.zones: dict[str, list[BlobBackend]] = {
            r: zones.get(r) or [FolderBackend(root / r / f"zone{z + 1}", name=f"{r}/zone{z + 1}")
                                for z in range(zones_per_region)]
            for r in regions}
        self._stores: dict[tuple[str, int, int], ChunkStore] = {}

    def _store(self, region: str, zone: int, slot: int) -> ChunkStore:
        key = (region, zone, slot)
        if key not in self._stores:
            self._stores[key] = ChunkStore(self.zones[region][zone], chunk_size=self.chunk_size,
                                           grace_seconds=self.grace_seconds,
                                           prefix=f"replica{slot}/" if slot else "")
        return self._stores[key]

    def store(self, region: str) -> ChunkStore:
        """The region's primary store (replica 0)."""
        return self._store(region, 0, 0)

    def placement(self, region: str, index: int, storage_type: str) -> Placement:
        return place(region, index, storage_type, len(self.zones[region]))

    def replica(self, placement: Placement) -> ChunkStore:
        return self._store(placement.region, placement.zone, placement.slot)

    def region_stores(self, region: str) -> list[ChunkStore]:
        """Every store of a region that may hold chunks: each zone's root and each replica slot in it."""
        return [self._store(region, zone, slot) for zone in range(len(self.zones[region]))
                for slot in range(MAX_SLOTS)]

    def all(self) -> list[ChunkStore]:
        return [s for region in self.zones for s in self.region_stores(region)]
