"""Control-plane benchmark: create, GET and list throughput and latency for galleries and image definitions.

It starts a real `vmgallery serve` (SQLite, PostgreSQL or both, one after the other), drives it over HTTPS with
keep-alive httpx clients from N threads, and in the same run and process measures two baselines with the same
threads:

- the transport floor: GET /healthz on the same server (same TLS, same middleware, no database);
- the raw database: the same JSON rows inserted (one transaction each), fetched by key and paged directly with
  sqlite3 (WAL, synchronous=FULL, as the server configures it) or psycopg (autocommit) — the naive way to persist.

It prints time ratios project/baseline (1.0 = as fast as the baseline, 10 = ten times the time per operation) and
writes every figure as JSON. Absolute times are printed for context only; the machines are shared and noisy.
See bench/README.md.

    .venv/bin/python bench/control_plane.py --db both
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

GALLERY_API = "2026-03-03"
GROUP_API = "2024-11-01"
REGION = "eastus"
PG_ADMIN = os.environ.get("VMGALLERY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- measurement --------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One measured batch of operations: what ran, how many, how long each took."""

    name: str
    subject: str  # "vmgallery", "floor" or "raw-db"
    concurrency: int
    count: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    server_cpu_s: float | None = None
    unsettled: int = 0  # creates answered before their operation finished (201 + provisioningState Creating)

    @property
    def ops_per_s(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    def drift(self) -> float:
        """p50 of the last tenth of the operations over p50 of the first tenth: does it slow down as data grows?"""
        tenth = max(len(self.latencies_ms) // 10, 1)
        first, last = self.latencies_ms[:tenth], self.latencies_ms[-tenth:]
        return statistics.median(last) / statistics.median(first) if first else float("nan")

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "latencies_ms"}
        out.update(
            ops_per_s=round(self.ops_per_s, 1),
            p50_ms=round(self.pct(0.50), 3),
            p95_ms=round(self.pct(0.95), 3),
            p99_ms=round(self.pct(0.99), 3),
            max_ms=round(max(self.latencies_ms), 3) if self.latencies_ms else None,
            mean_ms=round(statistics.fmean(self.latencies_ms), 3) if self.latencies_ms else None,
            p50_last_over_first_tenth=round(self.drift(), 2) if self.latencies_ms else None,
        )
        if self.server_cpu_s is not None:
            out["server_cpu_ms_per_op"] = round(self.server_cpu_s * 1000 / self.count, 3)
        return out


def merge(a: Phase, b: Phase) -> Phase:
    return Phase(
        a.name,
        a.subject,
        a.concurrency,
        a.count + b.count,
        a.seconds + b.seconds,
        a.latencies_ms + b.latencies_ms,
        None if a.server_cpu_s is None or b.server_cpu_s is None else a.server_cpu_s + b.server_cpu_s,
    )


def run_phase(
    name: str, subject: str, items: list, op: Callable[[Any, Any], bool], sessions: list, server_pid: int | None = None
) -> Phase:
    """Run `op(session, item)` over `items` from one thread per session; `op` returns False for an unsettled
    create. The first exception stops the phase and is raised."""
    cursor = iter(items)
    lock = threading.Lock()
    latencies: list[float] = []  # in completion order (list.append is atomic)
    unsettled = [0] * len(sessions)
    failures: list[BaseException] = []

    def work(i: int) -> None:
        session = sessions[i]
        while not failures:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            t0 = time.perf_counter()
            try:
                settled = op(session, item)
            except BaseException as exc:  # surfaced to the caller below
                failures.append(exc)
                return
            latencies.append((time.perf_counter() - t0) * 1000)
            if settled is False:
                unsettled[i] += 1

    cpu0 = _cpu_seconds(server_pid)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(sessions))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    cpu1 = _cpu_seconds(server_pid)
    if failures:
        raise RuntimeError(f"{subject} {name}: {failures[0]!r}") from failures[0]
    return Phase(
        name,
        subject,
        len(sessions),
        len(latencies),
        seconds,
        latencies,
        None if cpu0 is None else cpu1 - cpu0,
        sum(unsettled),
    )


def _cpu_seconds(pid: int | None) -> float | None:
    """User+system CPU of a process (all its threads), from /proc."""
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# -- the server ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`vmgallery serve` in a temporary data dir, with quotas raised so the benchmark never hits them."""

    def __init__(self, data_dir: Path, database_url: str | None):
        self.data_dir = data_dir
        self.port = free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "config.toml").write_text(
            "[limits]\ngalleries_per_region = 100000\nimage_definitions_per_region = 100000\n"
        )
        args = [
            sys.executable,
            "-m",
            "vmgallery",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
            "--shutdown-timeout",
            "1",
        ]
        if database_url:
            args += ["--database-url", database_url]
        self.log_path = data_dir / "server.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._log)
        self._wait_ready()
        self.token = (data_dir / "admin-token").read_text().strip()
        self.tls = ssl.create_default_context(cafile=str(data_dir / "tls" / "cert.pem"))

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if "Application startup complete" in self.log_path.read_text():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start:\n" + self.log_path.read_text()[-4000:])

    def client(self) -> httpx.Client:
        """A keep-alive client whose TLS handshake is already done (so no phase pays for it)."""
        c = httpx.Client(
            base_url=self.url, verify=self.tls, timeout=60, headers={"Authorization": f"Bearer {self.token}"}
        )
        c.get("/healthz").raise_for_status()
        return c

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


class PgDatabase:
    """A throwaway PostgreSQL database, dropped by `drop()`."""

    def __init__(self, purpose: str):
        self.name = f"vmg_bench_{purpose}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{self.name}"

    def drop(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# -- the workload -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One resource of the workload: where it lives and what is PUT."""

    path: str  # ARM path, also the raw-db key
    parent: str  # ARM path of the parent, the raw-db list scope
    body: dict


def workload(
    subscription: str, group: str, galleries: int, definitions: int, spread: int
) -> tuple[list[Item], list[Item]]:
    base = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/galleries"
    gals = [
        Item(
            f"{base}/gal_{i:04d}",
            f"/subscriptions/{subscription}/resourceGroups/{group}",
            {"location": REGION, "properties": {"description": f"benchmark gallery {i}"}},
        )
        for i in range(galleries)
    ]
    defs = []
    for j in range(definitions):
        parent = gals[j % spread].path
        defs.append(
            Item(
                f"{parent}/images/def-{j:05d}",
                parent,
                {
                    "location": REGION,
                    "properties": {
                        "osType": "Linux",
                        "osState": "Generalized",
                        "hyperVGeneration": "V2",
                        "description": f"benchmark image definition {j}",
                        "identifier": {"publisher": "bench", "offer": "control-plane", "sku": f"s-{j:05d}"},
                    },
                },
            )
        )
    return gals, defs


def _settled(r: httpx.Response, ok: tuple[int, ...]) -> bool:
    if r.status_code not in ok:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
    return r.json().get("properties", {}).get("provisioningState") == "Succeeded"


def http_put(c: httpx.Client, item: Item) -> bool:
    return _settled(c.put(item.path, params={"api-version": GALLERY_API}, json=item.body), (200, 201))


def http_get(c: httpx.Client, item: Item) -> bool:
    return _settled(c.get(item.path, params={"api-version": GALLERY_API}), (200,))


def http_healthz(c: httpx.Client, _item) -> bool:
    r = c.get("/healthz")
    if r.status_code != 200:
        raise RuntimeError(f"/healthz: {r.status_code}")
    return True


def http_list_page(c: httpx.Client, page: tuple[str, dict]) -> bool:
    r = c.get(page[0], params=page[1])
    if r.status_code != 200:
        raise RuntimeError(f"list {page[0]}: {r.status_code} {r.text[:300]}")
    r.json()
    return True


def list_pages(server: Server, parents: Iterable[str]) -> list[tuple[str, dict]]:
    """Every page URL (path, query) of the definition lists, found by walking nextLink once."""
    pages = []
    with contextlib.closing(server.client()) as c:
        for parent in parents:
            url, params = f"{parent}/images", {"api-version": GALLERY_API}
            while True:
                pages.append((url, params))
                r = c.get(url, params=params)
                r.raise_for_status()
                nxt = r.json().get("nextLink")
                if not nxt:
                    break
                u = httpx.URL(nxt)
                url, params = u.path, dict(u.params)
    return pages


# -- the raw-database baseline ------------------------------------------------------------------------------------

RAW_TABLE = (
    "CREATE TABLE raw_resources (seq {serial} PRIMARY KEY, key TEXT NOT NULL UNIQUE, "
    "parent_key TEXT NOT NULL, body {json} NOT NULL)"
)
RAW_INDEX = "CREATE INDEX raw_parent ON raw_resources (parent_key, seq)"


class RawSqlite:
    """The naive way on SQLite: one connection per thread, one transaction per insert, the server's pragmas."""

    def __init__(self, path: Path):
        self.path = path
        with self.connect() as conn:
            conn.execute(RAW_TABLE.format(serial="INTEGER", json="TEXT"))
            conn.execute(RAW_INDEX)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    @staticmethod
    def insert(conn: sqlite3.Connection, item: Item) -> bool:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO raw_resources (key, parent_key, body) VALUES (?, ?, ?)",
            (item.path.lower(), item.parent.lower(), json.dumps(_stored(item))),
        )
        conn.execute("COMMIT")
        return True

    @staticmethod
    def get(conn: sqlite3.Connection, item: Item) -> bool:
        row = conn.execute("SELECT body FROM raw_resources WHERE key = ?", (item.path.lower(),)).fetchone()
        json.loads(row[0])
        return True

    @staticmethod
    def page(conn: sqlite3.Connection, page: tuple[str, int, int]) -> bool:
        parent, after, limit = page
        rows = conn.execute(
            "SELECT seq, body FROM raw_resources WHERE parent_key = ? AND seq > ? ORDER BY seq LIMIT ?",
            (parent, after, limit + 1),
        ).fetchall()
        [json.loads(b) for _, b in rows]
        return True

    def pages(self, parents: Iterable[str], limit: int) -> list[tuple[str, int, int]]:
        out = []
        with self.connect() as conn:
            for parent in parents:
                seqs = [
                    s
                    for (s,) in conn.execute(
                        "SELECT seq FROM raw_resources WHERE parent_key = ? ORDER BY seq", (parent.lower(),)
                    )
                ]
                out += [(parent.lower(), 0 if i == 0 else seqs[i - 1], limit) for i in range(0, len(seqs), limit)]
        return out


class RawPostgres:
    """The naive way on PostgreSQL: one connection per thread, autocommit (one transaction per insert)."""

    def __init__(self, url: str):
        self.url = url
        with self.connect() as conn:
            conn.execute(RAW_TABLE.format(serial="BIGSERIAL", json="JSON"))
            conn.execute(RAW_INDEX)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    @staticmethod
    def insert(conn: psycopg.Connection, item: Item) -> bool:
        conn.execute(
            "INSERT INTO raw_resources (key, parent_key, body) VALUES (%s, %s, %s)",
            (item.path.lower(), item.parent.lower(), json.dumps(_stored(item))),
        )
        return True

    @staticmethod
    def get(conn: psycopg.Connection, item: Item) -> bool:
        conn.execute("SELECT body FROM raw_resources WHERE key = %s", (item.path.lower(),)).fetchone()
        return True

    @staticmethod
    def page(conn: psycopg.Connection, page: tuple[str, int, int]) -> bool:
        parent, after, limit = page
        conn.execute(
            "SELECT seq, body FROM raw_resources WHERE parent_key = %s AND seq > %s ORDER BY seq LIMIT %s",
            (parent, after, limit + 1),
        ).fetchall()
        return True

    def pages(self, parents: Iterable[str], limit: int) -> list[tuple[str, int, int]]:
        out = []
        with self.connect() as conn:
            for parent in parents:
                seqs = [
                    s
                    for (s,) in conn.execute(
                        "SELECT seq FROM raw_resources WHERE parent_key = %s ORDER BY seq", (parent.lower(),)
                    )
                ]
                out += [(parent.lower(), 0 if i == 0 else seqs[i - 1], limit) for i in range(0, len(seqs), limit)]
        return out


def _stored(item: Item) -> dict:
    """About what the server stores: the request body with the ARM envelope filled in."""
    kind = "Microsoft.Compute/galleries/images" if "/images/" in item.path else "Microsoft.Compute/galleries"
    body = {"id": item.path, "name": item.path.rsplit("/", 1)[1], "type": kind, **item.body}
    body["properties"] = {**body.get("properties", {}), "provisioningState": "Succeeded"}
    return body


# -- one backend, all concurrency levels ---------------------------------------------------------------------------


def bench_backend(db: str, args: argparse.Namespace, tmp: Path) -> list[Phase]:
    pgs: list[PgDatabase] = []
    server = None
    try:
        if db == "postgresql":
            pgs = [PgDatabase("server"), PgDatabase("raw")]
            server = Server(tmp / f"{db}-server", pgs[0].url)
            raw: RawSqlite | RawPostgres = RawPostgres(pgs[1].url)
        else:
            server = Server(tmp / f"{db}-server", None)
            raw = RawSqlite(tmp / f"{db}-raw.db")
        print(f"[{db}] server pid {server.proc.pid} on {server.url}", file=sys.stderr)
        return Run(db, args, server, raw).phases()
    finally:
        if server is not None:
            server.stop()
        for pg in pgs:
            pg.drop()


def chunks(items: list, n: int) -> list[list]:
    """`items` cut into n contiguous parts of (nearly) equal size, in order."""
    size, extra = divmod(len(items), n)
    out, at = [], 0
    for i in range(n):
        out.append(items[at : at + size + (i < extra)])
        at += size + (i < extra)
    return out


class Run:
    """One backend's run. The data set (galleries, definitions) is created once, its creates divided among the
    concurrency levels in order; then every level reads all of it. Each level has its own keep-alive clients
    and raw-database connections, one per thread."""

    def __init__(self, db: str, args: argparse.Namespace, server: Server, raw):
        self.db, self.args, self.server, self.raw = db, args, server, raw
        self.out: list[Phase] = []

    def phases(self) -> list[Phase]:
        args, levels = self.args, self.args.concurrency
        subscription = str(uuid.uuid4())
        gals, defs = workload(subscription, "bench", args.galleries, args.definitions, args.spread)
        with contextlib.closing(self.server.client()) as c:
            c.put(
                f"/subscriptions/{subscription}/resourceGroups/bench",
                params={"api-version": GROUP_API},
                json={"location": REGION},
            ).raise_for_status()
        clients = {n: [self.server.client() for _ in range(n)] for n in levels}
        conns = {n: [self.raw.connect() for _ in range(n)] for n in levels}
        floor_n = max(args.floor_requests // 2, 1)
        floors: dict[int, list[Phase]] = {n: [] for n in levels}
        try:
            for n in levels:
                floors[n].append(self.floor(clients[n], floor_n))
            for n, part in zip(levels, chunks(gals, len(levels))):
                self.both("create gallery", part, http_put, None, self.raw.insert, clients[n], conns[n])
            for n, part in zip(levels, chunks(defs, len(levels))):
                self.both("create definition", part, http_put, None, self.raw.insert, clients[n], conns[n])
            parents = [g.path for g in gals[: args.spread]]
            http_pages = list_pages(self.server, parents) * args.list_passes
            raw_pages = self.raw.pages(parents, 100) * args.list_passes
            for n in levels:
                self.both("get definition", defs, http_get, None, self.raw.get, clients[n], conns[n])
                self.both("get gallery", gals, http_get, None, self.raw.get, clients[n], conns[n])
                self.both(
                    "list definitions", http_pages, http_list_page, raw_pages, self.raw.page, clients[n], conns[n]
                )
                floors[n].append(self.floor(clients[n], floor_n))
                self.out.append(merge(*floors[n]))
                self.say(self.out[-1], "healthz (floor)")
        finally:
            for cl in itertools.chain.from_iterable(clients.values()):
                cl.close()
            for cn in itertools.chain.from_iterable(conns.values()):
                cn.close()
        return self.out

    def floor(self, clients: list, count: int) -> Phase:
        return run_phase("healthz", "floor", list(range(count)), http_healthz, clients, self.server.proc.pid)

    def both(self, name: str, items: list, http_op, raw_items: list | None, raw_op, clients, conns) -> None:
        p = run_phase(name, "vmgallery", items, http_op, clients, self.server.proc.pid)
        b = run_phase(name, "raw-db", items if raw_items is None else raw_items, raw_op, conns)
        self.out += [p, b]
        self.say(p, name, b)

    def say(self, p: Phase, name: str, raw: Phase | None = None) -> None:
        line = f"[{self.db} c={p.concurrency}] {name:<18} {p.ops_per_s:8.1f}/s p50 {p.pct(0.5):7.2f} ms"
        if raw is not None:
            line += f"   raw-db {raw.ops_per_s:8.1f}/s p50 {raw.pct(0.5):7.3f} ms"
        print(line, file=sys.stderr, flush=True)


# -- report ---------------------------------------------------------------------------------------------------------


def ratios(phases: list[Phase]) -> list[dict[str, Any]]:
    """Time ratios project/baseline per operation and concurrency: per-operation wall time (1/throughput) and p50.
    `floor+raw` adds the floor's and the raw database's per-operation time: the cost of the naive service that
    does one HTTPS round trip and one SQL statement per request."""
    rows = []
    for p in phases:
        if p.subject != "vmgallery":
            continue
        floor = next(f for f in phases if f.subject == "floor" and f.concurrency == p.concurrency)
        raw = next(f for f in phases if f.subject == "raw-db" and f.concurrency == p.concurrency and f.name == p.name)
        per_op = 1 / p.ops_per_s
        rows.append(
            {
                "op": p.name,
                "concurrency": p.concurrency,
                "count": p.count,
                "ops_per_s": round(p.ops_per_s, 1),
                "p50_ms": round(p.pct(0.5), 2),
                "p95_ms": round(p.pct(0.95), 2),
                "p99_ms": round(p.pct(0.99), 2),
                "server_cpu_ms_per_op": round(p.server_cpu_s * 1000 / p.count, 2),
                "unsettled": p.unsettled,
                "drift": round(p.drift(), 2),
                "time_vs_floor": round(per_op * floor.ops_per_s, 2),
                "p50_vs_floor": round(p.pct(0.5) / floor.pct(0.5), 2),
                "time_vs_raw": round(per_op * raw.ops_per_s, 2),
                "p50_vs_raw": round(p.pct(0.5) / raw.pct(0.5), 2),
                "time_vs_floor_plus_raw": round(per_op / (1 / floor.ops_per_s + 1 / raw.ops_per_s), 2),
                "floor_server_cpu_ms_per_op": round(floor.server_cpu_s * 1000 / floor.count, 3),
            }
        )
    return rows


def print_table(db: str, rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'operation':<18} {'c':>2} {'n':>5} {'ops/s':>8} {'p50':>7} {'p95':>7} {'p99':>7} {'srvCPU':>7} "
        f"{'×floor':>7} {'p50×fl':>7} {'×raw':>7} {'p50×raw':>7} {'×fl+raw':>7} {'drift':>6}"
    )
    print(
        f"\n== {db}: time ratios project/baseline (per-op wall time; p50 where marked), "
        f"latencies and server CPU in ms/op =="
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['op']:<18} {r['concurrency']:>2} {r['count']:>5} {r['ops_per_s']:>8.1f} {r['p50_ms']:>7.2f} "
            f"{r['p95_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['server_cpu_ms_per_op']:>7.2f} "
            f"{r['time_vs_floor']:>7.2f} {r['p50_vs_floor']:>7.2f} {r['time_vs_raw']:>7.2f} "
            f"{r['p50_vs_raw']:>7.2f} {r['time_vs_floor_plus_raw']:>7.2f} {r['drift']:>6.2f}"
            + (f"  ({r['unsettled']} unsettled)" if r["unsettled"] else "")
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    ap.add_argument("--concurrency", default="1,8", help="comma-separated client thread counts (default 1,8)")
    ap.add_argument("--galleries", type=int, default=50, help="galleries created (split among the levels)")
    ap.add_argument("--definitions", type=int, default=2000, help="image definitions created (split among the levels)")
    ap.add_argument("--spread", type=int, default=4, help="galleries the definitions are spread over")
    ap.add_argument("--list-passes", type=int, default=2, help="times every list page is read")
    ap.add_argument("--floor-requests", type=int, default=600, help="GET /healthz requests per level")
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the results (default bench/results/control_plane-<time>.json)",
    )
    args = ap.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if not 1 <= args.spread <= args.galleries:
        ap.error("--spread must be between 1 and --galleries")
    dbs = ("sqlite", "postgresql") if args.db == "both" else (args.db,)

    started = time.time()
    report: dict[str, Any] = {
        "benchmark": "control_plane",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="vmg-bench-") as tmp:
        for db in dbs:
            phases = bench_backend(db, args, Path(tmp))
            rows = ratios(phases)
            report["backends"][db] = {"ratios": rows, "phases": [p.summary() for p in phases]}
            print_table(db, rows)
    report["seconds"] = round(time.time() - started, 1)
    out = args.json or Path(__file__).parent / "results" / f"control_plane-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwhole run {report['seconds']} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
