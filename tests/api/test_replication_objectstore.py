"""One region on an object store: `westus` keeps its zones in Azure Blob Storage (Azurite), set by config.toml's
`zones`; a version replicated there serves a disk made from it in that region, byte for byte."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.azurite import azurite  # noqa: F401  (the session fixture)

from ..conftest import PgDatabase, Server
from .test_replication import CHUNK, Env, disk_image, env  # noqa: F401  (env: the fixture, on this module's server)

REGIONS = ("eastus", "westus")


@pytest.fixture(scope="module")
def containers(backend):
    return [f"westus-zone{z}-{backend[:2]}{uuid.uuid4().hex[:8]}" for z in (1, 2)]


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory, azurite, containers):  # noqa: F811  (azurite: the imported fixture)
    data_dir = tmp_path_factory.mktemp(f"replication-objectstore-{backend}")
    zones = ", ".join(
        f"{{kind = {json.dumps('azure')}, container = {json.dumps(c)}, account_url = {json.dumps(azurite.endpoint)}, "
        f"account_key = {json.dumps(azurite.account_key)}}}" for c in containers)
    (data_dir / "config.toml").write_text(
        f"regions = {json.dumps(list(REGIONS))}\nchunk_size = {CHUNK}\nworkers = 2\n"
        f"zones = {{westus = [{zones}]}}\n")
    pg = PgDatabase() if backend == "postgresql" else None
    srv = Server(data_dir, pg.url if pg else None).start()
    yield srv
    srv.stop()
    if pg:
        pg.drop()


def test_a_version_replicated_to_a_region_on_azure_storage_reads_back_byte_identical(
        env: Env, azurite, containers):  # noqa: F811
    data = disk_image(2, seed=11)
    source = env.upload("os", data)
    env.version("1.0.0", source, [
        {"name": "eastus"},
        {"name": "westus", "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"}])
    env.completed("1.0.0", REGIONS)
    service = azurite.service()
    stored = {c: sum(1 for _ in service.get_container_client(c).list_blobs(name_starts_with="chunks/"))
              for c in containers}
    assert all(n >= len(data) // CHUNK for n in stored.values()), stored  # ZRS: one replica in each zone
    assert not (env.server.data_dir / "blobs" / "westus").exists()  # nothing of westus on the local disk
    assert env.disk_from("d-westus", "1.0.0", "westus") == data
