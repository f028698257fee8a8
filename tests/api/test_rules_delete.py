"""Deleting a gallery that still holds image definitions is 409 naming them, and changes nothing; once the
children's deletes have finished the gallery goes at once."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from .conftest import definition_body
from .rules_support import Arm, assert_error


@pytest.fixture
def arm(http, subscription) -> Arm:
    return Arm(http, subscription)


def test_gallery_with_definitions_not_deleted(arm, group, gallery):
    for name in ("alpha", "beta"):
        arm.make_image(group, gallery, name, definition_body(sku=name))
    before = arm.state(arm.gallery_path(group, gallery))
    error = assert_error(
        arm.delete(arm.gallery_path(group, gallery)),
        409,
        "OperationNotAllowed",
        gallery,
        gallery,
        "'alpha'",
        "'beta'",
        "2",
    )
    assert "Delete them first" in error["message"]
    assert arm.state(arm.gallery_path(group, gallery)) == before
    assert sorted(arm.names(arm.gallery_path(group, gallery) + "/images")) == ["alpha", "beta"]


def test_many_definitions_named_with_a_count(arm, group, gallery):
    for i in range(12):
        arm.make_image(group, gallery, f"img{i:02d}", definition_body(sku=f"s{i}"))
    error = assert_error(
        arm.delete(arm.gallery_path(group, gallery)), 409, "OperationNotAllowed", gallery, "12", "'img00'", "and 2 more"
    )
    assert "'img11'" not in error["message"]


def test_empty_gallery_deleted_after_children(compute, group, gallery):
    compute.gallery_images.begin_create_or_update(group, gallery, "a", definition_body(sku="a")).result()
    compute.gallery_images.begin_create_or_update(group, gallery, "b", definition_body(sku="b")).result()
    compute.gallery_images.begin_delete(group, gallery, "a").result()
    with pytest.raises(ResourceExistsError) as exc:
        compute.galleries.begin_delete(group, gallery).result()
    assert "'b'" in exc.value.message and "'a'" not in exc.value.message
    compute.gallery_images.begin_delete(group, gallery, "b").result()
    compute.galleries.begin_delete(group, gallery).result()
    with pytest.raises(ResourceNotFoundError):
        compute.galleries.get(group, gallery)


def test_parent_delete_right_after_child_delete(arm, group, gallery):
    arm.make_image(group, gallery, "img", definition_body())
    arm.remove(arm.image_path(group, gallery, "img"))
    arm.remove(arm.gallery_path(group, gallery))


def test_deleting_what_is_not_there(arm, group):
    assert arm.delete(arm.gallery_path(group, "nothing")).status_code == 204
