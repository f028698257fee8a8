"""`vmgallery role assignment create|list|delete` with az's options, against the real server."""

from __future__ import annotations

import uuid


def test_role_assignment_create_list_delete(cli, group, subscription):
    cli.ok("sig", "create", "-g", group, "-r", "gal1", "-o", "none")
    gallery = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/gal1"
    sp, user = str(uuid.uuid4()), str(uuid.uuid4())
    made = cli.json(
        "role",
        "assignment",
        "create",
        "--role",
        "Reader",
        "--assignee-object-id",
        sp,
        "--assignee-principal-type",
        "ServicePrincipal",
        "--scope",
        gallery,
    )
    assert made["principalId"] == sp and made["scope"] == gallery and made["roleDefinitionName"] == "Reader"
    assert made["principalType"] == "ServicePrincipal"
    by_id = cli.json(
        "role",
        "assignment",
        "create",
        "--role",
        "1ef6a3be-d0ac-425d-8c01-acb62866290b",
        "--assignee",
        user,
        "--scope",
        gallery,
    )
    assert by_id["roleDefinitionName"] == "Compute Gallery Sharing Admin"
    cli.ok("role", "assignment", "create", "--role", "Contributor", "--assignee", user, "-g", group)
    at_gallery = cli.json("role", "assignment", "list", "--scope", gallery)
    assert sorted(a["principalId"] for a in at_gallery) == sorted([sp, user])
    inherited = cli.json("role", "assignment", "list", "--scope", gallery, "--include-inherited")
    assert len(inherited) == 3
    everywhere = cli.json("role", "assignment", "list", "--all", "--assignee", user)
    assert sorted(a["roleDefinitionName"] for a in everywhere) == ["Compute Gallery Sharing Admin", "Contributor"]
    table = cli.ok("role", "assignment", "list", "--scope", gallery, "-o", "table").stdout
    assert "Reader" in table and sp in table
    assert (
        "doesn't exist"
        in cli.fails(
            "role", "assignment", "create", "--role", "No Such Role", "--assignee", user, "--scope", gallery
        ).stderr
    )
    cli.ok("role", "assignment", "delete", "--assignee", sp, "--role", "Reader", "--scope", gallery)
    assert [a["principalId"] for a in cli.json("role", "assignment", "list", "--scope", gallery)] == [user]
    cli.ok("role", "assignment", "delete", "--ids", by_id["id"])
    assert cli.json("role", "assignment", "list", "--scope", gallery) == []
    assert (
        "No matched assignments"
        in cli.fails("role", "assignment", "delete", "--assignee", sp, "--scope", gallery).stderr
    )


def test_an_assignee_found_by_app_id_or_user_principal_name(cli, group, subscription, server):
    with server.http() as http:
        tenant = http.post("/vmgallery/identity/tenants", json={"name": f"t-{uuid.uuid4().hex[:6]}"}).json()["tenantId"]
        sp = http.post(f"/vmgallery/identity/tenants/{tenant}/servicePrincipals", json={"displayName": "ci"}).json()
        upn = f"ann-{uuid.uuid4().hex[:6]}@example.org"
        user = http.post(
            f"/vmgallery/identity/tenants/{tenant}/users", json={"userPrincipalName": upn, "password": "S3cret-pass!"}
        )
        assert user.status_code == 201, user.text
    by_app = cli.json("role", "assignment", "create", "--role", "Reader", "--assignee", sp["appId"], "-g", group)
    assert by_app["principalId"] == sp["objectId"] and by_app["principalType"] == "ServicePrincipal"
    by_upn = cli.json("role", "assignment", "create", "--role", "Reader", "--assignee", upn, "-g", group)
    assert by_upn["principalId"] == user.json()["objectId"] and by_upn["principalType"] == "User"
    listed = cli.json("role", "assignment", "list", "--assignee", sp["appId"], "-g", group)
    assert [a["principalId"] for a in listed] == [sp["objectId"]]
    assert (
        "Cannot find user or service principal"
        in cli.fails(
            "role", "assignment", "create", "--role", "Reader", "--assignee", "nobody@example.org", "-g", group
        ).stderr
    )
