"""The folder backend's durable puts bypass the page cache (O_DIRECT) where the file system takes it, and fall back
to writing through the cache where it does not."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import mmap
import os

import pytest

from vmgallery.adapters.blobs import folder
from vmgallery.adapters.blobs.folder import FolderBackend

pytestmark = pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
SIZES = (4096, 4097, 65536, (1 << 20) + 37)


def cached_pages(path) -> int:
    """How many of the file's pages are in the page cache (mincore on a private mapping, which reads nothing)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as m:
        pages = -(-size // mmap.PAGESIZE)
        vec = (ctypes.c_ubyte * pages)()
        anchor = ctypes.c_char.from_buffer(m)  # the mapping's address; released before the mapping closes
        try:
            assert _libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), ctypes.c_size_t(size), vec) == 0
        finally:
            del anchor
        return sum(v & 1 for v in vec)


def payload(n: int) -> bytes:
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def test_durable_puts_bypass_the_page_cache_and_keep_every_byte(tmp_path):
    backend = FolderBackend(tmp_path / "zone")
    for n in SIZES:
        backend.put(f"chunks/{n}", payload(n))
        path = backend.root / f"chunks/{n}"
        assert os.path.getsize(path) == n  # the alignment's padding is cut off again
        assert cached_pages(path) == 0, n
        assert backend.get(f"chunks/{n}") == payload(n)
    assert backend.direct
    # A small object goes through the cache: padding it to a block would cost more than it saves.
    backend.put("small", payload(100))
    assert backend.get("small") == payload(100) and cached_pages(backend.root / "small") == 1
    assert not list(backend.tmp.iterdir())


def test_a_batch_writes_direct_too_and_publishes_every_byte_at_commit(tmp_path):
    backend = FolderBackend(tmp_path / "zone")
    batch = backend.batch()
    for n in SIZES:
        batch.put(f"chunks/{n}", payload(n))
    assert not backend.exists(f"chunks/{SIZES[0]}")
    batch.commit()
    for n in SIZES:
        path = backend.root / f"chunks/{n}"
        assert os.path.getsize(path) == n and cached_pages(path) == 0, n
        assert backend.get(f"chunks/{n}") == payload(n)


def test_a_file_system_refusing_o_direct_at_open_gets_cached_writes(tmp_path, monkeypatch):
    real_open = os.open

    def refusing(path, flags, *args):  # a file system without direct I/O (tmpfs before Linux 6.6, some FUSE)
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(folder.os, "open", refusing)
    backend = FolderBackend(tmp_path / "zone")
    for n in SIZES:
        backend.put(f"chunks/{n}", payload(n))
        assert backend.get(f"chunks/{n}") == payload(n)
    assert not backend.direct
    assert cached_pages(backend.root / f"chunks/{SIZES[-1]}") > 0


@pytest.mark.parametrize("refused_after", [0, 8192])
def test_a_direct_write_refused_midway_is_finished_through_the_cache(tmp_path, monkeypatch, refused_after):
    real_pwrite = os.pwrite
    calls = []

    def refusing(fd, data, offset):  # accepts `refused_after` bytes direct, then refuses
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            calls.append(offset)
            if offset >= refused_after:
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_pwrite(fd, memoryview(data)[: refused_after - offset], offset)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(folder.os, "pwrite", refusing)
    backend = FolderBackend(tmp_path / "zone")
    n = SIZES[-1]
    backend.put("chunk", payload(n))
    assert calls and not backend.direct
    assert os.path.getsize(backend.root / "chunk") == n
    assert backend.get("chunk") == payload(n)
    backend.put("next", payload(n))  # later puts no longer try
    assert backend.get("next") == payload(n) and len(calls) == len(set(calls)) == (2 if refused_after else 1)
