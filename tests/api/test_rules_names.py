"""Name rules for galleries and image definitions: the allowed names are created, the others refused with
400 InvalidResourceName naming the name, and nothing is created."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from .conftest import definition_body
from .rules_support import Arm, assert_error

GOOD_GALLERIES = ["g", "7", "my_gallery", "my.gallery.v2", "G" * 80]
BAD_GALLERIES = [
    ("_gallery", "must start with a letter or a digit"),
    ("gallery_", "must not end with '_'"),
    ("gallery.", "must not end with '.'"),
    ("my-gallery", "contains '-'; a gallery name is letters, digits, '.' and '_'"),
    ("-gallery", "(no dashes)"),
    ("g" * 81, "the limit is 80"),
    ("my gallery", "' '"),
    ("gal$lery", "'$'"),
    ("galérie", "'é'"),
]
GOOD_IMAGES = ["i", "ubuntu-22.04_lts", "9lives", "I" * 80]
BAD_IMAGES = [
    ("-img", "must start with a letter or a digit"),
    ("_img", "must start with a letter or a digit"),
    ("img_", "must not end with '_'"),
    ("img-", "must not end with '-'"),
    ("img.", "must not end with '.'"),
    ("i" * 81, "the limit is 80"),
    ("im g", "' '"),
    ("img+1", "'+'"),
]


@pytest.fixture
def arm(http, subscription) -> Arm:
    return Arm(http, subscription)


def test_gallery_names_allowed(compute, group):
    for name in GOOD_GALLERIES:
        created = compute.galleries.begin_create_or_update(group, name, {"location": "eastus"}).result()
        assert created.name == name
    assert sorted(g.name for g in compute.galleries.list_by_resource_group(group)) == sorted(GOOD_GALLERIES)


def test_gallery_names_rejected(arm, group):
    for name, why in BAD_GALLERIES:
        path = arm.gallery_path(group, name)
        assert_error(arm.put(path, {"location": "eastus"}), 400, "InvalidResourceName", "galleryName", name, why)
        assert arm.state(path) is None
    assert arm.names(arm.group_path(group) + "/providers/Microsoft.Compute/galleries") == []


def test_gallery_name_rejected_through_sdk(compute, group):
    with pytest.raises(HttpResponseError) as exc:
        compute.galleries.begin_create_or_update(group, "trailing-", {"location": "eastus"}).result()
    assert exc.value.status_code == 400
    assert exc.value.error.code == "InvalidResourceName" and exc.value.error.target == "galleryName"
    assert "trailing-" in exc.value.error.message
    assert list(compute.galleries.list_by_resource_group(group)) == []


def test_image_names_allowed(compute, group, gallery):
    for i, name in enumerate(GOOD_IMAGES):
        created = compute.gallery_images.begin_create_or_update(
            group, gallery, name, definition_body(sku=f"sku{i}")
        ).result()
        assert created.name == name
    assert sorted(d.name for d in compute.gallery_images.list_by_gallery(group, gallery)) == sorted(GOOD_IMAGES)


def test_image_names_rejected(arm, group, gallery):
    for name, why in BAD_IMAGES:
        path = arm.image_path(group, gallery, name)
        assert_error(arm.put(path, definition_body()), 400, "InvalidResourceName", "galleryImageName", name, why)
        assert arm.state(path) is None
    assert arm.names(arm.gallery_path(group, gallery) + "/images") == []


def test_image_name_rejected_through_sdk(compute, group, gallery):
    with pytest.raises(HttpResponseError) as exc:
        compute.gallery_images.begin_create_or_update(group, gallery, "_hidden", definition_body()).result()
    assert exc.value.status_code == 400
    assert exc.value.error.code == "InvalidResourceName" and exc.value.error.target == "galleryImageName"
    assert "_hidden" in exc.value.error.message
    assert list(compute.gallery_images.list_by_gallery(group, gallery)) == []


def test_names_are_case_insensitive_and_keep_their_casing(arm, group):
    arm.make_gallery(group, "MixedCase")
    got = arm.state(arm.gallery_path(group.upper(), "mixedcase"))
    assert got["name"] == "MixedCase"
    # The same name in another casing is the same gallery: a PUT updates it and keeps the first spelling.
    arm.done(arm.put(arm.gallery_path(group, "MIXEDCASE"), {"location": "eastus", "properties": {"description": "x"}}))
    assert arm.names(arm.group_path(group) + "/providers/Microsoft.Compute/galleries") == ["MixedCase"]
