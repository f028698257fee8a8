"""The directory: tenants, subscriptions, users, groups, service principals, applications, group memberships.

The default tenant is made, with the bootstrap subscription (the CLI's default) and every subscription that already
holds resources, so what existed before keeps belonging to a tenant.

Revision ID: 0006
Revises: 0005
"""

import re
import time

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Written out here rather than imported: a migration must keep meaning what it meant when it was written.
DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000001"
BOOTSTRAP_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def upgrade() -> None:
    tenants = op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    subscriptions = op.create_table(
        "subscriptions",
        sa.Column("subscription_id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_subscriptions_tenant_id", "subscriptions", ["tenant_id"])
    op.create_table(
        "directory_objects",
        sa.Column("object_id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("upn_key", sa.String(256), nullable=True, unique=True),
        sa.Column("app_id", sa.String(36), nullable=True),
        sa.Column("secret_hash", sa.String(256), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_directory_objects_app_id", "directory_objects", ["app_id"])
    op.create_index("ix_directory_objects_tenant", "directory_objects", ["tenant_id", "type", "created_at"])
    op.create_index("ux_directory_objects_sp", "directory_objects", ["tenant_id", "app_id"], unique=True)
    op.create_table(
        "applications",
        sa.Column("app_id", sa.String(36), primary_key=True),
        sa.Column("home_tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("multi_tenant", sa.Boolean, nullable=False),
        sa.Column("secret_hash", sa.String(256), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_applications_home_tenant_id", "applications", ["home_tenant_id"])
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("member_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "member_id"),
    )
    op.create_index("ix_group_members_member_id", "group_members", ["member_id"])

    now = time.time()
    conn = op.get_bind()
    conn.execute(tenants.insert().values(tenant_id=DEFAULT_TENANT_ID, name="Default Directory", created_at=now))
    resources = sa.table("resources", sa.column("subscription", sa.String))
    used = {row[0] for row in conn.execute(sa.select(resources.c.subscription).distinct())}
    for sub in sorted({BOOTSTRAP_SUBSCRIPTION_ID} | {s for s in used if s and GUID.fullmatch(s)}):
        name = "Bootstrap subscription" if sub == BOOTSTRAP_SUBSCRIPTION_ID else f"Subscription {sub[:8]}"
        conn.execute(
            subscriptions.insert().values(
                subscription_id=sub, tenant_id=DEFAULT_TENANT_ID, name=name, state="Enabled", created_at=now
            )
        )


def downgrade() -> None:
    op.drop_table("group_members")
    op.drop_table("applications")
    op.drop_table("directory_objects")
    op.drop_table("subscriptions")
    op.drop_table("tenants")
