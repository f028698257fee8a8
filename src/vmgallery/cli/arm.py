"""The ARM paths and api-versions the CLI sends: the one place that knows the server's URL layout.

The api-versions are the ones az 2.91 sends for the same commands, so a trace of `vmgallery` and of `az` match.
"""

from __future__ import annotations

from urllib.parse import quote

GROUP_API = "2024-11-01"
GALLERY_API = {"create": "2026-03-03", "update": "2026-03-03", "show": "2026-03-03",
               "list": "2021-10-01", "delete": "2021-10-01"}
DEFINITION_API = {"create": "2021-10-01", "update": "2024-03-03", "show": "2021-10-01",
                  "list": "2021-10-01", "delete": "2021-10-01"}


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
