"""A Debian minbase disk image for the slow image builder tests, made with mmdebstrap from Debian's package registry.

The root file system (the host's Debian suite, `--variant=minbase`: essential packages and apt, no kernel, no init
system) is made once and kept in a cache folder between runs ($VMGALLERY_TEST_CACHE, else ~/.cache/vmgallery-tests),
as a raw disk laid out like the tiny image: an MBR and one ext4 partition at 1 MiB. Needs root (mmdebstrap's root
mode, and device nodes in the staged tree) and the registry: the test is skipped without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.tinyimage import make_disk

SIZE = 1 << 30  # minbase is about 200 MB; room for what the steps install


def cache_dir() -> Path:
    folder = Path(os.environ.get("VMGALLERY_TEST_CACHE") or Path.home() / ".cache" / "vmgallery-tests")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def host_suite() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    return "stable"


def debian_minbase() -> Path:
    """The cached raw disk (read-only: copy it before a build changes it)."""
    suite = host_suite()
    disk = cache_dir() / f"debian-{suite}-minbase.raw"
    if disk.exists():
        return disk
    if os.geteuid() != 0 or shutil.which("mmdebstrap") is None:
        pytest.skip("a Debian minbase image needs root and mmdebstrap (apt-get install mmdebstrap)")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        root = Path(tmp) / "root"
        made = subprocess.run(
            ["mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", suite, str(root)],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            pytest.skip(f"mmdebstrap could not make {suite} minbase: {made.stderr.strip()[-500:]}")
        # libguestfs's inspection wants an fstab that names the root.
        (root / "etc" / "fstab").write_text("/dev/vda1 / ext4 rw 0 1\n")
        (root / "etc" / "hostname").write_text("vmgdebian\n")
        staged = make_disk(root, Path(tmp) / "disk.raw", size=SIZE)
        os.replace(staged, disk)
    return disk
