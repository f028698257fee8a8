"""Image definitions' natural keys escape `|` and `\\` inside publisher, offer and sku (domain.definitions.natural_key):
rows whose parts hold either get their key again; the column grows to hold a key of escaped parts.

Revision ID: 0011
Revises: 0010
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DEFINITION_TYPE = "microsoft.compute/galleries/images"


def natural_key(body: dict) -> str:
    """domain.definitions.natural_key as of this migration (frozen here: a later change there must not alter it)."""
    ident = body["properties"]["identifier"]
    return "|".join(ident[k].lower().replace("\\", "\\\\").replace("|", "\\|") for k in ("publisher", "offer", "sku"))


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":  # SQLite does not enforce a VARCHAR's length (and would copy the table)
        op.alter_column("resources", "natural_key", type_=sa.String(600), existing_type=sa.String(400))
    rows = conn.execute(
        sa.text(
            "SELECT key, body FROM resources WHERE type = :type AND natural_key IS NOT NULL"
            " AND (natural_key LIKE '%|%|%|%' OR natural_key LIKE '%\\%' ESCAPE '!')"
        ),
        {"type": DEFINITION_TYPE},
    ).all()
    for key, body in rows:
        body = json.loads(body) if isinstance(body, str) else body
        conn.execute(
            sa.text("UPDATE resources SET natural_key = :nk WHERE key = :key"), {"nk": natural_key(body), "key": key}
        )


def downgrade() -> None:
    pass  # an escaped key stays unique under the old reading too
