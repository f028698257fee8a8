"""Zero pages benchmark: what all-zero page writes and `clear_page` cost, against the same upload of data pages.

1. scan: how the chunk store tells an all-zero 1 MiB chunk, per MiB, for the candidate checks (a compare against a
   preallocated zero buffer, `count(0)`, `int.from_bytes`, a `Q`-cast memoryview compare, `any()` over a
   memoryview), against the BLAKE3 digest the store would compute for a chunk it keeps.
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

from vmgallery.adapters.disks.formats import vhd_footer

sys.path.insert(0, str(Path(__file__).parent))
from replication import Server  # noqa: E402  (the same server harness as the replication benchmark)

MiB = 1 << 20
PAGE = 4 * MiB
GROUP_API = "2021-04-01"
SUB = "00000000-0000-0000-0000-0000000002e0"


def scan() -> None:
    zero = bytes(MiB)
    zq = memoryview(zero).cast("Q")
    chunk = bytes(MiB)  # the worst case for a scan: it must read every byte to say "zero"
    checks = {
        "== zero buffer": lambda d: d == zero,
        "count(0) == len": lambda d: d.count(0) == len(d),
        "int.from_bytes == 0": lambda d: int.from_bytes(d, "little") == 0,
        "memoryview.cast('Q') ==": lambda d: memoryview(d).cast("Q") == zq,
        "not any(memoryview)": lambda d: not any(memoryview(d)),
        "BLAKE3 digest": lambda d: blake3.blake3(d).digest(),
    }
    times = {}
    for name, check in checks.items():
        n = 5 if "any(" in name else 200
        times[name] = min(timeit.repeat(lambda: check(chunk), number=n, repeat=5)) / n
    print("\n1 MiB all-zero chunk, per check (best of 5):")
    for name, t in times.items():
        print(f"  {name:26} {t * 1e6:9.1f} µs   ×BLAKE3 {t / times['BLAKE3 digest']:7.3f}")


def chunk_files(server: Server) -> int:
    return sum(1 for _ in (server.data_dir / "blobs").rglob("chunks/*/*/*"))


def upload(server: Server, name: str, raw: int, page: bytes | None) -> tuple[float, int, float, int]:
    """Sequential 4 MiB page writes over the raw part (`page` each time, or fresh random bytes), then clear_page over
    it all: (seconds, chunk files added) for each."""
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
    before = chunk_files(server)
    t0 = time.perf_counter()
    for offset in range(0, raw, PAGE):
        client.upload_page(page or os.urandom(PAGE), offset=offset, length=PAGE)
    written = time.perf_counter() - t0
    between = chunk_files(server)
    t0 = time.perf_counter()
    for offset in range(0, raw, PAGE):
        client.clear_page(offset=offset, length=PAGE)
    cleared = time.perf_counter() - t0
    after = chunk_files(server)
    compute.disks.begin_revoke_access("rg", name).result()
    return written, between - before, cleared, after - between


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
                data, data_files, cleared, clear_files = upload(server, f"data{r}", raw, None)
                zeros, zero_files, _, _ = upload(server, f"zero{r}", raw, bytes(PAGE))
                rows.append((data, zeros, cleared, data_files, zero_files, clear_files))
                print(
                    f"round {r + 1}: data {data:6.2f} s ({data_files} chunk files), zeros {zeros:6.2f} s "
                    f"({zero_files}), clear_page of the data {cleared:6.2f} s ({clear_files})"
                    f"   zero/data {zeros / data:.3f}   clear/data {cleared / data:.3f}",
                    file=sys.stderr,
                )
        finally:
            server.stop()
    zero_ratio = statistics.median(z / d for d, z, *_ in rows)
    clear_ratio = statistics.median(c / d for d, _, c, *_ in rows)
    print(f"\n{args.size_mib} MiB in 4 MiB SDK page writes, sequential, median of {args.rounds} round(s):")
    print(f"  all-zero upload_page / random upload_page (time): {zero_ratio:.3f}")
    print(f"  clear_page of data / random upload_page (time):   {clear_ratio:.3f}")
    print(
        f"  chunk files added by zero pages: {max(z for *_, z, _ in rows)}, by clear_page: {max(c for *_, c in rows)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
