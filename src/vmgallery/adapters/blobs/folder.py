"""A blob backend on a local folder: temp file, fsync, rename, fsync the directory."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Iterator

from .backend import BlobMissing


class _TakenFile:
    def __init__(self, backend: "FolderBackend", path: str, holding: Path):
        self.backend, self.path, self.holding = backend, path, holding
        self.mtime = holding.stat().st_mtime

    def restore(self) -> None:
        target = self.backend.root / self.path
        try:
            os.link(self.holding, target)
        except FileExistsError:
            pass  # a writer put a fresh copy back meanwhile: same content
        self.holding.unlink(missing_ok=True)

    def drop(self) -> None:
        self.holding.unlink(missing_ok=True)


class FolderBackend:
    def __init__(self, root: Path, name: str | None = None):
        self.root = Path(root)
        self.name = name or str(root)
        self.tmp = self.root / "tmp"

    def _path(self, path: str) -> Path:
        return self.root / path

    def put(self, path: str, data: bytes) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def get(self, path: str) -> bytes:
        try:
            return self._path(path).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(path) from None

    def exists(self, path: str) -> bool:
        return self._path(path).exists()

    def mtime(self, path: str) -> float | None:
        try:
            return self._path(path).stat().st_mtime
        except FileNotFoundError:
            return None

    def touch(self, path: str) -> bool:
        try:
            os.utime(self._path(path))
            return True
        except FileNotFoundError:
            return False

    def delete(self, path: str) -> None:
        self._path(path).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:
        base = self._path(prefix)
        if not base.exists():
            return
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                full = Path(dirpath) / f
                try:
                    yield str(full.relative_to(self.root)), full.stat().st_mtime
                except FileNotFoundError:
                    continue

    def take(self, path: str):
        self.tmp.mkdir(parents=True, exist_ok=True)
        holding = self.tmp / f"{uuid.uuid4().hex}.taken"
        try:
            os.rename(self._path(path), holding)
        except FileNotFoundError:
            return None
        return _TakenFile(self, path, holding)

    def debris(self, older_than: float) -> int:
        """Remove temp files of writers that died (older than `older_than` seconds)."""
        cutoff = time.time() - older_than
        removed = 0
        for f in self.tmp.iterdir() if self.tmp.is_dir() else ():
            try:
                if f.stat().st_mtime < cutoff:
                    f.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
