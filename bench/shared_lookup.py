"""Consumer lookup benchmark: what finding shared and community galleries costs at 100, 1,000 and 10,000 galleries.

In one process, on SQLite and PostgreSQL, it fills a database with N galleries in 50 subscriptions, one of them
shared with the consumer subscription and one an enabled community gallery, and times each lookup of app/sharing.py
(list-shared, show-shared by unique name, a community gallery by public name) in a read transaction through the real
store: one indexed query on `gallery_shares`. For the before figure it times the lookup that index replaced (read
every gallery row, apply domain.sharing's rule), checking both find the same gallery. It prints the median wall ms
and the ratio to 100 galleries (goal: at most 2 at 10,000 galleries).

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
from vmgallery.domain import sharing as rules

PG_ADMIN = os.environ.get("VMGALLERY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SIZES = (100, 1_000, 10_000)
OWNERS = [str(uuid.UUID(int=i + 1)) for i in range(50)]
CONSUMER = str(uuid.UUID(int=999))
GOAL = 2.0


def _scan(tx, keep: Callable[[dict], bool]) -> list[str]:
    """The lookup the index replaced: every gallery row read, the rule applied to each."""
    found, after = [], 0
    while True:
        page = tx.page(type=sharing.GALLERY_TYPE, after=after, limit=500)
        found += [r.key for r in page if keep(r.body)]
        if len(page) < 500:
            return found
        after = page[-1].seq


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


def run(make: Callable[[], Database], label: str, rounds: int) -> bool:
    consumer = sharing.Consumer(sharing.ADMIN, CONSUMER, sharing.PROVISIONAL_DEFAULT_TENANT)
    names = ("list shared", "get shared", "get community")
    after: dict[str, dict[int, float]] = {n: {} for n in names}
    before: dict[str, dict[int, float]] = {n: {} for n in names}
    for size in SIZES:
        db = make()
        try:
            db.migrate()
            unique, public = _fill(db, size)

            def shared_to_consumer(body: dict) -> bool:
                return rules.may_use_shared(consumer.principal, CONSUMER, consumer.tenant, rules.group_ids(body))

            lookups: dict[str, tuple[Callable[[object], object], Callable[[object], object]]] = {
                "list shared": (
                    lambda tx: [r.key for r in sharing.shared_galleries(tx, consumer, None)],  # type: ignore[arg-type]
                    lambda tx: _scan(tx, shared_to_consumer),
                ),
                "get shared": (
                    lambda tx: [sharing.shared_gallery(tx, consumer, unique).key],  # type: ignore[arg-type]
                    lambda tx: _scan(
                        tx, lambda b: b["properties"]["identifier"]["uniqueName"] == unique and shared_to_consumer(b)
                    ),
                ),
                "get community": (
                    lambda tx: [sharing.community_gallery(tx, public).key],  # type: ignore[arg-type]
                    lambda tx: _scan(tx, lambda b: public in rules.public_names(b)),
                ),
            }
            for name, (new, old) in lookups.items():
                with db.read() as tx:
                    assert new(tx) == old(tx) and len(new(tx)) == 1, name  # type: ignore[arg-type]
                after[name][size] = statistics.median(_wall(db, new) for _ in range(rounds))
                before[name][size] = statistics.median(_wall(db, old) for _ in range(max(3, rounds // 5)))
        finally:
            db.dispose()
    print(f"\n{label}: median wall ms per lookup; x100 = ratio to 100 galleries (goal at 10,000: <= {GOAL})")
    print(f"  {'lookup':<14}" + "".join(f"{size:>10,} {'x100':>6}" for size in SIZES) + f"   before at {SIZES[-1]:,}")
    ok = True
    for name in names:
        base = after[name][SIZES[0]]
        ok &= after[name][SIZES[-1]] / base <= GOAL
        print(
            f"  {name:<14}"
            + "".join(f"{after[name][s] * 1e3:>10.2f} {after[name][s] / base:>6.1f}" for s in SIZES)
            + f"   {before[name][SIZES[-1]] * 1e3:>10.1f}"
        )
    print(f"  {'meets' if ok else 'misses'} the goal")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    ok = True
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            n = iter(range(100))
            ok &= run(lambda: Database(sqlite_url(Path(tmp) / f"bench{next(n)}.db")), "SQLite", args.rounds)
    if args.db in ("postgresql", "both"):
        names: list[str] = []

        def make() -> Database:
            name = f"vmg_bench_shared_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            names.append(name)
            return Database(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)

        try:
            ok &= run(make, "PostgreSQL", args.rounds)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                for name in names:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
