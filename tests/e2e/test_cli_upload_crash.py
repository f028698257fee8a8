"""kill -9 of the server during a parallel `vmgallery disk upload`: the CLI ends with its --resume hint; after a
restart on the same data dir, `disk upload --resume` sends what the server lacks, and the disk downloads
byte-identical to the file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid

from .test_crash_bytes import assert_store_sound, group

MIB = 1 << 20

# The CLI as its own process, which says on stdout when a page write was acknowledged, so that the test can kill the
# server while the other writes are in flight (no sleep, no guess).
ANNOUNCER = """
import sys
from vmgallery.entrypoints.cli import transfer
from vmgallery.entrypoints.cli.main import app

put_page = transfer.PageBlob.put_page

def put_and_say(self, offset, data):
    put_page(self, offset, data)
    sys.stdout.write(f"landed {offset} {len(data)}\\n")  # one write: print() interleaves across threads
    sys.stdout.flush()

transfer.PageBlob.put_page = put_and_say
app(sys.argv[1:], prog_name="vmgallery")
"""


def cli_env(srv, sub: str, home) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "VMGALLERY_ENDPOINT": srv.url,
        "VMGALLERY_TOKEN": srv.token,
        "VMGALLERY_CA_BUNDLE": srv.ca,
        "VMGALLERY_SUBSCRIPTION": sub,
    }


def vmgallery(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vmgallery", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_a_parallel_cli_upload_resumes_after_the_server_is_killed(make_server, tmp_path):
    sub = str(uuid.uuid4())
    image = tmp_path / "disk.raw"
    with open(image, "wb") as f:  # 96 MiB of data and two holes in 128 MiB: every kind of block
        f.write(os.urandom(40 * MIB))
        f.seek(48 * MIB)
        f.write(os.urandom(56 * MIB))
        f.truncate(128 * MIB)
    srv = make_server()
    group(srv, sub)
    args = ["disk", "upload", "-g", "rg", "-n", "d", "--file", str(image), "--os-type", "Linux", "-o", "none"]

    upload = subprocess.Popen(
        [sys.executable, "-c", ANNOUNCER, *args],
        env=cli_env(srv, sub, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged = [upload.stdout.readline() for _ in range(3)]
    assert all(line.startswith("landed ") for line in acknowledged), acknowledged
    srv.kill()  # mid-stream: the CLI has several page writes in flight
    out, err = upload.communicate(timeout=120)
    assert upload.returncode == 1, err
    assert "(" in err and "--resume" in err, err
    landed_before = len(acknowledged) + out.count("landed ")
    assert landed_before < 25, "the upload finished before the server was killed"

    srv = make_server()
    env = cli_env(srv, sub, tmp_path)
    resumed = vmgallery(env, *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming: " in resumed.stderr and "already on the disk" in resumed.stderr
    already = int(resumed.stderr.split("Resuming: ", 1)[1].split(" ", 1)[0])
    assert 12 * MIB <= already < 96 * MIB

    shown = vmgallery(env, "disk", "show", "-g", "rg", "-n", "d", "--query", "diskState", "-o", "tsv")
    assert shown.stdout == "Unattached\n"
    back = tmp_path / "back.raw"
    downloaded = vmgallery(env, "disk", "download", "-g", "rg", "-n", "d", "--file", str(back))
    assert downloaded.returncode == 0, downloaded.stderr
    assert hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(image.read_bytes()).hexdigest()
    assert assert_store_sound(srv.data_dir) >= 96
