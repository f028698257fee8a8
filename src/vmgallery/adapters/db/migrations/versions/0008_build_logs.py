"""Image Builder: the live customization log of each image template's latest run.

Revision ID: 0008
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_logs",
        sa.Column("template_key", sa.String(1024), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("template_key", "seq"),
    )


def downgrade() -> None:
    op.drop_table("build_logs")
