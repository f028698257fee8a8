"""Image Builder's actions beyond the resource itself (run, cancel, run outputs, the live log), and the platform image
catalog at compute's virtual machine image paths."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ...app import platform_images
from ...app.builds import Builds
from ...app.kinds import IMAGE_TEMPLATE
from ...app.resources import Outcome, check_subscription
from ...domain import errors
from ...domain.apiversions import check_api_version
from ...domain.ids import ResourceId, normalize_location
from .guard import Guard

TEMPLATE = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.VirtualMachineImages"
    "/imageTemplates/{imageTemplateName}"
)
SKU = (
    "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}/publishers/{publisherName}"
    "/artifacttypes/vmimage/offers/{offer}/skus/{skus}/versions"
)


def _template(p: dict[str, str]) -> ResourceId:
    return ResourceId(
        p["subscriptionId"],
        p["resourceGroupName"],
        "Microsoft.VirtualMachineImages",
        (("imageTemplates", p["imageTemplateName"]),),
    )


def _check(request: Request) -> None:
    check_api_version(request.query_params.get("api-version"), IMAGE_TEMPLATE.api_versions, IMAGE_TEMPLATE.type)


def register(
    app: FastAPI, builds: Builds, respond: Callable[[Request, Outcome], Response], guard: Guard | None = None
) -> None:
    async def allowed(request: Request, verb: str) -> ResourceId:
        # Azure's own actions for these routes: run/action, cancel/action, runOutputs/read; the log is a read.
        _check(request)
        rid = _template(dict(request.path_params))
        if guard is not None:
            await guard.check(request, IMAGE_TEMPLATE.type, verb, rid)
        return rid

    async def run(request: Request):
        rid = await allowed(request, "run/action")
        return respond(request, await run_in_threadpool(builds.run, rid))

    async def cancel(request: Request):
        rid = await allowed(request, "cancel/action")
        return respond(request, await run_in_threadpool(builds.cancel, rid))

    async def outputs(request: Request):
        rid = await allowed(request, "runOutputs/read")
        return JSONResponse({"value": await run_in_threadpool(builds.run_outputs, rid)})

    async def output(request: Request):
        rid = await allowed(request, "runOutputs/read")
        name = request.path_params["runOutputName"]
        return JSONResponse(await run_in_threadpool(builds.run_output, rid, name))

    async def log(request: Request):
        # A vmgallery extension: the live customization log, from line `after` on.
        rid = await allowed(request, "read")
        after = request.query_params.get("after", "0")
        if not after.isascii() or not after.isdigit() or len(after) > 12:
            raise errors.InvalidParameter("'after' must be a line number.", "after")
        return JSONResponse(await run_in_threadpool(builds.log, rid, int(after)))

    for path, handler, method in (
        (TEMPLATE + "/run", run, "POST"),
        (TEMPLATE + "/cancel", cancel, "POST"),
        (TEMPLATE + "/runOutputs", outputs, "GET"),
        (TEMPLATE + "/runOutputs/{runOutputName}", output, "GET"),
        (TEMPLATE + "/customizationLog", log, "GET"),
    ):
        app.add_api_route(path, handler, methods=[method], tags=[IMAGE_TEMPLATE.type], name=f"imageTemplates {path}")

    db = builds.resources.db

    def _versions(p: dict[str, str]) -> list[dict]:
        check_subscription(p["subscriptionId"])
        location = normalize_location(p["location"])
        with db.read() as tx:
            rows = platform_images.list_versions(tx, location, p["publisherName"], p["offer"], p["skus"])
        return [
            {k: v for k, v in platform_images.view(p["subscriptionId"], r).items() if k in ("id", "name", "location")}
            for r in rows
        ]

    def _version(p: dict[str, str]) -> dict:
        check_subscription(p["subscriptionId"])
        location = normalize_location(p["location"])
        with db.read() as tx:
            row = tx.get(platform_images.image_key(location, p["publisherName"], p["offer"], p["skus"], p["version"]))
            if row is None:
                raise errors.NotFound(
                    f"Artifact: VMImage was not found ({p['publisherName']}:{p['offer']}:{p['skus']}:{p['version']}).",
                    code="NotFound",
                )
            return platform_images.view(p["subscriptionId"], row)

    async def list_versions(request: Request):
        return JSONResponse(await run_in_threadpool(_versions, dict(request.path_params)))

    async def get_version(request: Request):
        return JSONResponse(await run_in_threadpool(_version, dict(request.path_params)))

    app.add_api_route(SKU, list_versions, methods=["GET"], tags=["virtualMachineImages"], name="vm image versions")
    app.add_api_route(
        SKU + "/{version}", get_version, methods=["GET"], tags=["virtualMachineImages"], name="vm image version"
    )
