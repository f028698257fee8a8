"""The one narrow interface every blob backend implements: folder, Azure Blob, S3, and memory (a fake for tests).

A backend stores immutable objects under slash-separated paths. It knows nothing of chunks or digests: the chunk
store (chunks.py) names objects by digest and verifies what it reads; the backend only promises the contract below,
method by method. `Batch` and `Taken` are declared with the ports (app/ports.py), which the chunk store re-exposes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ...app.ports import Batch, Taken


class BlobMissing(Exception):
    """The named object does not exist."""


class Immediate:
    """The batch of a backend whose every put is atomic and durable on its own (object stores, memory)."""

    def __init__(self, backend: BlobBackend):
        self.put = backend.put

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


class BlobBackend(Protocol):
    name: str  # for logs and messages: which zone this is

    def put(self, path: str, data: bytes) -> None:
        """Store `data` at `path`, replacing any object there. Atomic (readers see the whole object or none) and
        durable when it returns."""
        ...

    def get(self, path: str) -> bytes:
        """The object's bytes; BlobMissing if there is none."""
        ...

    def exists(self, path: str) -> bool: ...

    def mtime(self, path: str) -> float | None:
        """The object's modification time (Unix seconds), None if there is none."""
        ...

    def touch(self, path: str) -> bool:
        """Refresh the object's modification time without changing its bytes; False if the object is gone."""
        ...

    def delete(self, path: str) -> None:
        """Remove the object; removing one that is gone is not an error."""
        ...

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:
        """(path, modification time) of every object under `prefix`, in no particular order. Objects put or removed
        while the listing runs may or may not appear."""
        ...

    def take(self, path: str) -> Taken | None:
        """Atomically move the object out of the way (for GC) and return a handle to restore or
        drop it; None if it is gone. A writer's `touch` after the take fails, so the writer stores it again."""
        ...

    def batch(self) -> Batch:
        """A cheaper way to many puts with the same guarantee: they become visible and durable together at `commit`
        (on a backend whose every put is already durable, as they are made; `abort` then takes nothing back, which
        is harmless for content-addressed chunks)."""
        ...

    def debris(self, older_than: float) -> int:
        """Remove what writers that died mid-put left behind (temporary files) older than `older_than` seconds; the
        count removed. Backends whose puts leave nothing behind return 0."""
        ...
