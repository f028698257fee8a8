"""What may be deleted: a resource group takes everything in it along; any other parent (a gallery with image
definitions, a definition with versions) refuses while it has children, as Azure does."""

from __future__ import annotations

from .errors import OperationNotAllowed

RESOURCE_GROUP = "microsoft.resources/resourcegroups"


IMAGE_TEMPLATE = "microsoft.virtualmachineimages/imagetemplates"  # its run outputs go with it


def cascades(type_key: str) -> bool:
    """Whether deleting a resource of this type deletes what it holds."""
    return type_key in (RESOURCE_GROUP, IMAGE_TEMPLATE)


def check_delete(
    type_key: str, noun: str, name: str, children: list[str], total: int, child_noun: str, target: str
) -> None:
    """`children`: names of the first children (for the message); `total`: how many there are."""
    if cascades(type_key) or not children:
        return
    shown = ", ".join(f"'{c}'" for c in children)
    more = f" and {total - len(children)} more" if total > len(children) else ""
    raise OperationNotAllowed(
        f"The {noun} '{name}' cannot be deleted because it contains {total} {child_noun}(s): {shown}{more}. "
        "Delete them first.",
        target,
    )
