"""How the CLI finds its server, token, CA and subscription: flags, environment, the login profile, and the
local data dir's defaults, in that order."""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid

from vmgallery.entrypoints.cli.profile import DEFAULT_SUBSCRIPTION

from .conftest import Cli


def group_exists(server, subscription: str, name: str) -> bool:
    with server.http() as http:
        response = http.get(
            f"/subscriptions/{subscription}/resourceGroups/{name}", params={"api-version": "2024-11-01"}
        )
    return response.status_code == 200


def test_environment_names_server_token_ca_and_subscription(server, subscription):
    cli = Cli(
        {
            "VMGALLERY_ENDPOINT": server.url,
            "VMGALLERY_TOKEN": server.token,
            "VMGALLERY_CA_BUNDLE": server.ca,
            "VMGALLERY_SUBSCRIPTION": subscription,
        }
    )
    cli.ok("group", "create", "-n", "rg-env", "-l", "eastus")
    assert group_exists(server, subscription, "rg-env")


def test_token_and_ca_default_to_the_local_data_dir(server, subscription, tmp_path):
    local = tmp_path / "data" / "vmgallery"
    (local / "tls").mkdir(parents=True)
    (local / "admin-token").write_text(server.token + "\n")
    shutil.copy(server.ca, local / "tls" / "cert.pem")
    cli = Cli({"VMGALLERY_ENDPOINT": server.url, "VMGALLERY_SUBSCRIPTION": subscription})
    cli.ok("group", "create", "-n", "rg-local", "-l", "eastus")
    assert group_exists(server, subscription, "rg-local")


def test_without_a_token_the_cli_says_how_to_get_one(server, subscription):
    result = Cli({"VMGALLERY_ENDPOINT": server.url, "VMGALLERY_CA_BUNDLE": server.ca}).fails("group", "list")
    assert "No access token" in result.stderr and "vmgallery login" in result.stderr


def test_an_untrusted_certificate_is_refused(server, subscription):
    result = Cli({"VMGALLERY_ENDPOINT": server.url, "VMGALLERY_TOKEN": server.token}).fails("group", "list")
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr


def test_a_wrong_token_is_reported_as_arm_does(server):
    cli = Cli({"VMGALLERY_ENDPOINT": server.url, "VMGALLERY_TOKEN": "wrong", "VMGALLERY_CA_BUNDLE": server.ca})
    assert cli.fails("group", "list").stderr.startswith("(InvalidAuthenticationToken) ")


def test_login_checks_and_saves_a_private_profile_that_later_commands_use(server, subscription, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(server.token)
    login = Cli().ok(
        "login",
        "--endpoint",
        server.url,
        "--token-file",
        str(token_file),
        "--ca-bundle",
        server.ca,
        "--subscription",
        subscription,
    )
    assert json.loads(login.stdout) == {"endpoint": server.url, "subscription": subscription, "caBundle": server.ca}
    profile = tmp_path / "config" / "vmgallery" / "profile.json"
    assert stat.S_IMODE(os.stat(profile).st_mode) == 0o600
    assert json.loads(profile.read_text())["token"] == server.token

    Cli().ok("group", "create", "-n", "rg-profile", "-l", "eastus")
    assert group_exists(server, subscription, "rg-profile")


def test_environment_beats_the_profile_and_flags_beat_the_environment(server, subscription):
    Cli().ok(
        "login",
        "--endpoint",
        server.url,
        "--token",
        server.token,
        "--ca-bundle",
        server.ca,
        "--subscription",
        subscription,
    )
    from_env, from_flag = str(uuid.uuid4()), str(uuid.uuid4())
    Cli({"VMGALLERY_SUBSCRIPTION": from_env}).ok("group", "create", "-n", "rg-a", "-l", "eastus")
    Cli({"VMGALLERY_SUBSCRIPTION": from_env}).ok(
        "group", "create", "-n", "rg-b", "-l", "eastus", "--subscription", from_flag
    )
    assert group_exists(server, from_env, "rg-a") and not group_exists(server, subscription, "rg-a")
    assert group_exists(server, from_flag, "rg-b") and not group_exists(server, from_env, "rg-b")

    unreachable = Cli({"VMGALLERY_ENDPOINT": "https://127.0.0.1:9"}).fails("group", "list")
    assert "Cannot connect to https://127.0.0.1:9" in unreachable.stderr
    Cli({"VMGALLERY_ENDPOINT": "https://127.0.0.1:9"}).ok("group", "list", "--endpoint", server.url)


def test_login_refuses_a_bad_token_and_saves_nothing(server, tmp_path):
    result = Cli().fails("login", "--endpoint", server.url, "--token", "nope", "--ca-bundle", server.ca)
    assert "(InvalidAuthenticationToken)" in result.stderr
    assert not (tmp_path / "config" / "vmgallery" / "profile.json").exists()


def test_without_a_subscription_the_documented_default_is_used(server):
    name = f"rg-{uuid.uuid4().hex[:8]}"
    Cli({"VMGALLERY_ENDPOINT": server.url, "VMGALLERY_TOKEN": server.token, "VMGALLERY_CA_BUNDLE": server.ca}).ok(
        "group", "create", "-n", name, "-l", "eastus"
    )
    assert group_exists(server, DEFAULT_SUBSCRIPTION, name)
