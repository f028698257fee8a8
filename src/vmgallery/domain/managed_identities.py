"""User-assigned managed identities (Microsoft.ManagedIdentity/userAssignedIdentities), pure: their names, what a
create or update may hold, and which of their fields are the server's.

An identity stands for a service principal of its subscription's tenant: `principalId` is that principal's object id
(what role assignments name), `clientId` its application id, `tenantId` the tenant. The three are given when the
identity is made and never change; a client sends them back (GET then PUT) and they are ignored.
"""

from __future__ import annotations

import re

from . import errors
from .validate import Body, check_enum, check_tags, fold_location, forbid_changes, require_object, strip_read_only

TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
TYPE_KEY = TYPE.lower()
# What azure-mgmt-msi (7.1: 2024-11-30 by default, 2018-11-30 and 2023-01-31 on request) and az send.
API_VERSIONS = (
    "2015-08-31-preview",
    "2018-11-30",
    "2021-09-30-preview",
    "2022-01-31-preview",
    "2023-01-31",
    "2023-07-31-preview",
    "2024-11-30",
    "2025-01-31-preview",
)
SERVER_SET = ("properties.principalId", "properties.clientId", "properties.tenantId")
READ_ONLY = ("id", "name", "type", "systemData", *SERVER_SET)
ISOLATION_SCOPES = ("None", "Regional")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$")


def check_identity_name(name: str) -> None:
    if not NAME.match(name):
        raise errors.InvalidResourceName(
            f"The user-assigned identity name '{name}' is invalid: 3 to 128 letters, digits, '-' or '_', starting "
            "with a letter or digit.",
            "resourceName",
        )


def normalize_identity(body: Body) -> Body:
    """The writable part of an identity: location, tags and (api-version 2024-11-30) isolationScope."""
    body = strip_read_only(body, READ_ONLY)
    check_tags(body)
    fold_location(body)
    props = require_object(body, "properties", required=False)
    check_enum(props, "isolationScope", ISOLATION_SCOPES, "properties.isolationScope")
    if props:
        body["properties"] = props
    else:
        body.pop("properties", None)
    return body


def check_identity_update(old: Body, new: Body) -> None:
    forbid_changes(old, new, {"tags", "properties.isolationScope"}, "user-assigned identity")
