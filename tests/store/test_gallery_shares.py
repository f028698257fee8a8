"""The consumer views' index (`gallery_shares`): filled from existing galleries by migration 0009, and kept by every
write of a gallery, in agreement with domain.sharing.share_targets."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from vmgallery.adapters.db.store import Database

from ..conftest import PgDatabase

SUB = "11111111-1111-1111-1111-111111111111"
KEY = "/subscriptions/o/resourcegroups/rg/providers/microsoft.compute/galleries/g"


def body(profile: dict) -> dict:
    return {"id": KEY, "name": "g", "type": "Microsoft.Compute/galleries", "properties": {"sharingProfile": profile}}


SHARED = body({"permissions": "Groups", "groups": [{"type": "Subscriptions", "ids": [SUB.upper()]}]})


@pytest.fixture
def db(backend, tmp_path):
    pg = PgDatabase() if backend == "postgresql" else None
    database = Database(pg.url if pg else f"sqlite:///{tmp_path / 's.db'}")
    yield database
    database.dispose()
    if pg:
        pg.drop()


def test_migration_fills_the_index_from_existing_galleries(db):
    db.migrate("0005")
    with db.write() as tx:
        tx.conn.execute(
            sa.text(
                "INSERT INTO resources (key, type, parent_key, subscription, state, body, created_at, updated_at) "
                "VALUES (:k, 'microsoft.compute/galleries', 'p', 'o', 'Succeeded', :b, 0, 0)"
            ).bindparams(sa.bindparam("b", type_=sa.JSON)),
            {"k": KEY, "b": SHARED},
        )
    db.migrate()
    with db.read() as tx:
        assert [r.key for r in tx.galleries_shared_with("subscription", SUB)] == [KEY]


def test_every_write_of_a_gallery_keeps_the_index(db):
    db.migrate()
    with db.write() as tx:
        tx.insert(
            key=KEY,
            type="microsoft.compute/galleries",
            parent_key="p",
            subscription="o",
            group_key=None,
            location="eastus",
            natural_key=None,
            state="Succeeded",
            body=SHARED,
            now=0.0,
        )
    with db.read() as tx:
        assert [r.key for r in tx.galleries_shared_with("subscription", SUB.upper())] == [KEY]
    community = body(
        {"permissions": "Community", "communityGalleryInfo": {"communityGalleryEnabled": True, "publicNames": ["P-1"]}}
    )
    with db.write() as tx:
        tx.update(KEY, state="Succeeded", body=community, now=1.0)
    with db.read() as tx:
        assert tx.galleries_shared_with("subscription", SUB) == []
        assert [r.key for r in tx.galleries_shared_with("community", "p-1")] == [KEY]
    with db.write() as tx:
        tx.delete(KEY)
    with db.read() as tx:
        assert tx.galleries_shared_with("community", "p-1") == []
