"""The activity log over HTTPS with the real azure-mgmt-monitor SDK (`activity_logs.list`, api-version
2015-04-01): writes by the admin and by service principals (azure-identity tokens) are recorded with their caller,
operation, scope, result and correlation id; a long-running write shows Started then its end; `$filter` clauses,
`$select` and paging by nextLink; a principal with Reader on one resource group sees only that group's events."""

from __future__ import annotations

import ssl
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.monitor import MonitorManagementClient

from vmgallery.domain import rbac

from .sdk import StaticToken

identity = pytest.importorskip("azure.identity")

ADMIN_API = "/vmgallery/identity"
ARM = ["https://management.azure.com/.default"]
VALUES = "/providers/Microsoft.Insights/eventtypes/management/values"
GV = {"api-version": "2023-07-03"}


def _window(minutes: int = 10) -> str:
    now = datetime.now(UTC)
    return (
        f"eventTimestamp ge '{(now - timedelta(minutes=minutes)).isoformat()}' and "
        f"eventTimestamp le '{(now + timedelta(minutes=1)).isoformat()}'"
    )


def _ok(response, status=(200, 201, 202, 204)):
    assert response.status_code in status, response.text
    return response.json() if response.content else None


def _monitor(server, credential, subscription) -> MonitorManagementClient:
    return MonitorManagementClient(
        credential, subscription, base_url=server.url, credential_scopes=ARM, connection_verify=server.ca
    )


@pytest.fixture
def world(server, http):
    """A tenant with a subscription, two resource groups each with a gallery, and a service principal holding
    Reader on rg1 only."""
    tenant = _ok(http.post(f"{ADMIN_API}/tenants", json={"name": f"t-{uuid.uuid4().hex[:6]}"}))["tenantId"]
    sub = _ok(http.post(f"{ADMIN_API}/subscriptions", json={"tenantId": tenant, "name": "s"}))["subscriptionId"]
    sp = _ok(http.post(f"{ADMIN_API}/tenants/{tenant}/servicePrincipals", json={"displayName": "rg1 reader"}))
    base = f"/subscriptions/{sub}"
    for rg in ("rg1", "rg2"):
        _ok(http.put(f"{base}/resourceGroups/{rg}", params={"api-version": "2024-11-01"}, json={"location": "eastus"}))
    reader = rbac.BUILT_IN_BY_NAME["reader"].guid
    _ok(
        http.put(
            f"{base}/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
            params={"api-version": "2022-04-01"},
            json={
                "properties": {
                    "roleDefinitionId": f"{base}/providers/Microsoft.Authorization/roleDefinitions/{reader}",
                    "principalId": sp["objectId"],
                    "principalType": "ServicePrincipal",
                }
            },
        ),
        (201,),
    )
    credential = identity.ClientSecretCredential(
        tenant,
        sp["appId"],
        sp["password"],
        authority=server.url,
        disable_instance_discovery=True,
        connection_verify=server.ca,
    )
    yield {"sub": sub, "tenant": tenant, "sp": sp, "credential": credential, "base": base}
    credential.close()


def _gallery_put(http, sub, rg, name, correlation):
    r = http.put(
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/{name}",
        params=GV,
        json={"location": "eastus"},
        headers={"x-ms-correlation-request-id": correlation},
    )
    _ok(r)
    url = r.headers.get("Azure-AsyncOperation")
    while url:  # the worker finishes it; the status URL answers when it has
        status = http.get(url).json()["status"]
        if status != "InProgress":
            assert status == "Succeeded"
            break
    return r


def test_writes_are_recorded_and_listed_by_the_sdk(server, http, world):
    sub = world["sub"]
    correlation = str(uuid.uuid4())
    r = _gallery_put(http, sub, "rg1", "g1", correlation)
    # A refused write is recorded too, as Failed, and changes nothing.
    bad = http.put(
        f"/subscriptions/{sub}/resourceGroups/rg2/providers/Microsoft.Compute/galleries/g!bad",
        params=GV,
        json={"location": "eastus"},
    )
    assert bad.status_code == 400
    with _monitor(server, StaticToken(server.token), sub) as monitor:
        events = list(monitor.activity_logs.list(filter=_window()))
        mine = [e for e in events if e.correlation_id == correlation]
        gallery = f"/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.Compute/galleries/g1"
        assert {e.operation_name.value for e in mine} == {"Microsoft.Compute/galleries/write"}
        # A gallery PUT is a long-running operation: Started when asked, Succeeded when its operation ended.
        assert r.headers.get("Azure-AsyncOperation")
        assert [e.status.value for e in mine] == ["Succeeded", "Started"]
        assert mine[0].event_timestamp >= mine[1].event_timestamp
        assert mine[0].event_data_id != mine[1].event_data_id
        for e in mine:
            assert e.resource_id == gallery and e.authorization.scope == gallery
            assert e.authorization.action == "Microsoft.Compute/galleries/write"
            assert e.resource_group_name == "rg1" and e.subscription_id == sub
            assert e.resource_provider_name.value == "Microsoft.Compute"
            assert e.category.value == "Administrative" and e.event_timestamp.tzinfo is not None
            assert e.caller and e.tenant_id
        failed = [e for e in events if e.resource_group_name == "rg2" and e.status.value == "Failed"]
        assert [e.operation_name.value for e in failed] == ["Microsoft.Compute/galleries/write"]
        assert failed[0].properties["statusCode"] == "400"
        # The assignment made by the fixture, and the groups, are writes of their own.
        ops = {e.operation_name.value for e in events}
        assert {
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Resources/subscriptions/resourceGroups/write",
        } <= ops
        # Newest first.
        stamps = [e.event_timestamp for e in events]
        assert stamps == sorted(stamps, reverse=True)

        by_group = list(monitor.activity_logs.list(filter=_window() + " and resourceGroupName eq 'RG2'"))
        assert by_group and {e.resource_group_name for e in by_group} == {"rg2"}
        by_corr = list(monitor.activity_logs.list(filter=_window() + f" and correlationId eq '{correlation}'"))
        assert {e.event_data_id for e in by_corr} == {e.event_data_id for e in mine}
        by_id = list(monitor.activity_logs.list(filter=_window() + f" and resourceId eq '{gallery}'"))
        assert {e.event_data_id for e in by_id} == {e.event_data_id for e in mine}
        by_provider = list(
            monitor.activity_logs.list(filter=_window() + " and resourceProvider eq 'Microsoft.Authorization'")
        )
        assert by_provider and {e.resource_provider_name.value for e in by_provider} == {"Microsoft.Authorization"}
        selected = list(monitor.activity_logs.list(filter=_window(), select="eventTimestamp,operationName"))
        assert selected and all(e.caller is None and e.operation_name.value for e in selected)
        past = datetime.now(UTC) - timedelta(days=2)
        old = (
            f"eventTimestamp ge '{past.isoformat()}' and eventTimestamp le '{(past + timedelta(hours=1)).isoformat()}'"
        )
        assert list(monitor.activity_logs.list(filter=old)) == []
        with pytest.raises(HttpResponseError) as refused:
            list(monitor.activity_logs.list(filter="resourceGroupName eq 'rg1'"))
        assert refused.value.status_code == 400


def test_no_body_or_secret_is_kept(server, http, world):
    """No event carries a request body's values, nor the secret the service principal's creation answered with."""
    sub = world["sub"]
    marker = f"marker{uuid.uuid4().hex}"
    _gallery_put(http, sub, "rg1", "g2", str(uuid.uuid4()))
    r = http.patch(
        f"/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.Compute/galleries/g2",
        params=GV,
        json={"properties": {"description": marker}},
    )
    _ok(r)
    page = http.get(f"/subscriptions/{sub}{VALUES}", params={"api-version": "2015-04-01", "$filter": _window()})
    assert page.status_code == 200 and page.json()["value"]
    assert marker not in page.text and world["sp"]["password"] not in page.text


def test_a_reader_on_one_group_sees_only_that_group(server, http, world):
    sub = world["sub"]
    _gallery_put(http, sub, "rg1", "g1", str(uuid.uuid4()))
    _gallery_put(http, sub, "rg2", "g1", str(uuid.uuid4()))
    with _monitor(server, world["credential"], sub) as monitor:
        seen = list(monitor.activity_logs.list(filter=_window()))
        assert seen, "the reader sees rg1's events"
        assert {e.resource_group_name for e in seen} == {"rg1"}
        assert all(e.resource_id.lower().startswith(f"/subscriptions/{sub}/resourcegroups/rg1") for e in seen)
        assert list(monitor.activity_logs.list(filter=_window() + " and resourceGroupName eq 'rg2'")) == []
    # Its own refused write is recorded under its object id; it may read rg1, so it sees it.
    token = world["credential"].get_token(ARM[0]).token
    tls = ssl.create_default_context(cafile=server.ca)
    with httpx.Client(base_url=server.url, verify=tls, headers={"Authorization": f"Bearer {token}"}) as sp_http:
        denied = sp_http.put(
            f"/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.Compute/galleries/g9",
            params=GV,
            json={"location": "eastus"},
        )
        assert denied.status_code == 403
        listed = sp_http.get(
            f"/subscriptions/{sub}{VALUES}",
            params={"api-version": "2015-04-01", "$filter": _window() + f" and caller eq '{world['sp']['objectId']}'"},
        )
        assert listed.status_code == 200, listed.text
        [event] = listed.json()["value"]
        assert event["status"]["value"] == "Failed" and event["properties"]["statusCode"] == "403"
        assert event["resourceId"].endswith("/galleries/g9")


def test_paging_follows_next_link(backend, tmp_path):
    from tests.conftest import running_server

    with running_server(backend, tmp_path, "page_size = 3\nworkers = 0\n") as srv, srv.http() as http:
        sub = str(uuid.uuid4())
        for i in range(7):
            _ok(
                http.put(
                    f"/subscriptions/{sub}/resourceGroups/rg{i}",
                    params={"api-version": "2024-11-01"},
                    json={"location": "eastus"},
                )
            )
        first = http.get(f"/subscriptions/{sub}{VALUES}", params={"api-version": "2015-04-01", "$filter": _window()})
        assert len(first.json()["value"]) == 3 and "nextLink" in first.json()
        with _monitor(srv, StaticToken(srv.token), sub) as monitor:
            events = list(monitor.activity_logs.list(filter=_window()))
        assert [e.resource_group_name for e in events] == [f"rg{i}" for i in reversed(range(7))]
        assert len({e.event_data_id for e in events}) == 7
