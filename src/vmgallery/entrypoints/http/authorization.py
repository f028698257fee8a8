"""Microsoft.Authorization at ARM's paths: role assignments and role definitions at every scope (`/`, a
subscription, a resource group, a gallery, an image definition, a version, any resource), as azure-mgmt-authorization
and az send them. Every handler hands the caller (`request.state.principal`) to the use case, which checks it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ...app.authorization import Authorization, Result
from ...domain.apiversions import check_api_version
from ...domain.principals import Principal
from . import parsing

ASSIGNMENT_API_VERSIONS = (
    "2015-07-01",
    "2018-01-01-preview",
    "2018-09-01-preview",
    "2020-03-01-preview",
    "2020-04-01-preview",
    "2020-08-01-preview",
    "2020-10-01-preview",
    "2021-04-01-preview",
    "2022-01-01-preview",
    "2022-04-01",
)
DEFINITION_API_VERSIONS = (
    "2015-07-01",
    "2018-01-01-preview",
    "2022-04-01",
    "2022-05-01-preview",
)
ASSIGNMENTS = "/providers/Microsoft.Authorization/roleAssignments"
DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions"


def principal_of(request: Request) -> Principal:
    """The caller authentication put on the request."""
    principal: Principal = request.state.principal
    return principal


def _scope(request: Request) -> str:
    return "/" + request.path_params.get("scope", "").strip("/")


def _respond(result: Result) -> Response:
    if result.body is None:
        return Response(status_code=result.status)
    return JSONResponse(result.body, status_code=result.status)


def register(app: FastAPI, authorization: Authorization) -> None:
    az = authorization

    async def list_assignments(request: Request):
        check_api_version(request.query_params.get("api-version"), ASSIGNMENT_API_VERSIONS, "roleAssignments")
        items = await run_in_threadpool(
            az.list_assignments, principal_of(request), _scope(request), request.query_params.get("$filter")
        )
        return JSONResponse({"value": items})

    async def get_assignment(request: Request):
        check_api_version(request.query_params.get("api-version"), ASSIGNMENT_API_VERSIONS, "roleAssignments")
        name = request.path_params["name"]
        return JSONResponse(await run_in_threadpool(az.get_assignment, principal_of(request), _scope(request), name))

    async def put_assignment(request: Request):
        check_api_version(request.query_params.get("api-version"), ASSIGNMENT_API_VERSIONS, "roleAssignments")
        body = await parsing.json_body(request, request.app.state.max_body_bytes)
        name = request.path_params["name"]
        return _respond(await run_in_threadpool(az.put_assignment, principal_of(request), _scope(request), name, body))

    async def delete_assignment(request: Request):
        check_api_version(request.query_params.get("api-version"), ASSIGNMENT_API_VERSIONS, "roleAssignments")
        name = request.path_params["name"]
        return _respond(await run_in_threadpool(az.delete_assignment, principal_of(request), _scope(request), name))

    async def list_definitions(request: Request):
        check_api_version(request.query_params.get("api-version"), DEFINITION_API_VERSIONS, "roleDefinitions")
        items = await run_in_threadpool(
            az.list_definitions, principal_of(request), _scope(request), request.query_params.get("$filter")
        )
        return JSONResponse({"value": items})

    async def get_definition(request: Request):
        check_api_version(request.query_params.get("api-version"), DEFINITION_API_VERSIONS, "roleDefinitions")
        guid = request.path_params["name"]
        return JSONResponse(await run_in_threadpool(az.get_definition, principal_of(request), _scope(request), guid))

    async def put_definition(request: Request):
        check_api_version(request.query_params.get("api-version"), DEFINITION_API_VERSIONS, "roleDefinitions")
        body = await parsing.json_body(request, request.app.state.max_body_bytes)
        guid = request.path_params["name"]
        return _respond(await run_in_threadpool(az.put_definition, principal_of(request), _scope(request), guid, body))

    async def delete_definition(request: Request):
        check_api_version(request.query_params.get("api-version"), DEFINITION_API_VERSIONS, "roleDefinitions")
        guid = request.path_params["name"]
        return _respond(await run_in_threadpool(az.delete_definition, principal_of(request), _scope(request), guid))

    routes = (
        (ASSIGNMENTS, "GET", list_assignments, "role assignments list"),
        (ASSIGNMENTS + "/{name}", "GET", get_assignment, "role assignment GET"),
        (ASSIGNMENTS + "/{name}", "PUT", put_assignment, "role assignment PUT"),
        (ASSIGNMENTS + "/{name}", "DELETE", delete_assignment, "role assignment DELETE"),
        (DEFINITIONS, "GET", list_definitions, "role definitions list"),
        (DEFINITIONS + "/{name}", "GET", get_definition, "role definition GET"),
        (DEFINITIONS + "/{name}", "PUT", put_definition, "role definition PUT"),
        (DEFINITIONS + "/{name}", "DELETE", delete_definition, "role definition DELETE"),
    )
    for prefix in ("", "/{scope:path}"):
        for path, method, handler, name in routes:
            app.add_api_route(
                prefix + path,
                handler,
                methods=[method],
                tags=["Microsoft.Authorization"],
                name=f"{name}{' (root)' if not prefix else ''}",
            )
