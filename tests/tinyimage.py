"""A tiny bootable Linux disk image, made in about a second, for the image builder's tests.

The image is a 64 MiB raw disk with an MBR and one bootable ext4 partition at 1 MiB holding a static busybox (every
applet linked), an `/sbin/init` that runs `/etc/init.d/S??*` like busybox's rcS and powers the machine off, the files
libguestfs's inspection needs to call it Linux (`/etc/fstab`, `/etc/hosts`, `/bin`), the files a deprovision step
removes (`/etc/machine-id`, an ssh host key, shell histories, a log), and `/boot/vmlinuz-KVER` + `/boot/initrd.img-KVER`
(with `vmlinuz`/`initrd.img` links) so an engine that boots the disk finds its kernel where Debian keeps it.

The kernel is the host's (Debian's linux-image-amd64); the initramfs is busybox plus the virtio and ext4 modules. No
root, loop device or mount is needed: `mkfs.ext4 -d` fills the file system from a staged folder. A test module uses

    from tests.tinyimage import tiny_image  # noqa: F401  (the session fixture)

and gets one image per test session (copy `tiny_image.raw` before changing it); `read_file` reads a file back from
a disk with debugfs and `boot` boots a disk under QEMU (TCG, kernel and initrd given directly, or OVMF) and returns
its serial log. `tiny_gen2_image` is the same system on a GPT disk a UEFI firmware boots (`make_tiny_gen2_image`).
"""

from __future__ import annotations

import glob
import gzip
import lzma
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

MIB = 1 << 20
PARTITION_START = 1 * MIB  # sector 2048, as fdisk places the first partition
DISK_SIZE = 64 * MIB
ESP_SIZE = 16 * MIB  # the Gen2 disk's EFI System Partition: the kernel (8 MiB) and the initramfs (2 MiB)
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")
INIT_DONE = "vmgtiny: init done"  # the tiny init prints this after the rc scripts, before it powers off
# Modules the initramfs loads to find an ext4 root on a virtio disk (their dependencies come from modprobe).
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "ext4")

OS_RELEASE = 'NAME="vmgallery tiny"\nID=vmgtiny\nVERSION_ID=1\nPRETTY_NAME="vmgallery tiny 1"\n'

ROOT_INIT = f"""#!/bin/sh
# The tiny image's init: mount the kernel's file systems, run the rc scripts in order, power off.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /run
hostname -F /etc/hostname
echo "vmgtiny: up"
for s in /etc/init.d/S??*; do
  [ -x "$s" ] && "$s" start
done
echo "{INIT_DONE}"
sync
mount -o remount,ro /
poweroff -f
"""

# The Gen2 image's boot loader (tests/efiboot.c) starts this kernel, its EFI stub, with this command line; the stub
# loads initrd= from the ESP.
GEN2_KERNEL = "\\EFI\\vmgtiny\\vmlinuz.efi"
GEN2_CMDLINE = "root=/dev/vda2 rw console=ttyS0 panic=-1 quiet initrd=\\EFI\\vmgtiny\\initrd.img"
EFI_LOADER = Path(__file__).with_name("efiboot.c")

INITRAMFS_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.list); do insmod "$m"; done
root=/dev/vda1
mode=ro
init=/sbin/init
for x in $(cat /proc/cmdline); do
  case "$x" in root=*) root="${x#root=}" ;; rw) mode=rw ;; init=*) init="${x#init=}" ;; esac
done
i=0
while [ ! -b "$root" ] && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
if ! mount -t ext4 -o "$mode" "$root" /newroot; then
  echo "initramfs: cannot mount $root"
  poweroff -f
fi
umount /proc /sys
mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot "$init"
"""


@dataclass(frozen=True)
class TinyImage:
    raw: Path  # the disk, raw; treat as read-only and copy it before a build changes it
    kernel: Path  # the host kernel as an uncompressed ELF: QEMU boots it through PVH (no decompression in TCG)
    initrd: Path  # gzip'ed cpio: busybox, virtio and ext4 modules, mounts root= and switch_roots to init= (/sbin/init)
    kernel_version: str

    def copy(self, dest: Path) -> Path:
        """A private copy of the raw disk (sparse) to change."""
        subprocess.run(["cp", "--sparse=always", str(self.raw), str(dest)], check=True)
        return dest

    def qcow2(self, dest: Path) -> Path:
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(self.raw), str(dest)], check=True)
        return dest


# ---- the host's kernel ----------------------------------------------------------------------------------------


def host_kernel() -> tuple[str, Path]:
    """The newest kernel under /boot that has its modules installed (Debian's linux-image-amd64)."""
    found = []
    for path in glob.glob("/boot/vmlinuz-*"):
        version = path.removeprefix("/boot/vmlinuz-")
        if Path(f"/lib/modules/{version}/modules.dep").exists():
            found.append((version, Path(path)))
    if not found:
        pytest.skip("no kernel with modules under /boot (apt-get install linux-image-amd64)")
    return sorted(found, key=lambda vp: [int(n) if n.isdigit() else n for n in re.split(r"(\d+)", vp[0])])[-1]


def extract_vmlinux(bzimage: Path, dest: Path) -> Path:
    """The ELF kernel inside a bzImage (an xz payload): QEMU boots it directly through its PVH note, which spares
    the guest a decompression that takes seconds under TCG."""
    data = bzimage.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        dest.write_bytes(data)  # not xz: boot the bzImage itself
        return dest
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    dest.write_bytes(decompressor.decompress(data[start:]))
    return dest


def _module_paths(version: str) -> list[str]:
    out = subprocess.run(
        ["/sbin/modprobe", "-S", version, "-a", "--show-depends", *INITRAMFS_MODULES],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    paths: list[str] = []
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "insmod" and parts[1] not in paths:
            paths.append(parts[1])
    return paths


def _busybox() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).exists():
            return Path(candidate)
    pytest.skip("busybox is not installed (apt-get install busybox-static)")


def _cpio_gz(folder: Path, dest: Path) -> None:
    names = subprocess.run(["find", ".", "-mindepth", "1"], cwd=folder, check=True, capture_output=True).stdout.replace(
        b"\n", b"\0"
    )
    archive = subprocess.run(
        ["cpio", "--quiet", "-o", "-H", "newc", "--null"], cwd=folder, input=names, check=True, capture_output=True
    ).stdout
    dest.write_bytes(gzip.compress(archive, compresslevel=1))


def make_initramfs(version: str, busybox: Path, dest: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("bin", "proc", "sys", "dev", "newroot", "modules"):
            (root / d).mkdir()
        shutil.copy2(busybox, root / "bin" / "busybox")
        os.symlink("busybox", root / "bin" / "sh")
        listed = []
        for i, path in enumerate(_module_paths(version)):
            name = f"/modules/{i:02d}-{Path(path).name}"
            shutil.copy2(path, root / name.lstrip("/"))
            listed.append(name)
        (root / "modules.list").write_text("\n".join(listed) + "\n")
        (root / "init").write_text(INITRAMFS_INIT)
        (root / "init").chmod(0o755)
        _cpio_gz(root, dest)
    return dest


# ---- the disk -------------------------------------------------------------------------------------------------


def _stage_root(root: Path, busybox: Path, version: str, vmlinuz: Path, initrd: Path, *, gen2: bool = False) -> None:
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/init.d",
        "etc/ssh",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
        "var/log",
        "boot",
        "mnt",
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True, text=True).stdout
    for applet in applets.split():
        link = root / applet
        if applet != "bin/busybox" and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/bin/busybox", link)
    files = {
        "sbin/init": ROOT_INIT,
        "etc/os-release": OS_RELEASE,
        "etc/fstab": f"/dev/vda{2 if gen2 else 1} / ext4 rw 0 1\n",
        "etc/hosts": "127.0.0.1 localhost\n",
        "etc/hostname": "vmgtiny\n",
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
        "etc/group": "root:x:0:\n",
        "etc/shadow": "root:*:19000:0:99999:7:::\n",
        "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
        "etc/ssh/ssh_host_ed25519_key": "not a real key: a deprovision step removes it\n",
        "root/.ash_history": "echo hello\n",
        "root/.bash_history": "echo hello\n",
        "var/log/messages": "a log line a deprovision step truncates\n",
    }
    for name, text in files.items():
        # An applet link of the same name points at /bin/busybox, which outside a chroot is the host's: replace the
        # link, never write through it.
        (root / name).unlink(missing_ok=True)
        (root / name).write_text(text)
    (root / "sbin/init").chmod(0o755)
    (root / "etc/shadow").chmod(0o600)
    if gen2:
        return  # its kernel and initramfs are on the EFI System Partition, where the firmware finds them
    shutil.copy2(vmlinuz, root / "boot" / f"vmlinuz-{version}")
    shutil.copy2(initrd, root / "boot" / f"initrd.img-{version}")
    os.symlink(f"boot/vmlinuz-{version}", root / "vmlinuz")
    os.symlink(f"boot/initrd.img-{version}", root / "initrd.img")


def make_disk(root: Path, dest: Path, *, size: int = DISK_SIZE) -> Path:
    """A raw MBR disk of `size` bytes with one bootable ext4 partition (label vmgroot) filled from `root`."""
    part = dest.with_suffix(".part")
    subprocess.run(
        [
            "/sbin/mkfs.ext4",
            "-q",
            "-F",
            "-L",
            "vmgroot",
            "-d",
            str(root),
            str(part),
            f"{(size - PARTITION_START) // 1024}k",
        ],
        check=True,
        capture_output=True,
    )
    with open(dest, "wb") as f:
        f.truncate(size)
    subprocess.run(
        ["/sbin/sfdisk", "-q", str(dest)],
        input=b"label: dos\nstart=2048, type=83, bootable\n",
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["dd", f"if={part}", f"of={dest}", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"], check=True
    )
    part.unlink()
    return dest


def make_gen2_disk(root: Path, esp: Path, dest: Path) -> Path:
    """A raw GPT disk: an EFI System Partition (FAT, label ESP) filled from `esp` at 1 MiB, then an ext4 root
    (label vmgroot) filled from `root`. mtools writes the FAT image, so nothing is mounted."""
    esp_part, root_part = dest.with_suffix(".esp"), dest.with_suffix(".part")
    root_size = 62 * MIB
    subprocess.run(["/sbin/mkfs.vfat", "-n", "ESP", "-C", str(esp_part), str(ESP_SIZE // 1024)],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["mcopy", "-s", "-Q", "-i", str(esp_part), *(str(p) for p in sorted(esp.iterdir())), "::/"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["/sbin/mkfs.ext4", "-q", "-F", "-L", "vmgroot", "-d", str(root), str(root_part),
                    f"{root_size // 1024}k"], check=True, capture_output=True)  # fmt: skip
    root_start = PARTITION_START + ESP_SIZE
    with open(dest, "wb") as f:
        f.truncate(root_start + root_size + MIB)  # room for the backup GPT at the end
    table = (
        f"label: gpt\nstart={PARTITION_START // 512}, size={ESP_SIZE // 512}, type=U, name=ESP\n"
        f"start={root_start // 512}, size={root_size // 512}, type=L, name=root\n"
    )
    subprocess.run(["/sbin/sfdisk", "-q", str(dest)], input=table.encode(), check=True, capture_output=True)
    for part, start in ((esp_part, PARTITION_START), (root_part, root_start)):
        subprocess.run(["dd", f"if={part}", f"of={dest}", "bs=1M", f"seek={start // MIB}", "conv=notrunc,sparse",
                        "status=none"], check=True)  # fmt: skip
        part.unlink()
    return dest


def make_efi_loader(dest: Path, *, kernel: str, cmdline: str) -> Path:
    """tests/efiboot.c as a UEFI application (PE32+, subsystem 10) that starts `kernel` with `cmdline`: the host's gcc
    compiles it freestanding and ld (Debian's binutils has the i386pep emulation) links it as PE directly."""
    gcc, ld = shutil.which("gcc"), shutil.which("ld")
    if gcc is None or ld is None:
        pytest.skip("gcc and ld build the Gen2 image's boot loader (apt-get install gcc)")

    def wide(text: str) -> str:
        return 'L"' + text.replace("\\", "\\\\") + '"'

    obj = dest.with_suffix(".o")
    subprocess.run(
        [gcc, "-O2", "-ffreestanding", "-fno-stack-protector", "-fshort-wchar", "-mno-red-zone", "-fpie",
         "-fno-ident", "-fno-asynchronous-unwind-tables", f"-DKERNEL={wide(kernel)}", f"-DCMDLINE={wide(cmdline)}",
         "-c", str(EFI_LOADER), "-o", str(obj)],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run([ld, "-m", "i386pep", "--subsystem", "10", "-e", "efi_main", "-nostdlib", str(obj), "-o", str(dest)],
                   check=True, capture_output=True)  # fmt: skip
    obj.unlink()
    return dest


def make_tiny_gen2_image(folder: Path) -> TinyImage:
    """The tiny image for a Gen2 (UEFI) machine: GPT, an EFI System Partition, and the ext4 root as partition 2 with no
    kernel under /boot. The firmware starts the ESP's \\EFI\\BOOT\\BOOTX64.EFI (a 5 KB boot loader, tests/efiboot.c),
    which starts the kernel beside it (EFI stub) with a fixed command line naming the initramfs there too. Its
    `kernel` and `initrd` are those files, the kernel as an ELF for a direct boot."""
    folder.mkdir(parents=True, exist_ok=True)
    version, vmlinuz = host_kernel()
    busybox = _busybox()
    initrd = make_initramfs(version, busybox, folder / "initrd.cpio.gz")
    root, esp = folder / "root", folder / "esp"
    root.mkdir()
    _stage_root(root, busybox, version, vmlinuz, initrd, gen2=True)
    for d in ("BOOT", "vmgtiny"):
        (esp / "EFI" / d).mkdir(parents=True)
    make_efi_loader(esp / "EFI" / "BOOT" / "BOOTX64.EFI", kernel=GEN2_KERNEL, cmdline=GEN2_CMDLINE)
    shutil.copy2(vmlinuz, esp / "EFI" / "vmgtiny" / "vmlinuz.efi")
    shutil.copy2(initrd, esp / "EFI" / "vmgtiny" / "initrd.img")
    raw = make_gen2_disk(root, esp, folder / "tiny-gen2.raw")
    shutil.rmtree(root)
    shutil.rmtree(esp)
    return TinyImage(raw=raw, kernel=extract_vmlinux(vmlinuz, folder / "vmlinux"), initrd=initrd,
                     kernel_version=version)  # fmt: skip


def make_tiny_image(folder: Path) -> TinyImage:
    folder.mkdir(parents=True, exist_ok=True)
    version, vmlinuz = host_kernel()
    busybox = _busybox()
    initrd = make_initramfs(version, busybox, folder / "initrd.cpio.gz")
    kernel = extract_vmlinux(vmlinuz, folder / "vmlinux")
    root = folder / "root"
    root.mkdir()
    _stage_root(root, busybox, version, vmlinuz, initrd)
    raw = make_disk(root, folder / "tiny.raw")
    shutil.rmtree(root)
    return TinyImage(raw=raw, kernel=kernel, initrd=initrd, kernel_version=version)


@pytest.fixture(scope="session")
def tiny_image(tmp_path_factory) -> TinyImage:
    return make_tiny_image(tmp_path_factory.mktemp("tinyimage"))


@pytest.fixture(scope="session")
def tiny_gen2_image(tmp_path_factory) -> TinyImage:
    return make_tiny_gen2_image(tmp_path_factory.mktemp("tinyimage-gen2"))


# ---- reading a disk back --------------------------------------------------------------------------------------


def partition_offset(disk: Path, number: int = 1) -> int:
    """The byte offset of partition `number` (1-based) from the disk's MBR or GPT."""
    with open(disk, "rb") as f:
        mbr = f.read(512)
        if mbr[510:512] != b"\x55\xaa":
            raise ValueError(f"{disk}: no partition table")
        entries = [mbr[446 + 16 * i : 462 + 16 * i] for i in range(4)]
        if entries[0][4] == 0xEE:
            f.seek(512)
            header = f.read(92)
            entries_lba, _count, size = struct.unpack_from("<QII", header, 72)
            f.seek(entries_lba * 512 + (number - 1) * size)
            first_lba = struct.unpack_from("<Q", f.read(size), 32)[0]
            return first_lba * 512
        return struct.unpack_from("<I", entries[number - 1], 8)[0] * 512


def read_file(disk: Path, path: str, *, partition: int = 1) -> bytes | None:
    """The content of `path` in the ext2/3/4 file system of a raw disk's partition, or None when it is missing."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run(
            ["/sbin/debugfs", "-R", f'dump -p "{path}" {out}', f"{disk}?offset={partition_offset(disk, partition)}"],
            check=True,
            capture_output=True,
        )
        return out.read_bytes() if out.exists() else None


def stat_file(disk: Path, path: str, *, partition: int = 1) -> str:
    """debugfs's `stat` of `path` (mode, owner, size), for asserting permissions."""
    return subprocess.run(
        ["/sbin/debugfs", "-R", f'stat "{path}"', f"{disk}?offset={partition_offset(disk, partition)}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


# ---- booting a disk ---------------------------------------------------------------------------------------------


def boot(
    disk: Path,
    *,
    kernel: Path | None = None,
    initrd: Path | None = None,
    fmt: str = "raw",
    timeout: float = 120.0,
    append: str = "root=/dev/vda1 rw console=ttyS0 panic=-1 quiet",
    memory_mb: int = 256,
) -> str:
    """Boot `disk` (read-only: QEMU's snapshot mode) under TCG and return the serial log once the guest powers itself
    off: with `kernel` and `initrd` given directly, else under UEFI (OVMF, a fresh variable store) from the disk's
    EFI System Partition. QEMU runs in its own session and is killed by PID when it outlives `timeout`, so no test
    leaves a VM behind."""
    args = [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", str(memory_mb), "-smp", "1",
        "-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
        "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
        "-drive", f"file={disk},if=virtio,format={fmt},snapshot=on",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        if kernel is None:
            vars_copy = Path(tmp) / "OVMF_VARS.fd"
            shutil.copyfile(OVMF_VARS, vars_copy)
            args += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                     "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]  # fmt: skip
        else:
            args += ["-kernel", str(kernel), "-initrd", str(initrd), "-append", append]
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        timer = threading.Timer(timeout, _kill, (proc,))
        timer.start()
        started = time.monotonic()
        try:
            assert proc.stdout is not None
            log = proc.stdout.read().decode(errors="replace")
            proc.wait()
        finally:
            timer.cancel()
            _kill(proc)
    if time.monotonic() - started >= timeout:
        raise TimeoutError(f"the guest did not power off within {timeout} s; its console:\n{log}")
    return log.replace("\r\n", "\n")


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
