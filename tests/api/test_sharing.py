"""Direct shared and community galleries through the real SDK: share, read as a consumer, make disks, revoke.

(SDK 39 flattens these models' properties onto `identifier`, which breaks `image.os_type`; the tests read
`.properties.*`, which is what the wire carries.)

The consumer is another subscription (the admin token acts in every one until identity lands; who may act where is
tested at the domain and app level in tests/unit/test_sharing.py and tests/app/test_sharing.py).
"""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from .conftest import definition_body
from .sdk import compute_client, resource_client
from .test_disks import image, read_disk, upload_disk
from .test_versions import make_version


@pytest.fixture
def consumer(server):
    """A second subscription with a resource group: where a consumer makes disks."""
    sub = str(uuid.uuid4())
    with compute_client(server, sub) as compute, resource_client(server, sub) as rm:
        rm.resource_groups.create_or_update("consumer", {"location": "eastus"})
        yield sub, compute


def _gallery(compute, group, sharing: dict) -> str:
    name = f"gal{uuid.uuid4().hex[:8]}"
    compute.galleries.begin_create_or_update(
        group, name, {"location": "eastus", "properties": {"sharingProfile": sharing}}
    ).result()
    return name


def _published(compute, server, group, gallery, versions=("1.0.0",), **profiles):
    compute.gallery_images.begin_create_or_update(
        group, gallery, "linux", definition_body(hyperVGeneration="V2", eula="https://example.com/eula")
    ).result()
    data = image(2, seed=7)
    upload_disk(compute, server, group, "os", data)
    disk_id = compute.disks.get(group, "os").id
    for v in versions:
        make_version(compute, group, gallery, "linux", v, disk_id, **profiles.get(v, {}))
    return data


def _disk(compute, name, ref: dict):
    return compute.disks.begin_create_or_update(
        "consumer",
        name,
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "FromImage", "galleryImageReference": ref}},
        },
    ).result()


def test_direct_share_read_disk_and_revoke(compute, server, group, subscription, consumer):
    consumer_sub, theirs = consumer
    gallery = _gallery(compute, group, {"permissions": "Groups"})
    data = _published(compute, server, group, gallery, ("1.0.0", "1.1.0"))
    unique = compute.galleries.get(group, gallery).identifier.unique_name
    assert unique == f"{subscription}-{gallery.upper()}"

    assert list(theirs.shared_galleries.list("eastus")) == []
    result = compute.gallery_sharing_profile.begin_update(
        group, gallery, {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [consumer_sub]}]}
    ).result()
    assert result.operation_type == "Add" and result.groups[0].ids == [consumer_sub]
    shown = compute.galleries.get(group, gallery, select="Permissions", expand="SharingProfile/Groups")
    assert shown.sharing_profile.permissions == "Groups"
    assert shown.sharing_profile.groups[0].type == "Subscriptions"
    assert shown.sharing_profile.groups[0].ids == [consumer_sub]
    assert shown.sharing_status.aggregated_state == "Succeeded"

    listed = list(theirs.shared_galleries.list("eastus"))
    assert [g.name for g in listed] == [unique]
    assert listed[0].unique_id == f"/SharedGalleries/{unique}"
    assert list(theirs.shared_galleries.list("eastus", shared_to="tenant")) == []
    got = theirs.shared_galleries.get("eastus", unique)
    assert got.unique_id == f"/SharedGalleries/{unique}"
    images = list(theirs.shared_gallery_images.list("eastus", unique))
    assert [(i.name, i.properties.identifier.publisher, i.properties.os_type, i.properties.eula) for i in images] == [
        ("linux", "pub", "Linux", "https://example.com/eula")
    ]
    versions = list(theirs.shared_gallery_image_versions.list("eastus", unique, "linux"))
    assert sorted(v.name for v in versions) == ["1.0.0", "1.1.0"]
    one = theirs.shared_gallery_image_versions.get("eastus", unique, "linux", "1.1.0")
    assert one.unique_id == f"/SharedGalleries/{unique}/Images/linux/Versions/1.1.0"
    assert one.properties.storage_profile.os_disk_image.disk_size_gb == 1

    raw = theirs.shared_gallery_image_versions.get("eastus", unique, "linux", "1.0.0").as_dict()
    text = str(raw).lower()
    assert group.lower() not in text and "/resourcegroups/" not in text, "the owner's resource group leaked"

    made = _disk(
        theirs, "from-shared", {"sharedGalleryImageId": f"/SharedGalleries/{unique}/Images/linux/Versions/latest"}
    )
    assert made.os_type == "Linux"
    assert made.creation_data.gallery_image_reference.shared_gallery_image_id.endswith("/Versions/latest")
    assert read_disk(theirs, server, "consumer", "from-shared") == data

    compute.gallery_sharing_profile.begin_update(
        group, gallery, {"operationType": "Remove", "groups": [{"type": "Subscriptions", "ids": [consumer_sub]}]}
    ).result()
    assert list(theirs.shared_galleries.list("eastus")) == []
    with pytest.raises(ResourceNotFoundError):
        theirs.shared_galleries.get("eastus", unique)
    with pytest.raises(ResourceNotFoundError):
        theirs.shared_gallery_image_versions.get("eastus", unique, "linux", "1.0.0")
    with pytest.raises(HttpResponseError) as refused:
        _disk(theirs, "late", {"sharedGalleryImageId": f"/SharedGalleries/{unique}/Images/linux/Versions/1.0.0"})
    assert refused.value.status_code == 404
    assert group not in str(refused.value.message)
    with pytest.raises(ResourceNotFoundError):
        theirs.disks.get("consumer", "late")


def test_tenant_share_and_reset(compute, server, group, consumer):
    consumer_sub, theirs = consumer
    gallery = _gallery(compute, group, {"permissions": "Groups"})
    _published(compute, server, group, gallery)
    unique = compute.galleries.get(group, gallery).identifier.unique_name
    # Every subscription belongs to the provisional default tenant until the identity directory lands.
    tenant = "00000000-0000-0000-0000-000000000000"
    compute.gallery_sharing_profile.begin_update(
        group, gallery, {"operationType": "Add", "groups": [{"type": "AADTenants", "ids": [tenant]}]}
    ).result()
    assert [g.name for g in theirs.shared_galleries.list("eastus", shared_to="tenant")] == [unique]
    assert list(theirs.shared_galleries.list("eastus")) == []  # shared with the tenant, not the subscription
    assert [i.name for i in theirs.shared_gallery_images.list("eastus", unique, shared_to="tenant")] == ["linux"]

    compute.gallery_sharing_profile.begin_update(group, gallery, {"operationType": "Reset"}).result()
    after = compute.galleries.get(group, gallery, expand="SharingProfile/Groups")
    assert after.sharing_profile.permissions == "Private" and not after.sharing_profile.groups
    assert list(theirs.shared_galleries.list("eastus", shared_to="tenant")) == []
    with pytest.raises(ResourceNotFoundError):
        theirs.shared_gallery_images.get("eastus", unique, "linux")


def test_share_errors_are_plain_and_change_nothing(compute, server, group, http, subscription):
    gallery = _gallery(compute, group, {"permissions": "Private"})
    path = (
        f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/{gallery}/share"
        "?api-version=2023-07-03"
    )
    before = compute.galleries.get(group, gallery).as_dict()
    cases = [
        (
            {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [str(uuid.uuid4())]}]},
            409,
            "needs 'Groups'",
        ),
        (
            {"operationType": "Add", "groups": [{"type": "Subscription", "ids": [str(uuid.uuid4())]}]},
            400,
            "Did you mean 'Subscriptions'",
        ),
        (
            {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [f"/subscriptions/{subscription}"]}]},
            400,
            "subscription id alone",
        ),
        (
            {"operationType": "Add", "groups": [{"type": "AADTenants", "ids": ["contoso.onmicrosoft.com"]}]},
            400,
            "not its domain name",
        ),
        ({"operationType": "Add"}, 400, "at least one"),
        ({"operationType": "Share"}, 400, "Add, Remove, Reset, EnableCommunity"),
        ({"operationType": "EnableCommunity"}, 409, "Community"),
    ]
    for body, status, mention in cases:
        answer = http.post(path, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert mention in answer.json()["error"]["message"], answer.text
    assert compute.galleries.get(group, gallery).as_dict() == before


def test_permissions_change_guarded_while_shared(compute, group):
    gallery = _gallery(compute, group, {"permissions": "Private"})
    compute.galleries.begin_update(
        group, gallery, {"properties": {"sharingProfile": {"permissions": "Groups"}}}
    ).result()
    compute.gallery_sharing_profile.begin_update(
        group, gallery, {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [str(uuid.uuid4())]}]}
    ).result()
    with pytest.raises(HttpResponseError) as refused:
        compute.galleries.begin_update(
            group, gallery, {"properties": {"sharingProfile": {"permissions": "Private"}}}
        ).result()
    assert "reset" in refused.value.message
    assert compute.galleries.get(group, gallery).sharing_profile.permissions == "Groups"


def test_community_gallery(compute, server, group, consumer):
    consumer_sub, theirs = consumer
    info = {
        "publisherUri": "https://example.com",
        "publisherContact": "images@example.com",
        "eula": "https://example.com/eula",
        "publicNamePrefix": "contoso",
    }
    gallery = _gallery(compute, group, {"permissions": "Community", "communityGalleryInfo": info})
    data = _published(
        compute,
        server,
        group,
        gallery,
        ("1.0.0", "1.1.0", "2.0.0"),
        **{"1.1.0": {"excludeFromLatest": True}, "2.0.0": {"endOfLifeDate": "2001-01-01T00:00:00Z"}},
    )
    compute.gallery_sharing_profile.begin_update(group, gallery, {"operationType": "EnableCommunity"}).result()
    community = compute.galleries.get(group, gallery).sharing_profile.community_gallery_info
    assert community.community_gallery_enabled is True
    (public,) = community.public_names
    assert public.startswith("contoso-") and len(public) > len("contoso-")

    got = theirs.community_galleries.get("eastus", public)
    assert got.unique_id == f"/CommunityGalleries/{public}"
    assert got.properties.community_metadata.publisher_contact == "images@example.com"
    assert got.properties.community_metadata.public_names == [public]
    images = list(theirs.community_gallery_images.list("eastus", public))
    assert [(i.name, i.properties.identifier.offer, i.properties.eula) for i in images] == [
        ("linux", "off", "https://example.com/eula")
    ]
    listed = [v.name for v in theirs.community_gallery_image_versions.list("eastus", public, "linux")]
    assert listed == ["1.0.0"], "excluded-from-latest and end-of-life versions are left out of the listing"
    pinned = theirs.community_gallery_image_versions.get("eastus", public, "linux", "2.0.0")
    assert pinned.unique_id == f"/CommunityGalleries/{public}/Images/linux/Versions/2.0.0"

    base = f"/CommunityGalleries/{public}/Images/linux/Versions"
    _disk(theirs, "pinned", {"communityGalleryImageId": f"{base}/1.1.0"})
    _disk(theirs, "latest", {"communityGalleryImageId": f"{base}/latest"})
    assert read_disk(theirs, server, "consumer", "latest") == data

    compute.gallery_sharing_profile.begin_update(group, gallery, {"operationType": "Reset"}).result()
    with pytest.raises(ResourceNotFoundError):
        theirs.community_galleries.get("eastus", public)
    with pytest.raises(HttpResponseError) as refused:
        _disk(theirs, "gone", {"communityGalleryImageId": f"{base}/1.0.0"})
    assert refused.value.status_code == 404


def test_consumer_listing_pages_and_refuses_bad_queries(compute, server, group, consumer, http):
    consumer_sub, theirs = consumer
    names = [_gallery(compute, group, {"permissions": "Groups"}) for _ in range(3)]
    for name in names:
        compute.gallery_sharing_profile.begin_update(
            group, name, {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [consumer_sub]}]}
        ).result()
    base = f"/subscriptions/{consumer_sub}/providers/Microsoft.Compute/locations/eastus/sharedGalleries"
    first = http.get(base, params={"api-version": "2023-07-03", "$top": "2"}).json()
    assert len(first["value"]) == 2 and "nextLink" in first
    rest = http.get(first["nextLink"]).json()
    assert len(rest["value"]) == 1 and "nextLink" not in rest
    assert len(list(theirs.shared_galleries.list("eastus"))) == 3

    bad = http.get(base, params={"api-version": "2023-07-03", "sharedTo": "everyone"})
    assert bad.status_code == 400 and bad.json()["error"]["target"] == "sharedTo"
    nowhere = http.get(base.replace("eastus", "moon"), params={"api-version": "2023-07-03"})
    assert nowhere.status_code == 400 and nowhere.json()["error"]["target"] == "location"
