"""CLI start-up benchmark: how long `vmgallery` takes from start to exit, against `python -c pass`.

It times, as separate processes, `vmgallery --version`, `vmgallery --help` and `vmgallery group list` against a
`vmgallery serve` it starts on loopback HTTPS (SQLite, a temporary data dir), and the interpreter alone. Each command
runs `--runs` times, interleaved so load on the machine hits all of them alike; the medians are compared. The
overhead of a command is its median minus the interpreter's. See bench/README.md.

    .venv/bin/python bench/cli_startup.py
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GOALS = {"--version": 0.3, "group list": 0.5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    args = [sys.executable, "-m", "vmgallery", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    ready = threading.Event()

    def pump() -> None:
        for line in proc.stderr:
            if "Uvicorn running on" in line:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(60) or proc.poll() is not None:
        raise SystemExit("the server did not start")
    return proc


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    cli = str(Path(sys.executable).parent / "vmgallery")
    with tempfile.TemporaryDirectory(prefix="vmg-cli-bench-") as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        server = start_server(data_dir, port)
        try:
            env = os.environ | {
                "VMGALLERY_ENDPOINT": f"https://127.0.0.1:{port}",
                "VMGALLERY_TOKEN": (data_dir / "admin-token").read_text().strip(),
                "VMGALLERY_CA_BUNDLE": str(data_dir / "tls" / "cert.pem"),
                "XDG_CONFIG_HOME": str(Path(tmp) / "config"),
            }
            commands = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "--version": [cli, "--version"],
                "--help": [cli, "--help"],
                "group list": [cli, "group", "list"],
            }
            for argv in commands.values():  # warm the page cache and the server's connection pool
                timed(argv, env)
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(runs):
                for name, argv in commands.items():
                    times[name].append(timed(argv, env))
        finally:
            server.terminate()
            server.wait(30)
    floor = statistics.median(times.pop("python -c pass"))
    print(f"python -c pass: median {floor * 1000:.0f} ms over {runs} runs")
    for name, samples in times.items():
        overhead = statistics.median(samples) - floor
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"  goal <= {goal * 1000:.0f} ms: {'met' if overhead <= goal else 'MISSED'}"
        print(
            f"vmgallery {name}: median {statistics.median(samples) * 1000:.0f} ms, overhead {overhead * 1000:.0f} ms"
            + verdict
        )


if __name__ == "__main__":
    main()
