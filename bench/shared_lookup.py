"""Consumer lookup benchmark: what finding shared and community galleries costs at 100, 1,000 and 10,000 galleries.

The consumer views find galleries by scanning gallery rows (app/sharing.py): `sharedGalleries` lists and
`communityGalleries/{publicName}` reads look at every gallery, `sharedGalleries/{uniqueName}` only at the owner
subscription's (the unique name starts with it). In one process, on SQLite and PostgreSQL, it fills a database with N
galleries in 50 subscriptions, one of them shared with the consumer subscription and one an enabled community
gallery, and times each lookup in a read transaction through the real store: median wall ms and the ratio to 100
galleries. It says whether the scan needs an index (a sharing table; migration 0009 is reserved for it).

    .venv/bin/python bench/shared_lookup.py --db both
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from vmgallery.adapters.db.store import Database, sqlite_url
from vmgallery.app import sharing

PG_ADMIN = os.environ.get("VMGALLERY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SIZES = (100, 1_000, 10_000)
OWNERS = [str(uuid.UUID(int=i + 1)) for i in range(50)]
CONSUMER = str(uuid.UUID(int=999))


def _fill(db: Database, size: int) -> tuple[str, str]:
    """`size` galleries; the last is shared with the consumer, the one before it is a community gallery."""
    unique = public = ""
    with db.write() as tx:
        for i in range(size):
            sub = OWNERS[i % len(OWNERS)]
            name = f"g{i}"
            rid = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/{name}"
            profile: dict = {"permissions": "Private"}
            if i == size - 1:
                profile = {"permissions": "Groups", "groups": [{"type": "Subscriptions", "ids": [CONSUMER]}]}
                unique = f"{sub}-{name.upper()}"
            elif i == size - 2:
                public = f"pfx-{uuid.uuid4()}"
                profile = {
                    "permissions": "Community",
                    "communityGalleryInfo": {"communityGalleryEnabled": True, "publicNames": [public]},
                }
            body = {
                "id": rid,
                "name": name,
                "type": "Microsoft.Compute/galleries",
                "location": "eastus",
                "properties": {
                    "identifier": {"uniqueName": f"{sub}-{name.upper()}"},
                    "provisioningState": "Succeeded",
                    "sharingProfile": profile,
                },
            }
            tx.insert(
                key=rid.lower(),
                type=sharing.GALLERY_TYPE,
                parent_key=f"/subscriptions/{sub}/resourcegroups/rg",
                subscription=sub,
                group_key=f"/subscriptions/{sub}/resourcegroups/rg",
                location="eastus",
                natural_key=None,
                state="Succeeded",
                body=body,
                now=0.0,
            )
    return unique, public


def _wall(db: Database, lookup: Callable[[object], object]) -> float:
    t0 = time.perf_counter()
    with db.read() as tx:
        lookup(tx)
    return time.perf_counter() - t0


def run(make: Callable[[], Database], label: str, rounds: int) -> None:
    consumer = sharing.Consumer(sharing.ADMIN, CONSUMER, sharing.PROVISIONAL_DEFAULT_TENANT)
    results: dict[str, dict[int, float]] = {"list shared": {}, "get shared": {}, "get community": {}}
    for size in SIZES:
        db = make()
        try:
            db.migrate()
            unique, public = _fill(db, size)
            lookups: dict[str, Callable[[object], object]] = {
                "list shared": lambda tx: sharing.shared_galleries(tx, consumer, None),  # type: ignore[arg-type]
                "get shared": lambda tx: sharing.shared_gallery(tx, consumer, unique),  # type: ignore[arg-type]
                "get community": lambda tx: sharing.community_gallery(tx, public),  # type: ignore[arg-type]
            }
            with db.read() as tx:
                assert len(sharing.shared_galleries(tx, consumer, None)) == 1  # type: ignore[arg-type]
            for name, lookup in lookups.items():
                results[name][size] = statistics.median(_wall(db, lookup) for _ in range(rounds))
        finally:
            db.dispose()
    print(f"\n{label}: median wall ms per lookup (x100 = ratio to 100 galleries)")
    print(f"  {'lookup':<14}" + "".join(f"{size:>10,} {'x100':>6}" for size in SIZES))
    for name, by_size in results.items():
        base = by_size[SIZES[0]]
        print(f"  {name:<14}" + "".join(f"{by_size[s] * 1e3:>10.2f} {by_size[s] / base:>6.1f}" for s in SIZES))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            n = iter(range(100))
            run(lambda: Database(sqlite_url(Path(tmp) / f"bench{next(n)}.db")), "SQLite", args.rounds)
    if args.db in ("postgresql", "both"):
        names: list[str] = []

        def make() -> Database:
            name = f"vmg_bench_shared_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            names.append(name)
            return Database(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)

        try:
            run(make, "PostgreSQL", args.rounds)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                for name in names:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
