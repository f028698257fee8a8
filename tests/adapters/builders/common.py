"""What the engine tests share: the steps of the standard build, a recorder of output lines, a process check."""

from __future__ import annotations

import threading
from pathlib import Path

from vmgallery.app.build_engine import BuildStep, Machine


def processes_naming(text: str) -> list[tuple[int, str]]:
    """Live (non-zombie) processes whose command line contains `text` (a build's unique temp path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if text in cmdline and stat[stat.rindex(")") + 2] != "Z":
            found.append((int(entry.name), cmdline))
    return found


def parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


LINUX = Machine(vcpus=2, memory_mb=1024, os_type="Linux", hyper_v_generation="V1")
PAYLOAD = b"payload from the host \xe2\x9c\x93\n"

WRITE_FILES = """\
echo "building on $(grep ^ID= /etc/os-release)"
echo to-stderr >&2
echo "built by vmgallery" > /etc/built-by-vmgallery
cat > /etc/init.d/S50vmgallery <<'EOF'
#!/bin/sh
echo "vmgallery-init: $(cat /etc/built-by-vmgallery) / $(cat /usr/share/vmg/payload.txt)"
EOF
chmod 755 /etc/init.d/S50vmgallery
echo $((6 * 7))
"""


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[int, str, str]] = []
        self.seen = threading.Event()
        self.wanted: str | None = None

    def __call__(self, step: BuildStep, line: str) -> None:
        self.lines.append((step.number, step.name, line))
        if self.wanted is not None and line == self.wanted:
            self.seen.set()

    def of(self, number: int) -> list[str]:
        """A step's own output, without the engine's notes (guestfs: ..., vm: ...)."""
        return [line for n, _, line in self.lines if n == number and not line.startswith(("guestfs:", "vm:"))]


def standard_steps(payload: Path) -> list[BuildStep]:
    """Shell output and stderr, an init script, a File step into a new folder, a tail longer than 20 lines, a failing
    step and one after it that must not run."""
    return [
        BuildStep(1, "write-files", "customize", shell=WRITE_FILES),
        BuildStep(2, "copy-payload", "customize", upload_from=payload, upload_to="/usr/share/vmg/payload.txt"),
        BuildStep(
            3,
            "check",
            "validate",
            shell="test -f /usr/share/vmg/payload.txt && echo payload-present\n"
            "i=1; while [ $i -le 30 ]; do echo line $i; i=$((i + 1)); done",
        ),  # fmt: skip
        BuildStep(4, "fails", "customize", shell="echo about to fail; exit 7"),
        BuildStep(5, "never", "customize", shell="touch /never-runs"),
    ]
