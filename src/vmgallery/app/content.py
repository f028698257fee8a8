"""A disk image's bytes through its manifest: written into a chunk store, read back from any chunk reader."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..domain.manifests import CorruptChunk, Manifest
from .ports import ChunkReader, ChunkStore


def iter_range(reader: ChunkReader, manifest: Manifest, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """The bytes of [start, end) of a disk image, chunk by chunk, holes as zeros, every chunk verified."""
    end = manifest.size if end is None else min(end, manifest.size)
    if start >= end:
        return
    first, last = start // manifest.chunk_size, (end - 1) // manifest.chunk_size
    for i in range(first, last + 1):
        offset, length = manifest.span(i)
        digest = manifest.digests[i]
        data = reader.get(digest) if digest is not None else reader.zeros(length)
        if len(data) != length:
            raise CorruptChunk(f"chunk {i} of a manifest holds {len(data)} bytes, expected {length}")
        lo = max(start - offset, 0)
        hi = min(end - offset, length)
        yield data[lo:hi] if (lo, hi) != (0, length) else data


def read_range(reader: ChunkReader, manifest: Manifest, start: int, length: int) -> bytes:
    return b"".join(iter_range(reader, manifest, start, start + length))


def write_image(store: ChunkStore, chunks: Iterable[bytes], size: int) -> Manifest:
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
