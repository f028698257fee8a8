"""In-memory fakes of the identity ports (app/identity_ports.py): a directory of dictionaries (a write transaction
works on a copy that replaces the committed state when its block ends; the real schema's unique rules raise
`ConcurrentChange`), a key ring whose "signature" is a plain HMAC-free marker (it checks nothing but the kid), and a
hasher that is a salted SHA-256. Fakes, for the use cases' own rules: the real adapters have their own tests."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from vmgallery.app.directory import transitive_groups
from vmgallery.app.identity_ports import ApplicationRow, CallerRow, ObjectRow, SubscriptionRow, TenantRow
from vmgallery.app.ports import ConcurrentChange
from vmgallery.domain.identity import Rejection, TokenRejected
from vmgallery.domain.principals import PrincipalType


@dataclass
class _State:
    tenants: dict[str, TenantRow] = field(default_factory=dict)
    subscriptions: dict[str, SubscriptionRow] = field(default_factory=dict)
    objects: dict[str, ObjectRow] = field(default_factory=dict)
    applications: dict[str, ApplicationRow] = field(default_factory=dict)
    members: set[tuple[str, str]] = field(default_factory=set)
    resources_in: set[str] = field(default_factory=set)


class FakeDirectoryTx:
    def __init__(self, state: _State):
        self.s = state

    def tenant(self, tenant_id):
        return self.s.tenants.get(tenant_id)

    def tenants(self):
        return sorted(self.s.tenants.values(), key=lambda t: (t.created_at, t.tenant_id))

    def add_tenant(self, row):
        self.s.tenants[row.tenant_id] = row

    def delete_tenant(self, tenant_id):
        for app in [a for a in self.s.applications.values() if a.home_tenant_id == tenant_id]:
            self.delete_application(app.app_id)
        for obj in [o for o in self.s.objects.values() if o.tenant_id == tenant_id]:
            self.delete_object(obj.object_id)
        del self.s.tenants[tenant_id]

    def subscription(self, subscription_id):
        return self.s.subscriptions.get(subscription_id)

    def subscriptions(self, tenant_id=None):
        rows = [r for r in self.s.subscriptions.values() if tenant_id is None or r.tenant_id == tenant_id]
        return sorted(rows, key=lambda r: (r.created_at, r.subscription_id))

    def add_subscription(self, row):
        self.s.subscriptions[row.subscription_id] = row

    def delete_subscription(self, subscription_id):
        del self.s.subscriptions[subscription_id]

    def subscription_in_use(self, subscription_id):
        return subscription_id in self.s.resources_in

    def object(self, object_id):
        return self.s.objects.get(object_id)

    def objects(self, tenant_id, type=None):
        rows = [
            o
            for o in self.s.objects.values()
            if (tenant_id is None or o.tenant_id == tenant_id) and (type is None or o.type is type)
        ]
        return sorted(rows, key=lambda o: (o.created_at, o.object_id))

    def add_object(self, row):
        for other in self.s.objects.values():
            if (
                row.type is PrincipalType.USER
                and other.type is PrincipalType.USER
                and other.name.lower() == row.name.lower()
            ):
                raise ConcurrentChange("upn_key")
            if row.app_id and (other.tenant_id, other.app_id) == (row.tenant_id, row.app_id):
                raise ConcurrentChange("ux_directory_objects_sp")
        self.s.objects[row.object_id] = row

    def delete_object(self, object_id):
        self.s.members = {(g, m) for g, m in self.s.members if object_id not in (g, m)}
        self.s.objects.pop(object_id, None)

    def user_by_upn(self, upn_key):
        return next(
            (o for o in self.s.objects.values() if o.type is PrincipalType.USER and o.name.lower() == upn_key), None
        )

    def service_principal(self, tenant_id, app_id):
        return next((o for o in self.s.objects.values() if (o.tenant_id, o.app_id) == (tenant_id, app_id)), None)

    def service_principals_of(self, app_id):
        return [o for o in self.s.objects.values() if o.app_id == app_id]

    def application(self, app_id):
        return self.s.applications.get(app_id)

    def add_application(self, row):
        self.s.applications[row.app_id] = row

    def set_application_secret(self, app_id, secret_hash):
        app = self.s.applications[app_id]
        self.s.applications[app_id] = ApplicationRow(
            app.app_id, app.home_tenant_id, app.name, app.multi_tenant, secret_hash, app.created_at
        )

    def delete_application(self, app_id):
        for sp in self.service_principals_of(app_id):
            self.delete_object(sp.object_id)
        del self.s.applications[app_id]

    def add_member(self, group_id, member_id):
        if (group_id, member_id) in self.s.members:
            raise ConcurrentChange("group_members")
        self.s.members.add((group_id, member_id))

    def remove_member(self, group_id, member_id):
        present = (group_id, member_id) in self.s.members
        self.s.members.discard((group_id, member_id))
        return present

    def members(self, group_id):
        return sorted(m for g, m in self.s.members if g == group_id)

    def groups_containing(self, member_ids: Collection[str]):
        return {g for g, m in self.s.members if m in member_ids}


class FakeDirectoryStore:
    def __init__(self):
        self.state = _State()
        self.writes = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[FakeDirectoryTx]:
        yield FakeDirectoryTx(copy.deepcopy(self.state))

    @contextlib.contextmanager
    def write(self) -> Iterator[FakeDirectoryTx]:
        working = copy.deepcopy(self.state)
        yield FakeDirectoryTx(working)
        self.state = working
        self.writes += 1

    def epoch(self) -> int:
        return self.writes

    def caller(self, object_id: str, subscription_id: str | None) -> CallerRow:
        tx = FakeDirectoryTx(self.state)
        exists = subscription_id is not None and tx.subscription(subscription_id) is not None
        return CallerRow(tx.object(object_id), transitive_groups(tx, object_id), exists)


class FakeKeyRing:
    """A fake: tokens are `fake.<claims>.<kid>`, "verified" by their kid alone (real signatures: adapters' tests)."""

    def __init__(self):
        self.kid = "k1"

    def sign(self, claims: dict[str, Any]) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
        return f"fake.{payload}.{self.kid}"

    def verify(self, token: str) -> dict[str, Any]:
        _, payload, kid = token.split(".")
        if kid != self.kid:
            raise TokenRejected(Rejection.UNKNOWN_KEY, f"the key '{kid}' is not current.")
        return json.loads(base64.urlsafe_b64decode(payload))

    def remembered(self, token: str) -> dict[str, Any] | None:
        return None  # the fake remembers nothing: every check goes the full way

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{"kid": self.kid}]}


class FakeHasher:
    """A fake: salted SHA-256, fast (the real one is Argon2id)."""

    def hash(self, secret: str) -> str:
        return "fake$" + hashlib.sha256(b"salt" + secret.encode()).hexdigest()

    def verify(self, hashed: str, secret: str) -> bool:
        return hashed == self.hash(secret)
