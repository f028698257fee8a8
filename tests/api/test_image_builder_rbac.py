"""RBAC on Image Builder's own actions: a Reader of the template's group may read it, its run outputs and its log,
but running or cancelling it needs Microsoft.VirtualMachineImages/imageTemplates/run/action and cancel/action."""

from __future__ import annotations

import ssl
import uuid

import httpx
import pytest

from tests.azurite import azurite  # noqa: F401  (the session fixture)
from vmgallery.domain import rbac

from .sdk import StaticToken
from .test_image_builder import ImageBuilderClient, builder_server, compute_client, definition, template  # noqa: F401

identity = pytest.importorskip("azure.identity")
ADMIN_API = "/vmgallery/identity"
IB = {"api-version": "2024-02-01"}


def _ok(response: httpx.Response, status=(200, 201, 202)) -> dict:
    assert response.status_code in status, response.text
    return response.json() if response.content else {}


def test_a_reader_may_read_a_template_but_not_run_or_cancel_it(builder_server):  # noqa: F811
    with builder_server.http() as http:
        tenant = _ok(http.post(f"{ADMIN_API}/tenants", json={"name": f"t-{uuid.uuid4().hex[:6]}"}))["tenantId"]
        sub = _ok(http.post(f"{ADMIN_API}/subscriptions", json={"tenantId": tenant, "name": "s"}))["subscriptionId"]
        sp = _ok(http.post(f"{ADMIN_API}/tenants/{tenant}/servicePrincipals", json={"displayName": "ib reader"}))
        base = f"/subscriptions/{sub}"
        _ok(http.put(f"{base}/resourceGroups/rg1", params={"api-version": "2024-11-01"}, json={"location": "eastus"}))
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
    with compute_client(builder_server, sub) as compute:
        definition_id = definition(compute, "rg1")
    with ImageBuilderClient(
        StaticToken(builder_server.token),
        sub,
        base_url=builder_server.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=builder_server.ca,
        polling_interval=0,
    ) as ib:
        body = template(sub, "rg1", definition_id, [{"type": "Shell", "name": "s", "inline": ["true"]}])
        ib.virtual_machine_image_templates.begin_create_or_update("rg1", "t1", body).result()

    credential = identity.ClientSecretCredential(
        tenant,
        sp["appId"],
        sp["password"],
        authority=builder_server.url,
        disable_instance_discovery=True,
        connection_verify=builder_server.ca,
    )
    try:
        token = credential.get_token("https://management.azure.com/.default").token
    finally:
        credential.close()
    path = f"{base}/resourceGroups/rg1/providers/Microsoft.VirtualMachineImages/imageTemplates/t1"
    with httpx.Client(
        base_url=builder_server.url,
        verify=ssl.create_default_context(cafile=builder_server.ca),
        headers={"Authorization": f"Bearer {token}"},
    ) as as_reader:
        assert as_reader.get(path, params=IB).status_code == 200
        assert as_reader.get(f"{path}/runOutputs", params=IB).status_code == 200
        assert as_reader.get(f"{path}/customizationLog", params=IB).status_code == 200
        for action in ("run", "cancel"):
            r = as_reader.post(f"{path}/{action}", params=IB)
            assert r.status_code == 403, r.text
            error = r.json()["error"]
            assert error["code"] == "AuthorizationFailed"
            assert f"Microsoft.VirtualMachineImages/imageTemplates/{action}/action" in error["message"]
    with builder_server.http() as http:
        # Nothing ran: the refused run left the template without a last run.
        assert "lastRunStatus" not in _ok(http.get(path, params=IB))["properties"]
