"""Disk bytes: manifests, which resources use them, uploads in progress, SAS grants, operation results.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manifests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("chunk_size", sa.Integer, nullable=False),
        sa.Column("chunks", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "disk_contents",
        sa.Column("resource_key", sa.String(1024), nullable=False),
        sa.Column("slot", sa.String(40), nullable=False),
        sa.Column("manifest_id", sa.String(64), sa.ForeignKey("manifests.id"), nullable=False),
        sa.PrimaryKeyConstraint("resource_key", "slot"),
    )
    op.create_index("ix_disk_contents_manifest_id", "disk_contents", ["manifest_id"])
    op.create_table(
        "upload_chunks",
        sa.Column("disk_key", sa.String(1024), nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("disk_key", "idx"),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("resource_key", sa.String(1024), nullable=False),
        sa.Column("access", sa.String(10), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_grants_resource_key", "grants", ["resource_key"])
    op.add_column("operations", sa.Column("result", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("operations", "result")
    op.drop_table("grants")
    op.drop_table("upload_chunks")
    op.drop_table("disk_contents")
    op.drop_table("manifests")
