"""Microsoft.Authorization over HTTPS with the real azure-mgmt-authorization SDK and az's own requests: built-in
role definitions at every scope, `$filter`s as az sends them, role assignments created, listed and deleted at a
subscription, a group, a gallery, a definition and a version; custom roles."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.mgmt.authorization import AuthorizationManagementClient

from .conftest import definition_body
from .sdk import StaticToken

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
SHARING_ADMIN = "1ef6a3be-d0ac-425d-8c01-acb62866290b"


@pytest.fixture
def authz(server, subscription):
    with AuthorizationManagementClient(
        StaticToken(server.token),
        subscription,
        base_url=server.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=server.ca,
    ) as client:
        yield client


@pytest.fixture
def scopes(compute, group, gallery, subscription):
    compute.gallery_images.begin_create_or_update(group, gallery, "linux", definition_body()).result()
    sub = f"/subscriptions/{subscription}"
    rg = f"{sub}/resourceGroups/{group}"
    gal = f"{rg}/providers/Microsoft.Compute/galleries/{gallery}"
    definition = f"{gal}/images/linux"
    return {"subscription": sub, "group": rg, "gallery": gal, "definition": definition}


def test_role_definitions_as_az_looks_them_up(http, scopes):
    for scope in scopes.values():
        found = http.get(
            f"{scope}/providers/Microsoft.Authorization/roleDefinitions",
            params={"api-version": "2022-05-01-preview", "$filter": "roleName eq 'Compute Gallery Sharing Admin'"},
        )
        assert found.status_code == 200, found.text
        [role] = found.json()["value"]
        assert role["name"] == SHARING_ADMIN
        assert role["id"].startswith(scopes["subscription"] + "/providers/Microsoft.Authorization/roleDefinitions/")
        assert role["properties"]["permissions"][0]["actions"] == ["Microsoft.Compute/galleries/share/action"]


def test_assignments_at_every_scope_with_the_sdk(authz, scopes, subscription):
    principal = str(uuid.uuid4())
    made = {}
    for where, scope in scopes.items():
        name = str(uuid.uuid4())
        created = authz.role_assignments.create(
            scope,
            name,
            {
                "role_definition_id": f"/subscriptions/{subscription}/providers/Microsoft.Authorization/"
                f"roleDefinitions/{READER}",
                "principal_id": principal,
                "principal_type": "ServicePrincipal",
            },
        )
        assert created.scope == scope and created.principal_id == principal and created.name == name
        made[where] = created
    with pytest.raises((ResourceExistsError, HttpResponseError)) as clash:
        authz.role_assignments.create(
            scopes["gallery"],
            str(uuid.uuid4()),
            {"role_definition_id": made["gallery"].role_definition_id, "principal_id": principal},
        )
    assert clash.value.status_code == 409
    at_definition = list(authz.role_assignments.list_for_scope(scopes["definition"], filter="atScope()"))
    assert {a.scope for a in at_definition if a.principal_id == principal} == set(scopes.values())
    at_gallery = list(authz.role_assignments.list_for_scope(scopes["gallery"], filter=f"principalId eq '{principal}'"))
    assert {a.scope for a in at_gallery} == set(scopes.values())  # above it, at it, and under it
    mine = list(authz.role_assignments.list_for_subscription(filter=f"principalId eq '{principal}'"))
    assert len(mine) == 4
    got = authz.role_assignments.get(scopes["gallery"], made["gallery"].name)
    assert got.id == made["gallery"].id
    authz.role_assignments.delete(scopes["gallery"], made["gallery"].name)
    left = list(authz.role_assignments.list_for_scope(scopes["group"], filter=f"principalId eq '{principal}'"))
    assert {a.scope for a in left} == {scopes["subscription"], scopes["group"], scopes["definition"]}
    assert authz.role_assignments.delete_by_id(made["definition"].id).scope == scopes["definition"]


def test_bad_assignments_change_nothing(http, scopes):
    base = f"{scopes['gallery']}/providers/Microsoft.Authorization/roleAssignments"
    for name, body, code in (
        ("not-a-guid", {"properties": {"roleDefinitionId": READER, "principalId": str(uuid.uuid4())}}, 400),
        (
            str(uuid.uuid4()),
            {"properties": {"roleDefinitionId": str(uuid.uuid4()), "principalId": str(uuid.uuid4())}},
            400,
        ),
        (str(uuid.uuid4()), {"properties": {"roleDefinitionId": READER, "principalId": "bob"}}, 400),
        (str(uuid.uuid4()), {"properties": {"roleDefinitionId": READER}}, 400),
    ):
        r = http.put(f"{base}/{name}", params={"api-version": "2022-04-01"}, json=body)
        assert r.status_code == code, r.text
        assert set(r.json()["error"]) >= {"code", "message"}
    missing = scopes["gallery"] + "x"
    r = http.put(
        f"{missing}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
        params={"api-version": "2022-04-01"},
        json={"properties": {"roleDefinitionId": READER, "principalId": str(uuid.uuid4())}},
    )
    assert r.status_code == 404
    listed = http.get(base, params={"api-version": "2022-04-01"})
    assert listed.status_code == 200 and listed.json()["value"] == []


def test_custom_roles(authz, scopes, http):
    guid = str(uuid.uuid4())
    role = authz.role_definitions.create_or_update(
        scopes["subscription"],
        guid,
        {
            "role_name": f"Version Publisher {guid[:8]}",
            "description": "writes versions",
            "role_type": "CustomRole",
            "permissions": [
                {
                    "actions": ["Microsoft.Compute/galleries/images/versions/*"],
                    "not_actions": ["Microsoft.Compute/galleries/images/versions/delete"],
                }
            ],
            "assignable_scopes": [scopes["group"]],
        },
    )
    assert role.name == guid and role.role_type == "CustomRole"
    found = list(authz.role_definitions.list(scopes["gallery"], filter=f"roleName eq 'Version Publisher {guid[:8]}'"))
    assert [r.name for r in found] == [guid]
    assert list(authz.role_definitions.list(scopes["subscription"], filter=f"roleName eq '{role.role_name}'")) == []
    # lower-case path words (ARM's paths are case-insensitive)
    r = http.get(
        scopes["gallery"].lower() + f"/providers/microsoft.authorization/roledefinitions/{guid}",
        params={"api-version": "2022-04-01"},
    )
    assert r.status_code == 200 and r.json()["properties"]["roleName"] == role.role_name
    authz.role_definitions.delete(scopes["subscription"], guid)
    assert list(authz.role_definitions.list(scopes["gallery"], filter="type eq 'CustomRole'")) == []
