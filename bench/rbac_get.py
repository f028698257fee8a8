"""RBAC benchmark: what the authorization check adds to a GET.

A gallery GET as a principal whose access comes from a group's Reader role at the subscription, with 1,000 other
role assignments in the database (each to another principal, half at the subscription, half on 50 galleries), against
the same GET as the admin (which skips the check), on SQLite and PostgreSQL, in one process: the real service
(`wiring.build_service`, migrations, the real store) and the real ASGI app, driven by httpx's ASGI transport, so the
figure is the server's own work without TLS and socket noise (which would only shrink the ratio). The principal is
put on the request by replacing the app's token check for one token (a stand-in for the identity authority, named
`STAND_IN_TOKEN`); everything after authentication is the code under test. Rounds alternate admin and principal.
Goal: principal/admin median <= 1.2.

    .venv/bin/python bench/rbac_get.py --db both
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=100)
    args = parser.parse_args()
    ArmApi.authenticate = _stand_in(ArmApi.authenticate)  # type: ignore[method-assign]
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        bench(db, args.rounds, args.per_round)


if __name__ == "__main__":
    main()
