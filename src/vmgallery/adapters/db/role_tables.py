"""The tables of Azure RBAC: role assignments and custom role definitions (built-in roles live in domain/rbac.py).

- `role_assignments`: one row per assignment. `scope_key` (the lower-cased scope) and `principal_id` are what a
  check looks up: the caller's assignments along one scope path are one query on `ix_role_assignments_scope`.
  `subscription` lets a list at a subscription find what lies under it. An assignment of a role to a principal at
  a scope exists once (`ux_role_assignments_triple`).
- `role_definitions`: custom roles, their ARM properties as the record of truth; a role name is unique within a
  subscription.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, String, Table, Text

from .tables import metadata

role_assignments = Table(
    "role_assignments",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("scope_key", String(1024), nullable=False),
    Column("scope", Text, nullable=False),
    Column("subscription", String(100), nullable=True),
    Column("principal_id", String(64), nullable=False),
    Column("principal_type", String(40), nullable=False),
    Column("role_guid", String(64), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_by", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_role_assignments_scope", "scope_key", "principal_id"),
    Index("ix_role_assignments_principal", "principal_id"),
    Index("ix_role_assignments_subscription", "subscription"),
    Index("ux_role_assignments_triple", "scope_key", "principal_id", "role_guid", unique=True),
)

role_definitions = Table(
    "role_definitions",
    metadata,
    Column("guid", String(64), primary_key=True),
    Column("subscription", String(100), nullable=False),
    Column("name_key", String(512), nullable=False),
    Column("scope", Text, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ux_role_definitions_name", "subscription", "name_key", unique=True),
)
