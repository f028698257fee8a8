"""Publisher + offer + sku are unique within a gallery: a duplicate is 409 naming the definition that has them;
sharing one or two of the three is fine, and so is the same triple in another gallery."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError

from .conftest import definition_body
from .rules_support import Arm, assert_error


@pytest.fixture
def arm(http, subscription) -> Arm:
    return Arm(http, subscription)


def test_duplicate_triple_refused(arm, group, gallery):
    first = arm.make_image(group, gallery, "first", definition_body("Canonical", "Ubuntu", "22_04"))
    path = arm.image_path(group, gallery, "second")
    assert_error(
        arm.put(path, definition_body("canonical", "UBUNTU", "22_04")),
        409,
        "GalleryImageIdentifierAlreadyExists",
        "properties.identifier",
        "'first'",
        "canonical",
        "UBUNTU",
        "22_04",
    )
    assert arm.state(path) is None
    assert arm.state(arm.image_path(group, gallery, "first")) == first


def test_duplicate_triple_through_sdk(compute, group, gallery):
    compute.gallery_images.begin_create_or_update(group, gallery, "a", definition_body("P", "O", "S")).result()
    with pytest.raises(ResourceExistsError) as exc:
        compute.gallery_images.begin_create_or_update(group, gallery, "b", definition_body("P", "O", "S")).result()
    assert "'a'" in exc.value.message
    assert [i.name for i in compute.gallery_images.list_by_gallery(group, gallery)] == ["a"]


@pytest.mark.parametrize(
    "triple",
    [("P", "O", "other"), ("P", "other", "S"), ("other", "O", "S"), ("P", "x", "y"), ("x", "O", "y"), ("x", "y", "S")],
)
def test_sharing_one_or_two_parts_is_fine(compute, group, gallery, triple):
    compute.gallery_images.begin_create_or_update(group, gallery, "a", definition_body("P", "O", "S")).result()
    compute.gallery_images.begin_create_or_update(group, gallery, "b", definition_body(*triple)).result()
    assert sorted(i.name for i in compute.gallery_images.list_by_gallery(group, gallery)) == ["a", "b"]


def test_same_triple_in_another_gallery_is_fine(arm, group, gallery):
    other = arm.make_gallery(group)
    arm.make_image(group, gallery, "img", definition_body("P", "O", "S"))
    assert arm.make_image(group, other, "img", definition_body("P", "O", "S"))["properties"]["identifier"] == {
        "publisher": "P",
        "offer": "O",
        "sku": "S",
    }


def test_updating_a_definition_keeps_its_own_triple(arm, group, gallery):
    arm.make_image(group, gallery, "img", definition_body("P", "O", "S"))
    arm.done(arm.put(arm.image_path(group, gallery, "img"), definition_body("P", "O", "S", description="v2")))
    assert arm.state(arm.image_path(group, gallery, "img"))["properties"]["description"] == "v2"


def test_triple_is_free_again_after_delete(arm, group, gallery):
    arm.make_image(group, gallery, "old", definition_body("P", "O", "S"))
    arm.remove(arm.image_path(group, gallery, "old"))
    arm.make_image(group, gallery, "new", definition_body("P", "O", "S"))


def test_concurrent_duplicates_leave_one(server, arm, group, gallery):
    def create(i: int) -> httpx.Response:
        with server.http() as client:
            return Arm(client, arm.subscription).put(
                arm.image_path(group, gallery, f"img{i}"), definition_body("P", "O", "S")
            )

    with ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(create, range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409], [r.text for r in responses]
    assert all(r.json()["error"]["target"] == "properties.identifier" for r in responses if r.status_code == 409)
    assert len(arm.names(arm.gallery_path(group, gallery) + "/images")) == 1
