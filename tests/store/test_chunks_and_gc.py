"""The chunk store on a real folder and the garbage collector on the real metadata database (both backends)."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from vmgallery.adapters.blobs.chunks import ChunkStore, chunk_path, raw_frame
from vmgallery.adapters.blobs.folder import FolderBackend
from vmgallery.adapters.blobs.memory import MemoryBackend
from vmgallery.adapters.blobs.regions import RegionStores
from vmgallery.app.content import iter_range, read_range, write_image
from vmgallery.app.gc import collect
from vmgallery.domain.manifests import CorruptChunk, Manifest, MissingChunk

CHUNK = 4096
REGION = "eastus"


def pieces(data: bytes, size: int = CHUNK):
    return (data[i : i + size] for i in range(0, len(data), size))


def one_zone(tmp_path, backend) -> RegionStores:
    """One region of one zone: the collector's production path, over a single store."""
    return RegionStores(tmp_path / "blobs", (REGION,), chunk_size=CHUNK, zones={REGION: [backend]})


@pytest.fixture
def regions(tmp_path):
    return one_zone(tmp_path, FolderBackend(tmp_path / "zone"))


@pytest.fixture
def store(regions):
    return regions.store(REGION)


def test_round_trip_dedup_and_holes(store):
    data = os.urandom(CHUNK * 2) + bytes(CHUNK * 3) + os.urandom(CHUNK)[:1000]
    manifest = write_image(store, pieces(data), len(data))
    assert manifest.digests[2:5] == (None, None, None)
    assert store.counters.chunks_written == 3 and store.counters.holes == 3
    assert b"".join(iter_range(store, manifest)) == data
    again = write_image(store, pieces(data), len(data))
    assert again.id == manifest.id
    assert store.counters.chunks_written == 3 and store.counters.chunks_present == 3
    assert len(list(store.backend.list("chunks/"))) == 3


def test_a_view_of_a_body_is_stored_like_its_bytes(store):
    body = bytearray(CHUNK * 3)
    body[2 * CHUNK - 1] = 7  # the second chunk is zeros but its last byte
    chunks = [memoryview(body)[i * CHUNK : (i + 1) * CHUNK] for i in range(3)]
    assert store.put(chunks[0]) is None and store.put(chunks[2]) is None
    digest = store.put(chunks[1])
    assert digest is not None and store.get(digest) == bytes(chunks[1])
    assert store.counters.holes == 2 and store.counters.chunks_written == 1


@settings(max_examples=60, deadline=None)
@given(st.integers(0, CHUNK * 5), st.integers(0, CHUNK * 5))
def test_any_range_reads_the_right_bytes(start, length):
    store = ChunkStore(MemoryBackend(), chunk_size=CHUNK)
    data = random.Random(1).randbytes(CHUNK * 4) + bytes(CHUNK) + b"tail"
    manifest = write_image(store, pieces(data), len(data))
    assert read_range(store, manifest, start, length) == data[start : start + length]


def test_incompressible_chunks_are_stored_as_raw_zstd_frames():
    store = ChunkStore(MemoryBackend(), chunk_size=1 << 20)
    noise, text = os.urandom(1 << 20), (b"vmgallery chunk " * 65536)
    for data in (noise, text, noise[:70000] + bytes(len(noise) - 70000), noise[: 3 * 128 * 1024 + 5]):
        digest = store.put(data)
        frame = store.backend.get(chunk_path(digest))
        assert zstandard.get_frame_parameters(frame).content_size == len(data)
        assert store.get(digest) == data
    assert zstandard.ZstdDecompressor().decompress(raw_frame(noise[:5])) == noise[:5]
    assert len(store.backend.get(chunk_path(store.put(noise)))) == len(noise) + 13 + 3 * 8  # header + 8 raw blocks
    assert len(store.backend.get(chunk_path(store.put(text)))) < len(text) // 100


def test_manifest_pack_round_trip():
    store = ChunkStore(MemoryBackend(), chunk_size=CHUNK)
    data = os.urandom(CHUNK) + bytes(CHUNK) + os.urandom(10)
    manifest = write_image(store, pieces(data), len(data))
    assert Manifest.unpack(manifest.size, CHUNK, manifest.pack()) == manifest
    with pytest.raises(ValueError):
        Manifest(CHUNK * 2, CHUNK, (None,))


def test_every_read_is_verified(store):
    manifest = write_image(store, pieces(os.urandom(CHUNK * 2)), CHUNK * 2)
    path = store.backend.root / chunk_path(manifest.digests[1])
    blob = bytearray(path.read_bytes())
    other = store.backend.get(chunk_path(manifest.digests[0]))
    path.write_bytes(other)  # a valid frame with the wrong content
    with pytest.raises(CorruptChunk, match="does not match"):
        read_range(store, manifest, CHUNK, 10)
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CorruptChunk):
        read_range(store, manifest, CHUNK, 10)
    path.unlink()
    with pytest.raises(MissingChunk):
        read_range(store, manifest, CHUNK, 10)
    assert read_range(store, manifest, 0, 10)  # the good chunk still reads


def _age(store, digest, seconds):
    path = store.backend.root / chunk_path(digest)
    past = time.time() - seconds
    os.utime(path, (past, past))


def _disk(db, store, key, data):
    """A disk in the region whose bytes are `data`: its region's primary store must keep their chunks."""
    manifest = write_image(store, pieces(data), len(data))
    now = time.time()
    with db.write() as tx:
        tx.insert(
            key=key,
            type="Microsoft.Compute/disks",
            parent_key="/disk",
            subscription="s",
            group_key=None,
            location=REGION,
            natural_key=None,
            state="Succeeded",
            body={},
            now=now,
        )
        tx.set_content(key, "disk", tx.put_manifest(manifest, now))
    return manifest


def test_gc_keeps_what_is_named_or_young_and_drops_the_rest(db, regions, store):
    kept = _disk(db, store, "/disk/kept", os.urandom(CHUNK * 2))
    gone = _disk(db, store, "/disk/gone", os.urandom(CHUNK * 2))
    young = _disk(db, store, "/disk/young", os.urandom(CHUNK))
    uploading = store.put(os.urandom(CHUNK))
    with db.write() as tx:
        tx.swap_upload_chunks("/disk/up", [(0, None, uploading.hex())])
        tx.drop_contents("/disk/gone")
        tx.drop_contents("/disk/young")
    for m in (kept, gone):
        for d in m.digests:
            _age(store, d, 7200)
    _age(store, uploading, 7200)

    first = collect(db, regions, time.time, grace_seconds=3600)
    assert first.manifests_deleted == 2
    assert first.chunks_deleted == 2  # gone's chunks; the manifest left the table in this same pass
    assert all(store.has(d) for d in kept.digests) and store.has(uploading)
    assert not any(store.has(d) for d in gone.digests)
    assert all(store.has(d) for d in young.digests)  # unreferenced, but younger than the grace period


class RacyBackend(FolderBackend):
    """A folder whose writer refreshes a chunk exactly in GC's window between listing and taking it."""

    def take(self, path):
        self.touch(path)
        return super().take(path)


def test_gc_puts_back_a_chunk_a_writer_refreshed_while_it_was_taken(db, tmp_path):
    regions = one_zone(tmp_path, RacyBackend(tmp_path / "zone"))
    store = regions.store(REGION)
    digest = store.put(os.urandom(CHUNK))
    _age(store, digest, 7200)
    report = collect(db, regions, time.time, grace_seconds=3600)
    assert report.chunks_restored == 1 and report.chunks_deleted == 0
    assert store.get(digest)


def test_gc_racing_writers_never_loses_a_named_chunk(db, regions, store):
    # The grace period must exceed a writer's store-to-commit time by a wide margin (docs/storage-format.md); the
    # machine may be loaded, so give it 1.5 s here (production: an hour).
    store.grace_seconds = 1.5
    shared = [os.urandom(CHUNK) for _ in range(8)]  # writers keep re-using these: the dedup/touch path
    stop = threading.Event()
    errors: list[BaseException] = []
    rng = random.Random(3)
    named: dict[str, Manifest] = {}

    def writer():
        i = 0
        try:
            while not stop.is_set():
                data = b"".join(rng.choice(shared) if rng.random() < 0.7 else os.urandom(CHUNK) for _ in range(4))
                key = f"/disk/{i}"
                named[key] = _disk(db, store, key, data)
                if i >= 3:
                    with db.write() as tx:
                        tx.drop_contents(f"/disk/{i - 3}")
                    named.pop(f"/disk/{i - 3}")
                i += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    deleted = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        deleted += collect(db, regions, time.time, grace_seconds=store.grace_seconds).chunks_deleted
    stop.set()
    t.join()
    assert not errors, errors
    assert deleted > 0, "the collector never collected anything: the race was not exercised"
    for key, manifest in named.items():
        assert read_range(store, manifest, 0, manifest.size), key
