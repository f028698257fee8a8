"""A build's VHD output written where the template's `distribute[].uri` names: a page blob in a storage account the
operator configured, holding the built disk as a fixed VHD (its raw bytes, then the 512-byte footer), as Azure
writes it. Pages that are all zeros are not sent (a page blob reads as zeros where nothing was written), so a
mostly empty disk costs only its data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..domain.disks import FOOTER
from .platform_images import raw_pieces
from .ports import StorageAccounts

PAGE_WRITE = 4 << 20  # the largest Put Page the storage service takes


def write_vhd(accounts: StorageAccounts, uri: str, raw: Path, raw_size: int, beat: Callable[[], None]) -> None:
    with raw.open("rb") as f:
        accounts.write_page_blob(uri, raw_size + FOOTER, _pages(raw_pieces(f, raw_size, PAGE_WRITE), beat))


def _pages(pieces: Iterator[bytes], beat: Callable[[], None]) -> Iterator[tuple[int, bytes]]:
    offset = 0
    for piece in pieces:
        if piece.count(0) != len(piece):
            yield offset, piece
        offset += len(piece)
        beat()
