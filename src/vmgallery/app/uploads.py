"""Page writes into a disk being uploaded (docs/storage-format.md, Uploads).

Each affected chunk is written to the chunk store first (zeros over a whole chunk or over a hole leave a hole:
nothing to store); then one transaction swaps the upload's chunk rows with compare-and-set on the digests the write
was based on. A chunk another writer changed in between is rebuilt on its new content and swapped again, so
concurrent writers to one chunk never lose each other's bytes. A crash leaves only rows that name whole, stored
chunks: the client resumes by writing again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future

from ..domain.manifests import Manifest
from .ports import ChunkStore, Metadata, Transaction

PAGE = 512
MAX_WRITE = 4 << 20

Piece = tuple[int, int, int, int, int]  # (chunk index, chunk start, chunk length, lo, hi)
Staged = tuple[Piece, str | None] | None  # a piece and its new digest (None: a hole), or None if it is unchanged
Mapper = Callable[[Callable[[Piece], Staged], list[Piece]], Iterable[Staged]]
Submit = Callable[[Callable[[Piece], Staged], Piece], "Future[Staged]"]
Body = bytes | bytearray


def _pieces(store: ChunkStore, size: int, offset: int, length: int) -> Iterator[Piece]:
    """(chunk index, chunk start, chunk length, lo, hi) for every chunk [offset, offset+length) touches."""
    cs = store.chunk_size
    end = offset + length
    for idx in range(offset // cs, (end - 1) // cs + 1):
        start = idx * cs
        clen = min(cs, size - start)
        yield idx, start, clen, max(offset, start), min(end, start + clen)


def _stage(store: ChunkStore, data: Body | None, offset: int, based: dict[int, str | None], piece: Piece) -> Staged:
    """Store one piece's chunk as it will be after the write; the new digest, or None if the row stays as it is."""
    idx, start, clen, lo, hi = piece
    old = based[idx]
    whole = (lo, hi) == (start, start + clen)
    # A memcmp against a zero buffer in place (tens of µs a MiB, bench/zero_pages.py): zeros over a whole
    # chunk or over a hole leave a hole, so they are neither copied, read, hashed nor stored.
    if (data is None or data.startswith(store.zeros(hi - lo), lo - offset)) and (old is None or whole):
        new = None
    else:
        # A whole chunk is hashed and framed from the body itself: the body is reused only after its write
        # committed, which waits for every chunk staged from it.
        chunk: bytes | memoryview = (
            memoryview(data)[lo - offset : hi - offset] if data is not None else store.zeros(hi - lo)
        )
        if not whole:
            base = store.get(bytes.fromhex(old)) if old else store.zeros(clen)
            chunk = base[: lo - start] + chunk + base[hi - start :]
        digest = store.put(chunk)  # None if the patched chunk came out all zeros: a hole
        new = digest.hex() if digest else None
    # Unchanged (zeros onto a hole, or the same bytes again): correct as of the read above, so no row write.
    return (piece, new) if new != old else None


def _based(db: Metadata, disk_key: str, pending: list[Piece]) -> dict[int, str | None]:
    with db.read() as tx:
        rows = tx.upload_span(disk_key, pending[0][0], pending[-1][0])
    return {idx: rows.get(idx) for idx, *_ in pending}


def _swap(db: Metadata, disk_key: str, based: dict[int, str | None], staged: Iterable[Staged]) -> list[Piece]:
    """Commit the staged rows, each compare-and-set on the digest it was based on; the pieces that lost the race."""
    changed = [s for s in staged if s is not None]
    if not changed:
        return []
    with db.write() as tx:
        lost = set(tx.swap_upload_chunks(disk_key, [(piece[0], based[piece[0]], new) for piece, new in changed]))
    return [piece for piece, _ in changed if piece[0] in lost]


def _write(
    db: Metadata, store: ChunkStore, disk_key: str, offset: int, data: Body | None, pending: list[Piece], mapper: Mapper
) -> None:
    while pending:
        based = _based(db, disk_key, pending)
        pending = _swap(db, disk_key, based, mapper(functools.partial(_stage, store, data, offset, based), pending))


def write_pages(
    db: Metadata,
    store: ChunkStore,
    disk_key: str,
    size: int,
    offset: int,
    data: bytes | None,
    length: int | None = None,
    mapper: Mapper = map,
) -> None:
    """Write `data` at `offset` (or, with data None, clear `length` bytes to zeros). `mapper` stages the chunks; a
    thread pool's `map` stages them in parallel (hashing and compression release the GIL, and each chunk's fsyncs
    overlap the others': about 3x less time for a 4 MiB write of 1 MiB chunks on one disk)."""
    if data is not None:
        length = len(data)
    elif length is None:
        raise ValueError("clearing pages needs a length")
    _write(db, store, disk_key, offset, data, list(_pieces(store, size, offset, length)), mapper)


class StreamedWrite:
    """A page write whose body arrives in parts: each chunk is staged (`Submit`, on a thread pool) as soon as its
    bytes are in, while the rest is still on the wire, and the rows are committed once the whole body is in. The
    rules are write_pages': a body that never completes commits nothing (its staged chunks are unnamed, and GC
    takes them after the grace period)."""

    def __init__(
        self, db: Metadata, store: ChunkStore, disk_key: str, size: int, offset: int, body: bytearray, submit: Submit
    ):
        self.db, self.store, self.disk_key, self.offset, self.submit = db, store, disk_key, offset, submit
        self.body = body  # the caller fills it in order, and calls `received` as it goes
        self.pieces = list(_pieces(store, size, offset, len(body)))
        self.based = _based(db, disk_key, self.pieces)
        self._staging: list[Future[Staged]] = []

    def received(self, upto: int) -> None:
        """The body's first `upto` bytes are in: stage every chunk they complete."""
        while len(self._staging) < len(self.pieces) and self.pieces[len(self._staging)][4] - self.offset <= upto:
            stage = functools.partial(_stage, self.store, self.body, self.offset, self.based)
            self._staging.append(self.submit(stage, self.pieces[len(self._staging)]))

    def commit(self, mapper: Mapper = map) -> None:
        """After the whole body is in: wait for the staged chunks, commit their rows, and redo the chunks another
        writer changed meanwhile."""
        self.received(len(self.body))
        retry = _swap(self.db, self.disk_key, self.based, [f.result() for f in self._staging])
        _write(self.db, self.store, self.disk_key, self.offset, self.body, retry, mapper)


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
