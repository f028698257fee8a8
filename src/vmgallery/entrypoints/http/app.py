"""The ARM-shaped HTTP API.

The request pipeline, in order: request ids and access log (`pipeline`) -> canonical path spelling (ARM paths are
case-insensitive) -> head and query limits and grammars (`parsing`) -> bearer authentication -> route (api-version
check, body parsing) -> use case -> ARM error mapping. An unexpected exception anywhere becomes a logged 500 in the
ARM envelope carrying the correlation id, and the connection stays open. Routes come from one table (`ROUTES`):
every resource type gets the same handlers.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from ...app import replication
from ...app.access import DiskAccess
from ...app.activity import ActivityLog
from ...app.authorization import Authorization
from ...app.builds import Builds
from ...app.kinds import (
    DISK,
    GALLERY,
    IMAGE,
    IMAGE_DEFINITION,
    IMAGE_TEMPLATE,
    IMAGE_VERSION,
    RESOURCE_GROUP,
    SNAPSHOT,
    TRIGGER,
    USER_ASSIGNED_IDENTITY,
    Kind,
)
from ...app.resources import Outcome, Resources
from ...app.share import ShareGallery
from ...app.shared_views import ConsumerViews
from ...app.sharing import ActionCheck
from ...domain import errors
from ...domain.apiversions import check_api_version
from ...domain.ids import ResourceId
from ...domain.timestamps import arm_time
from . import activity as activity_log
from . import authorization as authorization_routes
from . import builder as builder_routes
from . import parsing, shared_galleries
from .fastpath import FastRoutes
from .guard import Guard
from .identity import ADMIN, IdentityApi, is_public
from .pipeline import RequestPipeline, arm_error
from .threads import to_thread
from .urls import base_url

RETRY_AFTER = "1"
PUBLIC_PATHS = ("/healthz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect")
SIGNED_PREFIX = "/_blob/"  # data plane: a signed URL is the credential

RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
COMPUTE = RG + "/providers/Microsoft.Compute"


@dataclass(frozen=True)
class Route:
    kind: Kind
    instance: str  # path template of one resource
    lists: tuple[tuple[str, str], ...]  # (path template, scope: "parent" | "group" | "subscription")
    to_id: Callable[[dict[str, str]], ResourceId]

    def parent_id(self, params: dict[str, str]) -> ResourceId:
        """The parent a list path names: the id of a (made-up) child with the parent's path parameters."""
        return self.to_id(
            {**params, **{n: "_" for n in re.findall(r"{(\w+)}", self.instance) if n not in params}}
        ).parent


ROUTES = (
    Route(
        RESOURCE_GROUP,
        RG,
        (("/subscriptions/{subscriptionId}/resourceGroups", "subscription"),),
        lambda p: ResourceId(p["subscriptionId"], p["resourceGroupName"], None, ()),
    ),
    Route(
        GALLERY,
        COMPUTE + "/galleries/{galleryName}",
        (
            (COMPUTE + "/galleries", "group"),
            ("/subscriptions/{subscriptionId}/providers/Microsoft.Compute/galleries", "subscription"),
        ),
        lambda p: ResourceId(
            p["subscriptionId"], p["resourceGroupName"], "Microsoft.Compute", (("galleries", p["galleryName"]),)
        ),
    ),
    Route(
        IMAGE_DEFINITION,
        COMPUTE + "/galleries/{galleryName}/images/{galleryImageName}",
        ((COMPUTE + "/galleries/{galleryName}/images", "parent"),),
        lambda p: ResourceId(
            p["subscriptionId"],
            p["resourceGroupName"],
            "Microsoft.Compute",
            (("galleries", p["galleryName"]), ("images", p["galleryImageName"])),
        ),
    ),
    Route(
        IMAGE_VERSION,
        COMPUTE + "/galleries/{galleryName}/images/{galleryImageName}/versions/{galleryImageVersionName}",
        ((COMPUTE + "/galleries/{galleryName}/images/{galleryImageName}/versions", "parent"),),
        lambda p: ResourceId(
            p["subscriptionId"],
            p["resourceGroupName"],
            "Microsoft.Compute",
            (
                ("galleries", p["galleryName"]),
                ("images", p["galleryImageName"]),
                ("versions", p["galleryImageVersionName"]),
            ),
        ),
    ),
    Route(
        DISK,
        COMPUTE + "/disks/{diskName}",
        (
            (COMPUTE + "/disks", "group"),
            ("/subscriptions/{subscriptionId}/providers/Microsoft.Compute/disks", "subscription"),
        ),
        lambda p: ResourceId(
            p["subscriptionId"], p["resourceGroupName"], "Microsoft.Compute", (("disks", p["diskName"]),)
        ),
    ),
    Route(
        SNAPSHOT,
        COMPUTE + "/snapshots/{snapshotName}",
        (
            (COMPUTE + "/snapshots", "group"),
            ("/subscriptions/{subscriptionId}/providers/Microsoft.Compute/snapshots", "subscription"),
        ),
        lambda p: ResourceId(
            p["subscriptionId"], p["resourceGroupName"], "Microsoft.Compute", (("snapshots", p["snapshotName"]),)
        ),
    ),
    Route(
        IMAGE,
        COMPUTE + "/images/{imageName}",
        (
            (COMPUTE + "/images", "group"),
            ("/subscriptions/{subscriptionId}/providers/Microsoft.Compute/images", "subscription"),
        ),
        lambda p: ResourceId(
            p["subscriptionId"], p["resourceGroupName"], "Microsoft.Compute", (("images", p["imageName"]),)
        ),
    ),
    Route(
        IMAGE_TEMPLATE,
        RG + "/providers/Microsoft.VirtualMachineImages/imageTemplates/{imageTemplateName}",
        (
            (RG + "/providers/Microsoft.VirtualMachineImages/imageTemplates", "group"),
            ("/subscriptions/{subscriptionId}/providers/Microsoft.VirtualMachineImages/imageTemplates", "subscription"),
        ),
        lambda p: ResourceId(
            p["subscriptionId"],
            p["resourceGroupName"],
            "Microsoft.VirtualMachineImages",
            (("imageTemplates", p["imageTemplateName"]),),
        ),
    ),
    Route(
        TRIGGER,
        RG + "/providers/Microsoft.VirtualMachineImages/imageTemplates/{imageTemplateName}/triggers/{triggerName}",
        ((RG + "/providers/Microsoft.VirtualMachineImages/imageTemplates/{imageTemplateName}/triggers", "parent"),),
        lambda p: ResourceId(
            p["subscriptionId"],
            p["resourceGroupName"],
            "Microsoft.VirtualMachineImages",
            (("imageTemplates", p["imageTemplateName"]), ("triggers", p["triggerName"])),
        ),
    ),
    Route(
        USER_ASSIGNED_IDENTITY,
        RG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}",
        (
            (RG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities", "group"),
            (
                "/subscriptions/{subscriptionId}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
                "subscription",
            ),
        ),
        lambda p: ResourceId(
            p["subscriptionId"],
            p["resourceGroupName"],
            "Microsoft.ManagedIdentity",
            (("userAssignedIdentities", p["resourceName"]),),
        ),
    ),
)
ACCESS_ROUTES = tuple(r for r in ROUTES if r.kind in (DISK, SNAPSHOT))

OPERATION_PATH = "/subscriptions/{subscriptionId}/providers/{namespace}/locations/{location}"


def _params_doc(template: str, with_body: bool = False) -> dict:
    params = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in re.findall(r"{(\w+)}", template)
    ]
    params.append({"name": "api-version", "in": "query", "required": True, "schema": {"type": "string"}})
    doc: dict[str, Any] = {"parameters": params}
    if with_body:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    return doc


async def _json_body(request: Request) -> Any:
    return await parsing.json_body(request, request.app.state.max_body_bytes)


class ArmApi:
    def __init__(
        self,
        resources: Resources,
        admin_token: str,
        access: DiskAccess | None = None,
        identity: IdentityApi | None = None,
        authorization: Authorization | None = None,
        *,
        actions: ActionCheck,
        builds: Builds | None = None,
    ):
        self.resources = resources
        self.builds = builds
        self.access = access
        self.admin_token = admin_token.encode()
        self.identity = identity
        self.authorization = authorization
        self.guard = Guard(authorization)
        self.share = ShareGallery(resources, actions)
        self.views = ConsumerViews(resources)
        self.direct = FastRoutes()  # the resource routes, dispatched by the pipeline (fastpath.py)

    # -- URLs of operations ---------------------------------------------------------------------------------
    def _op_headers(self, request: Request, outcome: Outcome) -> dict[str, str]:
        op = outcome.operation
        if op is None:
            return {}
        version = request.query_params.get("api-version")
        base = base_url(request) + OPERATION_PATH.format(
            subscriptionId=op.subscription, namespace=op.namespace, location=op.location
        )
        return {
            "Azure-AsyncOperation": f"{base}/capsOperations/{op.id}?api-version={version}",
            "Location": f"{base}/operationResults/{op.id}?api-version={version}",
            "Retry-After": RETRY_AFTER,
        }

    def _respond(self, request: Request, outcome: Outcome) -> Response:
        headers = self._op_headers(request, outcome)
        action = outcome.operation.action if outcome.operation else None
        if outcome.body is None or outcome.status == 204 or action in ("delete", "beginGetAccess", "endGetAccess"):
            return Response(status_code=outcome.status, headers=headers)
        return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)

    # -- resource handlers ------------------------------------------------------------------------------------
    def register(self, app: FastAPI) -> None:
        for route in ROUTES:
            self._register_resource(app, route)
        if self.access is not None:
            for route in ACCESS_ROUTES:
                self._register_access(app, route)
        self._register_operations(app)
        if self.authorization is not None:
            authorization_routes.register(app, self.authorization)
        shared_galleries.register(
            app, self.share, self.views, self._respond, self.resources.settings.page_size, self.guard
        )
        if self.builds is not None:
            builder_routes.register(app, self.builds, self._respond, self.guard)

    def _register_access(self, app: FastAPI, route: Route) -> None:
        kind = route.kind

        async def begin(request: Request):
            check_api_version(request.query_params.get("api-version"), kind.api_versions, kind.type)
            body = await _json_body(request)
            rid = route.to_id(request.path_params)
            await self.guard.check(request, kind.type, "beginGetAccess/action", rid)
            base = base_url(request)
            return self._respond(request, await to_thread(self.access.begin, rid, body, kind, base))

        async def end(request: Request):
            check_api_version(request.query_params.get("api-version"), kind.api_versions, kind.type)
            rid = route.to_id(request.path_params)
            await self.guard.check(request, kind.type, "endGetAccess/action", rid)
            return self._respond(request, await to_thread(self.access.end, rid, kind))

        for action, handler in (("beginGetAccess", begin), ("endGetAccess", end)):
            path = f"{route.instance}/{action}"
            app.add_api_route(
                path,
                handler,
                methods=["POST"],
                tags=[kind.type],
                name=f"{kind.type} {action}",
                openapi_extra=_params_doc(path, action == "beginGetAccess"),
            )

    def _register_resource(self, app: FastAPI, route: Route) -> None:
        kind = route.kind
        tag = kind.type

        async def put(request: Request):
            check_api_version(request.query_params.get("api-version"), kind.api_versions, kind.type)
            body = await _json_body(request)
            rid = route.to_id(request.path_params)
            await self.guard.check(request, kind.type, "write", rid, body=body)
            put = shared_galleries.as_caller(request, self.resources.put)  # disks from shared images check it
            return self._respond(request, await to_thread(put, rid, body, kind))

        async def patch(request: Request):
            check_api_version(request.query_params.get("api-version"), kind.api_versions, kind.type)
            body = await _json_body(request)
            rid = route.to_id(request.path_params)
            # An image template's PATCH may name new targets and identities: checked as a create's are (the other
            # kinds' sources never change after creation).
            linked = body if kind is IMAGE_TEMPLATE else None
            await self.guard.check(request, kind.type, "write", rid, body=linked)
            return self._respond(request, await to_thread(self.resources.patch, rid, body, kind))

        async def get(request: Request):
            check_api_version(request.query_params.get("api-version"), kind.api_versions, kind.type)
            rid = route.to_id(request.path_params)
            expand = request.query_params.get("$expand")
            return JSONResponse(
                await self.guard.run(request, kind.type, "read", rid, self.resources.get, rid, kind, expand)
            )

        async def delete(request: Request):
            check_api_version(request.query_params.get("api-version"), kind.api_versions, kind.type)
            rid = route.to_id(request.path_params)
            await self.guard.check(request, kind.type, "delete", rid)
            return self._respond(request, await to_thread(self.resources.delete, rid, kind))

        async def head(request: Request):
            check_api_version(request.query_params.get("api-version"), kind.api_versions, kind.type)
            rid = route.to_id(request.path_params)
            await self.guard.check(request, kind.type, "read", rid)
            try:
                await to_thread(self.resources.get, rid, kind)
            except errors.NotFound:
                return Response(status_code=404)
            except errors.ResourceGroupNotFound:
                return Response(status_code=404)
            return Response(status_code=204)

        async def plan(request: Request):
            check_api_version(request.query_params.get("api-version"), kind.api_versions, kind.type)
            body = await _json_body(request)
            rid = route.to_id(request.path_params)
            await self.guard.check(request, kind.type, "write", rid)
            return JSONResponse(await to_thread(self.resources.plan_update, rid, body, kind))

        if kind.plan is not None:
            # A vmgallery extension (not in ARM): what a PATCH with this body would do, changing nothing.
            app.add_api_route(
                route.instance + "/replicationPlan",
                plan,
                methods=["POST"],
                tags=[tag],
                name=f"{kind.type} replication plan",
                openapi_extra=_params_doc(route.instance + "/replicationPlan", True),
            )

        for method, handler, body in (
            ("PUT", put, True),
            ("PATCH", patch, True),
            ("GET", get, False),
            ("DELETE", delete, False),
            ("HEAD", head, False),
        ):
            if (method == "HEAD" and kind is not RESOURCE_GROUP) or (method == "PATCH" and not kind.patchable):
                continue
            if method != "HEAD":
                self.direct.add(method, route.instance, handler)
            app.add_api_route(
                route.instance,
                handler,
                methods=[method],
                tags=[tag],
                name=f"{kind.type} {method}",
                openapi_extra=_params_doc(route.instance, body),
            )

        for template, scope in route.lists:
            lister = self._list_handler(route, scope)
            self.direct.add("GET", template, lister)
            app.add_api_route(
                template,
                lister,
                methods=["GET"],
                tags=[tag],
                name=f"{kind.type} list ({scope})",
                openapi_extra=_params_doc(template),
            )

    def _list_handler(self, route: Route, scope: str):
        kind = route.kind

        async def handler(request: Request):
            check_api_version(request.query_params.get("api-version"), kind.api_versions, kind.type)
            p = request.path_params
            token = request.query_params.get("$skiptoken") or "0"  # both match their grammars (parsing.py)
            top = request.query_params.get("$top")
            limit = int(top) if top else self.resources.settings.page_size
            kwargs: dict[str, Any] = {"kind": kind, "after": int(token), "limit": limit}
            if scope == "subscription":
                kwargs["subscription"] = p["subscriptionId"]
            elif scope == "group":
                kwargs["group"] = ResourceId(p["subscriptionId"], p["resourceGroupName"], None, ())
            else:
                kwargs["parent"] = route.parent_id(dict(p))
            kwargs["within"] = await self.guard.visible(request, kind.type, kwargs)
            page = await to_thread(lambda: self.resources.list(**kwargs))
            body: dict[str, Any] = {"value": page.items}
            if page.next_after is not None:
                body["nextLink"] = str(request.url.include_query_params(**{"$skiptoken": str(page.next_after)}))
            return JSONResponse(body)

        return handler

    def _register_operations(self, app: FastAPI) -> None:
        def versions_for(namespace: str) -> tuple[str, ...]:
            # An operation URL carries the api-version of the request that started it.
            return tuple(
                sorted(
                    {
                        v
                        for r in ROUTES
                        if r.kind.type.lower().startswith(namespace.lower() + "/")
                        for v in r.kind.api_versions
                    }
                )
            )

        async def status(request: Request):
            p = request.path_params
            check_api_version(
                request.query_params.get("api-version"),
                versions_for(p["namespace"]),
                f"{p['namespace']}/locations/operations",
            )
            op, _ = await to_thread(self.resources.operation, p["subscriptionId"], p["operationId"])
            await self.guard.operation(request, p["namespace"], "status", op)
            body: dict[str, Any] = {
                "name": op.id,
                "status": op.status,
                "startTime": arm_time(op.start_time),
                "percentComplete": op.percent,
            }
            if op.end_time is not None:
                body["endTime"] = arm_time(op.end_time)
            if op.error:
                body["error"] = op.error.get("error")
            if op.action == "share" and op.status == "Succeeded" and op.result:
                # az's `sig share *` takes this body as the result (final-state-via azure-async-operation) and
                # would print {} from Azure's bare status; the applied SharingUpdate beside it is what it shows.
                body.update(op.result)
            headers = {"Retry-After": RETRY_AFTER} if op.status == "InProgress" else {}
            return JSONResponse(body, headers=headers)

        async def result(request: Request):
            p = request.path_params
            check_api_version(
                request.query_params.get("api-version"),
                versions_for(p["namespace"]),
                f"{p['namespace']}/locations/operationResults",
            )
            op, resource = await to_thread(self.resources.operation, p["subscriptionId"], p["operationId"])
            await self.guard.operation(request, p["namespace"], "result", op)
            if op.status == "InProgress":
                return Response(status_code=202, headers={"Location": str(request.url), "Retry-After": RETRY_AFTER})
            if op.status == "Failed":
                err = op.error or {}
                return JSONResponse({"error": err.get("error")}, status_code=err.get("status", 500))
            if op.result is not None:
                return JSONResponse(op.result)
            if op.action in ("delete", "endGetAccess") or resource is None:
                return Response(status_code=204)
            return JSONResponse(resource)

        app.add_api_route(
            OPERATION_PATH + "/capsOperations/{operationId}",
            status,
            methods=["GET"],
            tags=["operations"],
            name="operation status",
            openapi_extra=_params_doc(OPERATION_PATH + "/capsOperations/{operationId}"),
        )
        app.add_api_route(
            OPERATION_PATH + "/operationResults/{operationId}",
            result,
            methods=["GET"],
            tags=["operations"],
            name="operation result",
            openapi_extra=_params_doc(OPERATION_PATH + "/operationResults/{operationId}"),
        )

    # -- middleware -----------------------------------------------------------------------------------------
    async def authenticate(self, request: Request) -> errors.ArmError | None:
        """Who is calling, on `request.state.principal`: the admin token, or an access token of the authority."""
        header = request.headers.get("authorization")
        if not header:
            return errors.Unauthenticated(
                "Authentication failed. The 'Authorization' header is missing.", code="AuthenticationFailed"
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self.admin_token):
            request.state.principal = ADMIN
            return None
        if scheme.lower() != "bearer" or self.identity is None:
            return errors.Unauthenticated("The access token is invalid.", code="InvalidAuthenticationToken")
        auxiliary = request.headers.get("x-ms-authorization-auxiliary")
        try:
            # a repeat caller from memory, without a trip to a worker thread; otherwise the full check there
            principal = None if auxiliary else self.identity.remembered(token, request.scope["path"])
            if principal is None:
                principal = await to_thread(self.identity.authenticate, token, request.scope["path"], auxiliary)
            request.state.principal = principal
        except errors.ArmError as refused:
            return refused
        return None


def create_app(
    resources: Resources,
    admin_token: str,
    lifespan=None,
    access: DiskAccess | None = None,
    identity: IdentityApi | None = None,
    authorization: Authorization | None = None,
    *,
    actions: ActionCheck,
    builds: Builds | None = None,
    activity: ActivityLog | None = None,
) -> FastAPI:
    app = FastAPI(
        title="vmgallery",
        version="0.1.0",
        lifespan=lifespan,
        description="Azure Compute Gallery's ARM API, self-hosted.",
        docs_url="/docs",
        redoc_url=None,
        # FastAPI's OpenTelemetry hooks: nothing here configures a provider, and the probe for one cost each request
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    api = ArmApi(resources, admin_token, access, identity, authorization, actions=actions, builds=builds)
    app.state.max_body_bytes = resources.settings.max_body_bytes

    @app.get("/healthz", tags=["service"])
    async def healthz():
        return {"status": "ok"}

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    async def metrics():
        c = replication.COUNTERS
        lines = []
        for name, value, help_ in (
            ("vmgallery_chunks_healed_total", c.healed, "chunks repaired from another replica on read"),
            ("vmgallery_replication_chunks_copied_total", c.chunks_copied, "chunks copied between stores"),
            ("vmgallery_replication_bytes_copied_total", c.bytes_copied, "bytes copied between stores"),
            ("vmgallery_replication_chunks_present_total", c.chunks_present, "chunks a destination had"),
        ):
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} counter", f"{name} {value}"]
        return "\n".join(lines) + "\n"

    if identity is not None:
        identity.register(app)
    api.register(app)
    if activity is not None:
        activity_log.register(app, activity, resources.settings.page_size)

    @app.exception_handler(errors.ArmError)
    async def _arm(_request: Request, exc: errors.ArmError):
        return arm_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return arm_error(
                errors.NotFound(
                    f"No resource type or operation matches '{request.method} {request.url.path}'.",
                    code="InvalidResourceType",
                )
            )
        if exc.status_code == 405:
            return arm_error(
                errors.MethodNotAllowed(f"The method '{request.method}' is not supported on '{request.url.path}'.")
            )
        return arm_error(errors.ArmError(str(exc.detail), code="BadRequest"))

    async def gate(request: Request) -> Response | None:
        path = request.scope["path"]
        if path in PUBLIC_PATHS or path.startswith(SIGNED_PREFIX) or is_public(path):
            return None
        try:
            parsing.check_head(request)
            parsing.check_query(request)
        except errors.ArmError as refused:
            return arm_error(refused)
        failure = await api.authenticate(request)
        if failure is not None:
            return arm_error(failure)
        return None

    def recorded(scope: Scope, status: int, correlation_id: str, async_url: str | None, arrived: float) -> None:
        if activity is not None:
            principal = scope.get("state", {}).get("principal")
            activity_log.record_write(
                activity, principal, scope["method"], scope["path"], status, correlation_id, async_url, arrived
            )

    app.add_middleware(
        RequestPipeline, gate=gate, on_done=recorded if activity is not None else None, direct=api.direct
    )
    return app
