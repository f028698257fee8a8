"""The one narrow interface every blob backend implements: folder, Azure Blob, S3, and memory (a fake for tests).

Contract: `put` is atomic (readers see the whole object or none) and durable when it returns; objects are never
modified in place; `touch` refreshes an object's modification time and returns False if the object is gone;
`take` atomically moves an object out of the way (for GC) and returns a handle to restore or drop it. `batch` gives a
writer of many objects a cheaper way to the same guarantee: its puts become visible and durable together at `commit`
(or, on a backend whose every put is already durable, as they are made; `abort` then takes nothing back, which is
harmless for content-addressed chunks).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class BlobMissing(Exception):
    """The named object does not exist."""


class Taken(Protocol):
    mtime: float

    def restore(self) -> None: ...

    def drop(self) -> None: ...


class Batch(Protocol):
    def put(self, path: str, data: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class Immediate:
    """The batch of a backend whose every put is atomic and durable on its own (object stores, memory)."""

    def __init__(self, backend: BlobBackend):
        self.put = backend.put

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


class BlobBackend(Protocol):
    name: str

    def put(self, path: str, data: bytes) -> None: ...

    def get(self, path: str) -> bytes: ...

    def exists(self, path: str) -> bool: ...

    def mtime(self, path: str) -> float | None: ...

    def touch(self, path: str) -> bool: ...

    def delete(self, path: str) -> None: ...

    def list(self, prefix: str) -> Iterator[tuple[str, float]]: ...

    def take(self, path: str) -> Taken | None: ...

    def batch(self) -> Batch: ...
