"""Identity over HTTP: vmgallery as an OAuth2/OpenID authority, the ARM and Graph calls clients make around it, and
the directory's management API.

- Authority (no bearer token): `GET /{tenant}/v2.0/.well-known/openid-configuration`, `GET /{tenant}/discovery/v2.0
  /keys` (JWKS), `POST /{tenant}/oauth2/v2.0/token` (client credentials, password), `GET /common/userrealm/{user}`
  (MSAL's lookup: always a managed realm), `GET /metadata/endpoints` (what `az cloud register` reads).
- ARM: `GET /subscriptions`, `GET /subscriptions/{id}`, `GET /tenants`.
- Graph (tokens for the Graph audience, `{public_url}/`): the lookups az makes to resolve an assignee.
- Management, `/vmgallery/identity/...` (the admin token only): tenants, subscriptions, users, groups and members,
  service principals, credential resets, signing-key rotation. Secrets appear only in the reply that made them.

Authentication (`authenticate`) turns a bearer token into a `Principal`: the admin token, or a JWT this authority
signed for the audience of the route (Graph paths: the Graph audience; everything else: ARM's).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ...app.authority import Authority
from ...app.directory import Directory, NewServicePrincipal
from ...app.identity_ports import ObjectRow, SubscriptionRow, TenantRow
from ...domain import errors
from ...domain import identity as rules
from ...domain.apiversions import check_api_version
from ...domain.identity import OAuthError
from ...domain.principals import ADMIN_OBJECT_ID, Principal, PrincipalType
from . import parsing
from .urls import base_url

ADMIN_PREFIX = "/vmgallery/identity"
GRAPH_PREFIX = "/v1.0/"
MAX_FORM_BYTES = 64 << 10
MAX_AUXILIARY_TOKENS = 3  # ARM's limit
_PUBLIC = re.compile(
    r"/metadata/endpoints"
    r"|/[^/]+/v2\.0/\.well-known/openid-configuration"
    r"|/[^/]+/discovery/v2\.0/keys"
    r"|/[^/]+/oauth2/v2\.0/token"
    r"|/common/userrealm/[^/]+",
    re.IGNORECASE,
)
_SUBSCRIPTION_PATH = re.compile(r"/subscriptions/([^/]+)(?:/|$)")

# The api-versions of Microsoft.Resources' subscription and tenant lists that az and azure-mgmt-resource send.
SUBSCRIPTION_API_VERSIONS = (
    "2016-06-01",
    "2018-06-01",
    "2019-06-01",
    "2019-11-01",
    "2020-01-01",
    "2021-01-01",
    "2022-01-01",
    "2022-12-01",
)
METADATA_API_VERSIONS = ("2015-01-01", "2018-01-01", "2019-05-01", "2020-06-01", "2022-09-01")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_GRAPH_TYPES = {
    PrincipalType.USER: "#microsoft.graph.user",
    PrincipalType.GROUP: "#microsoft.graph.group",
    PrincipalType.SERVICE_PRINCIPAL: "#microsoft.graph.servicePrincipal",
}
_GRAPH_TYPE_NAMES = {"user": PrincipalType.USER, "group": PrincipalType.GROUP}
_GRAPH_TYPE_NAMES["serviceprincipal"] = PrincipalType.SERVICE_PRINCIPAL

ADMIN = Principal(ADMIN_OBJECT_ID, rules.DEFAULT_TENANT_ID, PrincipalType.ADMIN, name="admin")


def is_public(path: str) -> bool:
    """The authority's own endpoints: a client calls them to get its first token."""
    return _PUBLIC.fullmatch(path) is not None


def _principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise errors.Unauthenticated("Authentication failed.", code="AuthenticationFailed")
    return principal


def _admin(request: Request) -> None:
    if not _principal(request).is_admin:
        raise rules.AdminOnly("The directory's management API is for the admin token only.", code="AuthorizationFailed")


async def _json(request: Request) -> dict[str, Any]:
    body = await parsing.json_body(request, request.app.state.max_body_bytes)
    if not isinstance(body, dict):
        raise errors.InvalidRequestContent("The request content must be a JSON object.")
    return body


# -- representations ------------------------------------------------------------------------------------------
def tenant_json(row: TenantRow) -> dict[str, Any]:
    return {"tenantId": row.tenant_id, "name": row.name}


def subscription_json(row: SubscriptionRow) -> dict[str, Any]:
    return {"subscriptionId": row.subscription_id, "tenantId": row.tenant_id, "name": row.name, "state": row.state}


def object_json(row: ObjectRow) -> dict[str, Any]:
    body: dict[str, Any] = {"objectId": row.object_id, "tenantId": row.tenant_id, "type": row.type.value}
    if row.type is PrincipalType.USER:
        body["userPrincipalName"] = row.name
    else:
        body["displayName"] = row.name
    if row.app_id:
        body["appId"] = row.app_id
    return body


def new_sp_json(sp: NewServicePrincipal) -> dict[str, Any]:
    body: dict[str, Any] = {"appId": sp.app_id, "objectId": sp.object_id, "displayName": sp.name}
    if sp.password is not None:
        body["password"] = sp.password
    body["tenant"] = sp.tenant_id
    return body


def arm_subscription(row: SubscriptionRow) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{row.subscription_id}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": row.subscription_id,
        "tenantId": row.tenant_id,
        "displayName": row.name,
        "state": row.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "Internal_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def graph_object(row: ObjectRow, home_tenant: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.type": _GRAPH_TYPES[row.type], "id": row.object_id, "displayName": row.name}
    if row.type is PrincipalType.USER:
        body |= {"userPrincipalName": row.name, "accountEnabled": True, "mail": None}
    elif row.type is PrincipalType.GROUP:
        body |= {"securityEnabled": True, "mailEnabled": False, "groupTypes": []}
    else:
        body |= {
            "appId": row.app_id,
            "servicePrincipalNames": [row.app_id],
            "servicePrincipalType": "Application",
            "accountEnabled": True,
            "appOwnerOrganizationId": home_tenant,
        }
    return body


_ODATA_STRING = r"'((?:[^']|'')*)'"
_GRAPH_FILTERS: dict[PrincipalType, tuple[re.Pattern[str], ...]] = {
    PrincipalType.SERVICE_PRINCIPAL: (
        re.compile(r"servicePrincipalNames/any\(\s*(\w+)\s*:\s*\1\s+eq\s+" + _ODATA_STRING + r"\s*\)", re.I),
        re.compile(r"appId\s+eq\s+" + _ODATA_STRING, re.I),
    ),
    PrincipalType.USER: (
        re.compile(r"userPrincipalName\s+eq\s+" + _ODATA_STRING, re.I),
        re.compile(r"mail\s+eq\s+" + _ODATA_STRING, re.I),
    ),
    PrincipalType.GROUP: (re.compile(r"displayName\s+eq\s+" + _ODATA_STRING, re.I),),
}


def graph_filter(type: PrincipalType, text: str | None) -> str | None:
    """The one value a Graph `$filter` az sends compares with, or None for no filter."""
    if not text:
        return None
    for pattern in _GRAPH_FILTERS[type]:
        match = pattern.fullmatch(text.strip())
        if match:
            return match.group(match.lastindex or 1).replace("''", "'")
    raise errors.ArmError(
        f"The filter '{text[:200]}' is not supported here; use "
        + {
            PrincipalType.SERVICE_PRINCIPAL: "servicePrincipalNames/any(c:c eq '{appId}') or appId eq '{appId}'",
            PrincipalType.USER: "userPrincipalName eq '{upn}'",
            PrincipalType.GROUP: "displayName eq '{name}'",
        }[type]
        + ".",
        "$filter",
        code="Request_UnsupportedQuery",
    )


class IdentityApi:
    def __init__(self, directory: Directory, authority: Authority, rotate: Callable[[], str]):
        self.directory = directory
        self.authority = authority
        self.rotate = rotate

    # -- authentication -------------------------------------------------------------------------------------
    def authenticate(self, token: str, path: str, auxiliary: str | None = None) -> Principal:
        """The principal of an access token (not the admin token: the pipeline knows that one) presented on `path`,
        with the principals of the `x-ms-authorization-auxiliary` tokens (the same caller in other tenants) on
        `auxiliary`; an ArmError (401) saying why not."""
        if token.count(".") != 2:
            raise errors.Unauthenticated("The access token is invalid.", code="InvalidAuthenticationToken")
        principal = self.authority.authenticate(token, *self._wanted(path))
        if auxiliary:
            principal = dataclasses.replace(principal, auxiliary=self._auxiliary(auxiliary, principal))
        return principal

    def remembered(self, token: str, path: str) -> Principal | None:
        """`authenticate` (without auxiliary tokens) from the authority's memory alone, on the event loop: None when
        it must run in full, in a worker thread."""
        if token.count(".") != 2:
            return None
        return self.authority.remembered(token, *self._wanted(path))

    def _wanted(self, path: str) -> tuple[tuple[str, ...], str | None]:
        """The audiences a token must have on `path` (Graph paths: the Graph audience; else ARM's), and the
        subscription the path names."""
        audiences = (self.authority.audiences.graph,) if path.startswith(GRAPH_PREFIX) else rules.ARM_AUDIENCES
        match = _SUBSCRIPTION_PATH.match(path)
        return audiences, match.group(1) if match else None

    def _auxiliary(self, header: str, caller: Principal) -> tuple[Principal, ...]:
        """The caller in other tenants: each token must be valid, and the same application's (ARM's rule: an
        auxiliary token is the caller's own, from another tenant, not another principal's)."""
        tokens = [part.strip() for part in header.split(",") if part.strip()]
        if len(tokens) > MAX_AUXILIARY_TOKENS:
            raise errors.Unauthenticated(
                f"The header x-ms-authorization-auxiliary carries {len(tokens)} tokens; at most "
                f"{MAX_AUXILIARY_TOKENS} are accepted.",
                code="InvalidAuthenticationToken",
            )
        principals = []
        for value in tokens:
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or token.strip().count(".") != 2:
                raise errors.Unauthenticated(
                    "Each x-ms-authorization-auxiliary token must be 'Bearer <access token>'.",
                    code="InvalidAuthenticationToken",
                )
            try:
                other = self.authority.authenticate(token.strip(), rules.ARM_AUDIENCES)
            except rules.TokenRejected as refused:
                raise errors.Unauthenticated(
                    f"x-ms-authorization-auxiliary: {refused.message}", code=refused.code
                ) from None
            if other.app_id != caller.app_id:
                raise errors.Unauthenticated(
                    f"x-ms-authorization-auxiliary: the token is for application '{other.app_id or other.object_id}' "
                    f"in tenant '{other.tenant_id}', not the caller's application '{caller.app_id or caller.object_id}'"
                    "; an auxiliary token must be the same application's token for another tenant.",
                    code="InvalidAuthenticationToken",
                )
            principals.append(other)
        return tuple(principals)

    # -- routes ---------------------------------------------------------------------------------------------
    def register(self, app: FastAPI) -> None:
        self._register_authority(app)
        self._register_arm(app)
        self._register_graph(app)
        self._register_admin(app)

    def _register_authority(self, app: FastAPI) -> None:
        authority = self.authority

        @app.get("/{tenant}/v2.0/.well-known/openid-configuration", tags=["authority"])
        async def openid_configuration(tenant: str, request: Request):
            base = base_url(request)
            if tenant.lower() in rules.MULTI_TENANT_SEGMENTS:
                shown, issuer = tenant.lower(), authority.issuer("{tenantid}")
            else:
                shown = (await run_in_threadpool(self.directory.tenant, tenant)).tenant_id
                issuer = authority.issuer(shown)
            return JSONResponse(
                {
                    "issuer": issuer,
                    "authorization_endpoint": f"{base}/{shown}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/{shown}/oauth2/v2.0/token",
                    "jwks_uri": f"{base}/{shown}/discovery/v2.0/keys",
                    "userinfo_endpoint": f"{base}/oidc/userinfo",
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                    "grant_types_supported": ["client_credentials", "password"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "preferred_username"],
                    "tenant_region_scope": None,
                    "cloud_instance_name": "vmgallery",
                    "msgraph_host": request.url.netloc,
                }
            )

        @app.get("/{tenant}/discovery/v2.0/keys", tags=["authority"])
        async def jwks(tenant: str):
            return JSONResponse(await run_in_threadpool(authority.keys.jwks))

        @app.post("/{tenant}/oauth2/v2.0/token", tags=["authority"])
        async def token(tenant: str, request: Request):
            try:
                form = await _form(request)
                body = await run_in_threadpool(authority.token, tenant, form)
            except OAuthError as refused:
                return JSONResponse(refused.body(), status_code=refused.status, headers=NO_STORE)
            return JSONResponse(body, headers=NO_STORE)

        @app.get("/common/userrealm/{user}", tags=["authority"])
        async def user_realm(user: str):
            return JSONResponse(authority.user_realm(user))

        @app.get("/metadata/endpoints", tags=["authority"])
        async def metadata(request: Request):
            check_api_version(request.query_params.get("api-version"), METADATA_API_VERSIONS, "metadata/endpoints")
            public = authority.public_url
            return JSONResponse(
                {
                    "name": "vmgallery",
                    "portal": f"{public}/",
                    "resourceManager": f"{public}/",
                    "gallery": f"{public}/",
                    "authentication": {
                        "loginEndpoint": public,
                        "audiences": list(rules.ARM_AUDIENCES),
                        "tenant": "common",
                        "identityProvider": "AAD",
                    },
                    "microsoftGraphResourceId": authority.audiences.graph,
                    "graph": authority.audiences.graph,
                    "graphAudience": authority.audiences.graph,
                    "media": "https://rest.media.azure.net",
                    "batch": "https://batch.core.windows.net/",
                    "sqlManagement": "https://management.core.windows.net:8443/",
                    "vmImageAliasDoc": (
                        "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/main/arm-compute/"
                        "quickstart-templates/aliases.json"
                    ),
                    "activeDirectoryDataLake": "https://datalake.azure.net/",
                    "suffixes": {
                        "storage": "core.windows.net",
                        "keyVaultDns": "vault.azure.net",
                        "acrLoginServer": "azurecr.io",
                        "sqlServerHostname": "database.windows.net",
                        "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
                        "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
                    },
                }
            )

    def _register_arm(self, app: FastAPI) -> None:
        directory = self.directory

        @app.get("/subscriptions", tags=["Microsoft.Resources/subscriptions"])
        async def subscriptions(request: Request):
            check_api_version(request.query_params.get("api-version"), SUBSCRIPTION_API_VERSIONS, "subscriptions")
            rows = await run_in_threadpool(directory.visible_subscriptions, _principal(request))
            return JSONResponse({"value": [arm_subscription(r) for r in rows]})

        @app.get("/subscriptions/{subscriptionId}", tags=["Microsoft.Resources/subscriptions"])
        async def subscription(subscriptionId: str, request: Request):
            check_api_version(request.query_params.get("api-version"), SUBSCRIPTION_API_VERSIONS, "subscriptions")
            principal = _principal(request)
            row = await run_in_threadpool(directory.subscription, subscriptionId)
            visible = await run_in_threadpool(directory.visible_subscriptions, principal)
            if row.subscription_id not in {r.subscription_id for r in visible}:
                raise rules.SubscriptionNotFound(
                    f"The subscription '{row.subscription_id}' could not be found.", "subscriptionId"
                )
            return JSONResponse(arm_subscription(row))

        @app.get("/tenants", tags=["Microsoft.Resources/tenants"])
        async def tenants(request: Request):
            check_api_version(request.query_params.get("api-version"), SUBSCRIPTION_API_VERSIONS, "tenants")
            rows = await run_in_threadpool(directory.visible_tenants, _principal(request))
            return JSONResponse(
                {
                    "value": [
                        {
                            "id": f"/tenants/{r.tenant_id}",
                            "tenantId": r.tenant_id,
                            "tenantCategory": "Home",
                            "displayName": r.name,
                            "tenantType": "AAD",
                            "domains": [],
                        }
                        for r in rows
                    ]
                }
            )

    def _register_graph(self, app: FastAPI) -> None:
        directory = self.directory
        graph = self.authority.audiences.graph

        def lister(type: PrincipalType, collection: str):
            async def handler(request: Request):
                value = graph_filter(type, request.query_params.get("$filter"))
                principal = _principal(request)

                def found() -> list[dict[str, Any]]:
                    rows = directory.find(principal, type, name=value)
                    return [self._graph_json(r) for r in rows]

                items = await run_in_threadpool(found)
                return JSONResponse({"@odata.context": f"{graph}v1.0/$metadata#{collection}", "value": items})

            return handler

        for type, collection in (
            (PrincipalType.SERVICE_PRINCIPAL, "servicePrincipals"),
            (PrincipalType.USER, "users"),
            (PrincipalType.GROUP, "groups"),
        ):
            app.add_api_route(f"{GRAPH_PREFIX}{collection}", lister(type, collection), methods=["GET"], tags=["graph"])

        @app.post(f"{GRAPH_PREFIX}directoryObjects/getByIds", tags=["graph"])
        async def get_by_ids(request: Request):
            body = await _json(request)
            ids, types = body.get("ids"), body.get("types") or []
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 1000:
                raise errors.InvalidParameter("'ids' must be a list of at most 1000 object ids.", "ids")
            if not isinstance(types, list) or not all(
                isinstance(t, str) and t.lower() in _GRAPH_TYPE_NAMES for t in types
            ):
                raise errors.InvalidParameter("'types' may name user, group and servicePrincipal.", "types")
            wanted = {_GRAPH_TYPE_NAMES[t.lower()] for t in types}
            principal = _principal(request)

            def found() -> list[dict[str, Any]]:
                rows = directory.by_ids(principal, ids)
                return [self._graph_json(r) for r in rows if not wanted or r.type in wanted]

            items = await run_in_threadpool(found)
            return JSONResponse({"@odata.context": f"{graph}v1.0/$metadata#directoryObjects", "value": items})

    def _graph_json(self, row: ObjectRow) -> dict[str, Any]:
        app = self.directory.application(row.app_id) if row.app_id else None
        return graph_object(row, app.home_tenant_id if app else None)

    def _register_admin(self, app: FastAPI) -> None:
        d = self.directory
        p = ADMIN_PREFIX

        def route(method: str, path: str, status: int = 200):
            def decorate(handler: Callable[..., Any]):
                async def endpoint(request: Request):
                    _admin(request)
                    body = await _json(request) if method == "POST" and _has_body(request) else {}
                    args = dict(request.path_params)
                    result = await run_in_threadpool(handler, body, request.query_params, **args)
                    if result is None:
                        return Response(status_code=204)
                    return JSONResponse(result, status_code=status, headers=NO_STORE)

                app.add_api_route(p + path, endpoint, methods=[method], tags=["identity"])
                return handler

            return decorate

        @route("POST", "/tenants", 201)
        def create_tenant(body, query):
            return tenant_json(d.create_tenant(body.get("name")))

        @route("GET", "/tenants")
        def list_tenants(body, query):
            return {"value": [tenant_json(r) for r in d.tenants()]}

        @route("GET", "/tenants/{tenantId}")
        def show_tenant(body, query, tenantId):
            return tenant_json(d.tenant(tenantId))

        @route("DELETE", "/tenants/{tenantId}")
        def delete_tenant(body, query, tenantId):
            d.delete_tenant(tenantId)

        @route("POST", "/subscriptions", 201)
        def create_subscription(body, query):
            return subscription_json(d.create_subscription(body.get("tenantId"), body.get("name")))

        @route("GET", "/subscriptions")
        def list_subscriptions(body, query):
            return {"value": [subscription_json(r) for r in d.subscriptions(query.get("tenant"))]}

        @route("GET", "/subscriptions/{subscriptionId}")
        def show_subscription(body, query, subscriptionId):
            return subscription_json(d.subscription(subscriptionId))

        @route("DELETE", "/subscriptions/{subscriptionId}")
        def delete_subscription(body, query, subscriptionId):
            d.delete_subscription(subscriptionId)

        @route("POST", "/tenants/{tenantId}/users", 201)
        def create_user(body, query, tenantId):
            return object_json(d.create_user(tenantId, body.get("userPrincipalName"), body.get("password")))

        @route("POST", "/tenants/{tenantId}/groups", 201)
        def create_group(body, query, tenantId):
            return object_json(d.create_group(tenantId, body.get("displayName")))

        @route("POST", "/tenants/{tenantId}/servicePrincipals", 201)
        def create_sp(body, query, tenantId):
            if body.get("appId") is not None:
                return new_sp_json(d.add_service_principal(tenantId, body.get("appId")))
            multi = body.get("multiTenant", False)
            if not isinstance(multi, bool):
                raise errors.InvalidParameter("'multiTenant' must be true or false.", "multiTenant")
            return new_sp_json(d.create_service_principal(tenantId, body.get("displayName"), multi))

        @route("POST", "/tenants/{tenantId}/applications/{appId}/resetCredential")
        def reset_credential(body, query, tenantId, appId):
            sp = d.reset_credential(tenantId, appId)
            return {"appId": sp.app_id, "password": sp.password, "tenant": sp.tenant_id}

        for collection, type in (
            ("users", PrincipalType.USER),
            ("groups", PrincipalType.GROUP),
            ("servicePrincipals", PrincipalType.SERVICE_PRINCIPAL),
        ):
            self._register_objects(route, collection, type)

        @route("GET", "/tenants/{tenantId}/groups/{objectId}/members")
        def list_members(body, query, tenantId, objectId):
            return {"value": [object_json(r) for r in d.members(tenantId, objectId)]}

        @route("POST", "/tenants/{tenantId}/groups/{objectId}/members", 204)
        def add_member(body, query, tenantId, objectId):
            d.add_member(tenantId, objectId, body.get("memberId"))

        @route("DELETE", "/tenants/{tenantId}/groups/{objectId}/members/{memberId}")
        def remove_member(body, query, tenantId, objectId, memberId):
            d.remove_member(tenantId, objectId, memberId)

        @route("POST", "/signingKeys/rotate")
        def rotate(body, query):
            return {"kid": self.rotate()}

    def _register_objects(self, route, collection: str, type: PrincipalType) -> None:
        d = self.directory

        @route("GET", f"/tenants/{{tenantId}}/{collection}")
        def list_objects(body, query, tenantId):
            return {"value": [object_json(r) for r in d.objects(tenantId, type)]}

        @route("GET", f"/tenants/{{tenantId}}/{collection}/{{objectId}}")
        def show_object(body, query, tenantId, objectId):
            return object_json(d.object(tenantId, objectId, type))

        @route("DELETE", f"/tenants/{{tenantId}}/{collection}/{{objectId}}")
        def delete_object(body, query, tenantId, objectId):
            d.delete_object(tenantId, objectId, type)


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


async def _form(request: Request) -> dict[str, str]:
    """An OAuth2 token request's form (application/x-www-form-urlencoded), within MAX_FORM_BYTES."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise OAuthError(400, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise OAuthError(400, "invalid_request", 90014, f"The request body is larger than {MAX_FORM_BYTES} bytes.")
        chunks.append(chunk)
    try:
        pairs = parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", 90014, "The request body is not valid UTF-8.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError(400, "invalid_request", 90014, f"The parameter '{name[:64]}' is given more than once.")
        form[name] = value
    return form
