"""Write src/vmgallery/domain/known_properties.py: the property tree of each resource type, from Azure's specs.

Run from the repository root after changing spec/: `python3 scripts/known_properties.py`, then `ruff format`
it. The domain reads the generated module (it does no I/O at run time); `domain.validate.prune` drops what the
tree does not name.

A tree node is None (a value kept whole: scalars and free-form objects), a dict of property name to node (an object;
the key "*" stands for any name, from additionalProperties), or a one-element list (an array of that node). Each
type's tree is the union over the spec versions listed here, so a property that any of them knows is kept.
"""

from __future__ import annotations

import json
import pprint
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPUTE = ROOT / "spec/specification/compute/resource-manager/Microsoft.Compute"
OUT = ROOT / "src/vmgallery/domain/known_properties.py"

SOURCES = {
    "Microsoft.Compute/galleries": [
        ("GalleryRP/stable/2023-07-03/gallery.json", "Gallery"),
        ("GalleryRP/stable/2025-03-03/GalleryRP.json", "Gallery"),
    ],
    "Microsoft.Compute/galleries/images": [
        ("GalleryRP/stable/2023-07-03/gallery.json", "GalleryImage"),
        ("GalleryRP/stable/2025-03-03/GalleryRP.json", "GalleryImage"),
    ],
    "Microsoft.Compute/galleries/images/versions": [
        ("GalleryRP/stable/2023-07-03/gallery.json", "GalleryImageVersion"),
        ("GalleryRP/stable/2025-03-03/GalleryRP.json", "GalleryImageVersion"),
    ],
    "Microsoft.Compute/disks": [("DiskRP/stable/2023-10-02/disk.json", "Disk")],
    "Microsoft.Compute/snapshots": [("DiskRP/stable/2023-10-02/snapshot.json", "Snapshot")],
    "Microsoft.Compute/images": [("ComputeRP/stable/2024-03-01/image.json", "Image")],
}
# Microsoft.Resources has no spec here; a resource group is ARM's plain tracked resource.
RESOURCE_GROUP = {
    "id": None,
    "name": None,
    "type": None,
    "location": None,
    "managedBy": None,
    "tags": {"*": None},
    "properties": {"provisioningState": None},
}

# Microsoft.ManagedIdentity's spec is not here either: a tracked resource whose properties the server fills.
USER_ASSIGNED_IDENTITY = {
    "id": None,
    "name": None,
    "type": None,
    "location": None,
    "tags": {"*": None},
    "systemData": None,
    "properties": {"principalId": None, "clientId": None, "tenantId": None, "isolationScope": None},
}

# Image templates' parts are polymorphic (source, customize, validate, distribute by "type"), which this walker does
# not follow: each property is kept whole here and domain/image_builder.py checks it per type.
IMAGE_TEMPLATE = {
    "id": None,
    "name": None,
    "type": None,
    "location": None,
    "systemData": None,
    "tags": {"*": None},
    "identity": {"type": None, "userAssignedIdentities": {"*": None}},
    "properties": {
        k: None
        for k in (
            "source",
            "customize",
            "optimize",
            "validate",
            "distribute",
            "errorHandling",
            "provisioningState",
            "provisioningError",
            "lastRunStatus",
            "buildTimeoutInMinutes",
            "vmProfile",
            "additionalDataDisks",
            "stagingResourceGroup",
            "exactStagingResourceGroup",
            "autoRun",
            "managedResourceTags",
            "vmgalleryEngine",
        )
    },
}

# An image template's trigger (a proxy resource: no location, no tags); its status is kept whole.
TRIGGER = {
    "id": None,
    "name": None,
    "type": None,
    "systemData": None,
    "properties": {"kind": None, "status": None, "provisioningState": None},
}

_files: dict[Path, dict] = {}


def _load(path: Path) -> dict:
    path = path.resolve()
    if path not in _files:
        _files[path] = json.loads(path.read_text())
    return _files[path]


def _resolve(schema: dict, here: Path) -> tuple[dict, Path, str | None]:
    ref = schema.get("$ref")
    if ref is None:
        return schema, here, None
    file_part, _, pointer = ref.partition("#")
    target = (here.parent / file_part).resolve() if file_part else here
    node = _load(target)
    for part in pointer.strip("/").split("/"):
        node = node[part]
    return node, target, f"{target}#{pointer}"


def _tree(schema: dict, here: Path, seen: frozenset[str]):
    schema, here, ref = _resolve(schema, here)
    if ref is not None:
        if ref in seen:
            return None  # a recursive type: kept whole below this depth
        seen = seen | {ref}
    props: dict = {}
    for part in schema.get("allOf", []):
        sub = _tree(part, here, seen)
        if isinstance(sub, dict):
            props = _union(props, sub)
    for name, sub in (schema.get("properties") or {}).items():
        props[name] = _union(props.get(name, {}), _tree(sub, here, seen)) if name in props else _tree(sub, here, seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        props["*"] = _tree(extra, here, seen)
    elif extra is True:
        props["*"] = None
    if schema.get("type") == "array" or "items" in schema:
        return [_tree(schema.get("items", {}), here, seen)]
    return props or None


def _union(a, b):
    if a is None or b is None:
        return None
    if isinstance(a, list) and isinstance(b, list):
        return [_union(a[0], b[0])]
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _union(out[k], v) if k in out else v
        return out
    return None


def build() -> dict:
    trees = {
        "Microsoft.Resources/resourceGroups": RESOURCE_GROUP,
        "Microsoft.VirtualMachineImages/imageTemplates": IMAGE_TEMPLATE,
        "Microsoft.VirtualMachineImages/imageTemplates/triggers": TRIGGER,
        "Microsoft.ManagedIdentity/userAssignedIdentities": USER_ASSIGNED_IDENTITY,
    }
    for type_, sources in SOURCES.items():
        tree: dict = {}
        for rel, definition in sources:
            path = COMPUTE / rel
            tree = _union(tree, _tree({"$ref": f"#/definitions/{definition}"}, path, frozenset()))
        trees[type_] = tree
    return trees


def main() -> None:
    trees = build()
    sources = sorted({rel for s in SOURCES.values() for rel, _ in s})
    text = (
        '"""The properties Azure\'s specs name for each resource type.\n\nGenerated by scripts/known_properties.py '
        "(then `ruff format`; do not edit) from\nspec/specification/compute/resource-manager/Microsoft.Compute/:\n"
        + "".join(f"- {rel}\n" for rel in sources)
        + 'A node is None (kept whole), a dict (an object; "*": any name) or [node] (an array of node).\n"""\n\n'
        + "KNOWN_PROPERTIES = "
        + pprint.pformat({k: trees[k] for k in sorted(trees)}, width=120, sort_dicts=True)
        + "\n"
    )
    OUT.write_text(text)


if __name__ == "__main__":
    main()
