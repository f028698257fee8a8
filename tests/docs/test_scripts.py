"""The README's test command on a machine that lacks system packages: one message with the exact apt-get line,
exit 1, and no test run (as root it would install them, so it runs as nobody)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scripts_test_names_missing_packages_once_and_runs_nothing():
    # A world-readable PATH with the shell and Python but none of the packages the tests need.
    bin_dir = Path(tempfile.mkdtemp(prefix="vmgallery-bin-"))
    try:
        bin_dir.chmod(0o755)
        for tool in ("bash", "dirname", "id"):
            (bin_dir / tool).symlink_to(shutil.which(tool))
        (bin_dir / "python3").symlink_to(sys.executable)
        command = [shutil.which("bash"), str(ROOT / "scripts" / "test")]
        if os.geteuid() == 0:
            command = [shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        done = subprocess.run(command, env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(bin_dir)
    assert done.returncode == 1 and done.stdout == ""
    message, install = done.stderr.splitlines()
    assert message.startswith("scripts/test: the tests need ") and message.endswith("then run scripts/test again:")
    prefix = "  sudo apt-get update && sudo apt-get install -y --no-install-recommends "
    assert install.startswith(prefix) and {"qemu-utils", "nodejs", "npm"} <= set(install[len(prefix) :].split())


def test_the_venv_is_reinstalled_only_when_pyproject_changes(tmp_path):
    """scripts/venv (what serve and test run first) on a copy of the project whose .venv has a fake pip that logs
    its calls: the real pip would take minutes and the network to show the same thing."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "venv", tmp_path / "scripts" / "venv")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    fake_pip = bin_dir / "pip"
    fake_pip.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "pip.log"}\n')
    fake_pip.chmod(0o755)

    def venv(*extras: str) -> list[str]:
        subprocess.run(["bash", str(tmp_path / "scripts" / "venv"), *extras], check=True, timeout=60)
        log = tmp_path / "pip.log"
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return [call.split()[-1] for call in calls]

    test_installs = [".[test]", "azure-mgmt-imagebuilder==1.3.0"]  # 1.3 beside the sdk extra's 2.0 (own folder)
    assert venv("test") == test_installs
    assert venv("test") == [] and venv() == []  # the test extra brings the base install too
    assert venv("sdk") == [".[sdk]"]
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '2'\n")
    assert venv() == ["."] and venv() == []
    assert venv("test") == test_installs
