"""Image build data path: materializing a build's source disk as a local raw file, and ingesting the built file back.

A 1 GiB disk whose manifest holds 16 MiB of data (1 MiB chunks, the rest holes), in a folder chunk store:
1. materialize dense (the baseline): every byte written in order through `iter_range`, holes as zeros;
2. materialize sparse (what `app/builds.py` does): data chunks written at their offsets, holes left as file holes;
3. ingest: the raw file back into the store as a VHD manifest (`raw_pieces` + `write_image`; zero chunks stored as
   nothing). Prints the median of each over the rounds and the dense/sparse ratio.

    .venv/bin/python bench/image_build.py            # 3 rounds, about 30 s on 2 cores
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from vmgallery.adapters.blobs.regions import RegionStores
from vmgallery.app.content import iter_range, write_image
from vmgallery.app.platform_images import raw_pieces
from vmgallery.domain.disks import FOOTER
from vmgallery.domain.manifests import Manifest

MiB = 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--data-mib", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stores = RegionStores(root / "blobs", ("eastus",), MiB, 3600.0, zones={}, zones_per_region=1, premium={})
        store = stores.store("eastus")
        raw_size = args.size_mib * MiB
        digests = [
            store.put(os.urandom(MiB)) if i % (args.size_mib // args.data_mib) == 0 else None
            for i in range(args.size_mib)
        ]
        # The VHD image is raw + footer: with whole-MiB raw sizes the footer is a last, short chunk.
        manifest = Manifest(raw_size + FOOTER, MiB, (*digests, store.put(b"\x01" * FOOTER)))
        times: dict[str, list[float]] = {"dense": [], "sparse": [], "ingest": []}
        for _ in range(args.rounds):
            out = root / "dense.raw"
            start = time.perf_counter()
            with out.open("wb") as f:
                for piece in iter_range(store, manifest, 0, raw_size):
                    f.write(piece)
                os.fsync(f.fileno())
            times["dense"].append(time.perf_counter() - start)
            out.unlink()
            out = root / "sparse.raw"
            start = time.perf_counter()
            with out.open("wb") as f:
                for i, digest in enumerate(manifest.digests):
                    offset, _ = manifest.span(i)
                    if offset >= raw_size:
                        break
                    if digest is not None:
                        f.seek(offset)
                        f.write(store.get(digest)[: raw_size - offset])
                f.truncate(raw_size)
                os.fsync(f.fileno())
            times["sparse"].append(time.perf_counter() - start)
            start = time.perf_counter()
            with out.open("rb") as f:
                back = write_image(store, raw_pieces(f, raw_size, MiB), raw_size + FOOTER)
            times["ingest"].append(time.perf_counter() - start)
            assert back.digests[:-1] == manifest.digests[:-1]
            out.unlink()
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{args.size_mib} MiB disk, {args.data_mib} MiB of data, median of {args.rounds} rounds:")
        for name, seconds in med.items():
            print(f"  {name:7s} {seconds:7.3f} s")
        print(f"  dense/sparse materialize ratio: {med['dense'] / med['sparse']:.1f}")


if __name__ == "__main__":
    main()
