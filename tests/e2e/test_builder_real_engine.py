"""The image builder end to end with the real guestfs engine: a `vmgallery serve` process configured for it, the
azure-mgmt-imagebuilder 2.0 SDK as the client, a platform image imported from the tiny image (tests/tinyimage.py,
made in about a second), a Shell step that writes a file and installs an init script, a File step whose source is the
server's own signed blob URL, and one template distributing to a gallery version, a managed image and a VHD blob.

Each output's bytes are read back (a disk made from the version, one from a version made from the managed image, the
VHD blob from the storage account) and checked with debugfs; one of them is booted under QEMU with the kernel and
initrd it holds, and its serial log shows the installed init script running. One build (one appliance launch under
TCG), one boot: about 25 s a backend on a busy 2-core machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobClient

from tests.adapters.builders.common import processes_naming
from tests.api.builder_support import definition, download_disk, import_platform_image, log_lines, template, wait_for
from tests.api.sdk import compute_client, imagebuilder_client, resource_client
from tests.azurite import Azurite, azurite  # noqa: F401  (the session fixture)
from tests.conftest import PgDatabase, Server
from tests.tinyimage import boot, extract_vmlinux, read_file, stat_file, tiny_image  # noqa: F401  (the fixture)
from vmgallery.domain.vhd import parse_vhd_footer

ACCOUNT_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/storage/providers/Microsoft.Storage"
    "/storageAccounts/devstoreaccount1"
)
# Written by the Shell step; the init script prints both files at boot.
SHELL_STEP = [
    'echo "building on $(grep ^ID= /etc/os-release)"',
    "echo built by vmgallery > /etc/built-by-vmgallery",
    "cat > /etc/init.d/S50vmgallery <<'EOF'",
    "#!/bin/sh",
    'echo "vmgallery-init: $(cat /etc/built-by-vmgallery) / $(head -n 1 /usr/share/vmg/payload.vhd)"',
    "EOF",
    "chmod 755 /etc/init.d/S50vmgallery",
]
MIB = 1 << 20
PAYLOAD = b"payload from the server's own signed URL\n".ljust(512, b"\n")  # a page blob holds whole 512-byte pages


def config(azurite: Azurite) -> str:  # noqa: F811
    return (
        '[builder]\nengine = "guestfs"\naccel = "tcg"\n'  # /dev/kvm here hangs guests: no probe (BUILDER_NOTES.md)
        f'[storage_accounts."{ACCOUNT_ID}"]\nblob_endpoint = "{azurite.endpoint}"\n'
        f'account_key = "{azurite.account_key}"\n'
    )


@contextlib.contextmanager
def real_engine_server(backend: str, data: Path, azurite: Azurite, tiny: Path):  # noqa: F811
    """A server building with guestfs, the tiny image imported as the platform image vmg:tiny:1:1.0.0."""
    (data / "config.toml").write_text(config(azurite))
    pg = PgDatabase() if backend == "postgresql" else None
    srv = Server(data, pg.url if pg else None)
    try:
        srv.start()
        import_platform_image(srv, tiny)
        yield srv
    finally:
        try:
            srv.stop()  # SIGTERM: the server writes its coverage data
        finally:
            srv.kill()
            if pg:
                pg.drop()
        no_build_processes(data)


def no_build_processes(data: Path) -> None:
    """No process names the builds' folder (a build's QEMU names its disk there) within a second: the kernel ends
    them with their parents (PDEATHSIG), where libguestfs's own guard would take up to 2 s."""
    wait_for(lambda: processes_naming(str(data / "builds")) == [], timeout=1.0)


def signed_payload(compute, srv, rg) -> tuple[str, bytes]:
    """A read SAS of a (smallest) disk holding PAYLOAD, from this server, and the bytes it serves (its VHD)."""
    create = {
        "location": "eastus",
        "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": MIB + 512}},
    }
    compute.disks.begin_create_or_update(rg, "payload", create).result()
    write = compute.disks.begin_grant_access(rg, "payload", {"access": "Write", "durationInSeconds": 600}).result()
    BlobClient.from_blob_url(write.access_sas, connection_verify=srv.ca).upload_page(PAYLOAD, offset=0, length=512)
    compute.disks.begin_revoke_access(rg, "payload").result()
    read = compute.disks.begin_grant_access(rg, "payload", {"access": "Read", "durationInSeconds": 600}).result()
    served = BlobClient.from_blob_url(read.access_sas, connection_verify=srv.ca).download_blob().readall()
    return read.access_sas, served


def disk_from_version(compute, srv, rg, version_id: str, dest: Path) -> Path:
    name = f"d{uuid.uuid4().hex[:6]}"
    reference = {"createOption": "FromImage", "galleryImageReference": {"id": version_id}}
    compute.disks.begin_create_or_update(rg, name, {"location": "eastus", "properties": {"creationData": reference}})
    return download_disk(compute, srv, rg, name, dest)


def test_a_real_build_to_a_version_a_managed_image_and_a_vhd_that_boots(backend, azurite, tiny_image, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    sub, rg = str(uuid.uuid4()), "real"
    vhd_blob = azurite.service().get_blob_client(f"vhds{uuid.uuid4().hex[:8]}", "built.vhd")
    image_id = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/images/built"
    with (
        real_engine_server(backend, data, azurite, tiny_image.raw) as srv,
        compute_client(srv, sub) as compute,
        imagebuilder_client(srv, sub) as ib,
    ):
        with resource_client(srv, sub) as arm:
            arm.resource_groups.create_or_update(rg, {"location": "eastus"})
        def_id = definition(compute, rg)
        payload_uri, served = signed_payload(compute, srv, rg)
        customize = [
            {"type": "Shell", "name": "write-files", "inline": SHELL_STEP},
            {
                "type": "File",
                "name": "payload",
                "sourceUri": payload_uri,
                "sha256Checksum": hashlib.sha256(served).hexdigest(),
                "destination": "/usr/share/vmg/payload.vhd",
            },
        ]
        body = template(sub, rg, def_id, customize)
        body["properties"]["distribute"] = [
            {"type": "SharedImage", "galleryImageId": def_id, "runOutputName": "gallery"},
            {"type": "ManagedImage", "imageId": image_id, "location": "eastus", "runOutputName": "image"},
            {"type": "VHD", "uri": vhd_blob.url, "runOutputName": "vhd"},
        ]
        ib.virtual_machine_image_templates.begin_create_or_update(rg, "real", body).result()
        ib.virtual_machine_image_templates.begin_run(rg, "real").result()

        status = ib.virtual_machine_image_templates.get(rg, "real").last_run_status
        assert (status.run_state, status.message) == ("Succeeded", "")
        outputs = {o.name: o for o in ib.virtual_machine_image_templates.list_run_outputs(rg, "real")}
        assert outputs["gallery"].artifact_id.lower() == f"{def_id}/versions/1.0.0".lower()
        assert outputs["image"].artifact_id == image_id
        assert outputs["vhd"].artifact_uri == vhd_blob.url

        lines = log_lines(ib, sub, rg, "real")
        assert "[1 write-files] building on ID=vmgtiny" in lines
        assert f"[2 payload] copied {MIB + 512} bytes to /usr/share/vmg/payload.vhd" in lines
        assert "[3 deprovision] deprovisioned" in lines
        for tag in ("[1 write-files]", "[2 payload]", "[3 deprovision]"):
            assert any(line.startswith(f"{tag} exit code 0 after ") and line.endswith(" s") for line in lines), tag
        # One appliance for the three steps and the three outputs.
        assert sum("guestfs: starting the libguestfs appliance" in line for line in lines) == 1

        built = {
            "gallery": disk_from_version(compute, srv, rg, outputs["gallery"].artifact_id, tmp_path / "gallery.raw"),
            "image": disk_from_version(
                compute,
                srv,
                rg,
                compute.gallery_image_versions.begin_create_or_update(
                    rg,
                    "gal1",
                    "tiny",
                    "9.0.0",
                    {"location": "eastus", "properties": {"storageProfile": {"source": {"id": image_id}}}},
                )
                .result()
                .id,
                tmp_path / "image.raw",
            ),
        }
    vhd = vhd_blob.download_blob().readall()
    footer = parse_vhd_footer(vhd[-512:])
    assert footer.disk_type == 2 and footer.current_size == len(vhd) - 512  # a fixed VHD
    built["vhd"] = tmp_path / "built.vhd"
    built["vhd"].write_bytes(vhd)

    for name, disk in built.items():
        assert read_file(disk, "/etc/built-by-vmgallery") == b"built by vmgallery\n", name
        assert read_file(disk, "/usr/share/vmg/payload.vhd") == served, name
        assert "Mode:  0755" in stat_file(disk, "/etc/init.d/S50vmgallery"), name
        assert read_file(disk, "/etc/machine-id") == b"", name  # deprovisioned
        assert read_file(disk, "/etc/ssh/ssh_host_ed25519_key") is None, name

    disk = built["image"]
    version = tiny_image.kernel_version
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(read_file(disk, f"/boot/vmlinuz-{version}"))
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(read_file(disk, f"/boot/initrd.img-{version}"))
    log = boot(disk, kernel=extract_vmlinux(kernel, tmp_path / "vmlinux"), initrd=initrd)
    assert f"vmgallery-init: built by vmgallery / {PAYLOAD.splitlines()[0].decode()}" in log
    assert "vmgtiny: init done" in log


@pytest.mark.parametrize("backend", ["sqlite"])  # the takeover itself is tested on both with the fake engine
def test_a_server_killed_mid_build_leaves_no_qemu_and_its_restart_resumes_the_run(
    backend, azurite, tiny_image, tmp_path
):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    sub, rg = str(uuid.uuid4()), "killed"
    customize = [{"type": "Shell", "name": "slow", "inline": ["echo going", "sleep 600"]}]
    with real_engine_server(backend, data, azurite, tiny_image.raw) as srv:
        with resource_client(srv, sub) as arm:
            arm.resource_groups.create_or_update(rg, {"location": "eastus"})
        with compute_client(srv, sub) as compute, imagebuilder_client(srv, sub) as ib:
            body = template(sub, rg, definition(compute, rg), customize)
            ib.virtual_machine_image_templates.begin_create_or_update(rg, "t", body).result()
            ib.virtual_machine_image_templates.begin_run(rg, "t")
            wait_for(lambda: "[1 slow] going" in log_lines(ib, sub, rg, "t"), timeout=300)
        assert processes_naming(str(data / "builds")), "no appliance to outlive the server"
        srv.kill()
        no_build_processes(data)

        srv.start()
        with imagebuilder_client(srv, sub) as ib:
            # The restarted server takes the run over and starts it again from the source, in a new appliance.
            wait_for(lambda: log_lines(ib, sub, rg, "t").count("[1 slow] going") == 2, timeout=300)
            assert any("attempt 2" in line for line in log_lines(ib, sub, rg, "t"))
            assert ib.virtual_machine_image_templates.get(rg, "t").last_run_status.run_state == "Running"
            ib.virtual_machine_image_templates.begin_cancel(rg, "t").result()
            status = wait_for(
                lambda: (
                    (s := ib.virtual_machine_image_templates.get(rg, "t").last_run_status).run_state == "Canceled" and s
                ),
                timeout=60,
            )
            assert status.message == "The build was canceled."
            no_build_processes(data)
