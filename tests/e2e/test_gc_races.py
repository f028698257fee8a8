"""Garbage collection racing replication: the server's collector runs every 50 ms with a 1 s grace period while a
region's replica is removed (its chunks become garbage) and added back again and again, at random moments. The
replica job finds chunks the collector is taking at that very moment; none it relies on may be lost."""

from __future__ import annotations

import json
import random
import time

import blake3
import zstandard

from ..api.test_replication import CHUNK, disk_image, make_env

ROUNDS = 8


def test_gc_racing_replication_never_loses_a_chunk_a_replica_relies_on(make_server):
    srv = make_server(
        f'regions = ["eastus", "westus"]\nchunk_size = {CHUNK}\nworkers = 2\n'
        "gc_grace_seconds = 1\ngc_interval_seconds = 0.05\n"
    )
    data = disk_image(4, seed=21)
    names = {blake3.blake3(data[i : i + CHUNK]).hexdigest() for i in range(0, len(data), CHUNK)}
    west = srv.data_dir / "blobs" / "westus"
    rng = random.Random(21)
    with make_env(srv) as env:
        compute, gallery = env.compute, env.gallery
        env.version("1.0.0", env.upload("os", data), [{"name": "eastus"}, {"name": "westus"}])
        env.completed("1.0.0", ("eastus", "westus"))
        update = compute.gallery_image_versions.begin_update
        left_at_readd = []
        for _ in range(ROUNDS):
            update(
                "rg",
                gallery,
                "img",
                "1.0.0",
                {
                    "properties": {
                        "publishingProfile": {"targetRegions": [{"name": "eastus"}]},
                        "safetyProfile": {"allowDeletionOfReplicatedLocations": True},
                    }
                },
            ).result()
            # A random moment in the collector's work on westus's now-unneeded copy (this sleep is the race's
            # timing, not a wait for an event).
            env.wait("1.0.0", lambda s: "westus" not in s, timeout=10)
            time.sleep(rng.uniform(0, 1.2))
            left_at_readd.append(sum(1 for p in west.rglob("chunks/*/*/*") if p.name in names))
            update(
                "rg",
                gallery,
                "img",
                "1.0.0",
                {"properties": {"publishingProfile": {"targetRegions": [{"name": "eastus"}, {"name": "westus"}]}}},
            ).result()
            env.completed("1.0.0", ("eastus", "westus"))
            held = {p.name: p for p in west.rglob("chunks/*/*/*") if p.name in names}
            assert set(held) == names, f"westus is Completed but lacks {len(names - set(held))} chunks"
            for name, path in held.items():
                assert blake3.blake3(zstandard.ZstdDecompressor().decompress(path.read_bytes())).hexdigest() == name
        assert env.disk_from("d", "1.0.0", "westus") == data
    # Both sides of the race happened: in some rounds the collector had freed copies before they were wanted again,
    # in others the replica found (and had to keep) copies the collector was due to take.
    assert any(n < len(names) for n in left_at_readd) and any(n > 0 for n in left_at_readd), left_at_readd
    freed = [json.loads(line).get("chunks_deleted", 0) for line in srv.log_lines if '"gc done"' in line]
    assert sum(freed) > 0
