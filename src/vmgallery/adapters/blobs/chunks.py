"""The content-addressed chunk store (format: docs/storage-format.md); it implements `app.ports.ChunkStore`.

`ChunkStore.put` names a chunk by the BLAKE3 digest of its plain bytes, stores it zstd-compressed, skips all-zero
chunks (holes) and skips chunks already present; `ChunkStore.get` verifies every chunk it returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import zstandard

from ...app.ports import Batch, Taken
from ...domain.manifests import DEFAULT_CHUNK_SIZE, CorruptChunk, MissingChunk, digest_of
from .backend import BlobBackend, BlobMissing

RAW_BLOCK = 128 << 10  # zstd's largest block
PROBE = 4 << 10  # bytes of each of the four samples the incompressibility probe compresses
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def raw_frame(data: bytes | memoryview) -> bytes:
    """A zstd frame holding `data` in raw blocks: what the compressor writes for incompressible bytes, built with
    one copy instead of half a millisecond of trying per MiB. Header: single segment, 8-byte content size."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = [ZSTD_MAGIC, b"\xe0", len(data).to_bytes(8, "little")]
    for at in range(0, len(data), RAW_BLOCK):
        block = view[at : at + RAW_BLOCK]
        last = at + RAW_BLOCK >= len(data)
        parts += [(len(block) << 3 | last).to_bytes(3, "little"), block]
    return b"".join(parts)


def incompressible(data: bytes | memoryview) -> bool:
    """Whether four 4 KiB samples spread over `data` compress by less than 3% at zstd's fastest level (about 20 µs):
    random or already-compressed bytes, which zstd would store raw after trying. A chunk that is merely partly
    incompressible is compressed as usual."""
    n = len(data)
    if n < 16 * PROBE:
        return False
    sample = b"".join(data[i * n // 4 : i * n // 4 + PROBE] for i in range(4))
    return len(zstandard.ZstdCompressor(level=1).compress(sample)) >= len(sample) * 0.97


def chunk_path(digest: bytes) -> str:
    h = digest.hex()
    return f"chunks/{h[0:2]}/{h[2:4]}/{h}"


@dataclass
class StoreCounters:
    """What the store did, for tests and benchmarks to assert on (bytes moved, dedup hits)."""

    chunks_written: int = 0
    bytes_written: int = 0
    chunks_present: int = 0
    holes: int = 0
    chunks_read: int = 0


@dataclass
class ChunkStore:
    backend: BlobBackend
    chunk_size: int = DEFAULT_CHUNK_SIZE
    grace_seconds: float = 3600.0
    level: int = 3
    clock: Callable[[], float] = time.time
    counters: StoreCounters = field(default_factory=StoreCounters)
    # Several replicas may share one backend (a zone): each keeps its chunks under its own prefix.
    prefix: str = ""
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @property
    def name(self) -> str:
        return f"{self.backend.name}/{self.prefix}".rstrip("/")

    def path(self, digest: bytes) -> str:
        return self.prefix + chunk_path(digest)

    def zeros(self, n: int) -> bytes:
        """`n` zero bytes (a hole's content), from a per-thread buffer rather than a new allocation each time."""
        zero = getattr(self._local, "zero", None)
        if zero is None or len(zero) < n:
            zero = self._local.zero = bytes(max(n, self.chunk_size))
        return zero[:n] if len(zero) != n else zero

    def is_hole(self, data: bytes | memoryview) -> bool:
        # bytes.startswith is a memcmp for a view too; a memoryview's `==` compares byte by byte (0.9 ms a MiB of
        # leading zeros, against 0.02).
        return self.zeros(len(data)).startswith(data)

    def put(self, data: bytes | memoryview) -> bytes | None:
        """Store a chunk; its digest, or None for an all-zero chunk (stored as nothing). A view is read during the
        call only: what is stored is a new frame."""
        if self.is_hole(data):
            self.counters.holes += 1
            return None
        digest = digest_of(data)
        if self.refresh(digest):
            self.counters.chunks_present += 1
            return digest
        if incompressible(data):
            frame = raw_frame(data)
        else:
            frame = zstandard.ZstdCompressor(level=self.level, write_content_size=True).compress(data)
        self.backend.put(self.path(digest), frame)
        self.counters.chunks_written += 1
        self.counters.bytes_written += len(data)
        return digest

    def refresh(self, digest: bytes) -> bool:
        """True if the chunk is present, after refreshing an old one so a concurrent GC sweep cannot take it from
        under the reference about to be committed (see docs/storage-format.md, Garbage collection)."""
        path = self.path(digest)
        mtime = self.backend.mtime(path)
        return mtime is not None and (self.clock() - mtime < self.grace_seconds / 2 or self.backend.touch(path))

    def frame(self, digest: bytes) -> bytes:
        """The stored (compressed) form of a chunk, verified: what replication copies between stores."""
        frame = self.read_frame(digest)
        self._decode(digest, frame)
        return frame

    def put_frame(self, digest: bytes, frame: bytes, batch: Batch | None = None) -> None:
        """Store a chunk copied from another store, after checking it decodes to its digest (through `batch`, it
        is there once the batch commits)."""
        data = self._decode(digest, frame)
        (batch or self.backend).put(self.path(digest), frame)
        self.counters.chunks_written += 1
        self.counters.bytes_written += len(data)

    def read_frame(self, digest: bytes) -> bytes:
        """The stored form of a chunk, unverified: for a copy whose receiving end (`put_frame`) verifies it."""
        try:
            return self.backend.get(self.path(digest))
        except BlobMissing:
            raise MissingChunk(f"chunk {digest.hex()} is missing from {self.name}") from None

    def _decode(self, digest: bytes, frame: bytes) -> bytes:
        try:
            data = zstandard.ZstdDecompressor().decompress(frame)
        except zstandard.ZstdError as exc:
            raise CorruptChunk(f"chunk {digest.hex()} in {self.name} cannot be decoded: {exc}") from None
        if digest_of(data) != digest:
            raise CorruptChunk(f"chunk {digest.hex()} in {self.name} does not match its digest")
        return data

    def get(self, digest: bytes) -> bytes:
        data = self._decode(digest, self.read_frame(digest))
        self.counters.chunks_read += 1
        return data

    def has(self, digest: bytes) -> bool:
        return self.backend.exists(self.path(digest))

    def batch(self) -> Batch:
        return self.backend.batch()

    def chunks(self) -> Iterator[tuple[str, float]]:
        """(path, modification time) of every chunk stored here."""
        return self.backend.list(self.prefix + "chunks/")

    def take(self, path: str) -> Taken | None:
        return self.backend.take(path)

    def debris(self, older_than: float) -> int:
        return self.backend.debris(older_than)
