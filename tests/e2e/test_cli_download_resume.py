"""`vmgallery disk download --resume`: a download stopped by a killed server or by Ctrl-C keeps `FILE.partial` and
its journal and says how to go on; `--resume` fetches only the ranges the journal lacks and the result is the
disk's bytes; a disk that changed since refuses the resume and keeps the partial download; without --resume the
partial download is started over."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid

from vmgallery.adapters.disks import formats

from .test_cli_upload_crash import cli_env, vmgallery
from .test_crash_bytes import group

MIB = 1 << 20

# The CLI as its own process, with hooks: each ranged read says on stdout which range it fetched, and with
# VMGALLERY_TEST_GATE=N the reads after the first N wait until a line arrives on stdin. The test stops the download
# (kills the server or the CLI, or sends Ctrl-C) while those wait, so nothing can finish before it: no sleep, no
# race. Each journal record says "recorded" once it is in place; VMGALLERY_TEST_JOURNAL_BYTES records more often.
# Ctrl-C is made to raise KeyboardInterrupt as at a terminal: a suite run as a background job of a non-interactive
# shell inherits SIGINT ignored, and Python then installs no handler for it (the CLI would not see the Ctrl-C).
HOOKED_CLI = """
import os, signal, sys, threading
from vmgallery.entrypoints.cli import transfer
from vmgallery.entrypoints.cli.main import app

read, record = transfer.PageBlob.read, transfer.Journal._record
gate_after = int(os.environ.get("VMGALLERY_TEST_GATE", "0"))
transfer.JOURNAL_BYTES = int(os.environ.get("VMGALLERY_TEST_JOURNAL_BYTES", transfer.JOURNAL_BYTES))
opened = threading.Event()
lock = threading.Lock()
started = 0

def release():
    sys.stdin.readline()
    opened.set()

def read_and_say(self, start, end, etag=None):
    global started
    with lock:
        started += 1
        gated = gate_after and started > gate_after
    if gated:
        opened.wait(60)  # bounded: a test whose stop never comes fails on what follows instead of hanging
    data = read(self, start, end, etag)
    sys.stdout.write(f"read {start} {end}\\n")  # one write: print() interleaves across threads
    sys.stdout.flush()
    return data

def record_and_say(self):
    record(self)
    sys.stdout.write("recorded\\n")
    sys.stdout.flush()

transfer.PageBlob.read = read_and_say
transfer.Journal._record = record_and_say
threading.Thread(target=release, daemon=True).start()
signal.signal(signal.SIGINT, signal.default_int_handler)
app(sys.argv[1:], prog_name="vmgallery")
"""


def hooked(env: dict[str, str], gate: int, *args: str, journal_bytes: int | None = None) -> subprocess.Popen:
    knobs = {"VMGALLERY_TEST_GATE": str(gate)}
    if journal_bytes:
        knobs["VMGALLERY_TEST_JOURNAL_BYTES"] = str(journal_bytes)
    return subprocess.Popen(
        [sys.executable, "-c", HOOKED_CLI, *args],
        env={**env, **knobs},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def reads(out: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for _, a, b in (line.split() for line in out.splitlines() if line.startswith("read "))]


def journalled(path) -> list[tuple[int, int]]:
    return [(a, b) for a, b in json.loads(path.read_text())["done"]]


def overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    return sum(max(0, min(y1, y2) - max(x1, x2)) for x1, y1 in a for x2, y2 in b)


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_download_stopped_by_a_killed_server_resumes_where_it_stopped(make_server, tmp_path):
    sub = str(uuid.uuid4())
    image = tmp_path / "disk.raw"
    with open(image, "wb") as f:  # 48 MiB of data and two holes in 64 MiB
        f.write(os.urandom(24 * MIB))
        f.seek(32 * MIB)
        f.write(os.urandom(24 * MIB))
        f.truncate(64 * MIB)
    srv = make_server()
    group(srv, sub)
    env = cli_env(srv, sub, tmp_path)
    uploaded = vmgallery(env, "disk", "upload", "-g", "rg", "-n", "d", "--file", str(image), "-o", "none")
    assert uploaded.returncode == 0, uploaded.stderr
    # qcow2: the raw part is what is resumed, the conversion comes after.
    target = tmp_path / "back.qcow2"
    partial, journal = tmp_path / "back.qcow2.partial", tmp_path / "back.qcow2.partial.json"
    args = ["disk", "download", "-g", "rg", "-n", "d", "--file", str(target)]

    download = hooked(env, 3, *args)
    first = [download.stdout.readline() for _ in range(3)]
    assert all(line.startswith("read ") for line in first), first
    srv.kill()
    out, err = download.communicate("go\n", timeout=120)
    assert download.returncode == 1, err
    assert f"kept in '{partial}'" in err and "--resume" in err, err
    assert not target.exists()
    done = journalled(journal)
    landed = sum(b - a for a, b in done)
    assert 12 * MIB <= landed < 48 * MIB, done
    assert overlap(done, reads("".join(first) + out)) == landed  # it claims only what was fetched

    srv = make_server()
    env = cli_env(srv, sub, tmp_path)
    resumed = hooked(env, 0, *args, "--resume")
    out, err = resumed.communicate("", timeout=120)
    assert resumed.returncode == 0, err
    assert f"Resuming: {landed} of {64 * MIB + 512} bytes are already in" in err, err
    fetched = reads(out)
    assert overlap(fetched, done) == 0
    assert sum(b - a for a, b in fetched) == 48 * MIB + 512 - landed  # the rest of the data and the footer
    assert formats.probe(target).format == "qcow2"
    assert formats.same_contents(target, image)
    assert not partial.exists() and not journal.exists()


def test_a_changed_disk_refuses_the_resume_and_a_new_download_replaces_the_partial(make_server, tmp_path):
    sub = str(uuid.uuid4())
    srv = make_server()
    group(srv, sub)
    env = cli_env(srv, sub, tmp_path)
    first, second = tmp_path / "first.raw", tmp_path / "second.raw"
    first.write_bytes(os.urandom(16 * MIB))
    second.write_bytes(os.urandom(16 * MIB))
    upload = ["disk", "upload", "-g", "rg", "-n", "d", "-o", "none", "--file"]
    assert vmgallery(env, *upload, str(first)).returncode == 0
    target = tmp_path / "back.raw"
    partial, journal = tmp_path / "back.raw.partial", tmp_path / "back.raw.partial.json"
    args = ["disk", "download", "-g", "rg", "-n", "d", "--file", str(target)]

    download = hooked(env, 1, *args)
    assert download.stdout.readline().startswith("read ")
    download.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = download.communicate("go\n", timeout=120)
    assert download.returncode == 1, err
    assert "(DownloadInterrupted) Interrupted." in err and "--resume" in err, err
    kept = (sha(partial), journal.read_text())
    assert journalled(journal)

    assert vmgallery(env, "disk", "delete", "-g", "rg", "-n", "d").returncode == 0
    assert vmgallery(env, *upload, str(second)).returncode == 0
    refused = vmgallery(env, *args, "--resume")
    assert refused.returncode == 1
    assert "(SourceChanged) The disk is not the one" in refused.stderr, refused.stderr
    assert "without --resume" in refused.stderr
    assert (sha(partial), journal.read_text()) == kept and not target.exists()

    again = vmgallery(env, *args)
    assert again.returncode == 0, again.stderr
    assert target.read_bytes() == second.read_bytes()
    assert not partial.exists() and not journal.exists()


def test_a_killed_cli_leaves_a_journal_of_what_was_on_disk_and_resumes_from_it(make_server, tmp_path):
    """The journal is recorded as the download goes (here every 8 MiB), not only when it stops: kill -9 of the CLI
    leaves the last record, and --resume fetches what it does not name."""
    sub = str(uuid.uuid4())
    srv = make_server()
    group(srv, sub)
    env = cli_env(srv, sub, tmp_path)
    image = tmp_path / "disk.raw"
    image.write_bytes(os.urandom(32 * MIB))
    assert vmgallery(env, "disk", "upload", "-g", "rg", "-n", "d", "--file", str(image), "-o", "none").returncode == 0
    target, journal = tmp_path / "back.raw", tmp_path / "back.raw.partial.json"
    args = ["disk", "download", "-g", "rg", "-n", "d", "--file", str(target)]

    download = hooked(env, 4, *args, journal_bytes=8 * MIB)
    while (line := download.stdout.readline()) != "recorded\n":
        assert line.startswith("read "), line
    download.kill()
    download.communicate(timeout=60)
    done = journalled(journal)
    landed = sum(b - a for a, b in done)
    assert 8 * MIB <= landed <= 16 * MIB, done

    resumed = hooked(env, 0, *args, "--resume")
    out, err = resumed.communicate("", timeout=120)
    assert resumed.returncode == 0, err
    fetched = reads(out)
    assert overlap(fetched, done) == 0 and sum(b - a for a, b in fetched) == 32 * MIB + 512 - landed
    assert target.read_bytes() == image.read_bytes()
