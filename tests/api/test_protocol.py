"""The ARM protocol as raw HTTP sees it: auth, api-version, paths, LRO headers and status, paging, resource groups."""

from __future__ import annotations

import time
import uuid

import pytest
from azure.core.exceptions import ResourceNotFoundError
from sqlalchemy import insert

from vmgallery.adapters.db.store import Database
from vmgallery.adapters.db.tables import resources as resources_table

from .conftest import definition_body

GALLERY_API = "api-version=2026-03-03"
RG_API = "api-version=2024-11-01"


def rg_path(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def gallery_path(sub: str, rg: str, g: str) -> str:
    return f"{rg_path(sub, rg)}/providers/Microsoft.Compute/galleries/{g}"


@pytest.fixture
def rg(http, subscription) -> str:
    name = f"rg-{uuid.uuid4().hex[:6]}"
    assert http.put(f"{rg_path(subscription, name)}?{RG_API}", json={"location": "westus"}).status_code == 201
    return name


def test_authentication(server, subscription):
    import ssl

    import httpx

    with httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=server.ca)) as anon:
        assert anon.get("/healthz").json() == {"status": "ok"}
        r = anon.get(f"/subscriptions/{subscription}/resourceGroups?{RG_API}")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "AuthenticationFailed"
        r = anon.get(
            f"/subscriptions/{subscription}/resourceGroups?{RG_API}", headers={"Authorization": "Bearer not-the-token"}
        )
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
        spec = anon.get("/openapi.json").json()
        assert any(p.endswith("/galleries/{galleryName}/images/{galleryImageName}") for p in spec["paths"])


def test_api_version_required_and_checked(http, subscription, rg):
    r = http.get(gallery_path(subscription, rg, "g"))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "MissingApiVersionParameter")
    r = http.get(f"{gallery_path(subscription, rg, 'g')}?api-version=2017-01-01")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidApiVersionParameter")
    assert "2026-03-03" in r.json()["error"]["message"] and "2018-06-01" in r.json()["error"]["message"]


def test_paths_are_case_insensitive_and_keep_created_casing(http, subscription, rg):
    r = http.put(f"{gallery_path(subscription, rg, 'MyGal')}?{GALLERY_API}", json={"location": "westus"})
    assert r.status_code == 201
    shouted = (
        f"/SUBSCRIPTIONS/{subscription.upper()}/RESOURCEGROUPS/{rg.upper()}/PROVIDERS/MICROSOFT.COMPUTE/"
        f"GALLERIES/MYGAL?{GALLERY_API}"
    )
    got = http.get(shouted)
    assert got.status_code == 200
    assert got.json()["name"] == "MyGal"
    assert got.json()["id"] == gallery_path(subscription, rg, "MyGal")


def test_lro_headers_status_and_results(http, subscription, rg):
    r = http.put(f"{gallery_path(subscription, rg, 'g')}?{GALLERY_API}", json={"location": "westus"})
    assert r.status_code == 201
    status_url, result_url = r.headers["Azure-AsyncOperation"], r.headers["Location"]
    for url in (status_url, result_url):
        assert url.startswith("https://") and "api-version=2026-03-03" in url
    assert r.headers["Retry-After"] == "1"
    status = http.get(status_url).json()
    assert status["status"] == "Succeeded" and status["startTime"] and status["endTime"]
    assert http.get(result_url).json()["name"] == "g"  # final-state-via location: the resource

    r = http.patch(f"{gallery_path(subscription, rg, 'g')}?{GALLERY_API}", json={"properties": {"description": "x"}})
    assert r.status_code == 200
    assert r.json()["properties"]["description"] == "x"
    assert http.get(r.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded"

    r = http.delete(f"{gallery_path(subscription, rg, 'g')}?{GALLERY_API}")
    assert r.status_code in (200, 202)
    assert http.get(r.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded"
    assert http.get(r.headers["Location"]).status_code == 204
    assert http.get(f"{gallery_path(subscription, rg, 'g')}?{GALLERY_API}").status_code == 404
    # Deleting what is not there is a no-op, as in ARM.
    assert http.delete(f"{gallery_path(subscription, rg, 'g')}?{GALLERY_API}").status_code == 204


def test_unknown_operation_is_404(http, subscription):
    r = http.get(
        f"/subscriptions/{subscription}/providers/Microsoft.Compute/locations/eastus/capsOperations/"
        f"{uuid.uuid4()}?{GALLERY_API}"
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"


def test_put_accepts_and_ignores_read_only_fields(http, subscription, rg):
    path = f"{gallery_path(subscription, rg, 'g')}?{GALLERY_API}"
    http.put(path, json={"location": "westus", "properties": {"description": "a"}})
    body = http.get(path).json()
    body["properties"]["description"] = "b"
    body["properties"]["identifier"]["uniqueName"] = "forged"
    body["properties"]["provisioningState"] = "Failed"
    body["id"] = "/forged"
    r = http.put(path, json=body)
    assert r.status_code == 200, r.text
    after = http.get(path).json()
    assert after["properties"]["description"] == "b"
    assert after["properties"]["identifier"]["uniqueName"] == f"{subscription}-G"
    assert after["properties"]["provisioningState"] == "Succeeded"
    assert after["id"] == gallery_path(subscription, rg, "g")


def test_bad_bodies_and_ids_are_arm_errors(http, subscription, rg):
    path = f"{gallery_path(subscription, rg, 'g')}?{GALLERY_API}"
    r = http.put(path, content=b"{not json", headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidRequestContent")
    r = http.put(path, json=["a list"])
    assert r.status_code == 400
    r = http.put(path, json={})
    assert (r.status_code, r.json()["error"]["target"]) == (400, "location")
    r = http.put(f"{gallery_path('not-a-guid', rg, 'g')}?{GALLERY_API}", json={"location": "westus"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidSubscriptionId")
    r = http.get(f"/subscriptions/{subscription}/providers/Microsoft.Nothing/things?{GALLERY_API}")
    assert r.status_code == 404 and "error" in r.json()
    assert http.get(path).status_code == 404


def test_resource_groups(resources, compute, http, subscription):
    rg = f"rg-{uuid.uuid4().hex[:6]}"
    created = resources.resource_groups.create_or_update(rg, {"location": "West Europe", "tags": {"a": "1"}})
    assert created.location == "westeurope" and created.properties.provisioning_state == "Succeeded"
    assert resources.resource_groups.check_existence(rg) is True
    assert resources.resource_groups.check_existence("nope") is False
    assert resources.resource_groups.update(rg, {"tags": {"b": "2"}}).tags == {"b": "2"}
    assert rg in [g.name for g in resources.resource_groups.list()]
    r = http.put(f"{rg_path(subscription, rg)}?{RG_API}", json={"location": "eastus"})
    assert (r.status_code, r.json()["error"]["target"]) == (400, "location")

    compute.galleries.begin_create_or_update(rg, "g", {"location": "westeurope"}).result()
    compute.gallery_images.begin_create_or_update(
        rg, "g", "i", {**definition_body(), "location": "westeurope"}
    ).result()
    resources.resource_groups.begin_delete(rg).result()  # takes what it contains with it, as in ARM
    with pytest.raises(ResourceNotFoundError):
        resources.resource_groups.get(rg)
    assert [g.name for g in compute.galleries.list()] == []
    with pytest.raises(ResourceNotFoundError):
        compute.galleries.get(rg, "g")


def _seed_groups(server, subscription: str, count: int) -> list[str]:
    """Insert resource groups straight into the server's database: 5,000 HTTP creates would dominate the run."""
    db = Database(server.database_url or f"sqlite:///{server.data_dir / 'vmgallery.db'}")
    names = [f"seed-{i:05d}" for i in range(count)]
    now = time.time()
    rows = []
    for name in names:
        rid = f"/subscriptions/{subscription}/resourceGroups/{name}"
        rows.append(
            dict(
                key=rid.lower(),
                type="microsoft.resources/resourcegroups",
                parent_key=f"/subscriptions/{subscription}".lower(),
                subscription=subscription.lower(),
                group_key=rid.lower(),
                location="eastus",
                natural_key=None,
                state="Succeeded",
                body={
                    "id": rid,
                    "name": name,
                    "type": "Microsoft.Resources/resourceGroups",
                    "location": "eastus",
                    "properties": {"provisioningState": "Succeeded"},
                },
                created_at=now,
                updated_at=now,
            )
        )
    with db.write() as tx:
        tx.conn.execute(insert(resources_table), rows)
    db.dispose()
    return names


def test_list_of_5000_pages_stably_while_items_are_added(server, resources, http, subscription):
    seeded = _seed_groups(server, subscription, 5000)
    seen: list[str] = []
    pages = resources.resource_groups.list().by_page()
    added = 0
    for page in pages:
        seen.extend(g.name for g in page)
        # Add an item between every two pages: it must not shift what the next page returns.
        name = f"added-{added:03d}"
        assert http.put(f"{rg_path(subscription, name)}?{RG_API}", json={"location": "eastus"}).status_code == 201
        added += 1
    assert added >= 50
    assert len(seen) == len(set(seen)), "an item was listed twice"
    assert [n for n in seen if n.startswith("seed-")] == seeded
    r = http.get(f"/subscriptions/{subscription}/resourceGroups?{RG_API}")
    assert r.json()["nextLink"].startswith(server.url) and "api-version=2024-11-01" in r.json()["nextLink"]
    r = http.get(f"/subscriptions/{subscription}/resourceGroups?{RG_API}&$top=7")
    assert len(r.json()["value"]) == 7
