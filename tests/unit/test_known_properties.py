"""Unknown properties are dropped by a tree generated from Azure's specs; read-only paths reach into arrays."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmgallery.domain.errors import InvalidParameter
from vmgallery.domain.known_properties import KNOWN_PROPERTIES
from vmgallery.domain.validate import MAX_STRING, carry_read_only, prune, strip_read_only

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "spec/specification/compute/resource-manager/Microsoft.Compute"
# Example files by name: the resource type their bodies are. /share's SharingUpdate bodies are not galleries.
PREFIXES = {
    "Gallery": "Microsoft.Compute/galleries",
    "GalleryImage": "Microsoft.Compute/galleries/images",
    "GalleryImageVersion": "Microsoft.Compute/galleries/images/versions",
    "Image": "Microsoft.Compute/images",
}
NOT_RESOURCES = ("Gallery_AddToSharingProfile", "Gallery_EnableCommunityGallery", "Gallery_ResetSharingProfile")


def test_the_generated_module_is_up_to_date():
    spec = importlib.util.spec_from_file_location("known_properties_script", ROOT / "scripts/known_properties.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.build() == KNOWN_PROPERTIES


def _example_bodies():
    for path in sorted(EXAMPLES.glob("**/examples/**/*.json")):
        prefix = path.name.split("_")[0]
        if prefix not in PREFIXES or path.stem in NOT_RESOURCES:
            continue
        example = json.loads(path.read_text())
        bodies = [v for v in example["parameters"].values() if isinstance(v, dict) and "location" in v]
        for response in example.get("responses", {}).values():
            body = response.get("body") if isinstance(response, dict) else None
            if isinstance(body, dict):
                bodies += body["value"] if isinstance(body.get("value"), list) else [body]
        for i, body in enumerate(bodies):
            yield pytest.param(PREFIXES[prefix], body, id=f"{path.stem}-{i}")


@pytest.mark.parametrize("type_, body", list(_example_bodies()))
def test_every_property_of_azures_examples_is_known(type_, body):
    assert prune(body, KNOWN_PROPERTIES[type_]) == body


def test_unknown_properties_go_at_every_depth():
    tree = KNOWN_PROPERTIES["Microsoft.Compute/galleries/images/versions"]
    body = {
        "location": "eastus",
        "": None,
        "x\x00": 1,
        "tags": {"any": "v", "": "w"},
        "properties": {
            "junk": {"a": 1},
            "publishingProfile": {"targetRegions": [{"name": "eastus", "color": "red"}, "not an object"]},
            "storageProfile": {"osDiskImage": {"source": {"id": "i", "extra": 1}, "more": [1]}, "dataDiskImages": 5},
        },
    }
    assert prune(body, tree) == {
        "location": "eastus",
        "tags": {"any": "v", "": "w"},
        "properties": {
            "publishingProfile": {"targetRegions": [{"name": "eastus"}, "not an object"]},
            "storageProfile": {"osDiskImage": {"source": {"id": "i"}}, "dataDiskImages": 5},
        },
    }


def test_prune_copies():
    body = {"location": "eastus", "tags": {"a": "b"}}
    pruned = prune(body, KNOWN_PROPERTIES["Microsoft.Compute/galleries"])
    pruned["tags"]["a"] = "changed"
    assert body["tags"]["a"] == "b"


def test_long_strings_are_refused_even_inside_values_kept_whole():
    tree = {"free": None, "known": None}
    prune({"known": "k" * MAX_STRING, "dropped": "d" * (MAX_STRING + 1)}, tree)
    with pytest.raises(InvalidParameter) as exc:
        prune({"free": {"deep": ["x" * (MAX_STRING + 1)]}}, tree)
    assert exc.value.target == "free.deep[0]"


@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5), lambda c: st.lists(c) | st.dictionaries(st.text(max_size=3), c)
    )
)
def test_prune_keeps_only_known_names(value):
    tree = KNOWN_PROPERTIES["Microsoft.Compute/galleries"]
    pruned = prune({"properties": value}, tree)
    if isinstance(value, dict):
        assert set(pruned["properties"]) <= set(tree["properties"])


VERSION_SIZES = (
    "properties.storageProfile.osDiskImage.sizeInGB",
    "properties.storageProfile.dataDiskImages[lun].sizeInGB",
)


def test_read_only_paths_reach_into_arrays_by_key():
    old = {
        "properties": {
            "storageProfile": {
                "osDiskImage": {"sizeInGB": 30, "hostCaching": "ReadWrite"},
                "dataDiskImages": [{"lun": 0, "sizeInGB": 2}, {"lun": 5, "sizeInGB": 7}],
            }
        }
    }
    new = {"properties": {"storageProfile": {"osDiskImage": {}, "dataDiskImages": [{"lun": 5}, {"lun": 9}]}}}
    assert carry_read_only(old, new, VERSION_SIZES) == {
        "properties": {
            "storageProfile": {
                "osDiskImage": {"sizeInGB": 30},
                "dataDiskImages": [{"lun": 5, "sizeInGB": 7}, {"lun": 9}],
            }
        }
    }
    assert new["properties"]["storageProfile"]["osDiskImage"] == {}  # a copy
    assert strip_read_only(old, VERSION_SIZES) == {
        "properties": {
            "storageProfile": {"osDiskImage": {"hostCaching": "ReadWrite"}, "dataDiskImages": [{"lun": 0}, {"lun": 5}]}
        }
    }


def test_carry_creates_no_empty_objects():
    old = {"properties": {"sharingProfile": {"permissions": "Private"}}}
    assert carry_read_only(old, {"properties": {}}, ("properties.sharingProfile.groups",)) == {"properties": {}}
    assert carry_read_only(old, {}, ("properties.provisioningState",)) == {}
