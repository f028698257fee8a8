"""raw_pieces: a raw disk file and its VHD footer in chunk-sized pieces, holes of a sparse file not read."""

from __future__ import annotations

import os

import pytest

from vmgallery.app.platform_images import raw_pieces
from vmgallery.domain.vhd import parse_vhd_footer

MiB = 1 << 20


@pytest.mark.parametrize(("size", "chunk"), [(8 * MiB, MiB), (8 * MiB, 3 * MiB), (5 * MiB, 2 * MiB), (MiB, 4 * MiB)])
def test_pieces_are_the_bytes_then_the_footer(tmp_path, size, chunk):
    path = tmp_path / "disk.raw"
    data = bytearray(size)
    with path.open("wb") as f:
        f.truncate(size)  # sparse: holes between the writes
        for offset in (0, 3 * MiB + 17, size - 100):
            if offset + 50 <= size:
                piece = os.urandom(50)
                f.seek(offset)
                f.write(piece)
                data[offset : offset + 50] = piece
    with path.open("rb") as f:
        pieces = list(raw_pieces(f, size, chunk))
    assert all(len(p) == chunk for p in pieces[:-1]) and 0 < len(pieces[-1]) <= chunk
    out = b"".join(pieces)
    assert out[:size] == bytes(data) and len(out) == size + 512
    assert parse_vhd_footer(out[size:]).current_size == size
