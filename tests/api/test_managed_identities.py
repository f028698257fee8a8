"""User-assigned managed identities through azure-mgmt-msi (7.1: api-version 2024-11-30, and 2018-11-30): create
(synchronous 201, then 200), get, list by resource group and subscription, tag update, delete (200, then 204), and
the directory's service principal each stands for (made with the identity, gone with it)."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from vmgallery.domain.identity import DEFAULT_TENANT_ID

from .sdk import StaticToken

msi = pytest.importorskip("azure.mgmt.msi")
ADMIN_API = "/vmgallery/identity"


def msi_client(server, subscription: str, api_version: str | None = None):
    return msi.ManagedServiceIdentityClient(
        StaticToken(server.token),
        subscription,
        api_version=api_version,
        base_url=server.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=server.ca,
    )


@pytest.mark.parametrize("api_version", [None, "2018-11-30"])
def test_identity_crud_and_its_service_principal(server, subscription, group, http, api_version):
    with msi_client(server, subscription, api_version) as client:
        ops = client.user_assigned_identities
        made = ops.create_or_update(group, "builder", {"location": "East US", "tags": {"team": "img"}})
        assert made.type == "Microsoft.ManagedIdentity/userAssignedIdentities"
        assert made.location == "eastus" and made.tags == {"team": "img"}
        assert made.tenant_id == DEFAULT_TENANT_ID  # a subscription no tenant holds belongs to the default tenant
        uuid.UUID(made.principal_id), uuid.UUID(made.client_id)
        assert made.id == (
            f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity"
            "/userAssignedIdentities/builder"
        )
        # ARM paths are case-insensitive (ids in templates are often spelt .../resourcegroups/...).
        lower = http.get(made.id.lower(), params={"api-version": "2023-01-31"})
        assert (lower.status_code, lower.json()["id"]) == (200, made.id)
        # The principal role assignments name is a service principal of the tenant, its appId the clientId.
        sp = http.get(f"{ADMIN_API}/tenants/{made.tenant_id}/servicePrincipals/{made.principal_id}")
        assert sp.status_code == 200, sp.text
        assert (sp.json()["appId"], sp.json()["displayName"]) == (made.client_id, "builder")

        # A PUT again (az sends the whole body back) changes tags, never the ids.
        again = ops.create_or_update(group, "builder", {"location": "eastus", "tags": {"team": "other"}})
        assert (again.principal_id, again.client_id, again.tags) == (
            made.principal_id,
            made.client_id,
            {"team": "other"},
        )
        updated = ops.update(group, "builder", {"tags": {"x": "1"}})
        assert (updated.principal_id, updated.tags) == (made.principal_id, {"x": "1"})
        assert ops.get(group, "builder").client_id == made.client_id
        ops.create_or_update(group, "second", {"location": "eastus"})
        assert sorted(i.name for i in ops.list_by_resource_group(group)) == ["builder", "second"]
        assert {"builder", "second"} <= {i.name for i in ops.list_by_subscription()}

        ops.delete(group, "builder")
        with pytest.raises(ResourceNotFoundError):
            ops.get(group, "builder")
        ops.delete(group, "builder")  # already gone: 204, no error
        assert [i.name for i in ops.list_by_resource_group(group)] == ["second"]
        gone = http.get(f"{ADMIN_API}/tenants/{made.tenant_id}/servicePrincipals/{made.principal_id}")
        assert gone.status_code == 404, gone.text


def test_identity_names_and_groups_are_checked(server, subscription, group):
    with msi_client(server, subscription) as client:
        ops = client.user_assigned_identities
        with pytest.raises(HttpResponseError) as bad_name:
            ops.create_or_update(group, "a", {"location": "eastus"})
        assert (bad_name.value.status_code, bad_name.value.error.code) == (400, "InvalidResourceName")
        with pytest.raises(HttpResponseError) as no_group:
            ops.create_or_update("no-such-group", "builder", {"location": "eastus"})
        assert (no_group.value.status_code, no_group.value.error.code) == (404, "ResourceGroupNotFound")
        with pytest.raises(HttpResponseError) as no_location:
            ops.create_or_update(group, "builder", {"tags": {}})
        assert no_location.value.status_code == 400
