"""The content-addressed chunk store and manifests (format: docs/storage-format.md).

`ChunkStore.put` names a chunk by the BLAKE3 digest of its plain bytes, stores it zstd-compressed, skips all-zero
chunks (holes) and skips chunks already present; `ChunkStore.get` verifies every chunk it returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import blake3
import zstandard

from .backend import Batch, BlobBackend, BlobMissing

DEFAULT_CHUNK_SIZE = 1 << 20
DIGEST_SIZE = 32
HOLE = bytes(DIGEST_SIZE)


class CorruptChunk(Exception):
    """A stored chunk does not match its digest (or cannot be decoded)."""


class MissingChunk(Exception):
    """A manifest names a chunk the store does not have."""


def digest_of(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


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
    clock: object = time.time
    counters: StoreCounters = field(default_factory=StoreCounters)
    # Several replicas may share one backend (a zone): each keeps its chunks under its own prefix.
    prefix: str = ""
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @property
    def name(self) -> str:
        return f"{self.backend.name}/{self.prefix}".rstrip("/")

    def path(self, digest: bytes) -> str:
        return self.prefix + chunk_path(digest)

    def _zero(self, n: int) -> bytes:
        zero = getattr(self._local, "zero", None)
        if zero is None or len(zero) < n:
            zero = self._local.zero = bytes(max(n, self.chunk_size))
        return zero[:n] if len(zero) != n else zero

    def is_hole(self, data: bytes) -> bool:
        return data == self._zero(len(data))

    def put(self, data: bytes) -> bytes | None:
        """Store a chunk; its digest, or None for an all-zero chunk (stored as nothing)."""
        if self.is_hole(data):
            self.counters.holes += 1
            return None
        digest = digest_of(data)
        if self.refresh(digest):
            self.counters.chunks_present += 1
            return digest
        compressor = zstandard.ZstdCompressor(level=self.level, write_content_size=True)
        self.backend.put(self.path(digest), compressor.compress(data))
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
        frame = self._frame(digest)
        self._decode(digest, frame)
        return frame

    def put_frame(self, digest: bytes, frame: bytes, batch: Batch | None = None) -> None:
        """Store a chunk copied from another store, after checking it decodes to its digest (through `batch`, it
        is there once the batch commits)."""
        data = self._decode(digest, frame)
        (batch or self.backend).put(self.path(digest), frame)
        self.counters.chunks_written += 1
        self.counters.bytes_written += len(data)

    def _frame(self, digest: bytes) -> bytes:
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
        data = self._decode(digest, self._frame(digest))
        self.counters.chunks_read += 1
        return data

    def has(self, digest: bytes) -> bool:
        return self.backend.exists(self.path(digest))


@dataclass(frozen=True)
class Manifest:
    """A disk image: its size and the digest of each chunk, None for a hole."""

    size: int
    chunk_size: int
    digests: tuple[bytes | None, ...]

    def __post_init__(self):
        expected = -(-self.size // self.chunk_size) if self.size else 0
        if len(self.digests) != expected:
            raise ValueError(
                f"a manifest of {self.size} bytes in {self.chunk_size}-byte chunks has {expected} "
                f"chunks, not {len(self.digests)}"
            )

    @classmethod
    def empty(cls, size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Manifest:
        return cls(size, chunk_size, (None,) * (-(-size // chunk_size)))

    def packed(self) -> bytes:
        return b"".join(d or HOLE for d in self.digests)

    @property
    def id(self) -> str:
        h = blake3.blake3(f"{self.size}:{self.chunk_size}:".encode())
        h.update(self.packed())
        return h.hexdigest()

    def pack(self) -> bytes:
        return zstandard.ZstdCompressor(level=3).compress(self.packed())

    @classmethod
    def unpack(cls, size: int, chunk_size: int, blob: bytes) -> Manifest:
        raw = zstandard.ZstdDecompressor().decompress(blob)
        digests = tuple(None if (d := raw[i : i + DIGEST_SIZE]) == HOLE else d for i in range(0, len(raw), DIGEST_SIZE))
        return cls(size, chunk_size, digests)

    def span(self, index: int) -> tuple[int, int]:
        start = index * self.chunk_size
        return start, min(self.chunk_size, self.size - start)

    def live(self) -> set[bytes]:
        return {d for d in self.digests if d is not None}

    def stored_bytes(self) -> int:
        return sum(self.span(i)[1] for i, d in enumerate(self.digests) if d is not None)


def iter_range(store: ChunkStore, manifest: Manifest, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """The bytes of [start, end) of a disk image, chunk by chunk, holes as zeros, every chunk verified."""
    end = manifest.size if end is None else min(end, manifest.size)
    if start >= end:
        return
    first, last = start // manifest.chunk_size, (end - 1) // manifest.chunk_size
    for i in range(first, last + 1):
        offset, length = manifest.span(i)
        digest = manifest.digests[i]
        data = store.get(digest) if digest is not None else store._zero(length)
        if len(data) != length:
            raise CorruptChunk(f"chunk {i} of a manifest holds {len(data)} bytes, expected {length}")
        lo = max(start - offset, 0)
        hi = min(end - offset, length)
        yield data[lo:hi] if (lo, hi) != (0, length) else data


def read_range(store: ChunkStore, manifest: Manifest, start: int, length: int) -> bytes:
    return b"".join(iter_range(store, manifest, start, start + length))


def write_image(store: ChunkStore, chunks: Iterator[bytes], size: int) -> Manifest:
    """Store a stream of chunk-sized pieces (the last may be short) as a manifest."""
    digests = []
    total = 0
    for piece in chunks:
        if len(piece) != store.chunk_size and total + len(piece) != size:
            raise ValueError("only the last piece may be shorter than the chunk size")
        digests.append(store.put(piece))
        total += len(piece)
    if total != size:
        raise ValueError(f"got {total} bytes, expected {size}")
    return Manifest(size, store.chunk_size, tuple(digests))
