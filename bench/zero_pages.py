"""Zero pages benchmark: what all-zero page writes and `clear_page` cost, against the same upload of data pages.

1. scan: how a page write tells that a 1 MiB chunk of its body is all zeros, for the candidate checks (a compare
   against a preallocated zero buffer in place with `startswith` or on a slice, `count(0)`, `int.from_bytes`, a
   `Q`-cast memoryview compare, `any()` over a memoryview), against the BLAKE3 digest a stored chunk costs.
2. upload: a real `vmgallery serve` (SQLite, 1 MiB chunks) in a temporary directory; the Azure SDK uploads a disk
   sequentially in 4 MiB `upload_page` calls over loopback HTTPS, once with random pages (the baseline: same wire,
   same bytes sent, same requests) and once with all-zero pages; then `clear_page` over the data disk in 4 MiB
   calls. Each round uses fresh disks; it prints the median time ratio zero/data and clear/data and the chunk files
   each added (zero pages must add none).

    .venv/bin/python bench/zero_pages.py                  # 256 MiB, 3 rounds, about a minute on 2 cores
    .venv/bin/python bench/zero_pages.py --size-mib 64 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

import blake3
from azure.storage.blob import BlobClient

from vmgallery.domain.vhd import vhd_footer

sys.path.insert(0, str(Path(__file__).parent))
from replication import Server  # noqa: E402  (the same server harness as the replication benchmark)

MiB = 1 << 20
PAGE = 4 * MiB
GROUP_API = "2021-04-01"
SUB = "00000000-0000-0000-0000-0000000002e0"


def scan() -> None:
    zero = bytes(MiB)
    zq = memoryview(zero).cast("Q")
    body = bytes(PAGE)  # a 4 MiB page write, all zeros: the worst case for a scan, which must read every byte
    spans = [(i, i + MiB) for i in range(0, PAGE, MiB)]  # its 1 MiB chunks
    checks = {
        "startswith(zero buffer, at)": lambda: [body.startswith(zero, a) for a, _ in spans],
        "slice == zero buffer": lambda: [body[a:b] == zero for a, b in spans],
        "count(0, a, b) == MiB": lambda: [body.count(0, a, b) == MiB for a, b in spans],
        "int.from_bytes(slice) == 0": lambda: [int.from_bytes(body[a:b], "little") == 0 for a, b in spans],
        "memoryview.cast('Q') ==": lambda: [memoryview(body)[a:b].cast("Q") == zq for a, b in spans],
        "not any(memoryview)": lambda: [not any(memoryview(body)[a:b]) for a, b in spans],
        "BLAKE3 digest of slices": lambda: [blake3.blake3(body[a:b]).digest() for a, b in spans],
    }
    times = {}
    for name, check in checks.items():
        n = 2 if "any(" in name else 50
        times[name] = min(timeit.repeat(check, number=n, repeat=5)) / n / (PAGE // MiB)
    base = times["BLAKE3 digest of slices"]
    print("\nAll-zero 4 MiB body, per 1 MiB chunk (best of 5); the server uses the first:")
    for name, t in times.items():
        print(f"  {name:28} {t * 1e6:9.1f} µs   ×BLAKE3 {t / base:7.3f}")


def chunk_files(server: Server) -> int:
    return sum(1 for _ in (server.data_dir / "blobs").rglob("chunks/*/*/*"))


def cpu(server: Server) -> float:
    return sum(server.cpu_seconds())


def upload(server: Server, name: str, raw: int, page: bytes | None) -> tuple[float, float, int, float, float, int]:
    """Sequential 4 MiB page writes over the raw part (`page` each time, or fresh random bytes), then clear_page over
    it all: (seconds, server CPU seconds, chunk files added) for each."""
    compute = server.compute(SUB)
    compute.disks.begin_create_or_update(
        "rg",
        name,
        {
            "location": "eastus",
            "properties": {"osType": "Linux", "creationData": {"createOption": "Upload", "uploadSizeBytes": raw + 512}},
        },
    ).result()
    sas = compute.disks.begin_grant_access("rg", name, {"access": "Write", "durationInSeconds": 3600}).result()
    client = BlobClient.from_blob_url(sas.access_sas, connection_verify=server.ca)
    client.upload_page(vhd_footer(raw), offset=raw, length=512)  # also the TLS handshake, outside the timing
    before, c0, t0 = chunk_files(server), cpu(server), time.perf_counter()
    for offset in range(0, raw, PAGE):
        client.upload_page(page or os.urandom(PAGE), offset=offset, length=PAGE)
    written, written_cpu, between = time.perf_counter() - t0, cpu(server) - c0, chunk_files(server)
    c0, t0 = cpu(server), time.perf_counter()
    for offset in range(0, raw, PAGE):
        client.clear_page(offset=offset, length=PAGE)
    cleared, cleared_cpu, after = time.perf_counter() - t0, cpu(server) - c0, chunk_files(server)
    compute.disks.begin_revoke_access("rg", name).result()
    return written, written_cpu, between - before, cleared, cleared_cpu, after - between


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256, help="raw disk size, a multiple of 4 (default 256)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    raw = args.size_mib * MiB
    scan()
    with tempfile.TemporaryDirectory(prefix="vmg-zero-") as tmp:
        server = Server(Path(tmp) / "server", workers=1)
        try:
            with server.http() as c:
                c.put(
                    f"/subscriptions/{SUB}/resourceGroups/rg",
                    params={"api-version": GROUP_API},
                    json={"location": "eastus"},
                ).raise_for_status()
            rows = []
            for r in range(args.rounds):
                # os.urandom runs inside the data side's timing: about 10 ms per 4 MiB, a few % of a page write.
                data, data_cpu, data_files, cleared, clear_cpu, clear_files = upload(server, f"data{r}", raw, None)
                zeros, zero_cpu, zero_files, *_ = upload(server, f"zero{r}", raw, bytes(PAGE))
                rows.append((data, zeros, cleared, data_cpu, zero_cpu, clear_cpu, data_files, zero_files, clear_files))
                print(
                    f"round {r + 1}: data {data:5.2f} s (server CPU {data_cpu:5.2f} s, {data_files} chunk files),"
                    f" zeros {zeros:5.2f} s ({zero_cpu:5.2f} s, {zero_files}),"
                    f" clear_page of the data {cleared:5.2f} s ({clear_cpu:5.2f} s, {clear_files})",
                    file=sys.stderr,
                )
        finally:
            server.stop()

    def median(i: int, j: int) -> float:
        return statistics.median(row[i] / row[j] for row in rows)

    print(f"\n{args.size_mib} MiB in 4 MiB SDK page writes, sequential, median of {args.rounds} round(s); time ratios:")
    print(f"  all-zero upload_page / random upload_page: {median(1, 0):.3f} wall, {median(4, 3):.3f} server CPU")
    print(f"  clear_page of data / random upload_page:   {median(2, 0):.3f} wall, {median(5, 3):.3f} server CPU")
    print(f"  chunk files added by zero pages: {max(r[7] for r in rows)}, by clear_page: {max(r[8] for r in rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
