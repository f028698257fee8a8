"""Starting and stopping the server: bootstrap credentials, TLS choices, regions, restarts keeping data."""

from __future__ import annotations

import stat
import uuid

import httpx

from tests.store.revisions import head_revision
from vmgallery.adapters.db.store import Database
from vmgallery.adapters.security import ensure_certificate

RG_API = "api-version=2024-11-01"


def test_first_start_writes_credentials_and_restart_keeps_them_and_the_data(make_server):
    srv = make_server()
    token, cert = srv.token, (srv.data_dir / "tls" / "cert.pem").read_bytes()
    for name in ("admin-token", "tls/key.pem"):
        assert stat.S_IMODE((srv.data_dir / name).stat().st_mode) == 0o600, name
    assert any("VMGALLERY_CA_BUNDLE" in line for line in srv.log_lines)
    sub = str(uuid.uuid4())
    with srv.http() as client:
        assert (
            client.put(f"/subscriptions/{sub}/resourceGroups/keep?{RG_API}", json={"location": "eastus"}).status_code
            == 201
        )
    # SIGTERM: uvicorn finishes open requests and the lifespan (workers stop, database closes), then re-raises
    # the signal, so the exit status is -15 after a clean shutdown.
    assert srv.stop() in (0, -15)
    assert any('"stopped"' in line for line in srv.log_lines)
    assert any("Finished server process" in line for line in srv.log_lines)

    srv = make_server()
    assert srv.token == token
    assert (srv.data_dir / "tls" / "cert.pem").read_bytes() == cert
    with srv.http() as client:
        assert client.get(f"/subscriptions/{sub}/resourceGroups/keep?{RG_API}").status_code == 200
    db = Database(srv.database_url or f"sqlite:///{srv.data_dir / 'vmgallery.db'}")
    assert db.schema_revision() == head_revision()
    db.dispose()


def test_given_certificate_is_used(make_server, tmp_path):
    cert, key = tmp_path / "own" / "c.pem", tmp_path / "own" / "k.pem"
    ensure_certificate(cert, key)
    srv = make_server(extra_args=("--tls-cert", str(cert), "--tls-key", str(key)))
    assert not (srv.data_dir / "tls" / "cert.pem").exists()
    import ssl

    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as client:
        assert client.get(f"{srv.url}/healthz").status_code == 200


def test_insecure_http(make_server):
    srv = make_server(extra_args=("--insecure-http",))
    with httpx.Client() as client:
        r = client.get(
            f"{srv.url}/subscriptions/{uuid.uuid4()}/resourceGroups?{RG_API}",
            headers={"Authorization": f"Bearer {srv.token}"},
        )
        assert r.status_code == 200 and r.json() == {"value": []}


def test_regions_from_flag_and_config(make_server):
    srv = make_server('regions = ["eastus"]\n', ("--regions", "North Europe,eastus2"))
    sub = str(uuid.uuid4())
    with srv.http() as client:
        ok = client.put(f"/subscriptions/{sub}/resourceGroups/a?{RG_API}", json={"location": "North Europe"})
        assert ok.status_code == 201 and ok.json()["location"] == "northeurope"
        bad = client.put(f"/subscriptions/{sub}/resourceGroups/b?{RG_API}", json={"location": "eastus"})
        assert bad.status_code == 400
        assert bad.json()["error"]["target"] == "location"
        assert "northeurope, eastus2" in bad.json()["error"]["message"]
    srv.stop()
    srv = make_server('regions = ["West Europe"]\n')
    with srv.http() as client:
        r = client.put(f"/subscriptions/{sub}/resourceGroups/c?{RG_API}", json={"location": "westeurope"})
        assert r.status_code == 201
