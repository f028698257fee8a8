"""One conformance suite for every blob backend (backend.py): a local folder, memory, Azure Blob Storage on Azurite,
and S3 on moto's server (`moto[server]`'s ThreadedMotoServer, a real S3-compatible HTTP endpoint on loopback, driven
through boto3 like any S3 store).

Object stores keep Last-Modified to the second: the tests that need an object older than "now" wait one second.
"""

from __future__ import annotations

import math
import time
import uuid

import pytest

from tests.azurite import azurite  # noqa: F401  (the session fixture)
from vmgallery.adapters.blobs.backend import BlobMissing
from vmgallery.adapters.blobs.folder import FolderBackend
from vmgallery.adapters.blobs.memory import MemoryBackend
from vmgallery.adapters.blobs.objectstore import AzureBlobBackend, S3Backend, zone_backend

OBJECT_STORES = ("azure", "s3")


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=("folder", "memory") + OBJECT_STORES)
def store(request, tmp_path):
    kind = request.param
    if kind == "folder":
        return FolderBackend(tmp_path / "zone")
    if kind == "memory":
        return MemoryBackend()
    if kind == "azure":
        az = request.getfixturevalue("azurite")
        return AzureBlobBackend(f"c{uuid.uuid4().hex[:12]}", az.endpoint, account_key=az.account_key)
    return S3Backend(
        f"b{uuid.uuid4().hex[:12]}",
        endpoint=request.getfixturevalue("s3_endpoint"),
        access_key_id="test",
        secret_access_key="test",
        region="us-east-1",
        prefix="zone1/",
    )


def older_than_now(store) -> float:
    """A time after every Last-Modified so far, at the store's resolution (object stores: whole seconds)."""
    if isinstance(store, (AzureBlobBackend, S3Backend)):
        time.sleep(1.05)
        return math.floor(time.time())
    time.sleep(0.05)
    return time.time() - 0.02  # a file system stamps with a coarse clock, up to a tick behind time.time()


def test_put_then_get_round_trip_and_overwrite(store):
    data = bytes(range(256)) * 1000
    store.put("chunks/ab/cd/abcd", data)
    assert store.get("chunks/ab/cd/abcd") == data
    store.put("chunks/ab/cd/abcd", b"second")
    assert store.get("chunks/ab/cd/abcd") == b"second"
    store.put("empty", b"")
    assert store.get("empty") == b""


def test_exists_mtime_and_delete(store):
    before = math.floor(time.time()) - 1
    assert not store.exists("a/b") and store.mtime("a/b") is None
    store.put("a/b", b"x")
    assert store.exists("a/b")
    assert before <= store.mtime("a/b") <= time.time() + 1
    store.delete("a/b")
    assert not store.exists("a/b") and store.mtime("a/b") is None
    store.delete("a/b")  # deleting what is gone is not an error


def test_touch_refreshes_the_modification_time_and_reports_a_missing_object(store):
    store.put("a/b", b"x")
    first = store.mtime("a/b")
    now = older_than_now(store)
    assert store.touch("a/b")
    assert store.mtime("a/b") >= now > first
    assert store.get("a/b") == b"x"
    assert not store.touch("a/missing")
    assert not store.exists("a/missing")


def test_missing_objects_raise_blob_missing(store):
    with pytest.raises(BlobMissing):
        store.get("chunks/00/00/nothing")


def test_list_by_prefix_with_modification_times(store):
    for path in ("chunks/aa/01/x", "chunks/aa/02/y", "chunks/bb/01/z", "replica1/chunks/aa/01/x", "other"):
        store.put(path, path.encode())
    now = time.time()
    listed = dict(store.list("chunks/"))
    assert set(listed) == {"chunks/aa/01/x", "chunks/aa/02/y", "chunks/bb/01/z"}
    assert all(now - 5 <= mtime <= now + 1 for mtime in listed.values())
    assert {p for p, _ in store.list("replica1/chunks/")} == {"replica1/chunks/aa/01/x"}
    assert list(store.list("nothing/")) == []


def test_take_then_restore_or_drop(store):
    store.put("chunks/aa/01/x", b"kept")
    store.put("chunks/aa/02/y", b"dropped")
    mtime = store.mtime("chunks/aa/01/x")
    taken = store.take("chunks/aa/01/x")
    assert taken.mtime == pytest.approx(mtime, abs=1)
    assert not store.exists("chunks/aa/01/x")
    assert "chunks/aa/01/x" not in dict(store.list("chunks/"))
    taken.restore()
    assert store.get("chunks/aa/01/x") == b"kept"

    store.take("chunks/aa/02/y").drop()
    assert not store.exists("chunks/aa/02/y")
    assert list(store.list("chunks/")) == [("chunks/aa/01/x", store.mtime("chunks/aa/01/x"))]
    assert store.take("chunks/aa/02/y") is None


def test_restore_keeps_a_copy_a_writer_put_back_meanwhile(store):
    store.put("chunks/aa/01/x", b"same bytes")
    taken = store.take("chunks/aa/01/x")
    store.put("chunks/aa/01/x", b"same bytes")
    taken.restore()
    assert store.get("chunks/aa/01/x") == b"same bytes"


def test_a_batch_puts_everything_by_its_commit_and_an_aborted_folder_batch_leaves_no_trace(store):
    """Object stores put each object durably at once (their batch is immediate: an aborted put stays, which is
    harmless for content-addressed chunks); a folder batch shows nothing before commit."""
    batch = store.batch()
    for i in range(5):
        batch.put(f"chunks/aa/{i:02x}/c{i}", bytes([i]) * 1000)
    batch.commit()
    assert {p for p, _ in store.list("chunks/")} == {f"chunks/aa/{i:02x}/c{i}" for i in range(5)}
    assert store.get("chunks/aa/03/c3") == bytes([3]) * 1000
    batch.commit()  # committing an empty batch is harmless

    doomed = store.batch()
    doomed.put("chunks/bb/00/gone", b"never committed")
    doomed.abort()
    doomed.commit()
    if isinstance(store, FolderBackend):
        assert not store.exists("chunks/bb/00/gone")
        assert list(store.tmp.iterdir()) == []  # no staged file left behind
    else:
        assert store.get("chunks/bb/00/gone") == b"never committed"


def test_a_folder_batch_hides_its_puts_until_their_bytes_are_on_disk(tmp_path, monkeypatch):
    """The order that makes a crash safe: staged files are flushed before any is renamed into sight, and the renames
    are flushed before commit returns."""
    backend = FolderBackend(tmp_path / "zone")
    syncs: list[set[str]] = []
    real_sync = backend._sync
    monkeypatch.setattr(
        backend, "_sync", lambda paths: (syncs.append({p for p, _ in backend.list("chunks/")}), real_sync(paths))
    )
    batch = backend.batch()
    batch.put("chunks/aa/01/x", b"x" * 4096)
    batch.put("chunks/aa/02/y", b"y" * 4096)
    assert not backend.exists("chunks/aa/01/x") and len(list(backend.tmp.iterdir())) == 2
    batch.commit()
    assert syncs == [set(), {"chunks/aa/01/x", "chunks/aa/02/y"}]
    assert backend.get("chunks/aa/02/y") == b"y" * 4096


@pytest.mark.parametrize("kind", OBJECT_STORES)
def test_a_touch_racing_a_take_keeps_the_object(kind, request, tmp_path, monkeypatch):
    """Copy-then-delete is not atomic like a rename: a writer refreshing the object between GC reading its time and
    deleting it must still make the taken object count as fresh, so GC puts it back."""
    store = _object_store(kind, request)
    store.put("chunks/aa/01/x", b"x")
    cutoff = older_than_now(store)
    copy = store._copy

    def copy_then_a_writer_touches(source, target):
        copy(source, target)
        assert store.touch("chunks/aa/01/x")

    monkeypatch.setattr(store, "_copy", copy_then_a_writer_touches)
    taken = store.take("chunks/aa/01/x")
    monkeypatch.setattr(store, "_copy", copy)
    assert taken.mtime >= cutoff
    taken.restore()
    assert store.get("chunks/aa/01/x") == b"x"
    assert [p for p, _ in store.list("tmp/")] == []

    untouched = store.take("chunks/aa/01/x")
    assert untouched.mtime < time.time() + 1
    untouched.drop()
    assert not store.exists("chunks/aa/01/x")
    assert [p for p, _ in store.list("")] == []


def _object_store(kind, request):
    if kind == "azure":
        az = request.getfixturevalue("azurite")
        return AzureBlobBackend(f"c{uuid.uuid4().hex[:12]}", az.endpoint, account_key=az.account_key)
    return S3Backend(
        f"b{uuid.uuid4().hex[:12]}",
        endpoint=request.getfixturevalue("s3_endpoint"),
        access_key_id="test",
        secret_access_key="test",
        prefix="zone1/",
    )


def test_zones_are_built_from_folder_paths_and_tables(tmp_path):
    assert isinstance(zone_backend(str(tmp_path), "r/zone1"), FolderBackend)
    azure = zone_backend(
        {
            "kind": "azure",
            "container": "c1",
            "account_url": "http://127.0.0.1:10000/devstoreaccount1",
            "account_key": "a2V5",
        },
        "r/zone2",
    )
    assert isinstance(azure, AzureBlobBackend) and azure.name == "r/zone2"
    assert azure.client.account_name == "devstoreaccount1"
    s3 = zone_backend(
        {
            "kind": "s3",
            "bucket": "b1",
            "endpoint": "http://127.0.0.1:9000",
            "access_key_id": "k",
            "secret_access_key": "s",
            "region": "eu-west-1",
        },
        "r/zone3",
    )
    assert isinstance(s3, S3Backend) and s3.name == "r/zone3"
    with pytest.raises(ValueError, match="kind"):
        zone_backend({"kind": "tape"}, "r/zone4")
