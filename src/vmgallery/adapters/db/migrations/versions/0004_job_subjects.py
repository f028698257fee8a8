"""One job model: every job names its subject; only operation jobs name an operation.

Before, a replica's copy job carried a made-up operation id ("replica:" + sha1 of the replica) in
`jobs.operation_id`. Now `operation_id` is NULL for such background jobs and `subject_key` says what a job works on:
an operation job's resource, or a background job's replica (`<version key>/replicas/<region>/<index>`). A subject
has at most one live (queued or running) background job; should an older database hold two for one replica, the
newest is kept and the others end as done (they would have copied the same chunks).

Revision ID: 0004
Revises: 0003
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIVE_BACKGROUND_JOB = sa.text("operation_id IS NULL AND state IN ('queued', 'running')")

jobs = sa.table(
    "jobs",
    sa.column("id", sa.Integer),
    sa.column("operation_id", sa.String),
    sa.column("subject_key", sa.String),
    sa.column("kind", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("state", sa.String),
)
operations = sa.table("operations", sa.column("id", sa.String), sa.column("resource_key", sa.String))


def _replica_subject(payload: dict) -> str:
    # Written out here rather than imported: a migration must keep meaning what it meant when it was written.
    return f"{payload['version']}/replicas/{payload['region']}/{payload['index']}"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("subject_key", sa.String(1200), nullable=True))
        batch.alter_column("operation_id", existing_type=sa.String(64), nullable=True)
    conn = op.get_bind()
    conn.execute(
        jobs.update()
        .where(jobs.c.operation_id.not_like("replica:%"))
        .values(
            subject_key=sa.select(operations.c.resource_key)
            .where(operations.c.id == jobs.c.operation_id)
            .scalar_subquery()
        )
    )
    live: dict[str, int] = {}
    rows = conn.execute(
        sa.select(jobs.c.id, jobs.c.payload, jobs.c.state)
        .where(jobs.c.operation_id.like("replica:%"))
        .order_by(jobs.c.id.desc())
    ).all()
    for row in rows:
        subject = _replica_subject(row.payload)
        values = {"operation_id": None, "subject_key": subject}
        if row.state in ("queued", "running"):
            if subject in live:
                values["state"] = "done"
            else:
                live[subject] = row.id
        conn.execute(jobs.update().where(jobs.c.id == row.id).values(**values))
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("subject_key", existing_type=sa.String(1200), nullable=False)
        batch.create_index("ix_jobs_subject_key", ["subject_key"])
        batch.create_index(
            "ux_jobs_live_background",
            ["subject_key"],
            unique=True,
            sqlite_where=LIVE_BACKGROUND_JOB,
            postgresql_where=LIVE_BACKGROUND_JOB,
        )


def downgrade() -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(jobs.c.id, jobs.c.payload).where(jobs.c.operation_id.is_(None))).all():
        p = row.payload
        fake = "replica:" + hashlib.sha1(f"{p['version']}|{p['region']}|{p['index']}".encode()).hexdigest()
        conn.execute(jobs.update().where(jobs.c.id == row.id).values(operation_id=fake))
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ux_jobs_live_background")
        batch.drop_index("ix_jobs_subject_key")
        batch.alter_column("operation_id", existing_type=sa.String(64), nullable=False)
        batch.drop_column("subject_key")
