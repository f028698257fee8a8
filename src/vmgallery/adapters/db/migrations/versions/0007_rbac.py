"""Azure RBAC: role assignments at every scope and custom role definitions (adapters/db/role_tables.py).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "role_assignments",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("scope_key", sa.String(1024), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("subscription", sa.String(100), nullable=True),
        sa.Column("principal_id", sa.String(64), nullable=False),
        sa.Column("principal_type", sa.String(40), nullable=False),
        sa.Column("role_guid", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_role_assignments_scope", "role_assignments", ["scope_key", "principal_id"])
    op.create_index("ix_role_assignments_principal", "role_assignments", ["principal_id"])
    op.create_index("ix_role_assignments_subscription", "role_assignments", ["subscription"])
    op.create_index(
        "ux_role_assignments_triple", "role_assignments", ["scope_key", "principal_id", "role_guid"], unique=True
    )
    op.create_table(
        "role_definitions",
        sa.Column("guid", sa.String(64), primary_key=True),
        sa.Column("subscription", sa.String(100), nullable=False),
        sa.Column("name_key", sa.String(512), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ux_role_definitions_name", "role_definitions", ["subscription", "name_key"], unique=True)


def downgrade() -> None:
    op.drop_table("role_definitions")
    op.drop_table("role_assignments")
