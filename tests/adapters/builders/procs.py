"""What the engine tests assert about processes: nothing that names a build's files outlives the build."""

from __future__ import annotations

from pathlib import Path


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
