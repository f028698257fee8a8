"""The build engine port: what the image builder's use cases need from whatever runs customization steps on a disk.

Two adapters implement it (adapters/builders): `guestfs` (libguestfs, the file systems of a disk image, no boot)
and `vm` (QEMU boots the disk and the steps run in the guest). The use case prepares everything an engine needs:
the disk as a local raw file it may change in place, and each step with its script and any file already fetched
and checksum-verified, so an engine does no network I/O and knows nothing of templates, URIs or galleries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class BuildStep:
    number: int  # 1-based, in run order; log lines are tagged `[number name]`
    name: str  # the customizer's name, or "deprovision"
    phase: str  # "customize" | "validate" | "deprovision"
    shell: str | None = None  # a script for the guest's /bin/sh (Shell inline lines joined, or a fetched scriptUri)
    upload_from: Path | None = None  # File: the fetched, verified local file
    upload_to: str | None = None  # File: its destination path in the guest
    reboot: bool = False  # WindowsRestart / a step that needs the guest restarted (vm engine only)


@dataclass(frozen=True)
class StepResult:
    number: int
    name: str
    exit_code: int
    seconds: float
    tail: tuple[str, ...]  # the step's last output lines, for `lastRunStatus.message`


@dataclass(frozen=True)
class Machine:
    """The build VM's shape, from `vmProfile` (vmSize -> vcpus/memory) and the source's properties."""

    vcpus: int
    memory_mb: int
    os_type: str  # "Linux" | "Windows"
    hyper_v_generation: str  # "V1" (BIOS) | "V2" (UEFI)


class BuildInterrupted(Exception):
    """The run was cancelled or overran its deadline; every process the engine started has been ended."""

    def __init__(self, reason: str, results: Sequence[StepResult] = ()):
        super().__init__(reason)
        self.reason = reason  # "cancelled" | "timeout"
        self.results = tuple(results)


class BuildEngineError(Exception):
    """The engine itself failed (the appliance or VM did not start, the disk holds no OS it recognises): not a step."""


OnLine = Callable[[BuildStep, str], None]  # one output line of a step, as it is produced (or as soon as possible)


class BuildEngine(Protocol):
    name: str  # "guestfs" | "vm"

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
        """Run `steps` in order against the raw disk image `disk`, changing it in place.

        Stops after the first step whose exit code is not 0 and returns the results so far (that step's last).
        `should_stop()` returns "cancelled" when the run is to stop; at `deadline` (time.monotonic()) it is
        "timeout". Either way every process started is ended and `BuildInterrupted` raised.
        """
        ...
