"""Updates keep what the server set (issue 10, item 4), for every resource kind, over generated resources:
PUT(GET(x)) leaves GET unchanged, and PUT({location}), as a bare az update might send, changes at most what such a
PUT may reset (the kind's writable properties), or is refused and changes nothing."""

from __future__ import annotations

import string
import uuid

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .rules_support import GALLERY_API, Arm

DISK_API = "2023-10-02"
IMAGE_API = "2024-03-01"
GROUP_API = "2021-04-01"

TAGS = st.dictionaries(
    st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12),
    st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20),
    max_size=3,
)
TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)


def _optional(draw, body: dict, key: str, strategy) -> None:
    value = draw(st.none() | strategy)
    if value is not None:
        body[key] = value


def _disk(arm: Arm, group: str, size: int = 1, **props) -> str:
    path = f"{arm.group_path(group)}/providers/Microsoft.Compute/disks/d{uuid.uuid4().hex[:8]}"
    body = {
        "location": "eastus",
        "properties": {"diskSizeGB": size, "creationData": {"createOption": "Empty"}, **props},
    }
    arm.done(arm.put(path, body, api=DISK_API))
    return path


def make_group(arm: Arm, group: str, draw) -> tuple[str, str]:
    name = f"rg-{uuid.uuid4().hex[:8]}"
    body: dict = {"location": "eastus"}
    _optional(draw, body, "tags", TAGS)
    arm.done(arm.put(arm.group_path(name), body, api=GROUP_API))
    return arm.group_path(name), GROUP_API


def make_gallery(arm: Arm, group: str, draw) -> tuple[str, str]:
    path = arm.gallery_path(group, f"g{uuid.uuid4().hex[:8]}")
    body: dict = {"location": "eastus", "properties": {}}
    _optional(draw, body, "tags", TAGS)
    _optional(draw, body["properties"], "description", TEXT)
    arm.done(arm.put(path, body))
    return path, GALLERY_API


def _definition_body(draw) -> dict:
    props: dict = {
        "osType": draw(st.sampled_from(["Linux", "Windows"])),
        "osState": "Generalized",
        "identifier": {"publisher": "p", "offer": "o", "sku": uuid.uuid4().hex[:8]},
        "hyperVGeneration": draw(st.sampled_from(["V1", "V2"])),
    }
    _optional(draw, props, "description", TEXT)
    _optional(draw, props, "eula", TEXT)
    _optional(draw, props, "releaseNoteUri", st.just("https://example.com/notes"))
    _optional(draw, props, "recommended", st.just({"vCPUs": {"min": 1, "max": 4}}))
    body = {"location": "eastus", "properties": props}
    _optional(draw, body, "tags", TAGS)
    return body


def make_definition(arm: Arm, group: str, draw) -> tuple[str, str]:
    gallery = arm.make_gallery(group)
    path = arm.image_path(group, gallery, f"i{uuid.uuid4().hex[:8]}")
    arm.done(arm.put(path, _definition_body(draw)))
    return path, GALLERY_API


def make_version(arm: Arm, group: str, draw) -> tuple[str, str]:
    definition, _ = make_definition(arm, group, draw)
    storage: dict = {"osDiskImage": {"source": {"id": _id(arm, _disk(arm, group), DISK_API)}}}
    luns = draw(st.lists(st.integers(0, 63), unique=True, max_size=2))
    if luns:
        storage["dataDiskImages"] = [
            {"lun": lun, "source": {"id": _id(arm, _disk(arm, group, 2), DISK_API)}} for lun in luns
        ]
    profile: dict = {}
    _optional(draw, profile, "excludeFromLatest", st.booleans())
    _optional(draw, profile, "endOfLifeDate", st.just("2040-01-01T00:00:00+00:00"))
    body = {"location": "eastus", "properties": {"publishingProfile": profile, "storageProfile": storage}}
    _optional(draw, body, "tags", TAGS)
    path = f"{definition}/versions/{draw(st.integers(0, 99))}.{draw(st.integers(0, 99))}.0"
    arm.done(arm.put(path, body))
    return path, GALLERY_API


def make_disk(arm: Arm, group: str, draw) -> tuple[str, str]:
    props: dict = {}
    _optional(draw, props, "osType", st.sampled_from(["Linux", "Windows"]))
    _optional(draw, props, "hyperVGeneration", st.sampled_from(["V1", "V2"]))
    path = _disk(arm, group, draw(st.integers(1, 4)), **props)
    tags = draw(TAGS)
    if tags:
        body = arm.get(path, DISK_API).json()
        arm.done(arm.put(path, {**body, "tags": tags}, api=DISK_API))
    return path, DISK_API


def make_snapshot(arm: Arm, group: str, draw) -> tuple[str, str]:
    source = _id(arm, _disk(arm, group, osType="Linux"), DISK_API)
    path = f"{arm.group_path(group)}/providers/Microsoft.Compute/snapshots/s{uuid.uuid4().hex[:8]}"
    body: dict = {
        "location": "eastus",
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": source}},
    }
    _optional(draw, body, "tags", TAGS)
    arm.done(arm.put(path, body, api=DISK_API))
    return path, DISK_API


def make_image(arm: Arm, group: str, draw) -> tuple[str, str]:
    disk = _id(arm, _disk(arm, group, osType="Linux"), DISK_API)
    os_disk: dict = {"osType": "Linux", "osState": "Generalized", "managedDisk": {"id": disk}}
    _optional(draw, os_disk, "caching", st.sampled_from(["None", "ReadOnly", "ReadWrite"]))
    path = f"{arm.group_path(group)}/providers/Microsoft.Compute/images/m{uuid.uuid4().hex[:8]}"
    body: dict = {"location": "eastus", "properties": {"storageProfile": {"osDisk": os_disk}}}
    _optional(draw, body, "tags", TAGS)
    arm.done(arm.put(path, body, api=IMAGE_API))
    return path, IMAGE_API


def _id(arm: Arm, path: str, api: str) -> str:
    return arm.get(path, api).json()["id"]


# What a PUT without them resets (to absent or the default): each kind's writable properties.
KINDS = {
    "resource group": (make_group, {"tags"}),
    "gallery": (make_gallery, {"tags", "properties.description"}),
    "image definition": (make_definition, {"tags"}),
    "image version": (
        make_version,
        {
            "tags",
            "properties.publishingProfile.excludeFromLatest",
            "properties.publishingProfile.endOfLifeDate",
            "properties.publishingProfile.targetRegions",
        },
    ),
    "disk": (make_disk, {"tags"}),
    "snapshot": (make_snapshot, {"tags"}),
    "managed image": (make_image, {"tags"}),
}


def _leaves(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out: dict = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: value}


def _state(arm: Arm, path: str, api: str) -> dict:
    resp = arm.get(path, api)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize("kind", KINDS)
# Against a server, shrinking a failure costs more than it tells: the first failing example is reported as drawn.
@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_updates_keep_what_they_do_not_set(http, kind, data):
    arm = Arm(http, str(uuid.uuid4()))
    group = arm.make_group()
    make, resettable = KINDS[kind]
    path, api = make(arm, group, data.draw)
    before = _state(arm, path, api)

    arm.done(arm.put(path, before, api=api))
    assert _state(arm, path, api) == before

    resp = arm.put(path, {"location": before["location"]}, api=api)
    if resp.status_code >= 400:
        assert 400 <= resp.status_code < 500 and "error" in resp.json(), resp.text
        assert _state(arm, path, api) == before
    else:
        arm.done(resp)
        old, new = _leaves(before), _leaves(_state(arm, path, api))
        for leaf in sorted(set(old) | set(new)):
            if not any(leaf == r or leaf.startswith(r + ".") for r in resettable):
                assert old.get(leaf) == new.get(leaf), (leaf, old.get(leaf), new.get(leaf))
        arm.done(arm.put(path, before, api=api))
        assert _state(arm, path, api) == before
