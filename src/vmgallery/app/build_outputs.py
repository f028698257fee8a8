"""What a build writes to storage accounts the operator configured ([storage_accounts]):

- a VHD output whose `distribute[].uri` names a blob: a page blob holding the built disk as a fixed VHD (its raw
  bytes, then the 512-byte footer), as Azure writes it. Pages that are all zeros are not sent (a page blob reads as
  zeros where nothing was written), so a mostly empty disk costs only its data;
- each run's customization.log, when `[builder] customization_log_container` names a container: the block blob
  `<run id>/customization.log` in it, written when the run ends (docs/image-builder-logs.md says how this differs
  from Azure's storage account in the staging resource group).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..domain.disks import FOOTER
from ..domain.timestamps import arm_time
from .platform_images import raw_pieces
from .ports import Metadata, StorageAccounts

PAGE_WRITE = 4 << 20  # the largest Put Page the storage service takes
LOG_PAGE = 5000


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


def customization_log_uri(container: str, run_id: str) -> str:
    """Where a run's log goes, named as Azure names it: one folder per run in the `packerlogs` container."""
    return f"{container.rstrip('/')}/{run_id}/customization.log"


def publish_log(db: Metadata, accounts: StorageAccounts, template_key: str, uri: str) -> None:
    """The run's whole log as text, one `time line` a line, written to `uri` (replacing what an earlier attempt of
    the same run wrote)."""
    lines: list[str] = []
    after = 0
    while True:
        with db.read() as tx:
            page = tx.build_log(template_key, after, LOG_PAGE)
        lines += [f"{arm_time(at)} {line}\n" for _, at, line in page]
        if len(page) < LOG_PAGE:
            break
        after = page[-1][0]
    accounts.write_block_blob(uri, "".join(lines).encode())
