"""Activity log benchmark: what recording adds to a write.

A resource group PUT (a synchronous ARM write: one transaction) by the admin, through the real service
(`wiring.build_service`, migrations, the real store) and the real ASGI app driven by httpx's ASGI transport, with the
activity log recording (one INSERT in its own transaction, after the response is decided) against the same app built
without it, on SQLite and PostgreSQL. Rounds alternate the two. Goal: with/without median <= 1.2.

    .venv/bin/python bench/activity_log.py --db both
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
from vmgallery.wiring import build_app, build_service

PG_ADMIN = os.environ.get("VMGALLERY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
GOAL = 1.2
SUB = "11111111-1111-1111-1111-111111111111"


async def _run(apps: dict, token: str, rounds: int, per_round: int) -> dict[str, float]:
    clients = {
        who: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://b")
        for who, app in apps.items()
    }
    wall: dict[str, list[float]] = {who: [] for who in apps}
    cpu: dict[str, list[float]] = {who: [] for who in apps}
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(rounds):
            for who, client in clients.items():
                started, started_cpu = time.perf_counter(), time.process_time()
                for i in range(per_round):
                    r = await client.put(
                        f"/subscriptions/{SUB}/resourceGroups/rg{i % 10}",
                        params={"api-version": "2024-11-01"},
                        json={"location": "eastus", "tags": {"n": str(i)}},
                        headers=headers,
                    )
                    assert r.status_code < 300, r.text
                wall[who].append((time.perf_counter() - started) / per_round * 1000)
                cpu[who].append((time.process_time() - started_cpu) / per_round * 1000)
    finally:
        for client in clients.values():
            await client.aclose()
    return {f"{who} {what}": statistics.median(ms[who]) for what, ms in (("wall", wall), ("cpu", cpu)) for who in ms}


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
            service = build_service(Settings(data_dir=Path(tmp), database_url=url, workers=0, sync_wait_seconds=0))
            apps = {"recording": build_app(service)}
            service.activity = None  # type: ignore[assignment]  # the same service, its app built without the log
            apps["not recording"] = build_app(service)
            token = (Path(tmp) / "admin-token").read_text().strip()
            medians = asyncio.run(_run(apps, token, rounds, per_round))
            service.db.dispose()
        finally:
            if pg_name:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    for what in ("cpu", "wall"):
        on, off = medians[f"recording {what}"], medians[f"not recording {what}"]
        verdict = "ok" if on / off <= GOAL else "OVER GOAL"
        print(
            f"{db:10s} resource group PUT, {what} per request: recording {on:.3f} ms, not recording {off:.3f} ms, "
            f"ratio {on / off:.2f} (goal <= {GOAL}) {verdict}"
        )
    print(f"{'':10s} load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=50)
    args = parser.parse_args()
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        bench(db, args.rounds, args.per_round)


if __name__ == "__main__":
    main()
