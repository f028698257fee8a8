"""The ARM paths and api-versions the CLI sends: the one place that knows the server's URL layout.

The api-versions are the ones az 2.91 sends for the same commands, so a trace of `vmgallery` and of `az` match.
"""

from __future__ import annotations

from urllib.parse import quote

GROUP_API = "2024-11-01"
GALLERY_API = {
    "create": "2026-03-03",
    "update": "2026-03-03",
    "show": "2026-03-03",
    "list": "2021-10-01",
    "delete": "2021-10-01",
}
DEFINITION_API = {
    "create": "2021-10-01",
    "update": "2024-03-03",
    "show": "2021-10-01",
    "list": "2021-10-01",
    "delete": "2021-10-01",
}


def _seg(name: str) -> str:
    return quote(name, safe="")


def groups(subscription: str) -> str:
    return f"/subscriptions/{_seg(subscription)}/resourceGroups"


def group(subscription: str, name: str) -> str:
    return f"{groups(subscription)}/{_seg(name)}"


def galleries(subscription: str, resource_group: str | None = None) -> str:
    if resource_group is None:
        return f"/subscriptions/{_seg(subscription)}/providers/Microsoft.Compute/galleries"
    return f"{group(subscription, resource_group)}/providers/Microsoft.Compute/galleries"


def gallery(subscription: str, resource_group: str, name: str) -> str:
    return f"{galleries(subscription, resource_group)}/{_seg(name)}"


def definitions(subscription: str, resource_group: str, gallery_name: str) -> str:
    return f"{gallery(subscription, resource_group, gallery_name)}/images"


def definition(subscription: str, resource_group: str, gallery_name: str, name: str) -> str:
    return f"{definitions(subscription, resource_group, gallery_name)}/{_seg(name)}"


def resource_group_of(resource_id: str) -> str | None:
    parts = resource_id.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == "resourcegroups":
            return parts[i + 1]
    return None


# Disks, snapshots and managed images: the api-versions the server's current specs name (az sends older ones for
# disks; the server takes both).
DISK_API = "2026-03-02"
IMAGE_API = "2026-04-01"
VERSION_API = {
    "create": "2024-03-03",
    "update": "2024-03-03",
    "show": "2024-03-03",
    "list": "2024-03-03",
    "delete": "2026-03-03",
}
STORAGE_ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"


def compute_resources(subscription: str, resource_group: str | None, type_: str) -> str:
    """A Microsoft.Compute collection (`disks`, `snapshots`, `images`) in a group, or in the whole subscription."""
    if resource_group is None:
        return f"/subscriptions/{_seg(subscription)}/providers/Microsoft.Compute/{type_}"
    return f"{group(subscription, resource_group)}/providers/Microsoft.Compute/{type_}"


def compute_resource(subscription: str, resource_group: str, type_: str, name: str) -> str:
    return f"{compute_resources(subscription, resource_group, type_)}/{_seg(name)}"


def versions(subscription: str, resource_group: str, gallery_name: str, definition_name: str) -> str:
    return f"{definition(subscription, resource_group, gallery_name, definition_name)}/versions"


def version(subscription: str, resource_group: str, gallery_name: str, definition_name: str, name: str) -> str:
    return f"{versions(subscription, resource_group, gallery_name, definition_name)}/{_seg(name)}"


def is_resource_id(value: str) -> bool:
    return value.startswith("/subscriptions/")


def expand_id(subscription: str, resource_group: str, provider_type: str, name_or_id: str) -> str:
    """az's rule for options that take a name or an id: a bare name is a resource of `provider_type`
    (`Microsoft.Compute/snapshots`) in the current subscription and resource group."""
    if is_resource_id(name_or_id):
        return name_or_id
    return f"{group(subscription, resource_group)}/providers/{provider_type}/{_seg(name_or_id)}"


def type_of(resource_id: str) -> str:
    """The last type segment of a resource id, lower-cased: `disks`, `snapshots`, `images`, `versions`..."""
    parts = [p for p in resource_id.split("/") if p]
    return parts[-2].lower() if len(parts) >= 2 else ""
