"""Page writes into a disk being uploaded (docs/storage-format.md, Uploads).

Each affected chunk is written to the chunk store first (zeros over a whole chunk or over a hole leave a hole:
nothing to store); then one transaction swaps the upload's chunk rows with compare-and-set on the digests the write
was based on. A chunk another writer changed in between is rebuilt on its new content and swapped again, so
concurrent writers to one chunk never lose each other's bytes. A crash leaves only rows that name whole, stored
chunks: the client resumes by writing again.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..domain.manifests import Manifest
from .ports import ChunkStore, Metadata, Transaction

PAGE = 512
MAX_WRITE = 4 << 20


def _pieces(store: ChunkStore, size: int, offset: int, length: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(chunk index, chunk start, chunk length, lo, hi) for every chunk [offset, offset+length) touches."""
    cs = store.chunk_size
    end = offset + length
    for idx in range(offset // cs, (end - 1) // cs + 1):
        start = idx * cs
        clen = min(cs, size - start)
        yield idx, start, clen, max(offset, start), min(end, start + clen)


def write_pages(
    db: Metadata,
    store: ChunkStore,
    disk_key: str,
    size: int,
    offset: int,
    data: bytes | None,
    length: int | None = None,
) -> None:
    """Write `data` at `offset` (or, with data None, clear `length` bytes to zeros)."""
    if data is not None:
        length = len(data)
    elif length is None:
        raise ValueError("clearing pages needs a length")
    pending = list(_pieces(store, size, offset, length))
    while pending:
        with db.read() as tx:
            based = {idx: tx.upload_digest(disk_key, idx) for idx, *_ in pending}
        staged = []
        for idx, start, clen, lo, hi in pending:
            old = based[idx]
            whole = (lo, hi) == (start, start + clen)
            # A memcmp against a zero buffer in place (tens of µs a MiB, bench/zero_pages.py): zeros over a whole
            # chunk or over a hole leave a hole, so they are neither copied, read, hashed nor stored.
            if (data is None or data.startswith(store.zeros(hi - lo), lo - offset)) and (old is None or whole):
                new = None
            else:
                piece = data[lo - offset : hi - offset] if data is not None else store.zeros(hi - lo)
                if whole:
                    chunk = piece
                else:
                    base = store.get(bytes.fromhex(old)) if old else store.zeros(clen)
                    chunk = base[: lo - start] + piece + base[hi - start :]
                digest = store.put(chunk)  # None if the patched chunk came out all zeros: a hole
                new = digest.hex() if digest else None
            # Unchanged (zeros onto a hole, or the same bytes again): correct as of the read above, so no row write.
            if new != old:
                staged.append((idx, start, clen, lo, hi, new))
        retry = []
        if staged:
            with db.write() as tx:
                for idx, start, clen, lo, hi, new in staged:
                    if not tx.swap_upload_chunk(disk_key, idx, based[idx], new):
                        retry.append((idx, start, clen, lo, hi))
        pending = retry


def fold_upload(tx: Transaction, disk_key: str, size: int, chunk_size: int) -> Manifest:
    """The finished upload as a manifest; its rows are removed in the same transaction."""
    rows = tx.upload_rows(disk_key)
    count = -(-size // chunk_size)
    manifest = Manifest(size, chunk_size, tuple(bytes.fromhex(rows[i]) if i in rows else None for i in range(count)))
    tx.clear_upload(disk_key)
    return manifest


def upload_manifest(db: Metadata, disk_key: str, size: int, chunk_size: int) -> Manifest:
    """The upload so far as a manifest (read-only view, rows kept): for reads and page lists during an upload."""
    with db.read() as tx:
        rows = tx.upload_rows(disk_key)
    count = -(-size // chunk_size)
    return Manifest(size, chunk_size, tuple(bytes.fromhex(rows[i]) if i in rows else None for i in range(count)))
