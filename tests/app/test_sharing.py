"""Sharing use cases on fakes, as callers of several tenants (constructed Principals): who
sees a shared gallery, who makes a disk from it, and that a Remove takes effect on the next request."""

from __future__ import annotations

import uuid

import pytest

from vmgallery.app.kinds import DISK, GALLERY, RESOURCE_GROUP
from vmgallery.app.share import ShareGallery
from vmgallery.app.shared_views import ConsumerViews
from vmgallery.app.sharing import calling_as
from vmgallery.domain import errors
from vmgallery.domain.ids import ResourceId
from vmgallery.domain.principals import Principal, PrincipalType
from vmgallery.domain.sharing import SHARE_ACTION

from .fakes import FakeSubscriptionTenants

TENANT = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
OTHER_TENANT = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"
CONSUMER = str(uuid.uuid4())
ALICE = Principal("alice", TENANT, PrincipalType.USER)  # of the consumer subscription's tenant
MALLORY = Principal("mallory", OTHER_TENANT, PrincipalType.USER)  # of another tenant


class RecordingActionCheck:
    """A fake of the rbac check: records what was asked, refuses one principal."""

    def __init__(self, refuse: str | None = None):
        self.asked: list[tuple[str, str, str]] = []
        self.refuse = refuse

    def check(self, principal: Principal, action: str, scope: str) -> None:
        self.asked.append((principal.object_id, action, scope))
        if principal.object_id == self.refuse:
            raise errors.ArmError("denied", code="AuthorizationFailed")


@pytest.fixture
def shared(world):
    world.resources.subscription_tenants = FakeSubscriptionTenants({CONSUMER: TENANT})
    world.gallery_with_definition()
    world.resources.patch(world.gallery, {"properties": {"sharingProfile": {"permissions": "Groups"}}}, GALLERY)
    world.run_jobs()
    source = world.empty_disk("os")
    world.version_from("1.0.0", source)
    world.run_jobs()
    checks = RecordingActionCheck(refuse="mallory")
    share = ShareGallery(world.resources, checks)
    share.share(world.gallery, {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [CONSUMER]}]})
    unique = world.resources.get(world.gallery, GALLERY)["properties"]["identifier"]["uniqueName"]
    consumer_group = ResourceId(CONSUMER, "c", None, ())
    world.put(consumer_group, {"location": "eastus"}, RESOURCE_GROUP)
    return world, share, checks, unique, consumer_group


def test_the_share_action_is_checked_before_anything_changes(shared):
    world, share, checks, _unique, _ = shared
    assert checks.asked == [("00000000-0000-0000-0000-00000000ad01", SHARE_ACTION, world.gallery.text)]
    before = world.resources.get(world.gallery, GALLERY)
    with calling_as(MALLORY), pytest.raises(errors.ArmError) as refused:
        share.share(world.gallery, {"operationType": "Reset"})
    assert refused.value.code == "AuthorizationFailed"
    assert world.resources.get(world.gallery, GALLERY) == before


def test_only_callers_of_the_consumer_tenant_see_the_share(shared):
    world, _share, _checks, unique, _ = shared
    views = ConsumerViews(world.resources)
    with calling_as(ALICE):
        assert [g["name"] for g in views.list_shared(CONSUMER, "eastus", None, 0, 10).items] == [unique]
        assert views.get_version(CONSUMER, "eastus", False, unique, "linux", "1.0.0")["name"] == "1.0.0"
    with calling_as(MALLORY):
        assert views.list_shared(CONSUMER, "eastus", None, 0, 10).items == []
        with pytest.raises(errors.NotFound):
            views.get_gallery(CONSUMER, "eastus", False, unique)
    # a subscription of no known tenant: only the admin acts in it, and it is not shared with anyway
    with calling_as(ALICE):
        assert views.list_shared(str(uuid.uuid4()), "eastus", None, 0, 10).items == []


def test_disks_from_a_shared_image_follow_the_share(shared):
    world, share, _checks, unique, consumer_group = shared
    ref = f"/SharedGalleries/{unique}/Images/linux/Versions/latest"

    def disk(name: str):
        body = {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "FromImage", "galleryImageReference": {"sharedGalleryImageId": ref}}
            },
        }
        return world.put(consumer_group.child("disks", name, "Microsoft.Compute"), body, DISK)

    with calling_as(MALLORY), pytest.raises(errors.NotFound) as hidden:
        disk("m")
    assert world.group.resource_group not in hidden.value.message
    with calling_as(ALICE):
        made = disk("a")
    world.run_jobs()
    assert made.body["properties"]["creationData"]["galleryImageReference"] == {"sharedGalleryImageId": ref}

    share.share(world.gallery, {"operationType": "Remove", "groups": [{"type": "Subscriptions", "ids": [CONSUMER]}]})
    with calling_as(ALICE), pytest.raises(errors.NotFound):
        disk("b")
