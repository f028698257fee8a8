"""The activity log's table and its queries (app/activity.py's `ActivityStore`).

`activity_events`: one row per write, newest last (`seq`). A list reads one subscription's rows in a time range
newest first (`ix_activity_events_subscription`), joined to `operations` for the end of a long-running write; pruning
deletes by time (`ix_activity_events_time`). `resource_key` (the lower-cased resource id) is what visibility filters
on: a readable scope's rows are the key itself and the keys under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Engine

from ...app.activity import EventRow, OperationEnd
from ...domain.activity import Filter
from . import placeholders
from .tables import metadata, operations

activity_events = Table(
    "activity_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("time", Float, nullable=False),
    Column("subscription", String(100), nullable=False),
    Column("resource_key", String(1024), nullable=False),
    Column("resource_id", Text, nullable=False),
    Column("resource_group", String(100), nullable=True),
    Column("provider", String(200), nullable=False),
    Column("operation", String(400), nullable=False),
    Column("status", String(20), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("caller", String(256), nullable=False),
    Column("caller_id", String(64), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("correlation_id", String(256), nullable=False),
    Column("operation_id", String(64), nullable=True),
    Index("ix_activity_events_subscription", "subscription", "time"),
    Index("ix_activity_events_time", "time"),
)

_FIELDS = [c for c in EventRow.__dataclass_fields__]
_COLUMNS = [f for f in _FIELDS if f != "seq"]
_QUERY = select(
    activity_events, operations.c.status.label("op_status"), operations.c.end_time.label("op_end")
).outerjoin(operations, operations.c.id == activity_events.c.operation_id)


class ActivityEvents:
    def __init__(self, engine: Engine):
        self.engine = engine
        mark = placeholders.mark(engine)
        self._insert = (
            f"INSERT INTO activity_events ({', '.join(_COLUMNS)}) VALUES ({', '.join([mark] * len(_COLUMNS))})"
        )

    def insert_events(self, rows: Sequence[EventRow]) -> None:
        # At the driver, without SQLAlchemy's statement machinery: it runs for every write the API takes.
        values = [tuple(getattr(row, f) for f in _COLUMNS) for row in rows]
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self._insert, values)

    def events(
        self, subscription: str, where: Filter, within: frozenset[str] | None, before_seq: int | None, limit: int
    ) -> Sequence[tuple[EventRow, OperationEnd | None]]:
        t = activity_events.c
        in_range = and_(t.time >= where.start, t.time <= where.end)
        ended = and_(operations.c.end_time >= where.start, operations.c.end_time <= where.end)
        conds: list[Any] = [t.subscription == subscription, or_(in_range, ended)]
        if where.end != float("inf"):
            conds.append(t.time <= where.end)  # a write ends after it starts
        if where.resource_group is not None:
            conds.append(func.lower(t.resource_group) == where.resource_group.lower())
        if where.resource_id is not None:
            conds.append(t.resource_key == where.resource_id.rstrip("/").lower())
        if where.provider is not None:
            conds.append(func.lower(t.provider) == where.provider.lower())
        if where.correlation_id is not None:
            conds.append(t.correlation_id == where.correlation_id)
        if where.caller is not None:
            conds.append(or_(func.lower(t.caller) == where.caller.lower(), t.caller_id == where.caller.lower()))
        if within is not None:
            conds.append(
                or_(*(or_(t.resource_key == s, t.resource_key.startswith(s + "/", autoescape=True)) for s in within))
            )
        if before_seq is not None:
            conds.append(t.seq < before_seq)
        query = _QUERY.where(*conds).order_by(t.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            (
                EventRow(**{f: getattr(r, f) for f in _FIELDS}),
                OperationEnd(r.op_status, r.op_end) if r.op_end is not None else None,
            )
            for r in rows
        ]

    def prune_events(self, before: float) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(activity_events).where(activity_events.c.time < before)).rowcount
