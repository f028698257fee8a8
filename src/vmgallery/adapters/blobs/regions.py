"""Where each region keeps its chunks: zones (failure domains), each a blob backend, and replicas placed on them.

Layout of one region (folder backends, the embedded default: DATA_DIR/blobs/<region>/zone<N>):

    zone1/chunks/...             replica 0: the region's primary store (uploads and captures land here)
    zone1/replica3/chunks/...    replica 3 of an LRS version (LRS keeps every replica in one zone)
    zone2/chunks/...             replica 1 of a ZRS version (ZRS spreads replicas over distinct zones)

Replica i of a version goes to (zone, slot): ZRS -> (i mod Z, i div Z); LRS/Premium -> (0, i). Slot 0 of a zone is
its root, so every region's replica 0 is its primary store and replicas of different versions share chunks (dedup).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .backend import BlobBackend
from .chunks import DEFAULT_CHUNK_SIZE, ChunkStore
from .folder import FolderBackend

DEFAULT_ZONES = 3
_CHUNK_PATH = re.compile(r"(?:replica([1-9][0-9]*)/)?chunks/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}")


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

    def chunks_in(self, region: str) -> Iterator[tuple[ChunkStore, str, float]]:
        """Every chunk the region's zones hold, with the replica store it belongs to and its modification time: one
        listing per zone (on an object store, one paged LIST, however many replica slots it holds)."""
        for zone, backend in enumerate(self.zones[region]):
            for path, mtime in backend.list(""):
                m = _CHUNK_PATH.fullmatch(path)
                if m:
                    yield self._store(region, zone, int(m[1] or 0)), path, mtime

    def backends(self) -> list[BlobBackend]:
        return [b for zones in self.zones.values() for b in zones]
