"""The guestfs engine's child process: one libguestfs appliance, every step of a build, JSON events on stdout.

It runs under the system Python, which has Debian's python3-guestfs bindings (a project virtualenv may not see
them), and imports nothing of vmgallery. Input: the path of a JSON job file (disk, format, memory, CPUs, network,
steps) and the PID of the engine's process. Output, one JSON object per line, flushed at once:

    {"ev": "launching"}                                    the appliance is starting
    {"ev": "launched", "seconds": 23.1, "root": "/dev/sda1", "os": "linux vmgtiny"}
    {"ev": "line", "step": 2, "text": "..."}               one output line of a step, as the guest writes it
    {"ev": "done", "step": 2, "rc": 0, "seconds": 0.8}
    {"ev": "error", "message": "..."}                      the engine failed (not a step); the process exits 1
    {"ev": "finished"}                                     the file systems are synced and the appliance is down

A Shell step runs as `/bin/sh -c SCRIPT` in the guest's root (libguestfs's `sh`: a chroot with /dev, /proc and /sys
bound in), stdin from /dev/null, stdout and stderr merged. Its output streams live: a wrapper prefixes each line with
a per-build nonce and writes it to /dev/console, which is the appliance's serial console, and libguestfs hands the
console to us as APPLIANCE events while the call runs. The wrapper's own stdout, returned when the call ends, is the
step's exit code alone. Nothing is written to the guest's disk but what the steps write.
"""

import ctypes
import json
import os
import secrets
import shlex
import shutil
import signal
import stat
import sys
import time

import guestfs  # type: ignore[import-not-found]

PR_SET_PDEATHSIG = 1


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def wrapper(script, prefix, end):
    # The exit code leaves through fd 3 (the command substitution) while the output goes through the pipe, so it
    # survives the pipeline without pipefail, in any POSIX sh (dash, busybox ash, bash). The step does not inherit
    # fd 3, so a daemon it starts cannot hold the substitution open.
    return (
        f"s={shlex.quote(script)}\n"
        'rc=$( { { /bin/sh -c "$s" </dev/null 2>&1 3>&-; echo $? >&3; } | '
        f'while IFS= read -r l || [ -n "$l" ]; do printf \'%s%s\\n\' {shlex.quote(prefix)} "$l"; done '
        ">/dev/console 3>&-; } 3>&1 )\n"
        f"printf '%s\\n' {shlex.quote(end)} >/dev/console\n"
        'echo "$rc"\n'
    )


class Console:
    """Reassembles the console's bytes into lines and passes on those a step wrote (they carry the nonce)."""

    def __init__(self, nonce):
        self.nonce = nonce
        self.buffer = b""
        self.step = None
        self.ended = False

    def begin(self, number):
        self.step = number
        self.prefix = f"\x1e{self.nonce} {number} "
        self.end = f"\x1e{self.nonce} {number} end\x1e"
        self.ended = False

    def feed(self, data):
        # The bindings hand the buffer over as str (decoded) or bytes, depending on their version.
        self.buffer += data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        *lines, self.buffer = self.buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            at = line.find(self.prefix) if self.step is not None else -1
            if at < 0:
                continue
            text = line[at + len(self.prefix) :]
            if text == "end\x1e":
                self.ended = True
            else:
                emit(ev="line", step=self.step, text=text)


def die_with_parent():
    # If the engine's process dies, so does this one, and libguestfs's recovery process then ends the appliance:
    # no build goes on unwatched past its deadline.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(sys.argv[2]):
        sys.exit(1)  # the parent was already gone


def hypervisor_dying_with_us(g):
    """Have the appliance's QEMU killed by the kernel the moment this process ends, however it ends.

    libguestfs's own guard (its recovery process) polls every 2 s and only sees this process gone once it is reaped:
    a killed runner leaves the appliance running, its disk open, for a while or, unreaped, for good. PDEATHSIG does
    not pass through fork, so QEMU gets it from a wrapper that execs it under `setpriv --pdeathsig`. libguestfs keys
    its cache of QEMU's features on the size and mtime of the binary it runs, so the wrapper is written once per
    QEMU build (it names the real binary's size and mtime) at a fixed place and left alone while unchanged.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return  # util-linux without it: libguestfs's recovery process still ends QEMU, seconds later
    real = g.get_hv()
    st = os.stat(real)
    script = (
        f"#!/bin/sh\n# vmgallery: {real} ({st.st_size} bytes, mtime {int(st.st_mtime)}) dies with its parent\n"
        f'exec {shlex.quote(setpriv)} --pdeathsig KILL -- {shlex.quote(real)} "$@"\n'
    )
    folder = os.path.join(g.get_cachedir(), f".vmgallery-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    made = os.lstat(folder)
    if not stat.S_ISDIR(made.st_mode) or made.st_uid != os.getuid() or made.st_mode & 0o022:
        return  # in a shared /var/tmp, a folder someone else made or may write to: never run what it holds
    if os.statvfs(folder).f_flag & os.ST_NOEXEC:
        return  # a hardened /var/tmp runs no scripts
    path = os.path.join(folder, "qemu")
    try:
        with open(path) as f:
            current = f.read()
    except OSError:
        current = None
    if current != script:
        temporary = f"{path}.{os.getpid()}"
        with open(temporary, "w") as f:
            f.write(script)
        os.chmod(temporary, 0o755)
        os.replace(temporary, path)  # atomic: a runner starting meanwhile sees the old wrapper or the new
    g.set_hv(path)
    g.set_recovery_proc(False)  # nothing left for it to do, and one process fewer to outlive us


def main():
    die_with_parent()
    with open(sys.argv[1]) as f:
        job = json.load(f)
    g = guestfs.GuestFS(python_return_dict=True)
    hypervisor_dying_with_us(g)
    console = Console(secrets.token_hex(6))
    g.set_event_callback(lambda _ev, _h, buf, _arr: console.feed(buf), guestfs.EVENT_APPLIANCE)
    g.add_drive_opts(job["disk"], format=job["format"], readonly=False, cachemode="unsafe")
    g.set_memsize(job["memory_mb"])
    g.set_smp(job["vcpus"])
    g.set_network(job["network"])
    emit(ev="launching")
    started = time.monotonic()
    try:
        g.launch()
        roots = g.inspect_os()
    except RuntimeError as e:
        emit(ev="error", message=f"the libguestfs appliance did not start: {e}")
        return 1
    if not roots:
        emit(ev="error", message="no operating system was found on the disk (libguestfs inspection)")
        return 1
    root = roots[0]
    mounts = g.inspect_get_mountpoints(root)
    for mountpoint in sorted(mounts, key=len):
        g.mount(mounts[mountpoint], mountpoint)
    described = f"{g.inspect_get_type(root)} {g.inspect_get_distro(root)}"
    emit(ev="launched", seconds=round(time.monotonic() - started, 3), root=root, os=described)

    for step in job["steps"]:
        number = step["number"]
        t0 = time.monotonic()
        if step.get("upload_from") is not None:
            rc = upload(g, number, step["upload_from"], step["upload_to"])
        elif step.get("shell") is not None:
            rc = shell(g, console, number, step["shell"])
        else:
            emit(ev="line", step=number, text="guestfs: nothing to restart (this engine does not boot the guest)")
            rc = 0
        emit(ev="done", step=number, rc=rc, seconds=round(time.monotonic() - t0, 3))
        if rc != 0:
            break
    try:
        g.sync()
        g.umount_all()
        hypervisor = g.get_pid()
        g.shutdown()
    except RuntimeError as e:
        emit(ev="error", message=f"the disk could not be synced: {e}")
        return 1
    # Without its recovery process libguestfs signals QEMU at shutdown but does not reap it: wait here, so the disk
    # is closed before the engine takes it back (and QEMU's CPU time is counted as this process's children's).
    try:
        os.waitpid(hypervisor, 0)
    except ChildProcessError:
        pass  # reaped already (a libguestfs that still does)
    g.close()
    emit(ev="finished")
    return 0


def upload(g, number, source, dest):
    try:
        g.mkdir_p(os.path.dirname(dest) or "/")
        g.upload(source, dest)
    except RuntimeError as e:
        emit(ev="line", step=number, text=f"cannot upload {dest}: {e}")
        return 1
    emit(ev="line", step=number, text=f"copied {os.path.getsize(source)} bytes to {dest}")
    return 0


def shell(g, console, number, script):
    console.begin(number)
    try:
        out = g.sh(wrapper(script, console.prefix, console.end))
    except RuntimeError as e:
        emit(ev="line", step=number, text=f"guestfs: the step could not run: {e}")
        return 1
    # The console may lag the call's reply: cheap calls keep libguestfs reading it until the end marker is in.
    waited = time.monotonic()
    while not console.ended and time.monotonic() - waited < 5:
        g.ping_daemon()
    console.step = None
    try:
        return int(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        emit(ev="line", step=number, text=f"guestfs: no exit code came back (got {out!r})")
        return 1


if __name__ == "__main__":
    sys.exit(main())
