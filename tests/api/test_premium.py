"""Premium_LRS on a faster zone: eastus and westus each have a premium zone (`premium_zones`, plain folders here,
standing in for a faster disk). Premium replicas are placed there, replica 0 also fills the region's primary store
(where the region's own disks and captures read), Standard replicas never touch the premium zone, and GC frees a
dropped premium replica's copies."""

from __future__ import annotations

import json
import time

import blake3
import pytest

from ..conftest import running_server
from .test_replication import CHUNK, Env, admin, disk_image, env  # noqa: F401  (env: the fixture, on this server)

REGIONS = ("eastus", "westus")


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(f"premium-{backend}")
    premium = {r: str(data_dir / "fast" / r) for r in REGIONS}
    (data_dir / "config.toml").write_text(
        f"regions = {json.dumps(list(REGIONS))}\nchunk_size = {CHUNK}\nworkers = 2\ngc_grace_seconds = 1\n"
        f"premium_zones = {{{', '.join(f'{r} = {json.dumps(p)}' for r, p in premium.items())}}}\n"
    )
    with running_server(backend, data_dir) as srv:
        yield srv


def held(root, names: set[str]) -> dict[str, set[str]]:
    """The version's chunks in each top-level store under `root`: the zone root, or replica<N>."""
    out: dict[str, set[str]] = {}
    for path in root.rglob("chunks/*/*/*"):
        if path.name in names:
            slot = path.relative_to(root).parts[0]
            out.setdefault("root" if slot == "chunks" else slot, set()).add(path.name)
    return out


def test_premium_replicas_live_on_the_premium_zone_and_replica_0_fills_the_primary_too(env: Env):
    data = disk_image(2, seed=31)
    names = {blake3.blake3(data[i : i + CHUNK]).hexdigest() for i in range(0, len(data), CHUNK)}
    fast, blobs = env.server.data_dir / "fast", env.server.data_dir / "blobs"
    version = env.version(
        "1.0.0",
        env.upload("os", data),
        [
            {"name": "eastus", "storageAccountType": "Premium_LRS"},
            {"name": "westus", "regionalReplicaCount": 2, "storageAccountType": "Premium_LRS"},
        ],
    )
    # The source region's only replica is premium: the version is Succeeded once the capture is copied there.
    assert version.provisioning_state == "Succeeded"
    assert held(fast / "eastus", names) == {"root": names}
    env.completed("1.0.0", REGIONS)
    assert held(fast / "westus", names) == {"root": names, "replica1": names}
    assert held(blobs / "westus" / "zone1", names) == {"root": names}  # replica 0 filled the primary store too
    assert env.disk_from("d-premium", "1.0.0", "westus") == data

    plain = disk_image(2, seed=32)
    plain_names = {blake3.blake3(plain[i : i + CHUNK]).hexdigest() for i in range(0, len(plain), CHUNK)}
    env.version("2.0.0", env.upload("os2", plain), [{"name": "eastus"}, {"name": "westus"}])
    env.completed("2.0.0", REGIONS)
    assert not held(fast, plain_names) and held(blobs / "westus", plain_names)  # Standard stays off the premium zone

    env.compute.gallery_image_versions.begin_update(
        "rg",
        env.gallery,
        "img",
        "1.0.0",
        {
            "properties": {
                "publishingProfile": {
                    "targetRegions": [
                        {"name": "eastus", "storageAccountType": "Premium_LRS"},
                        {"name": "westus", "regionalReplicaCount": 1, "storageAccountType": "Premium_LRS"},
                    ]
                }
            }
        },
    ).result()
    deadline = time.monotonic() + 30
    while "replica1" in held(fast / "westus", names):  # younger than the 1 s grace period: run gc until it goes
        assert time.monotonic() < deadline, "gc never freed the dropped premium replica"
        assert admin(env.server, "gc").returncode == 0
    assert held(fast / "westus", names) == {"root": names}
    assert held(blobs / "westus" / "zone1", names) == {"root": names}
    verified = admin(env.server, "verify")
    assert verified.returncode == 0 and json.loads(verified.stdout)["missing"] == 0, verified.stdout
