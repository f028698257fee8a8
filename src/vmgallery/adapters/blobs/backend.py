"""The one narrow interface every blob backend implements (folder now; Azure Blob and S3 with replication).

Contract: `put` is atomic (readers see the whole object or none) and durable when it returns; objects are never
modified in place; `touch` refreshes an object's modification time and returns False if the object is gone;
`take` atomically moves an object out of the way (for GC) and returns a handle to restore or drop it.
"""

from __future__ import annotations

from typing import Iterator, Protocol


class BlobMissing(Exception):
    """The named object does not exist."""


class Taken(Protocol):
    mtime: float

    def restore(self) -> None: ...

    def drop(self) -> None: ...


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
