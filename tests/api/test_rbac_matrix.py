"""The RBAC matrix end to end: tenants, service principals, groups (nested) and role assignments at every scope made
through the server's directory and Microsoft.Authorization; then every operation of the API called by every
principal through azure-identity's ClientSecretCredential and azure-mgmt-compute / azure-mgmt-resource over HTTPS.
Each allowed cell must work and each forbidden one be 403 AuthorizationFailed naming the principal, the action and
the scope (a cell in another tenant's subscription is refused before RBAC: 401/403/404); lists show exactly what the
oracle (tests/store/test_authorization.py's reading of the built-in roles) says the caller may read."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from tests.store.test_authorization import reaches, role_allows
from vmgallery.domain import rbac

identity = pytest.importorskip("azure.identity")
from azure.core.exceptions import HttpResponseError  # noqa: E402
from azure.mgmt.authorization import AuthorizationManagementClient  # noqa: E402
from azure.mgmt.compute import ComputeManagementClient  # noqa: E402
from azure.mgmt.resource.resources import ResourceManagementClient  # noqa: E402

ADMIN_API = "/vmgallery/identity"
ARM = ["https://management.azure.com/.default"]
CMP = "providers/Microsoft.Compute"
LOC = "eastus"


@dataclass
class Sp:
    label: str
    tenant: str
    app_id: str = ""
    secret: str = ""
    object_id: str = ""
    groups: set[str] = field(default_factory=set)
    upn: str | None = None  # a user: signs in with userPrincipalName and password (`secret`)


@dataclass
class World:
    sub: str
    other_sub: str
    rg1: str
    rg2: str
    principals: dict[str, Sp]
    assignments: list[tuple[str, str, str]]  # (object id, role name, scope)

    def scope(self, *parts: str) -> str:
        return "/".join([f"/subscriptions/{self.sub}", *parts])


def _ok(response, status=(200, 201, 204)):
    assert response.status_code in status, response.text
    return response.json() if response.content else None


def _make_world(http, server) -> World:
    tenants = [_ok(http.post(f"{ADMIN_API}/tenants", json={"name": f"t{i}-{uuid.uuid4().hex[:6]}"})) for i in range(3)]
    t1, t2, t3 = (t["tenantId"] for t in tenants)
    sub = _ok(http.post(f"{ADMIN_API}/subscriptions", json={"tenantId": t1, "name": "s1"}))["subscriptionId"]
    other = _ok(http.post(f"{ADMIN_API}/subscriptions", json={"tenantId": t2, "name": "s2"}))["subscriptionId"]

    def sp(label: str, tenant: str) -> Sp:
        made = _ok(http.post(f"{ADMIN_API}/tenants/{tenant}/servicePrincipals", json={"displayName": label}))
        return Sp(label, tenant, made["appId"], made["password"], made["objectId"])

    labels = {
        "sub reader": t1,
        "group member": t1,
        "nested member": t1,
        "gallery owner": t1,
        "definition reader": t1,
        "version reader": t1,
        "publisher": t1,
        "nobody": t1,
        "owner of s2 (T2)": t2,
        "stranger (T3)": t3,
    }
    principals = {label: sp(label, tenant) for label, tenant in labels.items()}
    upn, password = f"ann-{uuid.uuid4().hex[:6]}@example.org", f"Pw-{uuid.uuid4().hex}"
    user = _ok(http.post(f"{ADMIN_API}/tenants/{t1}/users", json={"userPrincipalName": upn, "password": password}))
    principals["contributor on rg2 (user, T1)"] = Sp("user", t1, "", password, user["objectId"], upn=upn)
    contributors = _ok(http.post(f"{ADMIN_API}/tenants/{t1}/groups", json={"displayName": "contributors"}))["objectId"]
    inner = _ok(http.post(f"{ADMIN_API}/tenants/{t1}/groups", json={"displayName": "inner"}))["objectId"]
    _ok(http.post(f"{ADMIN_API}/tenants/{t1}/groups/{contributors}/members", json={"memberId": inner}))
    _ok(
        http.post(
            f"{ADMIN_API}/tenants/{t1}/groups/{contributors}/members",
            json={"memberId": principals["group member"].object_id},
        )
    )
    _ok(
        http.post(
            f"{ADMIN_API}/tenants/{t1}/groups/{inner}/members",
            json={"memberId": principals["nested member"].object_id},
        )
    )
    principals["group member"].groups = {contributors}
    principals["nested member"].groups = {contributors, inner}

    world = World(sub, other, "rg1", "rg2", principals, [])
    base = f"/subscriptions/{sub}"
    for rg in ("rg1", "rg2"):
        _ok(http.put(f"{base}/resourceGroups/{rg}", params={"api-version": "2024-11-01"}, json={"location": LOC}))
    gv = {"api-version": "2023-07-03"}
    dv = {"api-version": "2023-04-02"}

    def put(path, body, params):
        r = http.put(base + path, params=params, json=body)
        assert r.status_code in (200, 201, 202), r.text
        _wait(http, r)

    for rg, g in (("rg1", "g1"), ("rg1", "g2"), ("rg2", "g3")):
        put(f"/resourceGroups/{rg}/{CMP}/galleries/{g}", {"location": LOC}, gv)
    for g, d in (("g1", "d1"), ("g1", "d2"), ("g2", "d3")):
        rg = "rg1"
        put(f"/resourceGroups/{rg}/{CMP}/galleries/{g}/images/{d}", _definition(d), gv)
    empty = {
        "location": LOC,
        "properties": {"osType": "Linux", "diskSizeGB": 1, "creationData": {"createOption": "Empty"}},
    }
    put(f"/resourceGroups/rg1/{CMP}/disks/disk1", empty, dv)
    snap = {
        "location": LOC,
        "properties": {
            "creationData": {"createOption": "Copy", "sourceResourceId": f"{base}/resourceGroups/rg1/{CMP}/disks/disk1"}
        },
    }
    put(f"/resourceGroups/rg1/{CMP}/snapshots/snap1", snap, dv)
    for d in ("d1", "d2"):
        put(
            f"/resourceGroups/rg1/{CMP}/galleries/g1/images/{d}/versions/1.0.0",
            _version(f"{base}/resourceGroups/rg1/{CMP}/snapshots/snap1"),
            gv,
        )
    g1 = f"{base}/resourceGroups/rg1/{CMP}/galleries/g1"
    world.assignments = [
        (principals["sub reader"].object_id, "Reader", base),
        (contributors, "Contributor", f"{base}/resourceGroups/rg1"),
        (inner, "Reader", f"{base}/resourceGroups/rg2/{CMP}/galleries/g3"),
        (principals["gallery owner"].object_id, "Owner", g1),
        (principals["definition reader"].object_id, "Reader", f"{g1}/images/d1"),
        (principals["version reader"].object_id, "Compute Gallery Image Reader", f"{g1}/images/d1/versions/1.0.0"),
        (principals["publisher"].object_id, "Compute Gallery Artifacts Publisher", g1),
        (principals["owner of s2 (T2)"].object_id, "Owner", f"/subscriptions/{other}"),
        (principals["contributor on rg2 (user, T1)"].object_id, "Contributor", f"{base}/resourceGroups/rg2"),
    ]
    for object_id, role, scope in world.assignments:
        guid = rbac.BUILT_IN_BY_NAME[role.lower()].guid
        body = {
            "properties": {
                "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
                "principalId": object_id,
                "principalType": "Group" if object_id in (contributors, inner) else "ServicePrincipal",
            }
        }
        _ok(
            http.put(
                f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
                params={"api-version": "2022-04-01"},
                json=body,
            ),
            (201,),
        )
    return world


def _definition(name: str) -> dict:
    return {
        "location": LOC,
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "hyperVGeneration": "V1",
            "identifier": {"publisher": "p", "offer": f"o-{name}", "sku": "s"},
        },
    }


def _version(source: str) -> dict:
    return {
        "location": LOC,
        "properties": {"publishingProfile": {}, "storageProfile": {"osDiskImage": {"source": {"id": source}}}},
    }


def _wait(http, response) -> None:
    url = response.headers.get("Azure-AsyncOperation")
    for _ in range(600):
        if not url:
            return
        status = http.get(url).json()["status"]
        if status != "InProgress":
            assert status == "Succeeded", status
            return
        import time

        time.sleep(0.05)


@pytest.fixture
def world(http, server, monkeypatch):
    # MSAL looks a user's realm up on the authority's host at port 443 (it drops the port), where no test server
    # listens: the host is pre-seeded as one without user-realm discovery, as MSAL records after a 404 there.
    msal = pytest.importorskip("msal")
    monkeypatch.setattr(msal.authority.Authority, "_domains_without_user_realm_discovery", {"127.0.0.1"})
    return _make_world(http, server)


AZ_CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # the public client id az signs users in with


def _clients(server, world: World, sp: Sp):
    common = {"authority": server.url, "disable_instance_discovery": True, "connection_verify": server.ca}
    if sp.upn is not None:
        credential = identity.UsernamePasswordCredential(AZ_CLIENT, sp.upn, sp.secret, tenant_id=sp.tenant, **common)
    else:
        credential = identity.ClientSecretCredential(sp.tenant, sp.app_id, sp.secret, **common)
    kwargs = {"base_url": server.url, "credential_scopes": ARM, "connection_verify": server.ca}
    return Clients(
        ComputeManagementClient(credential, world.sub, polling_interval=0, **kwargs),
        ResourceManagementClient(credential, world.sub, polling_interval=0, **kwargs),
        AuthorizationManagementClient(credential, world.sub, **kwargs),
    )


@dataclass
class Clients:
    compute: ComputeManagementClient
    resources: ResourceManagementClient
    authz: AuthorizationManagementClient

    def close(self) -> None:
        for client in (self.compute, self.resources, self.authz):
            client.close()


@dataclass
class Cell:
    name: str
    action: str
    scope: str  # "{t}" stands for the principal's tag
    call: Callable[[Clients, str], object]
    linked: tuple[tuple[str, str], ...] = ()  # (action, scope) a source named in the request needs
    listing: bool = False  # a list: allowed with a role at, above or under the scope (it shows what that reads)


def _cells(world: World) -> list[Cell]:
    s = world.scope
    g1 = s("resourceGroups/rg1", CMP, "galleries/g1")
    g2 = s("resourceGroups/rg1", CMP, "galleries/g2")
    g3 = s("resourceGroups/rg2", CMP, "galleries/g3")
    d1, d2 = f"{g1}/images/d1", f"{g1}/images/d2"
    v1, v2 = f"{d1}/versions/1.0.0", f"{d2}/versions/1.0.0"
    disk = s("resourceGroups/rg1", CMP, "disks/disk1")
    snap = s("resourceGroups/rg1", CMP, "snapshots/snap1")
    V = "Microsoft.Compute/galleries/images/versions"
    D = "Microsoft.Compute/galleries/images"
    G = "Microsoft.Compute/galleries"
    return [
        Cell(
            "get rg1",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            s("resourceGroups/rg1"),
            lambda k, t: k.resources.resource_groups.get("rg1"),
        ),
        Cell("get g1", f"{G}/read", g1, lambda k, t: k.compute.galleries.get("rg1", "g1")),
        Cell("get g2", f"{G}/read", g2, lambda k, t: k.compute.galleries.get("rg1", "g2")),
        Cell("get g3", f"{G}/read", g3, lambda k, t: k.compute.galleries.get("rg2", "g3")),
        Cell("get d1", f"{D}/read", d1, lambda k, t: k.compute.gallery_images.get("rg1", "g1", "d1")),
        Cell("get d2", f"{D}/read", d2, lambda k, t: k.compute.gallery_images.get("rg1", "g1", "d2")),
        Cell("get v1", f"{V}/read", v1, lambda k, t: k.compute.gallery_image_versions.get("rg1", "g1", "d1", "1.0.0")),
        Cell("get v2", f"{V}/read", v2, lambda k, t: k.compute.gallery_image_versions.get("rg1", "g1", "d2", "1.0.0")),
        Cell("get disk1", "Microsoft.Compute/disks/read", disk, lambda k, t: k.compute.disks.get("rg1", "disk1")),
        Cell(
            "update g1",
            f"{G}/write",
            g1,
            lambda k, t: k.compute.galleries.begin_update("rg1", "g1", {"tags": {"by": t}}).result(),
        ),
        Cell(
            "update v1",
            f"{V}/write",
            v1,
            lambda k, t: k.compute.gallery_image_versions.begin_update(
                "rg1", "g1", "d1", "1.0.0", {"tags": {"by": t}}
            ).result(),
        ),
        Cell(
            "create+delete definition in g1",
            f"{D}/write",
            f"{g1}/images/new-{{t}}",
            lambda k, t: (
                k.compute.gallery_images.begin_create_or_update("rg1", "g1", f"new-{t}", _definition(t)).result(),
                k.compute.gallery_images.begin_delete("rg1", "g1", f"new-{t}").result(),
            ),
        ),
        Cell(
            "create version in d2 from snap1",
            f"{V}/write",
            f"{d2}/versions/9.{{n}}.0",
            lambda k, t: k.compute.gallery_image_versions.begin_create_or_update(
                "rg1", "g1", "d2", f"9.{abs(hash(t)) % 1000}.0", _version(snap)
            ).result(),
            (("Microsoft.Compute/snapshots/write", snap),),
        ),
        Cell(
            "exists rg1",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            s("resourceGroups/rg1"),
            lambda k, t: k.resources.resource_groups.check_existence("rg1"),
        ),
        Cell(
            "get snap1", "Microsoft.Compute/snapshots/read", snap, lambda k, t: k.compute.snapshots.get("rg1", "snap1")
        ),
        Cell(
            "create+delete a disk copied from disk1",
            "Microsoft.Compute/disks/write",
            s("resourceGroups/rg1", CMP, "disks/copy-{t}"),
            lambda k, t: (
                k.compute.disks.begin_create_or_update(
                    "rg1",
                    f"copy-{t}",
                    {
                        "location": LOC,
                        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}},
                    },
                ).result(),
                k.compute.disks.begin_delete("rg1", f"copy-{t}").result(),
            ),
            (("Microsoft.Compute/disks/write", disk),),
        ),
        Cell(
            "create+delete a managed image from snap1",
            "Microsoft.Compute/images/write",
            s("resourceGroups/rg1", CMP, "images/img-{t}"),
            lambda k, t: (
                k.compute.images.begin_create_or_update(
                    "rg1",
                    f"img-{t}",
                    {
                        "location": LOC,
                        "properties": {
                            "hyperVGeneration": "V1",
                            "storageProfile": {
                                "osDisk": {"osType": "Linux", "osState": "Generalized", "snapshot": {"id": snap}}
                            },
                        },
                    },
                ).result(),
                k.compute.images.begin_delete("rg1", f"img-{t}").result(),
            ),
            (("Microsoft.Compute/snapshots/write", snap),),
        ),
        Cell(
            "grant access to disk1",
            "Microsoft.Compute/disks/beginGetAccess/action",
            disk,
            lambda k, t: (
                k.compute.disks.begin_grant_access(
                    "rg1", "disk1", {"access": "Read", "durationInSeconds": 60}
                ).result(),
                k.compute.disks.begin_revoke_access("rg1", "disk1").result(),
            ),
        ),
        Cell(
            "assign+unassign Reader at g1",
            "Microsoft.Authorization/roleAssignments/write",
            g1,
            lambda k, t: (
                k.authz.role_assignments.create(
                    g1,
                    str(uuid.UUID(hex=t * 4)),
                    {
                        "role_definition_id": f"{s()}/providers/Microsoft.Authorization/roleDefinitions/"
                        f"{rbac.READER.guid}",
                        "principal_id": str(uuid.UUID(hex=t[::-1] * 4)),
                    },
                ),
                k.authz.role_assignments.delete(g1, str(uuid.UUID(hex=t * 4))),
            ),
        ),
        Cell(
            "list role assignments at g1",
            "Microsoft.Authorization/roleAssignments/read",
            g1,
            lambda k, t: list(k.authz.role_assignments.list_for_scope(g1)),
            listing=True,
        ),
    ]


def _expected(world: World, sp: Sp, action: str, scope: str, listing: bool = False) -> bool:
    ids = {sp.object_id, *sp.groups}
    return any(
        o in ids and (reaches(at, scope) or (listing and reaches(scope, at))) and role_allows(role, action)
        for o, role, at in world.assignments
    )


def test_every_operation_for_every_principal(world, server):
    wrong = []
    cells = 0
    for label, sp in world.principals.items():
        clients = _clients(server, world, sp)
        tag = uuid.uuid4().hex[:8]
        for cell in _cells(world):
            scope = cell.scope.replace("{t}", tag)
            want = _expected(world, sp, cell.action, scope, cell.listing) and all(
                _expected(world, sp, action, at) for action, at in cell.linked
            )
            cells += 1
            try:
                cell.call(clients, tag)
                got, status = True, 200
            except HttpResponseError as exc:
                got, status = False, exc.status_code
                if want is False and sp.tenant == world.principals["nobody"].tenant:
                    if status != 403:
                        wrong.append((label, cell.name, "status", status, str(exc)[:200]))
                    elif (
                        exc.error is not None
                        and exc.error.code == "AuthorizationFailed"
                        and sp.object_id not in str(exc)
                    ):
                        wrong.append((label, cell.name, "message lacks the object id", str(exc)[:200]))
                elif want is False and status not in (401, 403, 404):
                    wrong.append((label, cell.name, "status", status))
            if got != want:
                wrong.append((label, cell.name, "wanted", want, "got", status))
        clients.close()
    assert not wrong, wrong
    assert cells == len(world.principals) * len(_cells(world)) >= 200


def test_lists_show_what_the_caller_may_read(world, server):
    expected = {
        "sub reader": {"g1", "g2", "g3"},
        "group member": {"g1", "g2"},
        "nested member": {"g1", "g2", "g3"},
        "gallery owner": {"g1"},
        "publisher": {"g1"},
    }
    for label, names in expected.items():
        clients = _clients(server, world, world.principals[label])
        assert {g.name for g in clients.compute.galleries.list()} == names, label
        clients.close()
    clients = _clients(server, world, world.principals["definition reader"])
    compute = clients.compute
    assert [d.name for d in compute.gallery_images.list_by_gallery("rg1", "g1")] == ["d1"]
    # its role on d1 reads no gallery: rg1's galleries list empty for it, rg2's is refused
    assert list(compute.galleries.list_by_resource_group("rg1")) == []
    with pytest.raises(HttpResponseError) as refused:
        list(compute.galleries.list_by_resource_group("rg2"))
    assert refused.value.status_code == 403
    clients.close()


def test_an_operation_is_found_only_by_who_may_read_its_resource(world, server, http):
    g1 = world.scope("resourceGroups/rg1", CMP, "galleries/g1")
    started = http.patch(g1, params={"api-version": "2023-07-03"}, json={"tags": {"polled": "yes"}})
    assert started.status_code in (200, 202), started.text
    status_url = started.headers["Azure-AsyncOperation"]

    def poll(label: str) -> httpx.Response:
        sp = world.principals[label]
        credential = identity.ClientSecretCredential(
            sp.tenant,
            sp.app_id,
            sp.secret,
            authority=server.url,
            disable_instance_discovery=True,
            connection_verify=server.ca,
        )
        token = credential.get_token(ARM[0]).token
        credential.close()
        with httpx.Client(
            verify=ssl.create_default_context(cafile=server.ca), headers={"Authorization": f"Bearer {token}"}
        ) as client:
            return client.get(status_url)

    assert poll("gallery owner").status_code == 200
    assert poll("publisher").status_code == 200  # its role has Microsoft.Compute/locations/capsOperations/read
    assert poll("definition reader").status_code == 404  # reads d1, not g1
    refused = poll("nobody")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "ResourceNotFound"
