"""Manifests: a disk image as its size and the ordered digests of its chunks (format: docs/storage-format.md).

A manifest is a value: the same chunks in the same order give the same id, whichever store holds them. The errors
here are what reading a manifest's chunks can find wrong, whatever the store.
"""

from __future__ import annotations

from dataclasses import dataclass

import blake3
import zstandard

DEFAULT_CHUNK_SIZE = 1 << 20
DIGEST_SIZE = 32
HOLE = bytes(DIGEST_SIZE)


class CorruptChunk(Exception):
    """A stored chunk does not match its digest (or cannot be decoded)."""


class MissingChunk(Exception):
    """A manifest names a chunk the store does not have."""


def digest_of(data: bytes | memoryview) -> bytes:
    return blake3.blake3(data).digest()


@dataclass(frozen=True)
class Manifest:
    """A disk image: its size and the digest of each chunk, None for a hole."""

    size: int
    chunk_size: int
    digests: tuple[bytes | None, ...]

    def __post_init__(self) -> None:
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
