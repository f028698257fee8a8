"""The README's five-minute walk-through, run as written: its commands are read from README.md (every ```sh block of
the section), so the README cannot drift from what works. They run in bash on a fresh server, as a user would run
them: `vmgallery` on PATH, the default subscription, the server found through the environment (what `vmgallery
login` would otherwise have saved)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ..conftest import running_server

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Five minutes, start to finish"


def walkthrough() -> str:
    text = README.read_text()
    section = text[text.index(SECTION) + len(SECTION) :]
    section = section[: section.find("\n## ")]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)
    assert blocks, f"no ```sh block under {SECTION!r} in README.md"
    return "".join(blocks)


def test_the_readme_walkthrough_runs_as_written(tmp_path):
    (tmp_path / "server").mkdir()
    (tmp_path / "work").mkdir()
    with running_server("sqlite", tmp_path / "server") as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VMGALLERY_")},
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "VMGALLERY_ENDPOINT": server.url,
            "VMGALLERY_TOKEN": server.token,
            "VMGALLERY_CA_BUNDLE": server.ca,
        }
        done = subprocess.run(
            ["bash", "-euxo", "pipefail", "-c", walkthrough()],
            cwd=tmp_path / "work",
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    out = done.stdout.splitlines()
    # The version table shows both regions replicated, without --expand; the last command's verdict.
    version_row = next(line for line in out if line.startswith("1.0.0 "))
    assert "eastus Completed 100%, westus Completed 100%" in version_row
    assert out[-1] == "Images are identical."
