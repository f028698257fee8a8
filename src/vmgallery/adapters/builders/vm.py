"""The vm build engine: QEMU boots the disk and the steps run in the running guest, services and reboots included.

The way Packer's qemu builder works, without SSH: before the boot, a small agent (vm_agent.sh) is written into the
guest's ext4 root with debugfs (no mount, no root) and hooked into its boot (a systemd unit, or an rcS-style
/etc/init.d/S00 script for busybox/sysv guests); the steps ride on a second disk, a tar archive the agent unpacks
followed by each File step's bytes (its script copies them into place with dd, so they never wait in the guest's
memory); the agent reports each step's start, output lines and exit code on the guest's second serial port, which
QEMU hands to us on a pipe, and powers the guest off at the end. A reboot step restarts the guest and the agent
resumes after it (its progress kept in /var/lib/vmg-agent). After the run the agent and its hooks are removed.

How the guest boots follows its generation:
- V1 (BIOS): the newest kernel and initrd under /boot on the root partition are read out and given to QEMU directly
  (-kernel/-initrd, root= that partition); under TCG the kernel is the ELF inside the bzImage (see accel.py), which
  spares the guest a decompression that takes seconds. No boot loader runs, so a V1 disk needs none.
- V2 (UEFI): OVMF boots the disk through its own boot path, the way Azure's Gen2 firmware does: QEMU gets OVMF's code
  (read-only) and a copy of its empty variable store as pflash drives and nothing else, so the firmware finds the
  boot loader on the EFI System Partition (/EFI/BOOT/BOOTX64.EFI, the removable-media path) and that boot loader
  the kernel, its command line and initrd. The kernel need not be under /boot; the agent goes into the ext2/3/4 root.
KVM only when the probe says it works, else TCG. QEMU runs in its own session and is killed by PID on cancellation,
at the deadline, and whenever the run ends another way; should this process be killed, the kernel kills QEMU too
(PR_SET_PDEATHSIG, processes.dying_with_parent).
"""

from __future__ import annotations

import io
import os
import posixpath
import queue
import re
import secrets
import shlex
import shutil
import struct
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from pathlib import Path

from ...app.build_engine import BuildEngineError, BuildInterrupted, BuildStep, Machine, OnLine, StepResult
from . import accel as accel_probe
from .processes import dying_with_parent, kill_tree

AGENT = Path(__file__).with_name("vm_agent.sh")
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")  # Debian's ovmf: without Secure Boot, so any boot loader runs
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")  # the empty variable store each run copies, as a new VM's NVRAM
TAIL_LINES = 20
UPLOAD_BLOCK = 1 << 16  # a File step's bytes start on this boundary of the steps disk; the agent's dd reads blocks
POLL_SECONDS = 0.2
AGENT_PATH = "/var/lib/vmg-agent/agent.sh"
UNIT_PATH = "/etc/systemd/system/vmg-agent.service"
UNIT_LINK = "/etc/systemd/system/multi-user.target.wants/vmg-agent.service"
RC_SCRIPT = "/etc/init.d/S00vmg-agent"
UNIT = f"""[Unit]
Description=vmgallery build agent (removed after the build)
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/bin/sh {AGENT_PATH}
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""
_VERSION = re.compile(r"(\d+)")
_ESP_TYPE = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b").bytes_le  # an EFI System Partition's GPT type
_TERMINAL_CONTROL = re.compile(r"\x1b\[[0-9;=?]*[A-Za-z]")  # OVMF draws its console with these


class VmEngine:
    name = "vm"

    def __init__(
        self,
        *,
        accel: str = "auto",
        network: bool = True,
        max_memory_mb: int = 4096,
        boot_timeout: float = 300.0,
        work_dir: Path | None = None,
    ):
        self.accel = accel
        self.network = network
        self.max_memory_mb = max_memory_mb
        self.boot_timeout = boot_timeout  # from QEMU's start (or a reboot) to the agent's first word
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
        if machine.os_type != "Linux":
            raise BuildEngineError("the vm engine boots Linux guests only")
        uefi = machine.hyper_v_generation == "V2"
        if uefi and not (OVMF_CODE.exists() and OVMF_VARS.exists()):
            raise BuildEngineError(f"a Gen2 (UEFI) guest boots under OVMF, and {OVMF_CODE} is missing "
                                   "(Debian: apt-get install ovmf)")  # fmt: skip
        first = steps[0]
        on_line(first, "vm: preparing the guest")
        accel = accel_probe.choose(self.accel)  # the first "auto" in a process probes KVM: seconds, after the line
        with tempfile.TemporaryDirectory(prefix="vmg-vm-", dir=self.work_dir) as tmp:
            folder = Path(tmp)
            guest = _Guest.find(disk, folder, with_kernel=not uefi)
            nonce = secrets.token_hex(6)
            guest.install_agent(AGENT.read_text().replace("@NONCE@", nonce), folder)
            booted = False
            try:
                steps_disk = _steps_disk(steps, folder / "steps.tar")
                if guest.kernel is not None and accel == "tcg":
                    guest.kernel = accel_probe.cached_vmlinux(guest.kernel)
                args = self._qemu_args(
                    disk, steps_disk, guest, machine, accel, folder, reboots=any(s.reboot for s in steps)
                )
                booted = True
                proc = subprocess.Popen(
                    dying_with_parent(args),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=open(folder / "qemu.stderr", "wb"),
                    start_new_session=True,
                )
                how = (
                    "the disk's UEFI boot loader under OVMF"
                    if uefi
                    else f"{guest.kernel_name} from partition {guest.partition}"
                )
                try:
                    on_line(first, f"vm: booting {how} ({accel.upper()})")
                    return _Session(proc, steps, nonce, on_line, should_stop, deadline, self.boot_timeout).follow(
                        folder
                    )
                finally:
                    if proc.poll() is None:
                        kill_tree(proc)
            finally:
                if not booted:
                    # Once the guest ran, the agent removes itself: its root may hold a journal to replay, which
                    # debugfs does not do, so an edit from here could be undone at the next mount.
                    guest.remove_agent()

    def _qemu_args(
        self, disk: Path, steps_disk: Path, guest: _Guest, machine: Machine, accel: str, folder: Path, *, reboots: bool
    ) -> list[str]:
        qemu = shutil.which("qemu-system-x86_64")
        if qemu is None:
            raise BuildEngineError("qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)")
        args = [
            qemu, "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
            "-m", str(max(256, min(machine.memory_mb, self.max_memory_mb))),
            "-smp", str(max(1, min(machine.vcpus, os.cpu_count() or 1))),
            "-display", "none", "-monitor", "none", "-nodefaults",
            "-serial", f"file:{folder / 'console.log'}",
            "-chardev", "stdio,id=agent,signal=off", "-serial", "chardev:agent",
            "-drive", f"file={disk},if=virtio,format=raw,cache=unsafe",
            "-drive", f"file={steps_disk},if=virtio,format=raw,readonly=on",
        ]  # fmt: skip
        if guest.kernel is None:
            nvram = folder / "OVMF_VARS.fd"  # the firmware writes its boot entries here: a new VM's, for this run only
            shutil.copyfile(OVMF_VARS, nvram)
            args += [
                "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                "-drive", f"if=pflash,format=raw,unit=1,file={nvram}",
            ]  # fmt: skip
        else:
            args += [
                "-kernel", str(guest.kernel), "-initrd", str(guest.initrd),
                "-append", f"root=/dev/vda{guest.partition} rw console=ttyS0 panic=-1 quiet",
            ]  # fmt: skip
        if not reboots:
            args.append("-no-reboot")  # a guest that panics or reboots unasked ends the run instead of looping
        if self.network:
            # No iPXE option ROM: nothing boots from the network, and OVMF loading it costs a Gen2 boot 0.3 s of CPU.
            args += ["-netdev", "user,id=net", "-device", "virtio-net-pci,netdev=net,romfile="]
        else:
            args += ["-nic", "none"]
        return args


def _steps_disk(steps: Sequence[BuildStep], dest: Path) -> Path:
    """The second disk: a 512-byte header `vmg-steps BYTES`, a tar archive of BYTES the agent unpacks (`order`, and per
    step N a folder with `script` or `noop`, and `reboot` when the guest restarts after it), then each File step's
    bytes raw, on a block boundary after it.

    A File step's script copies its bytes from the disk to their destination with dd: unpacked with the archive they
    would wait in the guest's memory (/run is a tmpfs) and be copied twice."""
    uploads = {s.number: s.upload_from for s in steps if s.upload_from is not None}
    sizes = {number: path.stat().st_size for number, path in uploads.items()}

    def archive(offsets: dict[int, int]) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:

            def add(name: str, data: bytes, mode: int = 0o644) -> None:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))

            add("order", "".join(f"{s.number}\n" for s in steps).encode())
            for s in steps:
                if s.number in uploads:
                    to, size = shlex.quote(s.upload_to or ""), sizes[s.number]
                    blocks = f"skip={offsets[s.number] // UPLOAD_BLOCK} count={-(-size // UPLOAD_BLOCK)}"
                    script = (
                        f"mkdir -p {shlex.quote(posixpath.dirname(s.upload_to or '') or '/')} && "
                        f"dd if=/dev/vdb of={to} bs={UPLOAD_BLOCK} {blocks} status=none && truncate -s {size} {to} && "
                        f"echo {shlex.quote(f'copied {size} bytes to {s.upload_to}')}\n"
                    )
                    add(f"{s.number}/script", script.encode(), 0o755)
                elif s.shell is not None:
                    add(f"{s.number}/script", s.shell.encode(), 0o755)
                else:
                    add(f"{s.number}/noop", b"")
                if s.reboot:
                    add(f"{s.number}/reboot", b"")
        return out.getvalue()

    def aligned(n: int) -> int:
        return -(-n // UPLOAD_BLOCK) * UPLOAD_BLOCK

    # The scripts name the offsets, which follow the archive: a block of slack takes the offsets' longer digits.
    room = aligned(512 + len(archive(dict.fromkeys(uploads, 0))) + UPLOAD_BLOCK)
    offsets, end = {}, room
    for number in uploads:
        offsets[number], end = end, aligned(end + sizes[number])
    tar = archive(offsets)  # whole 512-byte blocks, as tarfile pads
    if 512 + len(tar) > room:
        raise BuildEngineError("the steps' archive outgrew its room on the steps disk")
    with open(dest, "wb") as f:
        f.write(f"vmg-steps {len(tar)}\n".encode().ljust(512, b"\0") + tar)
        for number, path in uploads.items():
            f.seek(offsets[number])
            with open(path, "rb") as source:
                shutil.copyfileobj(source, f, 1 << 20)
        f.truncate(end)  # whole blocks for dd
    return dest


class _Guest:
    """The guest's root file system, seen through debugfs: its kernel, its init system, the agent's hooks."""

    def __init__(
        self, disk: Path, partition: int, offset: int, kernel: Path | None, initrd: Path | None, kernel_name: str
    ):
        self.disk, self.partition, self.offset = disk, partition, offset
        self.kernel, self.initrd, self.kernel_name = kernel, initrd, kernel_name  # None: the firmware boots the disk
        self.installed: list[str] = []

    @classmethod
    def find(cls, disk: Path, folder: Path, *, with_kernel: bool) -> _Guest:
        """The root partition; `with_kernel`, the one holding the newest kernel and its initrd under /boot, both
        copied into `folder`."""
        partitions = _partitions(disk)
        if not with_kernel and not any(esp for _, _, esp in partitions):
            raise BuildEngineError(
                "a Gen2 (UEFI) source boots from an EFI System Partition, and this disk has none: a Gen1 (BIOS) image? "
                "Its hyperVGeneration would then be V1"
            )
        for number, offset, _ in partitions:
            if not with_kernel:
                if _has(disk, offset, "/etc"):
                    return cls(disk, number, offset, None, None, "")
                continue
            listing = _debugfs(disk, offset, ["ls -p /boot"], check=False)
            names = [fields[5] for fields in (line.split("/") for line in listing.splitlines()) if len(fields) > 6]
            kernels = sorted((n for n in names if n.startswith("vmlinuz-")), key=_version_key)
            for name in reversed(kernels):
                version = name.removeprefix("vmlinuz-")
                if f"initrd.img-{version}" in names:
                    kernel, initrd = folder / "vmlinuz", folder / "initrd.img"
                    _debugfs(disk, offset, [f"dump /boot/{name} {kernel}", f"dump /boot/initrd.img-{version} {initrd}"])
                    if kernel.exists() and initrd.exists():
                        return cls(disk, number, offset, kernel, initrd, name)
        if not with_kernel:
            raise BuildEngineError("no ext2/3/4 root file system (one with /etc) on the disk: the agent goes there")
        raise BuildEngineError(
            "no kernel and initrd under /boot on an ext2/3/4 partition: the vm engine boots a Gen1 (BIOS) guest's own "
            "kernel directly"
        )

    def install_agent(self, agent: str, folder: Path) -> None:
        systemd = any(_has(self.disk, self.offset, p) for p in ("/usr/lib/systemd/systemd", "/lib/systemd/systemd"))
        hooks = [UNIT_LINK, UNIT_PATH, AGENT_PATH] if systemd else [RC_SCRIPT]
        script = folder / "agent.sh"
        script.write_text(agent.replace("@CLEANUP@", " ".join(hooks)))
        commands = []
        if systemd:
            unit = folder / "vmg-agent.service"
            unit.write_text(UNIT)
            for d in ("/var", "/var/lib", "/var/lib/vmg-agent", "/etc/systemd/system/multi-user.target.wants"):
                commands.append(f"mkdir {d}")
            commands += [
                f"write {script} {AGENT_PATH}",
                f"write {unit} {UNIT_PATH}",
                f"symlink {UNIT_LINK} {UNIT_PATH}",
            ]
            self.installed = [UNIT_LINK, UNIT_PATH, AGENT_PATH, "/var/lib/vmg-agent"]
            modes = {AGENT_PATH: "0100755", UNIT_PATH: "0100644"}
        else:
            commands += ["mkdir /etc/init.d", f"write {script} {RC_SCRIPT}"]
            self.installed = [RC_SCRIPT, "/var/lib/vmg-agent"]
            modes = {RC_SCRIPT: "0100755"}
        for path, mode in modes.items():
            commands += [f"sif {path} mode {mode}", f"sif {path} uid 0", f"sif {path} gid 0"]
        _debugfs(self.disk, self.offset, commands, write=True)

    def remove_agent(self) -> None:
        if not self.installed:
            return
        state = "/var/lib/vmg-agent"
        commands = [f"rm {state}/done", f"rm {state}/agent.sh", f"rmdir {state}"]
        commands += [f"rm {path}" for path in self.installed if not path.startswith(state)]
        _debugfs(self.disk, self.offset, commands, write=True, check=False)
        self.installed = []


class _Session:
    """One boot (and its reboots): the agent's lines in, results and tagged lines out, stop and deadline checked."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        steps: Sequence[BuildStep],
        nonce: str,
        on_line: OnLine,
        should_stop: Callable[[], str | None],
        deadline: float,
        boot_timeout: float,
    ):
        self.proc, self.nonce = proc, nonce
        self.steps = {s.number: s for s in steps}
        self.first = steps[0]
        self.on_line, self.should_stop, self.deadline = on_line, should_stop, deadline
        self.boot_timeout = boot_timeout
        self.results: list[StepResult] = []
        self.tails: dict[int, deque[str]] = defaultdict(lambda: deque(maxlen=TAIL_LINES))
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self.lines.put(None)

    def _stop(self, reason: str) -> BuildInterrupted:
        kill_tree(self.proc)
        return BuildInterrupted(reason, self.results)

    def follow(self, folder: Path) -> list[StepResult]:
        waiting_since: float | None = time.monotonic()  # for the agent's hello, after a start or a reboot
        started: dict[int, float] = {}  # the guest's uptime at each step's start
        prefix = f"{self.nonce} "
        while True:
            if time.monotonic() >= self.deadline:
                raise self._stop("timeout")
            reason = self.should_stop()
            if reason is not None:
                raise self._stop(reason)
            if waiting_since is not None and time.monotonic() - waiting_since > self.boot_timeout:
                kill_tree(self.proc)
                raise BuildEngineError(
                    f"the guest's agent did not start within {self.boot_timeout:.0f} s" + _tail(folder)
                )
            try:
                line = self.lines.get(timeout=max(0.0, min(POLL_SECONDS, self.deadline - time.monotonic())))
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait()
                raise BuildEngineError(f"the guest stopped before the build finished (QEMU exit {self.proc.returncode})"
                                       + _tail(folder))  # fmt: skip
            at = line.find(prefix)
            if at < 0:
                continue
            kind, _, rest = line[at + len(prefix) :].partition(" ")
            if kind == "hello":
                waiting_since = None
                self.on_line(self.first, "vm: the guest is up, its agent runs the steps")
            elif kind == "begin":
                number, _, uptime = rest.partition(" ")
                started[int(number)] = float(uptime)
            elif kind == "line":
                number, _, text = rest.partition(" ")
                step = self.steps[int(number)]
                self.tails[step.number].append(text)
                self.on_line(step, text)
            elif kind == "rc":
                number, code, uptime = rest.split(" ")
                step = self.steps[int(number)]
                seconds = round(float(uptime) - started.get(step.number, float(uptime)), 3)
                self.results.append(
                    StepResult(step.number, step.name, int(code), seconds, tuple(self.tails[step.number]))
                )
                if int(code) != 0:
                    return self._finish()
            elif kind == "reboot":
                self.on_line(self.steps[int(rest)], "vm: restarting the guest")
                waiting_since = time.monotonic()
            elif kind == "finished":
                return self._finish()
            elif kind == "fatal":
                kill_tree(self.proc)
                raise BuildEngineError(f"the guest's agent failed: {rest}")

    def _finish(self) -> list[StepResult]:
        """The guest powers itself off after the last step; wait for that (its writes are then on the disk). QEMU's
        exit closes the agent's pipe, so the end of the lines is the moment to look, not a poll's next tick."""
        closed = False
        while not closed or self.proc.poll() is None:
            if time.monotonic() >= self.deadline:
                raise self._stop("timeout")
            reason = self.should_stop()
            if reason is not None:
                raise self._stop(reason)
            timeout = max(0.0, min(POLL_SECONDS, self.deadline - time.monotonic()))
            try:
                if closed:
                    self.proc.wait(timeout=timeout)
                else:
                    closed = self.lines.get(timeout=timeout) is None
            except (queue.Empty, subprocess.TimeoutExpired):
                continue
        return self.results


def _tail(folder: Path) -> str:
    try:
        text = _TERMINAL_CONTROL.sub("", (folder / "console.log").read_text(errors="replace"))
    except OSError:
        return ""
    lines = text.splitlines()[-8:]
    return "; console: " + " | ".join(line.strip() for line in lines if line.strip())


def _version_key(name: str) -> list[int | str]:
    return [int(n) if n.isdigit() else n for n in _VERSION.split(name)]


def _partitions(disk: Path) -> list[tuple[int, int, bool]]:
    """(number, byte offset, whether it is an EFI System Partition) of each partition in the disk's MBR or GPT; the
    whole disk when it has neither."""
    with open(disk, "rb") as f:
        mbr = f.read(512)
        if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
            return [(0, 0, False)]
        entries = [mbr[446 + 16 * i : 462 + 16 * i] for i in range(4)]
        if entries[0][4] == 0xEE:
            f.seek(512)
            header = f.read(92)
            lba, count, size = struct.unpack_from("<QII", header, 72)
            f.seek(lba * 512)
            table = f.read(count * size)
            found = []
            for i in range(count):
                entry = table[i * size : (i + 1) * size]
                first = struct.unpack_from("<Q", entry, 32)[0]
                if any(entry[:16]):
                    found.append((i + 1, first * 512, entry[:16] == _ESP_TYPE))
            return found
        return [
            (i + 1, struct.unpack_from("<I", e, 8)[0] * 512, e[4] == 0xEF) for i, e in enumerate(entries) if e[4] != 0
        ]


def _has(disk: Path, offset: int, path: str) -> bool:
    """Whether `path` exists in the ext2/3/4 file system at `offset` (False when there is none there)."""
    out = _debugfs(disk, offset, [f"stat {path}"], check=False)
    return "Inode:" in out and "File not found" not in out


def _debugfs(disk: Path, offset: int, commands: list[str], *, write: bool = False, check: bool = True) -> str:
    debugfs = shutil.which("debugfs") or "/sbin/debugfs"
    with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as script:
        script.write("\n".join(commands) + "\n")
        script.flush()
        args = [debugfs, *(["-w"] if write else []), "-f", script.name, f"{disk}?offset={offset}"]
        done = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if check and done.returncode != 0:
        raise BuildEngineError(f"debugfs failed on {disk}: {done.stderr.strip()}")
    return done.stdout + done.stderr
