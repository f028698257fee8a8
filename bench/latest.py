"""`latest` benchmark: the cost of resolving `.../versions/latest` at 100, 1,000 and 10,000 versions in one definition.

In one run and one process, on SQLite and PostgreSQL, it fills three definitions (100, 1,000 and 10,000 versions,
each Succeeded with a Completed replica in eastus; the five highest of each are still replicating there, so the
answer is not simply the top row), then times `app.sources.version` (what a disk or version made from `latest`
calls) in a read transaction through the real store, and, for the before figure, the resolution it replaced (every
version's body and one replica query per version, then the domain rule). It prints the median CPU and wall time per
resolution and the ratio to the cost at 100 versions (goal: at most 1.2 at 10,000). See bench/README.md.

    .venv/bin/python bench/latest.py --db both
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
from vmgallery.app import sources
from vmgallery.app.replication import usable_regions
from vmgallery.domain import versions as version_rules
from vmgallery.domain.ids import parse_resource_id

PG_ADMIN = os.environ.get("VMGALLERY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
VERSION_TYPE = "microsoft.compute/galleries/images/versions"
SIZES = (100, 1_000, 10_000)
GOAL = 1.2
REGION = "eastus"
NOT_YET_USABLE = 5


def _definition(size: int) -> str:
    return f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/n{size}"


def _fill(db: Database, size: int) -> None:
    definition = _definition(size)
    with db.write() as tx:
        for i in range(size):
            name = f"{i // 10_000}.{i // 100 % 100}.{i % 100}"
            key = f"{definition}/versions/{name}".lower()
            body = {
                "id": f"{definition}/versions/{name}",
                "name": name,
                "type": "Microsoft.Compute/galleries/images/versions",
                "location": REGION,
                "properties": {
                    "provisioningState": "Succeeded",
                    "publishingProfile": {"targetRegions": [{"name": REGION, "regionalReplicaCount": 1}]},
                    "storageProfile": {"osDiskImage": {"sizeInGB": 1}},
                },
            }
            tx.insert(
                key=key,
                type=VERSION_TYPE,
                parent_key=definition.lower(),
                subscription="s",
                group_key="/subscriptions/s/resourcegroups/rg",
                location=REGION,
                natural_key=None,
                state="Succeeded",
                body=body,
                now=0.0,
            )
            state = "Replicating" if i >= size - NOT_YET_USABLE else "Completed"
            tx.add_replica(key, REGION, 0, "Standard_LRS", 0.0, state=state)


def _before(tx, definition_key: str) -> str | None:
    """The resolution this replaced: every version's body, one replica query each, then the domain rule."""
    rows = {r.body["name"]: r for r in tx.page(type=VERSION_TYPE, after=0, limit=10**6, parent_key=definition_key)}
    facts = [version_rules.version_facts(n, r.body, usable_regions(tx, r.key)) for n, r in rows.items()]
    return version_rules.latest_version(facts, REGION)


def _once(db: Database, resolve: Callable[[object], str | None]) -> tuple[float, float, str | None]:
    """(CPU seconds, wall seconds) of one resolution in its own read transaction, and what it resolved to."""
    c0, w0 = time.process_time(), time.perf_counter()
    with db.read() as tx:
        answer = resolve(tx)
    return time.process_time() - c0, time.perf_counter() - w0, answer


def _after(size: int) -> Callable[[object], str | None]:
    latest = parse_resource_id(f"{_definition(size)}/versions/latest")
    assert latest is not None
    return lambda tx: sources.version(tx, latest, REGION, "id").body["name"]  # type: ignore[arg-type]


def _median(samples: list[tuple[float, float, str | None]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def run(db: Database, label: str, rounds: int) -> bool:
    db.migrate()
    for size in SIZES:
        _fill(db, size)
    # Sizes take turns within each round, so a noisy neighbour on the machine slows them alike.
    after: dict[int, list[tuple[float, float, str | None]]] = {size: [] for size in SIZES}
    for _ in range(rounds):
        for size in SIZES:
            after[size].append(_once(db, _after(size)))
    print(f"\n{label}: median per resolution; x100 = ratio to 100 versions (goal for wall at 10,000: <= {GOAL})")
    print(
        f"  {'versions':>8}  {'cpu ms':>8} {'x100':>6} {'wall ms':>8} {'x100':>6}"
        f"   {'before: cpu ms':>14} {'wall ms':>8}"
    )
    base_cpu, base_wall = _median(after[SIZES[0]])
    for size in SIZES:
        cpu, wall = _median(after[size])
        definition = _definition(size).lower()
        before = [_once(db, lambda tx: _before(tx, definition)) for _ in range(max(3, 3000 // size))]
        assert {s[2] for s in after[size]} == {before[0][2]}, size
        old_cpu, old_wall = _median(before)
        print(
            f"  {size:>8}  {cpu * 1e3:>8.3f} {cpu / base_cpu:>6.2f} {wall * 1e3:>8.3f} {wall / base_wall:>6.2f}"
            f"   {old_cpu * 1e3:>14.1f} {old_wall * 1e3:>8.1f}"
        )
    # Wall time is the figure judged: on PostgreSQL the query runs in the database server, not this process.
    ok = _median(after[SIZES[-1]])[1] / base_wall <= GOAL
    print(f"  at {SIZES[-1]:,} versions: {'meets' if ok else 'misses'} the goal")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=300, help="timed resolutions per size (after)")
    args = parser.parse_args()
    ok = True
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(sqlite_url(Path(tmp) / "bench.db"))
            try:
                ok &= run(db, "SQLite", args.rounds)
            finally:
                db.dispose()
    if args.db in ("postgresql", "both"):
        name = f"vmg_bench_latest_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        db = Database(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
        try:
            ok &= run(db, "PostgreSQL", args.rounds)
        finally:
            db.dispose()
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
