"""Shared fixtures: a real vmgallery server process on loopback HTTPS, on SQLite and on PostgreSQL.

Each database backend gets one server per test session; tests isolate themselves with fresh resource groups.
PostgreSQL runs at 127.0.0.1:5432 (trust auth); every server gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

PG_ADMIN = os.environ.get("VMGALLERY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgDatabase:
    """A throwaway PostgreSQL database."""

    def __init__(self):
        self.name = f"vmg_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        base = PG_ADMIN.rsplit("/", 1)[0]
        self.url = f"{base}/{self.name}"

    def drop(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class Server:
    """A running `vmgallery serve` process."""

    data_dir: Path
    database_url: str | None
    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None
    log_lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        scheme = "http" if "--insecure-http" in self.extra_args else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.data_dir / "tls" / "cert.pem")

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def start(self, timeout: float = 60) -> Server:
        args = [
            sys.executable,
            "-m",
            "vmgallery",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--shutdown-timeout",
            "1",
            *self.extra_args,
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log_lines.append(line)
                if "Uvicorn running on" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            raise RuntimeError("server did not start:\n" + "".join(self.log_lines[-40:]))
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(30)
        return self.proc.returncode if self.proc else 0

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=self.ca),
            timeout=30,
            headers={"Authorization": f"Bearer {self.token}"},
        )


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    return request.param


@contextlib.contextmanager
def running_server(backend: str, data_dir: Path, config: str = ""):
    """A started server on `data_dir` with this config.toml, on the backend's database (for PostgreSQL a fresh
    database, dropped afterwards)."""
    if config:
        (data_dir / "config.toml").write_text(config)
    pg = PgDatabase() if backend == "postgresql" else None
    srv = Server(data_dir, pg.url if pg else None)
    try:
        yield srv.start()
    finally:
        srv.stop()
        if pg:
            pg.drop()


@pytest.fixture(scope="session")
def server(backend, tmp_path_factory):
    with running_server(backend, tmp_path_factory.mktemp(f"server-{backend}")) as srv:
        yield srv


@pytest.fixture
def subscription() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def http(server):
    with server.http() as client:
        yield client


# Lines a test wants in the run's summary (the examples conformance count), and the fuzzing run's tally
# (tests/fuzz/conftest.py): pytest-xdist workers hand theirs to the controller at their end, which prints them all
# once; without workers they are printed from this process.
SUMMARY_LINES: list[str] = []


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["summary_lines"] = list(SUMMARY_LINES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    from tests.fuzz import conftest as fuzz

    output = getattr(node, "workeroutput", {})
    SUMMARY_LINES.extend(output.get("summary_lines", []))
    fuzz.merge(output.get("fuzz_tallies", {}))


def pytest_terminal_summary(terminalreporter):
    from tests.fuzz import conftest as fuzz

    for line in [*SUMMARY_LINES, *fuzz.summary_lines()]:
        terminalreporter.write_line(line)
