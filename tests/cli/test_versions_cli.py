"""`vmgallery sig image-version`: a real ext4 image through upload, snapshot, version and download, byte for byte;
every source option; update keeping the sources; show --expand, list, delete, wait; errors as az prints them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest

from vmgallery.adapters.builders import processes
from vmgallery.domain.vhd import FOOTER_SIZE
from vmgallery.entrypoints.cli import transfer

from .test_disks_cli import KNOWN, assert_same_disk, convert, ext4_image, known_file


@pytest.fixture(scope="module")
def ext4(tmp_path_factory):
    return ext4_image(tmp_path_factory.mktemp("ext4"))


@pytest.fixture
def definition(cli, group, gallery) -> str:
    cli.ok(
        "sig",
        "image-definition",
        "create",
        "-g",
        group,
        "-r",
        gallery,
        "-i",
        "linux",
        "-p",
        "pub",
        "-f",
        "offer",
        "-s",
        "sku",
        "--os-type",
        "Linux",
    )
    return "linux"


@pytest.fixture
def os_disk(cli, group, ext4) -> str:
    cli.ok(
        "disk",
        "upload",
        "-g",
        group,
        "-n",
        "os",
        "--file",
        str(convert(ext4, "qcow2")),
        "--os-type",
        "Linux",
        "--hyper-v-generation",
        "V2",
    )
    return "os"


def version_args(group: str, gallery: str, definition: str, name: str, *extra: str) -> list[str]:
    return ["sig", "image-version", "create", "-g", group, "-r", gallery, "-i", definition, "-e", name, *extra]


def where(group: str, gallery: str, definition: str, name: str) -> list[str]:
    return ["-g", group, "-r", gallery, "-i", definition, "-e", name]


def test_round_trip_upload_snapshot_version_download(cli, group, gallery, definition, os_disk, ext4, tmp_path):
    cli.ok("snapshot", "create", "-g", group, "-n", "os-snap", "--source", os_disk)
    version = cli.json(*version_args(group, gallery, definition, "1.0.0", "--os-snapshot", "os-snap"))
    assert version["provisioningState"] == "Succeeded" and version["resourceGroup"] == group
    assert version["storageProfile"]["osDiskImage"]["source"]["id"].lower().endswith("/snapshots/os-snap")
    assert version["publishingProfile"]["targetRegions"][0]["name"].replace(" ", "").lower() == "eastus"
    for fmt in ("raw", "vhd", "qcow2"):
        target = tmp_path / f"v.{fmt}"
        cli.ok(
            "sig",
            "image-version",
            "download",
            *where(group, gallery, definition, "1.0.0"),
            "--file",
            str(target),
            "--format",
            fmt,
        )
        assert_same_disk(ext4, target, fmt)
    assert known_file(tmp_path / "v.raw") == KNOWN
    # The temporary disks are gone; only the uploaded one is left.
    assert [d["name"] for d in cli.json("disk", "list", "-g", group)] == [os_disk]


def test_version_straight_from_a_disk(cli, group, gallery, definition, os_disk, ext4, tmp_path, subscription):
    disk_id = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/disks/{os_disk}"
    cli.ok(*version_args(group, gallery, definition, "1.0.0", "--os-snapshot", disk_id))
    cli.ok(
        "sig",
        "image-version",
        "download",
        *where(group, gallery, definition, "1.0.0"),
        "--file",
        str(tmp_path / "v.raw"),
    )
    assert_same_disk(ext4, tmp_path / "v.raw", "raw")


def test_every_source_option(cli, group, gallery, definition, os_disk, ext4, tmp_path):
    data_raw = ext4_image(tmp_path / "data", mib=4, random_mib=1)
    cli.ok("disk", "upload", "-g", group, "-n", "data", "--file", str(data_raw))
    cli.ok("snapshot", "create", "-g", group, "-n", "os-snap", "--source", os_disk)
    cli.ok("snapshot", "create", "-g", group, "-n", "data-snap", "--source", "data")
    cli.ok(
        "image",
        "create",
        "-g",
        group,
        "-n",
        "img",
        "--source",
        os_disk,
        "--os-type",
        "Linux",
        "--hyper-v-generation",
        "V2",
    )

    from_image = cli.json(*version_args(group, gallery, definition, "1.0.0", "--managed-image", "img"))
    assert from_image["storageProfile"]["source"]["id"].lower().endswith("/images/img")

    with_data = cli.json(
        *version_args(
            group,
            gallery,
            definition,
            "1.1.0",
            "--os-snapshot",
            "os-snap",
            "--data-snapshots",
            "data-snap",
            "data-snap",
            "--data-snapshot-luns",
            "3",
            "7",
        )
    )
    assert [d["lun"] for d in with_data["storageProfile"]["dataDiskImages"]] == [3, 7]
    default_luns = cli.json(
        *version_args(
            group,
            gallery,
            definition,
            "1.2.0",
            "--os-snapshot",
            "os-snap",
            "--data-snapshots",
            "data-snap",
            "--exclude-from-latest",
            "true",
        )
    )
    assert [d["lun"] for d in default_luns["storageProfile"]["dataDiskImages"]] == [0]
    cli.ok(
        "sig",
        "image-version",
        "download",
        *where(group, gallery, definition, "1.1.0"),
        "--lun",
        "7",
        "--file",
        str(tmp_path / "data.raw"),
    )
    assert_same_disk(data_raw, tmp_path / "data.raw", "raw")

    latest = (
        cli.json("sig", "image-definition", "show", "-g", group, "-r", gallery, "-i", definition)["id"]
        + "/versions/latest"
    )
    copy = cli.json(*version_args(group, gallery, definition, "2.0.0", "--image-version", latest))
    assert copy["storageProfile"]["source"]["id"].lower() == latest.lower()
    assert [d["lun"] for d in copy["storageProfile"]["dataDiskImages"]] == [3, 7]  # latest was 1.1.0
    cli.ok(
        "sig",
        "image-version",
        "download",
        *where(group, gallery, definition, "2.0.0"),
        "--file",
        str(tmp_path / "copy.raw"),
    )
    assert_same_disk(ext4, tmp_path / "copy.raw", "raw")


def test_update_keeps_the_sources_show_expand_list_delete_wait(cli, group, gallery, definition, os_disk):
    cli.ok("snapshot", "create", "-g", group, "-n", "os-snap", "--source", os_disk)
    created = cli.json(
        *version_args(
            group,
            gallery,
            definition,
            "1.0.0",
            "--os-snapshot",
            "os-snap",
            "--target-regions",
            "eastus=2",
            "--replica-count",
            "1",
            "--end-of-life-date",
            "2030-01-01",
            "--storage-account-type",
            "Standard_LRS",
            "--tags",
            "k=v",
        )
    )
    profile = created["publishingProfile"]
    assert profile["endOfLifeDate"].startswith("2030-01-01T12:59:59")
    assert profile["replicaCount"] == 1 and profile["targetRegions"][0]["regionalReplicaCount"] == 2
    source = created["storageProfile"]["osDiskImage"]["source"]["id"]

    at = where(group, gallery, definition, "1.0.0")
    updated = cli.json(
        "sig",
        "image-version",
        "update",
        *at,
        "--target-regions",
        "eastus",
        "westus=1=standard_zrs",
        "--exclude-from-latest",
        "true",
        "--set",
        "tags.team=images",
    )
    regions = {r["name"].replace(" ", "").lower(): r for r in updated["publishingProfile"]["targetRegions"]}
    assert set(regions) == {"eastus", "westus"}
    assert regions["westus"]["storageAccountType"].lower() == "standard_zrs"
    assert updated["publishingProfile"]["excludeFromLatest"] is True
    assert updated["tags"] == {"k": "v", "team": "images"}
    assert updated["storageProfile"]["osDiskImage"]["source"]["id"] == source

    expanded = cli.json("sig", "image-version", "show", *at, "--expand", "ReplicationStatus")
    assert expanded["replicationStatus"]["aggregatedState"] in ("Completed", "InProgress")
    assert "replicationStatus" not in cli.json("sig", "image-version", "show", *at)
    cli.ok("sig", "image-version", "wait", *at, "--created")
    cli.ok("sig", "image-version", "wait", *at, "--exists", "--timeout", "5")

    cli.ok(*version_args(group, gallery, definition, "1.0.1", "--os-snapshot", "os-snap"))
    assert [
        v["name"] for v in cli.json("sig", "image-version", "list", "-g", group, "-r", gallery, "-i", definition)
    ] == ["1.0.0", "1.0.1"]
    table = cli.ok(
        "sig", "image-version", "list", "-g", group, "-r", gallery, "-i", definition, "-o", "table"
    ).stdout.splitlines()
    assert table[0].split()[:4] == ["Name", "ResourceGroup", "Location", "ProvisioningState"]
    cli.ok("sig", "image-version", "delete", *at)
    cli.ok("sig", "image-version", "wait", *at, "--deleted")
    assert cli.fails("sig", "image-version", "show", *at).stderr.startswith("(ResourceNotFound) ")
    timed_out = cli.fails("sig", "image-version", "wait", *at, "--exists", "--timeout", "0")
    assert timed_out.stderr.startswith("(WaitTimeout) ")


def test_errors(cli, group, gallery, definition, os_disk):
    none = cli.fails(*version_args(group, gallery, definition, "1.0.0"))
    assert none.stderr.startswith("(RequiredArgumentMissing) ")
    both = cli.fails(
        *version_args(
            group, gallery, definition, "1.0.0", "--managed-image", "a", "--image-version", "/subscriptions/x"
        )
    )
    assert both.stderr.startswith("(MutuallyExclusiveArgument) ")
    region = cli.fails(
        *version_args(group, gallery, definition, "1.0.0", "--os-snapshot", "s", "--target-regions", "eastus=lots")
    )
    assert region.stderr.startswith("(InvalidArgumentValue) ") and "eastus=lots" in region.stderr
    luns = cli.fails(
        *version_args(
            group,
            gallery,
            definition,
            "1.0.0",
            "--os-snapshot",
            "s",
            "--data-snapshots",
            "a",
            "b",
            "--data-snapshot-luns",
            "1",
        )
    )
    assert luns.stderr.startswith("(InvalidArgumentValue) ")
    missing = cli.fails(*version_args(group, gallery, definition, "1.0.0", "--os-snapshot", "nothing"))
    assert missing.stderr.startswith("(") and "nothing" in missing.stderr
    bad_name = cli.fails(*version_args(group, gallery, definition, "one", "--os-snapshot", os_disk))
    assert bad_name.stderr.startswith("(InvalidParameter) ")
    assert cli.json("sig", "image-version", "list", "-g", group, "-r", gallery, "-i", definition) == []


def test_a_stopped_version_download_resumes(cli, group, gallery, definition, os_disk, ext4, tmp_path, monkeypatch):
    """Each run reads its own temporary disk, but they have the version's bytes and so its ETag: --resume fetches
    only what the first run lacked, and both temporary disks are deleted."""
    cli.ok(*version_args(group, gallery, definition, "1.0.0", "--os-snapshot", os_disk))
    read, fetched = transfer.PageBlob.read, []

    def stopped_at_the_second(self, start, end, etag=None):
        if len(fetched) == 1:
            raise KeyboardInterrupt
        fetched.append((start, end))
        return read(self, start, end, etag)

    target = tmp_path / "v.raw"
    args = ["sig", "image-version", "download", *where(group, gallery, definition, "1.0.0"), "--file", str(target)]
    with monkeypatch.context() as patch:
        patch.setattr(transfer.PageBlob, "read", stopped_at_the_second)
        patch.setenv("VMGALLERY_TRANSFER_PARALLEL", "1")  # one read after the other: the second is the one stopped
        stopped = cli.fails(*args)
    assert "(DownloadInterrupted) Interrupted." in stopped.stderr and "--resume" in stopped.stderr
    assert not target.exists() and fetched
    resumed = cli.ok(*args, "--resume")
    (start, end), size = fetched[0], ext4.stat().st_size + FOOTER_SIZE
    assert f"Resuming: {end - start} of {size} bytes are already in" in resumed.stderr
    assert_same_disk(ext4, target, "raw")
    assert not (tmp_path / "v.raw.partial").exists() and not (tmp_path / "v.raw.partial.json").exists()
    assert [d["name"] for d in cli.json("disk", "list", "-g", group)] == [os_disk]


def test_a_terminated_version_download_deletes_its_disk_and_keeps_the_partial(
    cli, group, gallery, definition, os_disk, tmp_path, monkeypatch
):
    """SIGTERM (a `kill`, a closed terminal) ends the download as Ctrl-C does, not on the spot."""
    cli.ok(*version_args(group, gallery, definition, "1.0.0", "--os-snapshot", os_disk))
    read, reads = transfer.PageBlob.read, []

    def terminated_at_the_second(self, start, end, etag=None):
        reads.append(start)
        if len(reads) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return read(self, start, end, etag)

    unhandled = []
    target = tmp_path / "v.raw"
    args = ["sig", "image-version", "download", *where(group, gallery, definition, "1.0.0"), "--file", str(target)]
    with monkeypatch.context() as patch:
        # Were the CLI to leave SIGTERM alone, this would take it, not the test run.
        previous = signal.signal(signal.SIGTERM, lambda *_: unhandled.append(True))
        try:
            patch.setattr(transfer.PageBlob, "read", terminated_at_the_second)
            patch.setenv("VMGALLERY_TRANSFER_PARALLEL", "1")
            stopped = cli.fails(*args)
        finally:
            signal.signal(signal.SIGTERM, previous)
    assert not unhandled
    assert "(DownloadInterrupted) Interrupted." in stopped.stderr and "--resume" in stopped.stderr
    assert (tmp_path / "v.raw.partial.json").exists() and not target.exists()
    assert [d["name"] for d in cli.json("disk", "list", "-g", group)] == [os_disk]


def test_a_download_deletes_the_disks_of_downloads_killed_on_this_machine(
    cli, group, gallery, definition, os_disk, ext4, tmp_path
):
    """A download killed outright leaves its temporary disk; the next one into the group deletes it, but not the
    disk of a download still running, nor one made on another machine."""
    cli.ok(*version_args(group, gallery, definition, "1.0.0", "--os-snapshot", os_disk))
    gone = subprocess.Popen(["sleep", "60"])
    dead = processes.identity(gone.pid)
    gone.kill()
    gone.wait()
    assert dead is not None and not processes.alive(dead)
    living = processes.identity(os.getpid())
    host = socket.gethostname()
    owners = {
        "vmgallery-download-killed": f"{host} {dead[0]} {dead[1]}",
        "vmgallery-download-running": f"{host} {living[0]} {living[1]}",
        "vmgallery-download-elsewhere": f"another-{host} {dead[0]} {dead[1]}",
    }
    for name, owner in owners.items():
        cli.ok("disk", "create", "-g", group, "-n", name, "--size-gb", "1", "--tags", f"vmgallery-download={owner}")
    target = tmp_path / "v.raw"
    done = cli.ok(
        "sig", "image-version", "download", *where(group, gallery, definition, "1.0.0"), "--file", str(target)
    )
    assert (
        f"Deleted the temporary disk 'vmgallery-download-killed' of a download that was stopped (process {dead[0]}"
        in (done.stderr)
    )
    assert_same_disk(ext4, target, "raw")
    left = sorted(d["name"] for d in cli.json("disk", "list", "-g", group))
    assert left == sorted([os_disk, "vmgallery-download-running", "vmgallery-download-elsewhere"])
