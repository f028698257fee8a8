"""The activity log on a real SQLite and PostgreSQL: retention pruned on write, a long-running write's end read from
its operation row (a failed one too), visibility narrowed in the query, paging by sequence."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from vmgallery.adapters.db.activity import ActivityEvents, activity_events
from vmgallery.adapters.db.tables import operations
from vmgallery.app.activity import ActivityLog
from vmgallery.domain.activity import parse_filter
from vmgallery.domain.principals import Principal, PrincipalType

DAY = 86400.0
SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups"
ALICE = Principal("aaaaaaaa-0000-0000-0000-000000000001", "tenant-1", PrincipalType.USER, name="alice@example.org")
WINDOW = "eventTimestamp ge '2026-01-01T00:00:00Z' and eventTimestamp le '2027-12-31T00:00:00Z'"
T0 = 1_790_000_000.0  # 2026-09


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_log(db):
    made: list[ActivityLog] = []

    def make(clock, retention_days=90.0) -> ActivityLog:
        made.append(ActivityLog(ActivityEvents(db.engine), None, clock, retention_days))
        return made[-1]

    yield make
    for log in made:
        log.close()


def _write(log: ActivityLog, path: str, at: float, status: int = 200, op: str | None = None) -> None:
    assert log.record(ALICE, "PUT", path, status, str(uuid.uuid4()), op, at)


def test_events_older_than_the_retention_are_pruned(db, make_log):
    clock = Clock(T0)
    log = make_log(clock, retention_days=1)
    _write(log, f"{RG}/old", T0 - 2 * DAY)
    _write(log, f"{RG}/new", T0)  # the first flush of a process prunes (a list flushes first)
    groups = [e["resourceGroupName"] for e in log.list(ALICE, SUB, WINDOW).value]
    assert groups == ["new"]
    clock.now = T0 + 10 * 60
    _write(log, f"{RG}/old2", T0 - 2 * DAY)
    assert len(log.list(ALICE, SUB, WINDOW).value) == 2, "pruned at most once an hour"
    clock.now = T0 + 2 * 3600
    _write(log, f"{RG}/later", clock.now)
    assert [e["resourceGroupName"] for e in log.list(ALICE, SUB, WINDOW).value] == ["later", "new"]


def test_a_long_running_write_ends_as_its_operation_did(db, make_log):
    log = make_log(Clock(T0))
    with db.write() as tx:
        for op_id, status, end in (
            ("op-ok", "Succeeded", T0 + 5),
            ("op-bad", "Failed", T0 + 7),
            ("op-run", "InProgress", None),
        ):
            tx.conn.execute(
                sa.insert(operations).values(
                    id=op_id,
                    resource_key="k",
                    resource_id="k",
                    namespace="Microsoft.Compute",
                    subscription=SUB,
                    location="eastus",
                    action="create",
                    status=status,
                    percent=0,
                    start_time=T0,
                    end_time=end,
                )
            )
    gallery = f"{RG}/rg/providers/Microsoft.Compute/galleries"
    _write(log, f"{gallery}/ok", T0 + 1, 201, "op-ok")
    _write(log, f"{gallery}/bad", T0 + 2, 201, "op-bad")
    _write(log, f"{gallery}/run", T0 + 3, 201, "op-run")
    events = [(e["resourceId"].rsplit("/", 1)[1], e["status"]["value"]) for e in log.list(ALICE, SUB, WINDOW).value]
    assert events == [("bad", "Failed"), ("ok", "Succeeded"), ("run", "Started"), ("bad", "Started"), ("ok", "Started")]
    # An end inside the window counts even when the start is before it (T0 + 6 s onwards).
    late = "eventTimestamp ge '2026-09-21T14:13:26Z' and eventTimestamp le '2027-01-01T00:00:00Z'"
    assert [e["status"]["value"] for e in log.list(ALICE, SUB, late).value] == ["Failed"]


def test_visibility_and_paging_in_the_query(db, make_log):
    store = ActivityEvents(db.engine)
    log = make_log(Clock(T0))
    for i in range(5):
        for rg in ("rg1", "rg10", "rg2"):
            _write(log, f"{RG}/{rg}/providers/Microsoft.Compute/galleries/g{i}", T0 + i)
    log.flush()
    within = frozenset({f"{RG}/rg1".lower()})
    rows = store.events(SUB, parse_filter(WINDOW), within, None, 100)
    assert len(rows) == 5 and {r.resource_group for r, _ in rows} == {"rg1"}, "rg10 is not under rg1"
    seen, before = [], None
    while True:
        page = store.events(SUB, parse_filter(WINDOW), None, before, 4)
        seen += [r.seq for r, _ in page]
        if len(page) < 4:
            break
        before = page[-1][0].seq
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 15
    with db.read() as tx:
        assert tx.conn.execute(sa.select(sa.func.count()).select_from(activity_events)).scalar() == 15


def test_close_writes_what_is_queued(db, make_log):
    first = make_log(Clock(T0))
    _write(first, f"{RG}/queued", T0)
    first.close()
    with db.read() as tx:
        assert tx.conn.execute(sa.select(activity_events.c.resource_group)).scalars().all() == ["queued"]
