"""Both build engines on a real disk, under TCG: guestfs (a libguestfs appliance) and vm (QEMU boots the disk); debugfs
reads the result back and QEMU boots it to see the init script a step installed do its work.

An appliance launch costs 25-60 s on a busy 2-core machine and a boot 10-20 s, so one build per engine carries most of
the cases (shell output and exit codes, a File step, the tail, the stop at a failing step), and the others start a
machine only when they must.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.adapters.builders.common import LINUX, PAYLOAD, Recorder, parent, processes_naming, standard_steps
from tests.tinyimage import boot, read_file, stat_file, tiny_gen2_image, tiny_image  # noqa: F401  (fixtures)
from vmgallery.adapters.builders import engine_named
from vmgallery.app.build_engine import BuildEngineError, BuildInterrupted, BuildStep, Machine

ENGINES = ("guestfs", "vm")
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module", params=ENGINES)
def build(request, tiny_image, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"{request.param}-build")
    disk = tiny_image.copy(folder / "disk.raw")
    payload = folder / "payload.txt"
    payload.write_bytes(PAYLOAD)
    steps = standard_steps(payload)
    recorder = Recorder()
    started = time.monotonic()
    results = engine_named(request.param, accel="tcg", network=False).run(
        disk, steps, LINUX, on_line=recorder, should_stop=lambda: None, deadline=started + 600
    )
    return disk, results, recorder, folder


def test_each_step_reports_its_exit_code_and_duration_and_a_failure_stops_the_build(build):
    _, results, _, _ = build
    assert [(r.number, r.name, r.exit_code) for r in results] == [
        (1, "write-files", 0),
        (2, "copy-payload", 0),
        (3, "check", 0),
        (4, "fails", 7),
    ]
    assert all(0 <= r.seconds < 120 for r in results)
    assert results[0].seconds > 0  # several commands: more than the clocks' resolution (the vm engine's: 10 ms)


def test_output_lines_come_tagged_with_their_step_stderr_included(build):
    _, results, recorder, _ = build
    assert recorder.lines[0][:2] == (1, "write-files")  # the engine says it is starting before anything else
    assert recorder.of(1) == ["building on ID=vmgtiny", "to-stderr", "42"]
    assert recorder.of(2) == [f"copied {len(PAYLOAD)} bytes to /usr/share/vmg/payload.txt"]
    assert recorder.of(3) == ["payload-present", *(f"line {i}" for i in range(1, 31))]
    assert recorder.of(4) == ["about to fail"]
    assert recorder.of(5) == []
    steps_in_order = [n for n, _, _ in recorder.lines]
    assert steps_in_order == sorted(steps_in_order)
    assert results[2].tail == tuple(f"line {i}" for i in range(11, 31))  # the last 20 lines
    assert results[3].tail == ("about to fail",)


def test_the_disk_holds_what_the_steps_wrote_and_nothing_after_the_failure(build):
    disk, _, _, _ = build
    assert read_file(disk, "/etc/built-by-vmgallery") == b"built by vmgallery\n"
    assert read_file(disk, "/usr/share/vmg/payload.txt") == PAYLOAD
    assert "Mode:  0755" in stat_file(disk, "/etc/init.d/S50vmgallery")
    assert read_file(disk, "/never-runs") is None
    assert read_file(disk, "/etc/init.d/S00vmg-agent") is None  # the vm engine's agent is gone again
    assert read_file(disk, "/var/lib/vmg-agent/agent.sh") is None
    assert read_file(disk, "/etc/os-release").startswith(b'NAME="vmgallery tiny"')  # the rest is untouched


def test_the_built_image_boots_and_runs_the_installed_init_script(build, tiny_image):
    disk, _, _, _ = build
    log = boot(disk, kernel=tiny_image.kernel, initrd=tiny_image.initrd)
    assert f"vmgallery-init: built by vmgallery / {PAYLOAD.decode().strip()}" in log
    assert "vmgtiny: init done" in log


def test_no_process_outlives_the_build(build):
    _, _, _, folder = build
    assert processes_naming(str(folder)) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_cancel_mid_step_ends_the_machine_and_keeps_the_finished_steps(engine, tiny_image, tmp_path):
    disk = tiny_image.copy(tmp_path / "disk.raw")
    steps = [
        BuildStep(1, "quick", "customize", shell="echo quick done"),
        BuildStep(2, "slow", "customize", shell="echo started; sleep 600; echo never"),
    ]
    recorder = Recorder()
    recorder.wanted = "started"
    started = time.monotonic()
    with pytest.raises(BuildInterrupted) as raised:
        engine_named(engine, accel="tcg", network=False).run(
            disk,
            steps,
            LINUX,
            on_line=recorder,
            should_stop=lambda: "cancelled" if recorder.seen.is_set() else None,
            deadline=started + 600,
        )
    assert raised.value.reason == "cancelled"
    assert [(r.number, r.exit_code) for r in raised.value.results] == [(1, 0)]
    assert recorder.of(2) == ["started"]
    assert time.monotonic() - started < 300  # long before the sleep would have ended
    assert processes_naming(str(tmp_path)) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_the_deadline_interrupts_the_start_and_leaves_no_process(engine, tiny_image, tmp_path):
    # One second: well inside either engine's start under TCG (a whole vm-engine run of `true` took 2.8 s on a fast
    # machine, so the 3 s this test gave before let it finish there).
    disk = tiny_image.copy(tmp_path / "disk.raw")
    started = time.monotonic()
    with pytest.raises(BuildInterrupted) as raised:
        engine_named(engine, accel="tcg", network=False).run(
            disk,
            [BuildStep(1, "any", "customize", shell="true")],
            LINUX,
            on_line=lambda step, line: None,
            should_stop=lambda: None,
            deadline=started + 1,
        )
    assert raised.value.reason == "timeout"
    assert raised.value.results == ()
    assert 1 <= time.monotonic() - started < 15
    assert processes_naming(str(tmp_path)) == []


def test_a_runner_killed_from_outside_takes_its_appliance_along(tiny_image, tmp_path):
    """The guestfs runner dies mid-step (SIGKILL from outside, not by the engine): its QEMU is gone by the time the
    engine reports the failure, not a libguestfs recovery poll (2 s) later."""
    disk = tiny_image.copy(tmp_path / "disk.raw")
    killed: list[int] = []

    def kill_the_runner_once_started(step: BuildStep, line: str) -> None:
        if line == "started":
            runners = [pid for pid, _ in processes_naming("guestfs_runner.py") if parent(pid) == os.getpid()]
            assert len(runners) == 1 and processes_naming(str(tmp_path)), "no runner and appliance to kill"
            os.kill(runners[0], signal.SIGKILL)
            killed.append(runners[0])

    with pytest.raises(BuildEngineError, match=r"ended early \(exit -9\)"):
        engine_named("guestfs", accel="tcg", network=False).run(
            disk,
            [BuildStep(1, "slow", "customize", shell="echo started; sleep 600")],
            LINUX,
            on_line=kill_the_runner_once_started,
            should_stop=lambda: None,
            deadline=time.monotonic() + 600,
        )
    assert killed
    assert processes_naming(str(tmp_path)) == []  # the appliance's QEMU named the disk


def test_a_killed_server_leaves_no_vm_running(tiny_image, tmp_path):
    """The process running the vm engine (a server) is killed mid-step: its QEMU goes with it at once. (For guestfs,
    tests/e2e/test_builder_real_engine.py kills a real server mid-build.)"""
    disk = tiny_image.copy(tmp_path / "disk.raw")
    script = f"""
import time
from pathlib import Path
from tests.adapters.builders.common import LINUX
from vmgallery.adapters.builders import engine_named
from vmgallery.app.build_engine import BuildStep
engine_named("vm", accel="tcg", network=False).run(
    Path({str(disk)!r}),
    [BuildStep(1, "slow", "customize", shell="echo started; sleep 600")],
    LINUX,
    on_line=lambda step, line: print(line, flush=True),
    should_stop=lambda: None,
    deadline=time.monotonic() + 300,
)
"""
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert server.stdout is not None
        # The engine's own deadline ends the child (and so this loop) should the step never start.
        assert any(line.rstrip("\n") == "started" for line in server.stdout), "the step never started"
        assert processes_naming(str(tmp_path)), "no VM to outlive its server"
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 1
    while processes_naming(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_naming(str(tmp_path)) == []


def trivial_build(name: str, *, disk: Path, machine: Machine, **options):
    """One `true` step: for the refusals, which come before it could run."""
    return engine_named(name, **options).run(
        disk,
        [BuildStep(1, "any", "customize", shell="true")],
        machine,
        on_line=lambda step, line: None,
        should_stop=lambda: None,
        deadline=time.monotonic() + 600,
    )


def test_a_disk_without_an_operating_system_is_an_engine_error(tmp_path):
    disk = tmp_path / "blank.raw"
    with open(disk, "wb") as f:
        f.truncate(32 << 20)
    with pytest.raises(BuildEngineError, match="no operating system"):
        trivial_build("guestfs", accel="tcg", network=False, disk=disk, machine=LINUX)
    assert processes_naming(str(tmp_path)) == []


def test_shell_steps_on_a_windows_guest_are_refused_before_anything_starts(tmp_path):
    windows = Machine(vcpus=2, memory_mb=4096, os_type="Windows", hyper_v_generation="V2")
    with pytest.raises(BuildEngineError, match="Linux guests only"):
        trivial_build("guestfs", disk=tmp_path / "absent.raw", machine=windows)


def test_an_unknown_engine_name_is_refused():
    with pytest.raises(ValueError, match="unknown build engine 'docker'"):
        engine_named("docker")


def test_an_empty_build_starts_nothing(tmp_path):
    assert (
        engine_named("guestfs").run(
            Path(tmp_path / "absent.raw"), [], LINUX, on_line=lambda s, line: None, should_stop=lambda: None, deadline=0
        )
        == []
    )


def test_the_vm_engine_restarts_the_guest_for_a_reboot_step_and_goes_on_after_it(tiny_image, tmp_path):
    disk = tiny_image.copy(tmp_path / "disk.raw")
    steps = [
        BuildStep(1, "before", "customize", shell="cat /proc/sys/kernel/random/boot_id > /root/first-boot"),
        BuildStep(2, "restart", "customize", reboot=True),
        BuildStep(
            3,
            "after",
            "customize",
            shell='[ "$(cat /proc/sys/kernel/random/boot_id)" != "$(cat /root/first-boot)" ] && echo another boot',
        ),  # fmt: skip
    ]
    recorder = Recorder()
    results = engine_named("vm", accel="tcg", network=False).run(
        disk, steps, LINUX, on_line=recorder, should_stop=lambda: None, deadline=time.monotonic() + 600
    )
    assert [(r.number, r.exit_code) for r in results] == [(1, 0), (2, 0), (3, 0)]
    assert recorder.of(3) == ["another boot"]
    assert (2, "restart", "vm: restarting the guest") in recorder.lines
    assert read_file(disk, "/var/lib/vmg-agent/done") is None
    assert read_file(disk, "/etc/init.d/S00vmg-agent") is None
    assert processes_naming(str(tmp_path)) == []


def test_the_vm_engine_needs_a_kernel_under_boot(tmp_path):
    disk = tmp_path / "nokernel.raw"
    with open(disk, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["/sbin/mkfs.ext4", "-q", "-F", str(disk)], check=True)
    with pytest.raises(BuildEngineError, match="no kernel and initrd under /boot"):
        trivial_build("vm", accel="tcg", disk=disk, machine=LINUX)


GEN2 = Machine(vcpus=1, memory_mb=512, os_type="Linux", hyper_v_generation="V2")


def test_the_vm_engine_boots_a_gen2_guest_under_uefi_through_its_own_boot_loader(tiny_gen2_image, tmp_path):
    disk = tiny_gen2_image.copy(tmp_path / "disk.raw")
    steps = [
        BuildStep(1, "firmware", "customize", shell='[ -d /sys/firmware/efi ] && echo "booted by UEFI"; '
                  'dmesg | grep -o "EFI v[0-9.]* by .*"; tr " " "\\n" </proc/cmdline | grep ^initrd='),
        BuildStep(2, "install", "customize", shell="printf '#!/bin/sh\\necho gen2-init: $(cat /etc/built)\\n' "
                  ">/etc/init.d/S50gen2 && chmod 755 /etc/init.d/S50gen2 && echo built on gen2 >/etc/built"),
    ]  # fmt: skip
    recorder = Recorder()
    results = engine_named("vm", accel="tcg", network=False).run(
        disk, steps, GEN2, on_line=recorder, should_stop=lambda: None, deadline=time.monotonic() + 600
    )
    assert [(r.number, r.exit_code) for r in results] == [(1, 0), (2, 0)]
    assert (1, "firmware", "vm: booting the disk's UEFI boot loader under OVMF (TCG)") in recorder.lines
    booted_by, firmware, initrd = recorder.of(1)
    assert booted_by == "booted by UEFI"
    assert re.fullmatch(r"EFI v2\.\d+ by EDK II", firmware)  # OVMF
    assert initrd == "initrd=\\EFI\\vmgtiny\\initrd.img"  # the command line the ESP's boot loader gave the kernel
    assert read_file(disk, "/etc/built", partition=2) == b"built on gen2\n"
    assert read_file(disk, "/etc/init.d/S00vmg-agent", partition=2) is None
    assert processes_naming(str(tmp_path)) == []
    log = boot(disk)  # the result still boots under UEFI, from its ESP
    assert "gen2-init: built on gen2" in log
    assert "vmgtiny: init done" in log


def test_a_gen1_disk_given_as_gen2_is_refused_before_anything_boots(tiny_image, tmp_path):
    disk = tiny_image.copy(tmp_path / "disk.raw")  # MBR, no EFI System Partition
    with pytest.raises(BuildEngineError, match="boots from an EFI System Partition, and this disk has none"):
        trivial_build("vm", accel="tcg", disk=disk, machine=GEN2)
    assert processes_naming(str(tmp_path)) == []


def test_a_gen2_disk_without_an_ext_root_is_an_engine_error(tmp_path):
    disk = tmp_path / "esp-only.raw"
    with open(disk, "wb") as f:
        f.truncate(8 << 20)
    subprocess.run(["/sbin/sfdisk", "-q", str(disk)], input=b"label: gpt\nstart=2048, type=U\n", check=True)
    with pytest.raises(BuildEngineError, match="no ext2/3/4 root file system"):
        trivial_build("vm", accel="tcg", disk=disk, machine=GEN2)
