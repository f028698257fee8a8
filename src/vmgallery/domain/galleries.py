"""Gallery rules: what a gallery body may hold, what an update may change, and the read-only fields we fill."""

from __future__ import annotations

from .errors import InvalidParameter
from .validate import (
    MAX_DESCRIPTION,
    MAX_EULA,
    MAX_STRING,
    MAX_URI,
    Body,
    check_enum,
    check_string,
    check_tags,
    fold_location,
    forbid_changes,
    require_object,
    strip_read_only,
)

PERMISSIONS = ("Private", "Groups", "Community")

# What a PUT or PATCH on an existing gallery may change (as `az sig update --permissions ...` does); who it is shared
# with comes through POST /share, and domain.sharing.check_profile_change guards a gallery that is shared.
UPDATABLE = {
    "tags",
    "properties.description",
    "properties.sharingProfile.permissions",
    "properties.sharingProfile.communityGalleryInfo",
}

READ_ONLY = (
    "id",
    "name",
    "type",
    "systemData",
    "properties.identifier",
    "properties.provisioningState",
    "properties.sharingStatus",
    "properties.sharingProfile.groups",
    "properties.sharingProfile.communityGalleryInfo.communityGalleryEnabled",
    "properties.sharingProfile.communityGalleryInfo.publicNames",
    "identity.principalId",
    "identity.tenantId",
)


def unique_name(subscription: str, name: str) -> str:
    return f"{subscription}-{name.upper()}"


def normalize_gallery(body: Body) -> Body:
    """Validate a gallery request body and return it in canonical form, read-only fields removed."""
    body = strip_read_only(body, READ_ONLY)
    fold_location(body)
    check_tags(body)
    props = require_object(body, "properties", required=False)
    check_string(props, "description", "properties.description", max_len=MAX_DESCRIPTION)
    sharing = require_object(props, "sharingProfile", required=False, target="properties.sharingProfile")
    if sharing:
        perm = check_enum(sharing, "permissions", PERMISSIONS, "properties.sharingProfile.permissions")
        info = require_object(
            sharing, "communityGalleryInfo", required=False, target="properties.sharingProfile.communityGalleryInfo"
        )
        if info and perm != "Community":
            raise InvalidParameter(
                "communityGalleryInfo can only be set when sharingProfile.permissions is 'Community'.",
                "properties.sharingProfile.communityGalleryInfo",
            )
        for key, limit in (
            ("publisherUri", MAX_URI),
            ("publisherContact", MAX_STRING),
            ("eula", MAX_EULA),
            ("publicNamePrefix", MAX_STRING),
        ):
            check_string(info, key, f"properties.sharingProfile.communityGalleryInfo.{key}", max_len=limit)
    soft = require_object(props, "softDeletePolicy", required=False, target="properties.softDeletePolicy")
    if "isSoftDeleteEnabled" in soft and not isinstance(soft["isSoftDeleteEnabled"], bool):
        raise InvalidParameter(
            f"softDeletePolicy.isSoftDeleteEnabled must be true or false, not {soft['isSoftDeleteEnabled']!r}.",
            "properties.softDeletePolicy.isSoftDeleteEnabled",
        )
    return body


def permissions(body: Body) -> str:
    return ((body.get("properties") or {}).get("sharingProfile") or {}).get("permissions") or "Private"


def check_gallery_update(old: Body, new: Body) -> None:
    forbid_changes(old, new, UPDATABLE, "gallery")
