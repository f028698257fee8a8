"""Cross-tenant creation (issue 12, item 6), as a user of the real SDKs does it: a multi-tenant application has a
service principal in tenant A (Contributor on subscription A, where the source disk is) and in tenant B (Contributor
on subscription B, where the gallery is). It creates a version in B from A's disk with its tenant-B token plus its
tenant-A token in `x-ms-authorization-auxiliary`, sent by azure-mgmt-core's `AuxiliaryAuthenticationPolicy` around
azure-identity's `ClientSecretCredential`, over HTTPS. Without that token, or with one of the wrong tenant, the
refusal is 403 `LinkedAuthorizationFailed` naming tenant A; a bad auxiliary token is 401 saying what is wrong."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass

import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.core.policies import AuxiliaryAuthenticationPolicy
from azure.mgmt.resource.resources import ResourceManagementClient
from cryptography.hazmat.primitives.asymmetric import rsa

from .conftest import definition_body
from .test_disks import image, read_disk, upload_disk
from .test_identity import ARM, Sp, good_claims, server_key
from .test_sharing import _ok, _subscription, _tenant, assign
from .test_versions import disk_from, make_version

SCOPE = ARM + ".default"


@dataclass
class Cross:
    tenant_a: str
    tenant_b: str
    credentials: dict[str, ClientSecretCredential]  # by tenant: the application's credential there
    sp: dict[str, Sp]  # by tenant: its service principal there
    compute_a: ComputeManagementClient  # tenant A's token, subscription A
    group_a: str
    subscription_b: str
    group_b: str
    gallery: str
    disk_id: str  # the source, in subscription A
    data: bytes
    stack: contextlib.ExitStack
    server: object

    def compute_b(self, *auxiliary) -> ComputeManagementClient:
        """The tenant-B client, with `auxiliary` credentials' tokens in x-ms-authorization-auxiliary."""
        extra = {"per_call_policies": [AuxiliaryAuthenticationPolicy(list(auxiliary), SCOPE)]} if auxiliary else {}
        return self.stack.enter_context(
            ComputeManagementClient(
                self.credentials[self.tenant_b],
                self.subscription_b,
                polling_interval=0,
                base_url=self.server.url,
                credential_scopes=[SCOPE],
                connection_verify=self.server.ca,
                **extra,
            )
        )


class StaticToken:
    """A credential that hands out one given token (to send a bad auxiliary token through the real policy)."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def cross(server, http):
    with contextlib.ExitStack() as stack:
        a, b = _tenant(http), _tenant(http)
        sub_a, sub_b = _subscription(http, a), _subscription(http, b)
        made = _ok(
            http.post(
                f"/vmgallery/identity/tenants/{a}/servicePrincipals", json={"displayName": "x", "multiTenant": True}
            )
        )
        app_id, password = made["appId"], made["password"]
        guest = _ok(http.post(f"/vmgallery/identity/tenants/{b}/servicePrincipals", json={"appId": app_id}))
        sps = {a: Sp(a, app_id, made["objectId"], password), b: Sp(b, app_id, guest["objectId"], password)}
        assign(http, sps[a].object_id, "Contributor", f"/subscriptions/{sub_a}")
        assign(http, sps[b].object_id, "Contributor", f"/subscriptions/{sub_b}")
        credentials = {}
        for tenant in (a, b):
            credential = ClientSecretCredential(
                tenant,
                app_id,
                password,
                authority=server.url,
                disable_instance_discovery=True,
                connection_verify=server.ca,
            )
            stack.callback(credential.close)
            credentials[tenant] = credential
        kwargs = {"base_url": server.url, "credential_scopes": [SCOPE], "connection_verify": server.ca}
        compute_a = stack.enter_context(ComputeManagementClient(credentials[a], sub_a, polling_interval=0, **kwargs))
        group = f"rg-{uuid.uuid4().hex[:8]}"
        for tenant, sub in ((a, sub_a), (b, sub_b)):
            with ResourceManagementClient(credentials[tenant], sub, **kwargs) as resources:
                resources.resource_groups.create_or_update(group, {"location": "eastus"})
        data = image(2, seed=11)
        upload_disk(compute_a, server, group, "source", data)
        disk_id = compute_a.disks.get(group, "source").id
        with ComputeManagementClient(credentials[b], sub_b, polling_interval=0, **kwargs) as compute_b:
            gallery = f"gal{uuid.uuid4().hex[:8]}"
            compute_b.galleries.begin_create_or_update(group, gallery, {"location": "eastus"}).result()
            compute_b.gallery_images.begin_create_or_update(
                group, gallery, "linux", definition_body(hyperVGeneration="V2")
            ).result()
        yield Cross(a, b, credentials, sps, compute_a, group, sub_b, group, gallery, disk_id, data, stack, server)


def _refused(cross: Cross, compute, status: int) -> dict:
    with pytest.raises(HttpResponseError) as refused:
        make_version(compute, cross.group_b, cross.gallery, "linux", "1.0.0", cross.disk_id)
    assert refused.value.status_code == status, refused.value.message
    error = refused.value.response.json()["error"]
    with pytest.raises(ResourceNotFoundError):  # nothing was made
        cross.compute_b().gallery_image_versions.get(cross.group_b, cross.gallery, "linux", "1.0.0")
    return error


def test_a_version_from_another_tenants_disk_with_the_auxiliary_token(cross):
    compute = cross.compute_b(cross.credentials[cross.tenant_a])
    version = make_version(compute, cross.group_b, cross.gallery, "linux", "1.0.0", cross.disk_id)
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.os_disk_image.source.id.lower() == cross.disk_id.lower()
    disk_from(compute, cross.group_b, "copy", version.id)
    assert read_disk(compute, cross.server, cross.group_b, "copy") == cross.data  # tenant A's bytes, in tenant B


def test_without_the_auxiliary_token_the_refusal_names_the_tenant(cross):
    error = _refused(cross, cross.compute_b(), 403)
    assert error["code"] == "LinkedAuthorizationFailed"
    assert cross.tenant_a in error["message"] and "x-ms-authorization-auxiliary" in error["message"], error
    assert cross.disk_id.lower() in error["message"].lower()


def test_an_auxiliary_token_of_the_wrong_tenant(cross, http):
    c = _tenant(http)
    _ok(
        http.post(f"/vmgallery/identity/tenants/{c}/servicePrincipals", json={"appId": cross.sp[cross.tenant_a].app_id})
    )
    in_c = ClientSecretCredential(
        c,
        cross.sp[cross.tenant_a].app_id,
        cross.sp[cross.tenant_a].password,
        authority=cross.server.url,
        disable_instance_discovery=True,
        connection_verify=cross.server.ca,
    )
    cross.stack.callback(in_c.close)
    error = _refused(cross, cross.compute_b(in_c), 403)
    assert error["code"] == "LinkedAuthorizationFailed"
    assert cross.tenant_a in error["message"] and c not in error["message"], error


@pytest.mark.parametrize("case", ["expired", "forged"])
def test_a_bad_auxiliary_token_is_401_saying_what_is_wrong(cross, case):
    kid, key = server_key(cross.server)
    now = int(time.time())
    claims = good_claims(cross.server, cross.sp[cross.tenant_a])
    if case == "expired":
        token = jwt.encode({**claims, "exp": now - 3600, "nbf": now - 7200}, key, "RS256", headers={"kid": kid})
    else:
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode(claims, other, "RS256", headers={"kid": kid})
    error = _refused(cross, cross.compute_b(StaticToken(token)), 401)
    reason = {"expired": "(expired)", "forged": "(bad signature)"}[case]
    assert error["message"].startswith("x-ms-authorization-auxiliary:") and reason in error["message"], error


def test_an_auxiliary_token_of_another_application_is_refused(cross, http, server):
    """Another application's principal, though it may read the source, lends the caller nothing: an auxiliary token
    is the caller's own, from another tenant."""
    other = _ok(
        http.post(f"/vmgallery/identity/tenants/{cross.tenant_a}/servicePrincipals", json={"displayName": "other"})
    )
    assign(http, other["objectId"], "Contributor", cross.disk_id)
    credential = ClientSecretCredential(
        cross.tenant_a,
        other["appId"],
        other["password"],
        authority=server.url,
        disable_instance_discovery=True,
        connection_verify=server.ca,
    )
    cross.stack.callback(credential.close)
    error = _refused(cross, cross.compute_b(credential), 401)
    assert error["message"].startswith("x-ms-authorization-auxiliary:") and other["appId"] in error["message"], error
