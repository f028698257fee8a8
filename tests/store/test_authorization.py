"""Authorization over the real store (SQLite and PostgreSQL): the whole action table checked for every principal of
a matrix of tenants, users, groups and service principals with role assignments at every scope, against an oracle
written from the built-in roles' documented meaning (not from the pattern matcher); lists narrowed to what a caller
may read; the sources a create names; and role assignment and custom role writes, Owner/UAA only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.app.fakes import FakeClock, FakeStorageAccounts
from vmgallery.app.authorization import Authorization
from vmgallery.domain import errors, rbac
from vmgallery.domain.ids import parse_resource_id
from vmgallery.domain.principals import ADMIN_OBJECT_ID, Principal, PrincipalType

T1, T2, T3 = (str(uuid.UUID(int=i)) for i in (101, 102, 103))
S1, S2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
SUB1, SUB2 = f"/subscriptions/{S1}", f"/subscriptions/{S2}"
RG1, RG2 = f"{SUB1}/resourceGroups/rg1", f"{SUB1}/resourceGroups/rg2"
CMP = "/providers/Microsoft.Compute"
G1, G2, G3 = f"{RG1}{CMP}/galleries/g1", f"{RG1}{CMP}/galleries/g2", f"{RG2}{CMP}/galleries/g3"
D1, D2, D3 = f"{G1}/images/d1", f"{G1}/images/d2", f"{G2}/images/d3"
V1, V2, V3 = f"{D1}/versions/1.0.0", f"{D2}/versions/1.0.0", f"{D3}/versions/1.0.0"
DISK, SNAP, IMAGE = f"{RG1}{CMP}/disks/disk1", f"{RG1}{CMP}/snapshots/snap1", f"{RG1}{CMP}/images/img1"
DISK2 = f"{RG2}{CMP}/disks/disk2"
RG_S2 = f"{SUB2}/resourceGroups/other"
ACCOUNT = f"{RG2}/providers/Microsoft.Storage/storageAccounts/vhds"
BLOB = "https://vhds.blob.core.windows.net/c/a.vhd"
RESOURCES = (RG1, RG2, G1, G2, G3, D1, D2, D3, V1, V2, V3, DISK, SNAP, IMAGE, DISK2, RG_S2)
KIND_OF = {
    "resourcegroups": "Microsoft.Resources/resourceGroups",
    "galleries": "Microsoft.Compute/galleries",
    "images": "Microsoft.Compute/galleries/images",
    "versions": "Microsoft.Compute/galleries/images/versions",
    "disks": "Microsoft.Compute/disks",
    "snapshots": "Microsoft.Compute/snapshots",
}
VERSION_WRITER = "0a0a0a0a-1111-4222-8333-444444444444"  # a custom role


def kind_of(scope: str) -> str:
    rid = parse_resource_id(scope)
    if not rid.chain:
        return "Microsoft.Resources/resourceGroups"
    return rid.type


def actions_for(scope: str) -> list[str]:
    """Every action the API checks on a resource of this kind (entrypoints/http's routes), plus the role
    assignment actions every scope answers."""
    kind = kind_of(scope)
    verbs = ["read", "write", "delete"]
    if kind in ("Microsoft.Compute/disks", "Microsoft.Compute/snapshots"):
        verbs += ["beginGetAccess/action", "endGetAccess/action"]
    out = [rbac.resource_action(kind, v) for v in verbs]
    if kind == "Microsoft.Compute/galleries":
        out.append(rbac.SHARE)
    out.append(rbac.operation_action("Microsoft.Compute", "status"))
    out += [f"Microsoft.Authorization/roleAssignments/{v}" for v in ("read", "write", "delete")]
    return out


# The oracle: what each role allows, from its documentation, without the pattern matcher.
def role_allows(role: str, action: str) -> bool:
    a = action.lower()
    authz = a.startswith("microsoft.authorization/")
    share = a == rbac.SHARE.lower()
    if role == "Owner":
        return True
    if role == "Contributor":
        return not (authz and not a.endswith("/read")) and not share
    if role == "Reader":
        return a.endswith("/read")
    if role == "User Access Administrator":
        return a.endswith("/read") or authz
    if role == "Compute Gallery Sharing Admin":
        return share
    if role == "Compute Gallery Artifacts Publisher":
        return (
            (a.startswith("microsoft.compute/galleries/") and not share)
            or a.startswith("microsoft.compute/images/")
            or a
            in (
                "microsoft.compute/disks/write",
                "microsoft.compute/locations/capsoperations/read",
                "microsoft.resources/subscriptions/resourcegroups/read",
            )
            or (authz and a.endswith("/read"))
        )
    if role == "Compute Gallery Image Reader":
        return a in ("microsoft.compute/galleries/images/read", "microsoft.compute/galleries/images/versions/read")
    if role == "Version Writer":
        return a.startswith("microsoft.compute/galleries/images/versions/") and not a.endswith("/delete")
    raise AssertionError(role)


def reaches(assigned_at: str, scope: str) -> bool:
    a, s = assigned_at.lower(), scope.lower()
    return s == a or s.startswith(a + "/")


@dataclass
class Who:
    principal: Principal
    label: str


def _oid(n: int) -> str:
    return str(uuid.UUID(int=0xA000 + n))


GROUP_CONTRIB, GROUP_NESTED = _oid(900), _oid(901)
PRINCIPALS = {
    "sub reader (user, T1)": Principal(_oid(1), T1, PrincipalType.USER, name="reader@t1"),
    "group member (user, T1)": Principal(_oid(2), T1, PrincipalType.USER, frozenset({GROUP_CONTRIB})),
    "nested member (user, T1)": Principal(_oid(3), T1, PrincipalType.USER, frozenset({GROUP_NESTED, GROUP_CONTRIB})),
    "gallery owner (sp, T1)": Principal(_oid(4), T1, PrincipalType.SERVICE_PRINCIPAL, app_id=_oid(104)),
    "definition reader (user, T1)": Principal(_oid(5), T1, PrincipalType.USER),
    "version reader (user, T1)": Principal(_oid(6), T1, PrincipalType.USER),
    "publisher (sp, T2)": Principal(_oid(7), T2, PrincipalType.SERVICE_PRINCIPAL, app_id=_oid(107)),
    "uaa on rg1 (user, T1)": Principal(_oid(8), T1, PrincipalType.USER),
    "sharing admin (user, T2)": Principal(_oid(9), T2, PrincipalType.USER),
    "custom writer (sp, T3)": Principal(_oid(10), T3, PrincipalType.SERVICE_PRINCIPAL),
    "owner of another subscription (user, T2)": Principal(_oid(11), T2, PrincipalType.USER),
    "nobody (user, T3)": Principal(_oid(12), T3, PrincipalType.USER),
}
# (principal object id, role name, scope)
ASSIGNMENTS = [
    (_oid(1), "Reader", SUB1),
    (GROUP_CONTRIB, "Contributor", RG1),
    (GROUP_NESTED, "Reader", G3),
    (_oid(4), "Owner", G1),
    (_oid(5), "Reader", D1),
    (_oid(6), "Compute Gallery Image Reader", V1),
    (_oid(7), "Compute Gallery Artifacts Publisher", G1),
    (_oid(8), "User Access Administrator", RG1),
    (_oid(9), "Compute Gallery Sharing Admin", G1),
    (_oid(9), "Reader", DISK),
    (_oid(10), "Version Writer", D2),
    (_oid(11), "Owner", SUB2),
]
ADMIN = Principal(ADMIN_OBJECT_ID, T1, PrincipalType.ADMIN)


@pytest.fixture
def world(db):
    clock = FakeClock()
    with db.write() as tx:
        for key in RESOURCES:
            rid = parse_resource_id(key)
            tx.insert(
                key=rid.key,
                type=kind_of(key).lower(),
                parent_key=(rid.parent.key if rid.parent else f"/subscriptions/{rid.subscription}".lower()),
                subscription=rid.subscription.lower(),
                group_key=rid.group_key,
                location="eastus",
                natural_key=None,
                state="Succeeded",
                body={"id": key, "name": rid.name, "type": kind_of(key)},
                now=clock(),
            )
    az = Authorization(db, FakeStorageAccounts({ACCOUNT: {BLOB: b""}}), clock)
    custom = {
        "properties": {
            "roleName": "Version Writer",
            "permissions": [
                {
                    "actions": ["Microsoft.Compute/galleries/images/versions/*"],
                    "notActions": ["Microsoft.Compute/galleries/images/versions/delete"],
                }
            ],
            "assignableScopes": [RG1],
        }
    }
    assert az.put_definition(ADMIN, SUB1, VERSION_WRITER, custom).status == 201
    for object_id, role, scope in ASSIGNMENTS:
        guid = VERSION_WRITER if role == "Version Writer" else rbac.BUILT_IN_BY_NAME[role.lower()].guid
        body = {"properties": {"roleDefinitionId": rbac.definition_id(guid, S1), "principalId": object_id}}
        assert az.put_assignment(ADMIN, scope, str(uuid.uuid4()), body).status == 201
    return az


def expected(principal: Principal, action: str, scope: str) -> bool:
    ids = {principal.object_id, *principal.group_ids}
    return any(o in ids and reaches(at, scope) and role_allows(role, action) for o, role, at in ASSIGNMENTS)


def test_every_action_for_every_principal_at_every_scope(world):
    scopes = (SUB1, *RESOURCES)
    cells = allowed = 0
    wrong = []
    for label, principal in PRINCIPALS.items():
        for scope in scopes:
            for action in actions_for(scope) if scope != SUB1 else ["Microsoft.Authorization/roleAssignments/write"]:
                want = expected(principal, action, scope)
                got = world.permitted(principal, action, scope)
                cells += 1
                allowed += got
                if want != got:
                    wrong.append((label, action, scope, want, got))
    assert not wrong, wrong[:20]
    assert cells > 1000 and 0 < allowed < cells
    # The admin passes every check.
    assert all(world.permitted(ADMIN, a, V3) for a in actions_for(V3))


def test_the_seeds_matrix():
    # (a role on) -> which of gallery, definition, version it reaches
    on_gallery = Principal(_oid(4), T1, PrincipalType.SERVICE_PRINCIPAL)
    assert expected(on_gallery, "Microsoft.Compute/galleries/read", G1)
    assert expected(on_gallery, "Microsoft.Compute/galleries/images/read", D1)
    assert expected(on_gallery, "Microsoft.Compute/galleries/images/versions/read", V1)
    on_definition = PRINCIPALS["definition reader (user, T1)"]
    assert not expected(on_definition, "Microsoft.Compute/galleries/read", G1)
    assert expected(on_definition, "Microsoft.Compute/galleries/images/read", D1)
    assert expected(on_definition, "Microsoft.Compute/galleries/images/versions/read", V1)


def test_a_refusal_names_the_object_id_the_action_and_the_scope(world):
    who = PRINCIPALS["definition reader (user, T1)"]
    with pytest.raises(rbac.AuthorizationFailed) as refused:
        world.check(who, "Microsoft.Compute/galleries/images/versions/write", V1)
    assert refused.value.status == 403 and refused.value.code == "AuthorizationFailed"
    message = refused.value.message
    assert who.object_id in message and "Microsoft.Compute/galleries/images/versions/write" in message
    assert V1 in message


def _page(db, type_, within, **where):
    with db.read() as tx:
        return sorted(r.body["id"] for r in tx.page(type=type_.lower(), after=0, limit=100, within=within, **where))


def test_lists_show_only_what_the_caller_may_read(world, db):
    definitions = "Microsoft.Compute/galleries/images"
    read_defs = rbac.resource_action(definitions, "read")
    g1 = parse_resource_id(G1).key
    reader = PRINCIPALS["definition reader (user, T1)"]
    within = world.visible(reader, read_defs, G1)
    assert _page(db, definitions, within, parent_key=g1) == [D1]
    read_galleries = rbac.resource_action("Microsoft.Compute/galleries", "read")
    # A role on a definition shows no gallery: a listing there is refused outright
    with pytest.raises(rbac.AuthorizationFailed):
        world.visible(PRINCIPALS["version reader (user, T1)"], read_galleries, RG1)
    assert _page(db, "Microsoft.Compute/galleries", world.visible(reader, read_galleries, RG1), group_key=g1) == []
    nested = PRINCIPALS["nested member (user, T1)"]
    # Galleries of the subscription: rg1's (the group's Contributor) and g3 (the nested group's Reader)
    visible = world.visible(nested, read_galleries, SUB1)
    assert _page(db, "Microsoft.Compute/galleries", visible, subscription=S1.lower()) == [G1, G2, G3]
    owner = PRINCIPALS["gallery owner (sp, T1)"]
    visible = world.visible(owner, read_galleries, SUB1)
    assert _page(db, "Microsoft.Compute/galleries", visible, subscription=S1.lower()) == [G1]
    assert world.visible(PRINCIPALS["sub reader (user, T1)"], read_galleries, SUB1) is None
    with pytest.raises(rbac.AuthorizationFailed):
        world.visible(PRINCIPALS["nobody (user, T3)"], read_galleries, SUB1)


def test_the_sources_a_create_names(world):
    version_write = rbac.resource_action("Microsoft.Compute/galleries/images/versions", "write")
    writer = PRINCIPALS["custom writer (sp, T3)"]  # may write versions in d2, nothing else
    body = {"properties": {"storageProfile": {"osDiskImage": {"source": {"id": SNAP}}}}}
    with pytest.raises(rbac.LinkedAuthorizationFailed) as refused:
        world.check_linked(writer, version_write, V2, "Microsoft.Compute/galleries/images/versions", body)
    assert refused.value.status == 403 and SNAP in refused.value.message
    assert "Microsoft.Compute/snapshots/write" in refused.value.message
    assert refused.value.target == "properties.storageProfile.osDiskImage.source.id"
    member = PRINCIPALS["group member (user, T1)"]  # Contributor on rg1
    world.check_linked(member, version_write, V1, "Microsoft.Compute/galleries/images/versions", body)
    # A VHD in rg2's storage account needs listKeys there: rg1's Contributor has none
    vhd = {"properties": {"creationData": {"createOption": "Import", "sourceUri": BLOB, "storageAccountId": ACCOUNT}}}
    with pytest.raises(rbac.LinkedAuthorizationFailed) as refused:
        world.check_linked(member, "Microsoft.Compute/disks/write", DISK, "Microsoft.Compute/disks", vhd)
    assert rbac.LIST_KEYS in refused.value.message and ACCOUNT in refused.value.message
    # A managed image's blob named by URL alone: its configured account is checked
    image = {"properties": {"storageProfile": {"osDisk": {"blobUri": BLOB}}}}
    with pytest.raises(rbac.LinkedAuthorizationFailed) as refused:
        world.check_linked(member, "Microsoft.Compute/images/write", IMAGE, "Microsoft.Compute/images", image)
    assert ACCOUNT.lower() in refused.value.message.lower()
    # A version from a version or a managed image needs read there; a reader of the snapshot is not enough
    reader = PRINCIPALS["sharing admin (user, T2)"]  # Reader on disk1 only
    from_disk = {"properties": {"creationData": {"createOption": "Copy", "sourceResourceId": DISK}}}
    with pytest.raises(rbac.LinkedAuthorizationFailed):
        world.check_linked(reader, "Microsoft.Compute/snapshots/write", SNAP, "Microsoft.Compute/snapshots", from_disk)
    from_version = {"properties": {"storageProfile": {"source": {"id": V1}}}}
    world.check_linked(
        PRINCIPALS["publisher (sp, T2)"], version_write, V2, "Microsoft.Compute/galleries/images/versions", from_version
    )
    with pytest.raises(rbac.LinkedAuthorizationFailed):
        world.check_linked(writer, version_write, V2, "Microsoft.Compute/galleries/images/versions", from_version)


def _assign(role: str, principal_id: str) -> dict:
    guid = rbac.BUILT_IN_BY_NAME[role.lower()].guid
    return {"properties": {"roleDefinitionId": rbac.definition_id(guid, S1), "principalId": principal_id}}


def test_only_owners_and_user_access_administrators_write_assignments(world):
    target = _oid(500)
    contributor = PRINCIPALS["group member (user, T1)"]
    with pytest.raises(rbac.AuthorizationFailed):
        world.put_assignment(contributor, G1, str(uuid.uuid4()), _assign("Reader", target))
    uaa = PRINCIPALS["uaa on rg1 (user, T1)"]
    name = str(uuid.uuid4())
    made = world.put_assignment(uaa, G2, name, _assign("Reader", target))
    assert made.status == 201 and made.body["properties"]["scope"] == G2
    assert world.put_assignment(uaa, G2, name, _assign("Reader", target)).status == 200
    with pytest.raises(errors.Conflict) as clash:
        world.put_assignment(uaa, G2, str(uuid.uuid4()), _assign("Reader", target))
    assert clash.value.code == "RoleAssignmentExists"
    with pytest.raises(errors.Conflict):
        world.put_assignment(uaa, G2, name, _assign("Contributor", target))
    owner = PRINCIPALS["gallery owner (sp, T1)"]
    with pytest.raises(rbac.AuthorizationFailed):
        world.put_assignment(owner, G2, str(uuid.uuid4()), _assign("Reader", target))  # owns g1, not g2
    world.put_assignment(owner, D1, str(uuid.uuid4()), _assign("Reader", target))
    # the new assignment takes effect at once
    someone = Principal(target, T1, PrincipalType.USER)
    assert world.permitted(someone, "Microsoft.Compute/galleries/images/versions/read", V1)
    assert not world.permitted(someone, "Microsoft.Compute/galleries/read", G1)
    with pytest.raises(rbac.AuthorizationFailed):
        world.delete_assignment(contributor, G2, name)
    assert world.delete_assignment(uaa, G2, name).status == 200
    assert world.delete_assignment(uaa, G2, name).status == 204
    assert not world.permitted(someone, "Microsoft.Compute/galleries/read", G2)
    # Existence does not leak: a scope that is not there is refused the same as one that is
    with pytest.raises(rbac.AuthorizationFailed):
        world.put_assignment(contributor, f"{RG1}{CMP}/galleries/nothere", str(uuid.uuid4()), _assign("Reader", target))
    with pytest.raises(errors.NotFound):
        world.put_assignment(uaa, f"{RG1}{CMP}/galleries/nothere", str(uuid.uuid4()), _assign("Reader", target))


def test_assignment_lists_and_filters(world):
    def names(items):
        return sorted((i["properties"]["principalId"], i["properties"]["scope"]) for i in items)

    at_v1 = world.list_assignments(ADMIN, V1, "atScope()")
    assert names(at_v1) == sorted(
        [
            (_oid(1), SUB1),
            (GROUP_CONTRIB, RG1),
            (_oid(4), G1),
            (_oid(5), D1),
            (_oid(6), V1),
            (_oid(7), G1),
            (_oid(8), RG1),
            (_oid(9), G1),
        ]
    )
    of_9 = world.list_assignments(ADMIN, SUB1, f"principalId eq '{_oid(9)}'")
    assert names(of_9) == sorted([(_oid(9), G1), (_oid(9), DISK)])
    nested = PRINCIPALS["nested member (user, T1)"]
    mine = world.list_assignments(nested, SUB1, f"assignedTo('{nested.object_id}')")
    assert names(mine) == sorted([(GROUP_CONTRIB, RG1), (GROUP_NESTED, G3)])
    # a caller reading only g1 sees only what is at or under g1
    owner = PRINCIPALS["gallery owner (sp, T1)"]
    seen = world.list_assignments(owner, SUB1, None)
    assert {s for _, s in names(seen)} == {G1, D1, D2, V1}
    with pytest.raises(errors.InvalidParameter):
        world.list_assignments(ADMIN, SUB1, "startswith(name, 'x')")


def test_role_definitions(world):
    found = world.list_definitions(ADMIN, G1, "roleName eq 'Compute Gallery Sharing Admin'")
    assert [d["name"] for d in found] == ["1ef6a3be-d0ac-425d-8c01-acb62866290b"]
    assert found[0]["id"] == f"{SUB1}/providers/Microsoft.Authorization/roleDefinitions/{found[0]['name']}"
    custom = world.list_definitions(ADMIN, D1, "roleName eq 'version writer'")
    assert [d["properties"]["type"] for d in custom] == ["CustomRole"]
    assert world.list_definitions(ADMIN, RG2, "roleName eq 'Version Writer'") == []  # not assignable there
    with pytest.raises(errors.InvalidParameter):  # nor may it be assigned there
        world.put_assignment(
            ADMIN,
            RG2,
            str(uuid.uuid4()),
            {"properties": {"roleDefinitionId": VERSION_WRITER, "principalId": _oid(600)}},
        )
    with pytest.raises(errors.Conflict):
        world.delete_definition(ADMIN, SUB1, VERSION_WRITER)  # it has an assignment
    with pytest.raises(rbac.AuthorizationFailed):
        world.put_definition(PRINCIPALS["group member (user, T1)"], SUB1, str(uuid.uuid4()), {})


def test_the_subscriptions_a_caller_holds_roles_in(world):
    assert world.subscriptions_with_roles(PRINCIPALS["nested member (user, T1)"]) == {S1}
    assert world.subscriptions_with_roles(PRINCIPALS["version reader (user, T1)"]) == {S1}
    assert world.subscriptions_with_roles(PRINCIPALS["owner of another subscription (user, T2)"]) == {S2}
    assert world.subscriptions_with_roles(PRINCIPALS["nobody (user, T3)"]) == set()


def test_a_source_in_another_tenant_through_an_auxiliary_token(world):
    version_write = rbac.resource_action("Microsoft.Compute/galleries/images/versions", "write")
    writer = PRINCIPALS["custom writer (sp, T3)"]  # may write versions in d2, may not read d1's versions
    from_version = {"properties": {"storageProfile": {"source": {"id": V1}}}}
    with pytest.raises(rbac.LinkedAuthorizationFailed):
        world.check_linked(writer, version_write, V2, "Microsoft.Compute/galleries/images/versions", from_version)
    # the same application signed in to the source's tenant, where its service principal reads v1
    in_source_tenant = Principal(_oid(6), T1, PrincipalType.SERVICE_PRINCIPAL)
    both = Principal(writer.object_id, writer.tenant_id, writer.type, auxiliary=(in_source_tenant,))
    world.check_linked(both, version_write, V2, "Microsoft.Compute/galleries/images/versions", from_version)
    # an auxiliary principal lends nothing to the write itself
    assert not world.permitted(
        Principal(_oid(12), T3, PrincipalType.USER, auxiliary=(in_source_tenant,)), version_write, V2
    )


def test_a_build_is_checked_as_its_identity_when_it_runs(world, db):
    uami = f"{RG1}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/builder"
    principal_id = _oid(500)
    rid = parse_resource_id(uami)
    with db.write() as tx:
        tx.insert(
            key=rid.key,
            type="microsoft.managedidentity/userassignedidentities",
            parent_key=rid.group_key,
            subscription=rid.subscription.lower(),
            group_key=rid.group_key,
            location="eastus",
            natural_key=None,
            state="Succeeded",
            body={"id": uami, "name": "builder", "properties": {"principalId": principal_id, "clientId": _oid(501),
                                                               "tenantId": T1}},
            now=0.0,
        )  # fmt: skip
    assert world.put_assignment(ADMIN, G1, str(uuid.uuid4()), _assign("Contributor", principal_id)).status == 201

    def spec(target: str, identities: dict) -> dict:
        return {
            "identity": {"type": "UserAssigned", "userAssignedIdentities": identities},
            "properties": {
                "source": {"type": "SharedImageVersion", "imageVersionId": V1},
                "distribute": [{"type": "SharedImage", "galleryImageId": target, "runOutputName": "g"}],
            },
        }

    recorded = {uami: {"principalId": principal_id}}
    world.check_build_identity(spec(D1, recorded))  # Contributor on g1: reads v1, writes versions of d1
    with pytest.raises(rbac.LinkedAuthorizationFailed) as refused:
        world.check_build_identity(spec(D3, recorded))  # d3 is in g2
    assert refused.value.target == "properties.distribute[0].galleryImageId"
    assert principal_id in refused.value.message and D3 in refused.value.message
    # Named by name only (the admin's template, made before the identity): nothing to act as, nothing checked.
    world.check_build_identity(spec(D3, {uami.replace("builder", "later"): {}}))
    with db.write() as tx:
        tx.delete(rid.key)
    with pytest.raises(errors.ArmError) as gone:
        world.check_build_identity(spec(D1, recorded))
    assert (gone.value.status, gone.value.code) == (400, "FailedIdentityOperation") and uami in gone.value.message
