"""What a new user meets first: `login --data-dir` and errors that name their fix, sources by name (snapshot, then
disk), tables that show each region's replication and no empty columns, help text that is whole, and progress
where a person waits: `wait --region`, `admin verify`, `admin gc`, seen through a pseudo-terminal and through a
pipe."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shlex
import struct
import subprocess
import sys
import termios

import pytest
import typer
from typer import _click
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from vmgallery.entrypoints.cli.main import app

from ..conftest import free_port, running_server
from .conftest import Cli, env_for
from .test_versions_cli import version_args, where

MIB = 1 << 20


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    """A server of this module's own, so `admin verify` and `admin gc` look at this module's data only."""
    with running_server(backend, tmp_path_factory.mktemp(f"first-use-{backend}")) as srv:
        yield srv


@pytest.fixture(scope="module")
def raw_image(tmp_path_factory):
    path = tmp_path_factory.mktemp("raw") / "golden.raw"
    path.write_bytes(os.urandom(MIB) + bytes(MIB))
    return path


@pytest.fixture
def golden(cli, group, raw_image) -> str:
    cli.ok("disk", "upload", "-g", group, "-n", "golden", "--file", str(raw_image), "--os-type", "Linux", "-o", "none")
    return "golden"


@pytest.fixture
def definition(cli, group, gallery) -> str:
    cli.ok(
        "sig",
        "image-definition",
        "create",
        *("-g", group, "-r", gallery, "-i", "linux", "-p", "pub", "-f", "offer", "-s", "sku", "--os-type", "Linux"),
    )
    return "linux"


def group_exists(server, subscription: str, name: str) -> bool:
    with server.http() as http:
        response = http.get(
            f"/subscriptions/{subscription}/resourceGroups/{name}", params={"api-version": "2024-11-01"}
        )
    return response.status_code == 200


# login


def test_login_takes_token_and_certificate_from_the_data_dir(server, subscription):
    login = Cli().ok(
        "login", "--endpoint", server.url, "--data-dir", str(server.data_dir), "--subscription", subscription
    )
    assert json.loads(login.stdout)["caBundle"] == server.ca
    Cli().ok("group", "create", "-n", "rg-data-dir", "-l", "eastus")
    assert group_exists(server, subscription, "rg-data-dir")


def test_login_errors_name_the_flag_that_fixes_them(server, tmp_path):
    no_token = Cli().fails("login", "--endpoint", server.url, "--ca-bundle", server.ca).stderr
    assert no_token.startswith("No access token: give --data-dir") and "vmgallery login" not in no_token
    untrusted = Cli().fails("login", "--endpoint", server.url, "--token", server.token).stderr
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted and "--data-dir" in untrusted and "--ca-bundle" in untrusted
    assert "vmgallery login" not in untrusted
    wrong_dir = Cli().fails("login", "--endpoint", server.url, "--data-dir", str(tmp_path / "elsewhere")).stderr
    assert wrong_dir.startswith("(InvalidArgumentValue) --data-dir: ") and "admin-token" in wrong_dir
    assert not (tmp_path / "config" / "vmgallery" / "profile.json").exists()


def test_other_commands_say_how_to_log_in(server):
    stderr = Cli({"VMGALLERY_ENDPOINT": server.url}).fails("group", "list").stderr
    assert "vmgallery login --endpoint URL --data-dir" in stderr and "VMGALLERY_TOKEN" in stderr


# Sources by name, and the tables


def test_a_source_name_is_a_snapshot_first_then_a_disk(cli, group, gallery, definition, golden):
    from_disk = cli.json(*version_args(group, gallery, definition, "1.0.0", "--os-snapshot", golden))
    assert from_disk["storageProfile"]["osDiskImage"]["source"]["id"].lower().endswith("/disks/golden")
    cli.ok("snapshot", "create", "-g", group, "-n", golden, "--source", golden, "-o", "none")
    from_snapshot = cli.json(
        *version_args(group, gallery, definition, "1.0.1", "--os-snapshot", golden, "--data-snapshots", golden)
    )
    assert from_snapshot["storageProfile"]["osDiskImage"]["source"]["id"].lower().endswith("/snapshots/golden")
    assert from_snapshot["storageProfile"]["dataDiskImages"][0]["source"]["id"].lower().endswith("/snapshots/golden")

    for option, args in (("--os-snapshot", ()), ("--data-snapshots", ("--os-snapshot", golden))):
        missing = cli.fails(*version_args(group, gallery, definition, "1.0.2", *args, option, "nothing")).stderr
        assert missing == (
            f"(ResourceNotFound) {option}: there is neither a snapshot nor a managed disk named 'nothing' in "
            f"resource group '{group}'.\n"
        )


def test_the_version_table_shows_each_region_in_the_versions_order(cli, group, gallery, definition, golden):
    at = where(group, gallery, definition, "1.0.0")
    cli.ok(
        *version_args(
            group, gallery, definition, "1.0.0", "--os-snapshot", golden, "--target-regions", "westus", "eastus"
        )
    )
    cli.ok("sig", "image-version", "wait", *at, "--region", "westus", "eastus", "--interval", "0.1")
    for table in (
        cli.ok("sig", "image-version", "list", "-g", group, "-r", gallery, "-i", definition, "-o", "table").stdout,
        cli.ok("sig", "image-version", "show", *at, "-o", "table").stdout,
    ):
        header, _, row = table.splitlines()
        assert header.split() == [
            "Name",
            "ResourceGroup",
            "Location",
            "ProvisioningState",
            "PublishedDate",
            "ExcludeFromLatest",
            "ReplicationState",
            "Regions",
        ]
        assert re.search(r"  Completed +westus Completed 100%, eastus Completed 100%$", row), row


def test_a_column_empty_in_every_row_is_left_out(cli, group, gallery):
    header = cli.ok("sig", "list", "-g", group, "-o", "table").stdout.splitlines()[0]
    assert header.split() == ["Name", "ResourceGroup", "Location", "ProvisioningState", "UniqueName"]


# Help


def commands(command: _click.Command, path: tuple[str, ...] = ()):
    """Every command under `command`, by path, loading each group as `vmgallery` does (typer's click is its own:
    click's Group and Option match none of its objects)."""
    yield path, command
    if isinstance(command, TyperGroup):
        context = _click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, (path, name)
            yield from commands(sub, (*path, name))


def test_help_shows_every_option_name_whole_and_no_type_markers_on_flags():
    seen = []
    for path, command in commands(typer.main.get_command(app)):
        seen.append(" ".join(path))
        text = CliRunner().invoke(app, [*path, "--help"], terminal_width=80).stdout
        assert "<bool>" not in text and "…" not in text, (path, text)
        for param in command.params:
            for name in (*param.opts, *param.secondary_opts):
                if isinstance(param, TyperOption):
                    assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), (path, name, text)
    assert {"disk upload", "sig image-version create", "image builder run", "login"} <= set(seen)
    assert len(seen) > 100


def test_wait_help_points_to_show_watch():
    text = CliRunner().invoke(app, ["sig", "image-version", "wait", "--help"], terminal_width=80).stdout
    assert "vmgallery sig image-version show --watch" in " ".join(text.split())


# Progress where a person waits


def in_terminal(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    """`vmgallery args` with stderr on a pseudo-terminal (120 columns) and stdout on a pipe: what a person sees."""
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "vmgallery", *args],
        env={**os.environ, **env, "TERM": "xterm-256color"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    seen = b""
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not data:
            break
        seen += data
    os.close(main)
    out = proc.stdout.read().decode()
    return proc.wait(timeout), out, seen.decode(errors="replace")


def piped(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vmgallery", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_wait_for_a_region_shows_its_progress(cli, server, subscription, group, gallery, definition, golden):
    cli.ok(*version_args(group, gallery, definition, "1.0.0", "--os-snapshot", golden, "--target-regions", "eastus"))
    cli.ok("sig", "image-version", "update", *where(group, gallery, definition, "1.0.0"), "--add-region", "westus")
    wait = ["sig", "image-version", "wait", *where(group, gallery, definition, "1.0.0"), "--interval", "0.1"]
    env = {k: v for k, v in env_for(server, subscription).items() if v}

    code, _, screen = in_terminal([*wait, "--region", "westus"], env)
    assert code == 0, screen
    assert "westus" in screen and "━" in screen and "100%" in screen and "Completed" in screen

    done = piped([*wait, "--region", "eastus", "westus"], env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-2:] == ["eastus: Completed 100%", "westus: Completed 100%"]
    assert "\x1b" not in done.stderr


def test_admin_verify_and_gc_show_progress_then_a_summary(cli, server, group, gallery, definition, golden):
    cli.ok(*version_args(group, gallery, definition, "1.0.0", "--os-snapshot", golden))
    cli.ok("sig", "image-version", "wait", *where(group, gallery, definition, "1.0.0"), "--region", "eastus")
    where_data = ["--data-dir", str(server.data_dir)]
    if server.database_url:
        where_data += ["--database-url", server.database_url]

    code, out, screen = in_terminal(["admin", "verify", *where_data], {})
    assert code == 0 and json.loads(out)["sound"], screen
    assert re.search(r"\rVerifying replica \d+ of \d+: \d+ chunks checked, 0 bad, 0 repaired", screen), screen
    summary = screen.rsplit("\x1b[K", 1)[-1].strip()
    assert re.fullmatch(r"Verified \d+ replicas, \d+ chunks: all sound\.", summary), screen

    code, out, screen = in_terminal(["admin", "gc", *where_data], {})
    assert code == 0 and json.loads(out)["chunks_deleted"] >= 0, screen
    assert re.search(r"\rCollecting garbage: \d+ chunks kept, \d+ freed", screen), screen
    assert screen.rsplit("\x1b[K", 1)[-1].strip().startswith("Freed ")

    done = piped(["admin", "verify", *where_data], {})
    assert done.returncode == 0 and re.fullmatch(r"Verified \d+ replicas, \d+ chunks: all sound\.\n", done.stderr)


# The server's banner


def test_serve_ends_its_banner_with_path_login_and_sdk_lines_that_work(tmp_path, subscription):
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "vmgallery", "serve", "--data-dir", str(tmp_path / "data"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        for line in serve.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("SDK:"):
                break
        running = next(i for i, line in enumerate(lines) if "Uvicorn running on" in line)
        path_line, login_line, sdk_line = lines[running + 1 :]
        bin_dir = os.path.dirname(sys.executable)
        assert (
            path_line.startswith(f'CLI:   export PATH="{bin_dir}:$PATH"') or path_line == "CLI:   vmgallery (on PATH)"
        )
        endpoint, data_dir = f"https://127.0.0.1:{port}", tmp_path / "data"
        assert sdk_line == (
            f"SDK:   base_url='{endpoint}', token in {data_dir / 'admin-token'}, "
            f"connection_verify='{data_dir / 'tls' / 'cert.pem'}'"
        )
        assert login_line.startswith("login: vmgallery login ")
        login = shlex.split(login_line.removeprefix("login: "))[1:]
        Cli().ok(*login, "--subscription", subscription)
        assert Cli().json("group", "list") == []
    finally:
        serve.terminate()
        serve.wait(30)
