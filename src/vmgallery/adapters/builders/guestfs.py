"""The guestfs build engine: the steps run against the disk's file systems in one libguestfs appliance, no boot.

libguestfs starts a small appliance VM (QEMU, direct backend, TCG unless KVM really works) with the disk attached,
finds the guest's root by inspection, mounts its file systems and runs each Shell step in a chroot of them with the
guest's own /bin/sh, and copies each File step in. One appliance launch serves every step of a build: the launch
costs about 25 s under TCG, a step about a second. No root, no loop mount; any format QEMU reads.

The appliance is driven by `guestfs_runner.py` under the system Python, which has Debian's python3-guestfs bindings;
this side reads its JSON events, passes each output line on as it comes, checks for cancellation and the deadline
between events, and on either kills the runner and the appliance's QEMU by PID (QEMU sits in a process group of its
own). Whatever ends the runner, or this process, the kernel ends its QEMU at once (the runner starts QEMU under
PR_SET_PDEATHSIG); a runner that died on its own is seen to have taken its processes along before `run` returns.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...app.build_engine import (
    BuildEngineError,
    BuildInterrupted,
    BuildStep,
    Machine,
    OnLine,
    StepResult,
)
from . import accel as accel_probe
from . import processes
from .processes import kill_tree

RUNNER = Path(__file__).with_name("guestfs_runner.py")
TAIL_LINES = 20
POLL_SECONDS = 0.2  # how often cancellation and the deadline are looked at while a step runs
TREE_SECONDS = 1.0  # how often the runner's processes are noted, to end them should the runner die on its own
SYSTEM_PYTHON = "/usr/bin/python3"  # the interpreter Debian's python3-guestfs is built for


class GuestfsEngine:
    name = "guestfs"

    def __init__(
        self,
        *,
        accel: str = "auto",
        network: bool = True,
        disk_format: str = "raw",
        max_memory_mb: int = 4096,
        python: str = SYSTEM_PYTHON,
        work_dir: Path | None = None,
    ):
        self.accel = accel
        self.network = network
        self.disk_format = disk_format
        self.max_memory_mb = max_memory_mb
        self.python = python
        self.work_dir = work_dir

    def run(
        self,
        disk: Path,
        steps: Sequence[BuildStep],
        machine: Machine,
        *,
        on_line: OnLine,
        should_stop: Callable[[], str | None],
        deadline: float,
    ) -> list[StepResult]:
        if not steps:
            return []
        if machine.os_type != "Linux" and any(s.shell is not None for s in steps):
            raise BuildEngineError("the guestfs engine runs shell steps on Linux guests only; use the vm engine")
        first = steps[0]
        on_line(first, "guestfs: starting the libguestfs appliance")
        accel = accel_probe.choose(self.accel)  # the first "auto" in a process probes KVM: seconds, after the line
        env = dict(os.environ, LIBGUESTFS_BACKEND="direct")
        if accel == "tcg":
            env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
        with tempfile.TemporaryDirectory(prefix="vmg-guestfs-", dir=self.work_dir) as tmp:
            job = Path(tmp) / "job.json"
            job.write_text(json.dumps(self._job(disk, steps, machine)))
            on_line(first, f"guestfs: {accel.upper()}, {len(steps)} step(s) in one appliance")
            stderr = open(Path(tmp) / "stderr", "w+b")
            try:
                proc = subprocess.Popen(
                    [self.python, "-I", str(RUNNER), str(job), str(os.getpid())],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=env,
                    start_new_session=True,
                )
            except OSError as e:
                stderr.close()
                raise BuildEngineError(f"cannot start the guestfs runner with {self.python}: {e}") from e
            try:
                return _Session(proc, steps, on_line, should_stop, deadline).follow(stderr)
            finally:
                if proc.poll() is None:
                    kill_tree(proc)
                stderr.close()

    def _job(self, disk: Path, steps: Sequence[BuildStep], machine: Machine) -> dict[str, Any]:
        return {
            "disk": str(disk.resolve()),
            "format": self.disk_format,
            "memory_mb": max(512, min(machine.memory_mb, self.max_memory_mb)),
            "vcpus": max(1, min(machine.vcpus, os.cpu_count() or 1)),
            "network": self.network,
            "steps": [
                {
                    "number": s.number,
                    "shell": s.shell,
                    "upload_from": str(s.upload_from) if s.upload_from is not None else None,
                    "upload_to": s.upload_to,
                }
                for s in steps
            ],
        }


class _Session:
    """One run of the runner: its events in, results and lines out, stop and deadline checked between events."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        steps: Sequence[BuildStep],
        on_line: OnLine,
        should_stop: Callable[[], str | None],
        deadline: float,
    ):
        self.proc = proc
        self.steps = {s.number: s for s in steps}
        self.first = steps[0]
        self.on_line = on_line
        self.should_stop = should_stop
        self.deadline = deadline
        self.results: list[StepResult] = []
        self.tails: dict[int, collections.deque[str]] = collections.defaultdict(
            lambda: collections.deque(maxlen=TAIL_LINES)
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.tree: list[processes.Identity] = []
        self.tree_noted = 0.0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                self.events.put(json.loads(raw))
            except ValueError:
                continue  # not ours: a library printed to stdout
        self.events.put(None)

    def _interrupt_reason(self) -> str | None:
        if time.monotonic() >= self.deadline:
            return "timeout"
        return self.should_stop()

    def follow(self, stderr: Any) -> list[StepResult]:
        while True:
            if time.monotonic() - self.tree_noted >= TREE_SECONDS:
                self.tree, self.tree_noted = processes.tree(self.proc.pid), time.monotonic()
            reason = self._interrupt_reason()
            if reason is not None:
                kill_tree(self.proc)
                raise BuildInterrupted(reason, self.results)
            try:
                event = self.events.get(timeout=max(0.0, min(POLL_SECONDS, self.deadline - time.monotonic())))
            except queue.Empty:
                continue
            if event is None:
                self.proc.wait()
                # Killed from outside (the OOM killer, an operator): its appliance dies with it (the runner's QEMU
                # wrapper), which is seen through before the disk is handed back.
                processes.end(self.tree)
                stderr.seek(0)
                said = stderr.read().decode(errors="replace").strip().splitlines()[-5:]
                raise BuildEngineError(
                    f"the guestfs runner ended early (exit {self.proc.returncode}): " + " | ".join(said)
                )
            kind = event["ev"]
            if kind == "line":
                step = self.steps[event["step"]]
                self.tails[step.number].append(event["text"])
                self.on_line(step, event["text"])
            elif kind == "done":
                step = self.steps[event["step"]]
                self.results.append(
                    StepResult(step.number, step.name, event["rc"], event["seconds"], tuple(self.tails[step.number]))
                )
            elif kind == "launched":
                self.on_line(self.first, f"guestfs: appliance up in {event['seconds']:.1f} s: {event['os']} on "
                             f"{event['root']}")  # fmt: skip
            elif kind == "error":
                kill_tree(self.proc)
                raise BuildEngineError(event["message"])
            elif kind == "finished":
                self.proc.wait()
                return self.results
