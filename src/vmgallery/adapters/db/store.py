"""Metadata persistence over SQLAlchemy Core, the same code on SQLite and PostgreSQL.

`Database.write()` opens a transaction that may change rows (on SQLite it takes the write lock up front with
BEGIN IMMEDIATE, so two writers never deadlock on a lock upgrade); `Database.read()` a consistent read. Both yield
a `Tx`, the repository: every query the application runs is a method here. Together they implement
`app.ports.Metadata` and `app.ports.Transaction`; a constraint a write breaks leaves as `ConcurrentChange`.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, create_engine, delete, event, exists, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ...app.ports import ConcurrentChange, GrantRow, JobRow, OperationRow, ReplicaRow, ResourceRow
from ...domain import sharing as sharing_rules
from ...domain import versions as version_rules
from ...domain.ids import normalize_location
from ...domain.manifests import Manifest
from ...domain.replication import COMPLETED
from . import placeholders
from .roles import GrantLookup, RoleQueries
from .tables import (
    build_logs,
    disk_contents,
    gallery_shares,
    grants,
    jobs,
    latest_exclusions,
    manifests,
    operations,
    replicas,
    resources,
    upload_chunks,
)

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration's revision (tests/store/test_migrations.py holds it to the scripts' head): a database there
# starts without loading Alembic and its scripts.
HEAD_REVISION = "0011"
VERSION_TYPE = "microsoft.compute/galleries/images/versions"
GALLERY_TYPE = "microsoft.compute/galleries"

# The statements every request runs. The reads go to the driver as SQL text (`Tx._rows`): SQLAlchemy's statement
# machinery cost more CPU than SQLite takes to run them. The writes are built once with bound parameters: building
# a statement and computing its cache key cost more than running it.
_RESOURCE_COLUMNS = "seq, key, type, parent_key, location, natural_key, state, body"
_RESOURCE_SQL = f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE key = ?"
_FIND_NATURAL_SQL = f"SELECT {_RESOURCE_COLUMNS} FROM resources WHERE parent_key = ? AND type = ? AND natural_key = ?"
_COUNT_IN_REGION_SQL = "SELECT count(*) FROM resources WHERE subscription = ? AND location = ? AND type = ?"
_UPDATE = update(resources).where(resources.c.key == bindparam("k"))
_GET_GRANT = select(grants).where(grants.c.id == bindparam("id"))
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_GET_OPERATION = select(operations).where(operations.c.id == bindparam("id"))
_ACTIVE_OPERATION = select(operations).where(
    operations.c.resource_key == bindparam("k"), operations.c.status == "InProgress"
)


def _job(row: Any) -> JobRow:
    return JobRow(row.id, row.operation_id, row.subject_key, row.kind, row.payload, row.attempts)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control from pysqlite so BEGIN IMMEDIATE can be issued for writers.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # At the driver: through SQLAlchemy's statement machinery, BEGIN cost every transaction about as much as
        # the plain GET's SELECT does.
        write = conn.get_execution_options().get("vmg_write")
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class Database:
    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url)
        else:
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            self.engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        self._grants = GrantLookup(self.engine)
        self.grants_along = self._grants.grants_along
        self.lookup = self._grants  # one SELECT on a pooled driver connection (the per-request reads of auth)
        self._resource_sql = self.lookup.marks(_RESOURCE_SQL)
        self.roles_changed = self._grants.changed

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to `revision` (the newest by default); existing data is kept (Alembic migrations)."""
        if revision == "head" and self.schema_revision() == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                # Two processes starting at once must not both run the migration.
                conn.execute(text("SELECT pg_advisory_lock(4242001)"))
                conn.commit()  # the session-level lock outlives this transaction
            try:
                with conn.begin():
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
            finally:
                if not self.is_sqlite:
                    conn.execute(text("SELECT pg_advisory_unlock(4242001)"))
                    conn.commit()

    def schema_revision(self) -> str | None:
        with self.engine.connect() as conn:
            try:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except Exception:
                return None

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        try:
            with self.engine.connect().execution_options(vmg_write=True) as conn:
                with conn.begin():
                    yield Tx(conn, self.is_sqlite)
        except IntegrityError as exc:
            raise ConcurrentChange(str(exc.orig)) from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                # PostgreSQL's READ COMMITTED gives each statement its own snapshot, inside a transaction or not: a
                # read needs no BEGIN and COMMIT, two round trips of a GET's four.
                conn.execution_options(isolation_level="AUTOCOMMIT")
            with conn.begin():
                yield Tx(conn, self.is_sqlite)

    def resource(self, key: str) -> ResourceRow | None:
        """At the driver: SQLAlchemy's connection, transaction and statement machinery cost a GET about 0.25 ms of
        CPU on a slow machine, the SELECT itself a tenth of that (bench/README.md, control_plane_cpu.py)."""
        rows = self.lookup.select(self._resource_sql, [key])
        return _row_at_driver(rows[0]) if rows else None

    def dispose(self) -> None:
        self.engine.dispose()
        self._grants.dispose()


def _resource(row) -> ResourceRow:
    return ResourceRow(row.seq, row.key, row.type, row.parent_key, row.location, row.natural_key, row.state, row.body)


def _row_at_driver(row: Sequence[Any]) -> ResourceRow:
    """A row of _RESOURCE_COLUMNS as the driver gives it: SQLite's JSON is text, psycopg decodes it already."""
    *columns, body = row
    return ResourceRow(*columns, json.loads(body) if isinstance(body, str) else body)


def _operation(row) -> OperationRow:
    return OperationRow(**{c: getattr(row, c) for c in OperationRow.__dataclass_fields__})


def _replica(row) -> ReplicaRow:
    return ReplicaRow(**{c: getattr(row, c) for c in ReplicaRow.__dataclass_fields__})


class _DiskBytes:
    """Manifests, their users, and uploads in progress (docs/storage-format.md)."""

    conn: Connection
    is_sqlite: bool

    def _insert_ignore(self, table, **values) -> bool:
        """Insert unless a unique key is taken already; whether it was inserted."""
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        # RETURNING, not rowcount: PostgreSQL reports -1 for an insert that returns the generated key.
        primary = list(table.primary_key)[0]
        inserted = self.conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing().returning(primary))
        return inserted.first() is not None

    def put_manifest(self, manifest: Manifest, now: float) -> str:
        self._insert_ignore(
            manifests,
            id=manifest.id,
            size=manifest.size,
            chunk_size=manifest.chunk_size,
            chunks=manifest.pack(),
            created_at=now,
        )
        return manifest.id

    def get_manifest(self, manifest_id: str) -> Manifest:
        row = self.conn.execute(select(manifests).where(manifests.c.id == manifest_id)).one()
        return Manifest.unpack(row.size, row.chunk_size, row.chunks)

    def set_content(
        self, resource_key: str, slot: str, manifest_id: str, source_key: str | None = None, replica: int | None = None
    ) -> None:
        self.conn.execute(
            delete(disk_contents).where(disk_contents.c.resource_key == resource_key, disk_contents.c.slot == slot)
        )
        self.conn.execute(
            insert(disk_contents).values(
                resource_key=resource_key, slot=slot, manifest_id=manifest_id, source_key=source_key, replica=replica
            )
        )

    def content_source(self, resource_key: str) -> tuple[str | None, int | None]:
        """For a disk made from a version: the version's key and the replica it reads first."""
        row = self.conn.execute(
            select(disk_contents.c.source_key, disk_contents.c.replica)
            .where(disk_contents.c.resource_key == resource_key)
            .limit(1)
        ).first()
        return (row.source_key, row.replica) if row else (None, None)

    def count_made_from(self, source_key: str) -> int:
        return self.conn.execute(
            select(func.count(func.distinct(disk_contents.c.resource_key))).where(
                disk_contents.c.source_key == source_key
            )
        ).scalar_one()

    def manifests_owned_in(self, region: str) -> set[str]:
        """Manifests of the region's own resources (disks, snapshots, images, versions made there): their chunks
        live in the region's primary store."""
        own = (
            select(disk_contents.c.manifest_id)
            .join(resources, resources.c.key == disk_contents.c.resource_key)
            .where(resources.c.location == region)
        )
        return set(self.conn.execute(own.distinct()).scalars())

    def replica_manifests_in(self, region: str) -> list[tuple[int, str, str]]:
        """(replica index, storage type, manifest id) of every replica in the region, in any state: what each
        replica's store must keep chunks for."""
        rows = (
            select(replicas.c.idx, replicas.c.storage_type, disk_contents.c.manifest_id)
            .join(disk_contents, disk_contents.c.resource_key == replicas.c.version_key)
            .where(replicas.c.region == region)
        )
        return [tuple(r) for r in self.conn.execute(rows.distinct())]

    def contents(self, resource_key: str) -> dict[str, str]:
        rows = self.conn.execute(
            select(disk_contents.c.slot, disk_contents.c.manifest_id).where(
                disk_contents.c.resource_key == resource_key
            )
        )
        return {r.slot: r.manifest_id for r in rows}

    def drop_contents(self, resource_key: str) -> None:
        self.conn.execute(delete(disk_contents).where(disk_contents.c.resource_key == resource_key))

    def used_manifest_ids(self) -> set[str]:
        return set(self.conn.execute(select(disk_contents.c.manifest_id).distinct()).scalars())

    def all_manifest_ids(self) -> set[str]:
        return set(self.conn.execute(select(manifests.c.id)).scalars())

    def delete_manifest(self, manifest_id: str) -> None:
        self.conn.execute(delete(manifests).where(manifests.c.id == manifest_id))

    # Uploads in progress: one row per chunk that is not a hole. Every page write reads and swaps a few of these,
    # so they run at the driver, inside the transaction, without SQLAlchemy's statement machinery: for a 4 MiB
    # write, 3.8 ms of CPU became 0.5 (bench/README.md, throughput.py).
    def _driver(self, sql: str, params: Sequence[Any]) -> Any:
        cursor = self.conn.connection.driver_connection.cursor()
        cursor.execute(placeholders.for_driver(sql, self.is_sqlite), params)
        return cursor

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        cursor = self._driver(sql, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def _count(self, sql: str, params: Sequence[Any]) -> int:
        cursor = self._driver(sql, params)
        count = cursor.rowcount
        cursor.close()
        return count

    def upload_span(self, disk_key: str, first: int, last: int) -> dict[int, str]:
        return dict(
            self._rows(
                "SELECT idx, digest FROM upload_chunks WHERE disk_key = ? AND idx BETWEEN ? AND ?",
                (disk_key, first, last),
            )
        )

    def swap_upload_chunks(self, disk_key: str, swaps: Sequence[tuple[int, str | None, str | None]]) -> list[int]:
        """Compare-and-set chunks of an upload, each (idx, old, new); the indexes another writer changed first."""
        lost = []
        fresh = [(idx, new) for idx, old, new in swaps if old is None and new is not None]
        if fresh:
            # One statement for the usual case, chunks written for the first time; RETURNING says which went in.
            inserted = {
                row[0]
                for row in self._rows(
                    "INSERT INTO upload_chunks (disk_key, idx, digest) VALUES "
                    + ", ".join(["(?, ?, ?)"] * len(fresh))
                    + " ON CONFLICT DO NOTHING RETURNING idx",
                    [value for idx, new in fresh for value in (disk_key, idx, new)],
                )
            }
            lost += [idx for idx, _ in fresh if idx not in inserted]
        for idx, old, new in swaps:
            if old is None and new is None:
                held = self._rows("SELECT 1 FROM upload_chunks WHERE disk_key = ? AND idx = ?", (disk_key, idx))
            elif old is not None and new is None:
                held = not self._count(
                    "DELETE FROM upload_chunks WHERE disk_key = ? AND idx = ? AND digest = ?", (disk_key, idx, old)
                )
            elif old is not None:
                held = not self._count(
                    "UPDATE upload_chunks SET digest = ? WHERE disk_key = ? AND idx = ? AND digest = ?",
                    (new, disk_key, idx, old),
                )
            else:
                continue
            if held:
                lost.append(idx)
        return lost

    def upload_rows(self, disk_key: str) -> dict[int, str]:
        rows = self.conn.execute(
            select(upload_chunks.c.idx, upload_chunks.c.digest).where(upload_chunks.c.disk_key == disk_key)
        )
        return {r.idx: r.digest for r in rows}

    def clear_upload(self, disk_key: str) -> None:
        self.conn.execute(delete(upload_chunks).where(upload_chunks.c.disk_key == disk_key))

    def add_grant(self, grant_id: str, resource_key: str, access: str, expires_at: float) -> None:
        self.conn.execute(
            insert(grants).values(id=grant_id, resource_key=resource_key, access=access, expires_at=expires_at)
        )

    def get_grant(self, grant_id: str) -> GrantRow | None:
        row = self.conn.execute(_GET_GRANT, {"id": grant_id}).first()
        return GrantRow(row.id, row.resource_key, row.access, row.expires_at) if row else None

    def revoke_grants(self, resource_key: str) -> None:
        self.conn.execute(delete(grants).where(grants.c.resource_key == resource_key))

    # Replicas of versions (the replication engine's state).
    def add_replica(
        self, version_key: str, region: str, idx: int, storage_type: str, now: float, state: str = "Pending"
    ) -> None:
        self.conn.execute(
            insert(replicas).values(
                version_key=version_key,
                region=region,
                idx=idx,
                storage_type=storage_type,
                state=state,
                bytes_total=0,
                bytes_done=0,
                bytes_copied=0,
                chunks_copied=0,
                error=None,
                updated_at=now,
            )
        )

    def replicas_of(self, version_key: str) -> list[ReplicaRow]:
        rows = self.conn.execute(
            select(replicas).where(replicas.c.version_key == version_key).order_by(replicas.c.region, replicas.c.idx)
        )
        return [_replica(r) for r in rows]

    def get_replica(self, version_key: str, region: str, idx: int) -> ReplicaRow | None:
        row = self.conn.execute(
            select(replicas).where(
                replicas.c.version_key == version_key, replicas.c.region == region, replicas.c.idx == idx
            )
        ).first()
        return _replica(row) if row else None

    def move_replica(
        self,
        version_key: str,
        region: str,
        idx: int,
        *,
        expected: str,
        to: str,
        now: float,
        error: str | None = None,
        bytes_total: int | None = None,
        bytes_done: int | None = None,
        bytes_copied: int | None = None,
        chunks_copied: int | None = None,
    ) -> bool:
        """Compare-and-set a replica's state: move it from `expected` to `to` (with its error, None clearing it, and
        the counters given), only if it is still in `expected`. False: another writer moved it first, or it is gone."""
        counters = {
            "bytes_total": bytes_total,
            "bytes_done": bytes_done,
            "bytes_copied": bytes_copied,
            "chunks_copied": chunks_copied,
        }
        return (
            self.conn.execute(
                update(replicas)
                .where(
                    replicas.c.version_key == version_key,
                    replicas.c.region == region,
                    replicas.c.idx == idx,
                    replicas.c.state == expected,
                )
                .values(state=to, error=error, updated_at=now, **{k: v for k, v in counters.items() if v is not None})
            ).rowcount
            == 1
        )

    def replica_progress(
        self,
        version_key: str,
        region: str,
        idx: int,
        *,
        bytes_done: int,
        bytes_copied: int,
        chunks_copied: int,
        now: float,
    ) -> bool:
        """Record how far a copy is, only while the replica is Replicating; False if it is not (any more)."""
        return (
            self.conn.execute(
                update(replicas)
                .where(
                    replicas.c.version_key == version_key,
                    replicas.c.region == region,
                    replicas.c.idx == idx,
                    replicas.c.state == "Replicating",
                )
                .values(bytes_done=bytes_done, bytes_copied=bytes_copied, chunks_copied=chunks_copied, updated_at=now)
            ).rowcount
            == 1
        )

    def replicas_in(self, region: str, *, state: str, updated_after: float) -> list[ReplicaRow]:
        rows = self.conn.execute(
            select(replicas).where(
                replicas.c.region == region, replicas.c.state == state, replicas.c.updated_at > updated_after
            )
        )
        return [_replica(r) for r in rows]

    def drop_replica(self, version_key: str, region: str, idx: int) -> None:
        self.conn.execute(
            delete(replicas).where(
                replicas.c.version_key == version_key, replicas.c.region == region, replicas.c.idx == idx
            )
        )

    def drop_replicas(self, version_key: str) -> None:
        self.conn.execute(delete(replicas).where(replicas.c.version_key == version_key))

    def all_replicas(self) -> list[ReplicaRow]:
        rows = self.conn.execute(select(replicas).order_by(replicas.c.version_key, replicas.c.region, replicas.c.idx))
        return [_replica(r) for r in rows]

    def upload_digests(self) -> set[str]:
        return set(self.conn.execute(select(upload_chunks.c.digest).distinct()).scalars())


class Tx(_DiskBytes, RoleQueries):
    def __init__(self, conn: Connection, is_sqlite: bool):
        self.conn = conn
        self.is_sqlite = is_sqlite

    # -- locking -------------------------------------------------------------------------------------------
    def lock(self, name: str) -> None:
        """Serialize writers that check-then-insert on the same name (quotas). SQLite writers are serial already."""
        if not self.is_sqlite:
            self.conn.execute(_ADVISORY_LOCK, {"k": zlib.crc32(name.encode())})

    # -- resources -----------------------------------------------------------------------------------------
    def get(self, key: str, *, for_update: bool = False) -> ResourceRow | None:
        rows = self._rows(_RESOURCE_SQL + (" FOR UPDATE" if for_update and not self.is_sqlite else ""), (key,))
        return _row_at_driver(rows[0]) if rows else None

    def insert(
        self,
        *,
        key: str,
        type: str,
        parent_key: str,
        subscription: str,
        group_key: str | None,
        location: str | None,
        natural_key: str | None,
        state: str,
        body: dict,
        now: float,
    ) -> None:
        self.conn.execute(
            insert(resources),
            {
                "key": key,
                "type": type,
                "parent_key": parent_key,
                "subscription": subscription,
                "group_key": group_key,
                "location": location,
                "natural_key": natural_key,
                "state": state,
                "body": body,
                "created_at": now,
                "updated_at": now,
                **self._latest_facts(key, type, body),
            },
        )
        self._share_facts(key, type, body)

    def update(self, key: str, *, state: str, body: dict, now: float) -> None:
        type = str(body.get("type", "")).lower()
        self.conn.execute(
            _UPDATE, {"k": key, "state": state, "body": body, "updated_at": now, **self._latest_facts(key, type, body)}
        )
        self._share_facts(key, type, body)

    def delete(self, key: str) -> None:
        self.conn.execute(delete(resources).where(resources.c.key == key))
        self.conn.execute(delete(latest_exclusions).where(latest_exclusions.c.version_key == key))
        self.conn.execute(delete(gallery_shares).where(gallery_shares.c.gallery_key == key))

    def _share_facts(self, key: str, type: str, body: dict) -> None:
        """For a gallery: rewrite who may find it through the consumer views."""
        if type != GALLERY_TYPE:
            return
        self.conn.execute(delete(gallery_shares).where(gallery_shares.c.gallery_key == key))
        for kind, target in sorted(sharing_rules.share_targets(body)):
            self.conn.execute(insert(gallery_shares).values(kind=kind, target=target, gallery_key=key))

    def galleries_shared_with(self, kind: str, target: str) -> list[ResourceRow]:
        q = (
            select(resources)
            .join(gallery_shares, gallery_shares.c.gallery_key == resources.c.key)
            .where(gallery_shares.c.kind == kind, gallery_shares.c.target == target.lower())
            .order_by(resources.c.seq)
        )
        return [_resource(r) for r in self.conn.execute(q)]

    def _latest_facts(self, key: str, type: str, body: dict) -> dict[str, str | None]:
        """For a version: rewrite the regions it is excluded from latest in, and return its `latest_rank` column
        (NULL while it may not be latest anywhere: not finished, or excluded from latest)."""
        if type != VERSION_TYPE:
            return {}
        name = key.rsplit("/", 1)[1]
        facts = version_rules.version_facts(name, body)
        self.conn.execute(delete(latest_exclusions).where(latest_exclusions.c.version_key == key))
        for region in sorted(facts.excluded_in_regions):
            self.conn.execute(insert(latest_exclusions).values(version_key=key, region=region))
        eligible = facts.eligible()
        return {"latest_rank": version_rules.latest_rank(name) if eligible else None}

    def latest_version(self, definition_key: str, region: str | None) -> ResourceRow | None:
        """The highest version of the definition that may be latest (in `region` when given), in one query that walks
        `ix_resources_latest` down from the top."""
        q = select(resources).where(
            resources.c.parent_key == definition_key,
            resources.c.type == VERSION_TYPE,
            resources.c.latest_rank.is_not(None),
        )
        if region is not None:
            region = normalize_location(region)
            here = (replicas.c.version_key == resources.c.key) & (replicas.c.region == region)
            q = q.where(
                exists().where(here),
                ~exists().where(here, replicas.c.state != COMPLETED),
                ~exists().where(
                    latest_exclusions.c.version_key == resources.c.key, latest_exclusions.c.region == region
                ),
            )
        row = self.conn.execute(q.order_by(resources.c.latest_rank.desc()).limit(1)).first()
        return _resource(row) if row else None

    def find_natural(self, parent_key: str, type: str, natural_key: str) -> ResourceRow | None:
        rows = self._rows(_FIND_NATURAL_SQL, (parent_key, type, natural_key))
        return _row_at_driver(rows[0]) if rows else None

    def children(self, parent_key: str, limit: int = 20) -> list[ResourceRow]:
        rows = self.conn.execute(
            select(resources).where(resources.c.parent_key == parent_key).order_by(resources.c.seq).limit(limit)
        )
        return [_resource(r) for r in rows]

    def count_children(self, parent_key: str) -> int:
        return self.conn.execute(
            select(func.count()).select_from(resources).where(resources.c.parent_key == parent_key)
        ).scalar_one()

    def in_group(self, group_key: str) -> list[ResourceRow]:
        rows = self.conn.execute(
            select(resources).where(resources.c.group_key == group_key, resources.c.key != group_key)
        )
        return [_resource(r) for r in rows]

    def count_in_region(self, subscription: str, location: str, type: str) -> int:
        return int(self._rows(_COUNT_IN_REGION_SQL, (subscription, location, type))[0][0])

    def page(
        self,
        *,
        type: str,
        after: int,
        limit: int,
        parent_key: str | None = None,
        subscription: str | None = None,
        group_key: str | None = None,
        within: frozenset[str] | None = None,
    ) -> list[ResourceRow]:
        q = select(resources).where(resources.c.type == type, resources.c.seq > after)
        if within is not None:
            keys = sorted(within)
            q = q.where(resources.c.key.in_(keys) | resources.c.parent_key.in_(keys) | resources.c.group_key.in_(keys))
        if parent_key is not None:
            q = q.where(resources.c.parent_key == parent_key)
        if subscription is not None:
            q = q.where(resources.c.subscription == subscription)
        if group_key is not None:
            q = q.where(resources.c.group_key == group_key)
        return [_resource(r) for r in self.conn.execute(q.order_by(resources.c.seq).limit(limit))]

    # -- operations ----------------------------------------------------------------------------------------
    def insert_operation(self, op: OperationRow) -> None:
        self.conn.execute(insert(operations), op.__dict__)

    def get_operation(self, op_id: str) -> OperationRow | None:
        row = self.conn.execute(_GET_OPERATION, {"id": op_id}).first()
        return _operation(row) if row else None

    def active_operation(self, resource_key: str) -> OperationRow | None:
        row = self.conn.execute(_ACTIVE_OPERATION, {"k": resource_key}).first()
        return _operation(row) if row else None

    def finish_operation(
        self, op_id: str, status: str, now: float, error: dict | None = None, result: dict | None = None
    ) -> None:
        self.conn.execute(
            update(operations)
            .where(operations.c.id == op_id)
            .values(
                status=status,
                error=error,
                end_time=now,
                result=result,
                percent=100 if status == "Succeeded" else operations.c.percent,
            )
        )

    # -- jobs ----------------------------------------------------------------------------------------------
    def queue_operation_job(self, *, operation_id: str, subject_key: str, kind: str, now: float) -> None:
        """Queue the job that finishes an operation on the resource `subject_key`."""
        self.conn.execute(
            insert(jobs),
            {
                "operation_id": operation_id,
                "subject_key": subject_key,
                "kind": kind,
                "payload": None,
                "state": "queued",
                "attempts": 0,
                "not_before": 0,
                "created_at": now,
            },
        )

    def queue_background_job(
        self, *, kind: str, subject_key: str, payload: dict[str, Any], now: float, not_before: float = 0
    ) -> bool:
        """Queue a background job on `subject_key`, to run from `not_before` on, unless one is queued or running on it
        already (False then): a subject has one live background job at a time (a unique partial index says so to
        every process)."""
        return self._insert_ignore(
            jobs,
            operation_id=None,
            subject_key=subject_key,
            kind=kind,
            payload=payload,
            state="queued",
            attempts=0,
            not_before=not_before,
            created_at=now,
        )

    def claim_job(self, owner: str, now: float, lease: float) -> JobRow | None:
        """Take the oldest ready job (queued, or running with an expired lease) with a compare-and-set."""
        ready = ((jobs.c.state == "queued") & (jobs.c.not_before <= now)) | (
            (jobs.c.state == "running") & (jobs.c.lease_until < now)
        )
        for row in self.conn.execute(select(jobs.c.id).where(ready).order_by(jobs.c.id).limit(5)).all():
            claimed = self.conn.execute(
                update(jobs)
                .where(jobs.c.id == row.id, ready)
                .values(state="running", lease_owner=owner, lease_until=now + lease, attempts=jobs.c.attempts + 1)
            )
            if claimed.rowcount == 1:
                return _job(self.conn.execute(select(jobs).where(jobs.c.id == row.id)).one())
        return None

    def claim_operation_job(self, operation_id: str, owner: str, now: float, lease: float) -> JobRow | None:
        """Take the queued job of one operation (a request finishing its own quick operation)."""
        claimed = self.conn.execute(
            update(jobs)
            .where(jobs.c.operation_id == operation_id, jobs.c.state == "queued")
            .values(state="running", lease_owner=owner, lease_until=now + lease, attempts=jobs.c.attempts + 1)
        )
        if claimed.rowcount != 1:
            return None
        return _job(self.conn.execute(select(jobs).where(jobs.c.operation_id == operation_id)).one())

    def owns_job(self, job_id: int, owner: str) -> bool:
        return (
            self.conn.execute(
                select(jobs.c.id).where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.state == "running")
            ).first()
            is not None
        )

    def extend_lease(self, job_id: int, owner: str, until: float) -> bool:
        return (
            self.conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.state == "running")
                .values(lease_until=until)
            ).rowcount
            == 1
        )

    def set_operation_percent(self, op_id: str, percent: int) -> None:
        self.conn.execute(update(operations).where(operations.c.id == op_id).values(percent=percent))

    def finish_job(self, job_id: int, state: str) -> None:
        self.conn.execute(
            update(jobs).where(jobs.c.id == job_id).values(state=state, lease_owner=None, lease_until=None)
        )

    def retry_job(self, job_id: int, not_before: float) -> None:
        self.conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(state="queued", lease_owner=None, lease_until=None, not_before=not_before)
        )

    def running_jobs_owned_by(self, owner_prefix: str) -> list[tuple[int, str]]:
        rows = self.conn.execute(
            select(jobs.c.id, jobs.c.lease_owner).where(
                jobs.c.state == "running", jobs.c.lease_owner.like(owner_prefix + "%")
            )
        )
        return [(r.id, r.lease_owner) for r in rows]

    def pending_jobs(self) -> int:
        return self.conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.state.in_(("queued", "running")))
        ).scalar_one()

    # -- image builder logs ----------------------------------------------------------------------------------
    def append_build_log(self, template_key: str, lines: list[tuple[float, str]]) -> None:
        last = self.conn.execute(
            select(func.max(build_logs.c.seq)).where(build_logs.c.template_key == template_key)
        ).scalar_one()
        start = (last or 0) + 1
        if lines:
            self.conn.execute(
                insert(build_logs),
                [
                    {"template_key": template_key, "seq": start + i, "at": at, "line": line}
                    for i, (at, line) in enumerate(lines)
                ],
            )

    def build_log(self, template_key: str, after: int, limit: int) -> list[tuple[int, float, str]]:
        rows = self.conn.execute(
            select(build_logs.c.seq, build_logs.c.at, build_logs.c.line)
            .where(build_logs.c.template_key == template_key, build_logs.c.seq > after)
            .order_by(build_logs.c.seq)
            .limit(limit)
        )
        return [(r.seq, r.at, r.line) for r in rows]

    def clear_build_log(self, template_key: str) -> None:
        self.conn.execute(delete(build_logs).where(build_logs.c.template_key == template_key))


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{os.fspath(path)}"
