"""The activity log: one row per write through the ARM API (adapters/db/activity.py).

Revision ID: 0010
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("subscription", sa.String(100), nullable=False),
        sa.Column("resource_key", sa.String(1024), nullable=False),
        sa.Column("resource_id", sa.Text, nullable=False),
        sa.Column("resource_group", sa.String(100), nullable=True),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("operation", sa.String(400), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("caller", sa.String(256), nullable=False),
        sa.Column("caller_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(256), nullable=False),
        sa.Column("operation_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_activity_events_subscription", "activity_events", ["subscription", "time"])
    op.create_index("ix_activity_events_time", "activity_events", ["time"])


def downgrade() -> None:
    op.drop_table("activity_events")
