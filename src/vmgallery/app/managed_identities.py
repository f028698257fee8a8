"""User-assigned managed identities: the service principal each stands for, and the identities image templates name.

A create gives the identity its ids in the resource's transaction (principalId, clientId, tenantId: the
subscription's tenant, or the default tenant for a subscription no tenant holds); after the commit the directory
gets a service principal with those ids (`created`), so role assignments and Graph look-ups find it. If that fails
the new identity is removed again. A delete removes the principal after the row (`deleted`); a principal left behind
by a crash between the two holds only roles nobody can use (no one signs in as it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..domain import errors
from ..domain import managed_identities as rules
from ..domain.identity import DEFAULT_TENANT_ID
from ..domain.ids import ResourceId, parse_resource_id
from ..domain.validate import Body
from .disks import Prepared
from .ports import Dependencies, Transaction


def prepare_identity(deps: Dependencies, _tx: Transaction, rid: ResourceId, spec: Body, _location: str) -> Prepared:
    tenant = deps.subscription_tenants.tenant_of(rid.subscription) or DEFAULT_TENANT_ID
    props = spec.setdefault("properties", {})
    props.update(tenantId=tenant, principalId=str(uuid.uuid4()), clientId=str(uuid.uuid4()))
    return Prepared(spec)


def created(deps: Dependencies, body: Body) -> None:
    if deps.principals is None:
        return
    props = body["properties"]
    deps.principals.add_managed_identity(props["tenantId"], props["principalId"], props["clientId"], body["name"])


def deleted(deps: Dependencies, body: Body) -> None:
    if deps.principals is not None:
        deps.principals.remove_managed_identity(body["properties"]["principalId"])


@dataclass(frozen=True)
class NamedIdentity:
    """A user-assigned identity an image template names, as it is now."""

    id: str
    principal_id: str
    client_id: str
    tenant_id: str


def find_identity(tx: Transaction, identity_id: str) -> NamedIdentity | None:
    rid = parse_resource_id(identity_id)
    row = tx.get(rid.key) if rid is not None else None
    if row is None or row.type != rules.TYPE_KEY:
        return None
    props = row.body["properties"]
    return NamedIdentity(row.body["id"], props["principalId"], props["clientId"], props["tenantId"])


def not_found(identity_id: str) -> errors.ArmError:
    return errors.InvalidParameter(
        f"The user-assigned identity '{identity_id}' was not found; create it "
        "(Microsoft.ManagedIdentity/userAssignedIdentities) before naming it.",
        "identity.userAssignedIdentities",
        code="FailedIdentityOperation",
    )


def show_template_identities(tx: Transaction, spec: Body) -> None:
    """An image template shows each identity's principalId and clientId, as Azure's GET does. An identity that
    does not exist is kept by name (the admin token may name one before it is made; other callers are refused
    earlier, by `app.authorization`), and the build checks it again when it runs."""
    named = (spec.get("identity") or {}).get("userAssignedIdentities") or {}
    for identity_id in named:
        found = find_identity(tx, identity_id)
        named[identity_id] = {"principalId": found.principal_id, "clientId": found.client_id} if found else {}
