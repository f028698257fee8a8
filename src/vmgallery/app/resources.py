"""Use cases for every ARM resource: create or replace, update, read, list, delete.

Each write runs in one transaction that checks the rules, writes the resource row in its transitional state
(Creating/Updating/Deleting), and records the operation and the job that will finish it. A crash after the commit
leaves a job that any worker completes; a crash before it leaves nothing. The caller then waits briefly for the
operation, so quick ones answer with their final state and slow ones with "in progress" for the client to poll.
A metadata-only create or update that this process would finish at once anyway is finished in its own transaction:
the row is written in its final state and the operation recorded as done.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Settings
from ..domain import deletion, errors
from ..domain.ids import ResourceId, normalize_location, parse_resource_id
from ..domain.known_properties import KNOWN_PROPERTIES
from ..domain.validate import Body, carry_read_only, given, merge_patch, prune
from .kinds import KINDS, RESOURCE_GROUP, Context, Kind
from .operations import OperationWaiter
from .ports import (
    Clock,
    ConcurrentChange,
    ManagedPrincipals,
    Metadata,
    OperationRow,
    RegionStores,
    ResourceRow,
    StorageAccounts,
    SubscriptionTenants,
    Transaction,
)

QUICK_JOBS = ("provision", "version_capture")  # metadata only: a request may run them itself
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_LISTED_CHILDREN = 10


@dataclass
class Outcome:
    status: int
    body: Body | None
    operation: OperationRow | None = None


@dataclass
class Page:
    items: list[Body]
    next_after: int | None


def check_subscription(subscription: str) -> None:
    if not GUID.match(subscription):
        raise errors.InvalidParameter(
            f"The subscription identifier '{subscription}' is not a GUID.",
            "subscriptionId",
            code="InvalidSubscriptionId",
        )


class Resources:
    def __init__(
        self,
        db: Metadata,
        settings: Settings,
        clock: Clock,
        waiter: OperationWaiter,
        stores: RegionStores,
        accounts: StorageAccounts,
        subscription_tenants: SubscriptionTenants,
        principals: ManagedPrincipals | None = None,
    ):
        # The directory's principals behind managed identities (None: identities get ids, the directory no entry).
        self.principals = principals
        # Which tenant a consumer subscription belongs to (sharing): the identity directory.
        self.subscription_tenants = subscription_tenants
        self.db = db
        self.stores = stores
        self.accounts = accounts
        # Runs an operation's quick (metadata-only) job in the request's thread; set when this process has workers.
        self.inline: Callable[[str], None] | None = None
        self.settings = settings
        self.clock = clock
        self.waiter = waiter

    # -- helpers -------------------------------------------------------------------------------------------
    def _location(self, body: Body) -> str:
        raw = body.get("location")
        if not isinstance(raw, str) or not raw.strip():
            raise errors.MissingRequiredProperty("Required property 'location' is missing.", "location")
        location = normalize_location(raw)
        if location not in self.settings.regions:
            raise errors.InvalidLocation(
                f"The location '{raw}' is not available; configured regions are {', '.join(self.settings.regions)}.",
                "location",
            )
        return location

    def _group(self, tx: Transaction, rid: ResourceId) -> ResourceRow:
        group = tx.get(rid.group_key, for_update=True)
        if group is None:
            raise errors.ResourceGroupNotFound(
                f"Resource group '{rid.resource_group}' could not be found.", "resourceGroupName"
            )
        return group

    def _parent(self, tx: Transaction, rid: ResourceId, kind: Kind) -> ResourceRow | None:
        if kind.parent_type is None:
            return None
        group = self._group(tx, rid)
        if kind.parent_type == RESOURCE_GROUP.type:
            return group
        parent_id = given(rid.parent, "parent")
        parent = tx.get(parent_id.key, for_update=True)
        if parent is None:
            raise errors.ParentResourceNotFound(
                f"Can not perform requested operation on nested resource. Parent resource '{parent_id.name}' "
                "not found.",
                parent_id.text,
            )
        return parent

    def _spec(
        self,
        kind: Kind,
        body: Body,
        parent: ResourceRow | None,
        location: str | None,
        existing: ResourceRow | None = None,
        *,
        stored: bool = False,
    ) -> Body:
        """The canonical, writable part of a body: what updates are compared on, without the properties Azure's
        schema does not name. A stored body is re-read without the region check (configuration may have changed
        since) and without an existing resource."""
        return kind.normalize(
            prune(body, KNOWN_PROPERTIES[kind.type]),
            Context(
                parent.body if parent else None,
                location,
                None if stored else self.settings.regions,
                existing.body if existing else None,
            ),
        )

    def _full_body(self, kind: Kind, rid: ResourceId, spec: Body, location: str, state: str) -> Body:
        body: Body = {"id": rid.text, "name": rid.name, "type": kind.type, "location": location}
        body.update({k: v for k, v in spec.items() if k not in ("id", "name", "type", "location")})
        if kind.located_by_parent:
            del body["location"]
        if kind.read_only_fill:
            kind.read_only_fill(body, rid)
        body.setdefault("properties", {})["provisioningState"] = state
        return body

    def record_operation(
        self,
        tx: Transaction,
        rid: ResourceId,
        kind: Kind,
        location: str,
        action: str,
        prior: Body | None,
        job: str | None = "provision",
        result: Body | None = None,
    ) -> OperationRow:
        """Record an operation; with a job it is InProgress until a worker finishes it, without one it is done."""
        now = self.clock()
        op = OperationRow(
            id=str(uuid.uuid4()),
            resource_key=rid.key,
            resource_id=rid.text,
            namespace=kind.type.split("/")[0],
            subscription=rid.subscription,
            location=location,
            action=action,
            status="InProgress" if job else "Succeeded",
            percent=0 if job else 100,
            error=None,
            prior_body=prior,
            start_time=now,
            end_time=None if job else now,
            result=result,
        )
        tx.insert_operation(op)
        if job:
            tx.queue_operation_job(operation_id=op.id, subject_key=rid.key, kind=job, now=now)
        return op

    def _busy(self, tx: Transaction, rid: ResourceId, kind: Kind) -> OperationRow | None:
        active = tx.active_operation(rid.key)
        if active is not None and active.action != "delete":
            raise errors.OperationNotAllowed(
                f"Another operation ({active.action}, id {active.id}) on {kind.noun} '{rid.name}' is in progress; "
                "retry when it has finished.",
                rid.name,
            )
        return active

    def _runs_inline(self) -> bool:
        """Whether this process finishes a quick operation within the request that started it."""
        return self.inline is not None and self.settings.sync_wait_seconds > 0

    def _provisioned(self, kind: Kind, status: int, body: Body, op: OperationRow) -> Outcome:
        """The answer to a metadata-only write finished in its own transaction: the "provision" job it would have
        queued, and this process run at once, only sets the provisioning state to Succeeded. The operation is
        recorded as done, with the same URLs to poll."""
        if kind.on_update or kind.prepare:
            self.waiter.kick()  # for the jobs they may have queued (a version's new replicas)
        return Outcome(status, body, op)

    def _settle(self, op: OperationRow, status_if_running: int, status_if_done: int, quick: bool) -> Outcome:
        if quick and self._runs_inline():
            # Run here, then wake the workers for what the job may have queued (a capture queues its copies). Woken
            # before, a worker would race this thread for the job, in transactions of its own.
            given(self.inline, "inline")(op.id)
        self.waiter.kick()
        op = self.waiter.wait(op.id, self.settings.sync_wait_seconds)
        if op.status == "Failed":
            err = op.error or {}
            failure = errors.ArmError(
                err.get("error", {}).get("message", "The operation failed."),
                err.get("error", {}).get("target"),
                code=err.get("error", {}).get("code"),
            )
            failure.status = err.get("status", 500)
            raise failure
        with self.db.read() as tx:
            row = tx.get(op.resource_key)
        done = op.status == "Succeeded"
        return Outcome(status_if_done if done else status_if_running, row.body if row else None, op)

    # -- use cases -----------------------------------------------------------------------------------------
    def put(self, rid: ResourceId, raw: Body, kind: Kind) -> Outcome:
        check_subscription(rid.subscription)
        kind.check_name(rid.name)
        if not isinstance(raw, dict):
            raise errors.InvalidRequestContent("The request body must be a JSON object.")
        location = "" if kind.located_by_parent else self._location(raw)
        now = self.clock()
        created = False
        try:
            with self.db.write() as tx:
                parent = self._parent(tx, rid, kind)
                if kind.located_by_parent:
                    location = given(parent, "parent").region
                if parent is not None and kind.parent_type != RESOURCE_GROUP.type and parent.location != location:
                    raise errors.InvalidParameter(
                        f"The {kind.noun} must be in its parent's location '{parent.location}', not '{location}'.",
                        "location",
                    )
                if parent is not None and parent.state == "Deleting":
                    raise errors.Conflict(
                        f"The parent of {kind.noun} '{rid.name}' is being deleted.",
                        rid.name,
                        code="ParentResourceBeingDeleted",
                    )
                existing = tx.get(rid.key, for_update=True)
                spec = self._spec(kind, raw, parent, location, existing)
                if existing is not None:
                    if self._busy(tx, rid, kind):
                        raise errors.OperationNotAllowed(f"The {kind.noun} '{rid.name}' is being deleted.", rid.name)
                    if existing.location != location:
                        raise errors.PropertyChangeNotAllowed(
                            f"The location of an existing {kind.noun} cannot change from '{existing.location}' "
                            f"to '{location}'.",
                            "location",
                        )
                    kind.check_update(self._spec(kind, existing.body, parent, location, stored=True), spec)
                    self._check_natural(tx, kind, rid, spec)
                    if kind.on_update:
                        kind.on_update(self, tx, existing, spec)
                    spec = carry_read_only(existing.body, spec, kind.read_only)
                    rid = stored_id(existing, rid)
                    done = not kind.long_running or self._runs_inline()
                    state = "Succeeded" if done else "Updating"
                    body = _servable(self._full_body(kind, rid, spec, location, state))
                    tx.update(rid.key, state=state, body=body, now=now)
                    if kind.long_running:
                        job: str | None = None if done else "provision"
                        op = self.record_operation(tx, rid, kind, location, "update", existing.body, job=job)
                    status_running = status_done = kind.updated_status if kind.long_running else 200
                    quick = True
                else:
                    created = True
                    self._check_quota(tx, kind, rid, location)
                    self._check_natural(tx, kind, rid, spec)
                    prepared = kind.prepare(self, tx, rid, spec, location) if kind.prepare else None
                    spec = prepared.spec if prepared else spec
                    job = prepared.job if prepared else "provision"
                    done = not kind.long_running or (job == "provision" and self._runs_inline())
                    state = "Succeeded" if done else "Creating"
                    body = _servable(self._full_body(kind, rid, spec, location, state))
                    tx.insert(
                        key=rid.key,
                        type=kind.type_key,
                        parent_key=_parent_key(rid),
                        subscription=rid.subscription.lower(),
                        group_key=rid.group_key,
                        location=location,
                        natural_key=kind.natural_key(spec) if kind.natural_key else None,
                        state=state,
                        body=body,
                        now=now,
                    )
                    if kind.long_running:
                        if prepared is not None:
                            source_key, replica = prepared.source or (None, None)
                            for slot, manifest_id in prepared.contents.items():
                                tx.set_content(rid.key, slot, manifest_id, source_key, replica)
                        op = self.record_operation(tx, rid, kind, location, "create", None, job=None if done else job)
                    status_running, status_done = (
                        (kind.accepted_status, kind.created_status) if kind.long_running else (201, 201)
                    )
                    quick = job in QUICK_JOBS
        except ConcurrentChange:
            raise errors.Conflict(
                f"The {kind.noun} '{rid.name}' was created or changed by a concurrent request; retry.", rid.name
            ) from None
        if not done:
            return self._settle(op, status_running, status_done, quick)
        if not kind.long_running:
            if created and kind.on_created is not None:
                self._after_create(kind, rid, body)
            return Outcome(status_done, body)
        return self._provisioned(kind, status_done, body, op)

    def _after_create(self, kind: Kind, rid: ResourceId, body: Body) -> None:
        try:
            given(kind.on_created, "on_created")(self, body)
        except BaseException:
            with self.db.write() as tx:
                tx.delete(rid.key)
            raise

    def patch(self, rid: ResourceId, raw: Body, kind: Kind) -> Outcome:
        check_subscription(rid.subscription)
        if not isinstance(raw, dict):
            raise errors.InvalidRequestContent("The request body must be a JSON object.")
        with self.db.write() as tx:
            existing, spec = self._patched(tx, rid, raw, kind, for_update=True)
            if kind.on_update:
                kind.on_update(self, tx, existing, spec)
            spec = carry_read_only(existing.body, spec, kind.read_only)
            rid = stored_id(existing, rid)
            done = not kind.long_running or self._runs_inline()
            state = "Succeeded" if done else "Updating"
            body = _servable(self._full_body(kind, rid, spec, existing.region, state))
            tx.update(rid.key, state=state, body=body, now=self.clock())
            if not kind.long_running:
                return Outcome(200, body)
            job = None if done else "provision"
            op = self.record_operation(tx, rid, kind, existing.region, "update", existing.body, job=job)
        if not done:
            return self._settle(op, kind.updated_status, kind.updated_status, True)
        return self._provisioned(kind, kind.updated_status, body, op)

    def plan_update(self, rid: ResourceId, raw: Body, kind: Kind) -> Body:
        """What a PATCH with this body would do, without doing it (refused exactly as the PATCH would be)."""
        check_subscription(rid.subscription)
        if kind.plan is None or not isinstance(raw, dict):
            raise errors.InvalidRequestContent("A plan needs a JSON object body, for a gallery image version.")
        with self.db.read() as tx:
            existing, spec = self._patched(tx, rid, raw, kind, for_update=False)
            return kind.plan(self, tx, existing, spec)

    def _patched(
        self, tx: Transaction, rid: ResourceId, raw: Body, kind: Kind, *, for_update: bool
    ) -> tuple[ResourceRow, Body]:
        """The existing resource and the spec a PATCH with `raw` makes of it, checked as an update."""
        parent = self._parent(tx, rid, kind)
        existing = tx.get(rid.key, for_update=for_update)
        if existing is None:
            raise self.not_found(rid, kind)
        if self._busy(tx, rid, kind):
            raise errors.OperationNotAllowed(f"The {kind.noun} '{rid.name}' is being deleted.", rid.name)
        given = raw.get("location")
        if given is not None and (not isinstance(given, str) or normalize_location(given) != existing.location):
            raise errors.PropertyChangeNotAllowed(
                f"The location of an existing {kind.noun} cannot change from '{existing.location}' to '{given}'.",
                "location",
            )
        old_spec = self._spec(kind, existing.body, parent, existing.location, stored=True)
        merged = merge_patch(old_spec, _patch_input(raw))
        if raw.get("tags") is not None:
            merged["tags"] = raw["tags"]  # ARM PATCH replaces the whole tag set; it does not merge it
        spec = self._spec(kind, merged, parent, existing.location, existing)
        kind.check_update(old_spec, spec)
        return existing, spec

    def get(self, rid: ResourceId, kind: Kind, expand: str | None = None) -> Body:
        check_subscription(rid.subscription)
        expander = kind.expand if expand is not None and expand.lower() == "replicationstatus" else None
        if expander is None and kind.view is None:
            row = self.db.resource(rid.key)
            if row is not None:
                return row.body
        with self.db.read() as tx:
            row = tx.get(rid.key)
            if row is None:
                if kind.parent_type:
                    self._parent(tx, rid, kind)
                raise self.not_found(rid, kind)
            if expander is not None:
                return expander(tx, row)
            return kind.view(tx, row) if kind.view else row.body

    def delete(self, rid: ResourceId, kind: Kind) -> Outcome:
        check_subscription(rid.subscription)
        if kind.delete_at_once:
            return self._delete_at_once(rid, kind)
        with self.db.write() as tx:
            existing = tx.get(rid.key, for_update=True)
            if existing is None:
                return Outcome(204, None)
            active = self._busy(tx, rid, kind)
            if active is not None:
                op = active
            else:
                if not deletion.cascades(kind.type_key):
                    children = tx.children(rid.key, MAX_LISTED_CHILDREN)
                    deletion.check_delete(
                        kind.type_key,
                        kind.noun,
                        existing.body["name"],
                        [c.body["name"] for c in children],
                        tx.count_children(rid.key) if children else 0,
                        KINDS[children[0].type].noun if children else "",
                        rid.name,
                    )
                if kind.on_delete:
                    kind.on_delete(self, tx, existing)
                if kind is RESOURCE_GROUP:
                    # What a group's resources take with them outside it (an image template's staging group).
                    for row in tx.in_group(existing.key):
                        held = KINDS.get(row.type)
                        if held is not None and held.on_delete is not None:
                            held.on_delete(self, tx, row)
                body = copy.deepcopy(existing.body)
                body.setdefault("properties", {})["provisioningState"] = "Deleting"
                tx.update(rid.key, state="Deleting", body=body, now=self.clock())
                op = self.record_operation(
                    tx, stored_id(existing, rid), kind, existing.location or "global", "delete", existing.body
                )
        return self._settle(op, 202, 202, True)  # as ARM answers every long-running DELETE, done or not

    def _delete_at_once(self, rid: ResourceId, kind: Kind) -> Outcome:
        with self.db.write() as tx:
            existing = tx.get(rid.key, for_update=True)
            if existing is None:
                return Outcome(204, None)
            tx.delete(rid.key)
        if kind.on_deleted is not None:
            kind.on_deleted(self, existing.body)
        return Outcome(200, None)

    def list(
        self,
        *,
        kind: Kind,
        after: int,
        limit: int,
        parent: ResourceId | None = None,
        subscription: str | None = None,
        group: ResourceId | None = None,
        within: frozenset[str] | None = None,
    ) -> Page:
        """A page of one kind's resources in a subscription, a group or a parent; with `within` (app.authorization's
        `visible`), only those under one of those scopes."""
        limit = max(1, min(limit, 1000))
        with self.db.read() as tx:
            if subscription is not None:
                check_subscription(subscription)
                rows = tx.page(
                    type=kind.type_key, after=after, limit=limit + 1, subscription=subscription.lower(), within=within
                )
            elif group is not None:
                check_subscription(group.subscription)
                if tx.get(group.group_key) is None:
                    raise errors.ResourceGroupNotFound(
                        f"Resource group '{group.resource_group}' could not be found.", "resourceGroupName"
                    )
                rows = tx.page(
                    type=kind.type_key, after=after, limit=limit + 1, group_key=group.group_key, within=within
                )
            else:
                parent = given(parent, "a parent, a group or a subscription to list in")
                check_subscription(parent.subscription)
                if tx.get(parent.key) is None:
                    if tx.get(parent.group_key) is None:
                        raise errors.ResourceGroupNotFound(
                            f"Resource group '{parent.resource_group}' could not be found.", "resourceGroupName"
                        )
                    raise errors.ParentResourceNotFound(
                        f"Can not perform requested operation on nested resource. Parent resource "
                        f"'{parent.name}' not found.",
                        parent.text,
                    )
                rows = tx.page(type=kind.type_key, after=after, limit=limit + 1, parent_key=parent.key, within=within)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([r.body for r in rows], rows[-1].seq if more else None)

    def operation(self, subscription: str, op_id: str) -> tuple[OperationRow, Body | None]:
        with self.db.read() as tx:
            op = tx.get_operation(op_id)
            if op is None or op.subscription.lower() != subscription.lower():
                raise errors.NotFound(f"Operation '{op_id}' was not found.", "operationId")
            row = tx.get(op.resource_key)
            return op, row.body if row else None

    # -- rules that need the store ---------------------------------------------------------------------------
    def _check_quota(self, tx: Transaction, kind: Kind, rid: ResourceId, location: str) -> None:
        if kind.quota is None:
            return
        limit = kind.quota(self.settings)
        tx.lock(f"quota:{rid.subscription.lower()}:{location}:{kind.type_key}")
        used = tx.count_in_region(rid.subscription.lower(), location, kind.type_key)
        if used >= limit:
            raise errors.QuotaExceeded(
                f"Subscription '{rid.subscription}' already has {used} {kind.plural} in region '{location}'; "
                f"the limit is {limit}. Delete some or ask the operator to raise the limit.",
                "location",
            )

    def _check_natural(self, tx: Transaction, kind: Kind, rid: ResourceId, spec: Body) -> None:
        if kind.natural_key is None:
            return
        clash = tx.find_natural(_parent_key(rid), kind.type_key, kind.natural_key(spec))
        if clash is not None and clash.key != rid.key:
            raise errors.Conflict(
                f"The {kind.noun} '{clash.body['name']}' in this gallery already has "
                f"{given(kind.describe_natural, 'describe_natural')(spec)}; they must be unique within a gallery.",
                "properties.identifier",
                code="GalleryImageIdentifierAlreadyExists",
            )

    def not_found(self, rid: ResourceId, kind: Kind) -> errors.ArmError:
        if kind is RESOURCE_GROUP:
            return errors.ResourceGroupNotFound(f"Resource group '{rid.name}' could not be found.", "resourceGroupName")
        return errors.NotFound(
            f"The Resource '{kind.type}/{rid.name}' under resource group '{rid.resource_group}' was not found.",
            rid.name,
        )


def _servable(body: Body) -> Body:
    """Nothing is stored that its GET and lists cannot render: the body must be strict JSON (no NaN or Infinity, no
    lone surrogate). Checked before the write, inside the transaction, so a refusal leaves the database unchanged."""
    try:
        json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, TypeError):
        raise errors.InvalidRequestContent(
            "The resource would hold a value JSON cannot carry (NaN, Infinity or a lone surrogate); nothing was stored."
        ) from None
    return body


def _patch_input(raw: Body) -> Body:
    return {k: v for k, v in raw.items() if k in ("tags", "sku", "properties", "identity")}


def _parent_key(rid: ResourceId) -> str:
    parent = rid.parent
    return parent.key if parent is not None else f"/subscriptions/{rid.subscription}".lower()


def stored_id(row: ResourceRow, rid: ResourceId) -> ResourceId:
    """The id with the casing the resource was created with (ARM keeps it)."""
    return parse_resource_id(row.body["id"]) or rid
