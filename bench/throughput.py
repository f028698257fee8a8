"""Throughput benchmark (issue 14): vmgallery's data path against a naive HTTPS sink/source, in one run.

The naive sink/source is a stdlib `http.server` over `ssl` with the server's own certificate that speaks just
enough of the page-blob protocol for the Azure SDK: a page write is `pwrite` of the body into a file, a read is
`pread`; nothing else (no hashing, no database, no fsync). Same certificate, same client, same bytes; every timed
run starts after a `sync` (not timed), so none pays for the dirty pages of the one before.

Every round uploads new random bytes: vmgallery stores a chunk it holds already as a reference, so bytes sent twice
would measure its deduplication, not its writes. And each sink upload goes to a file of its own, kept to the end,
as vmgallery keeps what it receives: a sink that rewrites one truncated file gets its freed page-cache pages back at
once, and on a VM whose host reclaims free memory a new page is what costs (on one such machine the same sink ran
at 560-880 MB/s into one reused file, about 300 into new ones). The upload section also times, for reference, a sink
that calls `fdatasync` after each page (the least a server that answers only once a page is on disk can do) and
the sink rewriting one file.

Sections (`--sections`, default all):
- upload:       SDK `BlobClient.upload_page`, 4 MiB pages one after another, `--size` of random data, to a vmgallery
                upload URL and to the sink. Ratio: vmgallery's throughput / the sink's (goal >= 0.7).
- cli-upload:   the same file through `vmgallery disk upload`, the whole command (start-up, create, grant, pages,
                end of access), against the SDK to the sink timed in the same round. Ratio: its throughput / the
                SDK-to-sink figure (goal >= 1.0).
- sparse:       `vmgallery disk upload` of a `--sparse-size` disk holding `--sparse-data` of random data in
                4 MiB pieces spread evenly through it, against a dense upload of `--sparse-data`. Ratio: time /
                dense time (goal <= 1.3).
- cli-download: `vmgallery disk download` of the cli-upload disk, against the SDK's `download_blob`
                (4 connections) from the naive source holding the same bytes. Ratio: throughput /
                the source's (goal >= 0.7).
- control-plane, cli-startup, latest: bench/control_plane_cpu.py (server CPU per create and per GET, with their
                goals), bench/cli_startup.py and bench/latest.py, run as subprocesses; their result lines are
                forwarded.
Always: the server's idle RSS after start and after the run (goal <= 120 MiB).

    .venv/bin/python bench/throughput.py                                   # 1 GiB, all sections, 1 round
    .venv/bin/python bench/throughput.py --size 256M --sections upload --rounds 3
"""

from __future__ import annotations

import argparse
import email.utils
import os
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from azure.storage.blob import BlobClient

from vmgallery.domain.vhd import vhd_footer

sys.path.insert(0, str(Path(__file__).parent))
from replication import GROUP_API, Server  # noqa: E402  (the same server harness as the replication benchmark)

MiB = 1 << 20
PAGE = 4 * MiB
SUB = "00000000-0000-0000-0000-00000000f10e"
SECTIONS = ("upload", "cli-upload", "sparse", "cli-download", "control-plane", "cli-startup", "latest")
BENCH = Path(__file__).parent
RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def size_arg(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMGT]?)i?B?", text.strip().upper())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 256M, 1G)")
    value = int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]
    if value % PAGE:
        raise argparse.ArgumentTypeError(f"{text} is not a multiple of 4 MiB")
    return value


# -- the naive sink and source -----------------------------------------------------------------------------------


class Sink:
    """One page blob in one file, over HTTPS with the given certificate: the least a page-blob server can do."""

    def __init__(self, path: Path, size: int, cert: str, key: str, durable: bool = False):
        self.size = size
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(self.fd, size)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _headers(self, status: int, length: int, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in {
                    "x-ms-blob-type": "PageBlob",
                    "x-ms-version": "2021-08-06",
                    "ETag": '"sink"',
                    "Last-Modified": email.utils.formatdate(usegmt=True),
                    "x-ms-blob-sequence-number": "0",
                    "Content-Length": str(length),
                    **(extra or {}),
                }.items():
                    self.send_header(name, value)
                self.end_headers()

            def _range(self) -> tuple[int, int]:
                m = RANGE.fullmatch(self.headers.get("x-ms-range") or self.headers.get("range") or "")
                if not m:
                    return 0, sink.size - 1
                return int(m.group(1)), min(int(m.group(2) or sink.size - 1), sink.size - 1)

            def do_PUT(self) -> None:
                start, _ = self._range()
                data = self.rfile.read(int(self.headers["Content-Length"]))
                os.pwrite(sink.fd, data, start)
                if durable:
                    os.fdatasync(sink.fd)
                self._headers(201, 0, {"x-ms-request-server-encrypted": "true"})

            def do_HEAD(self) -> None:
                self._headers(200, sink.size, {"Content-Type": "application/octet-stream"})

            def do_GET(self) -> None:
                if "comp=pagelist" in self.path:
                    body = (
                        f'<?xml version="1.0" encoding="utf-8"?><PageList><PageRange><Start>0</Start>'
                        f"<End>{sink.size - 1}</End></PageRange></PageList>"
                    ).encode()
                    self._headers(200, len(body), {"x-ms-blob-content-length": str(sink.size)})
                    self.wfile.write(body)
                    return
                ranged = "x-ms-range" in self.headers or "range" in self.headers
                start, end = self._range()
                extra = {"Content-Type": "application/octet-stream"}
                if ranged:
                    extra["Content-Range"] = f"bytes {start}-{end}/{sink.size}"
                self._headers(206 if ranged else 200, end - start + 1, extra)
                for at in range(start, end + 1, PAGE):
                    self.wfile.write(os.pread(sink.fd, min(PAGE, end + 1 - at), at))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/sink/disk"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        os.close(self.fd)


# -- helpers --------------------------------------------------------------------------------------------------------


def random_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(0, size, 64 * MiB):
            f.write(os.urandom(min(64 * MiB, size - f.tell())))


def sparse_file(path: Path, size: int, data: int) -> None:
    """`size` bytes that are zeros except `data` bytes of random 4 MiB pieces, spread evenly."""
    pieces = data // PAGE
    stride = size // pieces // PAGE * PAGE
    with open(path, "wb") as f:
        f.truncate(size)
        for i in range(pieces):
            f.seek(i * stride)
            f.write(os.urandom(PAGE))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sdk_upload(client: BlobClient, source: Path, size: int) -> float:
    """Sequential 4 MiB `upload_page` calls of `source`'s bytes; seconds."""
    with open(source, "rb") as f:
        fd = f.fileno()
        t0 = time.perf_counter()
        for offset in range(0, size, PAGE):
            client.upload_page(os.pread(fd, PAGE, offset), offset=offset, length=PAGE)
        return time.perf_counter() - t0


def settle() -> None:
    """Write back every dirty page before a timed run (not timed): the sink leaves its file in the page cache, and
    a run after it would otherwise pay for that write-back in its own fsyncs (first rounds ran at half speed)."""
    os.sync()


def verdict(ratio: float, goal: float, higher_is_better: bool = True) -> str:
    met = ratio >= goal if higher_is_better else ratio <= goal
    return f"goal {'>=' if higher_is_better else '<='} {goal}: {'met' if met else 'MISSED'}"


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path):
        self.args, self.tmp = args, tmp
        self.server = Server(tmp / "server", workers=1)
        # The harness waits for the app's start-up; the socket listens a moment later.
        while "Uvicorn running on" not in self.server.log_path.read_text():
            time.sleep(0.05)
        self.cert = self.server.ca
        self.key = str(tmp / "server" / "tls" / "key.pem")
        self.compute = self.server.compute(SUB)
        with self.server.http() as c:
            c.put(
                f"/subscriptions/{SUB}/resourceGroups/rg",
                params={"api-version": GROUP_API},
                json={"location": "eastus"},
            ).raise_for_status()
        self.rss_start = rss_mib(self.server.proc.pid)
        self.cli = str(Path(sys.executable).parent / "vmgallery")
        self.env = os.environ | {
            "VMGALLERY_ENDPOINT": self.server.url,
            "VMGALLERY_TOKEN": self.server.token,
            "VMGALLERY_CA_BUNDLE": self.server.ca,
            "VMGALLERY_SUBSCRIPTION": SUB,
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "TERM": "dumb",
        }
        self.data = tmp / "data.raw"
        self.serial = 0
        self.results: list[tuple[str, float, str, str]] = []  # (name, ratio, goal text, detail)

    def name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def cpu(self) -> float:
        return sum(self.server.cpu_seconds())

    def report(self, name: str, ratios: list[float], goal: float, higher: bool, detail: str) -> None:
        ratio = statistics.median(ratios)
        rounds = ", ".join(f"{r:.2f}" for r in ratios)
        line = f"{name}: {ratio:.2f} ({verdict(ratio, goal, higher)}); rounds {rounds}; {detail}"
        print(line, flush=True)
        self.results.append((name, ratio, verdict(ratio, goal, higher), detail))

    # -- sections -------------------------------------------------------------------------------------------------

    def vmg_upload(self, size: int) -> tuple[float, float]:
        """SDK sequential upload of `self.data` into a new disk: seconds, server CPU seconds."""
        name = self.name("sdk")
        self.compute.disks.begin_create_or_update(
            "rg",
            name,
            {
                "location": "eastus",
                "properties": {
                    "osType": "Linux",
                    "creationData": {"createOption": "Upload", "uploadSizeBytes": size + 512},
                },
            },
        ).result()
        sas = self.compute.disks.begin_grant_access("rg", name, {"access": "Write", "durationInSeconds": 3600}).result()
        client = BlobClient.from_blob_url(sas.access_sas, connection_verify=self.cert)
        client.upload_page(vhd_footer(size), offset=size, length=512)  # and the TLS handshake, outside the timing
        settle()
        c0 = self.cpu()
        seconds = sdk_upload(client, self.data, size)
        cpu = self.cpu() - c0
        self.compute.disks.begin_revoke_access("rg", name).result()
        return seconds, cpu

    def sink_upload(self, size: int, durable: bool = False, reuse: bool = False) -> float:
        path = self.tmp / ("sink-reused" if reuse else self.name("sink-"))
        sink = Sink(path, size + 512, self.cert, self.key, durable)
        try:
            client = BlobClient.from_blob_url(sink.url, connection_verify=self.cert)
            client.upload_page(vhd_footer(size), offset=size, length=512)
            settle()
            return sdk_upload(client, self.data, size)
        finally:
            sink.close()

    def cli_upload(self, file: Path) -> tuple[float, float, str]:
        name = self.name("cli")
        settle()
        c0, t0 = self.cpu(), time.perf_counter()
        subprocess.run(
            [self.cli, "disk", "upload", "-g", "rg", "-n", name, "--file", str(file), "--os-type", "Linux"]
            + ["-o", "none"],
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - t0, self.cpu() - c0, name

    def upload(self, rounds: int) -> None:
        size = self.args.size
        ratios, durable_ratios, reused_ratios, detail = [], [], [], []
        for r in range(rounds):
            random_file(self.data, size)
            # Rotating order, so a change in the machine's load hits every side alike.
            runs = [
                lambda: self.vmg_upload(size),
                lambda: (self.sink_upload(size), 0.0),
                lambda: (self.sink_upload(size, durable=True), 0.0),
                lambda: (self.sink_upload(size, reuse=True), 0.0),
            ]
            order = list(range(4))[r % 4 :] + list(range(4))[: r % 4]
            (vmg, cpu), (sink, _), (durable, _), (reused, _) = (x for _, x in sorted((i, runs[i]()) for i in order))
            ratios.append(sink / vmg)
            durable_ratios.append(durable / vmg)
            reused_ratios.append(reused / vmg)
            detail.append(
                f"vmgallery {size / vmg / 1e6:.0f} MB/s (server CPU {cpu / (size / 2**30):.2f} s/GiB), "
                f"sink {size / sink / 1e6:.0f} MB/s, sink with fdatasync per page {size / durable / 1e6:.0f} MB/s, "
                f"sink rewriting one file {size / reused / 1e6:.0f} MB/s"
            )
            print(f"  upload round {r + 1}: {detail[-1]}", file=sys.stderr, flush=True)
        self.report("SDK upload_page -> vmgallery / -> sink (throughput)", ratios, 0.7, True, detail[-1])
        for label, values in (
            ("sink with fdatasync per page", durable_ratios),
            ("sink rewriting one file", reused_ratios),
        ):
            print(
                f"  (for reference, not a goal: vmgallery / {label}: {statistics.median(values):.2f}; rounds "
                + ", ".join(f"{v:.2f}" for v in values)
                + ")",
                flush=True,
            )

    def cli_uploads(self, rounds: int) -> None:
        """Each round times the CLI and the SDK to the sink one after the other, in alternating order: the sink's
        speed drifts with the machine's state (on one machine, 460 to 900 MB/s in one session), so a figure taken in
        another section would compare two different machines."""
        size = self.args.size
        ratios, detail = [], []
        for r in range(rounds):
            random_file(self.data, size)
            if r % 2:
                sink = self.sink_upload(size)
                seconds, cpu, self.uploaded = self.cli_upload(self.data)
            else:
                seconds, cpu, self.uploaded = self.cli_upload(self.data)
                sink = self.sink_upload(size)
            ratios.append(sink / seconds)
            detail.append(
                f"CLI {size / seconds / 1e6:.0f} MB/s (server CPU {cpu / (size / 2**30):.2f} s/GiB), "
                f"SDK to the sink {size / sink / 1e6:.0f} MB/s"
            )
            print(f"  cli-upload round {r + 1}: {detail[-1]}", file=sys.stderr, flush=True)
        self.report("vmgallery disk upload / SDK -> sink (throughput)", ratios, 1.0, True, detail[-1])

    def sparse(self, rounds: int) -> None:
        sparse, dense = self.tmp / "sparse.raw", self.tmp / "dense.raw"
        ratios, detail = [], []
        for r in range(rounds):
            sparse_file(sparse, self.args.sparse_size, self.args.sparse_data)
            random_file(dense, self.args.sparse_data)
            order = (sparse, dense) if r % 2 else (dense, sparse)
            times = {f: self.cli_upload(f)[0] for f in order}
            ratios.append(times[sparse] / times[dense])
            detail.append(f"sparse {times[sparse]:.2f} s, dense {times[dense]:.2f} s")
            print(f"  sparse round {r + 1}: {detail[-1]}", file=sys.stderr, flush=True)
        self.report(
            f"sparse {self.args.sparse_size >> 20} MiB disk / dense upload of its "
            f"{self.args.sparse_data >> 20} MiB (time)",
            ratios,
            1.3,
            False,
            detail[-1],
        )
        sparse.unlink()
        dense.unlink()

    def cli_download(self, rounds: int) -> None:
        size = self.args.size
        if self.uploaded is None:
            random_file(self.data, size)
            self.uploaded = self.cli_upload(self.data)[2]
        ratios, detail = [], []
        for r in range(rounds):
            out = self.tmp / "out.vhd"
            settle()
            c0, t0 = self.cpu(), time.perf_counter()
            subprocess.run(
                [self.cli, "disk", "download", "-g", "rg", "-n", self.uploaded, "--file", str(out)],
                env=self.env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            seconds, cpu = time.perf_counter() - t0, self.cpu() - c0
            out.unlink()
            source = self.source_download(size)
            ratios.append(source / seconds)
            detail.append(
                f"CLI {size / seconds / 1e6:.0f} MB/s (server CPU {cpu / (size / 2**30):.2f} s/GiB), "
                f"source {size / source / 1e6:.0f} MB/s"
            )
            print(f"  cli-download round {r + 1}: {detail[-1]}", file=sys.stderr, flush=True)
        self.report("vmgallery disk download / SDK <- source (throughput)", ratios, 0.7, True, detail[-1])

    def source_download(self, size: int) -> float:
        sink = Sink(self.tmp / "source.vhd", size + 512, self.cert, self.key)
        try:
            with open(self.data, "rb") as f:
                for offset in range(0, size, 64 * MiB):
                    os.pwrite(sink.fd, f.read(64 * MiB), offset)
            client = BlobClient.from_blob_url(sink.url, connection_verify=self.cert)
            out = self.tmp / "source-out.vhd"
            settle()
            t0 = time.perf_counter()
            with open(out, "wb") as f:
                client.download_blob(max_concurrency=4).readinto(f)
                os.fsync(f.fileno())
            seconds = time.perf_counter() - t0
            out.unlink()
            return seconds
        finally:
            sink.close()

    def run(self) -> None:
        self.uploaded: str | None = None
        wanted = self.args.sections
        for section, method in (
            ("upload", self.upload),
            ("cli-upload", self.cli_uploads),
            ("sparse", self.sparse),
            ("cli-download", self.cli_download),
        ):
            if section in wanted:
                method(self.args.rounds)

    def close(self) -> None:
        time.sleep(2)  # let the last request's buffers go before the idle reading
        rss_end = rss_mib(self.server.proc.pid)
        for label, rss in (("after start", self.rss_start), ("after the run", rss_end)):
            print(f"server idle RSS {label}: {rss:.0f} MiB (goal <= 120 MiB: {'met' if rss <= 120 else 'MISSED'})")
        self.server.stop()


def forward(section: str, argv: list[str], keep) -> None:
    """Run another benchmark and print the lines of its stdout that `keep` accepts."""
    print(f"[{section}] {' '.join(argv)}", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True)
    if done.returncode:
        print(f"{section}: exited {done.returncode}\n{done.stderr[-2000:]}")
        return
    for line in done.stdout.splitlines():
        if keep(line):
            print(f"{section}: {line.strip()}")


def control_plane(tmp: Path) -> None:
    argv = [str(BENCH / "control_plane_cpu.py"), "--ops", "200", "--clients", "1,8"]
    forward("control-plane", [*argv, "--json", str(tmp / "control_plane_cpu.json")], lambda line: bool(line.strip()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=size_arg, default=1 << 30, help="bytes uploaded and downloaded (default 1G)")
    ap.add_argument("--sparse-size", type=size_arg, default=4 << 30, help="the sparse disk's size (default 4G)")
    ap.add_argument("--sparse-data", type=size_arg, default=256 << 20, help="its data (default 256M)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {','.join(SECTIONS)}")
    ap.add_argument("--rounds", type=int, default=1, help="rounds per section; the median ratio is reported")
    args = ap.parse_args(argv)
    args.sections = set(args.sections.split(","))
    if args.sections - set(SECTIONS):
        ap.error(f"unknown sections: {', '.join(sorted(args.sections - set(SECTIONS)))}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; size {args.size >> 20} MiB")
    with tempfile.TemporaryDirectory(prefix="vmg-throughput-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            bench.run()
        finally:
            bench.close()
        if "control-plane" in args.sections:
            control_plane(Path(tmp))
    if "cli-startup" in args.sections:
        forward("cli-startup", [str(BENCH / "cli_startup.py"), "--runs", "5"], lambda line: "goal" in line)
    if "latest" in args.sections:
        forward(
            "latest",
            [str(BENCH / "latest.py"), "--db", "sqlite", "--rounds", "100"],
            lambda line: bool(line.strip()),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
