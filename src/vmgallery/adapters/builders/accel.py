"""Which accelerator the build engines give QEMU: KVM only when a guest kernel really boots under it, else TCG.

`/dev/kvm` existing and opening is not enough: on some hosts (a PVM-style nested hypervisor) it is there and a normal
guest kernel hangs under it. So the probe boots the host's own kernel with a one-file initramfs that prints a marker
and powers off, under `-accel kvm`, and calls KVM usable only if the marker comes back within a few seconds. The
answer is kept for the life of the process (a hanging probe costs its whole timeout).
"""

from __future__ import annotations

import glob
import lzma
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import blake3

PROBE_TIMEOUT = 10.0  # a kernel boots to its initramfs in about a second under KVM; TCG is never probed
_MARKER = b"vmgallery-kvm-probe-ok"
_lock = threading.Lock()
_probed: dict[str, str] = {}


def choose(setting: str = "auto") -> str:
    """ "kvm" or "tcg" for the setting "auto" | "kvm" | "tcg"; "auto" probes once per process."""
    if setting in ("kvm", "tcg"):
        return setting
    if setting != "auto":
        raise ValueError(f"accel must be auto, kvm or tcg, not {setting!r}")
    with _lock:
        if "auto" not in _probed:
            _probed["auto"] = "kvm" if kvm_boots() else "tcg"
        return _probed["auto"]


def kvm_boots(timeout: float = PROBE_TIMEOUT) -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK) and boots("kvm", timeout)


def boots(accel: str, timeout: float) -> bool:
    """Whether the host's kernel boots to a marker from its initramfs under `accel` within `timeout` seconds."""
    qemu = shutil.which("qemu-system-x86_64")
    kernel = host_kernel()
    busybox = shutil.which("busybox") or "/bin/busybox"
    if qemu is None or kernel is None or not Path(busybox).exists():
        return False
    with tempfile.TemporaryDirectory(prefix="vmg-kvm-probe-") as tmp:
        if accel == "tcg":
            kernel = extract_vmlinux(kernel, Path(tmp) / "vmlinux")
        initrd = Path(tmp) / "initrd.cpio"
        script = b"#!/bin/busybox sh\n/bin/busybox echo " + _MARKER + b"\n/bin/busybox poweroff -f\n"
        initrd.write_bytes(
            newc_archive(
                [
                    ("bin", None, 0o40755),
                    ("bin/busybox", Path(busybox).read_bytes(), 0o100755),
                    ("init", script, 0o100755),
                ]
            )
        )
        args = [
            qemu, "-accel", accel, "-cpu", "host" if accel == "kvm" else "max", "-m", "256", "-smp", "1",
            "-display", "none", "-monitor", "none", "-nodefaults", "-no-reboot", "-serial", "stdio",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "console=ttyS0 quiet panic=-1",
        ]  # fmt: skip
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
        )
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.start()
        try:
            assert proc.stdout is not None
            seen = b""
            for chunk in iter(lambda: proc.stdout.read1(4096), b""):  # type: ignore[union-attr]
                seen = (seen + chunk)[-4096:]
                if _MARKER in seen:
                    return True
            return False
        finally:
            timer.cancel()
            _kill_group(proc.pid)
            proc.wait()


def host_kernel() -> Path | None:
    """The newest /boot/vmlinuz-* (Debian's linux-image-amd64), or None."""

    def version_key(path: str) -> list[int | str]:
        return [int(n) if n.isdigit() else n for n in re.split(r"(\d+)", path)]

    found = sorted(glob.glob("/boot/vmlinuz-*"), key=version_key)
    return Path(found[-1]) if found else None


def newc_archive(entries: list[tuple[str, bytes | None, int]]) -> bytes:
    """A cpio archive in the kernel's initramfs ("newc") format: (name, content or None for a folder, mode)."""
    out = bytearray()

    def add(name: str, data: bytes, mode: int, ino: int) -> None:
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, data, mode) in enumerate(entries, start=1):
        add(name, data or b"", mode, ino)
    add("TRAILER!!!", b"", 0, 0)
    return bytes(out)


def extract_vmlinux(bzimage: Path, dest: Path) -> Path:
    """The ELF kernel inside an xz-compressed bzImage (Debian's), which QEMU boots directly through its PVH note:
    the guest skips a decompression that takes seconds under TCG. Returns `bzimage` itself when it holds no xz."""
    data = bzimage.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        return bzimage
    try:
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
    except lzma.LZMAError:
        return bzimage
    if not elf.startswith(b"\x7fELF"):
        return bzimage
    dest.write_bytes(elf)
    return dest


def cached_vmlinux(bzimage: Path, cache: Path | None = None) -> Path:
    """`extract_vmlinux` once per kernel: the ELF is kept under `cache` (default: vmgallery-kernels in the system's
    temp folder) by the BLAKE3 of the bzImage, so a build from a source seen before skips the second of host CPU
    the decompression costs. Returns `bzimage` itself when it holds no xz-compressed ELF."""
    folder = cache or Path(tempfile.gettempdir()) / "vmgallery-kernels"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{blake3.blake3(bzimage.read_bytes()).hexdigest()}.elf"
    if dest.exists():
        return dest
    partial = folder / f"{dest.name}.{os.getpid()}.{threading.get_ident()}.part"
    if extract_vmlinux(bzimage, partial) == bzimage:
        return bzimage
    os.replace(partial, dest)  # whole or absent: a concurrent build reads either the old state or the new file
    return dest


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
