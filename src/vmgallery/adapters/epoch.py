"""An epoch shared by the server processes of one deployment: a stamp that every committed write of what
authentication and authorization remember (the directory, role assignments and definitions) moves, so a process
reuses what it read only while nothing changed, in it or in any other process.

The stamp is this process's own count of changes plus the inode and mtime of a file in the data dir, which every
process serving the same authority shares (as it shares the signing keys); a change replaces the file (a new inode,
whatever the clock's resolution). Reading it is one stat(2), cheap enough for every request.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path


class Epoch:
    def __init__(self, path: Path | None):
        self.path = path
        self._changes = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        """After a committed change (not before: a reader between the two would remember the old state anew)."""
        with self._lock:
            self._changes += 1
        if self.path is not None:
            tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
            tmp.write_bytes(b"")
            os.replace(tmp, self.path)

    def current(self) -> tuple[int, int, int]:
        if self.path is None:
            return (self._changes, 0, 0)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (self._changes, 0, 0)
        return (self._changes, st.st_ino, st.st_mtime_ns)
