"""`vmgallery identity ...` against a real server: each command's JSON, the secret printed once, and a service
principal made by the CLI signing in through azure-identity."""

from __future__ import annotations

import uuid

from azure.identity import ClientSecretCredential

ARM_SCOPE = "https://management.azure.com/.default"


def test_directory_lifecycle_through_the_cli(cli, server):
    tenant = cli.json("identity", "tenant", "create", "--name", "contoso")
    assert set(tenant) == {"tenantId", "name"} and tenant["name"] == "contoso"
    t = tenant["tenantId"]
    assert t in [x["tenantId"] for x in cli.json("identity", "tenant", "list")]
    assert cli.json("identity", "tenant", "show", "--id", t) == tenant

    sub = cli.json("identity", "subscription", "create", "--tenant", t, "--name", "prod")
    assert sub["tenantId"] == t and uuid.UUID(sub["subscriptionId"])
    assert [s["subscriptionId"] for s in cli.json("identity", "subscription", "list", "--tenant", t)] == [
        sub["subscriptionId"]
    ]

    upn = f"erin{uuid.uuid4().hex[:6]}@contoso.com"
    user = cli.json("identity", "user", "create", "--tenant", t, "--name", upn, "--password", "correct-horse")
    assert user["userPrincipalName"] == upn and uuid.UUID(user["objectId"])
    assert "correct-horse" not in cli.ok("identity", "user", "show", "--tenant", t, "--id", user["objectId"]).stdout

    group = cli.json("identity", "group", "create", "--tenant", t, "--name", "admins")
    cli.ok(
        "identity", "group", "member", "add", "--tenant", t, "--group", group["objectId"], "--member", user["objectId"]
    )
    members = cli.json("identity", "group", "member", "list", "--tenant", t, "--group", group["objectId"])
    assert [m["objectId"] for m in members] == [user["objectId"]]

    sp = cli.json("identity", "sp", "create", "--tenant", t, "--name", "deployer", "--multi-tenant")
    assert set(sp) == {"appId", "objectId", "displayName", "password", "tenant"} and sp["tenant"] == t
    listed = cli.ok("identity", "sp", "list", "--tenant", t, "-o", "json").stdout
    assert sp["appId"] in listed and sp["password"] not in listed

    credential = ClientSecretCredential(
        t,
        sp["appId"],
        sp["password"],
        authority=server.url,
        disable_instance_discovery=True,
        connection_verify=server.ca,
    )
    assert credential.get_token(ARM_SCOPE).token

    reset = cli.json("identity", "sp", "credential", "reset", "--tenant", t, "--id", sp["appId"])
    assert reset["appId"] == sp["appId"] and reset["password"] != sp["password"]
    fresh = ClientSecretCredential(
        t,
        sp["appId"],
        reset["password"],
        authority=server.url,
        disable_instance_discovery=True,
        connection_verify=server.ca,
    )
    assert fresh.get_token(ARM_SCOPE).token

    other = cli.json("identity", "tenant", "create", "--name", "fabrikam")["tenantId"]
    guest = cli.json("identity", "sp", "create", "--tenant", other, "--app-id", sp["appId"])
    assert guest["appId"] == sp["appId"] and guest["tenant"] == other and "password" not in guest

    # deleting: members, objects, then the subscription and the tenant
    cli.ok(
        "identity",
        "group",
        "member",
        "remove",
        "--tenant",
        t,
        "--group",
        group["objectId"],
        "--member",
        user["objectId"],
    )
    cli.ok("identity", "user", "delete", "--tenant", t, "--id", user["objectId"])
    assert cli.json("identity", "user", "list", "--tenant", t) == []
    failed = cli.fails("identity", "tenant", "delete", "--id", t)
    assert "(Conflict)" in failed.stderr  # its subscription first
    cli.ok("identity", "subscription", "delete", "--id", sub["subscriptionId"])
    cli.ok("identity", "tenant", "delete", "--id", t)
    assert "(TenantNotFound)" in cli.fails("identity", "tenant", "show", "--id", t).stderr
    # the home tenant took the application with it, and its guest service principal
    assert cli.json("identity", "sp", "list", "--tenant", other) == []


def test_bad_input_is_an_arm_error(cli):
    assert (
        "(InvalidParameter)"
        in cli.fails("identity", "subscription", "create", "--tenant", "nope", "--name", "x").stderr
    )
    t = cli.json("identity", "tenant", "create", "--name", "t")["tenantId"]
    result = cli.fails("identity", "user", "create", "--tenant", t, "--name", "not-an-upn", "--password", "longenough")
    assert "(InvalidParameter)" in result.stderr and "userPrincipalName" in result.stderr
    assert cli.json("identity", "user", "list", "--tenant", t) == []
