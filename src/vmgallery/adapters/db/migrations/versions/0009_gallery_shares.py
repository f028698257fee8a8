"""Who may find a gallery through the consumer views, indexed: `gallery_shares` (kind, target, gallery_key), filled
here from the stored bodies of existing galleries.

Revision ID: 0009
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GALLERY_TYPE = "microsoft.compute/galleries"

resources = sa.table("resources", sa.column("key", sa.String), sa.column("type", sa.String), sa.column("body", sa.JSON))
gallery_shares = sa.table(
    "gallery_shares", sa.column("kind", sa.String), sa.column("target", sa.String), sa.column("gallery_key", sa.String)
)


# Written out here rather than imported: a migration must keep meaning what it meant when it was written.
def _targets(body: dict) -> set[tuple[str, str]]:
    profile = (body.get("properties") or {}).get("sharingProfile") or {}
    permissions = profile.get("permissions") or "Private"
    targets: set[tuple[str, str]] = set()
    if permissions == "Groups":
        for group in profile.get("groups") or []:
            kind = "subscription" if group.get("type") == "Subscriptions" else "tenant"
            targets |= {(kind, str(i).lower()) for i in group.get("ids") or []}
    info = profile.get("communityGalleryInfo") or {}
    if permissions == "Community" and info.get("communityGalleryEnabled") is True:
        targets |= {("community", str(n).lower()) for n in info.get("publicNames") or []}
    return targets


def upgrade() -> None:
    op.create_table(
        "gallery_shares",
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("gallery_key", sa.String(1024), nullable=False),
        sa.PrimaryKeyConstraint("kind", "target", "gallery_key"),
    )
    op.create_index("ix_gallery_shares_gallery_key", "gallery_shares", ["gallery_key"])
    conn = op.get_bind()
    rows = conn.execute(sa.select(resources.c.key, resources.c.body).where(resources.c.type == GALLERY_TYPE))
    for row in rows.all():
        for kind, target in sorted(_targets(row.body)):
            conn.execute(gallery_shares.insert().values(kind=kind, target=target, gallery_key=row.key))


def downgrade() -> None:
    op.drop_index("ix_gallery_shares_gallery_key", "gallery_shares")
    op.drop_table("gallery_shares")
