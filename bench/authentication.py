"""Authentication benchmark: what an access token of the authority costs an ARM request, against the admin token.

It starts a `vmgallery serve` (loopback HTTPS, SQLite, a temporary data dir), makes a tenant, a subscription, a
service principal in two nested groups, and times `GET /subscriptions/{id}/resourcegroups` (an empty list: the
request is little more than its authentication) with the admin token and with the service principal's JWT (RS256
signature check, directory lookup of the principal, transitive groups, subscription check), interleaved so load on
the machine hits both alike, over one kept-alive connection each; it also times the token request itself (Argon2id
secret check + signing). Medians are compared. See bench/README.md.

    .venv/bin/python bench/authentication.py [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from cli_startup import free_port, start_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, port = Path(tmp), free_port()
        proc = start_server(data_dir, port)
        try:
            run(data_dir, f"https://127.0.0.1:{port}", args.requests)
        finally:
            proc.terminate()
            proc.wait(30)


def run(data_dir: Path, url: str, n: int) -> None:
    tls = ssl.create_default_context(cafile=str(data_dir / "tls" / "cert.pem"))
    admin_token = (data_dir / "admin-token").read_text().strip()
    admin = httpx.Client(base_url=url, verify=tls, headers={"Authorization": f"Bearer {admin_token}"})
    ident = "/vmgallery/identity"
    tenant = admin.post(f"{ident}/tenants", json={"name": "bench"}).json()["tenantId"]
    sub = admin.post(f"{ident}/subscriptions", json={"tenantId": tenant, "name": "s"}).json()["subscriptionId"]
    sp = admin.post(f"{ident}/tenants/{tenant}/servicePrincipals", json={"displayName": "b"}).json()
    outer = admin.post(f"{ident}/tenants/{tenant}/groups", json={"displayName": "outer"}).json()["objectId"]
    inner = admin.post(f"{ident}/tenants/{tenant}/groups", json={"displayName": "inner"}).json()["objectId"]
    admin.post(f"{ident}/tenants/{tenant}/groups/{outer}/members", json={"memberId": inner})
    admin.post(f"{ident}/tenants/{tenant}/groups/{inner}/members", json={"memberId": sp["objectId"]})
    form = {
        "grant_type": "client_credentials",
        "client_id": sp["appId"],
        "client_secret": sp["password"],
        "scope": "https://management.azure.com/.default",
    }
    anonymous = httpx.Client(base_url=url, verify=tls)
    token_times = []
    for _ in range(20):
        started = time.perf_counter()
        token = anonymous.post(f"/{tenant}/oauth2/v2.0/token", data=form).json()["access_token"]
        token_times.append(time.perf_counter() - started)
    jwt_client = httpx.Client(base_url=url, verify=tls, headers={"Authorization": f"Bearer {token}"})
    path, params = f"/subscriptions/{sub}/resourcegroups", {"api-version": "2021-04-01"}
    times: dict[str, list[float]] = {"admin token": [], "service principal JWT": []}
    for client in (admin, jwt_client):
        assert client.get(path, params=params).status_code == 200  # warm: connection, caches
    for _ in range(n):
        for name, client in (("admin token", admin), ("service principal JWT", jwt_client)):
            started = time.perf_counter()
            client.get(path, params=params)
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"load average {os.getloadavg()[0]:.1f}; {n} requests each, medians")
    for name, ms in medians.items():
        print(f"  GET resourcegroups, {name:22} {ms:7.2f} ms")
    extra = medians["service principal JWT"] - medians["admin token"]
    print(f"  JWT / admin ratio {medians['service principal JWT'] / medians['admin token']:.2f} (+{extra:.2f} ms)")
    print(f"  token request (client credentials) {statistics.median(token_times) * 1000:7.2f} ms")


if __name__ == "__main__":
    main()
