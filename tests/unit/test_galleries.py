"""Gallery bodies: canonical form, read-only fields dropped, sharing, and what an update may change."""

from __future__ import annotations

import pytest

from vmgallery.domain.errors import InvalidParameter, InvalidRequestContent, PropertyChangeNotAllowed
from vmgallery.domain.galleries import check_gallery_update, normalize_gallery, permissions, unique_name

SUB = "00000000-0000-0000-0000-000000000001"


def test_unique_name():
    assert unique_name(SUB, "myGallery") == f"{SUB}-MYGALLERY"


def test_minimal_gallery():
    assert normalize_gallery({"location": "eastus"}) == {"location": "eastus"}


def test_read_only_fields_are_dropped_so_an_echoed_get_is_accepted():
    got = {
        "id": "/x",
        "name": "g",
        "type": "Microsoft.Compute/galleries",
        "location": "eastus",
        "tags": {"a": "b"},
        "properties": {
            "description": "d",
            "identifier": {"uniqueName": f"{SUB}-G"},
            "provisioningState": "Succeeded",
            "sharingStatus": {"aggregatedState": "Succeeded"},
            "sharingProfile": {"permissions": "Private", "groups": []},
        },
    }
    spec = normalize_gallery(got)
    assert spec == {
        "location": "eastus",
        "tags": {"a": "b"},
        "properties": {"description": "d", "sharingProfile": {"permissions": "Private"}},
    }
    assert got["id"] == "/x"  # the input is not modified


def test_permissions():
    assert permissions({}) == "Private"
    assert permissions({"properties": {"sharingProfile": {"permissions": "Groups"}}}) == "Groups"
    body = normalize_gallery(
        {
            "properties": {
                "sharingProfile": {"permissions": "community", "communityGalleryInfo": {"publicNamePrefix": "p"}}
            }
        }
    )
    assert permissions(body) == "Community"


def test_sharing_permissions_rejected():
    with pytest.raises(InvalidParameter) as exc:
        normalize_gallery({"properties": {"sharingProfile": {"permissions": "Everyone"}}})
    assert exc.value.target == "properties.sharingProfile.permissions" and "'Everyone'" in exc.value.message


def test_community_info_needs_community_permissions():
    with pytest.raises(InvalidParameter) as exc:
        normalize_gallery(
            {"properties": {"sharingProfile": {"permissions": "Groups", "communityGalleryInfo": {"eula": "x"}}}}
        )
    assert exc.value.target == "properties.sharingProfile.communityGalleryInfo"


@pytest.mark.parametrize(
    "body, target",
    [
        ({"properties": {"description": 5}}, "properties.description"),
        (
            {"properties": {"softDeletePolicy": {"isSoftDeleteEnabled": "yes"}}},
            "properties.softDeletePolicy.isSoftDeleteEnabled",
        ),
        ({"tags": ["a"]}, "tags"),
    ],
)
def test_invalid_values_named(body, target):
    with pytest.raises(InvalidParameter) as exc:
        normalize_gallery(body)
    assert exc.value.target == target


def test_properties_must_be_an_object():
    with pytest.raises(InvalidRequestContent) as exc:
        normalize_gallery({"properties": "x"})
    assert exc.value.target == "properties"


def test_update_may_change_description_and_tags():
    old = normalize_gallery({"location": "eastus", "properties": {"description": "a"}, "tags": {"t": "1"}})
    new = normalize_gallery({"location": "eastus", "properties": {"description": "b"}, "tags": {}})
    check_gallery_update(old, new)


def test_update_may_change_permissions_as_az_sig_update_does():
    old = normalize_gallery({"location": "eastus", "properties": {"description": "a"}})
    new = normalize_gallery(
        {"location": "eastus", "properties": {"description": "a", "sharingProfile": {"permissions": "Groups"}}}
    )
    check_gallery_update(old, new)


@pytest.mark.parametrize(
    "change, target",
    [
        ({"softDeletePolicy": {"isSoftDeleteEnabled": True}}, "properties.softDeletePolicy.isSoftDeleteEnabled"),
    ],
)
def test_update_of_anything_else_rejected(change, target):
    old = normalize_gallery({"location": "eastus", "properties": {"description": "a"}})
    new = normalize_gallery({"location": "eastus", "properties": {"description": "a", **change}})
    with pytest.raises(PropertyChangeNotAllowed) as exc:
        check_gallery_update(old, new)
    assert exc.value.target == target


def test_location_spelled_for_display_is_no_change():
    stored = normalize_gallery({"location": "eastus", "properties": {"description": "a"}})
    assert normalize_gallery({"location": "East US"})["location"] == "eastus"
    check_gallery_update(stored, normalize_gallery({"location": "East US", "properties": {"description": "a"}}))


def test_naming_the_default_permissions_is_no_change():
    stored = normalize_gallery({"location": "eastus"})
    check_gallery_update(
        stored, normalize_gallery({"location": "eastus", "properties": {"sharingProfile": {"permissions": "private"}}})
    )
    check_gallery_update(
        normalize_gallery({"location": "eastus", "properties": {"sharingProfile": {"permissions": "Private"}}}), stored
    )
