"""The resource routes the request pipeline dispatches itself (entrypoints/http/fastpath.py) are the routes FastAPI's
router would have chosen for the same request: the shortcut changes no answer."""

from __future__ import annotations

import re

from starlette.routing import Match

from vmgallery.config import Settings
from vmgallery.entrypoints.http.fastpath import FastRoutes
from vmgallery.entrypoints.http.pipeline import RequestPipeline
from vmgallery.wiring import build_app, build_service


def _pipeline(app) -> RequestPipeline:
    fastapi_app = app.app  # DataPlane wraps the FastAPI app
    fastapi_app.build_middleware_stack()
    found = [m for m in fastapi_app.user_middleware if m.cls is RequestPipeline]
    assert len(found) == 1
    return found[0]


def test_every_direct_route_is_the_route_fastapi_would_pick(tmp_path):
    service = build_service(Settings(data_dir=tmp_path, workers=0))
    try:
        app = build_app(service)
        direct: FastRoutes = _pipeline(app).kwargs["direct"]
        router_routes = app.app.router.routes
        checked = 0
        for method, routes in direct._routes.items():
            for pattern, handler in routes:
                # A path of this shape, each parameter a plain name
                path = re.sub(r"\(\?P<\w+>\[\^/\]\+\)", "n1", pattern.pattern.rstrip("$")).replace("\\", "")
                scope = {"type": "http", "method": method, "path": path, "root_path": ""}
                assert direct(scope) is not None, path
                first = next(r for r in router_routes if r.matches(scope)[0] is Match.FULL)
                assert first.endpoint is handler, (method, path)
                assert re.fullmatch(pattern, path)
                checked += 1
        assert checked >= 8 * 4  # every resource type's PUT, PATCH, GET and DELETE at least
        # What is not a resource route goes on to FastAPI: actions, HEAD, the service's own paths
        assert direct({"method": "HEAD", "path": "/subscriptions/s/resourceGroups/g"}) is None
        assert direct({"method": "GET", "path": "/healthz"}) is None
        gallery = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/x"
        assert direct({"method": "POST", "path": gallery + "/share"}) is None
        assert direct({"method": "GET", "path": gallery + "/"}) is None
        assert direct({"method": "GET", "path": gallery}) is not None
    finally:
        service.db.dispose()
