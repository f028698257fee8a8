"""Limits per subscription per region: galleries, image definitions and versions (configurable; 2, 3, 2 here). Past the
limit a create is 409 QuotaExceeded naming the subscription, region and limit, and nothing is created; another
region or another subscription still has room; an update is not a create; deleting frees room."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import ResourceExistsError

from tests.conftest import running_server
from vmgallery.config import Limits

from .conftest import definition_body
from .rules_support import Arm, assert_error
from .sdk import compute_client

GALLERIES, DEFINITIONS, VERSIONS = 2, 3, 2


@pytest.fixture(scope="module")
def small_server(backend, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(f"quota-{backend}")
    (data_dir / "config.toml").write_text(
        f"[limits]\ngalleries_per_region = {GALLERIES}\nimage_definitions_per_region = {DEFINITIONS}\n"
        f"image_versions_per_region = {VERSIONS}\n"
    )
    with running_server(backend, data_dir) as srv:
        yield srv


@pytest.fixture(scope="module")
def small_http(small_server):
    with small_server.http() as client:
        yield client


def account(small_http) -> Arm:
    """A fresh subscription on the small server."""
    return Arm(small_http, str(uuid.uuid4()))


def gallery_quota_error(resp, arm: Arm, region: str) -> None:
    assert_error(
        resp, 409, "QuotaExceeded", "location", arm.subscription, f"'{region}'", f"limit is {GALLERIES}", "galleries"
    )


def test_gallery_limit_per_region(small_http):
    arm = account(small_http)
    groups = [arm.make_group(), arm.make_group()]
    # The limit counts the whole subscription, across resource groups.
    arm.make_gallery(groups[0], "one")
    arm.make_gallery(groups[1], "two")
    path = arm.gallery_path(groups[0], "three")
    gallery_quota_error(arm.put(path, {"location": "eastus"}), arm, "eastus")
    assert arm.state(path) is None
    # Another region still has room, and so does another subscription in the same region.
    arm.make_gallery(groups[0], "west", {"location": "westus"})
    other = account(small_http)
    other.make_gallery(other.make_group(), "one")
    # Updating an existing gallery is not a create.
    arm.done(arm.put(arm.gallery_path(groups[0], "one"), {"location": "eastus", "properties": {"description": "d"}}))
    # Deleting frees room.
    arm.remove(arm.gallery_path(groups[1], "two"))
    arm.make_gallery(groups[0], "three")
    gallery_quota_error(arm.put(arm.gallery_path(groups[1], "four"), {"location": "East US"}), arm, "eastus")


def test_gallery_limit_through_sdk(small_server, small_http):
    subscription = str(uuid.uuid4())
    group = Arm(small_http, subscription).make_group()
    with compute_client(small_server, subscription) as compute:
        for name in ("a", "b"):
            compute.galleries.begin_create_or_update(group, name, {"location": "westeurope"}).result()
        with pytest.raises(ResourceExistsError) as exc:
            compute.galleries.begin_create_or_update(group, "c", {"location": "westeurope"}).result()
        assert exc.value.error.code == "QuotaExceeded" and "westeurope" in exc.value.message
        assert sorted(g.name for g in compute.galleries.list_by_resource_group(group)) == ["a", "b"]


def test_definition_limit_per_region(small_http):
    arm = account(small_http)
    group = arm.make_group()
    first, second = arm.make_gallery(group, "first"), arm.make_gallery(group, "second")
    arm.make_image(group, first, "a", definition_body(sku="a"))
    arm.make_image(group, first, "b", definition_body(sku="b"))
    arm.make_image(group, second, "c", definition_body(sku="c"))
    # The limit counts the subscription's region, across galleries.
    path = arm.image_path(group, second, "d")
    assert_error(
        arm.put(path, definition_body(sku="d")),
        409,
        "QuotaExceeded",
        "location",
        arm.subscription,
        "'eastus'",
        f"limit is {DEFINITIONS}",
        "image definition",
    )
    assert arm.state(path) is None
    # An update is not a create.
    arm.done(arm.put(arm.image_path(group, first, "a"), definition_body(sku="a", description="new")))
    # Another region has room, and so does another subscription.
    west = arm.make_gallery(group, "west", {"location": "westus"})
    arm.make_image(group, west, "w", {**definition_body(sku="w"), "location": "westus"})
    other = account(small_http)
    other_group = other.make_group()
    other.make_image(other_group, other.make_gallery(other_group), "a", definition_body())
    # Deleting frees room.
    arm.remove(arm.image_path(group, first, "b"))
    arm.make_image(group, second, "d", definition_body(sku="d"))
    assert_error(
        arm.put(arm.image_path(group, second, "e"), definition_body(sku="e")),
        409,
        "QuotaExceeded",
        "location",
        "'eastus'",
    )


def test_default_limits_are_100_and_1000():
    assert (Limits().galleries_per_region, Limits().image_definitions_per_region) == (100, 1000)


def test_concurrent_creates_stop_at_the_limit(small_server, small_http):
    arm = account(small_http)
    group = arm.make_group()

    def create(i: int) -> int:
        with small_server.http() as client:
            resp = Arm(client, arm.subscription).put(arm.gallery_path(group, f"g{i}"), {"location": "eastus"})
            if resp.status_code == 409:
                assert resp.json()["error"]["code"] == "QuotaExceeded", resp.text
            return resp.status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(create, range(6)))
    assert sorted(statuses) == [201] * GALLERIES + [409] * (6 - GALLERIES), statuses
    assert len(arm.names(arm.group_path(group) + "/providers/Microsoft.Compute/galleries")) == GALLERIES


def test_image_version_limit_per_region(small_http):
    arm = account(small_http)
    group = arm.make_group()
    gallery = arm.make_gallery(group)
    image = arm.image_path(group, gallery, "img")
    arm.make_image(group, gallery, "img", definition_body())
    disk = f"{arm.group_path(group)}/providers/Microsoft.Compute/disks/d"
    arm.done(
        arm.put(
            disk,
            {
                "location": "eastus",
                "properties": {"osType": "Linux", "diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
            },
            api="2026-03-02",
        )
    )
    source = {"id": f"/subscriptions/{arm.subscription}/resourceGroups/{group}/providers/Microsoft.Compute/disks/d"}
    body = {"location": "eastus", "properties": {"storageProfile": {"osDiskImage": {"source": source}}}}
    for name in ("1.0.0", "1.0.1"):
        arm.done(arm.put(f"{image}/versions/{name}", body))
    refused = arm.put(f"{image}/versions/1.0.2", body)
    assert_error(
        refused, 409, "QuotaExceeded", "location", arm.subscription, f"limit is {VERSIONS}", "gallery image versions"
    )
    assert arm.state(f"{image}/versions/1.0.2") is None
    arm.remove(f"{image}/versions/1.0.0")
    arm.done(arm.put(f"{image}/versions/1.0.2", body))
    assert Limits().image_versions_per_region == 10000
