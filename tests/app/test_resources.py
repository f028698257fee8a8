"""Create, update and delete rules of the resource use cases, on fakes of the ports."""

from __future__ import annotations

import pytest

from vmgallery.app.kinds import GALLERY, IMAGE_DEFINITION, RESOURCE_GROUP
from vmgallery.config import Limits
from vmgallery.domain import errors


def test_a_create_is_creating_until_its_job_runs(world):
    world.put(world.group, {"location": "eastus"}, RESOURCE_GROUP)
    created = world.put(world.gallery, {"location": "eastus"}, GALLERY)
    assert created.status == 201 and created.body["properties"]["provisioningState"] == "Creating"
    assert world.run_jobs() == 1
    assert world.resources.get(world.gallery, GALLERY)["properties"]["provisioningState"] == "Succeeded"
    op, _ = world.resources.operation(world.subscription, created.operation.id)
    assert op.status == "Succeeded" and op.end_time == world.clock()


def test_a_gallery_with_definitions_refuses_deletion_but_its_group_takes_everything(world):
    world.gallery_with_definition()
    with pytest.raises(errors.OperationNotAllowed) as refused:
        world.resources.delete(world.gallery, GALLERY)
    assert refused.value.status == 409 and "1 gallery image definition(s): 'linux'" in refused.value.message
    assert world.resources.get(world.gallery, GALLERY)["properties"]["provisioningState"] == "Succeeded"

    assert world.resources.delete(world.group, RESOURCE_GROUP).status == 202
    world.run_jobs()
    with world.db.read() as tx:
        assert tx.get(world.group.key) is None and tx.get(world.gallery.key) is None
        assert tx.get(world.definition.key) is None


def test_an_update_while_another_operation_runs_is_refused(world):
    world.put(world.group, {"location": "eastus"}, RESOURCE_GROUP)
    world.put(world.gallery, {"location": "eastus"}, GALLERY)
    with pytest.raises(errors.OperationNotAllowed) as busy:
        world.resources.patch(world.gallery, {"tags": {"a": "b"}}, GALLERY)
    assert busy.value.code == "OperationNotAllowed" and "in progress" in busy.value.message


def test_quota_counts_per_subscription_and_region(world):
    world.resources.settings = world.resources.settings.model_copy(update={"limits": Limits(galleries_per_region=1)})
    world.put(world.group, {"location": "eastus"}, RESOURCE_GROUP)
    world.put(world.gallery, {"location": "eastus"}, GALLERY)
    with pytest.raises(errors.QuotaExceeded):
        world.put(world.group.child("galleries", "g2", "Microsoft.Compute"), {"location": "eastus"}, GALLERY)
    world.put(world.group.child("galleries", "g3", "Microsoft.Compute"), {"location": "westus"}, GALLERY)
    with world.db.read() as tx:
        assert tx.count_in_region(world.subscription.lower(), "westus", GALLERY.type_key) == 1


def test_two_definitions_with_one_identifier_clash_and_nothing_is_written(world):
    world.gallery_with_definition()
    with world.db.read() as tx:
        before = tx.count_children(world.gallery.key)
    with pytest.raises(errors.Conflict) as clash:
        world.put(
            world.gallery.child("images", "other"),
            {
                "location": "eastus",
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
                },
            },
            IMAGE_DEFINITION,
        )
    assert clash.value.code == "GalleryImageIdentifierAlreadyExists"
    with world.db.read() as tx:
        assert tx.count_children(world.gallery.key) == before and tx.pending_jobs() == 0
