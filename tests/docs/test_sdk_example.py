"""examples/sdk_quickstart.py, the README's Azure SDK path, run as a user runs it against a server: it must publish
the image, replicate it and bring the same bytes back from a disk made from `latest` in the second region."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from pathlib import Path

from vmgallery.domain.vhd import vhd_footer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sdk_quickstart.py"
MIB = 1 << 20


def test_the_sdk_example_publishes_replicates_and_reads_back(server, tmp_path):
    raw = bytearray(3 * MIB)  # data, a hole, data: the example skips the zeros
    raw[:MIB] = random.Random(7).randbytes(MIB)
    raw[2 * MIB :] = random.Random(8).randbytes(MIB)
    golden = tmp_path / "golden.vhd"
    golden.write_bytes(bytes(raw) + vhd_footer(len(raw)))
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            str(golden),
            "--out",
            str(tmp_path / "copy.vhd"),
            "--endpoint",
            server.url,
            "--data-dir",
            str(server.data_dir),
            "--subscription",
            str(uuid.uuid4()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "eastus: Completed 100%, westus: Completed 100%" in done.stdout.splitlines()
    copy = (tmp_path / "copy.vhd").read_bytes()
    assert copy[: len(raw)] == raw and len(copy) == len(raw) + 512
