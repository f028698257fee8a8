"""User-assigned identities' use cases over fakes: the directory entry made after the row (and the row undone when it
cannot be made), synchronous replace and delete, and an identity's principal gone with it."""

from __future__ import annotations

import pytest

from vmgallery.app.kinds import RESOURCE_GROUP, USER_ASSIGNED_IDENTITY
from vmgallery.domain import errors
from vmgallery.domain.identity import DEFAULT_TENANT_ID


class RecordingPrincipals:
    """A fake of the directory's managed principals: what was added and removed, or a refusal to add."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.added: list[tuple[str, str, str, str]] = []
        self.removed: list[str] = []

    def add_managed_identity(self, tenant_id: str, object_id: str, app_id: str, name: str) -> None:
        if self.fail:
            raise errors.Conflict("the directory refused")
        self.added.append((tenant_id, object_id, app_id, name))

    def remove_managed_identity(self, object_id: str) -> None:
        self.removed.append(object_id)


@pytest.fixture
def uami(world):
    world.put(world.group, {"location": "eastus"}, RESOURCE_GROUP)
    return world.group.child("userAssignedIdentities", "builder", "Microsoft.ManagedIdentity")


def test_create_replace_and_delete_keep_the_directory_in_step(world, uami):
    principals = RecordingPrincipals()
    world.resources.principals = principals
    made = world.put(uami, {"location": "eastus", "tags": {"a": "1"}}, USER_ASSIGNED_IDENTITY)
    props = made.body["properties"]
    assert made.status == 201 and made.operation is None
    assert principals.added == [(DEFAULT_TENANT_ID, props["principalId"], props["clientId"], "builder")]
    again = world.put(uami, {"location": "eastus", "properties": {"principalId": "forged"}}, USER_ASSIGNED_IDENTITY)
    assert again.status == 200 and again.body["properties"]["principalId"] == props["principalId"]
    assert len(principals.added) == 1
    assert world.resources.delete(uami, USER_ASSIGNED_IDENTITY).status == 200
    assert principals.removed == [props["principalId"]]
    assert world.resources.delete(uami, USER_ASSIGNED_IDENTITY).status == 204
    assert principals.removed == [props["principalId"]]


def test_an_identity_whose_principal_cannot_be_made_is_not_kept(world, uami):
    world.resources.principals = RecordingPrincipals(fail=True)
    with pytest.raises(errors.Conflict):
        world.put(uami, {"location": "eastus"}, USER_ASSIGNED_IDENTITY)
    with pytest.raises(errors.NotFound):
        world.resources.get(uami, USER_ASSIGNED_IDENTITY)


def test_without_a_directory_an_identity_still_gets_its_ids(world, uami):
    assert world.resources.principals is None
    made = world.put(uami, {"location": "eastus"}, USER_ASSIGNED_IDENTITY)
    assert made.status == 201 and made.body["properties"]["tenantId"] == DEFAULT_TENANT_ID
    assert world.resources.delete(uami, USER_ASSIGNED_IDENTITY).status == 200
