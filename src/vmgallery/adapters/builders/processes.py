"""Ending every process a build started, found through /proc rather than process groups.

libguestfs's QEMU calls setpgid and its recovery process is a sibling of it, so a signal to the engine's process group
misses them; and a process whose parent died is re-parented away from us. So a build collects the whole tree under
the one process it started (by parent PID, before killing anything, so nothing escapes in between), kills all of it
with SIGKILL, and waits until each is gone. A tree whose root died on its own is found again from a snapshot taken
while it lived (`tree`): each process is named by its PID and start time, so a PID reused meanwhile is left alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

Identity = tuple[int, int]  # (PID, start time in clock ticks since boot)


def dying_with_parent(args: list[str]) -> list[str]:
    """`args` under util-linux's `setpriv --pdeathsig KILL`: the kernel kills the process when the thread that started
    it ends, so a killed server leaves no VM running on (as given where setpriv is missing)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *args] if setpriv else args


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3 on), or None when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    return stat[stat.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def identity(pid: int) -> Identity | None:
    """The process's PID and start time; None if it is gone or a zombie."""
    fields = _stat(pid)
    return None if fields is None or fields[0] == "Z" else (pid, int(fields[19]))


def alive(process: Identity) -> bool:
    """True unless the process is gone, a zombie (it holds no resources; its parent or init reaps it) or its PID now
    names another process."""
    return identity(process[0]) == process


def tree(pid: int) -> list[Identity]:
    """The live processes under `pid` (not itself), to end later even if `pid` dies and they are re-parented."""
    return [i for i in map(identity, descendants(pid)) if i is not None]


def end(processes: list[Identity], timeout: float = 10.0) -> None:
    """SIGKILL each process still alive; return once all are gone (or `timeout` passed)."""
    for process in processes:
        if alive(process):
            try:
                os.kill(process[0], signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for process in processes:
        while alive(process) and time.monotonic() < deadline:
            time.sleep(0.02)  # not our child: nothing to wait() on, only its /proc entry to watch


def kill_tree(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGKILL `proc` and every descendant; return once all are gone (or `timeout` passed)."""
    others = tree(proc.pid)
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    end(others, timeout)
    proc.wait()
