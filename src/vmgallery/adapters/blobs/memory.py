"""A blob backend in memory: a fake for unit tests of code above the backend interface."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from .backend import BlobMissing, Immediate


class _TakenBlob:
    def __init__(self, backend: MemoryBackend, path: str, data: bytes, mtime: float):
        self.backend, self.path, self.data, self.mtime = backend, path, data, mtime

    def restore(self) -> None:
        with self.backend.lock:
            self.backend.objects.setdefault(self.path, (self.data, self.mtime))

    def drop(self) -> None:
        pass


class MemoryBackend:
    def __init__(self, name: str = "memory", clock=time.time):
        self.name = name
        self.clock = clock
        self.objects: dict[str, tuple[bytes, float]] = {}
        self.lock = threading.Lock()

    def put(self, path: str, data: bytes) -> None:
        with self.lock:
            self.objects[path] = (bytes(data), self.clock())

    def get(self, path: str) -> bytes:
        try:
            return self.objects[path][0]
        except KeyError:
            raise BlobMissing(path) from None

    def exists(self, path: str) -> bool:
        return path in self.objects

    def mtime(self, path: str) -> float | None:
        entry = self.objects.get(path)
        return entry[1] if entry else None

    def touch(self, path: str) -> bool:
        with self.lock:
            if path not in self.objects:
                return False
            self.objects[path] = (self.objects[path][0], self.clock())
            return True

    def delete(self, path: str) -> None:
        with self.lock:
            self.objects.pop(path, None)

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:
        for path, (_data, mtime) in list(self.objects.items()):
            if path.startswith(prefix):
                yield path, mtime

    def take(self, path: str) -> _TakenBlob | None:
        with self.lock:
            entry = self.objects.pop(path, None)
        return _TakenBlob(self, path, *entry) if entry else None

    def batch(self) -> Immediate:
        return Immediate(self)

    def debris(self, older_than: float) -> int:
        return 0  # a put is one assignment: nothing is left half-written
