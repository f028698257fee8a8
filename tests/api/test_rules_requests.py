"""Request-level rules: the location must name a configured region (spelled either way) and an image definition
sits in its gallery's region; the api-version is required and must be one we answer to."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from vmgallery.domain.apiversions import GALLERY_API_VERSIONS

from .conftest import definition_body
from .rules_support import Arm, assert_error


@pytest.fixture
def arm(http, subscription) -> Arm:
    return Arm(http, subscription)


# -- location -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given, stored", [("eastus", "eastus"), ("East US", "eastus"), ("WestEurope", "westeurope"), ("west us", "westus")]
)
def test_configured_region_in_either_spelling(arm, group, given, stored):
    gallery = arm.make_gallery(group, body={"location": given})
    assert arm.state(arm.gallery_path(group, gallery))["location"] == stored


def test_unknown_region_refused(arm, group):
    path = arm.gallery_path(group, "g")
    assert_error(
        arm.put(path, {"location": "Mars Central"}),
        400,
        "LocationNotAvailableForResourceType",
        "location",
        "'Mars Central'",
        "eastus",
    )
    assert arm.state(path) is None


def test_unknown_region_refused_through_sdk(compute, group):
    with pytest.raises(HttpResponseError) as exc:
        compute.galleries.begin_create_or_update(group, "g", {"location": "atlantis"}).result()
    assert exc.value.status_code == 400 and exc.value.error.target == "location"
    assert "atlantis" in exc.value.error.message
    assert list(compute.galleries.list_by_resource_group(group)) == []


def test_location_required(arm, group):
    path = arm.gallery_path(group, "g")
    assert_error(arm.put(path, {"properties": {}}), 400, "InvalidParameter", "location", "location")
    assert arm.state(path) is None


def test_definition_in_its_gallery_region(arm, group, gallery):
    path = arm.image_path(group, gallery, "img")
    assert_error(
        arm.put(path, {**definition_body(), "location": "westus"}),
        400,
        "InvalidParameter",
        "location",
        "'eastus'",
        "'westus'",
    )
    assert arm.state(path) is None
    arm.done(arm.put(path, {**definition_body(), "location": "East US"}))
    assert arm.state(path)["location"] == "eastus"


def test_definition_region_through_sdk(compute, group):
    compute.galleries.begin_create_or_update(group, "west", {"location": "westus"}).result()
    with pytest.raises(HttpResponseError) as exc:
        compute.gallery_images.begin_create_or_update(group, "west", "img", definition_body()).result()
    assert exc.value.status_code == 400 and exc.value.error.target == "location"
    image = compute.gallery_images.begin_create_or_update(
        group, "west", "img", {**definition_body(), "location": "West US"}
    ).result()
    assert image.location == "westus"


def test_resource_group_put_again_with_display_location(arm):
    group = arm.make_group("eastus")
    resp = arm.put(arm.group_path(group), {"location": "East US"})
    assert resp.status_code == 200, resp.text


# -- api-version --------------------------------------------------------------------------------------------------
def test_api_version_missing(arm, http, group):
    path = arm.gallery_path(group, "g")
    for method, body in (("PUT", {"location": "eastus"}), ("GET", None), ("DELETE", None)):
        resp = http.request(method, path, json=body)
        assert_error(resp, 400, "MissingApiVersionParameter", "api-version", "api-version")
    assert_error(http.get(arm.gallery_path(group, "g") + "/images"), 400, "MissingApiVersionParameter", "api-version")
    assert arm.state(path) is None


@pytest.mark.parametrize("version", ["2017-01-01", "2025-03-03-preview", "latest"])
def test_api_version_unknown(arm, group, version):
    path = arm.gallery_path(group, "g")
    error = assert_error(
        arm.put(path, {"location": "eastus"}, api=version),
        400,
        "InvalidApiVersionParameter",
        "api-version",
        f"'{version}'",
        "Microsoft.Compute/galleries",
    )
    assert all(v in error["message"] for v in GALLERY_API_VERSIONS)
    assert arm.state(path) is None


@pytest.mark.parametrize("version", GALLERY_API_VERSIONS)
def test_each_gallery_api_version_accepted(arm, group, version):
    gallery = f"g{version.replace('-', '')}"
    path = arm.gallery_path(group, gallery)
    resp = arm.put(path, {"location": "eastus"}, api=version)
    arm.done(resp)
    assert arm.get(path, api=version).json()["name"] == gallery
    image = arm.image_path(group, gallery, "img")
    arm.done(arm.put(image, definition_body(), api=version))
    assert arm.get(image, api=version).status_code == 200
    listed = arm.get(arm.gallery_path(group, gallery) + "/images", api=version)
    assert [i["name"] for i in listed.json()["value"]] == ["img"]
    arm.done(arm.patch(image, {"properties": {"description": "d"}}, api=version))
    arm.done(arm.delete(image, api=version))
    arm.done(arm.delete(path, api=version))
    assert arm.get(path, api=version).status_code == 404
