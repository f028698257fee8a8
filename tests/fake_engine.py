"""A fake build engine for the builder's tests until the real engines (guestfs, vm) land: it changes a real ext4
disk image (a whole-disk file system, no partition table) with e2fsprogs' `debugfs -w`, and runs a tiny, recognised
subset of /bin/sh line by line. Unknown lines fail the step (exit 127), so a test cannot pass by being ignored.

Recognised: `echo TEXT`, `echo TEXT > /path`, `cat /path`, `test -f /path`, `exit N`, `sleep SECONDS` (interruptible
by cancel and the deadline), `: > /path`, `rm -f /path...` (globs in the last component), `set -e`, and lines the
deprovision script has that touch nothing a tiny image holds (`rm -rf`, `find /var/log ...`).
File steps write the fetched file at its destination. Selected with `[builder] engine = "tests.fake_engine:engine"`.
"""

from __future__ import annotations

import fnmatch
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from vmgallery.app.build_engine import BuildInterrupted, BuildStep, Machine, StepResult


def debugfs(disk: Path, command: str, write: bool = False) -> str:
    args = ["debugfs"] + (["-w"] if write else []) + ["-R", command, str(disk)]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def read_bytes(disk: Path, path: str) -> bytes | None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run(["debugfs", "-R", f"dump -p {path} {out}", str(disk)], capture_output=True, check=True)
        return out.read_bytes() if out.exists() else None


def read_file(disk: Path, path: str) -> str | None:
    data = read_bytes(disk, path)
    return None if data is None else data.decode()


def write_file(disk: Path, path: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.write_bytes(data)
        subprocess.run(["debugfs", "-w", "-R", f"rm {path}", str(disk)], capture_output=True)
        debugfs(disk, f"write {src} {path}", write=True)


def _ls(disk: Path, directory: str) -> list[str]:
    out = debugfs(disk, f"ls -p {directory}")
    return [
        line.split("/")[5]
        for line in out.splitlines()
        if line.count("/") >= 6 and line.split("/")[5] not in (".", "..")
    ]


class FakeEngine:
    def __init__(self, name: str):
        self.name = name

    def run(self, disk, steps, machine: Machine, *, on_line, should_stop, deadline) -> list[StepResult]:
        results: list[StepResult] = []
        if steps:  # the shape the use case chose, for the tests to see (a real engine sizes its VM with it)
            shape = f"{machine.vcpus} vCPUs, {machine.memory_mb} MiB, {machine.os_type} {machine.hyper_v_generation}"
            on_line(steps[0], f"machine: {shape}")
        for step in steps:
            started = time.monotonic()
            tail: list[str] = []

            def say(line: str, step: BuildStep = step, tail: list[str] = tail) -> None:
                tail.append(line)
                on_line(step, line)

            code = self._step(Path(disk), step, say, should_stop, deadline, results)
            results.append(StepResult(step.number, step.name, code, time.monotonic() - started, tuple(tail[-20:])))
            if code != 0:
                break
        return results

    def _stop(self, should_stop, deadline, results) -> None:
        reason = should_stop()
        if reason is None and time.monotonic() >= deadline:
            reason = "timeout"
        if reason is not None:
            raise BuildInterrupted(reason, results)

    def _step(self, disk: Path, step: BuildStep, say, should_stop, deadline, results) -> int:
        self._stop(should_stop, deadline, results)
        if step.upload_from is not None:
            write_file(disk, step.upload_to, step.upload_from.read_bytes())
            say(f"uploaded {step.upload_to}")
            return 0
        for raw in (step.shell or "").splitlines():
            self._stop(should_stop, deadline, results)
            line = raw.strip()
            if not line or line.startswith("#") or line == "set -e":
                continue
            code = self._line(disk, line, say, should_stop, deadline, results)
            if code != 0:
                return code
        return 0

    def _line(self, disk: Path, line: str, say, should_stop, deadline, results) -> int:
        if line.startswith(": > "):
            write_file(disk, line[4:].strip(), b"")
            return 0
        if line.startswith("find /var/log") or line.startswith("rm -rf /var/lib/cloud"):
            return 0
        words = shlex.split(line)
        cmd = words[0]
        if cmd == "echo":
            if ">" in words:
                at = words.index(">")
                write_file(disk, words[at + 1], (" ".join(words[1:at]) + "\n").encode())
            else:
                say(" ".join(words[1:]))
            return 0
        if cmd == "cat":
            text = read_file(disk, words[1])
            if text is None:
                say(f"cat: can't open '{words[1]}': No such file or directory")
                return 1
            for out in text.splitlines():
                say(out)
            return 0
        if cmd == "test" and words[1] == "-f":
            return 0 if read_bytes(disk, words[2]) is not None else 1
        if cmd == "exit":
            return int(words[1])
        if cmd == "sleep":
            end = time.monotonic() + float(words[1])
            while time.monotonic() < end:
                self._stop(should_stop, deadline, results)
                time.sleep(0.05)
            return 0
        if cmd == "rm" and words[1] == "-f":
            for path in words[2:]:
                directory, _, pattern = path.rpartition("/")
                try:
                    names = _ls(disk, directory or "/")
                except subprocess.CalledProcessError:
                    continue
                for name in names:
                    if fnmatch.fnmatch(name, pattern):
                        debugfs(disk, f"rm {directory}/{name}", write=True)
            return 0
        say(f"sh: {cmd}: not found")
        return 127


def engine(name: str) -> FakeEngine:
    return FakeEngine(name)
