"""Control-plane CPU benchmark: the server's CPU per create and per GET against GET /healthz, and creates per second.

It starts a real `vmgallery serve` (as bench/control_plane.py does, whose server and client helpers it reuses),
creates image definitions and GETs them over keep-alive HTTPS, and reads the server process's CPU time (user +
system, every thread) from /proc before and after each batch. CPU time is the least noisy figure on a shared
machine: it counts what the server did, not how long it waited for a core. /healthz goes through the same TLS,
HTTP/1.1, uvicorn, FastAPI and middleware and skips authentication and the database: the floor of the stack.

Batches take turns (healthz, creates, GETs, `--rounds` times) and each figure is the median of its rounds. It
prints one line per figure with the goal beside it (issue 14), for bench/throughput.py to forward:

    .venv/bin/python bench/control_plane_cpu.py                   # SQLite
    .venv/bin/python bench/control_plane_cpu.py --db both
    .venv/bin/python bench/control_plane_cpu.py --profile         # also where the CPU goes (py-spy)
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from control_plane import (  # noqa: E402  (the sibling benchmark, not a package)
    CLOCK_TICKS,
    GALLERY_API,
    GROUP_API,
    REGION,
    PgDatabase,
    Server,
)

GOAL_CREATE_MS = 3.0
GOAL_GET_MS = 0.7

# Where a profile sample's time goes. A sample inside logging, JSON, the database driver or SQLAlchemy (checked in
# that order, anywhere in its stack) counts for that part; any other counts for the part of its innermost frame
# that names one.
ANYWHERE = (
    ("logging", ("/logging/", "vmgallery/logs.py")),
    ("json", ("/json/",)),
    ("db driver", ("sqlite3/", "psycopg/", "psycopg_binary")),
    ("sqlalchemy", ("sqlalchemy/",)),
)
INNERMOST = (
    ("tls+socket", ("/ssl.py", "asyncio/sslproto.py", "asyncio/selector_events.py", "selectors.py")),
    ("http (h11/httptools)", ("/h11/", "httptools", "uvicorn/")),
    ("asyncio+threads", ("asyncio/", "anyio/", "threading.py", "concurrent/futures")),
    ("starlette+fastapi", ("starlette/", "fastapi/", "pydantic")),
    ("vmgallery http", ("vmgallery/entrypoints/",)),
    ("vmgallery workers+ops", ("vmgallery/app/operations.py", "vmgallery/entrypoints/workers/")),
    ("vmgallery rules", ("vmgallery/domain/", "vmgallery/app/")),
    ("vmgallery store", ("vmgallery/adapters/",)),
)


def _user_system(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


SYSTEM_MS: dict[str, list[float]] = collections.defaultdict(list)  # the kernel's share, per batch name


def cpu_ms_per_op(pid: int, count: int, run, name: str = "") -> tuple[float, float]:
    """(server CPU ms per operation, seconds of wall time) of `run()`, which performs `count` operations."""
    user0, sys0 = _user_system(pid)
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    user1, sys1 = _user_system(pid)
    SYSTEM_MS[name].append((sys1 - sys0) * 1000 / count)
    return (user1 + sys1 - user0 - sys0) * 1000 / count, seconds


class Workload:
    """Image definitions in one gallery: each create is a PUT that the server finishes inline (an LRO)."""

    def __init__(self, server: Server):
        self.server = server
        sub = str(uuid.uuid4())
        self.group = f"/subscriptions/{sub}/resourceGroups/cpu"
        self.gallery = f"{self.group}/providers/Microsoft.Compute/galleries/cpu"
        self.made: list[str] = []
        self.unsettled = 0
        self._next = 0
        self._lock = threading.Lock()
        with contextlib.closing(server.client()) as c:
            c.put(self.group, params={"api-version": GROUP_API}, json={"location": REGION}).raise_for_status()
            c.put(self.gallery, params={"api-version": GALLERY_API}, json={"location": REGION}).raise_for_status()

    def _name(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def create(self, c) -> None:
        j = self._name()
        path = f"{self.gallery}/images/def-{j:06d}"
        r = c.put(
            path,
            params={"api-version": GALLERY_API},
            json={
                "location": REGION,
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "hyperVGeneration": "V2",
                    "description": f"benchmark image definition {j}",
                    "identifier": {"publisher": "bench", "offer": "cpu", "sku": f"s-{j:06d}"},
                },
            },
        )
        if r.status_code not in (200, 201):
            raise RuntimeError(f"PUT {path}: {r.status_code} {r.text[:300]}")
        if r.json()["properties"]["provisioningState"] != "Succeeded":
            self.unsettled += 1
        self.made.append(path)

    def get(self, c, path: str) -> None:
        r = c.get(path, params={"api-version": GALLERY_API})
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
        r.json()

    @staticmethod
    def healthz(c) -> None:
        r = c.get("/healthz")
        if r.status_code != 200:
            raise RuntimeError(f"/healthz: {r.status_code}")


def in_threads(clients: list, count: int, op) -> None:
    """`op(client)` `count` times, spread over one thread per client."""
    left = [count]
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work(c) -> None:
        while not failures:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            try:
                op(c)
            except BaseException as exc:  # surfaced below
                failures.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]


class Profiler:
    """py-spy sampling the server (every thread, CPU only: idle threads are not sampled) during a batch."""

    def __init__(self, pid: int, out_dir: Path):
        self.pid, self.out_dir = pid, out_dir
        self.exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

    @contextlib.contextmanager
    def record(self, name: str):
        out = self.out_dir / f"{name}.txt"
        proc = subprocess.Popen(
            [
                self.exe,
                "record",
                "--pid",
                str(self.pid),
                "--format",
                "raw",
                "--rate",
                "500",
                "--gil",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attaches
        try:
            yield
        finally:
            proc.send_signal(2)
            proc.wait(30)

    def split(self, name: str) -> dict[str, float]:
        """Percent of the samples per part (ANYWHERE, INNERMOST)."""
        counts: collections.Counter[str] = collections.Counter()
        path = self.out_dir / f"{name}.txt"
        for line in path.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            part = next((p for p, pats in ANYWHERE if any(s in stack for s in pats)), "")
            for frame in reversed(stack.split(";") if not part else ()):
                part = next((p for p, pats in INNERMOST if any(s in frame for s in pats)), "")
                if part:
                    break
            counts[part or "other"] += int(n)
        total = sum(counts.values()) or 1
        return {k: round(v * 100 / total, 1) for k, v in counts.most_common()}


def bench_backend(db: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    pg = PgDatabase("cpu") if db == "postgresql" else None
    server = Server(tmp / f"{db}-server", pg.url if pg else None)
    try:
        return measure(db, args, server, tmp)
    finally:
        server.stop()
        if pg is not None:
            pg.drop()


def measure(db: str, args: argparse.Namespace, server: Server, tmp: Path) -> dict[str, Any]:
    pid, n = server.proc.pid, args.ops
    SYSTEM_MS.clear()
    w = Workload(server)
    one = [server.client()]
    many = [server.client() for _ in range(max(args.clients))]
    say = lambda s: print(f"[{db}] {s}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        # Warm-up: imports, statement caches, connection pools, the first page of each table.
        for _ in range(args.warmup):
            w.healthz(one[0])
            w.create(one[0])
            w.get(one[0], w.made[-1])
        rounds: dict[str, list[float]] = {"healthz": [], "create": [], "get": []}
        wall: dict[str, list[float]] = {"create": []}
        for r in range(args.rounds):
            ms, _ = cpu_ms_per_op(pid, n, lambda: [w.healthz(one[0]) for _ in range(n)], "healthz")
            rounds["healthz"].append(ms)
            ms, s = cpu_ms_per_op(pid, n, lambda: [w.create(one[0]) for _ in range(n)], "create")
            rounds["create"].append(ms)
            wall["create"].append(n / s)
            paths = w.made[-n:]
            ms, _ = cpu_ms_per_op(pid, n, lambda: [w.get(one[0], p) for p in paths], "get")
            rounds["get"].append(ms)
            say(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in rounds.items()) + " CPU-ms/op")
        rates: dict[int, dict[str, float]] = {}
        for c in args.clients:
            ms, s = cpu_ms_per_op(pid, n, lambda: in_threads(many[:c], n, w.create))
            rates[c] = {"creates_per_s": n / s, "cpu_ms_per_create": ms}
            say(f"{c} client(s): {n / s:.1f} creates/s, {ms:.2f} CPU-ms/create")
        profile: dict[str, dict[str, float]] = {}
        if args.profile:
            prof = Profiler(pid, tmp)
            with prof.record("create"):
                for _ in range(n):
                    w.create(one[0])
            paths = w.made[-n:]
            with prof.record("get"):
                for _ in range(3):
                    for p in paths:
                        w.get(one[0], p)
            with prof.record("healthz"):
                for _ in range(3 * n):
                    w.healthz(one[0])
            profile = {k: prof.split(k) for k in ("create", "get", "healthz")}
            if args.keep_profiles:
                args.keep_profiles.mkdir(parents=True, exist_ok=True)
                for k in profile:
                    shutil.copy(tmp / f"{k}.txt", args.keep_profiles / f"{db}-{k}.txt")
    finally:
        for c in one + many:
            c.close()
    med = {k: statistics.median(v) for k, v in rounds.items()}
    return {
        "cpu_ms_per_op": {k: round(v, 3) for k, v in med.items()},
        "cpu_ms_per_op_rounds": {k: [round(x, 3) for x in v] for k, v in rounds.items()},
        "system_cpu_ms_per_op": {k: round(statistics.median(SYSTEM_MS[k]), 3) for k in rounds},
        "creates_per_s_1_client_rounds": [round(x, 1) for x in wall["create"]],
        "clients": {str(c): {k: round(v, 2) for k, v in d.items()} for c, d in rates.items()},
        "unsettled_creates": w.unsettled,
        "profile_percent": profile,
    }


def report_lines(db: str, res: dict[str, Any]) -> list[str]:
    cpu = res["cpu_ms_per_op"]
    h, c, g = cpu["healthz"], cpu["create"], cpu["get"]
    kernel = res["system_cpu_ms_per_op"]
    lines = [
        f"[{db}] healthz: {h:.2f} CPU-ms/op (the stack's floor, reference)",
        f"[{db}] create: {c:.2f} CPU-ms/op (goal <= {GOAL_CREATE_MS:g}: {'met' if c <= GOAL_CREATE_MS else 'NOT met'});"
        f" net of healthz {c - h:.2f}",
        f"[{db}] get: {g:.2f} CPU-ms/op absolute (goal <= {GOAL_GET_MS:g}: {'met' if g <= GOAL_GET_MS else 'NOT met'});"
        f" net of healthz {g - h:.2f} (goal <= {GOAL_GET_MS:g}: {'met' if g - h <= GOAL_GET_MS else 'NOT met'})",
    ]
    lines.append(f"[{db}] of which in the kernel: " + ", ".join(f"{k} {v:.2f}" for k, v in kernel.items()))
    for n, d in res["clients"].items():
        lines.append(
            f"[{db}] creates/s at {n} client{'s' if n != '1' else ''}: {d['creates_per_s']:.1f}/s"
            f" ({d['cpu_ms_per_create']:.2f} CPU-ms/create)"
        )
    if res["unsettled_creates"]:
        lines.append(f"[{db}] note: {res['unsettled_creates']} creates answered before their operation finished")
    for op, split in res["profile_percent"].items():
        lines.append(f"[{db}] profile {op}: " + ", ".join(f"{k} {v:g}%" for k, v in split.items()))
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    ap.add_argument("--ops", type=int, default=300, help="operations per batch (default 300)")
    ap.add_argument("--rounds", type=int, default=3, help="batches of each kind, taking turns (default 3)")
    ap.add_argument("--warmup", type=int, default=30, help="requests of each kind before measuring")
    ap.add_argument("--clients", default="1,8", help="client threads for the creates/s figures (default 1,8)")
    ap.add_argument("--profile", action="store_true", help="sample the server with py-spy; print the split")
    ap.add_argument("--keep-profiles", type=Path, default=None, help="copy py-spy's raw stacks into this folder")
    ap.add_argument("--json", type=Path, default=None, help="default bench/results/control_plane_cpu-<time>.json")
    args = ap.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",")]
    dbs = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    report: dict[str, Any] = {
        "benchmark": "control_plane_cpu",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="vmg-bench-cpu-") as tmp:
        for db in dbs:
            res = bench_backend(db, args, Path(tmp))
            report["backends"][db] = res
            for line in report_lines(db, res):
                print(line, flush=True)
    out = args.json or Path(__file__).parent / "results" / f"control_plane_cpu-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
