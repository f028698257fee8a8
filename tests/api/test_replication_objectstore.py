"""One region on an object store: `westus` keeps its zones in Azure Blob Storage (Azurite), set by config.toml's
`zones`; a version replicated there serves a disk made from it in that region, byte for byte."""

from __future__ import annotations

import json
import time
import uuid

import blake3
import pytest

from tests.azurite import azurite  # noqa: F401  (the session fixture)

from ..conftest import running_server
from .test_replication import CHUNK, Env, admin, disk_image, env  # noqa: F401  (env: the fixture, on this module's server)

REGIONS = ("eastus", "westus")


@pytest.fixture(scope="module")
def containers(backend):
    return [f"westus-zone{z}-{backend[:2]}{uuid.uuid4().hex[:8]}" for z in (1, 2)]


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory, azurite, containers):  # noqa: F811  (azurite: the imported fixture)
    data_dir = tmp_path_factory.mktemp(f"replication-objectstore-{backend}")
    zones = ", ".join(
        f"{{kind = {json.dumps('azure')}, container = {json.dumps(c)}, account_url = {json.dumps(azurite.endpoint)}, "
        f"account_key = {json.dumps(azurite.account_key)}}}"
        for c in containers
    )
    (data_dir / "config.toml").write_text(
        f"regions = {json.dumps(list(REGIONS))}\nchunk_size = {CHUNK}\nworkers = 2\ngc_grace_seconds = 1\n"
        f"zones = {{westus = [{zones}]}}\n"
    )
    with running_server(backend, data_dir) as srv:
        yield srv


def test_a_version_replicated_to_a_region_on_azure_storage_reads_back_byte_identical(env: Env, azurite, containers):  # noqa: F811
    data = disk_image(2, seed=11)
    source = env.upload("os", data)
    env.version(
        "1.0.0",
        source,
        [{"name": "eastus"}, {"name": "westus", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"}],
    )
    env.completed("1.0.0", REGIONS)
    service = azurite.service()
    stored = {
        c: sum(1 for _ in service.get_container_client(c).list_blobs(name_starts_with="chunks/")) for c in containers
    }
    assert all(n >= len(data) // CHUNK for n in stored.values()), stored  # ZRS: one replica in each zone
    assert not (env.server.data_dir / "blobs" / "westus").exists()  # nothing of westus on the local disk
    assert env.disk_from("d-westus", "1.0.0", "westus") == data


def test_gc_on_azure_storage_frees_a_dropped_replica_then_a_removed_region(env: Env, azurite, containers):  # noqa: F811
    data = disk_image(2, seed=12)
    names = {blake3.blake3(data[i : i + CHUNK]).hexdigest() for i in range(0, len(data), CHUNK)}
    env.version(
        "1.0.0",
        env.upload("os", data),
        [{"name": "eastus"}, {"name": "westus", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"}],
    )
    env.completed("1.0.0", REGIONS)
    service = azurite.service()

    def held() -> list[set[str]]:
        return [
            {b.name.rsplit("/", 1)[-1] for b in service.get_container_client(c).list_blobs()} & names
            for c in containers
        ]

    def collect_until(done) -> None:  # chunks younger than the 1 s grace period stay: run gc until they go
        deadline = time.monotonic() + 30
        while not done(held()):
            assert time.monotonic() < deadline, held()
            assert admin(env.server, "gc").returncode == 0

    assert held() == [names, names]  # ZRS: one replica in each zone
    update = env.compute.gallery_image_versions.begin_update
    update(
        "rg",
        env.gallery,
        "img",
        "1.0.0",
        {
            "properties": {
                "publishingProfile": {
                    "targetRegions": [
                        {"name": "eastus"},
                        {"name": "westus", "regionalReplicaCount": 1, "storageAccountType": "Standard_ZRS"},
                    ]
                }
            }
        },
    ).result()
    collect_until(lambda h: not h[1])  # replica 1 (zone 2) is gone ...
    assert held()[0] == names  # ... and replica 0 keeps every chunk
    assert env.disk_from("d-after-gc", "1.0.0", "westus") == data

    update(
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
    env.compute.disks.begin_delete("rg-westus", "d-after-gc").result()  # a disk in westus keeps its chunks there
    collect_until(lambda h: not h[0] and not h[1])
    assert env.disk_from("d-east", "1.0.0", "eastus") == data
