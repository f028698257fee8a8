"""RBAC on Image Builder's own actions: a Reader of the template's group may read it, its run outputs and its log,
but running or cancelling it needs Microsoft.VirtualMachineImages/imageTemplates/run/action and cancel/action.

The pre-flight's permission checks: a template's source must be readable and each target writable, by the caller or,
when the template names a user-assigned identity, by that identity (as in Azure, the builder acts as it; the caller
needs assign/action on it); each missing one is a 403 LinkedAuthorizationFailed naming it, and nothing is made. A
role the identity loses after creation fails the next run at its start."""

from __future__ import annotations

import ssl
import uuid

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.imagebuilder import ImageBuilderClient

from tests.azurite import azurite  # noqa: F401  (the session fixture)
from vmgallery.domain import rbac

from .builder_support import definition, template
from .sdk import StaticToken, compute_client, imagebuilder_client
from .test_image_builder import (  # noqa: F401
    ACCOUNT_ID,
    builder_server,
)

identity = pytest.importorskip("azure.identity")
msi = pytest.importorskip("azure.mgmt.msi")
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
    with imagebuilder_client(builder_server, sub) as ib:
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


# -- the pre-flight's linked checks (issue 13) and the identity the builder acts as ------------------------------
MSI_API = {"api-version": "2023-01-31"}
ROLE_API = {"api-version": "2022-04-01"}


class World:
    """A tenant and subscription of their own, a caller (a service principal with Contributor on the template's
    resource group `tpl` only), and the groups `src` (sources), `dst` (targets) and `ids` (identities)."""

    def __init__(self, server):
        self.server = server
        with server.http() as http:
            self.tenant = _ok(http.post(f"{ADMIN_API}/tenants", json={"name": f"t-{uuid.uuid4().hex[:6]}"}))["tenantId"]
            self.sub = _ok(http.post(f"{ADMIN_API}/subscriptions", json={"tenantId": self.tenant, "name": "s"}))[
                "subscriptionId"
            ]
            self.caller = _ok(
                http.post(f"{ADMIN_API}/tenants/{self.tenant}/servicePrincipals", json={"displayName": "ib caller"})
            )
            for group in ("tpl", "src", "dst", "ids"):
                _ok(http.put(self.group(group), params={"api-version": "2024-11-01"}, json={"location": "eastus"}))
        self.assign("contributor", self.caller["objectId"], self.group("tpl"))

    def group(self, name: str) -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{name}"

    def assign(self, role: str, principal_id: str, scope: str) -> str:
        path = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
        guid = rbac.BUILT_IN_BY_NAME[role].guid
        props = {
            "roleDefinitionId": f"/subscriptions/{self.sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
            "principalId": principal_id,
            "principalType": "ServicePrincipal",
        }
        with self.server.http() as http:
            _ok(http.put(path, params=ROLE_API, json={"properties": props}), (201,))
        return path

    def unassign(self, path: str) -> None:
        with self.server.http() as http:
            _ok(http.delete(path, params=ROLE_API), (200,))

    def caller_ib(self) -> ImageBuilderClient:
        credential = identity.ClientSecretCredential(
            self.tenant,
            self.caller["appId"],
            self.caller["password"],
            authority=self.server.url,
            disable_instance_discovery=True,
            connection_verify=self.server.ca,
        )
        return ImageBuilderClient(
            credential,
            self.sub,
            base_url=self.server.url,
            credential_scopes=["https://management.azure.com/.default"],
            connection_verify=self.server.ca,
            polling_interval=0,
        )

    def admin_ib(self) -> ImageBuilderClient:
        return imagebuilder_client(self.server, self.sub)


def _refused(ib: ImageBuilderClient, name: str, body: dict) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as refused:
        ib.virtual_machine_image_templates.begin_create_or_update("tpl", name, body).result()
    return refused.value


def _nothing_made(world: World, name: str) -> None:
    with world.admin_ib() as admin:
        with pytest.raises(ResourceNotFoundError):
            admin.virtual_machine_image_templates.get("tpl", name)
    with world.server.http() as http:
        groups = _ok(http.get(f"/subscriptions/{world.sub}/resourceGroups", params={"api-version": "2024-11-01"}))
    assert not [g for g in groups["value"] if g["name"].startswith(f"IT_tpl_{name}_")]  # no staging group either


def test_each_missing_permission_is_a_precise_403_and_nothing_is_made(builder_server):  # noqa: F811
    world = World(builder_server)
    with compute_client(builder_server, world.sub) as compute:
        own = definition(compute, "tpl")  # the caller's Contributor on tpl covers this target
        elsewhere = definition(compute, "dst")
    src_version = f"{world.group('src')}/providers/Microsoft.Compute/galleries/gal1/images/tiny/versions/1.0.0"
    vhd_uri = builder_server_blob_url(builder_server)
    cases = [
        ({"type": "ManagedImage", "imageId": f"{world.group('src')}/providers/Microsoft.Compute/images/b"},
         None, "Microsoft.Compute/images/read", "properties.source.imageId"),
        ({"type": "SharedImageVersion", "imageVersionId": src_version},
         None, "Microsoft.Compute/galleries/images/versions/read", "properties.source.imageVersionId"),
        (None, {"type": "SharedImage", "galleryImageId": elsewhere, "runOutputName": "g"},
         "Microsoft.Compute/galleries/images/versions/write", "properties.distribute[0].galleryImageId"),
        (None,
         {"type": "ManagedImage", "imageId": f"{world.group('dst')}/providers/Microsoft.Compute/images/out",
          "location": "eastus", "runOutputName": "m"},
         "Microsoft.Compute/images/write", "properties.distribute[0].imageId"),
        (None, {"type": "VHD", "uri": vhd_uri, "runOutputName": "v"},
         rbac.LIST_KEYS, "properties.distribute[0].uri"),
    ]  # fmt: skip
    with world.caller_ib() as ib:
        for i, (source, target, action, where) in enumerate(cases):
            body = template(world.sub, "tpl", own, [{"type": "Shell", "name": "s", "inline": ["true"]}])
            body["identity"] = {"type": "None"}
            if source is not None:
                body["properties"]["source"] = source
            if target is not None:
                body["properties"]["distribute"] = [target]
            error = _refused(ib, f"t{i}", body)
            assert (error.status_code, error.error.code, error.error.target) == (
                403,
                "LinkedAuthorizationFailed",
                where,
            )
            message = error.error.message
            assert world.caller["objectId"] in message and f"'{action}'" in message and where in message, message
            linked = (source or {}).get("imageId") or (source or {}).get("imageVersionId")
            linked = linked or target.get("galleryImageId") or target.get("imageId") or ACCOUNT_ID
            assert f"'{linked}'" in message, message
            _nothing_made(world, f"t{i}")
        # With the role the refusal named, the same template is made.
        world.assign("contributor", world.caller["objectId"], elsewhere.rsplit("/images/", 1)[0])
        body = template(world.sub, "tpl", elsewhere, [{"type": "Shell", "name": "s", "inline": ["true"]}])
        body["identity"] = {"type": "None"}
        made = ib.virtual_machine_image_templates.begin_create_or_update("tpl", "ok", body).result()
        assert made.provisioning_state == "Succeeded"


def builder_server_blob_url(server) -> str:
    """A blob URL in the storage account the builder's server configures (Azurite's devstoreaccount1)."""
    config = (server.data_dir / "config.toml").read_text()
    endpoint = config.split('blob_endpoint = "', 1)[1].split('"', 1)[0]
    return f"{endpoint.rstrip('/')}/vhds/out.vhd"


def msi_admin(server, subscription: str):
    return msi.ManagedServiceIdentityClient(
        StaticToken(server.token),
        subscription,
        base_url=server.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=server.ca,
    )


def test_the_builder_acts_as_its_identity_at_creation_and_at_each_run(builder_server):  # noqa: F811
    world = World(builder_server)
    with compute_client(builder_server, world.sub) as compute:
        src_def = definition(compute, "src")
        dst_def = definition(compute, "dst")
    with world.admin_ib() as admin:  # a source version in `src`, built by the admin
        base = template(world.sub, "src", src_def, [{"type": "Shell", "name": "s", "inline": ["echo base"]}])
        base["identity"] = {"type": "None"}
        admin.virtual_machine_image_templates.begin_create_or_update("src", "base", base).result()
        admin.virtual_machine_image_templates.begin_run("src", "base").result()
    with msi_admin(builder_server, world.sub) as client:
        uami = client.user_assigned_identities.create_or_update("ids", "builder", {"location": "eastus"})
    assert uami.tenant_id == world.tenant  # the subscription's tenant

    def body(identity_id: str = uami.id) -> dict:
        spec = template(world.sub, "tpl", dst_def, [{"type": "Shell", "name": "s", "inline": ["echo as identity"]}])
        spec["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}}
        spec["properties"]["source"] = {"type": "SharedImageVersion", "imageVersionId": f"{src_def}/versions/1.0.0"}
        return spec

    with world.caller_ib() as ib:
        missing = f"{world.group('tpl')}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nobody"
        error = _refused(ib, "t", body(missing))
        assert (error.status_code, error.error.code) == (400, "FailedIdentityOperation")
        assert missing in error.error.message
        # The caller may not hand over an identity it holds no role on.
        error = _refused(ib, "t", body())
        assert (error.status_code, error.error.code, error.error.target) == (
            403,
            "LinkedAuthorizationFailed",
            "identity.userAssignedIdentities",
        )
        assert rbac.ASSIGN_IDENTITY in error.error.message and world.caller["objectId"] in error.error.message
        world.assign("contributor", world.caller["objectId"], uami.id)
        # Now the identity's roles are checked, not the caller's: it reads nothing yet.
        error = _refused(ib, "t", body())
        assert (error.status_code, error.error.target) == (403, "properties.source.imageVersionId")
        assert uami.principal_id in error.error.message and "versions/read" in error.error.message
        world.assign("reader", uami.principal_id, world.group("src"))
        error = _refused(ib, "t", body())
        assert (error.status_code, error.error.target) == (403, "properties.distribute[0].galleryImageId")
        assert f"'{dst_def}'" in error.error.message and "versions/write" in error.error.message
        _nothing_made(world, "t")
        gallery_role = world.assign("contributor", uami.principal_id, dst_def.rsplit("/images/", 1)[0])
        made = ib.virtual_machine_image_templates.begin_create_or_update("tpl", "t", body()).result()
        shown = made.identity.user_assigned_identities[uami.id]
        assert (shown.principal_id, shown.client_id) == (uami.principal_id, uami.client_id)
        # A PATCH cannot hand over an identity the caller may not assign either.
        with msi_admin(builder_server, world.sub) as client:
            other = client.user_assigned_identities.create_or_update("ids", "other", {"location": "eastus"})
        swap = {"identity": {"type": "UserAssigned", "userAssignedIdentities": {other.id: {}}}}
        with pytest.raises(HttpResponseError) as refused:
            ib.virtual_machine_image_templates.begin_update("tpl", "t", swap).result()
        assert (refused.value.status_code, refused.value.error.target) == (403, "identity.userAssignedIdentities")
        assert other.id in refused.value.error.message

        ib.virtual_machine_image_templates.begin_run("tpl", "t").result()
        assert ib.virtual_machine_image_templates.get("tpl", "t").last_run_status.run_state == "Succeeded"
        output = ib.virtual_machine_image_templates.get_run_output("tpl", "t", "gallery")
        assert output.artifact_id.lower() == f"{dst_def}/versions/1.0.0".lower()

        # The identity loses its role on the gallery: the next run fails at its start, saying why.
        world.unassign(gallery_role)
        with pytest.raises(HttpResponseError) as failed:
            ib.virtual_machine_image_templates.begin_run("tpl", "t").result()
        assert "versions/write" in str(failed.value.message) and uami.principal_id in str(failed.value.message)
        status = ib.virtual_machine_image_templates.get("tpl", "t").last_run_status
        assert status.run_state == "Failed"
        assert uami.id in status.message and f"'{dst_def}'" in status.message
        assert "properties.distribute[0].galleryImageId" in status.message
        outputs = ib.virtual_machine_image_templates.list_run_outputs("tpl", "t")
        assert [o.artifact_id.lower() for o in outputs] == [f"{dst_def}/versions/1.0.0".lower()]  # nothing new
