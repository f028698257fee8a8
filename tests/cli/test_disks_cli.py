"""`vmgallery disk|snapshot|image`: uploads of real ext4 images in every input format, downloads in every output
format, resuming an upload whose process was killed, and the az-shaped create/show/list/delete/access commands."""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vmgallery.adapters.disks.formats import probe, same_contents
from vmgallery.domain.vhd import FOOTER_SIZE, parse_vhd_footer

from .conftest import env_for

MIB = 1 << 20
KNOWN = "hello from vmgallery\n"


def ext4_image(folder: Path, mib: int = 8, random_mib: int = 3) -> Path:
    """A raw ext4 disk of `mib` MiB holding /dir/known.txt and `random_mib` MiB of random bytes (data to move)."""
    root = folder / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "known.txt").write_text(KNOWN)
    (root / "random.bin").write_bytes(os.urandom(random_mib * MIB))
    raw = folder / "fs.raw"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(raw), f"{mib}M"], check=True, capture_output=True)
    return raw


def convert(raw: Path, fmt: str) -> Path:
    if fmt == "raw":
        return raw
    out = raw.with_suffix(f".{fmt}")
    options = ["-o", "subformat=dynamic,force_size=on"] if fmt == "vpc" else []
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, *options, str(raw), str(out)], check=True)
    return out


def known_file(image: Path) -> str:
    done = subprocess.run(
        ["debugfs", "-R", "cat /dir/known.txt", str(image)], capture_output=True, text=True, check=True
    )
    return done.stdout


def assert_same_disk(original_raw: Path, got: Path, fmt: str) -> None:
    """The downloaded image holds the original's bytes: raw byte for byte, VHD as raw plus a valid footer, the
    others by `qemu-img compare`."""
    if fmt == "raw":
        assert filecmp.cmp(original_raw, got, shallow=False)
        assert known_file(got) == KNOWN
    elif fmt == "vhd":
        size = original_raw.stat().st_size
        assert got.stat().st_size == size + FOOTER_SIZE
        with open(got, "rb") as f:
            assert f.read(size) == original_raw.read_bytes()
            assert parse_vhd_footer(f.read()).current_size == size
    else:
        assert probe(got).format == fmt
        assert same_contents(original_raw, got)


@pytest.fixture(scope="module")
def ext4(tmp_path_factory) -> Path:
    return ext4_image(tmp_path_factory.mktemp("ext4"))


@pytest.mark.parametrize("source_format", ["qcow2", "vhdx", "raw", "vpc"])
def test_upload_any_format_then_download_every_format(cli, group, ext4, tmp_path, source_format):
    source = convert(ext4, source_format)
    disk = cli.json(
        "disk",
        "upload",
        "-g",
        group,
        "-n",
        "d1",
        "--file",
        str(source),
        "--os-type",
        "linux",
        "--hyper-v-generation",
        "V2",
    )
    assert (disk["diskState"], disk["provisioningState"], disk["osType"]) == ("Unattached", "Succeeded", "Linux")
    assert disk["creationData"]["uploadSizeBytes"] == ext4.stat().st_size + FOOTER_SIZE
    assert disk["resourceGroup"] == group and disk["hyperVGeneration"] == "V2"
    for fmt in ("raw", "vhd", "qcow2") if source_format == "qcow2" else ("raw",):
        target = tmp_path / f"out.{fmt}"
        cli.ok("disk", "download", "-g", group, "-n", "d1", "--file", str(target), "--format", fmt)
        assert_same_disk(ext4, target, fmt)
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"out.{f}" for f in (("raw", "vhd", "qcow2") if source_format == "qcow2" else ("raw",))
    ), "temporary files were left behind"


def test_download_format_follows_the_extension_and_vhdx_vmdk_convert(cli, group, ext4, tmp_path):
    cli.ok("disk", "upload", "-g", group, "-n", "d1", "--file", str(ext4))
    for name, fmt in (("a.vhdx", "vhdx"), ("b.vmdk", "vmdk"), ("c.img", "raw"), ("d.bin", "vhd")):
        cli.ok("disk", "download", "-g", group, "-n", "d1", "--file", str(tmp_path / name))
        assert_same_disk(ext4, tmp_path / name, fmt)


def test_upload_pads_an_odd_sized_raw_to_whole_mib(cli, group, tmp_path):
    odd = tmp_path / "odd.raw"
    odd.write_bytes(os.urandom(MIB + 4096))
    disk = cli.json("disk", "upload", "-g", group, "-n", "odd", "--file", str(odd))
    assert disk["creationData"]["uploadSizeBytes"] == 2 * MIB + FOOTER_SIZE
    cli.ok("disk", "download", "-g", group, "-n", "odd", "--file", str(tmp_path / "back.raw"))
    back = (tmp_path / "back.raw").read_bytes()
    assert back == odd.read_bytes() + bytes(MIB - 4096)


KILLER = """
import os, signal, sys
from vmgallery.entrypoints.cli import transfer
from vmgallery.entrypoints.cli.main import app

written = []
put_page = transfer.PageBlob.put_page

def put_then_die(self, offset, data):
    put_page(self, offset, data)
    written.append(offset)
    if len(written) == int(os.environ["KILL_AFTER_PAGES"]):
        os.kill(os.getpid(), getattr(signal, os.environ["KILL_SIGNAL"]))  # KILL: no goodbye, no endGetAccess

transfer.PageBlob.put_page = put_then_die
app(sys.argv[1:], prog_name="vmgallery")
"""


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_a_killed_upload_resumes_with_the_pages_still_missing(cli, server, subscription, group, tmp_path, stop):
    """SIGKILL ends the CLI on the spot; SIGTERM (a `kill`, a closed terminal) as Ctrl-C does, with the resume hint."""
    raw = ext4_image(tmp_path, mib=24, random_mib=16)
    qcow2 = convert(raw, "qcow2")
    args = ["disk", "upload", "-g", group, "-n", "big", "--file", str(qcow2), "--os-type", "Linux"]
    env = {**os.environ, **{k: v for k, v in env_for(server, subscription).items() if v}}
    env |= {"KILL_AFTER_PAGES": "2", "KILL_SIGNAL": stop}
    killed = subprocess.run([sys.executable, "-c", KILLER, *args], env=env, capture_output=True, timeout=120, text=True)
    if stop == "SIGKILL":
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    else:
        assert killed.returncode == 1, killed.stderr
        assert "(UploadInterrupted) Interrupted. The disk 'big' keeps what was written" in killed.stderr
        assert "--resume" in killed.stderr
    assert cli.json("disk", "show", "-g", group, "-n", "big")["diskState"] == "ActiveUpload"

    refused = cli.fails(*args)
    assert refused.stderr.startswith("(ResourceExists) ") and "--resume" in refused.stderr
    resumed = cli.ok(*args, "--resume")
    assert "Resuming: " in resumed.stderr and "already on the disk" in resumed.stderr
    assert cli.json("disk", "show", "-g", group, "-n", "big")["diskState"] == "Unattached"
    cli.ok("disk", "download", "-g", group, "-n", "big", "--file", str(tmp_path / "back.raw"))
    assert_same_disk(raw, tmp_path / "back.raw", "raw")


def test_resume_checks_the_disk_is_that_upload(cli, group, ext4, tmp_path):
    cli.ok("disk", "upload", "-g", group, "-n", "done", "--file", str(ext4))
    finished = cli.fails("disk", "upload", "-g", group, "-n", "done", "--file", str(ext4), "--resume")
    assert finished.stderr.startswith("(OperationNotAllowed) ") and "Unattached" in finished.stderr
    cli.ok(
        "disk",
        "create",
        "-g",
        group,
        "-n",
        "other",
        "--upload-type",
        "Upload",
        "--upload-size-bytes",
        str(2 * MIB + 512),
    )
    other = cli.fails("disk", "upload", "-g", group, "-n", "other", "--file", str(ext4), "--resume")
    assert other.stderr.startswith("(InvalidArgumentValue) ") and str(2 * MIB + 512) in other.stderr
    # --resume with nothing to resume is a plain upload.
    assert (
        cli.json("disk", "upload", "-g", group, "-n", "new", "--file", str(ext4), "--resume")["diskState"]
        == "Unattached"
    )


def test_upload_refuses_what_is_not_a_disk_image(cli, group, tmp_path):
    missing = cli.fails("disk", "upload", "-g", group, "-n", "x", "--file", str(tmp_path / "nope.raw"))
    assert missing.stderr.startswith("(FileNotFound) ")
    backed = tmp_path / "child.qcow2"
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(backed)], check=True)
    refused = cli.fails("disk", "upload", "-g", group, "-n", "x", "--file", str(backed))
    assert refused.stderr.startswith("(UnsupportedImage) ") and "backing file" in refused.stderr
    assert cli.json("disk", "list", "-g", group) == []


def test_disk_create_options_show_list_delete(cli, group, ext4, subscription):
    empty = cli.json(
        "disk", "create", "-g", group, "-n", "empty", "--size-gb", "1", "--sku", "Premium_LRS", "--tags", "a=1", "b=2"
    )
    assert (empty["creationData"]["createOption"], empty["diskSizeGB"], empty["sku"]["name"]) == (
        "Empty",
        1,
        "Premium_LRS",
    )
    assert empty["tags"] == {"a": "1", "b": "2"} and empty["location"] == "eastus"
    for_upload = cli.json(
        "disk",
        "create",
        "-g",
        group,
        "-n",
        "up",
        "--upload-type",
        "Upload",
        "--upload-size-bytes",
        str(MIB + 512),
        "--os-type",
        "Windows",
        "-l",
        "westus",
    )
    assert for_upload["diskState"] == "ReadyToUpload" and for_upload["location"] == "westus"
    cli.ok("disk", "upload", "-g", group, "-n", "src", "--file", str(ext4), "--os-type", "Linux")
    copy = cli.json("disk", "create", "-g", group, "-n", "copy", "--source", "src")  # a name: looked up
    src_id = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/disks/src"
    assert copy["creationData"]["createOption"] == "Copy"
    assert copy["creationData"]["sourceResourceId"].lower() == src_id.lower()
    by_id = cli.json("disk", "create", "-g", group, "-n", "copy2", "--source", src_id)
    assert by_id["creationData"]["createOption"] == "Copy"

    assert sorted(d["name"] for d in cli.json("disk", "list", "-g", group)) == ["copy", "copy2", "empty", "src", "up"]
    assert len(cli.json("disk", "list")) == 5
    table = cli.ok("disk", "list", "-g", group, "-o", "table").stdout.splitlines()
    assert table[0].split() == [
        "Name",
        "ResourceGroup",
        "Location",
        "Sku",
        "OsType",
        "SizeGb",
        "ProvisioningState",
        "DiskState",
    ]
    assert (
        cli.ok("disk", "show", "-g", group, "-n", "copy", "--query", "diskState", "-o", "tsv").stdout == "Unattached\n"
    )
    cli.ok("disk", "delete", "-g", group, "-n", "copy2")
    gone = cli.fails("disk", "show", "-g", group, "-n", "copy2")
    assert gone.stderr.startswith("(ResourceNotFound) ")


def test_disk_create_errors(cli, group):
    assert cli.fails("disk", "create", "-g", group, "-n", "x").stderr.startswith("(RequiredArgumentMissing) ")
    assert cli.fails("disk", "create", "-g", group, "-n", "x", "--source", "nothing").stderr.startswith(
        "(ResourceNotFound) "
    )
    both = cli.fails("disk", "create", "-g", group, "-n", "x", "--source", "a", "--upload-type", "Upload")
    assert both.stderr.startswith("(MutuallyExclusiveArgument) ")
    bad = cli.fails(
        "disk", "create", "-g", group, "-n", "x", "--upload-type", "Upload", "--upload-size-bytes", str(5 * MIB)
    )
    assert bad.stderr.startswith("(InvalidParameter) ") and "5243392" in bad.stderr
    blob = cli.fails("disk", "create", "-g", group, "-n", "x", "--source", "https://a.blob.core.windows.net/c/d.vhd")
    assert blob.stderr.startswith("(RequiredArgumentMissing) ") and "--source-storage-account-id" in blob.stderr


def test_grant_and_revoke_access(cli, server, group, ext4):
    cli.ok("disk", "upload", "-g", group, "-n", "d1", "--file", str(ext4))
    url = cli.json("disk", "grant-access", "-g", group, "-n", "d1", "--duration-in-seconds", "600")["accessSAS"]
    assert cli.json("disk", "show", "-g", group, "-n", "d1")["diskState"] == "ActiveSAS"
    with server.http() as http:
        assert http.get(url, headers={"x-ms-range": "bytes=0-1023"}).content == ext4.read_bytes()[:1024]
        write = cli.fails(
            "disk", "grant-access", "-g", group, "-n", "d1", "--duration-in-seconds", "60", "--access-level", "Write"
        )
        assert write.stderr.startswith("(OperationNotAllowed) ")
        cli.ok("disk", "revoke-access", "-g", group, "-n", "d1")
        assert http.get(url).status_code == 403
    assert cli.json("disk", "show", "-g", group, "-n", "d1")["diskState"] == "Unattached"


def test_snapshot_lifecycle_and_access(cli, server, group, ext4, tmp_path):
    cli.ok("disk", "upload", "-g", group, "-n", "d1", "--file", str(ext4), "--os-type", "Linux")
    snap = cli.json("snapshot", "create", "-g", group, "-n", "s1", "--source", "d1", "--tags", "k=v")
    assert snap["creationData"]["createOption"] == "Copy" and snap["osType"] == "Linux"
    assert snap["creationData"]["sourceResourceId"].lower().endswith("/disks/d1")
    assert snap["resourceGroup"] == group and snap["tags"] == {"k": "v"}
    again = cli.json("snapshot", "create", "-g", group, "-n", "s2", "--source", "s1")  # a snapshot of a snapshot
    assert again["creationData"]["sourceResourceId"].lower().endswith("/snapshots/s1")
    url = cli.json("snapshot", "grant-access", "-g", group, "-n", "s2", "--duration-in-seconds", "60")["accessSAS"]
    with server.http() as http:
        assert http.get(url, headers={"x-ms-range": f"bytes=0-{MIB - 1}"}).content == ext4.read_bytes()[:MIB]
    cli.ok("snapshot", "revoke-access", "-g", group, "-n", "s2")
    assert sorted(s["name"] for s in cli.json("snapshot", "list", "-g", group)) == ["s1", "s2"]
    assert cli.json("snapshot", "show", "-g", group, "-n", "s1")["name"] == "s1"
    cli.ok("snapshot", "delete", "-g", group, "-n", "s2")
    assert [s["name"] for s in cli.json("snapshot", "list")] == ["s1"]
    assert cli.fails("snapshot", "create", "-g", group, "-n", "s3").stderr.startswith("(RequiredArgumentMissing) ")
    # A disk made from the snapshot holds the same bytes.
    cli.ok("disk", "create", "-g", group, "-n", "d2", "--source", "s1")
    cli.ok("disk", "download", "-g", group, "-n", "d2", "--file", str(tmp_path / "d2.raw"))
    assert_same_disk(ext4, tmp_path / "d2.raw", "raw")


def test_image_lifecycle(cli, group, ext4, subscription):
    cli.ok(
        "disk",
        "upload",
        "-g",
        group,
        "-n",
        "os",
        "--file",
        str(ext4),
        "--os-type",
        "Linux",
        "--hyper-v-generation",
        "V2",
    )
    cli.ok("disk", "create", "-g", group, "-n", "data", "--size-gb", "1")
    cli.ok("snapshot", "create", "-g", group, "-n", "os-snap", "--source", "os")
    image = cli.json(
        "image",
        "create",
        "-g",
        group,
        "-n",
        "img",
        "--source",
        "os-snap",
        "--os-type",
        "linux",
        "--data-disk-sources",
        "data",
        "os",
        "--os-disk-caching",
        "ReadOnly",
    )
    os_disk = image["storageProfile"]["osDisk"]
    assert os_disk["snapshot"]["id"].lower().endswith("/snapshots/os-snap") and os_disk["osType"] == "Linux"
    assert os_disk["caching"] == "ReadOnly" and image["hyperVGeneration"] == "V2"
    assert [(d["lun"], d["managedDisk"]["id"].rsplit("/", 1)[1]) for d in image["storageProfile"]["dataDisks"]] == [
        (0, "data"),
        (1, "os"),
    ]
    disk_id = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/disks/os"
    from_disk = cli.json("image", "create", "-g", group, "-n", "img2", "--source", disk_id, "--os-type", "Linux")
    assert from_disk["storageProfile"]["osDisk"]["managedDisk"]["id"].lower() == disk_id.lower()
    assert sorted(i["name"] for i in cli.json("image", "list", "-g", group)) == ["img", "img2"]
    table = cli.ok("image", "list", "-g", group, "-o", "table").stdout.splitlines()
    assert table[0].split()[:5] == ["Name", "ResourceGroup", "Location", "OsType", "HyperVGeneration"]
    assert cli.json("image", "show", "-g", group, "-n", "img")["storageProfile"]["osDisk"]["osState"] == "Generalized"
    cli.ok("image", "delete", "-g", group, "-n", "img2")
    assert cli.fails("image", "show", "-g", group, "-n", "img2").stderr.startswith("(ResourceNotFound) ")
    no_os_type = cli.run("image", "create", "-g", group, "-n", "img3", "--source", "os")
    assert no_os_type.exit_code == 2 and "--os-type" in no_os_type.stderr
