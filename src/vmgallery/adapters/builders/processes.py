"""Ending every process a build started, found through /proc rather than process groups.

libguestfs's QEMU calls setpgid and its recovery process is a sibling of it, so a signal to the engine's process group
misses them; and a process whose parent died is re-parented away from us. So a build collects the whole tree under
the one process it started (by parent PID, before killing anything, so nothing escapes in between), kills all of it
with SIGKILL, and waits until each is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return parents


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True unless the process is gone or a zombie (a zombie holds no resources; its parent or init reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def kill_tree(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> list[int]:
    """SIGKILL `proc` and every descendant; return once all are gone (or `timeout` passed). Returns their PIDs."""
    pids = [proc.pid, *descendants(proc.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    end = time.monotonic() + timeout
    for pid in pids[1:]:
        while alive(pid) and time.monotonic() < end:
            time.sleep(0.02)  # not our child: nothing to wait() on, only its /proc entry to watch
    return pids
