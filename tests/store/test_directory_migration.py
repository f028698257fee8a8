"""Revision 0006 gives what existed a tenant: the default tenant, the bootstrap subscription and every subscription
that already holds resources (GUIDs only); and it goes back down."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from tests.store.revisions import head_revision
from vmgallery.adapters.db.directory import DirectoryStore
from vmgallery.adapters.db.store import MIGRATIONS, Database
from vmgallery.domain.identity import BOOTSTRAP_SUBSCRIPTION_ID, DEFAULT_TENANT_ID

from ..conftest import PgDatabase

RESOURCES = sa.table(
    "resources",
    *(sa.column(c) for c in ("key", "type", "parent_key", "subscription", "location", "state")),
    sa.column("body", sa.JSON),
    sa.column("created_at"),
    sa.column("updated_at"),
)


@pytest.fixture
def db_at_0005(backend, tmp_path):
    pg = PgDatabase() if backend == "postgresql" else None
    database = Database(pg.url if pg else f"sqlite:///{tmp_path / 'm.db'}")
    database.migrate("0005")
    yield database
    database.dispose()
    if pg:
        pg.drop()


def test_existing_subscriptions_join_the_default_tenant(db_at_0005):
    db = db_at_0005
    used = str(uuid.uuid4())
    with db.write() as tx:
        for sub in (used, used, "not-a-guid"):
            key = f"/subscriptions/{sub}/resourcegroups/rg{uuid.uuid4().hex[:6]}"
            tx.conn.execute(
                RESOURCES.insert().values(
                    key=key,
                    type="microsoft.resources/resourcegroups",
                    parent_key=f"/subscriptions/{sub}",
                    subscription=sub,
                    location="eastus",
                    state="Succeeded",
                    body={},
                    created_at=0.0,
                    updated_at=0.0,
                )
            )
    db.migrate("0006")
    with DirectoryStore(db).read() as tx:
        assert [t.tenant_id for t in tx.tenants()] == [DEFAULT_TENANT_ID]
        subs = tx.subscriptions(DEFAULT_TENANT_ID)
        assert sorted(s.subscription_id for s in subs) == sorted([BOOTSTRAP_SUBSCRIPTION_ID, used])
        assert tx.subscription_in_use(used) and not tx.subscription_in_use(BOOTSTRAP_SUBSCRIPTION_ID)

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.connect() as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    assert db.schema_revision() == "0005"
    db.migrate()
    assert db.schema_revision() == head_revision()
