"""vmgallery as its own authority (issue 12, items 1-3): real azure-identity and MSAL get tokens over HTTPS that the
real ComputeManagementClient then uses; every kind of bad token is a 401 naming its reason; the directory's
subscriptions, tenants, metadata and Graph lookups; secrets never reach the log."""

from __future__ import annotations

import base64
import json
import ssl
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import msal
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from cryptography.hazmat.primitives.asymmetric import rsa

ARM = "https://management.azure.com/"
ARM_AZ = "https://management.core.windows.net/"
AZ_CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
SUBS_API = "2022-12-01"
DEFAULT_TENANT = "00000000-0000-0000-0000-000000000001"


@dataclass
class Sp:
    tenant: str
    app_id: str
    object_id: str
    password: str


@dataclass
class Setup:
    tenant: str
    subscription: str


def tls(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca)


def admin(http: httpx.Client, method: str, path: str, body: dict | None = None, status: int = 200) -> dict:
    response = http.request(method, "/vmgallery/identity" + path, json=body)
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


@pytest.fixture
def setup(http) -> Setup:
    tenant = admin(http, "POST", "/tenants", {"name": f"t-{uuid.uuid4().hex[:6]}"}, 201)["tenantId"]
    sub = admin(http, "POST", "/subscriptions", {"tenantId": tenant, "name": "sub one"}, 201)["subscriptionId"]
    return Setup(tenant, sub)


def make_sp(http, tenant: str, multi: bool = False) -> Sp:
    body = admin(
        http, "POST", f"/tenants/{tenant}/servicePrincipals", {"displayName": "app", "multiTenant": multi}, 201
    )
    assert set(body) == {"appId", "objectId", "displayName", "password", "tenant"}
    return Sp(body["tenant"], body["appId"], body["objectId"], body["password"])


def token_request(server, tenant: str, form: dict) -> httpx.Response:
    with httpx.Client(base_url=server.url, verify=tls(server), timeout=30) as client:
        return client.post(f"/{tenant}/oauth2/v2.0/token", data=form)


def sp_token(server, sp: Sp, scope: str = ARM + ".default", **extra) -> str:
    response = token_request(
        server,
        sp.tenant,
        {
            "client_id": sp.app_id,
            "grant_type": "client_credentials",
            "client_info": "1",
            "client_secret": sp.password,
            "scope": scope,
            **extra,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def call(
    server, token: str, path: str, api: str = SUBS_API, method: str = "GET", headers: dict | None = None, **kw
) -> httpx.Response:
    with httpx.Client(base_url=server.url, verify=tls(server), timeout=30) as client:
        headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        return client.request(method, path, params={"api-version": api}, headers=headers, **kw)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# -- the real clients ----------------------------------------------------------------------------------------------
def test_client_secret_credential_drives_compute_management_client(server, http, setup):
    sp = make_sp(http, setup.tenant)
    credential = ClientSecretCredential(
        sp.tenant,
        sp.app_id,
        sp.password,
        authority=server.url,
        disable_instance_discovery=True,
        connection_verify=server.ca,
    )
    token = credential.get_token(ARM + ".default")
    claims = claims_of(token.token)
    assert claims["aud"] == ARM and claims["tid"] == setup.tenant and claims["oid"] == sp.object_id
    assert claims["appid"] == claims["azp"] == sp.app_id
    assert claims["iss"] == f"{server.url}/{setup.tenant}/v2.0"
    assert claims["exp"] - claims["nbf"] == 3600

    kwargs = dict(
        base_url=server.url,
        credential_scopes=[ARM + ".default"],
        connection_verify=server.ca,
        polling_interval=0,
    )
    # Without a role the principal may do nothing; Contributor on the subscription lets it work there.
    contributor = "b24988ac-6180-42a0-ab88-20f7382dd24c"
    with ResourceManagementClient(credential, setup.subscription, **kwargs) as resources:
        with pytest.raises(HttpResponseError) as refused:
            resources.resource_groups.create_or_update("rg-identity", {"location": "eastus"})
        assert refused.value.status_code == 403 and sp.object_id in refused.value.message
        sub = f"/subscriptions/{setup.subscription}"
        assigned = http.put(
            f"{sub}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
            params={"api-version": "2022-04-01"},
            json={"properties": {"roleDefinitionId": contributor, "principalId": sp.object_id}},
        )
        assert assigned.status_code == 201, assigned.text
        resources.resource_groups.create_or_update("rg-identity", {"location": "eastus"})
    with ComputeManagementClient(credential, setup.subscription, **kwargs) as compute:
        compute.galleries.begin_create_or_update("rg-identity", "galidentity", {"location": "eastus"}).result()
        assert [g.name for g in compute.galleries.list_by_resource_group("rg-identity")] == ["galidentity"]
    credential.close()


def test_wrong_secret_is_a_client_authentication_error(server, http, setup):
    sp = make_sp(http, setup.tenant)
    credential = ClientSecretCredential(
        sp.tenant,
        sp.app_id,
        "not-the-secret",
        authority=server.url,
        disable_instance_discovery=True,
        connection_verify=server.ca,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token(ARM + ".default")


def give_reader(http, subscription: str, object_id: str) -> None:
    reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    assigned = http.put(
        f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
        params={"api-version": "2022-04-01"},
        json={"properties": {"roleDefinitionId": reader, "principalId": object_id}},
    )
    assert assigned.status_code == 201, assigned.text


def test_az_scope_and_claims_parameter(server, http, setup):
    """az asks for `https://management.core.windows.net//.default` with a `claims` parameter."""
    sp = make_sp(http, setup.tenant)
    claims = json.dumps({"access_token": {"xms_cc": {"values": ["CP1"]}}})
    token = sp_token(server, sp, "https://management.core.windows.net//.default", claims=claims)
    assert claims_of(token)["aud"] == ARM_AZ
    # GET /subscriptions lists, as in Azure, where the caller holds a role: none yet, then Reader on this one.
    listed = call(server, token, "/subscriptions")
    assert listed.status_code == 200, listed.text
    assert listed.json()["value"] == []
    give_reader(http, setup.subscription, sp.object_id)
    listed = call(server, token, "/subscriptions")
    assert [s["subscriptionId"] for s in listed.json()["value"]] == [setup.subscription]


def test_password_grant_as_msal_posts_it(server, http, setup):
    upn = f"alice{uuid.uuid4().hex[:6]}@example.com"
    user = admin(
        http, "POST", f"/tenants/{setup.tenant}/users", {"userPrincipalName": upn, "password": "pa55word!"}, 201
    )
    assert set(user) >= {"objectId", "userPrincipalName"} and "password" not in user
    form = {
        "client_id": AZ_CLIENT,
        "grant_type": "password",
        "client_info": "1",
        "username": upn,
        "password": "pa55word!",
        "scope": "https://management.core.windows.net//.default offline_access openid profile",
    }
    response = token_request(server, setup.tenant, form)
    assert response.status_code == 200, response.text
    body = response.json()
    id_claims = claims_of(body["id_token"])
    assert id_claims["aud"] == AZ_CLIENT and id_claims["tid"] == setup.tenant
    assert id_claims["sub"] == user["objectId"] and id_claims["preferred_username"] == upn
    assert id_claims["iss"] == f"{server.url}/{setup.tenant}/v2.0"
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info == {"uid": user["objectId"], "utid": setup.tenant}
    access = claims_of(body["access_token"])
    assert access["aud"] == ARM_AZ and access["oid"] == user["objectId"] and access["idtyp"] == "user"
    give_reader(http, setup.subscription, user["objectId"])
    listed = call(server, body["access_token"], "/subscriptions")
    assert [s["subscriptionId"] for s in listed.json()["value"]] == [setup.subscription]

    # any public client id; `organizations` finds the user's tenant
    other = token_request(server, "organizations", {**form, "client_id": str(uuid.uuid4())})
    assert other.status_code == 200 and claims_of(other.json()["access_token"])["tid"] == setup.tenant

    wrong = token_request(server, setup.tenant, {**form, "password": "wrong-password"})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert "AADSTS50126" in wrong.json()["error_description"]
    elsewhere = token_request(server, DEFAULT_TENANT, form)
    assert elsewhere.status_code == 400 and "AADSTS50034" in elsewhere.json()["error_description"]


def test_msal_public_client_password_grant(server, http, setup, monkeypatch):
    """MSAL's own ROPC flow against the session's server on its free port. MSAL's user-realm lookup goes to the
    authority's host on port 443 (it drops the port), where this server is not: the host is pre-seeded as one without
    user-realm discovery, which is what MSAL itself records after a 404 there. The realm endpoint is checked on its
    own below; test_username_password_credential_on_port_443 runs the whole flow, lookup included."""
    upn = f"bob{uuid.uuid4().hex[:6]}@example.com"
    admin(http, "POST", f"/tenants/{setup.tenant}/users", {"userPrincipalName": upn, "password": "s3cret-pw"}, 201)
    monkeypatch.setattr(msal.authority.Authority, "_domains_without_user_realm_discovery", {"127.0.0.1"})
    # requests lets REQUESTS_CA_BUNDLE win over a session's own `verify`; it is also how az is told to trust a server.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca)
    client = msal.PublicClientApplication(AZ_CLIENT, authority=f"{server.url}/{setup.tenant}", instance_discovery=False)
    result = client.acquire_token_by_username_password(upn, "s3cret-pw", scopes=[ARM + ".default"])
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == upn
    assert call(server, result["access_token"], "/subscriptions").status_code == 200

    realm = httpx.get(f"{server.url}/common/userrealm/{upn}", params={"api-version": "1.0"}, verify=tls(server))
    assert realm.status_code == 200 and realm.json()["account_type"] == "Managed"


# -- bad tokens ----------------------------------------------------------------------------------------------------
def server_key(server) -> tuple[str, rsa.RSAPrivateKey]:
    from cryptography.hazmat.primitives import serialization

    folder = Path(server.data_dir) / "signing-keys"
    index = json.loads((folder / "keys.json").read_text())["keys"]
    kid = [k for k in index if k["retired"] is None][-1]["kid"]
    key = serialization.load_pem_private_key((folder / f"{kid}.pem").read_bytes(), None)
    return kid, key


def good_claims(server, sp: Sp, **changes) -> dict:
    now = int(time.time())
    claims = {
        "aud": ARM,
        "iss": f"{server.url}/{sp.tenant}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "tid": sp.tenant,
        "oid": sp.object_id,
        "appid": sp.app_id,
    }
    claims.update(changes)
    return claims


def unsigned(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_TOKENS = {
    "forged": ("bad signature", "InvalidAuthenticationToken"),
    "expired": ("expired", "ExpiredAuthenticationToken"),
    "not yet valid": ("not yet valid", "InvalidAuthenticationToken"),
    "wrong audience": ("wrong audience", "InvalidAuthenticationTokenAudience"),
    "wrong issuer": ("wrong issuer", "InvalidAuthenticationToken"),
    "unknown key": ("unknown key", "InvalidAuthenticationToken"),
    "alg none": ("unsigned", "InvalidAuthenticationToken"),
    "HS256 with the public key": ("unsupported algorithm", "InvalidAuthenticationToken"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_tokens_are_401_naming_the_reason(server, http, setup, case):
    sp = make_sp(http, setup.tenant)
    kid, key = server_key(server)
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = {
        "forged": lambda: jwt.encode(good_claims(server, sp), other_key, "RS256", headers={"kid": kid}),
        "expired": lambda: jwt.encode(
            good_claims(server, sp, exp=now - 3600, nbf=now - 7200), key, "RS256", headers={"kid": kid}
        ),
        "not yet valid": lambda: jwt.encode(
            good_claims(server, sp, nbf=now + 3600, exp=now + 7200), key, "RS256", headers={"kid": kid}
        ),
        "wrong audience": lambda: jwt.encode(
            good_claims(server, sp, aud="https://vault.azure.net"), key, "RS256", headers={"kid": kid}
        ),
        "wrong issuer": lambda: jwt.encode(
            good_claims(server, sp, iss=f"https://login.microsoftonline.com/{sp.tenant}/v2.0"),
            key,
            "RS256",
            headers={"kid": kid},
        ),
        "unknown key": lambda: jwt.encode(good_claims(server, sp), other_key, "RS256", headers={"kid": "nope"}),
        "alg none": lambda: unsigned(good_claims(server, sp)),
        "HS256 with the public key": lambda: _hs256(good_claims(server, sp), kid),
    }[case]()
    # The same claims, properly signed, are accepted: the refusal is the one thing changed.
    good = jwt.encode(good_claims(server, sp), key, "RS256", headers={"kid": kid})
    assert call(server, good, "/subscriptions").status_code == 200
    response = call(server, token, "/subscriptions")
    assert response.status_code == 401, response.text
    reason, code = BAD_TOKENS[case]
    error = response.json()["error"]
    assert error["code"] == code
    assert f"({reason})" in error["message"], error["message"]


def _hs256(claims: dict, kid: str) -> str:
    def part(value: dict | bytes) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    import hashlib
    import hmac

    head = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{part(claims)}"
    return head + "." + part(hmac.new(b"public key bytes", head.encode(), hashlib.sha256).digest())


def test_deleted_principal_token_stops_working(server, http, setup):
    sp = make_sp(http, setup.tenant)
    token = sp_token(server, sp)
    assert call(server, token, "/subscriptions").status_code == 200
    admin(http, "DELETE", f"/tenants/{setup.tenant}/servicePrincipals/{sp.object_id}", status=204)
    response = call(server, token, "/subscriptions")
    assert response.status_code == 401 and "(unknown principal)" in response.json()["error"]["message"]


def test_token_endpoint_errors(server, http, setup):
    sp = make_sp(http, setup.tenant)
    base = {"client_id": sp.app_id, "grant_type": "client_credentials", "client_secret": sp.password}
    cases = [
        (setup.tenant, {**base, "scope": "https://vault.azure.net/.default"}, 400, "invalid_resource"),
        (setup.tenant, {**base, "scope": ARM + "user_impersonation"}, 400, "invalid_scope"),
        (setup.tenant, {**base, "scope": ARM + ".default", "client_secret": "x"}, 401, "invalid_client"),
        (setup.tenant, {**base, "scope": ARM + ".default", "client_id": str(uuid.uuid4())}, 400, "unauthorized_client"),
        (str(uuid.uuid4()), {**base, "scope": ARM + ".default"}, 400, "invalid_request"),
        ("common", {**base, "scope": ARM + ".default"}, 400, "invalid_request"),
        (DEFAULT_TENANT, {**base, "scope": ARM + ".default"}, 400, "unauthorized_client"),  # no SP there
        (setup.tenant, {**base, "grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
    ]
    for tenant, form, status, error in cases:
        response = token_request(server, tenant, form)
        assert (response.status_code, response.json()["error"]) == (status, error), (form, response.text)


# -- keys ----------------------------------------------------------------------------------------------------------
def test_openid_configuration_jwks_and_rotation(server, http, setup):
    sp = make_sp(http, setup.tenant)
    with httpx.Client(base_url=server.url, verify=tls(server)) as client:
        config = client.get(f"/{setup.tenant}/v2.0/.well-known/openid-configuration").json()
        assert config["token_endpoint"] == f"{server.url}/{setup.tenant}/oauth2/v2.0/token"
        assert config["issuer"] == f"{server.url}/{setup.tenant}/v2.0"
        before = client.get(config["jwks_uri"]).json()["keys"]
        old_token = sp_token(server, sp)
        assert {k["kid"] for k in before} >= {jwt.get_unverified_header(old_token)["kid"]}
        new_kid = admin(http, "POST", "/signingKeys/rotate", {})["kid"]
        after = {k["kid"] for k in client.get(config["jwks_uri"]).json()["keys"]}
        assert new_kid in after and jwt.get_unverified_header(old_token)["kid"] in after
        new_token = sp_token(server, sp)
        assert jwt.get_unverified_header(new_token)["kid"] == new_kid
        # tokens of the retired key still verify, through its public key in the JWKS too
        assert call(server, old_token, "/subscriptions").status_code == 200
        assert call(server, new_token, "/subscriptions").status_code == 200
        jwk = next(k for k in client.get(config["jwks_uri"]).json()["keys"] if k["kid"] == new_kid)
        public = jwt.PyJWK(jwk).key
        assert jwt.decode(new_token, public, ["RS256"], audience=ARM)["oid"] == sp.object_id
        unknown = client.get(f"/{uuid.uuid4()}/v2.0/.well-known/openid-configuration")
        assert unknown.status_code == 404


# -- directory basics ----------------------------------------------------------------------------------------------
def test_subscriptions_and_tenants_seen_by_each(server, http, setup):
    sp = make_sp(http, setup.tenant)
    token = sp_token(server, sp)
    give_reader(http, setup.subscription, sp.object_id)
    mine = call(server, token, "/subscriptions").json()["value"]
    assert [(s["subscriptionId"], s["tenantId"], s["displayName"], s["state"]) for s in mine] == [
        (setup.subscription, setup.tenant, "sub one", "Enabled")
    ]
    assert mine[0]["id"] == f"/subscriptions/{setup.subscription}"
    for api in ("2016-06-01", "2019-11-01", "2021-01-01", "2022-12-01"):
        assert call(server, token, "/subscriptions", api).status_code == 200
    everything = {
        s["subscriptionId"] for s in http.get("/subscriptions", params={"api-version": SUBS_API}).json()["value"]
    }
    assert {setup.subscription, "00000000-0000-0000-0000-000000000000"} <= everything
    assert call(server, token, f"/subscriptions/{setup.subscription}").json()["tenantId"] == setup.tenant
    # the bootstrap subscription is the default tenant's: not this principal's
    bootstrap = call(server, token, "/subscriptions/00000000-0000-0000-0000-000000000000")
    assert bootstrap.status_code == 404 and bootstrap.json()["error"]["code"] == "SubscriptionNotFound"
    tenants = call(server, token, "/tenants").json()["value"]
    assert [t["tenantId"] for t in tenants] == [setup.tenant]
    all_tenants = {t["tenantId"] for t in http.get("/tenants", params={"api-version": SUBS_API}).json()["value"]}
    assert {setup.tenant, DEFAULT_TENANT} <= all_tenants


def test_unknown_subscription(server, http, setup):
    """A subscription no tenant has: 404 SubscriptionNotFound for a directory principal; the admin token keeps using
    any GUID (the existing tests and scripts make subscriptions up)."""
    sp = make_sp(http, setup.tenant)
    token = sp_token(server, sp)
    made_up = str(uuid.uuid4())
    response = call(server, token, f"/subscriptions/{made_up}/resourcegroups", "2021-04-01")
    assert response.status_code == 404 and response.json()["error"]["code"] == "SubscriptionNotFound"
    assert http.get(f"/subscriptions/{made_up}/resourcegroups", params={"api-version": "2021-04-01"}).status_code == 200


def test_metadata_endpoints(server):
    response = httpx.get(f"{server.url}/metadata/endpoints", params={"api-version": "2022-09-01"}, verify=tls(server))
    assert response.status_code == 200
    meta = response.json()
    assert meta["authentication"]["loginEndpoint"] == server.url
    assert meta["authentication"]["audiences"][0] == ARM_AZ
    assert meta["microsoftGraphResourceId"] == server.url + "/"
    assert meta["resourceManager"] == server.url + "/"
    # every key az's cloud mapper (azure.cli.core.cloud._arm_to_cli_mapper) reads by subscript, old versions included
    for key in ("name", "resourceManager", "sqlManagement", "batch", "gallery", "graphAudience", "vmImageAliasDoc"):
        assert isinstance(meta[key], str), key
    assert isinstance(meta["media"], str)
    assert {"storage", "keyVaultDns", "sqlServerHostname"} <= set(meta["suffixes"])
    bad = httpx.get(f"{server.url}/metadata/endpoints", params={"api-version": "1999-01-01"}, verify=tls(server))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidApiVersionParameter"


def test_graph_lookups_as_az_makes_them(server, http, setup):
    sp = make_sp(http, setup.tenant)
    upn = f"carol{uuid.uuid4().hex[:6]}@example.com"
    user = admin(
        http, "POST", f"/tenants/{setup.tenant}/users", {"userPrincipalName": upn, "password": "pa55word!"}, 201
    )
    group = admin(http, "POST", f"/tenants/{setup.tenant}/groups", {"displayName": "ops team"}, 201)
    other_tenant = admin(http, "POST", "/tenants", {"name": "other"}, 201)["tenantId"]
    stranger = make_sp(http, other_tenant)

    graph_scope = server.url + "//.default"  # az: {microsoftGraphResourceId}/.default
    token = sp_token(server, sp, graph_scope)
    assert claims_of(token)["aud"] == server.url + "/"

    def graph(path, **params):
        with httpx.Client(base_url=server.url, verify=tls(server)) as client:
            return client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})

    found = graph("/v1.0/servicePrincipals", **{"$filter": f"servicePrincipalNames/any(c:c eq '{sp.app_id}')"})
    assert found.status_code == 200, found.text
    assert [v["id"] for v in found.json()["value"]] == [sp.object_id]
    # scoped to the caller's tenant
    hidden = graph("/v1.0/servicePrincipals", **{"$filter": f"servicePrincipalNames/any(c:c eq '{stranger.app_id}')"})
    assert hidden.json()["value"] == []
    users = graph("/v1.0/users", **{"$filter": f"userPrincipalName eq '{upn.upper()}'"}).json()["value"]
    assert [u["id"] for u in users] == [user["objectId"]]
    groups = graph("/v1.0/groups", **{"$filter": "displayName eq 'ops team'"}).json()["value"]
    assert [g["id"] for g in groups] == [group["objectId"]]
    assert graph("/v1.0/groups", **{"$filter": "startswith(displayName,'o')"}).status_code == 400
    with httpx.Client(base_url=server.url, verify=tls(server)) as client:
        by_ids = client.post(
            "/v1.0/directoryObjects/getByIds",
            json={"ids": [user["objectId"], group["objectId"], stranger.object_id], "types": []},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["value"]
    assert {(v["id"], v["@odata.type"]) for v in by_ids} == {
        (user["objectId"], "#microsoft.graph.user"),
        (group["objectId"], "#microsoft.graph.group"),
    }
    # an ARM token is not a Graph token, and the other way round
    arm_token = sp_token(server, sp)
    with httpx.Client(base_url=server.url, verify=tls(server)) as client:
        refused = client.get("/v1.0/users", headers={"Authorization": f"Bearer {arm_token}"})
    assert refused.status_code == 401 and "(wrong audience)" in refused.json()["error"]["message"]
    assert call(server, token, "/subscriptions").status_code == 401
    # the admin token sees every tenant
    assert http.get("/v1.0/servicePrincipals", params={"$filter": f"appId eq '{stranger.app_id}'"}).json()["value"]


# -- directory rules -----------------------------------------------------------------------------------------------
def test_nested_groups_reach_the_token_and_the_principal(server, http, setup):
    sp = make_sp(http, setup.tenant)
    outer = admin(http, "POST", f"/tenants/{setup.tenant}/groups", {"displayName": "outer"}, 201)["objectId"]
    inner = admin(http, "POST", f"/tenants/{setup.tenant}/groups", {"displayName": "inner"}, 201)["objectId"]
    admin(http, "POST", f"/tenants/{setup.tenant}/groups/{outer}/members", {"memberId": inner}, 204)
    admin(http, "POST", f"/tenants/{setup.tenant}/groups/{inner}/members", {"memberId": sp.object_id}, 204)
    assert sorted(claims_of(sp_token(server, sp))["groups"]) == sorted([outer, inner])
    cycle = http.post(f"/vmgallery/identity/tenants/{setup.tenant}/groups/{inner}/members", json={"memberId": outer})
    assert cycle.status_code == 400
    members = admin(http, "GET", f"/tenants/{setup.tenant}/groups/{inner}/members")["value"]
    assert [m["objectId"] for m in members] == [sp.object_id]


def test_multi_tenant_application(server, http, setup):
    home = make_sp(http, setup.tenant, multi=True)
    other = admin(http, "POST", "/tenants", {"name": "customer"}, 201)["tenantId"]
    added = admin(http, "POST", f"/tenants/{other}/servicePrincipals", {"appId": home.app_id}, 201)
    assert added["appId"] == home.app_id and "password" not in added and added["objectId"] != home.object_id
    token = sp_token(server, Sp(other, home.app_id, added["objectId"], home.password))
    assert (claims_of(token)["tid"], claims_of(token)["oid"]) == (other, added["objectId"])
    single = make_sp(http, setup.tenant)
    refused = http.post(f"/vmgallery/identity/tenants/{other}/servicePrincipals", json={"appId": single.app_id})
    assert refused.status_code == 400 and "not multi-tenant" in refused.json()["error"]["message"]


def test_credential_reset(server, http, setup):
    sp = make_sp(http, setup.tenant)
    reset = admin(http, "POST", f"/tenants/{setup.tenant}/applications/{sp.app_id}/resetCredential", {})
    assert reset["appId"] == sp.app_id and reset["password"] != sp.password
    old = token_request(
        server,
        sp.tenant,
        {
            "client_id": sp.app_id,
            "grant_type": "client_credentials",
            "client_secret": sp.password,
            "scope": ARM + ".default",
        },
    )
    assert old.status_code == 401
    sp_token(server, Sp(sp.tenant, sp.app_id, sp.object_id, reset["password"]))
    shown = admin(http, "GET", f"/tenants/{setup.tenant}/servicePrincipals/{sp.object_id}")
    assert "password" not in json.dumps(shown) and reset["password"] not in json.dumps(shown)


def test_admin_api_is_admin_only(server, http, setup):
    sp = make_sp(http, setup.tenant)
    response = call(server, sp_token(server, sp), "/vmgallery/identity/tenants", api="x")
    assert response.status_code == 403


def test_secrets_never_in_the_log(server, http, setup):
    sp = make_sp(http, setup.tenant)
    upn = f"dave{uuid.uuid4().hex[:6]}@example.com"
    admin(http, "POST", f"/tenants/{setup.tenant}/users", {"userPrincipalName": upn, "password": "hunter2-pw"}, 201)
    sp_token(server, sp)
    token_request(
        server,
        setup.tenant,
        {
            "client_id": AZ_CLIENT,
            "grant_type": "password",
            "username": upn,
            "password": "hunter2-pw",
            "scope": ARM + ".default",
        },
    )
    token_request(
        server,
        setup.tenant,
        {
            "client_id": sp.app_id,
            "grant_type": "client_credentials",
            "client_secret": sp.password + "x",
            "scope": ARM + ".default",
        },
    )
    log = "".join(server.log_lines)
    assert "/oauth2/v2.0/token" in log  # the requests were logged...
    assert sp.password not in log and "hunter2-pw" not in log  # ...without what they carried


def test_auxiliary_tokens(server, http, setup):
    """x-ms-authorization-auxiliary: the same caller's tokens for other tenants, each checked like the primary."""
    home = make_sp(http, setup.tenant, multi=True)
    other = admin(http, "POST", "/tenants", {"name": "aux"}, 201)["tenantId"]
    guest = admin(http, "POST", f"/tenants/{other}/servicePrincipals", {"appId": home.app_id}, 201)
    primary = sp_token(server, home)
    aux = sp_token(server, Sp(other, home.app_id, guest["objectId"], home.password))
    ok = call(server, primary, "/subscriptions", headers={"x-ms-authorization-auxiliary": f"Bearer {aux}"})
    assert ok.status_code == 200, ok.text
    kid, key = server_key(server)
    expired = jwt.encode(good_claims(server, home, exp=int(time.time()) - 3600), key, "RS256", headers={"kid": kid})
    for header, reason in (
        (f"Bearer {aux}, Bearer {expired}", "(expired)"),
        (f"Basic {aux}", "Bearer <access token>"),
        (", ".join([f"Bearer {aux}"] * 4), "at most 3"),
    ):
        refused = call(server, primary, "/subscriptions", headers={"x-ms-authorization-auxiliary": header})
        assert refused.status_code == 401 and reason in refused.json()["error"]["message"], (header[:30], refused.text)


def test_rotate_without_a_body(server, http):
    response = http.post("/vmgallery/identity/signingKeys/rotate")
    assert response.status_code == 200 and response.json()["kid"]


def test_public_url_names_the_issuer_and_the_endpoints(backend, tmp_path):
    """Behind a load balancer the operator sets public_url: tokens carry it as their issuer and /metadata/endpoints
    points clients at it, while the token endpoint answers on whatever address the client used."""
    from ..conftest import running_server

    public = "https://gallery.example.test"
    with running_server(backend, tmp_path, config=f'public_url = "{public}/"\n') as srv, srv.http() as client:
        tenant = admin(client, "POST", "/tenants", {"name": "lb"}, 201)["tenantId"]
        sp = make_sp(client, tenant)
        token = sp_token(srv, sp)
        assert claims_of(token)["iss"] == f"{public}/{tenant}/v2.0"
        assert call(srv, token, "/tenants").status_code == 200
        meta = client.get("/metadata/endpoints", params={"api-version": "2022-09-01"}).json()
        assert meta["authentication"]["loginEndpoint"] == public
        assert meta["microsoftGraphResourceId"] == public + "/"
        graph = sp_token(srv, sp, public + "//.default")
        assert claims_of(graph)["aud"] == public + "/"
        config = client.get(f"/{tenant}/v2.0/.well-known/openid-configuration").json()
        assert config["issuer"] == f"{public}/{tenant}/v2.0"
        assert config["token_endpoint"] == f"{srv.url}/{tenant}/oauth2/v2.0/token"


def test_username_password_credential_on_port_443(backend, tmp_path, monkeypatch):
    """UsernamePasswordCredential as it is: MSAL looks the user's realm up on port 443 of the authority's host, so
    the server listens there (root only; skipped when the port is taken, e.g. by another test run)."""
    import os
    import socket

    from azure.identity import UsernamePasswordCredential

    from ..conftest import PgDatabase, Server

    if os.geteuid() != 0:
        pytest.skip("binding port 443 needs root")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no obstacle
        try:
            probe.bind(("127.0.0.1", 443))
        except OSError:
            pytest.skip("port 443 is taken")
    pg = PgDatabase() if backend == "postgresql" else None
    srv = Server(tmp_path, pg.url if pg else None, port=443)
    try:
        try:
            srv.start()
        except RuntimeError as failed:
            if "address already in use" in str(failed).lower():
                pytest.skip("port 443 was taken while the server started")
            raise
        with srv.http() as client:
            tenant = admin(client, "POST", "/tenants", {"name": "on443"}, 201)["tenantId"]
            sub = admin(client, "POST", "/subscriptions", {"tenantId": tenant, "name": "s"}, 201)["subscriptionId"]
            upn = "frank@on443.example"
            user = admin(
                client, "POST", f"/tenants/{tenant}/users", {"userPrincipalName": upn, "password": "pa55word!"}, 201
            )
            contributor = "b24988ac-6180-42a0-ab88-20f7382dd24c"
            assigned = client.put(
                f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
                params={"api-version": "2022-04-01"},
                json={"properties": {"roleDefinitionId": contributor, "principalId": user["objectId"]}},
            )
            assert assigned.status_code == 201, assigned.text
        assert srv.url == "https://127.0.0.1:443"
        authority = "https://127.0.0.1"
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", srv.ca)
        credential = UsernamePasswordCredential(
            AZ_CLIENT,
            upn,
            "pa55word!",
            tenant_id=tenant,
            authority=authority,
            disable_instance_discovery=True,
            connection_verify=srv.ca,
        )
        token = credential.get_token(ARM + ".default")
        assert claims_of(token.token)["oid"] == user["objectId"]
        with ResourceManagementClient(
            credential, sub, base_url=srv.url, credential_scopes=[ARM + ".default"], connection_verify=srv.ca
        ) as resources:
            resources.resource_groups.create_or_update("rg-user", {"location": "eastus"})
            assert [g.name for g in resources.resource_groups.list()] == ["rg-user"]
        assert any("/common/userrealm/" in line for line in srv.log_lines)
    finally:
        srv.stop()
        if pg:
            pg.drop()
