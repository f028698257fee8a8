"""Build engines benchmark: a trivial template through each engine, against the bare tool doing the same work by hand.

The source is the tests' tiny busybox image (tests/tinyimage.py, made in the run). The template: one Shell step (write
a file, make a folder, print a line) and one File step (a 1 MiB payload into the new folder). Every run gets a fresh
copy of the disk. Under TCG (these machines' /dev/kvm hangs guest kernels), `--accel` to change it.

- guestfs: `GuestfsEngine.run` against `virt-customize -a DISK --no-network --run-command SCRIPT --mkdir DIR
  --upload PAYLOAD:DEST`, same libguestfs backend settings (direct, force_tcg).
- vm: `VmEngine.run` against QEMU booting the same disk by hand: the script already written into the image as an
  init script and the payload copied in (debugfs, timed), the kernel already extracted (not timed, so the baseline is
  the cheapest boot we know), `qemu-system-x86_64 -kernel ... -initrd ...` until the guest powers itself off.

`--generation V2` takes the tiny image's Gen2 variant (GPT, EFI System Partition, its own boot loader) and a V2
machine instead: the vm engine then boots it under OVMF, and so does QEMU by hand (OVMF's code and a fresh copy of its
variable store as pflash drives, no -kernel).

It prints, per engine, the median wall time of each side and their ratio engine/baseline (goal: under 1.3), the same
for the CPU time of the processes each side ran (QEMU included; it moves much less with the machine's load), and the
time from `run()` to the first log line the engine hands over (goal: under 2 s) and to the first line a step printed.

    .venv/bin/python bench/build_engines.py                 # both engines, 1 round each: 3-5 minutes on 2 cores
    .venv/bin/python bench/build_engines.py --engines vm --rounds 3
    .venv/bin/python bench/build_engines.py --engines vm --rounds 3 --generation V2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.tinyimage import (  # noqa: E402
    OVMF_CODE,
    OVMF_VARS,
    TinyImage,
    make_tiny_gen2_image,
    make_tiny_image,
    partition_offset,
    read_file,
)
from vmgallery.adapters.builders import accel as accel_probe  # noqa: E402
from vmgallery.adapters.builders import engine_named  # noqa: E402
from vmgallery.adapters.builders.accel import extract_vmlinux  # noqa: E402
from vmgallery.app.build_engine import BuildStep, Machine  # noqa: E402

SCRIPT = "echo hello > /etc/hello-from-bench\nmkdir -p /opt/bench\necho $((6 * 7))\n"
DEST = "/opt/bench/payload.bin"


def engine_run(name: str, disk: Path, payload: Path, accel: str, generation: str) -> tuple[float, float, float]:
    steps = [
        BuildStep(1, "script", "customize", shell=SCRIPT),
        BuildStep(2, "payload", "customize", upload_from=payload, upload_to=DEST),
    ]
    first: list[float] = []
    output: list[float] = []  # the first line a step printed, after the engine's own notes
    started = time.monotonic()

    def on_line(step: BuildStep, line: str) -> None:
        if not first:
            first.append(time.monotonic() - started)
        if not output and not line.startswith(f"{name}:"):
            output.append(time.monotonic() - started)

    machine = Machine(vcpus=1, memory_mb=1024, os_type="Linux", hyper_v_generation=generation)
    results = engine_named(name, accel=accel, network=False).run(
        disk, steps, machine, on_line=on_line, should_stop=lambda: None, deadline=started + 900
    )
    elapsed = time.monotonic() - started
    assert [r.exit_code for r in results] == [0, 0], results
    return elapsed, first[0], output[0]


def virt_customize(disk: Path, payload: Path, accel: str) -> float:
    env = dict(os.environ, LIBGUESTFS_BACKEND="direct")
    if accel == "tcg":
        env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
    started = time.monotonic()
    subprocess.run(
        ["virt-customize", "-q", "--format", "raw", "-a", str(disk), "--no-network", "--smp", "1", "--memsize",
         "1024", "--run-command", SCRIPT, "--mkdir", "/opt/bench", "--upload", f"{payload}:{DEST}"],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.monotonic() - started


def qemu_by_hand(disk: Path, payload: Path, image: TinyImage, vmlinux: Path, accel: str, generation: str) -> float:
    started = time.monotonic()
    root = partition_offset(disk, 2 if generation == "V2" else 1)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "S00bench"
        script.write_text("#!/bin/sh\n" + SCRIPT + f"cp /root/payload.bin {DEST}\n")
        commands = (
            f"write {script} /etc/init.d/S00bench\nsif /etc/init.d/S00bench mode 0100755\n"
            f"write {payload} /root/payload.bin\n"
        )
        subprocess.run(["/sbin/debugfs", "-w", "-f", "-", f"{disk}?offset={root}"], input=commands.encode(),
                       check=True, capture_output=True)  # fmt: skip
        if generation == "V2":
            nvram = Path(tmp) / "OVMF_VARS.fd"
            shutil.copyfile(OVMF_VARS, nvram)
            boot = ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                    "-drive", f"if=pflash,format=raw,unit=1,file={nvram}"]  # fmt: skip
        else:
            boot = ["-kernel", str(vmlinux), "-initrd", str(image.initrd),
                    "-append", "root=/dev/vda1 rw console=ttyS0 panic=-1 quiet"]  # fmt: skip
        subprocess.run(
            ["qemu-system-x86_64", "-accel", accel, "-cpu", "host" if accel == "kvm" else "max", "-m", "1024",
             "-smp", "1", "-display", "none", "-monitor", "none", "-nodefaults", "-no-reboot", "-serial", "null",
             *boot, "-drive", f"file={disk},if=virtio,format=raw,cache=unsafe", "-nic", "none"],
            check=True, stdin=subprocess.DEVNULL, timeout=600,
        )  # fmt: skip
    return time.monotonic() - started


def children_cpu() -> float:
    """User + system CPU of every finished descendant (QEMU included: libguestfs and we wait for it)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="guestfs,vm")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--accel", default="auto")
    parser.add_argument("--generation", choices=("V1", "V2"), default="V1")
    args = parser.parse_args()
    accel = accel_probe.choose(args.accel)
    with tempfile.TemporaryDirectory(prefix="vmg-bench-build-") as tmp:
        folder = Path(tmp)
        t0 = time.monotonic()
        image = (make_tiny_gen2_image if args.generation == "V2" else make_tiny_image)(folder / "image")
        print(f"tiny {args.generation} image made in {time.monotonic() - t0:.1f} s; accelerator: {accel}")
        payload = folder / "payload.bin"
        payload.write_bytes(os.urandom(1 << 20))
        vmlinux = extract_vmlinux(Path(f"/boot/vmlinuz-{image.kernel_version}"), folder / "vmlinux")
        for name in args.engines.split(","):
            ours: list[float] = []
            theirs: list[float] = []
            firsts: list[float] = []
            outputs: list[float] = []
            cpu: dict[str, list[float]] = {"ours": [], "theirs": []}
            for round_ in range(args.rounds):
                for side in ("ours", "theirs") if round_ % 2 == 0 else ("theirs", "ours"):
                    disk = image.copy(folder / f"{name}-{side}-{round_}.raw")
                    cpu_before = children_cpu()
                    if side == "ours":
                        elapsed, first, output = engine_run(name, disk, payload, accel, args.generation)
                        ours.append(elapsed)
                        firsts.append(first)
                        outputs.append(output)
                    elif name == "guestfs":
                        theirs.append(virt_customize(disk, payload, accel))
                    else:
                        theirs.append(qemu_by_hand(disk, payload, image, vmlinux, accel, args.generation))
                    cpu[side].append(children_cpu() - cpu_before)
                    if read_file(disk, DEST, partition=2 if args.generation == "V2" else 1) != payload.read_bytes():
                        raise SystemExit(f"{name} {side}: the payload did not arrive")
                    disk.unlink()
            baseline = "virt-customize" if name == "guestfs" else "qemu by hand"
            o, t = statistics.median(ours), statistics.median(theirs)
            oc, tc = statistics.median(cpu["ours"]), statistics.median(cpu["theirs"])
            print(
                f"{name:8} engine {o:6.1f} s   {baseline} {t:6.1f} s   wall ratio {o / t:4.2f}   "
                f"CPU {oc:5.1f} s / {tc:5.1f} s = {oc / tc:4.2f}   "
                f"first log line after {statistics.median(firsts):4.2f} s, first step output after "
                f"{statistics.median(outputs):4.1f} s   ({args.rounds} round(s))"
            )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
