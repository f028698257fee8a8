"""Control plane: resources, operations, jobs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(1024), nullable=False, unique=True),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("parent_key", sa.String(1024), nullable=False),
        sa.Column("subscription", sa.String(100), nullable=False),
        sa.Column("group_key", sa.String(400), nullable=True),
        sa.Column("location", sa.String(100), nullable=True),
        sa.Column("natural_key", sa.String(400), nullable=True),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_resources_parent", "resources", ["parent_key", "type", "seq"])
    op.create_index("ix_resources_scope", "resources", ["subscription", "type", "seq"])
    op.create_index("ix_resources_group", "resources", ["group_key", "type", "seq"])
    op.create_index("ix_resources_quota", "resources", ["subscription", "location", "type"])
    op.create_index("ux_resources_natural", "resources", ["parent_key", "type", "natural_key"], unique=True)

    op.create_table(
        "operations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("resource_key", sa.String(1024), nullable=False, index=True),
        sa.Column("resource_id", sa.Text, nullable=False),
        sa.Column("namespace", sa.String(100), nullable=False),
        sa.Column("subscription", sa.String(100), nullable=False),
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("percent", sa.Integer, nullable=False),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("prior_body", sa.JSON, nullable=True),
        sa.Column("start_time", sa.Float, nullable=False),
        sa.Column("end_time", sa.Float, nullable=True),
    )

    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("operation_id", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON, nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_jobs_ready", "jobs", ["state", "not_before"])


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("operations")
    op.drop_table("resources")
