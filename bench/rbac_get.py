"""RBAC benchmark: what the authorization check adds to a GET.

A gallery GET as a principal whose access comes from a group's Reader role at the subscription, with 1,000 other
role assignments in the database (each to another principal, half at the subscription, half on 50 galleries), against
the same GET as the admin (which skips the check), on SQLite and PostgreSQL, in one process: the real service
(`wiring.build_service`, migrations, the real store) and the real ASGI app, driven by httpx's ASGI transport, so the
figure is the server's own work without TLS and socket noise (which would only shrink the ratio). The principal is
put on the request by replacing the app's token check for one token (a stand-in for the identity authority, named
`STAND_IN_TOKEN`); everything after authentication is the code under test. Rounds alternate admin and principal.
Goal: principal/admin median <= 1.2.

With --https it measures what issue 12 asks, over the wire: a real `vmgallery serve` (bench/control_plane.py's
`Server`), GET of one image version (from an empty disk) as a service principal in a group holding Reader at the
subscription, its token issued by the server's own authority (client credentials), against the admin token, with
keep-alive HTTPS clients; it prints wall time and the server process's CPU time per request, and token issuance per
second (client credentials: Argon2id secret check and RS256 signing, one request after another).

    .venv/bin/python bench/rbac_get.py --db both [--https]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from vmgallery.config import Settings
from vmgallery.domain import rbac
from vmgallery.domain.principals import Principal, PrincipalType
from vmgallery.entrypoints.http.app import ArmApi
from vmgallery.wiring import build_app, build_service

PG_ADMIN = os.environ.get("VMGALLERY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
STAND_IN_TOKEN = "bench-principal"
GOAL = 1.2
TOKENS = 20  # token requests timed, one after another
SUB = "11111111-1111-1111-1111-111111111111"
GROUP = str(uuid.UUID(int=7))
USER = Principal(
    str(uuid.UUID(int=8)), str(uuid.UUID(int=9)), PrincipalType.USER, frozenset({GROUP, str(uuid.UUID(int=10))})
)


def _stand_in(original):
    async def authenticate(self, request):
        if request.headers.get("authorization") == f"Bearer {STAND_IN_TOKEN}":
            request.state.principal = USER
            return None
        return await original(self, request)

    return authenticate


async def _run(app, admin_token: str, rounds: int, per_round: int) -> dict[str, float]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://bench") as client:
        base = f"/subscriptions/{SUB}/resourceGroups/rg"

        async def call(method, path, token, body=None, version="2024-11-01"):
            r = await client.request(
                method, path, params={"api-version": version}, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code < 300, r.text
            return r

        await call("PUT", base, admin_token, {"location": "eastus"})
        reader = rbac.READER.guid
        for g in range(50):
            await call(
                "PUT",
                f"{base}/providers/Microsoft.Compute/galleries/g{g}",
                admin_token,
                {"location": "eastus"},
                "2023-07-03",
            )
        for i in range(1000):
            principal = str(uuid.UUID(int=1000 + i))
            scope = f"/subscriptions/{SUB}" if i % 2 else f"{base}/providers/Microsoft.Compute/galleries/g{i // 2 % 50}"
            await call(
                "PUT",
                f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
                admin_token,
                {"properties": {"roleDefinitionId": reader, "principalId": principal}},
                "2022-04-01",
            )
        await call(
            "PUT",
            f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
            admin_token,
            {"properties": {"roleDefinitionId": reader, "principalId": GROUP, "principalType": "Group"}},
            "2022-04-01",
        )
        path = f"{base}/providers/Microsoft.Compute/galleries/g1"
        wall: dict[str, list[float]] = {"admin": [], "principal": []}
        cpu: dict[str, list[float]] = {"admin": [], "principal": []}
        for _ in range(rounds):
            for who, token in (("admin", admin_token), ("principal", STAND_IN_TOKEN)):
                started, started_cpu = time.perf_counter(), time.process_time()
                for _ in range(per_round):
                    await call("GET", path, token, version="2023-07-03")
                wall[who].append((time.perf_counter() - started) / per_round * 1000)
                cpu[who].append((time.process_time() - started_cpu) / per_round * 1000)
        return {
            f"{who} {what}": statistics.median(ms[who]) for what, ms in (("wall", wall), ("cpu", cpu)) for who in ms
        }


def bench(db: str, rounds: int, per_round: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pg_name = None
        url = None
        if db == "postgresql":
            pg_name = f"vmg_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{pg_name}"')
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}"
        try:
            settings = Settings(data_dir=Path(tmp), database_url=url, workers=0, sync_wait_seconds=0)
            service = build_service(settings)
            app = build_app(service)
            admin_token = (Path(tmp) / "admin-token").read_text().strip()
            medians = asyncio.run(_run(app, admin_token, rounds, per_round))
            service.db.dispose()
        finally:
            if pg_name:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    for what in ("cpu", "wall"):
        admin, principal = medians[f"admin {what}"], medians[f"principal {what}"]
        ratio = principal / admin
        verdict = "ok" if ratio <= GOAL else "OVER GOAL"
        print(
            f"{db:10s} GET gallery, {what} per request: admin {admin:.3f} ms, principal (group Reader at subscription, "
            f"1,001 assignments) {principal:.3f} ms, ratio {ratio:.2f} (goal <= {GOAL}) {verdict}"
        )
    print(f"{'':10s} load average {os.getloadavg()[0]:.1f}")


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_https(db: str, rounds: int, per_round: int) -> None:
    import control_plane

    pg = control_plane.PgDatabase("rbac") if db == "postgresql" else None
    with tempfile.TemporaryDirectory() as tmp:
        server = control_plane.Server(Path(tmp) / "srv", pg.url if pg else None)
        try:
            admin = server.client()

            def ok(r: httpx.Response) -> dict:
                assert r.status_code < 300, r.text
                return r.json() if r.content else {}

            mgmt = "/vmgallery/identity"
            tenant = ok(admin.post(f"{mgmt}/tenants", json={"name": "bench"}))["tenantId"]
            sub = ok(admin.post(f"{mgmt}/subscriptions", json={"tenantId": tenant, "name": "bench"}))["subscriptionId"]
            group = ok(admin.post(f"{mgmt}/tenants/{tenant}/groups", json={"displayName": "readers"}))["objectId"]
            sp = ok(admin.post(f"{mgmt}/tenants/{tenant}/servicePrincipals", json={"displayName": "bench"}))
            ok(admin.post(f"{mgmt}/tenants/{tenant}/groups/{group}/members", json={"memberId": sp["objectId"]}))
            base = f"/subscriptions/{sub}/resourceGroups/rg"
            ok(admin.put(base, params={"api-version": "2024-11-01"}, json={"location": "eastus"}))
            gv = {"api-version": "2023-07-03"}
            for g in range(50):
                ok(
                    admin.put(
                        f"{base}/providers/Microsoft.Compute/galleries/g{g}", params=gv, json={"location": "eastus"}
                    )
                )
            av = {"api-version": "2022-04-01"}
            for i in range(1000):
                scope = (
                    f"/subscriptions/{sub}" if i % 2 else f"{base}/providers/Microsoft.Compute/galleries/g{i // 2 % 50}"
                )
                body = {
                    "properties": {"roleDefinitionId": rbac.READER.guid, "principalId": str(uuid.UUID(int=1000 + i))}
                }
                ok(
                    admin.put(
                        f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
                        params=av,
                        json=body,
                    )
                )
            body = {
                "properties": {"roleDefinitionId": rbac.READER.guid, "principalId": group, "principalType": "Group"}
            }
            ok(
                admin.put(
                    f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
                    params=av,
                    json=body,
                )
            )
            path = _version(admin, ok, base, gv)
            form = {
                "grant_type": "client_credentials",
                "client_id": sp["appId"],
                "client_secret": sp["password"],
                "scope": "https://management.azure.com/.default",
            }
            issued = time.perf_counter()
            for _ in range(TOKENS):
                token = ok(admin.post(f"/{tenant}/oauth2/v2.0/token", data=form, headers={"Authorization": ""}))
            tokens_per_s = TOKENS / (time.perf_counter() - issued)
            principal = server.client()
            principal.headers["Authorization"] = f"Bearer {token['access_token']}"
            ok(principal.get(path, params=gv))
            wall: dict[str, list[float]] = {"admin": [], "principal": []}
            cpu: dict[str, list[float]] = {"admin": [], "principal": []}
            for _ in range(rounds):
                for who, client in (("admin", admin), ("principal", principal)):
                    started, started_cpu = time.perf_counter(), _cpu(server.proc.pid)
                    for _ in range(per_round):
                        ok(client.get(path, params=gv))
                    wall[who].append((time.perf_counter() - started) / per_round * 1000)
                    cpu[who].append((_cpu(server.proc.pid) - started_cpu) / per_round * 1000)
        finally:
            server.stop()
            if pg:
                pg.drop()
    for what, ms in (("server cpu", cpu), ("wall", wall)):
        a, p = statistics.median(ms["admin"]), statistics.median(ms["principal"])
        verdict = "ok" if p / a <= GOAL else "OVER GOAL"
        print(
            f"{db:10s} HTTPS GET version, {what} per request: admin {a:.3f} ms, principal (token; group Reader at "
            f"subscription, 1,001 assignments) {p:.3f} ms, ratio {p / a:.2f} (goal <= {GOAL}) {verdict}"
        )
    print(f"{'':10s} token issuance (client credentials, one client): {tokens_per_s:.1f} tokens/s")
    print(f"{'':10s} load average {os.getloadavg()[0]:.1f}")


def _version(admin: httpx.Client, ok, base: str, gv: dict) -> str:
    """Version 1.0.0 of image `img` in gallery g1, from an empty 1 GiB disk; its path once it has succeeded."""
    compute = f"{base}/providers/Microsoft.Compute"
    definition = {
        "location": "eastus",
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "hyperVGeneration": "V2",
            "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
        },
    }
    ok(admin.put(f"{compute}/galleries/g1/images/img", params=gv, json=definition))
    disk = {"location": "eastus", "properties": {"diskSizeGB": 1, "creationData": {"createOption": "Empty"}}}
    disk_id = ok(admin.put(f"{compute}/disks/src", params={"api-version": "2023-04-02"}, json=disk))["id"]
    path = f"{compute}/galleries/g1/images/img/versions/1.0.0"
    body = {"location": "eastus", "properties": {"storageProfile": {"osDiskImage": {"source": {"id": disk_id}}}}}
    ok(admin.put(path, params=gv, json=body))
    deadline = time.monotonic() + 120
    while ok(admin.get(path, params=gv))["properties"]["provisioningState"] != "Succeeded":
        if time.monotonic() > deadline:
            raise RuntimeError("the version did not succeed within 2 minutes")
        time.sleep(0.2)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--https", action="store_true", help="over HTTPS with a real token, against a real server")
    args = parser.parse_args()
    ArmApi.authenticate = _stand_in(ArmApi.authenticate)  # type: ignore[method-assign]
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        (bench_https if args.https else bench)(db, args.rounds, args.per_round)


if __name__ == "__main__":
    main()
