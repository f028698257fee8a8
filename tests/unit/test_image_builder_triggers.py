"""Image templates' triggers, the pure rules: a SourceImage trigger's body, which templates may have one, and which
new versions start a run."""

from __future__ import annotations

import pytest

from vmgallery.domain import errors
from vmgallery.domain import image_builder as rules

DEF = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d"
PLATFORM = {"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s", "version": "latest"}


def shared(version_id: str) -> dict:
    return {"type": "SharedImageVersion", "imageVersionId": version_id}


def test_a_trigger_keeps_only_its_kind():
    body = rules.normalize_trigger(
        {
            "id": "x",
            "location": "eastus",
            "properties": {"kind": "SourceImage", "status": {"code": "Healthy"}, "provisioningState": "Succeeded"},
        }
    )
    assert body == {"properties": {"kind": "SourceImage"}}


@pytest.mark.parametrize(
    ("raw", "target"),
    [
        ({}, "properties"),
        ({"properties": {}}, "properties.kind"),
        ({"properties": {"kind": "Schedule"}}, "properties.kind"),
    ],
)
def test_a_trigger_needs_a_known_kind(raw, target):
    with pytest.raises(errors.ArmError) as err:
        rules.normalize_trigger(raw)
    assert err.value.status == 400 and err.value.target == target


def test_a_triggers_kind_is_fixed():
    rules.check_trigger_update({"properties": {"kind": "SourceImage"}}, {"properties": {"kind": "SourceImage"}})
    with pytest.raises(errors.PropertyChangeNotAllowed):
        rules.check_trigger_update({"properties": {"kind": "SourceImage"}}, {"properties": {"kind": "Other"}})


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (
            {"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s", "version": "latest"},
            "properties.source.type",
        ),
        (shared(f"{DEF}/versions/1.0.0"), "properties.source.imageVersionId"),
        (shared(DEF), "properties.source.imageVersionId"),
    ],
)
def test_only_a_latest_gallery_source_takes_a_trigger(source, target):
    with pytest.raises(errors.InvalidParameter) as err:
        rules.check_trigger_source(source)
    assert err.value.target == target


def test_a_latest_gallery_source_takes_a_trigger():
    rules.check_trigger_source(shared(f"{DEF}/versions/latest"))
    rules.check_trigger_source(shared(f"{DEF}/VERSIONS/Latest"))


def test_a_new_latest_version_of_the_source_definition_fires():
    source = shared(f"{DEF.replace('resourceGroups', 'resourcegroups')}/versions/latest")
    assert rules.trigger_fires(source, DEF.lower(), became_latest=True)
    assert rules.trigger_fires(source, DEF, became_latest=True)


@pytest.mark.parametrize(
    ("source", "definition", "became_latest"),
    [
        (shared(f"{DEF}/versions/latest"), DEF, False),  # excluded from latest, or older than the latest
        (shared(f"{DEF}/versions/latest"), DEF + "2", True),  # another definition
        (shared(f"{DEF}/versions/1.0.0"), DEF, True),  # a pinned version does not follow
        (PLATFORM, DEF, True),
        (shared("not an id/versions/latest"), DEF, True),
    ],
)
def test_what_does_not_fire(source, definition, became_latest):
    assert not rules.trigger_fires(source, definition.lower(), became_latest)
