"""What an update may change. Gallery: description and tags. Image definition: recommended vCPUs and memory,
description, end-of-life date, release notes and tags (features too with allowUpdateImage=true). A PUT or PATCH
that changes anything else is 400 PropertyChangeNotAllowed naming the property, and nothing changes. A PUT that
echoes a GET (read-only fields included) is accepted: that is how az updates."""

from __future__ import annotations

import copy

import pytest
from azure.core.exceptions import HttpResponseError

from .conftest import definition_body
from .rules_support import Arm, assert_error


@pytest.fixture
def arm(http, subscription) -> Arm:
    return Arm(http, subscription)


def refused_update(arm: Arm, method: str, path: str, body: dict, target: str, *mentions) -> None:
    before = arm.state(path)
    assert_error(arm.request(method, path, body), 400, "PropertyChangeNotAllowed", target, target, *mentions)
    assert arm.state(path) == before


# -- galleries ----------------------------------------------------------------------------------------------------
def test_gallery_description_and_tags_update(arm, group):
    gallery = arm.make_gallery(group, body={"location": "eastus", "properties": {"description": "one"}})
    path = arm.gallery_path(group, gallery)
    arm.done(arm.patch(path, {"properties": {"description": "two"}, "tags": {"a": "1"}}))
    got = arm.state(path)
    assert got["properties"]["description"] == "two" and got["tags"] == {"a": "1"}
    arm.done(arm.put(path, {"location": "eastus", "properties": {"description": "three"}}))
    got = arm.state(path)
    assert got["properties"]["description"] == "three" and "tags" not in got


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    "change, target, mention",
    [
        (
            {"softDeletePolicy": {"isSoftDeleteEnabled": True}},
            "properties.softDeletePolicy.isSoftDeleteEnabled",
            "True",
        ),
    ],
)
def test_gallery_fixed_properties(arm, group, method, change, target, mention):
    gallery = arm.make_gallery(group, body={"location": "eastus", "properties": {"description": "d"}})
    body = {"properties": {"description": "d", **change}}
    if method == "PUT":
        body["location"] = "eastus"
    refused_update(arm, method, arm.gallery_path(group, gallery), body, target, mention)


def test_gallery_location_cannot_change(arm, group, gallery):
    path = arm.gallery_path(group, gallery)
    before = arm.state(path)
    assert_error(arm.put(path, {"location": "westus"}), 400, "PropertyChangeNotAllowed", "location", "eastus", "westus")
    assert_error(arm.patch(path, {"location": "westus"}), 400, "PropertyChangeNotAllowed", "location", "westus")
    assert arm.state(path) == before


def test_gallery_echoed_get_is_accepted(arm, group):
    gallery = arm.make_gallery(
        group, body={"location": "eastus", "tags": {"a": "1"}, "properties": {"description": "d"}}
    )
    path = arm.gallery_path(group, gallery)
    got = arm.state(path)
    echoed = copy.deepcopy(got)
    echoed["properties"]["description"] = "changed"
    echoed["properties"]["identifier"]["uniqueName"] = "SOMETHING-ELSE"
    echoed["properties"]["provisioningState"] = "Failed"
    arm.done(arm.put(path, echoed))
    after = arm.state(path)
    assert after["properties"]["description"] == "changed"
    assert after["properties"]["identifier"] == got["properties"]["identifier"]
    assert after["properties"]["provisioningState"] == "Succeeded"


def test_gallery_echoed_get_with_display_location_is_accepted(arm, group):
    gallery = arm.make_gallery(group, body={"location": "East US"})
    path = arm.gallery_path(group, gallery)
    echoed = arm.state(path)
    echoed["location"] = "East US"
    arm.done(arm.put(path, echoed))
    assert arm.state(path)["location"] == "eastus"


def test_gallery_az_style_update_through_sdk(compute, group, gallery):
    model = compute.galleries.get(group, gallery)
    model.description = "via get + put"
    model.tags = {"by": "sdk"}
    updated = compute.galleries.begin_create_or_update(group, gallery, model).result()
    assert updated.description == "via get + put" and updated.tags == {"by": "sdk"}


# -- image definitions --------------------------------------------------------------------------------------------
BASE = dict(
    hyperVGeneration="V2",
    description="one",
    recommended={"vCPUs": {"min": 1, "max": 2}},
    features=[{"name": "IsHibernateSupported", "value": "False"}],
)


@pytest.fixture
def image(arm, group, gallery) -> str:
    arm.make_image(group, gallery, "img", definition_body(**BASE))
    return arm.image_path(group, gallery, "img")


def test_definition_updatable_through_patch(arm, image):
    arm.done(
        arm.patch(
            image,
            {
                "tags": {"t": "1"},
                "properties": {
                    "description": "two",
                    "recommended": {"vCPUs": {"min": 2, "max": 8}, "memory": {"min": 4, "max": 16}},
                    "endOfLifeDate": "2030-01-01T00:00:00Z",
                    "releaseNoteUri": "https://example.com/notes",
                },
            },
        )
    )
    got = arm.state(image)
    props = got["properties"]
    assert got["tags"] == {"t": "1"} and props["description"] == "two"
    assert props["recommended"] == {"vCPUs": {"min": 2, "max": 8}, "memory": {"min": 4, "max": 16}}
    assert props["endOfLifeDate"] == "2030-01-01T00:00:00Z"
    assert props["releaseNoteUri"] == "https://example.com/notes"
    assert props["osType"] == "Linux" and props["hyperVGeneration"] == "V2"


def test_definition_updatable_through_put(arm, image):
    arm.done(
        arm.put(
            image, definition_body(**{**BASE, "description": "two", "recommended": {"memory": {"min": 1, "max": 2}}})
        )
    )
    props = arm.state(image)["properties"]
    assert props["description"] == "two" and props["recommended"] == {"memory": {"min": 1, "max": 2}}


def test_definition_update_through_sdk(compute, group, gallery, image):
    updated = compute.gallery_images.begin_update(
        group, gallery, "img", {"properties": {"description": "sdk", "endOfLifeDate": "2031-01-01T00:00:00Z"}}
    ).result()
    assert updated.description == "sdk"
    with pytest.raises(HttpResponseError) as exc:
        compute.gallery_images.begin_update(group, gallery, "img", {"properties": {"architecture": "Arm64"}}).result()
    assert exc.value.status_code == 400 and exc.value.error.code == "PropertyChangeNotAllowed"
    assert exc.value.error.target == "properties.architecture"
    assert compute.gallery_images.get(group, gallery, "img").architecture == "x64"


FIXED = [
    ({"osType": "Windows"}, "properties.osType", "'Windows'"),
    ({"osState": "Specialized"}, "properties.osState", "'Specialized'"),
    ({"hyperVGeneration": "V1"}, "properties.hyperVGeneration", "'V1'"),
    ({"architecture": "Arm64"}, "properties.architecture", "'Arm64'"),
    ({"identifier": {"publisher": "pub", "offer": "off", "sku": "other"}}, "properties.identifier.sku", "'other'"),
    ({"eula": "new terms"}, "properties.eula", "'new terms'"),
    ({"privacyStatementUri": "https://example.com/p"}, "properties.privacyStatementUri", "https://example.com/p"),
    ({"purchasePlan": {"name": "n", "publisher": "p", "product": "x"}}, "properties.purchasePlan.name", "'n'"),
    ({"disallowed": {"diskTypes": ["Premium_LRS"]}}, "properties.disallowed.diskTypes", "Premium_LRS"),
    ({"features": [{"name": "IsHibernateSupported", "value": "True"}]}, "properties.features", "True"),
]


def test_definition_fixed_properties_patch(arm, image):
    for change, target, mention in FIXED:
        refused_update(arm, "PATCH", image, {"properties": change}, target, mention)


def test_definition_fixed_properties_put(arm, image):
    for change, target, mention in FIXED:
        refused_update(arm, "PUT", image, definition_body(**{**BASE, **change}), target, mention)


def test_definition_fixed_change_refused_even_with_allowed_changes(arm, image):
    refused_update(
        arm,
        "PATCH",
        image,
        {"tags": {"x": "y"}, "properties": {"description": "new", "osState": "Specialized"}},
        "properties.osState",
    )


def test_definition_features_change_with_allow_update_image(arm, image):
    features = [
        {"name": "IsHibernateSupported", "value": "True"},
        {"name": "SecurityType", "value": "TrustedLaunchSupported"},
    ]
    arm.done(arm.patch(image, {"properties": {"allowUpdateImage": True, "features": features}}))
    assert arm.state(image)["properties"]["features"] == features


def test_definition_feature_values_still_checked_on_update(arm, image):
    before = arm.state(image)
    assert_error(
        arm.patch(
            image,
            {
                "properties": {
                    "allowUpdateImage": True,
                    "features": [{"name": "IsHibernateSupported", "value": "sometimes"}],
                }
            },
        ),
        400,
        "InvalidParameter",
        "properties.features[0].value",
        "'sometimes'",
    )
    assert arm.state(image) == before


def test_definition_update_values_still_checked(arm, image):
    before = arm.state(image)
    assert_error(
        arm.patch(image, {"properties": {"recommended": {"vCPUs": {"min": 9, "max": 3}}}}),
        400,
        "InvalidParameter",
        "properties.recommended.vCPUs.min",
        "9",
        "3",
    )
    assert_error(
        arm.patch(image, {"properties": {"releaseNoteUri": "nope"}}),
        400,
        "InvalidParameter",
        "properties.releaseNoteUri",
        "'nope'",
    )
    assert arm.state(image) == before


def test_definition_echoed_get_is_accepted(arm, image):
    echoed = arm.state(image)
    echoed["properties"]["description"] = "echo"
    echoed["properties"]["provisioningState"] = "Creating"
    arm.done(arm.put(image, echoed))
    got = arm.state(image)
    assert got["properties"]["description"] == "echo" and got["properties"]["provisioningState"] == "Succeeded"


def test_definition_az_style_update_through_sdk(compute, group, gallery, image):
    model = compute.gallery_images.get(group, gallery, "img")
    model.description = "via get + put"
    model.recommended.v_cp_us.max = 16
    updated = compute.gallery_images.begin_create_or_update(group, gallery, "img", model).result()
    assert updated.description == "via get + put" and updated.recommended.v_cp_us.max == 16


def test_definition_location_cannot_change(arm, image):
    before = arm.state(image)
    assert_error(
        arm.put(image, {**definition_body(**BASE), "location": "westus"}),
        400,
        "InvalidParameter",
        "location",
        "eastus",
        "westus",
    )
    assert arm.state(image) == before


def test_shared_gallery_echoed_get_is_accepted(arm, group):
    sharing = {
        "permissions": "Community",
        "communityGalleryInfo": {
            "publisherUri": "https://example.com",
            "publisherContact": "a@example.com",
            "eula": "https://example.com/eula",
            "publicNamePrefix": "pfx",
        },
    }
    gallery = arm.make_gallery(
        group,
        body={
            "location": "eastus",
            "properties": {"sharingProfile": sharing, "softDeletePolicy": {"isSoftDeleteEnabled": False}},
        },
    )
    path = arm.gallery_path(group, gallery)
    echoed = arm.state(path)
    echoed["properties"]["description"] = "echo"
    echoed["properties"]["sharingProfile"]["communityGalleryInfo"].update(
        communityGalleryEnabled=True, publicNames=["pfx-1"]
    )
    arm.done(arm.put(path, echoed))
    got = arm.state(path)
    assert got["properties"]["description"] == "echo"
    assert got["properties"]["sharingProfile"] == sharing


def test_gallery_put_naming_default_private_permissions_is_accepted(arm, group, gallery):
    path = arm.gallery_path(group, gallery)
    arm.done(
        arm.put(
            path,
            {"location": "eastus", "properties": {"description": "d", "sharingProfile": {"permissions": "Private"}}},
        )
    )
    assert arm.state(path)["properties"]["description"] == "d"
