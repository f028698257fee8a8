"""Upgrading a database written before jobs had subjects (revision 0003), with a replica's copy in flight: its job
keeps going under the new model and completes the replica; operation jobs keep their operation. And back down."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from tests.store.revisions import head_revision
from vmgallery.adapters.blobs.regions import RegionStores
from vmgallery.adapters.db.store import HEAD_REVISION, MIGRATIONS, Database
from vmgallery.app.content import write_image
from vmgallery.app.operations import JobKinds, run_job
from vmgallery.app.ports import OperationRow
from vmgallery.app.replication import RegionThrottle, Replicate

from ..conftest import PgDatabase

CHUNK = 4096
VERSION = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/galleries/g/images/i/versions/1.0.0"
GALLERY = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/galleries/g2"
OLD_RESOURCES = sa.table(
    "resources",
    *(sa.column(c) for c in ("key", "type", "parent_key", "subscription", "location", "state")),
    sa.column("body", sa.JSON),
    sa.column("created_at"),
    sa.column("updated_at"),
)
OLD_JOBS = sa.table(
    "jobs",
    *(sa.column(c) for c in ("operation_id", "kind", "state", "lease_owner", "lease_until", "attempts")),
    sa.column("payload", sa.JSON),
    sa.column("not_before"),
    sa.column("created_at"),
)


def old_replica_job_id(version_key: str, region: str, idx: int) -> str:
    """What revision 0003's code put in jobs.operation_id for a replica's copy."""
    return "replica:" + hashlib.sha1(f"{version_key}|{region}|{idx}".encode()).hexdigest()


@pytest.fixture
def old_db(backend, tmp_path):
    pg = PgDatabase() if backend == "postgresql" else None
    database = Database(pg.url if pg else f"sqlite:///{tmp_path / 'm.db'}")
    database.migrate("0003")
    yield database
    database.dispose()
    if pg:
        pg.drop()


def _downgrade(db: Database, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.connect() as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_upgrade_with_a_replica_copy_in_flight(old_db, tmp_path):
    db = old_db
    regions = RegionStores(tmp_path / "blobs", ("eastus", "westus"), chunk_size=CHUNK, grace_seconds=3600)
    data = os.urandom(CHUNK * 5)
    manifest = write_image(
        regions.store("eastus"), (data[i : i + CHUNK] for i in range(0, len(data), CHUNK)), len(data)
    )
    now = time.time()
    with db.write() as tx:
        # Written as revision 0003's schema has it (today's Tx also writes columns added since).
        tx.conn.execute(
            OLD_RESOURCES.insert().values(
                key=VERSION,
                type="microsoft.compute/galleries/images/versions",
                parent_key=VERSION.rsplit("/", 2)[0],
                subscription="s",
                location="eastus",
                state="Succeeded",
                body={"properties": {"provisioningState": "Succeeded"}},
                created_at=now,
                updated_at=now,
            )
        )
        tx.set_content(VERSION, "os", tx.put_manifest(manifest, now))
        tx.add_replica(VERSION, "eastus", 0, "Standard_LRS", now, state="Completed")
        tx.add_replica(VERSION, "westus", 0, "Standard_LRS", now, state="Replicating")
        tx.insert_operation(
            OperationRow(
                "op-1",
                GALLERY,
                GALLERY,
                "microsoft.compute",
                "s",
                "eastus",
                "create",
                "InProgress",
                0,
                None,
                None,
                now,
                None,
            )
        )
        payload = {"version": VERSION, "region": "westus", "index": 0}
        common = dict(attempts=1, not_before=0, created_at=now)
        tx.conn.execute(OLD_JOBS.insert().values(operation_id="op-1", kind="provision", state="queued", **common))
        # A stray second job for the same replica, queued by an old verify, then the copy a worker was running
        # when the server stopped for the upgrade (its lease long run out).
        replica_job = old_replica_job_id(VERSION, "westus", 0)
        tx.conn.execute(
            OLD_JOBS.insert().values(
                operation_id=replica_job, kind="replicate", payload=payload, state="queued", **common
            )
        )
        tx.conn.execute(
            OLD_JOBS.insert().values(
                operation_id=replica_job,
                kind="replicate",
                payload=payload,
                state="running",
                lease_owner="oldhost:1:x:0",
                lease_until=now - 600,
                **common,
            )
        )

    db.migrate()

    assert db.schema_revision() == head_revision()
    with db.read() as tx:
        rows = tx.conn.execute(sa.text("SELECT id, operation_id, subject_key, state FROM jobs ORDER BY id")).all()
    assert [tuple(r)[1:] for r in rows] == [
        ("op-1", GALLERY, "queued"),
        (None, f"{VERSION}/replicas/westus/0", "done"),  # the stray duplicate
        (None, f"{VERSION}/replicas/westus/0", "running"),
    ]

    # A worker of the new code takes the interrupted copy over and finishes it.
    with db.write() as tx:
        job = tx.claim_job("newhost:2:y:0", time.time(), 60)
        assert job is not None and job.id == rows[0].id  # the operation job first: it is the oldest
        tx.retry_job(job.id, not_before=time.time() + 3600)
        job = tx.claim_job("newhost:2:y:0", time.time(), 60)
    assert job.id == rows[2].id and job.operation_id is None and job.attempts == 2
    replicate = Replicate(regions, RegionThrottle({}), 1 << 20)
    run_job(db, job, "newhost:2:y:0", time.time, JobKinds(background={"replicate": replicate}), 60)
    with db.read() as tx:
        replica = tx.get_replica(VERSION, "westus", 0)
        assert tx.conn.execute(sa.text("SELECT state FROM jobs WHERE id = :id"), {"id": job.id}).scalar() == "done"
    assert replica.state == "Completed" and replica.chunks_copied == 5
    assert b"".join(regions.store("westus").get(d) for d in manifest.digests) == data

    _downgrade(db, "0003")
    with db.read() as tx:
        ids = tx.conn.execute(sa.text("SELECT operation_id FROM jobs ORDER BY id")).scalars().all()
    assert ids == ["op-1", old_replica_job_id(VERSION, "westus", 0), old_replica_job_id(VERSION, "westus", 0)]


@pytest.fixture
def db_at_0010(backend, tmp_path):
    pg = PgDatabase() if backend == "postgresql" else None
    database = Database(pg.url if pg else f"sqlite:///{tmp_path / 'k.db'}")
    database.migrate("0010")
    yield database
    database.dispose()
    if pg:
        pg.drop()


def test_definition_keys_with_separators_are_rewritten(db_at_0010):
    """0011: a definition whose publisher/offer/sku hold `|` gets the escaped key (so a twin with the parts shuffled
    across the separators is no longer a duplicate); a plain key is left as it was."""
    db = db_at_0010
    gallery = "/subscriptions/s/resourcegroups/g/providers/microsoft.compute/galleries/gal"
    now = time.time()

    def definition(name: str, publisher: str, offer: str, sku: str, old_key: str) -> dict:
        ident = {"publisher": publisher, "offer": offer, "sku": sku}
        return dict(
            key=f"{gallery}/images/{name}",
            type="microsoft.compute/galleries/images",
            parent_key=gallery,
            subscription="s",
            location="eastus",
            natural_key=old_key,
            state="Succeeded",
            body={"name": name, "properties": {"identifier": ident}},
            created_at=now,
            updated_at=now,
        )

    rows = [definition("plain", "Pub", "Off", "Sku", "pub|off|sku"), definition("odd", "a", "|", "||", "a||||")]
    with db.write() as tx:
        for row in rows:
            tx.conn.execute(
                sa.text(
                    "INSERT INTO resources (key, type, parent_key, subscription, location, natural_key, state, body,"
                    " created_at, updated_at) VALUES (:key, :type, :parent_key, :subscription, :location,"
                    " :natural_key, :state, :body, :created_at, :updated_at)"
                ),
                {**row, "body": json.dumps(row["body"])},
            )
    db.migrate()
    with db.read() as tx:
        keys = dict(tx.conn.execute(sa.text("SELECT key, natural_key FROM resources")).all())
    assert keys[f"{gallery}/images/plain"] == "pub|off|sku"
    assert keys[f"{gallery}/images/odd"] == "a|\\||\\|\\|"


def test_the_head_the_code_knows_is_the_scripts_head():
    assert HEAD_REVISION == head_revision()


STARTS = """
import sys
from vmgallery.adapters.db.store import Database
db = Database(sys.argv[1])
db.migrate()
print(db.schema_revision(), any(name.split(".")[0] == "alembic" for name in sys.modules))
"""


def test_a_database_at_the_head_starts_without_loading_alembic(backend, tmp_path):
    pg = PgDatabase() if backend == "postgresql" else None
    url = pg.url if pg else f"sqlite:///{tmp_path / 'm.db'}"
    try:

        def start() -> list[str]:
            done = subprocess.run([sys.executable, "-c", STARTS, url], capture_output=True, text=True, check=True)
            return done.stdout.split()

        assert start() == [HEAD_REVISION, "True"]  # a new database: Alembic creates the schema
        assert start() == [HEAD_REVISION, "False"]
        db = Database(url)
        _downgrade(db, "0010")  # one behind: Alembic brings it to the head again
        db.dispose()
        assert start() == [HEAD_REVISION, "True"]
    finally:
        if pg:
            pg.drop()
