from __future__ import annotations

import subprocess
import sys

import pytest

from ..conftest import PgDatabase, Server


@pytest.fixture
def make_server(backend, tmp_path):
    """Start servers of our own on one data dir (and database), e.g. to kill and restart them."""
    pg = PgDatabase() if backend == "postgresql" else None
    made: list[Server] = []
    workers: list[subprocess.Popen] = []
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    def start(config: str = "", extra_args: tuple[str, ...] = ()) -> Server:
        if config:
            (data_dir / "config.toml").write_text(config)
        srv = Server(data_dir, pg.url if pg else None, extra_args=extra_args)
        made.append(srv)
        return srv.start()

    def start_worker() -> subprocess.Popen:
        args = [sys.executable, "-m", "vmgallery", "worker", "--data-dir", str(data_dir), "--threads", "1"]
        if pg:
            args += ["--database-url", pg.url]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers.append(proc)
        return proc

    start.worker = start_worker
    yield start
    for w in workers:
        w.kill()
        w.wait()
    for s in made:
        s.kill()
    if pg:
        pg.drop()
