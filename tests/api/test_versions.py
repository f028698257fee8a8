"""Gallery image versions through the real SDK: capture without copying, `latest`, disks from versions, the rules."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from .conftest import definition_body
from .test_disks import _chunk_files, image, read_disk, upload_disk

GIB = 1 << 30


@pytest.fixture
def definition(compute, group, gallery) -> str:
    compute.gallery_images.begin_create_or_update(
        group, gallery, "linux", definition_body(hyperVGeneration="V2")
    ).result()
    return "linux"


def ids(compute, group):
    def disk(name):
        return compute.disks.get(group, name).id

    return disk


def make_version(
    compute,
    group,
    gallery,
    definition,
    name,
    os_source: str | None = None,
    data: list[tuple[int, str]] = (),
    *,
    image_source: str | None = None,
    **profile,
):
    storage = (
        {"source": {"id": image_source}}
        if image_source
        else {
            "osDiskImage": {"source": {"id": os_source}},
            "dataDiskImages": [{"lun": lun, "source": {"id": sid}} for lun, sid in data],
        }
    )
    body = {"location": "eastus", "properties": {"publishingProfile": profile, "storageProfile": storage}}
    return compute.gallery_image_versions.begin_create_or_update(group, gallery, definition, name, body).result()


def disk_from(compute, group, name, version_id, lun=None):
    ref = {"id": version_id} if lun is None else {"id": version_id, "lun": lun}
    return compute.disks.begin_create_or_update(
        group,
        name,
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "FromImage", "galleryImageReference": ref}},
        },
    ).result()


def test_capture_and_disks_from_version_move_no_bytes(compute, server, group, gallery, definition):
    os_bytes, data_bytes = image(4, seed=1), image(2, seed=2)
    upload_disk(compute, server, group, "os", os_bytes)
    upload_disk(compute, server, group, "data", data_bytes)
    compute.snapshots.begin_create_or_update(
        group,
        "data-snap",
        {
            "location": "eastus",
            "properties": {
                "creationData": {"createOption": "Copy", "sourceResourceId": compute.disks.get(group, "data").id}
            },
        },
    ).result()
    before = _chunk_files(server)
    version = make_version(
        compute,
        group,
        gallery,
        definition,
        "1.0.0",
        compute.disks.get(group, "os").id,
        [(3, compute.snapshots.get(group, "data-snap").id)],
    )
    assert version.provisioning_state == "Succeeded"
    assert version.publishing_profile.target_regions[0].name == "eastus"
    assert version.publishing_profile.published_date is not None
    assert version.storage_profile.os_disk_image.size_in_gb == 1
    assert version.storage_profile.data_disk_images[0].lun == 3

    made = disk_from(compute, group, "from-os", version.id)
    assert made.os_type == "Linux" and made.hyper_v_generation == "V2"
    disk_from(compute, group, "from-data", version.id, lun=3)
    assert _chunk_files(server) == before, "capturing or making disks copied bytes"
    assert read_disk(compute, server, group, "from-os") == os_bytes
    assert read_disk(compute, server, group, "from-data") == data_bytes

    status = compute.gallery_image_versions.get(group, gallery, definition, "1.0.0", expand="ReplicationStatus")
    assert status.replication_status.aggregated_state == "Completed"
    assert status.replication_status.summary[0].progress == 100


def test_latest_is_numeric_and_skips_excluded(compute, server, group, gallery, definition):
    contents = {}
    for n, name in enumerate(("1.0.9", "1.0.10", "1.0.2", "2.0.0")):
        contents[name] = image(2, seed=10 + n)
        upload_disk(compute, server, group, f"os{n}", contents[name])
        make_version(
            compute,
            group,
            gallery,
            definition,
            name,
            compute.disks.get(group, f"os{n}").id,
            excludeFromLatest=name == "2.0.0",
        )
    latest = compute.gallery_images.get(group, gallery, definition).id + "/versions/latest"

    def latest_bytes(disk_name):
        disk_from(compute, group, disk_name, latest)
        return read_disk(compute, server, group, disk_name)

    assert latest_bytes("a") == contents["1.0.10"]  # numeric order, and 2.0.0 is excluded
    copy = make_version(compute, group, gallery, definition, "1.1.0", image_source=latest)
    assert copy.provisioning_state == "Succeeded"
    assert latest_bytes("b") == contents["1.0.10"]  # 1.1.0 is a copy of 1.0.10 and is latest now
    compute.gallery_image_versions.begin_update(
        group, gallery, definition, "1.1.0", {"properties": {"publishingProfile": {"excludeFromLatest": True}}}
    ).result()
    compute.gallery_image_versions.begin_delete(group, gallery, definition, "1.0.10").result()
    assert latest_bytes("c") == contents["1.0.9"]


def test_version_name_rules(http, subscription, group, gallery, definition):
    base = (
        f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/"
        f"{gallery}/images/{definition}/versions"
    )
    for name, words in (("1.2", "2 parts"), ("1.a.0", "'a'"), ("1.2147483648.0", "minor")):
        r = http.put(
            f"{base}/{name}?api-version=2024-03-03",
            json={"location": "eastus", "properties": {"storageProfile": {"source": {"id": "/x"}}}},
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["target"] == "galleryImageVersionName" and words in r.json()["error"]["message"]
    assert http.get(f"{base}?api-version=2024-03-03").json()["value"] == []


def test_sources_must_fit_the_definition(compute, server, group, gallery, definition, http, subscription):
    compute.disks.begin_create_or_update(
        group,
        "win",
        {
            "location": "eastus",
            "properties": {
                "osType": "Windows",
                "hyperVGeneration": "V2",
                "diskSizeGB": 1,
                "creationData": {"createOption": "Empty"},
            },
        },
    ).result()
    compute.disks.begin_create_or_update(
        group,
        "gen1",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "hyperVGeneration": "V1",
                "diskSizeGB": 1,
                "creationData": {"createOption": "Empty"},
            },
        },
    ).result()
    compute.disks.begin_create_or_update(
        group,
        "big",
        {"location": "eastus", "properties": {"diskSizeGB": 1025, "creationData": {"createOption": "Empty"}}},
    ).result()
    compute.disks.begin_create_or_update(
        group,
        "ok",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "hyperVGeneration": "V2",
                "diskSizeGB": 1,
                "creationData": {"createOption": "Empty"},
            },
        },
    ).result()
    disk = ids(compute, group)
    cases = [
        ("win", [], "OS type is Windows"),
        ("gen1", [], "Hyper-V generation is V1"),
        ("ok", [(0, "big")], "lun 0 is 1025 GiB"),
    ]
    for os_name, data, words in cases:
        with pytest.raises(HttpResponseError) as exc:
            make_version(
                compute, group, gallery, definition, "1.0.0", disk(os_name), [(lun, disk(n)) for lun, n in data]
            )
        assert exc.value.status_code == 400 and words in exc.value.message
    with pytest.raises(ResourceNotFoundError):
        make_version(compute, group, gallery, definition, "1.0.0", disk("ok").replace("/ok", "/missing"))
    assert list(compute.gallery_image_versions.list_by_gallery_image(group, gallery, definition)) == []
    # Shallow versions may have data disks up to 32 TB.
    v = make_version(
        compute, group, gallery, definition, "1.0.0", disk("ok"), [(0, disk("big"))], replicationMode="Shallow"
    )
    assert v.publishing_profile.replication_mode == "Shallow"


def test_publishing_profile_rules_and_updates(compute, server, group, gallery, definition, http, subscription):
    upload_disk(compute, server, group, "os", image(2, seed=4))
    source = compute.disks.get(group, "os").id
    with pytest.raises(HttpResponseError) as exc:
        make_version(compute, group, gallery, definition, "1.0.0", source, targetRegions=[{"name": "westus"}])
    assert "source region" in exc.value.message or "eastus" in exc.value.message
    with pytest.raises(HttpResponseError) as exc:
        make_version(compute, group, gallery, definition, "1.0.0", source, replicaCount=101)
    assert exc.value.status_code == 400
    v = make_version(
        compute,
        group,
        gallery,
        definition,
        "1.0.0",
        source,
        replicaCount=2,
        targetRegions=[{"name": "East US", "storageAccountType": "standard_zrs"}],
    )
    region = v.publishing_profile.target_regions[0]
    assert (region.name, region.storage_account_type, region.regional_replica_count) == ("eastus", "Standard_ZRS", 2)

    # az's `image-version update`: GET, sources set to null, full PUT.
    path = (
        f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/"
        f"{gallery}/images/{definition}/versions/1.0.0?api-version=2024-03-03"
    )
    body = http.get(path).json()
    body["properties"]["storageProfile"]["osDiskImage"]["source"] = None
    body["properties"]["publishingProfile"]["endOfLifeDate"] = "2031-01-01T12:59:59Z"
    r = http.put(path, json=body)
    assert r.status_code == 200, r.text
    after = http.get(path).json()
    assert after["properties"]["storageProfile"]["osDiskImage"]["source"]["id"].lower() == source.lower()
    assert after["properties"]["publishingProfile"]["endOfLifeDate"] == "2031-01-01T12:59:59Z"

    body["properties"]["storageProfile"]["osDiskImage"]["source"] = {"id": source.replace("/os", "/other")}
    r = http.put(path, json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "PropertyChangeNotAllowed"
    r = http.patch(
        path,
        json={
            "properties": {
                "publishingProfile": {
                    "replicationMode": "Shallow",
                    "replicaCount": 1,
                    "targetRegions": [{"name": "eastus"}],
                }
            }
        },
    )
    assert r.status_code == 400 and r.json()["error"]["target"] == "properties.publishingProfile.replicationMode"
    assert http.get(path).json()["properties"]["publishingProfile"]["replicationMode"] == "Full"


def test_definition_with_versions_cannot_be_deleted(compute, server, group, gallery, definition):
    upload_disk(compute, server, group, "os", image(2, seed=6))
    make_version(compute, group, gallery, definition, "1.0.0", compute.disks.get(group, "os").id)
    with pytest.raises(ResourceExistsError) as exc:
        compute.gallery_images.begin_delete(group, gallery, definition).result()
    assert "1.0.0" in exc.value.message
    compute.gallery_image_versions.begin_delete(group, gallery, definition, "1.0.0").result()
    compute.gallery_images.begin_delete(group, gallery, definition).result()


def test_source_in_another_region_is_refused(compute, server, group, gallery, definition, resources):
    other = f"rg-{uuid.uuid4().hex[:6]}"
    resources.resource_groups.create_or_update(other, {"location": "westus"})
    compute.disks.begin_create_or_update(
        other,
        "w",
        {
            "location": "westus",
            "properties": {
                "osType": "Linux",
                "hyperVGeneration": "V2",
                "diskSizeGB": 1,
                "creationData": {"createOption": "Empty"},
            },
        },
    ).result()
    with pytest.raises(HttpResponseError) as exc:
        make_version(compute, group, gallery, definition, "1.0.0", compute.disks.get(other, "w").id)
    assert exc.value.status_code == 400 and "westus" in exc.value.message
