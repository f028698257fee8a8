"""Replication: one row per replica of a version in a region, and where a disk made from a version reads from.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("version_key", sa.String(1024), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("storage_type", sa.String(40), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("bytes_total", sa.BigInteger, nullable=False),
        sa.Column("bytes_done", sa.BigInteger, nullable=False),
        sa.Column("bytes_copied", sa.BigInteger, nullable=False),
        sa.Column("chunks_copied", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("version_key", "region", "idx"),
    )
    op.create_index("ix_replicas_region", "replicas", ["region"])
    with op.batch_alter_table("disk_contents") as batch:
        batch.add_column(sa.Column("source_key", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("replica", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("disk_contents") as batch:
        batch.drop_column("replica")
        batch.drop_column("source_key")
    op.drop_table("replicas")
