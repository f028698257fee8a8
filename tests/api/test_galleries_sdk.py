"""Galleries and image definitions through the real azure-mgmt-compute SDK (2026-03-03) over loopback HTTPS."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from .conftest import definition_body


def test_gallery_lifecycle(compute, group, subscription):
    poller = compute.galleries.begin_create_or_update(
        group,
        "myGallery",
        {"location": "East US", "tags": {"team": "infra"}, "properties": {"description": "golden images"}},
    )
    created = poller.result()
    assert created.name == "myGallery"
    assert created.type == "Microsoft.Compute/galleries"
    assert created.location == "eastus"
    assert created.provisioning_state == "Succeeded"
    assert created.identifier.unique_name == f"{subscription}-MYGALLERY"
    assert (
        created.id
        == f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/myGallery"
    )

    fetched = compute.galleries.get(group.upper(), "MYGALLERY")
    assert fetched.id == created.id
    assert fetched.tags == {"team": "infra"}

    updated = compute.galleries.begin_update(
        group, "myGallery", {"properties": {"description": "v2"}, "tags": {"team": "ops"}}
    ).result()
    assert updated.description == "v2"
    assert updated.tags == {"team": "ops"}
    assert compute.galleries.get(group, "myGallery").description == "v2"

    names = [g.name for g in compute.galleries.list_by_resource_group(group)]
    assert names == ["myGallery"]
    assert "myGallery" in [g.name for g in compute.galleries.list()]

    compute.galleries.begin_delete(group, "myGallery").result()
    with pytest.raises(ResourceNotFoundError):
        compute.galleries.get(group, "myGallery")


def test_definition_lifecycle(compute, group, gallery):
    body = definition_body(
        hyperVGeneration="V2",
        features=[{"name": "SecurityType", "value": "TrustedLaunch"}],
        recommended={"vCPUs": {"min": 2, "max": 8}, "memory": {"min": 4, "max": 32}},
        description="ubuntu base",
    )
    created = compute.gallery_images.begin_create_or_update(group, gallery, "ubuntu", body).result()
    assert created.provisioning_state == "Succeeded"
    assert created.os_type == "Linux" and created.hyper_v_generation == "V2"
    assert created.architecture == "x64"
    assert created.features[0].name == "SecurityType"

    updated = compute.gallery_images.begin_update(
        group,
        gallery,
        "ubuntu",
        {
            "properties": {
                "recommended": {"vCPUs": {"min": 1, "max": 4}},
                "description": "new",
                "endOfLifeDate": "2030-01-01T00:00:00Z",
                "releaseNoteUri": "https://example.com/n",
            }
        },
    ).result()
    assert updated.recommended.v_cp_us.max == 4
    assert updated.description == "new"

    listed = list(compute.gallery_images.list_by_gallery(group, gallery))
    assert [i.name for i in listed] == ["ubuntu"]

    with pytest.raises(ResourceExistsError) as exc:
        compute.galleries.begin_delete(group, gallery).result()
    assert "ubuntu" in exc.value.message

    compute.gallery_images.begin_delete(group, gallery, "ubuntu").result()
    # No wait-and-retry window: the parent goes as soon as the child's delete has finished.
    compute.galleries.begin_delete(group, gallery).result()
    with pytest.raises(ResourceNotFoundError):
        compute.galleries.get(group, gallery)


def test_definition_needs_gallery(compute, group):
    with pytest.raises(ResourceNotFoundError) as exc:
        compute.gallery_images.begin_create_or_update(group, "nogallery", "img", definition_body()).result()
    assert exc.value.error.code == "ParentResourceNotFound"


def test_gallery_needs_resource_group(compute):
    with pytest.raises(ResourceNotFoundError) as exc:
        compute.galleries.begin_create_or_update("missing-rg", "g", {"location": "eastus"}).result()
    assert exc.value.error.code == "ResourceGroupNotFound"


def test_duplicate_identifier_conflict(compute, group, gallery):
    compute.gallery_images.begin_create_or_update(group, gallery, "a", definition_body("P", "O", "S")).result()
    with pytest.raises(ResourceExistsError) as exc:
        compute.gallery_images.begin_create_or_update(group, gallery, "b", definition_body("p", "o", "s")).result()
    assert "'a'" in exc.value.message
    # Sharing one or two of the three is fine.
    compute.gallery_images.begin_create_or_update(group, gallery, "c", definition_body("P", "O", "other")).result()
    compute.gallery_images.begin_create_or_update(group, gallery, "d", definition_body("P", "x", "y")).result()
    assert len(list(compute.gallery_images.list_by_gallery(group, gallery))) == 3


def test_update_of_fixed_property_rejected(compute, group, gallery):
    compute.gallery_images.begin_create_or_update(group, gallery, "img", definition_body()).result()
    with pytest.raises(HttpResponseError) as exc:
        compute.gallery_images.begin_update(group, gallery, "img", {"properties": {"osState": "Specialized"}}).result()
    assert exc.value.status_code == 400
    assert exc.value.error.code == "PropertyChangeNotAllowed"
    assert exc.value.error.target == "properties.osState"
    assert compute.gallery_images.get(group, gallery, "img").os_state == "Generalized"
