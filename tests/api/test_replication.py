"""Replication across regions on one machine: replica counts and zone spreading, dedup measured by the engine's
own counters, live status, region changes with and without the safety flag, shallow versions, per-region latest,
failing regions retried on their own, and self-healing reads."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid

import blake3
import httpx
import pytest
import zstandard
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobClient

from vmgallery.adapters.db.store import Database
from vmgallery.domain.vhd import vhd_footer

from ..conftest import running_server
from .sdk import compute_client

MIB = 1 << 20
CHUNK = 64 << 10
REGIONS = ("eastus", "westus", "westeurope", "northeurope", "brokenregion")


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(f"replication-{backend}")
    broken = data_dir / "broken-zone"
    broken.write_text("a file where a zone folder should be")
    (data_dir / "config.toml").write_text(
        f"regions = {list(REGIONS)!r}\nchunk_size = {CHUNK}\nworkers = 3\ngc_grace_seconds = 1\n"
        f"replication_bandwidth = {{northeurope = {4 * MIB}, westeurope = {4 * MIB}}}\n"
        "replication_concurrency = {westeurope = 1}\n"
        f'zones = {{brokenregion = ["{broken}"]}}\n'.replace("'", '"')
    )
    with running_server(backend, data_dir) as srv:
        yield srv


@pytest.fixture
def env(server):
    with make_env(server) as made:
        yield made


@contextlib.contextmanager
def make_env(server):
    """A subscription with group `rg`, a gallery and a Linux image definition `img`, on `server`."""
    sub = str(uuid.uuid4())
    with server.http() as http:
        assert (
            http.put(
                f"/subscriptions/{sub}/resourceGroups/rg?api-version=2024-11-01", json={"location": "eastus"}
            ).status_code
            == 201
        )
    with compute_client(server, sub) as compute:
        gallery = f"g{uuid.uuid4().hex[:8]}"
        compute.galleries.begin_create_or_update("rg", gallery, {"location": "eastus"}).result()
        compute.gallery_images.begin_create_or_update(
            "rg",
            gallery,
            "img",
            {
                "location": "eastus",
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
                },
            },
        ).result()
        yield Env(server, sub, compute, gallery)


class Env:
    def __init__(self, server, sub, compute, gallery):
        self.server, self.sub, self.compute, self.gallery = server, sub, compute, gallery

    def path(self, version: str) -> str:
        return (
            f"/subscriptions/{self.sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/{self.gallery}/"
            f"images/img/versions/{version}?api-version=2024-03-03"
        )

    def upload(self, name: str, data: bytes) -> str:
        c = self.compute
        c.disks.begin_create_or_update(
            "rg",
            name,
            {
                "location": "eastus",
                "properties": {
                    "osType": "Linux",
                    "creationData": {"createOption": "Upload", "uploadSizeBytes": len(data)},
                },
            },
        ).result()
        sas = c.disks.begin_grant_access("rg", name, {"access": "Write", "durationInSeconds": 600}).result()
        client = BlobClient.from_blob_url(sas.access_sas, connection_verify=self.server.ca)
        for offset in range(0, len(data), 4 * MIB):
            piece = data[offset : offset + 4 * MIB]
            client.upload_page(piece, offset=offset, length=len(piece))
        c.disks.begin_revoke_access("rg", name).result()
        return c.disks.get("rg", name).id

    def version(self, name: str, source: str, regions: list[dict], **profile):
        body = {
            "location": "eastus",
            "properties": {
                "publishingProfile": {"targetRegions": regions, **profile},
                "storageProfile": {"osDiskImage": {"source": {"id": source}}},
            },
        }
        return self.compute.gallery_image_versions.begin_create_or_update(
            "rg", self.gallery, "img", name, body
        ).result()

    def status(self, name: str) -> dict:
        with self.server.http() as http:
            body = http.get(self.path(name) + "&$expand=ReplicationStatus").json()
        return {r["region"]: r for r in body["properties"]["replicationStatus"]["summary"]}

    def wait(self, name: str, until, timeout: float = 60) -> dict:
        """Replication runs in workers: poll its status until `until(status)` holds (no event to await)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(name)
            if until(status):
                return status
            assert time.monotonic() < deadline, status
            time.sleep(0.05)

    def completed(self, name: str, regions) -> dict:
        return self.wait(name, lambda s: all(s.get(r, {}).get("state") == "Completed" for r in regions))

    def disk_from(self, disk: str, version: str, region: str) -> bytes:
        c = self.compute
        group = f"rg-{region}"
        c_http = self.server.http()
        c_http.put(
            f"/subscriptions/{self.sub}/resourceGroups/{group}?api-version=2024-11-01", json={"location": region}
        )
        c_http.close()
        vid = (
            c.gallery_image_versions.get("rg", self.gallery, "img", version).id
            if version != "latest"
            else c.gallery_images.get("rg", self.gallery, "img").id + "/versions/latest"
        )
        c.disks.begin_create_or_update(
            group,
            disk,
            {
                "location": region,
                "properties": {"creationData": {"createOption": "FromImage", "galleryImageReference": {"id": vid}}},
            },
        ).result()
        sas = c.disks.begin_grant_access(group, disk, {"access": "Read", "durationInSeconds": 600}).result()
        data = BlobClient.from_blob_url(sas.access_sas, connection_verify=self.server.ca).download_blob().readall()
        c.disks.begin_revoke_access(group, disk).result()
        return data

    def replicas(self, version: str) -> dict:
        db = Database(self.server.database_url or f"sqlite:///{self.server.data_dir / 'vmgallery.db'}")
        try:
            with db.read() as tx:
                key = self.path(version).split("?")[0].lower()
                return {(r.region, r.idx): r for r in tx.replicas_of(key)}
        finally:
            db.dispose()


def disk_image(mib: int, seed: int) -> bytes:
    raw = bytearray(__import__("random").Random(seed).randbytes(mib * MIB))
    return bytes(raw) + vhd_footer(mib * MIB)


def zone_chunks(server, region: str) -> dict[str, int]:
    out = {}
    for zone in sorted((server.data_dir / "blobs" / region).glob("zone*")):
        out[zone.name] = sum(1 for _ in zone.rglob("chunks/*/*/*"))
    return out


def test_three_regions_with_replica_counts_and_zone_spreading(env):
    data = disk_image(2, seed=1)
    source = env.upload("os", data)
    version = env.version(
        "1.0.0",
        source,
        [
            {"name": "eastus", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"},
            {"name": "westus", "regionalReplicaCount": 2, "storageAccountType": "Standard_LRS"},
            {"name": "westeurope", "regionalReplicaCount": 3, "storageAccountType": "Standard_ZRS"},
        ],
    )
    assert version.provisioning_state == "Succeeded"  # the source region (both its replicas) is complete
    env.completed("1.0.0", ("eastus", "westus", "westeurope"))
    chunks = len(data) // CHUNK
    we = zone_chunks(env.server, "westeurope")
    assert all(we[z] >= chunks for z in ("zone1", "zone2", "zone3")), we  # ZRS: one replica per zone
    wu = env.server.data_dir / "blobs" / "westus"
    assert sum(1 for _ in (wu / "zone1" / "replica1").rglob("chunks/*/*/*")) >= chunks  # LRS: same zone
    assert not (wu / "zone2").exists() or not any((wu / "zone2").rglob("chunks/*/*/*"))
    for region in ("westus", "westeurope"):
        assert env.disk_from(f"d-{region}", "1.0.0", region) == data


def test_a_one_percent_change_moves_about_one_percent(env):
    first = bytearray(disk_image(8, seed=2))
    env.version("1.0.0", env.upload("a", bytes(first)), [{"name": "eastus"}, {"name": "westus"}])
    env.completed("1.0.0", ("eastus", "westus"))
    total = len(first) - 512
    second = bytearray(first)
    blocks = total // CHUNK
    for block in __import__("random").Random(3).sample(range(blocks), max(1, blocks // 100)):  # 1 % of the blocks
        second[block * CHUNK + 8192 : block * CHUNK + 12288] = os.urandom(4096)
    env.version("1.0.1", env.upload("b", bytes(second)), [{"name": "eastus"}, {"name": "westus"}])
    env.completed("1.0.1", ("eastus", "westus"))
    moved_first = env.replicas("1.0.0")[("westus", 0)].bytes_copied
    moved_second = env.replicas("1.0.1")[("westus", 0)].bytes_copied
    assert moved_first >= total
    assert 0 < moved_second <= 0.02 * total, (moved_second, total)


def test_status_shows_progress_then_completion(env):
    data = disk_image(12, seed=4)
    env.version("1.0.0", env.upload("os", data), [{"name": "eastus"}, {"name": "northeurope"}])
    seen = env.wait("1.0.0", lambda s: 0 < s["northeurope"]["progress"] < 100)  # 4 MiB/s: about 3 s to copy
    assert seen["northeurope"]["state"] == "Replicating" and seen["eastus"]["state"] == "Completed"
    done = env.completed("1.0.0", ("northeurope",))
    assert done["northeurope"]["progress"] == 100


def test_adding_and_removing_regions(env):
    source = env.upload("os", disk_image(2, seed=5))
    env.version("1.0.0", source, [{"name": "eastus"}])
    c = env.compute
    with env.server.http() as http:
        plan = http.post(
            env.path("1.0.0").replace("?", "/replicationPlan?"),
            json={
                "properties": {
                    "publishingProfile": {
                        "targetRegions": [{"name": "eastus"}, {"name": "westus", "regionalReplicaCount": 2}]
                    }
                }
            },
        )
    assert plan.status_code == 200, plan.text
    assert plan.json()["added"] == [{"region": "westus", "replicas": 2}]
    assert plan.json()["bytesToMove"]["westus"] >= 2 * 2 * MIB  # two replicas that hold nothing of it yet
    assert set(env.status("1.0.0")) == {"eastus"}  # the plan changed nothing
    c.gallery_image_versions.begin_update(
        "rg",
        env.gallery,
        "img",
        "1.0.0",
        {
            "properties": {
                "publishingProfile": {
                    "targetRegions": [{"name": "eastus"}, {"name": "westus", "regionalReplicaCount": 2}]
                }
            }
        },
    ).result()
    env.completed("1.0.0", ("westus",))
    with pytest.raises(ResourceExistsError) as exc:
        c.gallery_image_versions.begin_update(
            "rg",
            env.gallery,
            "img",
            "1.0.0",
            {"properties": {"publishingProfile": {"targetRegions": [{"name": "eastus"}]}}},
        ).result()
    assert "westus" in exc.value.message and "allowDeletionOfReplicatedLocations" in exc.value.message
    assert set(env.status("1.0.0")) == {"eastus", "westus"}
    c.gallery_image_versions.begin_update(
        "rg",
        env.gallery,
        "img",
        "1.0.0",
        {
            "properties": {
                "publishingProfile": {"targetRegions": [{"name": "eastus"}]},
                "safetyProfile": {"allowDeletionOfReplicatedLocations": True},
            }
        },
    ).result()
    assert set(env.status("1.0.0")) == {"eastus"}
    with pytest.raises(HttpResponseError) as exc:
        env.disk_from("d", "1.0.0", "westus")
    assert exc.value.status_code == 409 and "westus" in exc.value.message


def test_shallow_versions_are_ready_at_once_and_serve_few_disks(env):
    source = env.upload("os", disk_image(2, seed=6))
    v = env.version("1.0.0", source, [{"name": "eastus"}], replicationMode="Shallow")
    assert v.provisioning_state == "Succeeded" and env.status("1.0.0")["eastus"]["state"] == "Completed"
    with pytest.raises(HttpResponseError):
        env.version("1.0.1", source, [{"name": "eastus"}, {"name": "westus"}], replicationMode="Shallow")
    for i in range(5):
        env.disk_from(f"d{i}", "1.0.0", "eastus")
    with pytest.raises(HttpResponseError) as exc:
        env.disk_from("d5", "1.0.0", "eastus")
    assert exc.value.status_code == 409 and "shallow" in exc.value.message.lower()


def test_latest_per_region_and_a_failing_region_retried_on_its_own(env):
    old, new = disk_image(2, seed=7), disk_image(2, seed=8)
    env.version("1.0.0", env.upload("a", old), [{"name": "eastus"}, {"name": "westus"}])
    env.completed("1.0.0", ("westus",))
    env.version("2.0.0", env.upload("b", new), [{"name": "eastus"}, {"name": "westus"}, {"name": "brokenregion"}])
    failed = env.wait("2.0.0", lambda s: s["brokenregion"]["state"] == "Failed" and s["westus"]["state"] == "Completed")
    assert (
        "NotADirectory" in failed["brokenregion"]["details"] or "Not a directory" in failed["brokenregion"]["details"]
    )
    assert env.disk_from("new-east", "latest", "eastus") == new
    assert env.disk_from("new-west", "latest", "westus") == new
    with pytest.raises(HttpResponseError):  # no version is usable in the broken region yet
        env.disk_from("none", "latest", "brokenregion")
    broken = env.server.data_dir / "broken-zone"
    broken.unlink()
    broken.mkdir()  # the operator fixes the zone; the retry (with backoff) succeeds without help
    env.completed("2.0.0", ("brokenregion",))
    assert env.disk_from("healed", "latest", "brokenregion") == new


def test_corrupt_and_missing_chunks_are_healed_from_another_replica(env):
    data = disk_image(2, seed=9)
    env.version(
        "1.0.0",
        env.upload("os", data),
        [{"name": "eastus"}, {"name": "westeurope", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"}],
    )
    env.completed("1.0.0", ("westeurope",))
    zone = env.server.data_dir / "blobs" / "westeurope" / "zone1"
    names = {blake3.blake3(data[i : i + CHUNK]).hexdigest() for i in range(0, len(data), CHUNK)}
    files = sorted(p for p in zone.rglob("chunks/*/*/*") if p.name in names)
    files[0].write_bytes(files[1].read_bytes())  # a valid frame with the wrong content
    files[2].unlink()
    assert env.disk_from("d", "1.0.0", "westeurope") == data
    assert files[2].exists() and files[0].read_bytes() != files[1].read_bytes()  # both repaired in place
    with httpx.Client(verify=False) as client:
        metrics = client.get(f"{env.server.url}/metrics").text
    assert "vmgallery_chunks_healed_total" in metrics
    healed = [line for line in metrics.splitlines() if line.startswith("vmgallery_chunks_healed_total")]
    assert float(healed[0].split()[-1]) >= 2


def admin(server, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vmgallery", "admin", *args, "--data-dir", str(server.data_dir)]
    if server.database_url:
        cmd += ["--database-url", server.database_url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_admin_verify_finds_and_repairs_and_gc_frees_a_removed_region(env):
    data = disk_image(2, seed=12)
    names = {blake3.blake3(data[i : i + CHUNK]).hexdigest() for i in range(0, len(data), CHUNK)}
    env.version("1.0.0", env.upload("os", data), [{"name": "eastus"}, {"name": "westus"}])
    env.completed("1.0.0", ("westus",))
    west = env.server.data_dir / "blobs" / "westus"
    mine = sorted(p for p in west.rglob("chunks/*/*/*") if p.name in names)
    mine[0].write_bytes(b"not a zstd frame")
    found = admin(env.server, "verify")
    assert found.returncode == 1 and json.loads(found.stdout)["corrupt"] >= 1, found.stdout + found.stderr
    fixed = admin(env.server, "verify", "--repair")
    assert fixed.returncode == 0 and json.loads(fixed.stdout)["repaired"] >= 1, fixed.stdout + fixed.stderr
    assert blake3.blake3(zstandard.ZstdDecompressor().decompress(mine[0].read_bytes())).hexdigest() == mine[0].name

    env.compute.gallery_image_versions.begin_update(
        "rg",
        env.gallery,
        "img",
        "1.0.0",
        {
            "properties": {
                "publishingProfile": {"targetRegions": [{"name": "eastus"}]},
                "safetyProfile": {"allowDeletionOfReplicatedLocations": True},
            }
        },
    ).result()
    deadline = time.monotonic() + 30
    while any(p.exists() for p in mine):  # chunks younger than the 1 s grace period stay: run gc until they go
        assert time.monotonic() < deadline, "gc never freed the removed region's copy"
        assert admin(env.server, "gc").returncode == 0
    assert env.disk_from("still", "1.0.0", "eastus") == data  # the source region keeps its copy


def test_region_concurrency_is_bounded(env):
    env.version(
        "1.0.0",
        env.upload("os", disk_image(4, seed=13)),
        [{"name": "eastus"}, {"name": "westeurope", "regionalReplicaCount": 3, "storageAccountType": "Standard_ZRS"}],
    )
    most = 0
    deadline = time.monotonic() + 60
    while True:
        rows = [r for (region, _), r in env.replicas("1.0.0").items() if region == "westeurope"]
        most = max(most, sum(1 for r in rows if r.state == "Replicating"))
        if all(r.state == "Completed" for r in rows):
            break
        assert time.monotonic() < deadline, rows
    assert most == 1  # westeurope copies one replica at a time (replication_concurrency = {westeurope = 1})
