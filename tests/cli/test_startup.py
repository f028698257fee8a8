"""The CLI starts at once: a client command loads neither the server's modules nor the SDKs and renderers it does
not use. Structural, not timed (bench/cli_startup.py times it): the modules a real `vmgallery` process imports are
read from `python -X importtime`."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import env_for

# The server's side, and what only byte-moving or server commands need: each costs a client command 0.05-1 s.
# (pydantic is not among them: typer itself loads it to convert a command's arguments.)
HEAVY = (
    "vmgallery.wiring",
    "vmgallery.adapters",
    "vmgallery.app",
    "vmgallery.config",
    "vmgallery.entrypoints.http",
    "vmgallery.entrypoints.cli.transfer",
    "fastapi",
    "sqlalchemy",
    "uvicorn",
    "azure",
    "rich",
    "pygments",
)


def imported(*args: str, env: dict[str, str | None] | None = None) -> set[str]:
    """The modules `vmgallery ARGS` imports, run as its own process; asserts it exits 0."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vmgallery", *args],
        env=os.environ | {k: v for k, v in (env or {}).items() if v is not None},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # the first line is the header


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_version_prints_the_version_and_loads_nothing_heavy():
    result = subprocess.run(
        [sys.executable, "-m", "vmgallery", "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    from vmgallery import __version__

    assert result.stdout == f"vmgallery {__version__}\n"
    modules = imported("--version")
    assert "vmgallery.entrypoints.cli.main" in modules
    assert heavy(modules) == []


def test_a_client_command_against_a_server_loads_nothing_heavy(server, subscription):
    modules = imported("group", "list", env=env_for(server, subscription))
    assert "httpx" in modules
    assert heavy(modules) == []
