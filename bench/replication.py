"""Replication benchmark: a version copied to two more regions, against `cp` of the same bytes twice.

It starts a real `vmgallery serve` (SQLite, 1 MiB chunks, regions eastus, westus and westeurope, several worker
threads) in a temporary data dir, uploads a random disk (1 GiB + a 512-byte VHD footer) through the page-blob
protocol with the Azure SDK, and makes a version of it in eastus only. Then, in the same run:

- full replication: the version's targetRegions updated to add westus and westeurope, timed from the update's
  acceptance to the moment both replicas are Completed (the replica rows' own commit times). Baseline, measured
  just before and just after: `cp` of the same uploaded file to two destinations on the same file system, without
  and with a `sync` of the copies (vmgallery makes every chunk durable before a replica is Completed, so the durable
  copy is the fair one). `--rounds` repeats the full replication with fresh random versions, each between two
  baselines, and prints every round's ratio and the median (the machines are noisy);
- incremental replication: a second version whose disk differs in 1 % of its 1 MiB blocks (scattered), replicated
  the same way. The bytes it moved come from the engine's own counters (the replica rows' bytes_copied, and the
  server's /metrics), as a share of the version's size; its time is compared with the full replication's.

The uploads are not timed. Absolute times are printed for context only; the machines are shared and noisy.
See bench/README.md.

    .venv/bin/python bench/replication.py                  # 1 GiB, about 3 minutes on 2 cores
    .venv/bin/python bench/replication.py --size-mib 128
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
from pathlib import Path
from typing import Any

import httpx
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.mgmt.compute import ComputeManagementClient
from azure.storage.blob import BlobClient

from vmgallery.domain.vhd import vhd_footer

MiB = 1 << 20
PAGE = 4 * MiB
BLOCK = MiB  # the server's default chunk size: the unit the second version changes
SOURCE = "eastus"
TARGETS = ("westus", "westeurope")
VERSION_API = "2024-03-03"
GROUP_API = "2024-11-01"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the images -----------------------------------------------------------------------------------------------------


def make_disk(path: Path, raw: int, rng: random.Random) -> None:
    """Random bytes (nothing to compress, no holes) and a VHD footer, written in 64 MiB pieces."""
    with open(path, "wb") as f:
        left = raw
        while left:
            n = min(left, 64 * MiB)
            f.write(rng.randbytes(n))
            left -= n
        f.write(vhd_footer(raw))


def change_blocks(src: Path, dst: Path, raw: int, share: float, rng: random.Random) -> list[int]:
    """A copy of `src` with 4 KiB of new random bytes in `share` of its 1 MiB blocks, chosen at random."""
    subprocess.run(["cp", "--reflink=never", str(src), str(dst)], check=True)
    blocks = raw // BLOCK
    chosen = sorted(rng.sample(range(blocks), max(1, round(blocks * share))))
    with open(dst, "r+b") as f:
        for b in chosen:
            f.seek(b * BLOCK + rng.randrange(0, BLOCK - 4096, 4096))
            f.write(rng.randbytes(4096))
    return chosen


# -- the server -----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StaticToken:
    """A TokenCredential holding the server's admin bearer token."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None) -> AccessTokenInfo:
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


class Server:
    """`vmgallery serve` in a temporary data dir with three regions and `workers` worker threads."""

    def __init__(self, data_dir: Path, workers: int):
        self.data_dir = data_dir
        self.port = free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        regions = [SOURCE, *TARGETS]
        (data_dir / "config.toml").write_text(f"regions = {json.dumps(regions)}\nworkers = {workers}\n")
        self.log_path = data_dir / "server.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [
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
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + 60
        # uvicorn logs "Uvicorn running on" once the socket listens; "Application startup complete" comes earlier.
        while "Uvicorn running on" not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start:\n" + self.log_path.read_text()[-4000:])
            time.sleep(0.05)
        self.token = (data_dir / "admin-token").read_text().strip()
        self.ca = str(data_dir / "tls" / "cert.pem")
        self.url = f"https://127.0.0.1:{self.port}"

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=self.ca),
            timeout=120,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def compute(self, subscription: str) -> ComputeManagementClient:
        return ComputeManagementClient(
            StaticToken(self.token),
            subscription,
            base_url=self.url,
            credential_scopes=["https://management.azure.com/.default"],
            connection_verify=self.ca,
            polling_interval=0.2,
        )

    def cpu_seconds(self) -> tuple[float, float]:
        """The server's user and system CPU seconds so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS

    def metric(self, name: str) -> float:
        with self.http() as c:
            for line in c.get("/metrics").text.splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[-1])
        raise KeyError(name)

    def replicas(self, version: str) -> dict[str, dict[str, Any]]:
        """The replica rows of a version, straight from the server's database (read-only)."""
        conn = sqlite3.connect(f"file:{self.data_dir / 'vmgallery.db'}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT region, idx, state, bytes_total, bytes_copied, chunks_copied, updated_at "
                "FROM replicas WHERE version_key LIKE ?",
                (f"%/versions/{version}",),
            ).fetchall()
        finally:
            conn.close()
        return {
            r[0]: dict(zip(("region", "idx", "state", "bytes_total", "bytes_copied", "chunks_copied", "updated_at"), r))
            for r in rows
            if r[1] == 0
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


class Gallery:
    """One subscription, resource group, gallery and image definition on the server."""

    def __init__(self, server: Server):
        self.server = server
        self.sub = "00000000-0000-0000-0000-00000000be4c"
        with server.http() as c:
            c.put(
                f"/subscriptions/{self.sub}/resourceGroups/rg",
                params={"api-version": GROUP_API},
                json={"location": SOURCE},
            ).raise_for_status()
        self.compute = server.compute(self.sub)
        self.compute.galleries.begin_create_or_update("rg", "bench", {"location": SOURCE}).result()
        self.compute.gallery_images.begin_create_or_update(
            "rg",
            "bench",
            "img",
            {
                "location": SOURCE,
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
                },
            },
        ).result()

    def path(self, version: str) -> str:
        return (
            f"/subscriptions/{self.sub}/resourceGroups/rg/providers/Microsoft.Compute/galleries/bench/images/"
            f"img/versions/{version}"
        )

    def upload(self, name: str, image: Path, threads: int) -> str:
        """A managed disk filled from `image` in 4 MiB page writes from several threads (not timed)."""
        c = self.compute
        size = image.stat().st_size
        c.disks.begin_create_or_update(
            "rg",
            name,
            {
                "location": SOURCE,
                "properties": {"osType": "Linux", "creationData": {"createOption": "Upload", "uploadSizeBytes": size}},
            },
        ).result()
        sas = c.disks.begin_grant_access("rg", name, {"access": "Write", "durationInSeconds": 3600}).result()
        offsets = iter(range(0, size, PAGE))
        lock = threading.Lock()
        failures: list[BaseException] = []

        def work() -> None:
            client = BlobClient.from_blob_url(sas.access_sas, connection_verify=self.server.ca)
            with open(image, "rb", buffering=0) as f:
                while not failures:
                    with lock:
                        offset = next(offsets, None)
                    if offset is None:
                        return
                    piece = os.pread(f.fileno(), PAGE, offset)
                    try:
                        client.upload_page(piece, offset=offset, length=len(piece))
                    except BaseException as exc:
                        failures.append(exc)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        if failures:
            raise failures[0]
        c.disks.begin_revoke_access("rg", name).result()
        return c.disks.get("rg", name).id

    def version(self, name: str, disk_id: str) -> None:
        self.compute.gallery_image_versions.begin_create_or_update(
            "rg",
            "bench",
            "img",
            name,
            {
                "location": SOURCE,
                "properties": {
                    "publishingProfile": {"targetRegions": [{"name": SOURCE}]},
                    "storageProfile": {"osDiskImage": {"source": {"id": disk_id}}},
                },
            },
        ).result()

    def replicate(self, name: str, poll: float) -> dict[str, Any]:
        """Add the target regions to a version and wait until both are Completed. The time runs from the moment
        the update is accepted to the last replica row's commit (the server's clock, the same host's)."""
        body = {"properties": {"publishingProfile": {"targetRegions": [{"name": r} for r in (SOURCE, *TARGETS)]}}}
        cpu0 = self.server.cpu_seconds()
        with self.server.http() as c:
            sent = time.time()
            r = c.patch(self.path(name), params={"api-version": VERSION_API}, json=body)
            accepted = time.time()
            if r.status_code not in (200, 201, 202):
                raise RuntimeError(f"update of {name}: {r.status_code} {r.text[:300]}")
            deadline = time.monotonic() + 1800
            while True:
                status = c.get(self.path(name), params={"api-version": VERSION_API, "$expand": "ReplicationStatus"})
                summary = {s["region"]: s for s in status.json()["properties"]["replicationStatus"]["summary"]}
                if all(summary.get(t, {}).get("state") == "Completed" for t in TARGETS):
                    seen = time.time()
                    break
                failed = [s for s in summary.values() if s.get("state") == "Failed"]
                if failed or time.monotonic() > deadline:
                    raise RuntimeError(f"replication of {name} did not complete: {summary}")
                time.sleep(poll)
        user, system = (b - a for a, b in zip(cpu0, self.server.cpu_seconds()))
        rows = self.server.replicas(name)
        done = max(rows[t]["updated_at"] for t in TARGETS)
        return {
            "request_s": accepted - sent,
            "seconds": done - accepted,
            "seen_s": seen - accepted,
            "server_cpu_s": user + system,
            "server_user_s": user,
            "server_sys_s": system,
            "replicas": {t: rows[t] for t in TARGETS},
        }


# -- the baseline ---------------------------------------------------------------------------------------------------


def cp_twice(image: Path, tmp: Path) -> dict[str, float]:
    """`cp` of the image to two destinations on the same file system, then `sync` of the two copies."""
    dsts = [tmp / "copy-1", tmp / "copy-2"]
    subprocess.run(["sync"], check=True)  # start with nothing dirty: earlier steps' writeback is not ours to pay
    t0 = time.perf_counter()
    for d in dsts:
        subprocess.run(["cp", "--reflink=never", str(image), str(d)], check=True)
    t1 = time.perf_counter()
    subprocess.run(["sync", *map(str, dsts)], check=True)
    t2 = time.perf_counter()
    for d in dsts:
        d.unlink()
    return {"cp_s": t1 - t0, "sync_s": t2 - t1, "cp_sync_s": t2 - t0}


# -- the run --------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size-mib", type=int, default=1024, help="raw disk size in MiB (default 1024)")
    ap.add_argument(
        "--change-pct", type=float, default=1.0, help="share of the 1 MiB blocks the second version changes (default 1)"
    )
    ap.add_argument("--workers", type=int, default=4, help="the server's worker threads (default 4)")
    ap.add_argument("--upload-threads", type=int, default=4)
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between status polls (default 0.1)")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="full replications, each of a fresh random version between two baselines (default 3)",
    )
    ap.add_argument("--seed", type=int, default=20260303)
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the results (default bench/results/replication-<time>.json)",
    )
    args = ap.parse_args(argv)
    if args.size_mib < 16:
        ap.error("--size-mib must be at least 16")
    raw = args.size_mib * MiB
    rng = random.Random(args.seed)
    started = time.time()
    report: dict[str, Any] = {
        "benchmark": "replication",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }

    def say(text: str) -> None:
        print(f"[{time.time() - started:6.1f} s] {text}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="vmg-bench-repl-") as tmpdir:
        tmp = Path(tmpdir)
        base, changed = tmp / "base.vhd", tmp / "changed.vhd"
        make_disk(base, raw, rng)
        blocks = change_blocks(base, changed, raw, args.change_pct / 100, rng)
        size = base.stat().st_size
        say(
            f"images: {args.size_mib} MiB random + footer; the second differs in {len(blocks)} of "
            f"{raw // BLOCK} 1 MiB blocks"
        )
        server = Server(tmp / "server", args.workers)
        try:
            gallery = Gallery(server)
            t0 = time.perf_counter()
            gallery.version("1.0.0", gallery.upload("base", base, args.upload_threads))
            say(f"uploaded and captured 1.0.0 in {time.perf_counter() - t0:.1f} s (not timed)")

            baselines = [cp_twice(base, tmp)]
            say(f"baseline: cp x2 {baselines[-1]['cp_s']:.2f} s, + sync {baselines[-1]['cp_sync_s']:.2f} s")
            fulls = []
            for k in range(args.rounds):
                name = "1.0.0" if k == 0 else f"2.0.{k}"
                if k:  # a fresh random disk, so nothing is already in the target regions
                    make_disk(base, raw, rng)
                    gallery.version(name, gallery.upload(f"round{k}", base, args.upload_threads))
                    say(f"round {k + 1}: uploaded and captured {name} (not timed)")
                subprocess.run(["sync"], check=True)
                fulls.append(gallery.replicate(name, args.poll))
                say(
                    f"full replication of {name}: {fulls[-1]['seconds']:.2f} s "
                    f"(server CPU {fulls[-1]['server_user_s']:.1f} s user + {fulls[-1]['server_sys_s']:.1f} s system)"
                )
                baselines.append(cp_twice(base, tmp))
                say(f"baseline: cp x2 {baselines[-1]['cp_s']:.2f} s, + sync {baselines[-1]['cp_sync_s']:.2f} s")
            full = fulls[0]
            before, after = baselines[0], baselines[1]

            t0 = time.perf_counter()
            gallery.version("1.0.1", gallery.upload("changed", changed, args.upload_threads))
            say(f"uploaded and captured 1.0.1 in {time.perf_counter() - t0:.1f} s (not timed)")
            copied_before = server.metric("vmgallery_replication_bytes_copied_total")
            subprocess.run(["sync"], check=True)
            incremental = gallery.replicate("1.0.1", args.poll)
            metric_moved = server.metric("vmgallery_replication_bytes_copied_total") - copied_before
            say(f"incremental replication: {incremental['seconds']:.2f} s")
        finally:
            server.stop()

    cp_s = (before["cp_s"] + after["cp_s"]) / 2
    cp_sync_s = (before["cp_sync_s"] + after["cp_sync_s"]) / 2
    moved = {t: incremental["replicas"][t]["bytes_copied"] for t in TARGETS}
    full_moved = {t: full["replicas"][t]["bytes_copied"] for t in TARGETS}
    round_ratios = [
        f["seconds"] / ((baselines[k]["cp_sync_s"] + baselines[k + 1]["cp_sync_s"]) / 2) for k, f in enumerate(fulls)
    ]
    report.update(
        disk_bytes=size,
        changed_blocks=len(blocks),
        baseline={"before": before, "after": after},
        baselines=baselines,
        rounds=fulls,
        round_ratios_over_cp_sync=round_ratios,
        full=full,
        incremental=incremental,
        incremental_metric_bytes=metric_moved,
        ratios={
            "full_over_cp_sync": full["seconds"] / cp_sync_s,
            "full_over_cp": full["seconds"] / cp_s,
            "full_over_cp_sync_median": statistics.median(round_ratios),
            "incremental_over_full": incremental["seconds"] / full["seconds"],
        },
        moved_pct={t: 100 * moved[t] / size for t in TARGETS},
        ideal_pct=100 * len(blocks) * BLOCK / size,
    )

    gib = size / (1 << 30)
    print(
        f"\nReplication of a {args.size_mib} MiB random disk (+ footer) from {SOURCE} to {' and '.join(TARGETS)}; "
        f"{os.cpu_count()} CPUs, {args.workers} worker threads\n"
    )
    print(f"{'':34}{'seconds':>9}{'before':>9}{'after':>9}")
    print(f"{'cp x2 (no sync)':34}{cp_s:9.2f}{before['cp_s']:9.2f}{after['cp_s']:9.2f}")
    print(f"{'cp x2 + sync of the copies':34}{cp_sync_s:9.2f}{before['cp_sync_s']:9.2f}{after['cp_sync_s']:9.2f}")
    print(
        f"{'full replication':34}{full['seconds']:9.2f}   ({2 * gib / full['seconds'] * 1024:.0f} MiB/s written, "
        f"server CPU {full['server_cpu_s']:.1f} s = {full['server_cpu_s'] / full['seconds']:.2f} cores)"
    )
    print(f"{'incremental replication':34}{incremental['seconds']:9.2f}")
    print(f"\n  full / (cp x2 + sync)     {report['ratios']['full_over_cp_sync']:.2f}x   (goal <= 1.3x)")
    print(f"  full / (cp x2, no sync)   {report['ratios']['full_over_cp']:.2f}x")
    if len(fulls) > 1:
        print(
            "  every round, each against the baselines either side of it: "
            + ", ".join(f"{r:.2f}x" for r in round_ratios)
            + f"; median {report['ratios']['full_over_cp_sync_median']:.2f}x"
        )
    print(f"  incremental / full        {report['ratios']['incremental_over_full']:.3f}x")
    print("\n  full: bytes copied " + ", ".join(f"{t} {full_moved[t] / size:.1%}" for t in TARGETS) + " of the disk")
    print(
        "  incremental: bytes copied "
        + ", ".join(f"{t} {report['moved_pct'][t]:.2f}%" for t in TARGETS)
        + f" of the disk (goal <= 2%); /metrics counted {metric_moved / (2 * size):.2%} per region; "
        f"the changed 1 MiB blocks are {report['ideal_pct']:.2f}%"
    )
    print(
        f"  status seen by polling {full['seen_s'] - full['seconds']:+.2f} s (full) and "
        f"{incremental['seen_s'] - incremental['seconds']:+.2f} s (incremental) after the replicas' commits; "
        f"the update requests took {full['request_s'] * 1000:.0f} and {incremental['request_s'] * 1000:.0f} ms"
    )

    report["seconds"] = round(time.time() - started, 1)
    out = args.json or Path(__file__).parent / "results" / f"replication-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwhole run {report['seconds']} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
