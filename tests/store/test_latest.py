"""`latest` from the store's one indexed query agrees with the domain's rule applied to every version, whether the
versions were written before revision 0005 and migrated, or written, changed and deleted since."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa

from tests.store.revisions import head_revision
from vmgallery.adapters.db.store import Database
from vmgallery.app.replication import usable_regions
from vmgallery.domain import versions as version_rules

from ..conftest import PgDatabase

VERSION_TYPE = "microsoft.compute/galleries/images/versions"
REGIONS = ("eastus", "westus", "northeurope")
ASKED = (None, *REGIONS, "East US", "southindia")
STATES = ("Pending", "Replicating", "Completed", "Completed", "Failed")
RESOURCES = sa.table(
    "resources",
    *(sa.column(c) for c in ("key", "type", "parent_key", "subscription", "location", "state")),
    sa.column("body", sa.JSON),
    sa.column("created_at"),
    sa.column("updated_at"),
)


def _definition(i: int) -> str:
    return f"/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/galleries/g/images/i{i}"


def _name(rng: random.Random) -> str:
    # Small numbers so versions collide numerically, some spelled with leading zeros (1.01.0 orders with 1.1.0).
    return ".".join(("0" if rng.random() < 0.15 else "") + str(rng.randint(0, 3)) for _ in range(3))


def _body(rng: random.Random, name: str) -> dict:
    profile: dict = {
        "targetRegions": [
            {"name": region.upper() if rng.random() < 0.2 else region, "excludeFromLatest": rng.random() < 0.2}
            for region in rng.sample(REGIONS, rng.randint(1, len(REGIONS)))
        ]
    }
    if rng.random() < 0.2:
        profile["excludeFromLatest"] = True
    state = rng.choice(("Succeeded", "Succeeded", "Succeeded", "Creating", "Failed"))
    return {
        "name": name,
        "type": "Microsoft.Compute/galleries/images/versions",
        "properties": {"provisioningState": state, "publishingProfile": profile},
    }


def _replicas(tx, rng: random.Random, key: str, body: dict) -> None:
    for target in body["properties"]["publishingProfile"]["targetRegions"]:
        for idx in range(rng.randint(1, 2)):
            tx.add_replica(key, target["name"].lower(), idx, "Standard_LRS", 0.0, state=rng.choice(STATES))


def _expected(tx, definition: str, region: str | None) -> str | None:
    """The domain's rule over every version of the definition, as resolving `latest` did before the index."""
    rows = [r for r in tx.page(type=VERSION_TYPE, after=0, limit=10**6, parent_key=definition)]
    facts = [version_rules.version_facts(r.body["name"], r.body, usable_regions(tx, r.key)) for r in rows]
    name = version_rules.latest_version(facts, region)
    return f"{definition}/versions/{name}" if name else None


def _assert_agrees(db: Database, definitions: list[str]) -> int:
    found = 0
    with db.read() as tx:
        for definition in definitions:
            for region in ASKED:
                row = tx.latest_version(definition, region)
                assert (row.key if row else None) == _expected(tx, definition, region), (definition, region)
                found += row is not None
    return found


def _database(backend, tmp_path, revision: str = "head"):
    pg = PgDatabase() if backend == "postgresql" else None
    database = Database(pg.url if pg else f"sqlite:///{tmp_path / 'm.db'}")
    database.migrate(revision)
    return database, pg


@pytest.fixture
def old_db(backend, tmp_path):
    database, pg = _database(backend, tmp_path, "0004")
    yield database
    database.dispose()
    if pg:
        pg.drop()


def test_a_migrated_database_resolves_latest_as_before(old_db):
    rng = random.Random(5)
    definitions = [_definition(i) for i in range(8)]
    with old_db.write() as tx:
        for definition in definitions:
            for name in {_name(rng) for _ in range(10)}:
                key, body = f"{definition}/versions/{name}", _body(rng, name)
                state = body["properties"]["provisioningState"]
                tx.conn.execute(
                    RESOURCES.insert().values(
                        key=key,
                        type=VERSION_TYPE,
                        parent_key=definition,
                        subscription="s",
                        location="eastus",
                        state=state,
                        body=body,
                        created_at=0.0,
                        updated_at=0.0,
                    )
                )
                _replicas(tx, rng, key, body)

    old_db.migrate()

    assert old_db.schema_revision() == head_revision()
    assert _assert_agrees(old_db, definitions) > 0


def test_latest_follows_every_write_of_a_version(db):
    rng = random.Random(7)
    definitions = [_definition(i) for i in range(6)]
    keys: list[str] = []
    with db.write() as tx:
        for definition in definitions:
            for name in {_name(rng) for _ in range(10)}:
                key, body = f"{definition}/versions/{name}", _body(rng, name)
                state = body["properties"]["provisioningState"]
                tx.insert(
                    key=key,
                    type=VERSION_TYPE,
                    parent_key=definition,
                    subscription="s",
                    group_key="g",
                    location="eastus",
                    natural_key=None,
                    state=state,
                    body=body,
                    now=0.0,
                )
                _replicas(tx, rng, key, body)
                keys.append(key)
    assert _assert_agrees(db, definitions) > 0

    # Updates change what may be latest (state, excludeFromLatest, regions); deletes take versions away.
    with db.write() as tx:
        for key in rng.sample(keys, len(keys) // 2):
            body = _body(rng, key.rsplit("/", 1)[1])
            tx.update(key, state=body["properties"]["provisioningState"], body=body, now=1.0)
        for key in rng.sample(keys, len(keys) // 4):
            tx.delete(key)
            tx.drop_replicas(key)
    assert _assert_agrees(db, definitions) > 0
    with db.read() as tx:
        orphans = tx.conn.execute(
            sa.text("SELECT count(*) FROM latest_exclusions WHERE version_key NOT IN (SELECT key FROM resources)")
        ).scalar()
    assert orphans == 0
