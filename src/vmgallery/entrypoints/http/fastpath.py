"""The ARM resource routes (PUT, PATCH, GET, DELETE of a resource, and its lists) dispatched by the request pipeline
itself, past Starlette's router, its exception middleware and FastAPI's request wrapper.

Those walked every registered route's regex for each request (more than fifty before a resource's GET), solved an
empty set of dependencies, and wrapped the handler in two exception scopes and an exit stack: about a third of a
GET's CPU in the application. The same handlers run here, with the same `Request`: only the dispatch is shorter. The
routes stay registered with FastAPI too, for the OpenAPI document. A path that matches nothing here, or a method a
path does not have here (HEAD, POST actions), goes on to FastAPI, which answers it as before.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response
from starlette.types import Scope, Send

from ...domain import errors
from .pipeline import arm_error

Handler = Callable[[Request], Awaitable[Response]]
Serve = Callable[[Request, Send], Awaitable[None]]


def _compile(template: str) -> re.Pattern[str]:
    """A path template's regex, as Starlette compiles one: each `{name}` is one non-empty path segment."""
    pattern, at = "", 0
    for m in re.finditer(r"{(\w+)}", template):
        pattern += re.escape(template[at : m.start()]) + f"(?P<{m.group(1)}>[^/]+)"
        at = m.end()
    return re.compile(pattern + re.escape(template[at:]) + "$")


class FastRoutes:
    def __init__(self) -> None:
        self._routes: dict[str, list[tuple[re.Pattern[str], Handler]]] = {}

    def add(self, method: str, template: str, handler: Handler) -> None:
        self._routes.setdefault(method, []).append((_compile(template), handler))

    def __call__(self, scope: Scope) -> Serve | None:
        """What serves this request, or None to leave it to FastAPI's router."""
        routes = self._routes.get(scope["method"])
        if routes is None:
            return None
        path = scope["path"]
        for pattern, handler in routes:
            found = pattern.match(path)
            if found is not None:
                return _serving(handler, found.groupdict())
        return None


def _serving(handler: Handler, params: dict[str, str]) -> Serve:
    async def serve(request: Request, send: Send) -> None:
        request.scope["path_params"] = params
        try:
            response = await handler(request)
        except errors.ArmError as exc:  # as the app's exception handler maps it; anything else is the pipeline's 500
            response = arm_error(exc)
        await response(request.scope, request.receive, send)

    return serve
