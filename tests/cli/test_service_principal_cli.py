"""`vmgallery login --service-principal`, `account show` and `logout` against the real server: the CLI signs in at
the server's own authority, later commands act as the principal under RBAC, its token is renewed when it expires, and
its secret is kept only in the private profile, never printed."""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Cli, env_for


@dataclass
class Principal:
    tenant: str
    subscription: str
    app_id: str
    secret: str
    group: str  # a resource group in the subscription, made by the admin


@pytest.fixture
def reader(cli, server) -> Principal:
    """A service principal with Reader on a subscription of its own tenant, which holds one resource group."""
    tenant = cli.json("identity", "tenant", "create", "--name", f"t-{uuid.uuid4().hex[:6]}")["tenantId"]
    sub = cli.json("identity", "subscription", "create", "--tenant", tenant, "--name", "prod")["subscriptionId"]
    sp = cli.json("identity", "sp", "create", "--tenant", tenant, "--name", "ci-reader")
    admin = Cli(env_for(server, sub))
    group = f"rg-{uuid.uuid4().hex[:8]}"
    admin.ok("group", "create", "-n", group, "-l", "eastus")
    admin.ok(
        "role",
        "assignment",
        "create",
        "--role",
        "Reader",
        "--assignee",
        sp["appId"],
        "--scope",
        f"/subscriptions/{sub}",
    )
    return Principal(tenant, sub, sp["appId"], sp["password"], group)


@pytest.fixture(autouse=True)
def no_secret_in_env(monkeypatch):
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)


def login_args(server, who: Principal, *secret: str) -> list[str]:
    return [
        "login",
        "--service-principal",
        "-u",
        who.app_id,
        *secret,
        "--tenant",
        who.tenant,
        "--endpoint",
        server.url,
        "--ca-bundle",
        server.ca,
    ]


def profile_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "vmgallery" / "profile.json"


def test_a_reader_principal_lists_and_gets_a_clear_403_on_create(server, reader, tmp_path):
    signed = Cli().ok(*login_args(server, reader, "-p", reader.secret))
    assert reader.secret not in signed.stdout + signed.stderr
    shown = json.loads(signed.stdout)
    assert shown["id"] == reader.subscription and shown["tenantId"] == reader.tenant
    assert shown["user"] == {"name": reader.app_id, "type": "servicePrincipal"}
    path = profile_file(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["service_principal"]["client_secret"] == reader.secret  # kept to renew the token, 0600
    assert saved["token"].count(".") == 2 and saved["subscription"] == reader.subscription

    # No VMGALLERY_TOKEN and no local admin token: the profile's principal is who acts.
    listed = Cli().json("group", "list")
    assert [g["name"] for g in listed] == [reader.group]
    refused = Cli().fails("group", "create", "-n", "rg-denied", "-l", "eastus")
    assert refused.stderr.startswith("(AuthorizationFailed) The client 'ci-reader' with object id"), refused.stderr
    assert "does not have authorization to perform action" in refused.stderr
    assert "Microsoft.Resources/subscriptions/resourceGroups/write".lower() in refused.stderr.lower()
    assert [g["name"] for g in Cli().json("group", "list")] == [reader.group]

    account = Cli().json("account", "show")
    assert account["user"] == shown["user"] and account["id"] == reader.subscription
    assert reader.secret not in json.dumps(account) and saved["token"] not in json.dumps(account)


def test_the_secret_from_the_environment_or_a_prompt_and_a_wrong_one_saves_nothing(server, reader, tmp_path):
    wrong = Cli().fails(*login_args(server, reader, "-p", "not-the-secret"))
    assert wrong.stderr.startswith("(invalid_client) ") and "Invalid client secret" in wrong.stderr
    assert not profile_file(tmp_path).exists()

    Cli({"AZURE_CLIENT_SECRET": reader.secret}).ok(*login_args(server, reader))
    assert Cli().json("account", "show")["user"]["name"] == reader.app_id
    profile_file(tmp_path).unlink()

    prompted = Cli().run(*login_args(server, reader), input=reader.secret + "\n")
    assert prompted.exit_code == 0, prompted.stderr
    assert "Password" in prompted.stdout and reader.secret not in prompted.stdout
    assert [g["name"] for g in Cli().json("group", "list")] == [reader.group]


def test_an_expiring_token_is_renewed_and_saved_and_a_reset_secret_says_to_log_in_again(cli, server, reader, tmp_path):
    Cli().ok(*login_args(server, reader, "-p", reader.secret))
    path = profile_file(tmp_path)
    saved = json.loads(path.read_text())
    saved["token"] = "expired"
    saved["service_principal"]["expires_on"] = time.time() - 5
    path.write_text(json.dumps(saved))

    assert [g["name"] for g in Cli().json("group", "list")] == [reader.group]
    renewed = json.loads(path.read_text())
    assert renewed["token"].count(".") == 2 and renewed["service_principal"]["expires_on"] > time.time() + 600
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # A token still good for a while is used as it is.
    Cli().ok("group", "list")
    assert json.loads(path.read_text())["token"] == renewed["token"]
    cli.ok("identity", "sp", "credential", "reset", "--tenant", reader.tenant, "--id", reader.app_id, "-o", "none")
    again = json.loads(path.read_text())
    again["service_principal"]["expires_on"] = time.time() - 5
    path.write_text(json.dumps(again))
    failed = Cli().fails("group", "list")
    assert failed.stderr.startswith("(invalid_client) ") and "vmgallery login --service-principal" in failed.stderr


def test_logout_forgets_the_principal(server, reader, tmp_path):
    Cli().ok(*login_args(server, reader, "-p", reader.secret))
    assert Cli().json("account", "show")["tenantId"] == reader.tenant
    assert "Logged out" in Cli().ok("logout").stderr
    assert not profile_file(tmp_path).exists()
    assert "No access token" in Cli().fails("account", "show").stderr
    assert "no active accounts" in Cli().fails("logout").stderr
    # An explicit token (here the admin's) is shown as a plain bearer token, with no principal.
    admin = Cli({"VMGALLERY_TOKEN": server.token}).json("account", "show")
    assert admin["user"] == {"name": "bearer token", "type": "token"} and admin["tenantId"] is None


def test_service_principal_options_are_checked(server, reader):
    assert Cli().run("login", "-u", reader.app_id, "--tenant", reader.tenant).exit_code == 2
    mixed = Cli().run(*login_args(server, reader, "-p", "x"), "--token", "t")
    assert mixed.exit_code == 2 and "not --token" in mixed.stderr
    no_tenant = Cli().run("login", "--service-principal", "-u", reader.app_id, "-p", "x")
    assert no_tenant.exit_code == 2 and "--tenant" in no_tenant.stderr


def test_login_refuses_an_unknown_tenant_an_unreachable_server_and_a_principal_without_subscriptions(
    cli, server, reader, tmp_path
):
    stranger = Principal(str(uuid.uuid4()), reader.subscription, reader.app_id, reader.secret, reader.group)
    unknown = Cli().fails(*login_args(server, stranger, "-p", reader.secret))
    assert unknown.stderr.startswith("(invalid_request) ") and "not found" in unknown.stderr
    args = login_args(server, reader, "-p", reader.secret)
    args[args.index(server.url)] = "https://127.0.0.1:9"
    assert "Cannot get a token from https://127.0.0.1:9" in Cli().fails(*args).stderr

    empty = cli.json("identity", "tenant", "create", "--name", "empty")["tenantId"]
    sp = cli.json("identity", "sp", "create", "--tenant", empty, "--name", "idle")
    idle = Principal(empty, "", sp["appId"], sp["password"], "")
    refused = Cli().fails(*login_args(server, idle, "-p", idle.secret))
    assert refused.stderr.startswith("(SubscriptionNotFound) No subscriptions found for"), refused.stderr
    assert not profile_file(tmp_path).exists()
