"""Fixtures for driving the `vmgallery` CLI in-process (CliRunner) against the real server from tests/conftest.py.

Every test gets its own XDG config and data dirs, so neither a developer's saved profile nor a local server's
admin token can leak in, and its own subscription, so tests never see each other's resources.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from vmgallery.entrypoints.cli.main import app

from ..conftest import PgDatabase, Server

ENV_NAMES = ("VMGALLERY_ENDPOINT", "VMGALLERY_TOKEN", "VMGALLERY_CA_BUNDLE", "VMGALLERY_SUBSCRIPTION")


@dataclass
class Cli:
    """Runs `vmgallery ...` in-process with `env` as its environment (on top of the isolated XDG dirs)."""

    env: dict[str, str | None] = field(default_factory=dict)

    def run(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), env=self.env, input=input)

    def ok(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.exit_code == 0, f"vmgallery {' '.join(args)} -> {result.exit_code}\n{result.stderr}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--output", "json").stdout)

    def fails(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.exit_code == 1, f"vmgallery {' '.join(args)} -> {result.exit_code}\n{result.stdout}"
        return result


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def env_for(server: Server, subscription: str) -> dict[str, str | None]:
    return {
        "VMGALLERY_ENDPOINT": server.url,
        "VMGALLERY_TOKEN": server.token,
        "VMGALLERY_CA_BUNDLE": server.ca,
        "VMGALLERY_SUBSCRIPTION": subscription,
    }


@pytest.fixture
def cli(server, subscription) -> Cli:
    """A CLI that finds the server, token, CA and subscription through the environment."""
    return Cli(env_for(server, subscription))


@pytest.fixture
def group(cli) -> str:
    name = f"rg-{uuid.uuid4().hex[:8]}"
    cli.ok("group", "create", "-n", name, "-l", "eastus")
    return name


@pytest.fixture
def gallery(cli, group) -> str:
    name = f"gal{uuid.uuid4().hex[:8]}"
    cli.ok("sig", "create", "-g", group, "-r", name)
    return name


@pytest.fixture(scope="session")
def workerless_server(backend, tmp_path_factory):
    """A server that runs no jobs and answers writes at once: its operations stay InProgress until a
    `vmgallery worker` process (see `start_worker`) finishes them, so the CLI has to poll."""
    pg = PgDatabase() if backend == "postgresql" else None
    data_dir = tmp_path_factory.mktemp(f"workerless-{backend}")
    (data_dir / "config.toml").write_text("sync_wait_seconds = 0.0\n")
    srv = Server(data_dir, pg.url if pg else None, extra_args=("--workers", "0")).start()
    yield srv
    srv.stop()
    if pg:
        pg.drop()


def start_worker(server: Server) -> subprocess.Popen:
    args = [sys.executable, "-m", "vmgallery", "worker", "--data-dir", str(server.data_dir)]
    if server.database_url:
        args += ["--database-url", server.database_url]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_worker(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def cli_process(server: Server, subscription: str, *args: str, **extra_env: str) -> subprocess.Popen:
    """`vmgallery ...` as a separate process, for commands that must run while the test does something else."""
    env = {**os.environ, **{k: v for k, v in env_for(server, subscription).items() if v is not None}, **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", "vmgallery", *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    """The exit code and output of a `cli_process`; a CLI still waiting after `timeout` fails the test."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the CLI did not finish in {timeout} s:\n{err}")
    return proc.returncode, out, err
