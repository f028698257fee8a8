"""Name rules for galleries and image definitions, with messages that say exactly which rule a name breaks.

Gallery names follow Azure's documented rule for galleries, stricter than the spec's pattern: letters, digits, `.`
and `_`, starting and ending with a letter or digit, no dashes, at most 80.
Image definition names: letters and digits, with `-`, `_` and `.` allowed only in the middle, at most 80.
"""

from __future__ import annotations

import string

from .errors import InvalidResourceName

_ALNUM = set(string.ascii_letters + string.digits)
MAX_NAME = 80


def _check(kind: str, target: str, name: str, middle: set[str], bad_ends: set[str], rule: str = "") -> None:
    allowed = _ALNUM | middle
    if not name:
        raise InvalidResourceName(f"The {kind} name must not be empty.", target)
    if len(name) > MAX_NAME:
        raise InvalidResourceName(
            f"The {kind} name '{name}' is {len(name)} characters long; the limit is {MAX_NAME}.", target
        )
    bad = sorted({c for c in name if c not in allowed})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise InvalidResourceName(
            f"The {kind} name '{name}' contains {shown}; "
            + (rule or f"allowed are letters, digits and {' '.join(sorted(middle))} in the middle."),
            target,
        )
    if name[0] not in _ALNUM:
        raise InvalidResourceName(f"The {kind} name '{name}' must start with a letter or a digit.", target)
    if name[-1] in bad_ends:
        raise InvalidResourceName(f"The {kind} name '{name}' must not end with '{name[-1]}'.", target)


def check_gallery_name(name: str) -> None:
    rule = "a gallery name is letters, digits, '.' and '_', starting and ending with a letter or digit (no dashes)."
    _check("gallery", "galleryName", name, {"_", "."}, {"_", "."}, rule)


def check_image_definition_name(name: str) -> None:
    _check("gallery image definition", "galleryImageName", name, {"_", "-", "."}, {"-", ".", "_"})


def check_resource_group_name(name: str) -> None:
    # ARM: up to 90 characters, alphanumerics, underscores, parentheses, hyphens, periods; not ending in a period.
    allowed = _ALNUM | set("_()-.")
    if not name or len(name) > 90 or any(c not in allowed and not c.isalnum() for c in name) or name.endswith("."):
        raise InvalidResourceName(
            f"The resource group name '{name}' is invalid: use 1-90 letters, digits, '_', '(', ')', '-' or '.', "
            "not ending with '.'.",
            "resourceGroupName",
        )


def check_disk_name(name: str, noun: str = "disk") -> None:
    # Disks, snapshots and managed images: 1-80 letters, digits, '_', '-', '.'; not ending in '-' or '.'.
    _check(noun, "resourceName", name, {"_", "-", "."}, {"-", "."})
