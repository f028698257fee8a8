"""`latest` from one indexed query, and an index for counting the disks made from a version.

Versions get `resources.latest_rank` (a text that sorts like the version number; NULL while a version may not be
latest: not Succeeded, or excluded from latest)
and `latest_exclusions` (the regions a version's targetRegions exclude from latest), filled here from the stored
bodies of existing versions. `disk_contents.source_key` gets the index its counts need.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

VERSION_TYPE = "microsoft.compute/galleries/images/versions"
RANK = sa.String(100).with_variant(sa.String(100, collation="C"), "postgresql")

resources = sa.table(
    "resources",
    sa.column("key", sa.String),
    sa.column("type", sa.String),
    sa.column("body", sa.JSON),
    sa.column("latest_rank", sa.String),
)
latest_exclusions = sa.table("latest_exclusions", sa.column("version_key", sa.String), sa.column("region", sa.String))


# Written out here rather than imported: a migration must keep meaning what it meant when it was written.
def _rank(name: str) -> str:
    major, minor, patch = (int(part) for part in name.split("."))
    return f"{major:010d}.{minor:010d}.{patch:010d}/{name}"


def _excluded_regions(profile: dict) -> set[str]:
    return {
        "".join(r["name"].split()).lower()
        for r in profile.get("targetRegions") or []
        if isinstance(r, dict) and isinstance(r.get("name"), str) and r.get("excludeFromLatest") is True
    }


def upgrade() -> None:
    op.add_column("resources", sa.Column("latest_rank", RANK, nullable=True))
    op.create_index("ix_resources_latest", "resources", ["parent_key", "type", "latest_rank"])
    op.create_table(
        "latest_exclusions",
        sa.Column("version_key", sa.String(1024), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("version_key", "region"),
    )
    op.create_index("ix_disk_contents_source_key", "disk_contents", ["source_key"])
    conn = op.get_bind()
    rows = conn.execute(sa.select(resources.c.key, resources.c.body).where(resources.c.type == VERSION_TYPE))
    for row in rows.all():
        props = row.body.get("properties") or {}
        profile = props.get("publishingProfile") or {}
        if props.get("provisioningState") == "Succeeded" and profile.get("excludeFromLatest") is not True:
            rank = _rank(row.key.rsplit("/", 1)[1])
            conn.execute(resources.update().where(resources.c.key == row.key).values(latest_rank=rank))
        for region in sorted(_excluded_regions(profile)):
            conn.execute(latest_exclusions.insert().values(version_key=row.key, region=region))


def downgrade() -> None:
    op.drop_index("ix_disk_contents_source_key", "disk_contents")
    op.drop_table("latest_exclusions")
    op.drop_index("ix_resources_latest", "resources")
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("latest_rank")
