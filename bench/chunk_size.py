"""Chunk-size benchmark: what the chunk size of the chunk store costs and buys, for 256 KiB to 4 MiB chunks.

It builds one realistic disk image (an ext4 made by `mkfs.ext4 -d` over a tree of real, text, random and zero-filled
files, plus a 512-byte VHD footer) and two updated versions of it (1% changed in scattered 4 KiB writes; about 1%
of the files replaced by `debugfs`, as a package update does). Then, for each chunk size, in the same run:

- ingest: the image read in chunk-size pieces into a `ChunkStore` on a `FolderBackend` (BLAKE3, zstd, holes
  skipped, temp file + fsync + rename per chunk), against `cp` + `sync FILE` of the same image and a plain Python
  read + write + fsync;
- read-back: `iter_range` over the whole manifest (every chunk decompressed and verified) against `cat > /dev/null`
  and a plain Python read;
- dedup: each updated version written into the same store, and the bytes newly stored (`StoreCounters`) as a share
  of the image;
- metadata: manifest entries and packed manifest bytes (`Manifest.pack()`) per GiB of disk, chunk files per GiB.

Times are paired (baseline and store back to back, in alternating order) and repeated; it prints the median time
ratio project/baseline. Absolute times are printed for context only; the machines are shared and noisy.
See bench/README.md.

    .venv/bin/python bench/chunk_size.py                 # 192 MiB image, under 2 minutes on 2 cores
    .venv/bin/python bench/chunk_size.py --size-mib 128 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3

from vmgallery.adapters.blobs.chunks import ChunkStore
from vmgallery.adapters.blobs.folder import FolderBackend
from vmgallery.app.content import iter_range, write_image
from vmgallery.domain.manifests import Manifest

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
CHUNK_SIZES = (256 * KiB, 512 * KiB, 1 * MiB, 2 * MiB, 4 * MiB)
DEFAULT = 1 * MiB
BLOCK = 4 * KiB  # the guest file system's block: the unit a guest writes
FOOTER = 512


def label(size: int) -> str:
    return f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"


# -- the disk image -------------------------------------------------------------------------------------------------


def build_tree(root: Path, raw: int, rng: random.Random) -> list[tuple[str, int]]:
    """A root file system's worth of files, as shares of the disk: real files (the Python standard library: source,
    bytecode, shared objects), generated text (logs, configs), random bytes (what is already compressed: packages,
    media) and zero-filled files (preallocated databases, swap). Returns (image path, size) of every file."""
    files: list[tuple[str, int]] = []

    def put(rel: str, data: bytes) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        files.append(("/" + rel, len(data)))

    budget = raw * 22 // 100
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for src in sorted(stdlib.rglob("*")):
        if budget <= 0:
            break
        if src.is_file() and not src.is_symlink() and "site-packages" not in src.parts:
            data = src.read_bytes()
            put(f"usr/lib/python3/{src.relative_to(stdlib)}", data)
            budget -= len(data)

    words = [
        w for w in (stdlib / "this.py").read_text().split() if w.isalpha()
    ] + "error warning info debug kernel systemd sshd cron GET POST 200 404 user root /var/log".split()
    budget, n = raw * 10 // 100, 0
    while budget > 0:
        size = min(int(2 ** rng.uniform(10, 18)), budget)
        lines, total = [], 0
        while total < size:
            line = (
                f"2026-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} "
                + " ".join(rng.choices(words, k=rng.randint(4, 14)))
                + f" id={rng.getrandbits(32):08x}\n"
            )
            lines.append(line)
            total += len(line)
        put(f"var/log/app{n // 50}/log{n}.txt", "".join(lines).encode()[:size])
        budget -= size
        n += 1

    budget, n = raw * 18 // 100, 0
    while budget > 0:
        size = min(int(2 ** rng.uniform(12, 22)), budget)
        put(f"var/cache/apt/archives/pkg{n}.deb", rng.randbytes(size))
        budget -= size
        n += 1

    for n, size in enumerate((raw * 3 // 100, raw * 2 // 100)):
        put(f"var/lib/db/prealloc{n}.dat", bytes(size))
    return files


def build_image(path: Path, tree: Path, raw: int) -> None:
    """An ext4 with 4 KiB blocks of `raw` bytes over `tree`, then a VHD footer (as Azure stores a fixed VHD)."""
    with open(path, "wb") as f:
        f.truncate(raw)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-b", "4096", "-d", str(tree), str(path)], check=True, stdout=subprocess.DEVNULL
    )
    with open(path, "ab") as f:
        f.write(b"conectix" + bytes(FOOTER - 8))


def scattered(src: Path, dst: Path, raw: int, share: float, rng: random.Random) -> None:
    """`dst` = `src` with `share` of its raw part overwritten in 4 KiB writes at distinct random 4 KiB offsets."""
    shutil.copyfile(src, dst)
    blocks = rng.sample(range(raw // BLOCK), round(raw * share / BLOCK))
    with open(dst, "r+b") as f:
        for b in sorted(blocks):
            f.seek(b * BLOCK)
            f.write(rng.randbytes(BLOCK))


def package_update(
    src: Path, dst: Path, work: Path, files: list[tuple[str, int]], raw: int, share: float, rng: random.Random
) -> int:
    """`dst` = `src` after replacing files of about `share` of the disk (new versions: a few blocks changed and a
    little appended), through the file system (`debugfs`: allocation, bitmaps, inodes, directories; no journal).
    As dpkg does, every new file is written under a temporary name before the old ones are removed and the new
    ones renamed over them, so new contents land in free blocks, not in the blocks of the files they replace.
    Returns how many files were replaced."""
    shutil.copyfile(src, dst)
    candidates = [f for f in files if 0 < f[1] <= 4 * MiB and "prealloc" not in f[0]]
    rng.shuffle(candidates)
    writes, renames, total, n = [], [], 0, 0
    for path, size in candidates:
        if total >= raw * share:
            break
        data = bytearray((work / path.lstrip("/")).read_bytes())
        for _ in range(max(1, size // (64 * KiB))):
            at = rng.randrange(size)
            data[at : at + 16] = rng.randbytes(16)
        data += rng.randbytes(rng.randint(16, 2 * KiB))
        new = work / "new" / str(n)
        new.parent.mkdir(exist_ok=True)
        new.write_bytes(data)
        folder, name = path.rsplit("/", 1)
        cd = f"cd {folder or '/'}"
        writes += [cd, f"write {new} {name}.dpkg-new"]
        # debugfs `ln` and `unlink` leave link counts alone: together they are a rename.
        renames += [cd, f"rm {name}", f"ln {name}.dpkg-new {name}", f"unlink {name}.dpkg-new"]
        total += len(data)
        n += 1
    script = work / "update.debugfs"
    script.write_text("\n".join(writes + renames) + "\n")
    # debugfs edits the file system only: keep the footer where it was.
    with open(dst, "r+b") as f:
        f.seek(raw)
        footer = f.read()
        f.truncate(raw)
    subprocess.run(
        ["debugfs", "-w", "-f", str(script), str(dst)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    subprocess.run(["e2fsck", "-fn", str(dst)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(dst, "ab") as f:
        f.write(footer)
    return n


def changed_blocks(a: Path, b: Path) -> int:
    """How many 4 KiB blocks differ between two images of the same size: the least any store must keep anew."""
    n = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(MiB), fb.read(MiB)
            if not x:
                return n
            if x != y:
                n += sum(x[i : i + BLOCK] != y[i : i + BLOCK] for i in range(0, len(x), BLOCK))


def image_facts(path: Path) -> dict[str, Any]:
    zero = bytes(BLOCK)
    zeros = total = 0
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            total += 1
            zeros += block == zero[: len(block)]
    return {
        "bytes": path.stat().st_size,
        "allocated": path.stat().st_blocks * 512,
        "zero_4k_blocks_pct": round(100 * zeros / total, 1),
    }


# -- the operations measured ----------------------------------------------------------------------------------------


def pieces(path: Path, size: int) -> Iterator[bytes]:
    with open(path, "rb", buffering=0) as f:
        while piece := f.read(size):
            yield piece


def store_ingest(store: ChunkStore, image: Path) -> Manifest:
    return write_image(store, pieces(image, store.chunk_size), image.stat().st_size)


def store_read(store: ChunkStore, manifest: Manifest) -> int:
    return sum(len(p) for p in iter_range(store, manifest))


def cp_sync(image: Path, dst: Path) -> None:
    subprocess.run(["cp", "--reflink=never", str(image), str(dst)], check=True)
    subprocess.run(["sync", str(dst)], check=True)


def py_copy(image: Path, dst: Path, size: int) -> None:
    with open(dst, "wb", buffering=0) as out:
        for piece in pieces(image, size):
            out.write(piece)
        os.fsync(out.fileno())


def cat(image: Path) -> None:
    with open(os.devnull, "wb") as null:
        subprocess.run(["cat", str(image)], stdout=null, check=True)


def py_read(image: Path, size: int) -> int:
    return sum(len(p) for p in pieces(image, size))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def paired(rep: int, project: Callable[[], Any], baseline: Callable[[], Any]) -> tuple[float, float, Any]:
    """Times of project and baseline back to back, the baseline first on even repetitions (cancels order effects:
    page-cache writeback of the previous step, CPU frequency)."""
    if rep % 2 == 0:
        tb, _ = timed(baseline)
        tp, out = timed(project)
    else:
        tp, out = timed(project)
        tb, _ = timed(baseline)
    return tp, tb, out


def store_disk(root: Path) -> tuple[int, int, int]:
    """Chunk files in a store, their bytes and their allocated bytes."""
    files = size = allocated = 0
    for dirpath, _dirs, names in os.walk(root / "chunks"):
        for name in names:
            st = os.stat(os.path.join(dirpath, name))
            files += 1
            size += st.st_size
            allocated += st.st_blocks * 512
    return files, size, allocated


# -- one chunk size -------------------------------------------------------------------------------------------------


class Subject:
    """One chunk size under test: its store (fresh for every timing round) and every time measured."""

    def __init__(self, cs: int, tmp: Path):
        self.cs, self.root, self.copy = cs, tmp / f"store-{cs}", tmp / f"copy-{cs}"
        self.store: ChunkStore | None = None
        self.manifest: Manifest | None = None
        self.times: dict[str, list[float]] = {
            k: [] for k in ("store_in", "store_in_cpu", "cp", "py_in", "store_out", "cat", "py_out")
        }
        self.ratios: dict[str, list[float]] = {k: [] for k in ("in_cp", "in_py", "out_cat", "out_py")}

    def timing_round(self, rep: int, base: Path) -> None:
        """Ingest into an empty store against cp + sync and a Python copy, then read it all back against cat
        and a Python read. The read baselines take a few hundredths of a second: each is the median of three."""
        shutil.rmtree(self.root, ignore_errors=True)
        store = self.store = ChunkStore(FolderBackend(self.root), chunk_size=self.cs)
        cpu0 = time.process_time()
        tp, tb, self.manifest = paired(rep, lambda: store_ingest(store, base), lambda: cp_sync(base, self.copy))
        cpu = time.process_time() - cpu0  # cp and sync run in child processes: this is the store's CPU
        self.copy.unlink()
        tq = timed(lambda: py_copy(base, self.copy, self.cs))[0]
        self.copy.unlink()
        manifest = self.manifest

        def cat3() -> float:
            return statistics.median(timed(lambda: cat(base))[0] for _ in range(3))

        if rep % 2 == 0:
            tc, tr = cat3(), timed(lambda: store_read(store, manifest))[0]
        else:
            tr, tc = timed(lambda: store_read(store, manifest))[0], cat3()
        tpr = statistics.median(timed(lambda: py_read(base, self.cs))[0] for _ in range(3))
        for k, v in zip(self.times, (tp, cpu, tb, tq, tr, tc, tpr)):
            self.times[k].append(v)
        for k, v in zip(self.ratios, (tp / tb, tp / tq, tr / tc, tr / tpr)):
            self.ratios[k].append(v)

    def row(self, images: dict[str, Path]) -> dict[str, Any]:
        """The medians of the timing rounds, then what the last round's store holds, then the updates stored into
        it (bytes newly stored, and the time to ingest them over the time of the first ingest)."""
        store, manifest, base = self.store, self.manifest, images["base"]
        assert store is not None and manifest is not None
        size = base.stat().st_size
        gib = size / GiB
        h = blake3.blake3()
        for piece in iter_range(store, manifest):
            h.update(piece)
        if h.digest() != blake3.blake3(base.read_bytes()).digest():
            raise RuntimeError(f"{label(self.cs)}: the image read back differs from the image written")
        files, plain_on_disk, allocated = store_disk(self.root)
        stored_plain = manifest.stored_bytes()
        row: dict[str, Any] = {
            "chunk_size": self.cs,
            "ingest_x_cp": statistics.median(self.ratios["in_cp"]),
            "ingest_x_py": statistics.median(self.ratios["in_py"]),
            "read_x_cat": statistics.median(self.ratios["out_cat"]),
            "read_x_py": statistics.median(self.ratios["out_py"]),
            "all_ratios": {k: [round(x, 2) for x in v] for k, v in self.ratios.items()},
            "seconds": {k: round(statistics.median(v), 3) for k, v in self.times.items()},
            "ingest_cpu_pct": 100 * sum(self.times["store_in_cpu"]) / sum(self.times["store_in"]),
            "holes_pct": 100 * (size - stored_plain) / size,
            "zstd_ratio": stored_plain / plain_on_disk,
            "disk_pct": 100 * allocated / size,
            "entries_per_gib": len(manifest.digests) / gib,
            "manifest_kib_per_gib": len(manifest.pack()) / KiB / gib,
            "manifest_raw_kib_per_gib": len(manifest.packed()) / KiB / gib,
            "files_per_gib": files / gib,
        }
        for name in ("scattered", "update"):
            if name not in images:
                continue
            written0, alloc0 = store.counters.bytes_written, store_disk(self.root)[2]
            tu = timed(lambda: store_ingest(store, images[name]))[0]
            row[f"{name}_new_pct"] = 100 * (store.counters.bytes_written - written0) / size
            row[f"{name}_disk_pct"] = 100 * (store_disk(self.root)[2] - alloc0) / size
            row[f"{name}_reingest_x_ingest"] = tu / statistics.median(self.times["store_in"])
        row["files_per_gib_after"] = store_disk(self.root)[0] / gib
        shutil.rmtree(self.root)
        return row


# -- report ---------------------------------------------------------------------------------------------------------


def print_tables(rows: list[dict[str, Any]], ideal: dict[str, float]) -> None:
    print(
        "\n== throughput: time ratios project/baseline (median of the paired rounds; 1.0 = as fast as the baseline) =="
    )
    head = (
        f"{'chunk':>8} {'ingest×cp':>10} {'ingest×py':>10} {'read×cat':>9} {'read×py':>8} {'ingest CPU':>11} "
        f"{'update/ingest':>14}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{label(r['chunk_size']):>8} {r['ingest_x_cp']:>10.2f} {r['ingest_x_py']:>10.2f} "
            f"{r['read_x_cat']:>9.2f} {r['read_x_py']:>8.2f} {r['ingest_cpu_pct']:>10.0f}% "
            f"{r.get('update_reingest_x_ingest', float('nan')):>14.2f}"
        )
    print(
        "ingest CPU: the store's CPU time / its ingest wall time (the rest waits on I/O, mostly the per-chunk "
        "fsync); update/ingest: time to store the package update into the full store / time of the first ingest"
    )

    print("\n== dedup after a 1% change: bytes newly stored, % of the image (plain; on disk after zstd) ==")
    head = f"{'chunk':>8} {'scattered':>10} {'on disk':>8} {'pkg update':>11} {'on disk':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{label(r['chunk_size']):>8} {r.get('scattered_new_pct', float('nan')):>9.1f}% "
            f"{r.get('scattered_disk_pct', float('nan')):>7.1f}% {r.get('update_new_pct', float('nan')):>10.1f}% "
            f"{r.get('update_disk_pct', float('nan')):>7.1f}%"
        )
    print(
        f"{'4 KiB':>8} {ideal.get('scattered', float('nan')):>9.1f}% {'':>8} "
        f"{ideal.get('update', float('nan')):>10.1f}%    (changed 4 KiB blocks: the floor for any chunk size)"
    )

    print("\n== storage and metadata, per GiB of disk image ==")
    head = (
        f"{'chunk':>8} {'holes':>6} {'zstd':>5} {'on disk':>8} {'entries':>8} {'manifest':>9} {'raw':>8} "
        f"{'files':>7} {'files after':>12}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{label(r['chunk_size']):>8} {r['holes_pct']:>5.1f}% {r['zstd_ratio']:>5.2f} {r['disk_pct']:>7.1f}% "
            f"{r['entries_per_gib']:>8.0f} {r['manifest_kib_per_gib']:>6.1f}KiB "
            f"{r['manifest_raw_kib_per_gib']:>5.0f}KiB "
            f"{r['files_per_gib']:>7.0f} {r['files_per_gib_after']:>12.0f}"
        )
    print(
        "holes: share of the image stored as nothing; zstd: plain bytes stored / compressed bytes; on disk: chunk "
        "files' allocated bytes / image; manifest: Manifest.pack() (zstd), raw: 32 bytes an entry; files after: "
        "chunk files once both updates are stored too"
    )


def conclusion(rows: list[dict[str, Any]]) -> str:
    by = {r["chunk_size"]: r for r in rows}
    d, small, big = by[DEFAULT], by[min(by)], by[max(by)]

    # Ratios of one size swing by half between rounds on the shared machine, so "clearly slower" means the rounds
    # do not overlap: every round of one size slower than every round of the other.
    def clearly_slower(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return any(min(a["all_ratios"][k]) > max(b["all_ratios"][k]) for k in ("in_cp", "out_cat"))

    slow = any(clearly_slower(d, r) for r in rows)
    # Bytes on disk after zstd: what a zone keeps and what replication ships.
    key = "update_disk_pct" if "update_disk_pct" in d else "scattered_disk_pct"
    smaller = [r for r in rows if r["chunk_size"] < DEFAULT and r[key] < d[key] * 2 / 3 and not clearly_slower(r, d)]
    text = (
        f"Conclusion. Ingest takes {d['ingest_x_cp']:.1f}× the time of cp + sync at {label(DEFAULT)}, "
        f"{small['ingest_x_cp']:.1f}× at {label(small['chunk_size'])} and {big['ingest_x_cp']:.1f}× at "
        f"{label(big['chunk_size'])}; the store is on CPU (BLAKE3, zstd) for {d['ingest_cpu_pct']:.0f}% of it at "
        f"{label(DEFAULT)} and waits on the per-chunk fsync for the rest, which is why small chunks cost more. "
        f"Read-back is {d['read_x_cat']:.1f}× cat at {label(DEFAULT)} ({small['read_x_cat']:.1f}× and "
        f"{big['read_x_cat']:.1f}× at the ends): decompressing and verifying every chunk, nearly flat in the chunk "
        f"size. Small chunks dedup better. After 1% of uniformly scattered 4 KiB writes the store keeps "
        f"{small.get('scattered_new_pct', float('nan')):.0f}% of the image anew at {label(small['chunk_size'])}, "
        f"{d.get('scattered_new_pct', float('nan')):.0f}% at {label(DEFAULT)} and "
        f"{big.get('scattered_new_pct', float('nan')):.0f}% at {label(big['chunk_size'])}: such writes defeat "
        f"every chunk size far above 4 KiB"
    )
    if "update_new_pct" in d:
        text += (
            f". After a package update (files rewritten through the file system, which keeps each file "
            f"contiguous) it keeps {small['update_new_pct']:.1f}%, {d['update_new_pct']:.1f}% and "
            f"{big['update_new_pct']:.1f}% ({small['update_disk_pct']:.1f}%, {d['update_disk_pct']:.1f}% and "
            f"{big['update_disk_pct']:.1f}% on disk after zstd)"
        )
    text += (
        f". Metadata is small at every size: {d['manifest_raw_kib_per_gib']:.0f} KiB of digests and "
        f"{d['files_per_gib']:.0f} chunk files per GiB at {label(DEFAULT)}, 4× as many at 256 KiB. "
        f"{label(DEFAULT)} is also the unit of VHD sizes, so the raw disk is whole chunks and the footer always "
        f"has a chunk of its own. "
    )
    if slow:
        text += (
            f"Verdict: these measurements do NOT support {label(DEFAULT)}: every round of it is slower than "
            f"every round of another chunk size. Re-run; if it holds, revisit the default."
        )
    elif smaller:
        s = min(smaller, key=lambda r: r[key])
        text += (
            f"Verdict: these measurements favour {label(s['chunk_size'])} over {label(DEFAULT)}: it stores "
            f"{s[key]:.1f}% instead of {d[key]:.1f}% of the image on disk for an update and is not clearly "
            f"slower. Re-run; if it "
            f"holds, revisit the default."
        )
    else:
        text += (
            f"Verdict: {label(DEFAULT)} stays the default. No size is clearly faster (every round of it "
            f"faster than every round of {label(DEFAULT)}) at ingest or read-back; no smaller size that is not "
            f"clearly slower saves a third of the disk an update takes after zstd, and each halving of the "
            f"chunk doubles the files; {label(big['chunk_size'])} chunks store "
            f"{big[key] / d[key]:.1f}× as much of every update."
        )
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size-mib", type=int, default=192, help="raw disk size in MiB (default 192)")
    ap.add_argument(
        "--sizes",
        default=",".join(str(c // KiB) for c in CHUNK_SIZES),
        help="chunk sizes in KiB, comma-separated (default 256,512,1024,2048,4096)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="paired timings per chunk size (default 3)")
    ap.add_argument("--change-pct", type=float, default=1.0, help="share of the disk each update changes (default 1)")
    ap.add_argument("--seed", type=int, default=20260303)
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the results (default bench/results/chunk_size-<time>.json)",
    )
    args = ap.parse_args(argv)
    sizes = [int(s) * KiB for s in args.sizes.split(",")]
    if DEFAULT not in sizes:
        ap.error(f"--sizes must include the default, {DEFAULT // KiB}")
    if args.size_mib < 32:
        ap.error("--size-mib must be at least 32")
    raw = args.size_mib * MiB
    rng = random.Random(args.seed)

    started = time.time()
    report: dict[str, Any] = {
        "benchmark": "chunk_size",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    with tempfile.TemporaryDirectory(prefix="vmg-bench-") as tmpdir:
        tmp = Path(tmpdir)
        tree = tmp / "tree"
        files = build_tree(tree, raw, rng)
        images = {"base": tmp / "base.vhd", "scattered": tmp / "scattered.vhd"}
        build_image(images["base"], tree, raw)
        scattered(images["base"], images["scattered"], raw, args.change_pct / 100, rng)
        ideal = {"scattered": changed_blocks(images["base"], images["scattered"]) * BLOCK * 100 / raw}
        if shutil.which("debugfs") and shutil.which("e2fsck"):
            images["update"] = tmp / "update.vhd"
            replaced = package_update(images["base"], images["update"], tree, files, raw, args.change_pct / 100, rng)
            ideal["update"] = changed_blocks(images["base"], images["update"]) * BLOCK * 100 / raw
            report["files_replaced"] = replaced
        else:
            print("debugfs not found: no package-update scenario", file=sys.stderr)
        shutil.rmtree(tree)
        report["image"] = image_facts(images["base"])
        report["changed_4k_blocks_pct"] = ideal
        print(
            f"built in {time.time() - started:.1f} s: {args.size_mib} MiB ext4 + footer, {len(files)} files, "
            f"{report['image']['zero_4k_blocks_pct']}% of 4 KiB blocks zero; updates change "
            + ", ".join(f"{k} {v:.2f}%" for k, v in ideal.items())
            + " of 4 KiB blocks",
            file=sys.stderr,
        )

        # Round robin, the order rotated every round: a slow spell of the shared machine hits every size alike.
        subjects = [Subject(cs, tmp) for cs in sizes]
        for rep in range(args.repeat):
            for s in subjects[rep % len(subjects) :] + subjects[: rep % len(subjects)]:
                s.timing_round(rep, images["base"])
                print(
                    f"[round {rep + 1}, {label(s.cs)}] ingest {s.times['store_in'][-1]:.2f} s "
                    f"(cp+sync {s.times['cp'][-1]:.2f} s), read {s.times['store_out'][-1]:.2f} s "
                    f"(cat {s.times['cat'][-1]:.3f} s)",
                    file=sys.stderr,
                    flush=True,
                )
                if rep < args.repeat - 1:
                    shutil.rmtree(s.root)
        rows = [s.row(images) for s in subjects]
    report["rows"] = rows
    print_tables(rows, ideal)
    text = conclusion(rows)
    report["conclusion"] = text
    print("\n" + text)
    report["seconds"] = round(time.time() - started, 1)
    out = args.json or Path(__file__).parent / "results" / f"chunk_size-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwhole run {report['seconds']} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
