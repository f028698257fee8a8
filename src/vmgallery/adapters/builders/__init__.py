"""The build engines behind app.build_engine.BuildEngine, chosen by name: `guestfs` (the default) and `vm`.

    engine = engine_named("guestfs", accel="auto")
    results = engine.run(disk, steps, machine, on_line=..., should_stop=..., deadline=...)

`accel` is "auto" (KVM only when a probe boot under it succeeds, see accel.py), "kvm" or "tcg"; `network` gives the
steps the host's network through QEMU's user networking (apt-get needs it); `work_dir` holds each run's scratch
files (default: the system's temp folder).
"""

from __future__ import annotations

from pathlib import Path

from ...app.build_engine import BuildEngine
from .guestfs import GuestfsEngine
from .vm import VmEngine

ENGINES = ("guestfs", "vm")


def engine_named(name: str, *, accel: str = "auto", network: bool = True, work_dir: Path | None = None) -> BuildEngine:
    if name == "guestfs":
        return GuestfsEngine(accel=accel, network=network, work_dir=work_dir)
    if name == "vm":
        return VmEngine(accel=accel, network=network, work_dir=work_dir)
    raise ValueError(f"unknown build engine {name!r}: one of {', '.join(ENGINES)}")
