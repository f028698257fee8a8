"""The directory's rows (app.identity_ports.DirectoryStore) over the same database and transactions as the rest of
the metadata: `Database.write()`/`read()` give the connection, this module the queries."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator

from sqlalchemy import Connection, delete, exists, insert, select, update

from ...app.identity_ports import ApplicationRow, CallerRow, ObjectRow, SubscriptionRow, TenantRow
from ...domain.principals import PrincipalType
from ..epoch import Epoch
from .store import Database
from .tables import applications, directory_objects, group_members, resources, subscriptions, tenants


def _object(row) -> ObjectRow:
    return ObjectRow(
        row.object_id, row.tenant_id, PrincipalType(row.type), row.name, row.app_id, row.secret_hash, row.created_at
    )


def _application(row) -> ApplicationRow:
    return ApplicationRow(
        row.app_id, row.home_tenant_id, row.name, bool(row.multi_tenant), row.secret_hash, row.created_at
    )


def _subscription(row) -> SubscriptionRow:
    return SubscriptionRow(row.subscription_id, row.tenant_id, row.name, row.state, row.created_at)


class DirectoryTx:
    def __init__(self, conn: Connection):
        self.conn = conn

    # -- tenants -------------------------------------------------------------------------------------------------
    def tenant(self, tenant_id: str) -> TenantRow | None:
        row = self.conn.execute(select(tenants).where(tenants.c.tenant_id == tenant_id)).first()
        return TenantRow(row.tenant_id, row.name, row.created_at) if row else None

    def tenants(self) -> list[TenantRow]:
        rows = self.conn.execute(select(tenants).order_by(tenants.c.created_at, tenants.c.tenant_id))
        return [TenantRow(r.tenant_id, r.name, r.created_at) for r in rows]

    def add_tenant(self, row: TenantRow) -> None:
        self.conn.execute(insert(tenants).values(tenant_id=row.tenant_id, name=row.name, created_at=row.created_at))

    def delete_tenant(self, tenant_id: str) -> None:
        homed = self.conn.execute(select(applications.c.app_id).where(applications.c.home_tenant_id == tenant_id))
        for app_id in [r.app_id for r in homed]:
            self.delete_application(app_id)
        ids = select(directory_objects.c.object_id).where(directory_objects.c.tenant_id == tenant_id)
        self.conn.execute(
            delete(group_members).where(group_members.c.group_id.in_(ids) | group_members.c.member_id.in_(ids))
        )
        self.conn.execute(delete(directory_objects).where(directory_objects.c.tenant_id == tenant_id))
        self.conn.execute(delete(tenants).where(tenants.c.tenant_id == tenant_id))

    # -- subscriptions -------------------------------------------------------------------------------------------
    def subscription(self, subscription_id: str) -> SubscriptionRow | None:
        q = select(subscriptions).where(subscriptions.c.subscription_id == subscription_id)
        row = self.conn.execute(q).first()
        return _subscription(row) if row else None

    def subscriptions(self, tenant_id: str | None = None) -> list[SubscriptionRow]:
        q = select(subscriptions).order_by(subscriptions.c.created_at, subscriptions.c.subscription_id)
        if tenant_id is not None:
            q = q.where(subscriptions.c.tenant_id == tenant_id)
        return [_subscription(r) for r in self.conn.execute(q)]

    def add_subscription(self, row: SubscriptionRow) -> None:
        self.conn.execute(
            insert(subscriptions).values(
                subscription_id=row.subscription_id,
                tenant_id=row.tenant_id,
                name=row.name,
                state=row.state,
                created_at=row.created_at,
            )
        )

    def delete_subscription(self, subscription_id: str) -> None:
        self.conn.execute(delete(subscriptions).where(subscriptions.c.subscription_id == subscription_id))

    def subscription_in_use(self, subscription_id: str) -> bool:
        return bool(
            self.conn.execute(select(exists().where(resources.c.subscription == subscription_id.lower()))).scalar()
        )

    # -- objects -------------------------------------------------------------------------------------------------
    def object(self, object_id: str) -> ObjectRow | None:
        row = self.conn.execute(select(directory_objects).where(directory_objects.c.object_id == object_id)).first()
        return _object(row) if row else None

    def objects(self, tenant_id: str | None, type: PrincipalType | None = None) -> list[ObjectRow]:
        q = select(directory_objects).order_by(directory_objects.c.created_at, directory_objects.c.object_id)
        if tenant_id is not None:
            q = q.where(directory_objects.c.tenant_id == tenant_id)
        if type is not None:
            q = q.where(directory_objects.c.type == type.value)
        return [_object(r) for r in self.conn.execute(q)]

    def add_object(self, row: ObjectRow) -> None:
        self.conn.execute(
            insert(directory_objects).values(
                object_id=row.object_id,
                tenant_id=row.tenant_id,
                type=row.type.value,
                name=row.name,
                upn_key=row.name.lower() if row.type is PrincipalType.USER else None,
                app_id=row.app_id,
                secret_hash=row.secret_hash,
                created_at=row.created_at,
            )
        )

    def delete_object(self, object_id: str) -> None:
        self.conn.execute(
            delete(group_members).where(
                (group_members.c.group_id == object_id) | (group_members.c.member_id == object_id)
            )
        )
        self.conn.execute(delete(directory_objects).where(directory_objects.c.object_id == object_id))

    def user_by_upn(self, upn_key: str) -> ObjectRow | None:
        row = self.conn.execute(select(directory_objects).where(directory_objects.c.upn_key == upn_key)).first()
        return _object(row) if row else None

    def service_principal(self, tenant_id: str, app_id: str) -> ObjectRow | None:
        q = select(directory_objects).where(
            directory_objects.c.tenant_id == tenant_id, directory_objects.c.app_id == app_id
        )
        row = self.conn.execute(q).first()
        return _object(row) if row else None

    def service_principals_of(self, app_id: str) -> list[ObjectRow]:
        q = select(directory_objects).where(directory_objects.c.app_id == app_id)
        return [_object(r) for r in self.conn.execute(q)]

    # -- applications --------------------------------------------------------------------------------------------
    def application(self, app_id: str) -> ApplicationRow | None:
        row = self.conn.execute(select(applications).where(applications.c.app_id == app_id)).first()
        return _application(row) if row else None

    def add_application(self, row: ApplicationRow) -> None:
        self.conn.execute(
            insert(applications).values(
                app_id=row.app_id,
                home_tenant_id=row.home_tenant_id,
                name=row.name,
                multi_tenant=row.multi_tenant,
                secret_hash=row.secret_hash,
                created_at=row.created_at,
            )
        )

    def set_application_secret(self, app_id: str, secret_hash: str) -> None:
        self.conn.execute(update(applications).where(applications.c.app_id == app_id).values(secret_hash=secret_hash))

    def delete_application(self, app_id: str) -> None:
        for sp in self.service_principals_of(app_id):
            self.delete_object(sp.object_id)
        self.conn.execute(delete(applications).where(applications.c.app_id == app_id))

    # -- membership ----------------------------------------------------------------------------------------------
    def add_member(self, group_id: str, member_id: str) -> None:
        self.conn.execute(insert(group_members).values(group_id=group_id, member_id=member_id))

    def remove_member(self, group_id: str, member_id: str) -> bool:
        result = self.conn.execute(
            delete(group_members).where(group_members.c.group_id == group_id, group_members.c.member_id == member_id)
        )
        return result.rowcount > 0

    def members(self, group_id: str) -> list[str]:
        q = select(group_members.c.member_id).where(group_members.c.group_id == group_id)
        return sorted(r.member_id for r in self.conn.execute(q))

    def groups_containing(self, member_ids: Collection[str]) -> set[str]:
        if not member_ids:
            return set()
        q = select(group_members.c.group_id).where(group_members.c.member_id.in_(list(member_ids)))
        return {r.group_id for r in self.conn.execute(q)}


# The caller's object, its groups (a recursive walk up group_members; UNION keeps each group once, so a cycle ends
# it) and the subscription, in one statement: tagged rows 'o', 'g' and 's'.
_CALLER = """
WITH RECURSIVE up(id) AS (
  SELECT CAST(? AS VARCHAR(36))
  UNION
  SELECT m.group_id FROM group_members m JOIN up ON m.member_id = up.id
)
SELECT 'o', object_id, tenant_id, type, name, app_id, secret_hash, created_at FROM directory_objects
  WHERE object_id = ?
UNION ALL SELECT 'g', id, NULL, NULL, NULL, NULL, NULL, NULL FROM up WHERE id <> ?"""
_CALLER_IN_SUBSCRIPTION = (
    _CALLER
    + """
UNION ALL SELECT 's', subscription_id, NULL, NULL, NULL, NULL, NULL, NULL FROM subscriptions
  WHERE subscription_id = ?"""
)


class DirectoryStore:
    """`epoch` (adapters/epoch.py) moves after every committed write: the authority reuses a principal it read only
    while it stands."""

    def __init__(self, db: Database, epoch: Epoch | None = None):
        self.db = db
        self._epoch = epoch or Epoch(None)
        self._caller = db.lookup.marks(_CALLER)
        self._caller_in_subscription = db.lookup.marks(_CALLER_IN_SUBSCRIPTION)

    def caller(self, object_id: str, subscription_id: str | None) -> CallerRow:
        if subscription_id is None:
            rows = self.db.lookup.select(self._caller, [object_id] * 3)
        else:
            rows = self.db.lookup.select(self._caller_in_subscription, [object_id] * 3 + [subscription_id])
        found: ObjectRow | None = None
        groups: set[str] = set()
        subscription = False
        for tag, *values in rows:
            if tag == "o":
                object_id, tenant_id, type, name, app_id, secret_hash, created_at = values
                found = ObjectRow(object_id, tenant_id, PrincipalType(type), name, app_id, secret_hash, created_at)
            elif tag == "g":
                groups.add(values[0])
            else:
                subscription = True
        return CallerRow(found, frozenset(groups), subscription)

    @contextlib.contextmanager
    def read(self) -> Iterator[DirectoryTx]:
        with self.db.read() as tx:
            yield DirectoryTx(tx.conn)

    @contextlib.contextmanager
    def write(self) -> Iterator[DirectoryTx]:
        with self.db.write() as tx:
            yield DirectoryTx(tx.conn)
        self._epoch.bump()

    def epoch(self) -> tuple[int, int, int]:
        return self._epoch.current()
