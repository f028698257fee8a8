"""The metadata schema. Alembic migrations under `migrations/` create and evolve exactly these tables.

- `resources`: every ARM resource; `body` (the ARM JSON) is the record of truth, the other columns are lower-cased
  lookup keys. `seq` grows with every insert, which is what makes list paging stable while items are added.
- `operations`: what `Azure-AsyncOperation` URLs report on.
- `jobs`: work claimed by workers with a lease, so any worker can finish what another started. An operation job
  finishes the operation `operation_id`; a background job (a replica's copy) has none. `subject_key` is what either
  works on: the operation's resource, or the replica (`<version key>/replicas/<region>/<index>`). A subject has at
  most one live background job, so a replica has one copier at a time.
- `manifests`, `disk_contents`, `upload_chunks`: the bytes of disks (docs/storage-format.md).
- `replicas`: each replica of a version in a region and how far its copy is (the replication engine's state).
- `latest_exclusions` and `resources.latest_rank`: what resolving `latest` needs, kept by every write of a version
  so one indexed query finds it. `latest_rank` is `domain.versions.latest_rank` of a version that may be latest (NULL
  for other resources and for versions not Succeeded or excluded from latest); `latest_exclusions` names the regions
  a version's targetRegions exclude from latest.
- `grants`: live SAS grants of disks and snapshots (endGetAccess deletes them, which revokes their URLs).
- `tenants`, `subscriptions`, `directory_objects` (users, groups, service principals), `applications`,
  `group_members`: the directory (app/directory.py). Ids are lower-case GUIDs. `directory_objects.upn_key` is a
  user's lower-cased UPN, unique across tenants; `secret_hash` (users) and `applications.secret_hash` hold only
  hashes.
- `gallery_shares`: who may find a gallery through the consumer views (`domain.sharing.share_targets`: a subscription
  or tenant it is shared with, or its community public name), kept by every write of a gallery, so a consumer's
  lookup is one indexed query instead of a read of every gallery.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

# Ranks compare byte by byte on both databases (PostgreSQL's default collation may not).
RANK = String(100).with_variant(String(100, collation="C"), "postgresql")

# The rows the one-live-job-per-subject rule covers (the migration creates the same partial index).
LIVE_BACKGROUND_JOB = text("operation_id IS NULL AND state IN ('queued', 'running')")

resources = Table(
    "resources",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("key", String(1024), nullable=False, unique=True),
    Column("type", String(200), nullable=False),
    Column("parent_key", String(1024), nullable=False),
    Column("subscription", String(100), nullable=False),
    Column("group_key", String(400), nullable=True),
    Column("location", String(100), nullable=True),
    Column("natural_key", String(600), nullable=True),
    Column("state", String(40), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("latest_rank", RANK, nullable=True),
    Index("ix_resources_parent", "parent_key", "type", "seq"),
    Index("ix_resources_scope", "subscription", "type", "seq"),
    Index("ix_resources_group", "group_key", "type", "seq"),
    Index("ix_resources_quota", "subscription", "location", "type"),
    Index("ux_resources_natural", "parent_key", "type", "natural_key", unique=True),
    Index("ix_resources_latest", "parent_key", "type", "latest_rank"),
)

latest_exclusions = Table(
    "latest_exclusions",
    metadata,
    Column("version_key", String(1024), nullable=False),
    Column("region", String(100), nullable=False),
    PrimaryKeyConstraint("version_key", "region"),
)

operations = Table(
    "operations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("resource_key", String(1024), nullable=False, index=True),
    Column("resource_id", Text, nullable=False),
    Column("namespace", String(100), nullable=False),
    Column("subscription", String(100), nullable=False),
    Column("location", String(100), nullable=False),
    Column("action", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("percent", Integer, nullable=False, default=0),
    Column("error", JSON, nullable=True),
    Column("prior_body", JSON, nullable=True),
    Column("result", JSON, nullable=True),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float, nullable=True),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("operation_id", String(64), nullable=True, index=True),
    Column("subject_key", String(1200), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("payload", JSON, nullable=True),
    Column("state", String(20), nullable=False),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", Float, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Index("ix_jobs_ready", "state", "not_before"),
    Index(
        "ux_jobs_live_background",
        "subject_key",
        unique=True,
        sqlite_where=LIVE_BACKGROUND_JOB,
        postgresql_where=LIVE_BACKGROUND_JOB,
    ),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("chunk_size", Integer, nullable=False),
    Column("chunks", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)

disk_contents = Table(
    "disk_contents",
    metadata,
    Column("resource_key", String(1024), nullable=False),
    Column("slot", String(40), nullable=False),
    Column("manifest_id", String(64), ForeignKey("manifests.id"), nullable=False, index=True),
    # A disk made from a version: which version and which of its replicas in the disk's region it reads first.
    Column("source_key", String(1024), nullable=True, index=True),
    Column("replica", Integer, nullable=True),
    PrimaryKeyConstraint("resource_key", "slot"),
)

upload_chunks = Table(
    "upload_chunks",
    metadata,
    Column("disk_key", String(1024), nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
    PrimaryKeyConstraint("disk_key", "idx"),
)

grants = Table(
    "grants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("resource_key", String(1024), nullable=False, index=True),
    Column("access", String(10), nullable=False),
    Column("expires_at", Float, nullable=False),
)

replicas = Table(
    "replicas",
    metadata,
    Column("version_key", String(1024), nullable=False),
    Column("region", String(100), nullable=False, index=True),
    Column("idx", Integer, nullable=False),
    Column("storage_type", String(40), nullable=False),
    Column("state", String(20), nullable=False),
    Column("bytes_total", BigInteger, nullable=False),
    Column("bytes_done", BigInteger, nullable=False),
    Column("bytes_copied", BigInteger, nullable=False),
    Column("chunks_copied", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("version_key", "region", "idx"),
)

tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscription_id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False, index=True),
    Column("name", String(256), nullable=False),
    Column("state", String(20), nullable=False),
    Column("created_at", Float, nullable=False),
)

directory_objects = Table(
    "directory_objects",
    metadata,
    Column("object_id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("type", String(20), nullable=False),
    Column("name", String(256), nullable=False),
    Column("upn_key", String(256), nullable=True, unique=True),
    Column("app_id", String(36), nullable=True, index=True),
    Column("secret_hash", String(256), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_directory_objects_tenant", "tenant_id", "type", "created_at"),
    Index("ux_directory_objects_sp", "tenant_id", "app_id", unique=True),
)

applications = Table(
    "applications",
    metadata,
    Column("app_id", String(36), primary_key=True),
    Column("home_tenant_id", String(36), nullable=False, index=True),
    Column("name", String(256), nullable=False),
    Column("multi_tenant", Boolean, nullable=False),
    Column("secret_hash", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", String(36), nullable=False),
    Column("member_id", String(36), nullable=False, index=True),
    PrimaryKeyConstraint("group_id", "member_id"),
)

gallery_shares = Table(
    "gallery_shares",
    metadata,
    Column("kind", String(20), nullable=False),
    Column("target", String(400), nullable=False),
    Column("gallery_key", String(1024), nullable=False, index=True),
    PrimaryKeyConstraint("kind", "target", "gallery_key"),
)

# Image Builder: each template's latest run's customization log, one row per line (tagged `[n name]`), in order.
build_logs = Table(
    "build_logs",
    metadata,
    Column("template_key", String(1024), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("line", Text, nullable=False),
    PrimaryKeyConstraint("template_key", "seq"),
)
