"""Azurite, the Azure Storage emulator, as the real storage account of the tests.

`scripts/test` installs it under `.ci/node` (npm, its version pinned there); a test module uses it with

    from tests.azurite import azurite  # noqa: F401  (the session fixture)

and gets one emulator per test session on a free loopback port, its data in a temporary folder.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, BlobType

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT = 60.0


def azurite_blob() -> str:
    """The azurite-blob launcher: the project-local install, else one on PATH."""
    local = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "azurite-blob"
    found = str(local) if local.exists() else shutil.which("azurite-blob")
    if not found:
        # Once for the run, not once per test that needs it.
        pytest.exit("azurite-blob is not installed: run scripts/test, which installs it under .ci/node", returncode=4)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Azurite:
    endpoint: str
    proc: subprocess.Popen
    account_name: str = ACCOUNT
    account_key: str = KEY

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint={self.endpoint};"
        )

    def service(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.connection_string)

    def upload(
        self, path: Path, *, container: str | None = None, name: str | None = None, page_blob: bool = True
    ) -> str:
        """Upload a local file as a page blob (its size must be a multiple of 512) or a block blob; returns its URL.
        The container (default: a fresh one) is created if needed."""
        container = container or f"c{uuid.uuid4().hex[:12]}"
        client = self.service().get_container_client(container)
        if not client.exists():
            client.create_container()
        blob = client.get_blob_client(name or path.name)
        with open(path, "rb") as f:
            blob.upload_blob(
                f,
                length=path.stat().st_size,
                overwrite=True,
                blob_type=BlobType.PAGEBLOB if page_blob else BlobType.BLOCKBLOB,
            )
        return blob.url


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite-blob exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            # Not listening yet: block until the process exits or a short poll interval passes.
            try:
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
    raise RuntimeError(f"azurite-blob did not listen on port {port} within {timeout} s")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Azurite:
    port = free_port()
    location = tmp_path_factory.mktemp("azurite")
    args = [
        azurite_blob(),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(location),
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
    ]
    log = open(location / "azurite.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, proc, START_TIMEOUT)
        yield Azurite(endpoint=f"http://127.0.0.1:{port}/{ACCOUNT}", proc=proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
