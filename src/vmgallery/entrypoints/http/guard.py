"""The authorization check of the ARM routes: one awaited call per handler (`Guard.check`, `.visible`,
`.operation`), run before the use case so a refusal says nothing of what exists. The admin token passes at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from ...app.authorization import Authorization
from ...app.ports import OperationRow
from ...app.resources import check_subscription
from ...domain import errors
from ...domain.ids import ResourceId
from ...domain.principals import Principal
from ...domain.rbac import SHARE, Scope, operation_action, parse_scope, resource_action
from .authorization import principal_of
from .threads import to_thread  # a cheaper hop than Starlette's (threads.py)

T = TypeVar("T")


def _scope(rid: ResourceId) -> Scope:
    return Scope(rid.text, rid.subscription, rid)


class Guard:
    def __init__(self, authorization: Authorization | None):
        self.authorization = authorization

    def _caller(self, request: Request) -> Principal | None:
        """The caller to check, or None when nothing needs checking (the admin, or no authorization configured)."""
        if self.authorization is None:
            return None
        principal = principal_of(request)
        return None if principal.is_admin else principal

    async def check(self, request: Request, resource_type: str, verb: str, rid: ResourceId, body: Any = None) -> None:
        """`verb` (read, write, delete, beginGetAccess/action...) on the resource; with a create's body, also what
        its sources need."""
        principal = self._caller(request)
        if principal is None or self.authorization is None:
            return
        az = self.authorization
        action = resource_action(resource_type, verb)

        def run() -> None:
            az.check(principal, action, _scope(rid))
            if body is not None:
                az.check_linked(principal, action, rid.text, resource_type, body)

        await to_thread(run)

    async def run(
        self, request: Request, resource_type: str, verb: str, rid: ResourceId, use_case: Callable[..., T], *args: Any
    ) -> T:
        """`check`, then the use case, in one trip to the thread pool (for the hottest routes: a check costs a
        query, and the hop to a thread would cost as much again)."""
        principal = self._caller(request)
        if principal is None or self.authorization is None:
            return await to_thread(use_case, *args)
        az = self.authorization
        action = resource_action(resource_type, verb)

        def run() -> T:
            az.check(principal, action, _scope(rid))
            return use_case(*args)

        return await to_thread(run)

    async def in_subscription(self, request: Request, action: str, subscription: str) -> None:
        """`action` at a subscription's scope: the consumer views, where the caller reads what is shared with a
        subscription it holds a role in (Reader's */read is enough)."""
        principal = self._caller(request)
        if principal is None or self.authorization is None:
            return
        check_subscription(subscription)
        await to_thread(self.authorization.check, principal, action, f"/subscriptions/{subscription}")

    async def visible(self, request: Request, resource_type: str, where: dict[str, Any]) -> frozenset[str] | None:
        """For a list (`where` holds its subscription, group or parent): None to show all, else the scopes under
        the list's scope whose items the caller may read."""
        principal = self._caller(request)
        if principal is None or self.authorization is None:
            return None
        if where.get("subscription") is not None:
            scope = parse_scope(f"/subscriptions/{where['subscription']}")
        else:
            scope = _scope(where.get("group") or where["parent"])
        return await to_thread(self.authorization.visible, principal, resource_action(resource_type, "read"), scope)

    async def operation(self, request: Request, namespace: str, which: str, op: OperationRow) -> None:
        """Polling an operation needs its read action on the resource it acts on, or, for a share, the share action
        that started it (Compute Gallery Sharing Admin holds nothing else, and its SDK call polls); one the caller
        may not poll is not found, as one that never was."""
        principal = self._caller(request)
        if principal is None or self.authorization is None:
            return
        az = self.authorization
        scope = parse_scope(op.resource_id)

        def may_poll() -> bool:
            if az.permitted(principal, operation_action(namespace, which), scope):
                return True
            return op.action == "share" and az.permitted(principal, SHARE, scope)

        if not await to_thread(may_poll):
            raise errors.NotFound(f"Operation '{op.id}' was not found.", "operationId")
