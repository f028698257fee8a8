"""A build's fetch of an https file under an operator's allowed prefix, over real TLS on loopback."""

import http.server
import ssl
import threading

import pytest

from vmgallery.adapters import build_sources
from vmgallery.adapters.build_sources import SourceFetcher
from vmgallery.adapters.security import ensure_certificate
from vmgallery.adapters.storage_accounts import StorageAccounts
from vmgallery.domain import errors


@pytest.fixture
def https_server(tmp_path, monkeypatch):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_certificate(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx trusts the environment's CA file
    files = {"/scripts/setup.sh": b"echo hello\n" * 1000, "/moved": b""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "https://example.invalid/elsewhere")
                self.end_headers()
                return
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{server.server_address[1]}", files
    server.shutdown()


def test_a_file_under_an_allowed_prefix_is_fetched(https_server):
    base, files = https_server
    fetch = SourceFetcher(StorageAccounts({}), [f"{base}/scripts/"])
    assert fetch(f"{base}/scripts/setup.sh") == files["/scripts/setup.sh"]


def test_outside_the_prefix_nothing_is_fetched(https_server):
    base, _ = https_server
    fetch = SourceFetcher(StorageAccounts({}), [f"{base}/scripts/"])
    with pytest.raises(errors.InvalidParameter, match="loopback"):
        fetch(f"{base}/other/setup.sh")


def test_a_redirect_is_not_followed_and_a_missing_file_is_an_error(https_server):
    base, _ = https_server
    fetch = SourceFetcher(StorageAccounts({}), [f"{base}/"])
    with pytest.raises(Exception, match="302"):
        fetch(f"{base}/moved")
    with pytest.raises(Exception, match="404"):
        fetch(f"{base}/nothing")


def test_a_file_over_the_limit_is_refused(https_server, monkeypatch):
    base, _ = https_server
    monkeypatch.setattr(build_sources, "MAX_BYTES", 100)
    fetch = SourceFetcher(StorageAccounts({}), [f"{base}/"])
    with pytest.raises(ValueError, match="exceeds 100 bytes"):
        fetch(f"{base}/scripts/setup.sh")


def test_own_signed_urls_need_the_server(https_server):
    fetch = SourceFetcher(StorageAccounts({}), [])
    with pytest.raises(ValueError, match="signed URLs"):
        fetch("https://127.0.0.1:1/_blob/sas/abc?sig=x")
