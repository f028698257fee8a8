"""Role assignments and custom role definitions over SQLAlchemy Core (app/rbac_store.py's `RoleTransaction`)."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, create_engine, delete, func, insert, select, update
from sqlalchemy.engine import Engine

from ...app.rbac_store import AssignmentRow, CustomRoleRow, GrantRow
from ..epoch import Epoch
from . import placeholders
from .role_tables import role_assignments, role_definitions

REMEMBERED_CHECKS = 4096
REMEMBER_SECONDS = 30.0  # a bound for the case a process died between a commit and its epoch bump


def _assignment(row: Any) -> AssignmentRow:
    return AssignmentRow(**{c: getattr(row, c) for c in AssignmentRow.__dataclass_fields__})


def _custom(row: Any) -> CustomRoleRow:
    return CustomRoleRow(**{c: getattr(row, c) for c in CustomRoleRow.__dataclass_fields__})


_GRANT = select(role_assignments.c.scope_key, role_assignments.c.role_guid, role_definitions.c.body).outerjoin(
    role_definitions, role_definitions.c.guid == role_assignments.c.role_guid
)


class GrantLookup:
    """The check's one query, on a pooled driver connection without SQLAlchemy's statement machinery: it runs on
    every request of a caller that is not the admin, and a single SELECT needs no transaction of its own. On
    PostgreSQL it has its own small pool of autocommit connections, not pinged at checkout (no BEGIN, ROLLBACK or
    ping round trips); a connection found dead is dropped and the query tried once more on a fresh one."""

    def __init__(self, engine: Engine):
        if engine.dialect.name == "postgresql":
            engine = create_engine(
                engine.url, pool_size=5, max_overflow=10, pool_pre_ping=False, isolation_level="AUTOCOMMIT"
            )
        self.engine = engine
        self.mark = placeholders.mark(engine)
        self._sql: dict[tuple[int, int], str] = {}
        self.epoch: Epoch | None = None  # set by the wiring: checks are then remembered
        self._remembered: OrderedDict[tuple[frozenset[str], tuple[str, ...]], tuple[Any, float, tuple[GrantRow, ...]]]
        self._remembered = OrderedDict()
        self._lock = threading.Lock()

    def _statement(self, scopes: int, ids: int) -> str:
        sql = self._sql.get((scopes, ids))
        if sql is None:
            sql = (
                "SELECT a.scope_key, a.role_guid, d.body FROM role_assignments a "
                "LEFT OUTER JOIN role_definitions d ON d.guid = a.role_guid "
                f"WHERE a.scope_key IN ({', '.join([self.mark] * scopes)}) "
                f"AND a.principal_id IN ({', '.join([self.mark] * ids)})"
            )
            self._sql[(scopes, ids)] = sql
        return sql

    def grants_along(self, principal_ids: Sequence[str], scope_keys: Sequence[str]) -> list[GrantRow]:
        """With an `epoch`, the rows are remembered (REMEMBERED_CHECKS, at most REMEMBER_SECONDS) while it stands:
        every committed write of role assignments or definitions moves it (`changed`), in any process."""
        if self.epoch is None:
            return self._grants_along(principal_ids, scope_keys)
        key = (frozenset(principal_ids), tuple(scope_keys))
        stamp = self.epoch.current()  # before the read: a write committed during it moves the epoch
        with self._lock:
            hit = self._remembered.get(key)
            if hit is not None:
                self._remembered.move_to_end(key)
        if hit is not None and hit[0] == stamp and time.monotonic() - hit[1] <= REMEMBER_SECONDS:
            return list(hit[2])
        rows = self._grants_along(principal_ids, scope_keys)
        with self._lock:
            self._remembered[key] = (stamp, time.monotonic(), tuple(rows))
            if len(self._remembered) > REMEMBERED_CHECKS:
                self._remembered.popitem(last=False)
        return rows

    def changed(self) -> None:
        """Role assignments or definitions changed (called after the commit)."""
        if self.epoch is not None:
            self.epoch.bump()

    def _grants_along(self, principal_ids: Sequence[str], scope_keys: Sequence[str]) -> list[GrantRow]:
        sql = self._statement(len(scope_keys), len(principal_ids))
        rows = self.select(sql, [*scope_keys, *principal_ids])
        return [GrantRow(key, guid, json.loads(body) if isinstance(body, str) else body) for key, guid, body in rows]

    def marks(self, sql: str) -> str:
        """`sql` written with `?` placeholders, in the driver's own style."""
        return placeholders.for_driver(sql, self.mark == "?")

    def select(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """The rows of one SELECT (placeholders in the driver's style), as above."""
        for attempt in (1, 2):
            conn = self.engine.raw_connection()
            try:
                cursor = conn.cursor()
                cursor.execute(sql, params)
                rows = cursor.fetchall()
                cursor.close()
                break
            except self.engine.dialect.loaded_dbapi.OperationalError:
                conn.invalidate()
                if attempt == 2:
                    raise
            finally:
                conn.close()  # back to the pool (a no-op for an invalidated one)
        return list(rows)

    def dispose(self) -> None:
        self.engine.dispose()


class RoleQueries:
    conn: Connection

    def grants_along(self, principal_ids: Sequence[str], scope_keys: Sequence[str]) -> list[GrantRow]:
        rows = self.conn.execute(
            _GRANT.where(
                role_assignments.c.scope_key.in_(list(scope_keys)),
                role_assignments.c.principal_id.in_(list(principal_ids)),
            )
        )
        return [GrantRow(r.scope_key, r.role_guid, r.body) for r in rows]

    def grants_of(self, principal_ids: Sequence[str]) -> list[GrantRow]:
        rows = self.conn.execute(_GRANT.where(role_assignments.c.principal_id.in_(list(principal_ids))))
        return [GrantRow(r.scope_key, r.role_guid, r.body) for r in rows]

    def assignments(self, *, subscription: str | None = None, principal_id: str | None = None) -> list[AssignmentRow]:
        q = select(role_assignments)
        if subscription is not None:
            q = q.where(role_assignments.c.subscription == subscription)
        if principal_id is not None:
            q = q.where(role_assignments.c.principal_id == principal_id)
        rows = self.conn.execute(q.order_by(role_assignments.c.created_at, role_assignments.c.name))
        return [_assignment(r) for r in rows]

    def get_assignment(self, name: str) -> AssignmentRow | None:
        row = self.conn.execute(select(role_assignments).where(role_assignments.c.name == name)).first()
        return _assignment(row) if row else None

    def find_assignment(self, scope_key: str, principal_id: str, role_guid: str) -> AssignmentRow | None:
        row = self.conn.execute(
            select(role_assignments).where(
                role_assignments.c.scope_key == scope_key,
                role_assignments.c.principal_id == principal_id,
                role_assignments.c.role_guid == role_guid,
            )
        ).first()
        return _assignment(row) if row else None

    def insert_assignment(self, row: AssignmentRow) -> None:
        self.conn.execute(insert(role_assignments).values(**row.__dict__))

    def delete_assignment(self, name: str) -> None:
        self.conn.execute(delete(role_assignments).where(role_assignments.c.name == name))

    def count_role_assignments(self, role_guid: str) -> int:
        return self.conn.execute(
            select(func.count()).select_from(role_assignments).where(role_assignments.c.role_guid == role_guid)
        ).scalar_one()

    def custom_roles(self, subscription: str | None = None) -> list[CustomRoleRow]:
        q = select(role_definitions)
        if subscription is not None:
            q = q.where(role_definitions.c.subscription == subscription)
        return [_custom(r) for r in self.conn.execute(q.order_by(role_definitions.c.created_at))]

    def get_custom_role(self, guid: str) -> CustomRoleRow | None:
        row = self.conn.execute(select(role_definitions).where(role_definitions.c.guid == guid)).first()
        return _custom(row) if row else None

    def find_custom_role(self, subscription: str, name_key: str) -> CustomRoleRow | None:
        row = self.conn.execute(
            select(role_definitions).where(
                role_definitions.c.subscription == subscription, role_definitions.c.name_key == name_key
            )
        ).first()
        return _custom(row) if row else None

    def put_custom_role(self, row: CustomRoleRow) -> None:
        values = {**row.__dict__, "name_key": str(row.body.get("roleName", "")).lower()}
        if self.get_custom_role(row.guid) is None:
            self.conn.execute(insert(role_definitions).values(**values))
        else:
            values.pop("guid")
            values.pop("created_at")
            values.pop("created_by")
            self.conn.execute(update(role_definitions).where(role_definitions.c.guid == row.guid).values(**values))

    def delete_custom_role(self, guid: str) -> None:
        self.conn.execute(delete(role_definitions).where(role_definitions.c.guid == guid))
