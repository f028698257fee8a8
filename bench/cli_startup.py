"""CLI start-up benchmark: how long `vmgallery` takes from start to exit, against `python -c pass`.

It times, as separate processes, `vmgallery --version`, `vmgallery --help` and `vmgallery group list` against a
`vmgallery serve` it starts on loopback HTTPS (SQLite, a temporary data dir), and the interpreter alone. Each command
runs `--runs` times, interleaved so load on the machine hits all of them alike; the medians are compared. The
overhead of a command is its median minus the interpreter's, in wall time (the goals' measure) and in CPU time
(user + system: what the command costs when the machine is busy, the less noisy figure). See bench/README.md.

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


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds from start to exit, and CPU seconds (user + system) the process used."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


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
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
            for _ in range(runs):
                for name, argv in commands.items():
                    times[name].append(timed(argv, env))
        finally:
            server.terminate()
            server.wait(30)
    interpreter = times.pop("python -c pass")
    floor = [statistics.median(run[i] for run in interpreter) for i in (0, 1)]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians over {runs} runs")
    print(f"python -c pass: {floor[0] * 1000:.0f} ms wall, {floor[1] * 1000:.0f} ms CPU")
    for name, samples in times.items():
        wall, cpu = (statistics.median(run[i] for run in samples) - floor[i] for i in (0, 1))
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"  goal <= {goal * 1000:.0f} ms: {'met' if wall <= goal else 'MISSED'}"
        print(f"vmgallery {name}: overhead {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU{verdict}")


if __name__ == "__main__":
    main()
