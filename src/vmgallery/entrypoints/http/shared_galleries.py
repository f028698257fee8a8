"""Routes of gallery sharing: POST .../galleries/{g}/share, and the consumer views under
/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/sharedGalleries and .../communityGalleries.

Every use case runs as the request's caller (`request.state.principal`, set by authentication; absent, the admin).
A consumer view first needs its read action in the subscription the path names (Azure's
Microsoft.Compute/locations/sharedGalleries/read and the like: Reader there is enough); what is shared with that
subscription or its tenant is then decided by the use case, which answers 404 for anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ...app.resources import Outcome, Page
from ...app.share import ShareGallery
from ...app.shared_views import ConsumerViews
from ...app.sharing import calling_as
from ...domain.apiversions import GALLERY_API_VERSIONS, check_api_version
from ...domain.ids import ResourceId
from . import parsing
from .guard import Guard

T = TypeVar("T")

LOCATION = "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}"
SHARED = LOCATION + "/sharedGalleries"
COMMUNITY = LOCATION + "/communityGalleries/{publicGalleryName}"
SHARE = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute"
    "/galleries/{galleryName}/share"
)


def as_caller(request: Request, fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` run as the request's principal (its use cases decide what that principal may see)."""
    principal = getattr(request.state, "principal", None)

    def run(*args: Any) -> T:
        with calling_as(principal):
            return fn(*args)

    return run


def _doc(template: str, with_body: bool = False, query: tuple[str, ...] = ()) -> dict:
    import re

    params: list[dict] = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in re.findall(r"{(\w+)}", template)
    ]
    params.append({"name": "api-version", "in": "query", "required": True, "schema": {"type": "string"}})
    params += [{"name": q, "in": "query", "required": False, "schema": {"type": "string"}} for q in query]
    doc: dict[str, Any] = {"parameters": params}
    if with_body:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    return doc


def register(
    app: FastAPI,
    share: ShareGallery,
    views: ConsumerViews,
    respond: Callable[[Request, Outcome], Response],
    page_size: int,
    guard: Guard,
) -> None:
    def api_version(request: Request, what: str) -> None:
        check_api_version(request.query_params.get("api-version"), GALLERY_API_VERSIONS, what)

    async def may_read(request: Request, community: bool, what: str = "") -> None:
        """The consumer's read action in the subscription it names (`what`: "", "images/" or "images/versions/")."""
        view = "communityGalleries" if community else "sharedGalleries"
        action = f"Microsoft.Compute/locations/{view}/{what}read"
        await guard.in_subscription(request, action, request.path_params["subscriptionId"])

    async def post_share(request: Request):
        api_version(request, "Microsoft.Compute/galleries/share")
        body = await parsing.json_body(request, request.app.state.max_body_bytes)
        p = request.path_params
        rid = ResourceId(
            p["subscriptionId"], p["resourceGroupName"], "Microsoft.Compute", (("galleries", p["galleryName"]),)
        )
        return respond(request, await run_in_threadpool(as_caller(request, share.share), rid, body))

    app.add_api_route(
        SHARE, post_share, methods=["POST"], tags=["sharing"], name="gallery share", openapi_extra=_doc(SHARE, True)
    )

    def paged(request: Request, page: Page) -> JSONResponse:
        body: dict[str, Any] = {"value": page.items}
        if page.next_after is not None:
            body["nextLink"] = str(request.url.include_query_params(**{"$skiptoken": str(page.next_after)}))
        return JSONResponse(body)

    def window(request: Request) -> tuple[int, int]:
        top = request.query_params.get("$top")
        return int(request.query_params.get("$skiptoken") or "0"), int(top) if top else page_size

    def route(path: str, name: str, handler: Callable, query: tuple[str, ...] = ()) -> None:
        app.add_api_route(
            path, handler, methods=["GET"], tags=["sharing"], name=name, openapi_extra=_doc(path, query=query)
        )

    # -- direct shared galleries --------------------------------------------------------------------------------
    async def list_shared(request: Request):
        api_version(request, "Microsoft.Compute/locations/sharedGalleries")
        await may_read(request, False)
        p, q = request.path_params, request.query_params
        run = as_caller(request, views.list_shared)
        return paged(
            request,
            await run_in_threadpool(run, p["subscriptionId"], p["location"], q.get("sharedTo"), *window(request)),
        )

    route(SHARED, "shared galleries list", list_shared, ("sharedTo",))

    def gallery_get(community: bool):
        async def get(request: Request):
            api_version(
                request, "Microsoft.Compute/locations/" + ("communityGalleries" if community else "sharedGalleries")
            )
            await may_read(request, community)
            p = request.path_params
            name = p["publicGalleryName"] if community else p["galleryUniqueName"]
            run = as_caller(request, views.get_gallery)
            return JSONResponse(await run_in_threadpool(run, p["subscriptionId"], p["location"], community, name))

        return get

    def images_list(community: bool):
        async def get(request: Request):
            api_version(request, "Microsoft.Compute/locations/galleries/images")
            await may_read(request, community, "images/")
            p, q = request.path_params, request.query_params
            name = p["publicGalleryName"] if community else p["galleryUniqueName"]
            run = as_caller(request, views.list_images)
            page = await run_in_threadpool(
                run, p["subscriptionId"], p["location"], community, name, q.get("sharedTo"), *window(request)
            )
            return paged(request, page)

        return get

    def image_get(community: bool):
        async def get(request: Request):
            api_version(request, "Microsoft.Compute/locations/galleries/images")
            await may_read(request, community, "images/")
            p = request.path_params
            name = p["publicGalleryName"] if community else p["galleryUniqueName"]
            run = as_caller(request, views.get_image)
            return JSONResponse(
                await run_in_threadpool(run, p["subscriptionId"], p["location"], community, name, p["galleryImageName"])
            )

        return get

    def versions_list(community: bool):
        async def get(request: Request):
            api_version(request, "Microsoft.Compute/locations/galleries/images/versions")
            await may_read(request, community, "images/versions/")
            p, q = request.path_params, request.query_params
            name = p["publicGalleryName"] if community else p["galleryUniqueName"]
            run = as_caller(request, views.list_versions)
            page = await run_in_threadpool(
                run,
                p["subscriptionId"],
                p["location"],
                community,
                name,
                p["galleryImageName"],
                q.get("sharedTo"),
                *window(request),
            )
            return paged(request, page)

        return get

    def version_get(community: bool):
        async def get(request: Request):
            api_version(request, "Microsoft.Compute/locations/galleries/images/versions")
            await may_read(request, community, "images/versions/")
            p = request.path_params
            name = p["publicGalleryName"] if community else p["galleryUniqueName"]
            run = as_caller(request, views.get_version)
            return JSONResponse(
                await run_in_threadpool(
                    run,
                    p["subscriptionId"],
                    p["location"],
                    community,
                    name,
                    p["galleryImageName"],
                    p["galleryImageVersionName"],
                )
            )

        return get

    for community, base, what in (
        (False, SHARED + "/{galleryUniqueName}", "shared"),
        (True, COMMUNITY, "community"),
    ):
        query = () if community else ("sharedTo",)
        route(base, f"{what} gallery get", gallery_get(community))
        route(base + "/images", f"{what} gallery images list", images_list(community), query)
        route(base + "/images/{galleryImageName}", f"{what} gallery image get", image_get(community))
        route(
            base + "/images/{galleryImageName}/versions",
            f"{what} gallery image versions list",
            versions_list(community),
            query,
        )
        route(
            base + "/images/{galleryImageName}/versions/{galleryImageVersionName}",
            f"{what} gallery image version get",
            version_get(community),
        )
