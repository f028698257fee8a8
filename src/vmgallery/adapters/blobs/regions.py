"""Where each region keeps its chunks. With no configuration: a local folder per region under DATA_DIR/blobs.

(Zones, replicas and object-store backends per region arrive with replication; callers already ask by region.)
"""

from __future__ import annotations

from pathlib import Path

from .chunks import DEFAULT_CHUNK_SIZE, ChunkStore
from .folder import FolderBackend


class RegionStores:
    def __init__(self, root: Path, regions: tuple[str, ...], chunk_size: int = DEFAULT_CHUNK_SIZE,
                 grace_seconds: float = 3600.0):
        self.chunk_size = chunk_size
        self._stores = {r: ChunkStore(FolderBackend(root / r / "zone1", name=f"{r}/zone1"), chunk_size=chunk_size,
                                      grace_seconds=grace_seconds) for r in regions}

    def store(self, region: str) -> ChunkStore:
        return self._stores[region]

    def all(self) -> list[ChunkStore]:
        return list(self._stores.values())
