"""Image Builder through azure-mgmt-imagebuilder (2.0, api-version 2025-10-01; 1.3's 2023-07-01 in a subprocess): the
template resource and its pre-flight, runs on a real ext4 disk image with the fake engine (tests/fake_engine.py),
distribution into a gallery, run outputs, the live log, failures, cancel and timeout.

The source is imported into the platform image catalog with `vmgallery platform-image import`, and the built bytes
are read back through a disk made from the distributed version (its signed URL) and checked with debugfs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient

from tests.azurite import Azurite, azurite  # noqa: F401  (the session fixture)
from tests.conftest import running_server
from tests.fake_engine import read_file

from .builder_support import definition, download_disk, import_platform_image, log_lines, template, wait_for
from .sdk import compute_client, imagebuilder_client, resource_client

ROOT = Path(__file__).resolve().parents[2]
SDK_13 = ROOT / ".venv" / "sdk-imagebuilder-1.3"
CONFIG = """
[builder]
engine = "tests.fake_engine:engine"
allowed_source_prefixes = ["https://scripts.example.test/"]
"""
ACCOUNT_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/storage/providers/Microsoft.Storage"
    "/storageAccounts/devstoreaccount1"
)


def make_ext4(path: Path) -> None:
    """A 16 MiB whole-disk ext4 holding what a deprovision must clear."""
    staged = path.parent / "root"
    for d in ("etc/ssh", "root", "var/log"):
        (staged / d).mkdir(parents=True, exist_ok=True)
    (staged / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (staged / "etc/ssh/ssh_host_ed25519_key").write_text("secret\n")
    (staged / "etc/os-release").write_text("ID=vmgtiny\n")
    (staged / "root/.ash_history").write_text("ls\n")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(staged), str(path), "16M"], check=True)


@pytest.fixture(scope="module")
def builder_server(backend, azurite: Azurite, tmp_path_factory):  # noqa: F811  (the session fixture)
    with serve_builder(backend, azurite, tmp_path_factory.mktemp(f"builder-{backend}")) as srv:
        yield srv


@contextlib.contextmanager
def serve_builder(backend, azurite: Azurite, data: Path, head: str = "", builder: str = ""):  # noqa: F811
    """A server with the fake engine, Azurite as a storage account, and the platform images imported; `head`: more
    top-level settings, `builder`: more [builder] settings."""
    account = (
        f'[storage_accounts."{ACCOUNT_ID}"]\nblob_endpoint = "{azurite.endpoint}"\n'
        f'account_key = "{azurite.account_key}"\n'
    )
    with running_server(backend, data, head + CONFIG + builder + account) as srv:
        disk = data / "tiny.raw"
        make_ext4(disk)
        for sku, version, os_type in (("1", "1.0.0", "Linux"), ("1", "1.0.1", "Linux"), ("win", "1.0.0", "Windows")):
            import_platform_image(srv, disk, sku, version, os_type)
        yield srv


@pytest.fixture
def sub() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def ib(builder_server, sub):
    with imagebuilder_client(builder_server, sub) as client:
        yield client


@pytest.fixture
def compute(builder_server, sub):
    with compute_client(builder_server, sub) as client:
        yield client


@pytest.fixture
def rg(builder_server, sub) -> str:
    name = f"rg-{uuid.uuid4().hex[:8]}"
    with resource_client(builder_server, sub) as client:
        client.resource_groups.create_or_update(name, {"location": "eastus"})
    return name


def download_version(compute, builder_server, rg, version_id, tmp_path) -> Path:
    disk = compute.disks.begin_create_or_update(
        rg,
        f"d{uuid.uuid4().hex[:6]}",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "FromImage", "galleryImageReference": {"id": version_id}}},
        },
    ).result()
    return download_disk(compute, builder_server, rg, disk.name, tmp_path / "built.vhd")


def test_build_distributes_to_the_gallery_with_a_live_log(ib, compute, builder_server, sub, rg, tmp_path):
    def_id = definition(compute, rg)
    body = template(
        sub,
        rg,
        def_id,
        [
            {"type": "Shell", "name": "hello", "inline": ["echo hello from the build"]},
            {"type": "Shell", "name": "mark", "inline": ["echo built by vmgallery > /etc/built-by"]},
        ],
        validate={"inVMValidations": [{"type": "Shell", "name": "check", "inline": ["cat /etc/built-by"]}]},
    )
    made = ib.virtual_machine_image_templates.begin_create_or_update(rg, "t1", body).result()
    assert made.provisioning_state == "Succeeded"
    assert made.exact_staging_resource_group.split("/")[-1].startswith(f"IT_{rg}_t1_")
    assert [t.name for t in ib.virtual_machine_image_templates.list_by_resource_group(rg)] == ["t1"]
    assert "t1" in [t.name for t in ib.virtual_machine_image_templates.list()]

    ib.virtual_machine_image_templates.begin_run(rg, "t1").result()

    status = ib.virtual_machine_image_templates.get(rg, "t1").last_run_status
    assert (status.run_state, status.message) == ("Succeeded", "")
    outputs = list(ib.virtual_machine_image_templates.list_run_outputs(rg, "t1"))
    assert [o.name for o in outputs] == ["gallery"]
    assert outputs[0].artifact_id.lower() == f"{def_id}/versions/1.0.0".lower()
    assert ib.virtual_machine_image_templates.get_run_output(rg, "t1", "gallery").artifact_id == outputs[0].artifact_id
    lines = log_lines(ib, sub, rg, "t1")
    assert "[1 hello] hello from the build" in lines
    assert "[1 hello] machine: 1 vCPUs, 3584 MiB, Linux V1" in lines  # Standard_D1_v2, the Gen1 default
    # Customizers, validation and the deprovision share one machine (the fake engine names its shape per machine).
    assert [line for line in lines if "machine: " in line] == ["[1 hello] machine: 1 vCPUs, 3584 MiB, Linux V1"]
    assert "[3 check] built by vmgallery" in lines
    assert any(line.startswith("[1 hello] exit code 0 after") for line in lines)
    assert any(line.startswith("[4 deprovision] exit code 0") for line in lines)

    built = download_version(compute, builder_server, rg, outputs[0].artifact_id, tmp_path)
    assert read_file(built, "/etc/built-by") == "built by vmgallery\n"
    assert read_file(built, "/etc/machine-id") == ""
    assert read_file(built, "/etc/ssh/ssh_host_ed25519_key") is None
    assert read_file(built, "/root/.ash_history") is None

    # A second run makes the next patch version (versioning Latest).
    ib.virtual_machine_image_templates.begin_run(rg, "t1").result()
    artifact = ib.virtual_machine_image_templates.get_run_output(rg, "t1", "gallery").artifact_id
    assert artifact.lower().endswith("/versions/1.0.1")

    staging = made.exact_staging_resource_group.split("/")[-1]
    with resource_client(builder_server, sub) as arm:
        assert arm.resource_groups.check_existence(staging)
        ib.virtual_machine_image_templates.begin_delete(rg, "t1").result()
        assert not arm.resource_groups.check_existence(staging)
    with pytest.raises(HttpResponseError) as err:
        ib.virtual_machine_image_templates.get(rg, "t1")
    assert err.value.status_code == 404


def test_tags_change_and_anything_else_is_immutable(ib, compute, sub, rg):
    def_id = definition(compute, rg)
    body = template(sub, rg, def_id, [{"type": "Shell", "name": "a", "inline": ["echo a"]}])
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "t2", body).result()
    updated = ib.virtual_machine_image_templates.begin_update(rg, "t2", {"tags": {"team": "img"}}).result()
    assert updated.tags == {"team": "img"}
    body["properties"]["customize"][0]["inline"] = ["echo b"]
    with pytest.raises(HttpResponseError) as err:
        ib.virtual_machine_image_templates.begin_create_or_update(rg, "t2", body).result()
    assert err.value.status_code == 409
    assert err.value.error.target == "properties.customize"


@pytest.mark.parametrize(
    ("definition_props", "customize", "code", "target"),
    [
        ({"hyperVGeneration": "V2"}, [], "BadSharedImageDistribute", "properties.distribute[0].galleryImageId"),
        ({"osType": "Windows"}, [], "BadSharedImageDistribute", "properties.distribute[0].galleryImageId"),
        (
            {},
            [{"type": "PowerShell", "name": "ps", "inline": ["Write-Host hi"]}],
            "UnsupportedCustomizerType",
            "properties.customize[0].type",
        ),
        (
            {},
            [{"type": "WindowsRestart", "name": "reboot"}],
            "UnsupportedCustomizerType",
            "properties.customize[0].type",
        ),
        (
            {},
            [{"type": "Shell", "name": "meta", "scriptUri": "http://169.254.169.254/metadata/x.sh"}],
            "InvalidParameter",
            "properties.customize[0].scriptUri",
        ),
        (
            {},
            [{"type": "File", "name": "f", "sourceUri": "https://evil.example.test/x", "destination": "/tmp/x"}],
            "InvalidParameter",
            "properties.customize[0].sourceUri",
        ),
    ],
)
def test_pre_flight_refuses_what_cannot_build(ib, compute, sub, rg, definition_props, customize, code, target):
    def_id = definition(compute, rg, **definition_props)
    body = template(sub, rg, def_id, customize)
    with pytest.raises(HttpResponseError) as err:
        ib.virtual_machine_image_templates.begin_create_or_update(rg, "bad", body).result()
    assert err.value.status_code == 400
    assert (err.value.error.code, err.value.error.target) == (code, target)
    assert list(ib.virtual_machine_image_templates.list_by_resource_group(rg)) == []


def test_a_failing_step_stops_the_build_with_its_name_exit_code_and_output(ib, compute, sub, rg):
    def_id = definition(compute, rg)
    customize = [
        {"type": "Shell", "name": "ok", "inline": ["echo fine"]},
        {"type": "Shell", "name": "install-agent", "inline": ["echo fetching agent", "exit 3", "echo never"]},
        {"type": "Shell", "name": "after", "inline": ["echo not reached"]},
    ]
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "t3", template(sub, rg, def_id, customize)).result()
    with pytest.raises(HttpResponseError):
        ib.virtual_machine_image_templates.begin_run(rg, "t3").result()
    status = ib.virtual_machine_image_templates.get(rg, "t3").last_run_status
    assert status.run_state == "Failed"
    assert "'install-agent'" in status.message and "exit code 3" in status.message
    assert "fetching agent" in status.message
    lines = log_lines(ib, sub, rg, "t3")
    assert "[2 install-agent] fetching agent" in lines
    assert not any("not reached" in line or "never" in line for line in lines)
    assert list(ib.virtual_machine_image_templates.list_run_outputs(rg, "t3")) == []
    assert list(compute.gallery_image_versions.list_by_gallery_image(rg, "gal1", "tiny")) == []


def test_a_failed_validation_distributes_nothing(ib, compute, sub, rg):
    def_id = definition(compute, rg)
    body = template(
        sub,
        rg,
        def_id,
        [{"type": "Shell", "name": "a", "inline": ["echo a"]}],
        validate={"inVMValidations": [{"type": "Shell", "name": "probe", "inline": ["test -f /etc/missing"]}]},
    )
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "t4", body).result()
    with pytest.raises(HttpResponseError):
        ib.virtual_machine_image_templates.begin_run(rg, "t4").result()
    status = ib.virtual_machine_image_templates.get(rg, "t4").last_run_status
    assert status.run_state == "Failed" and "'probe'" in status.message
    assert list(compute.gallery_image_versions.list_by_gallery_image(rg, "gal1", "tiny")) == []


def test_cancel_mid_build(ib, compute, sub, rg):
    def_id = definition(compute, rg)
    customize = [{"type": "Shell", "name": "long", "inline": ["echo going", "sleep 120"]}]
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "t5", template(sub, rg, def_id, customize)).result()
    poller = ib.virtual_machine_image_templates.begin_run(rg, "t5")
    wait_for(lambda: "[1 long] going" in log_lines(ib, sub, rg, "t5"))
    started = time.monotonic()
    ib.virtual_machine_image_templates.begin_cancel(rg, "t5").result()
    with pytest.raises(HttpResponseError):
        poller.result()
    assert time.monotonic() - started < 30
    assert ib.virtual_machine_image_templates.get(rg, "t5").last_run_status.run_state == "Canceled"
    # The template builds again after a cancel.
    with pytest.raises(HttpResponseError) as err:
        ib.virtual_machine_image_templates.begin_cancel(rg, "t5").result()
    assert err.value.status_code == 409


def test_the_1_3_sdk_drives_the_same_resource(builder_server, compute, sub, rg):
    """azure-mgmt-imagebuilder 1.3 (what az 2.91 pins; api-version 2023-07-01) cannot share a process with 2.0:
    it runs in a subprocess from its own target folder (scripts/venv installs it there)."""
    if not SDK_13.exists():
        pytest.fail(f"{SDK_13} is missing: run scripts/venv test")
    def_id = definition(compute, rg)
    body = template(sub, rg, def_id, [{"type": "Shell", "name": "a", "inline": ["echo one-three"]}])
    script = textwrap.dedent(
        f"""
        import json, sys, time
        from azure.core.credentials import AccessToken
        from azure.mgmt.imagebuilder import ImageBuilderClient
        import azure.mgmt.imagebuilder as m
        assert m.__file__.startswith({str(SDK_13)!r}), m.__file__

        class Token:
            def get_token(self, *a, **k):
                return AccessToken({builder_server.token!r}, int(time.time()) + 3600)

        c = ImageBuilderClient(Token(), {sub!r}, base_url={builder_server.url!r},
                               credential_scopes=["https://management.azure.com/.default"],
                               connection_verify={builder_server.ca!r}, polling_interval=0)
        t = c.virtual_machine_image_templates.begin_create_or_update({rg!r}, "old", json.loads(sys.argv[1])).result()
        assert t.provisioning_state == "Succeeded", t.provisioning_state
        c.virtual_machine_image_templates.begin_run({rg!r}, "old").result()
        out = c.virtual_machine_image_templates.get_run_output({rg!r}, "old", "gallery")
        print(out.artifact_id)
        print(c.virtual_machine_image_templates.get({rg!r}, "old").last_run_status.run_state)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SDK_13)}
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(body)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    artifact, state = done.stdout.split()
    assert artifact.lower().endswith("/versions/1.0.0") and state == "Succeeded"


def test_files_from_a_storage_account_and_a_checksum_mismatch(ib, compute, sub, rg, azurite, tmp_path):  # noqa: F811
    payload = tmp_path / "agent.conf"
    payload.write_bytes(b"agent=on\n")
    script = tmp_path / "setup.sh"
    script.write_bytes(b"echo from the script\n")
    payload_uri = azurite.upload(payload, page_blob=False)
    script_uri = azurite.upload(script, page_blob=False)
    good = hashlib.sha256(payload.read_bytes()).hexdigest()
    def_id = definition(compute, rg)
    customize = [
        {
            "type": "File",
            "name": "conf",
            "sourceUri": payload_uri,
            "sha256Checksum": good,
            "destination": "/etc/a.conf",
        },
        {"type": "Shell", "name": "script", "scriptUri": script_uri},
    ]
    body = template(
        sub,
        rg,
        def_id,
        customize,
        validate={"inVMValidations": [{"type": "Shell", "name": "show", "inline": ["cat /etc/a.conf"]}]},
    )
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "files", body).result()
    ib.virtual_machine_image_templates.begin_run(rg, "files").result()
    lines = log_lines(ib, sub, rg, "files")
    assert "[2 script] from the script" in lines and "[3 show] agent=on" in lines

    customize[1]["sha256Checksum"] = "0" * 64
    body["properties"]["customize"] = customize
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "mismatch", body).result()
    with pytest.raises(HttpResponseError):
        ib.virtual_machine_image_templates.begin_run(rg, "mismatch").result()
    status = ib.virtual_machine_image_templates.get(rg, "mismatch").last_run_status
    assert status.run_state == "Failed"
    assert "checksum" in status.message and script_uri in status.message and "nothing was run" in status.message
    assert log_lines(ib, sub, rg, "mismatch") == []  # no step started


def test_the_platform_image_catalog_at_compute_paths(compute):
    versions = compute.virtual_machine_images.list("eastus", "vmg", "tiny", "1")
    assert [v.name for v in versions] == ["1.0.0", "1.0.1"]
    image = compute.virtual_machine_images.get("eastus", "vmg", "tiny", "1", "1.0.1")
    assert image.os_disk_image.operating_system == "Linux"
    assert image.hyper_v_generation == "V1"


@pytest.mark.slow
def test_a_build_that_overruns_its_timeout_is_stopped(ib, compute, sub, rg):
    def_id = definition(compute, rg)
    customize = [{"type": "Shell", "name": "forever", "inline": ["echo start", "sleep 600"]}]
    body = template(sub, rg, def_id, customize, buildTimeoutInMinutes=1)
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "slow", body).result()
    started = time.monotonic()
    with pytest.raises(HttpResponseError):
        ib.virtual_machine_image_templates.begin_run(rg, "slow").result()
    assert 55 < time.monotonic() - started < 120
    status = ib.virtual_machine_image_templates.get(rg, "slow").last_run_status
    assert status.run_state == "Failed" and "timed out after 1 minutes" in status.message


def test_the_cli_creates_runs_and_follows_a_template(builder_server, compute, sub, rg, tmp_path):
    from tests.cli.conftest import Cli, env_for

    cli = Cli(env_for(builder_server, sub))
    def_id = definition(compute, rg)
    body = template(sub, rg, def_id, [{"type": "Shell", "name": "install-agent", "inline": ["echo agent installed"]}])
    arm_template = {"resources": [{"type": "Microsoft.VirtualMachineImages/imageTemplates", "name": "x", **body}]}
    path = tmp_path / "template.json"
    path.write_text(json.dumps(arm_template))
    made = cli.json("image", "builder", "create", "-g", rg, "-n", "cli1", "--image-template", str(path))
    assert made["provisioningState"] == "Succeeded" and made["resourceGroup"] == rg
    assert [t["name"] for t in cli.json("image", "builder", "list", "-g", rg)] == ["cli1"]
    cli.ok("image", "builder", "run", "-g", rg, "-n", "cli1")
    cli.ok("image", "builder", "wait", "-g", rg, "-n", "cli1")
    assert cli.json("image", "builder", "show", "-g", rg, "-n", "cli1")["lastRunStatus"]["runState"] == "Succeeded"
    runs = cli.json("image", "builder", "show-runs", "-g", rg, "-n", "cli1")
    assert [r["name"] for r in runs] == ["gallery"] and runs[0]["artifactId"].endswith("/versions/1.0.0")
    one = cli.json("image", "builder", "show-runs", "-g", rg, "-n", "cli1", "--output-name", "gallery")
    assert one["artifactId"] == runs[0]["artifactId"]
    assert cli.json("image", "builder", "output", "list", "-g", rg, "-n", "cli1") == runs
    followed = cli.ok("image", "builder", "logs", "-g", rg, "-n", "cli1", "--follow")
    assert "[1 install-agent] agent installed" in followed.stdout
    assert "[1 install-agent] exit code 0 after" in followed.stdout
    assert "run Succeeded" in followed.stderr
    cli.ok("image", "builder", "delete", "-g", rg, "-n", "cli1")
    assert cli.json("image", "builder", "list", "-g", rg) == []


def test_a_gallery_version_source_to_a_managed_image_and_a_grown_disk(ib, compute, builder_server, sub, rg, tmp_path):
    def_id = definition(compute, rg)
    first = template(sub, rg, def_id, [{"type": "Shell", "name": "one", "inline": ["echo first > /etc/layer1"]}])
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "base", first).result()
    ib.virtual_machine_image_templates.begin_run(rg, "base").result()
    image_id = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/images/layered"
    second = template(sub, rg, def_id, [{"type": "Shell", "name": "two", "inline": ["echo second > /etc/layer2"]}])
    second["properties"]["source"] = {"type": "SharedImageVersion", "imageVersionId": f"{def_id}/versions/latest"}
    second["properties"]["distribute"] = [
        {"type": "ManagedImage", "imageId": image_id, "location": "eastus", "runOutputName": "img"}
    ]
    second["properties"]["vmProfile"] = {"vmSize": "Standard_D2ds_v4", "osDiskSizeGB": 1}
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "layered", second).result()
    ib.virtual_machine_image_templates.begin_run(rg, "layered").result()
    assert ib.virtual_machine_image_templates.get_run_output(rg, "layered", "img").artifact_id == image_id
    assert "[1 two] machine: 2 vCPUs, 8192 MiB, Linux V1" in log_lines(ib, sub, rg, "layered")
    image = compute.images.get(rg, "layered")
    assert image.storage_profile.os_disk.disk_size_gb == 1
    # The image is read back through a gallery version made from it.
    version = compute.gallery_image_versions.begin_create_or_update(
        rg,
        "gal1",
        "tiny",
        "9.0.0",
        {"location": "eastus", "properties": {"storageProfile": {"source": {"id": image_id}}}},
    ).result()
    built = download_version(compute, builder_server, rg, version.id, tmp_path)
    assert built.stat().st_size == 1 << 30
    assert read_file(built, "/etc/layer1") == "first\n" and read_file(built, "/etc/layer2") == "second\n"


def test_abort_keeps_the_failed_build_disk_and_cleanup_does_not(ib, compute, builder_server, sub, rg):
    def_id = definition(compute, rg)
    customize = [{"type": "Shell", "name": "boom", "inline": ["echo half > /etc/half", "exit 1"]}]
    for name, handling in (("aborted", "abort"), ("cleaned", "cleanup")):
        body = template(sub, rg, def_id, customize, errorHandling={"onCustomizerError": handling})
        made = ib.virtual_machine_image_templates.begin_create_or_update(rg, name, body).result()
        with pytest.raises(HttpResponseError):
            ib.virtual_machine_image_templates.begin_run(rg, name).result()
        staging = made.exact_staging_resource_group.split("/")[-1]
        kept = [d.name for d in compute.disks.list_by_resource_group(staging)]
        assert kept == (["build-failed"] if handling == "abort" else [])
        message = ib.virtual_machine_image_templates.get(rg, name).last_run_status.message
        assert ("kept for inspection" in message) == (handling == "abort")


def test_continue_distribute_on_failure_distributes_and_reports_the_failure(ib, compute, sub, rg):
    def_id = definition(compute, rg)
    body = template(
        sub,
        rg,
        def_id,
        [],
        validate={
            "continueDistributeOnFailure": True,
            "inVMValidations": [{"type": "Shell", "name": "probe", "inline": ["exit 2"]}],
        },
    )
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "cont", body).result()
    with pytest.raises(HttpResponseError):
        ib.virtual_machine_image_templates.begin_run(rg, "cont").result()
    status = ib.virtual_machine_image_templates.get(rg, "cont").last_run_status
    assert status.run_state == "Failed" and "distributed anyway" in status.message
    # The machine stopped at the failed validation; the deprovision still ran, in a second one.
    lines = log_lines(ib, sub, rg, "cont")
    assert "[2 deprovision] deprovisioned" in lines and sum("machine: " in line for line in lines) == 2
    assert [v.name for v in compute.gallery_image_versions.list_by_gallery_image(rg, "gal1", "tiny")] == ["1.0.0"]


def test_deleting_a_template_mid_build_stops_the_build_and_removes_everything(ib, compute, builder_server, sub, rg):
    def_id = definition(compute, rg)
    customize = [{"type": "Shell", "name": "long", "inline": ["echo going", "sleep 120"]}]
    made = ib.virtual_machine_image_templates.begin_create_or_update(
        rg, "gone", template(sub, rg, def_id, customize)
    ).result()
    poller = ib.virtual_machine_image_templates.begin_run(rg, "gone")
    wait_for(lambda: "[1 long] going" in log_lines(ib, sub, rg, "gone"))
    started = time.monotonic()
    ib.virtual_machine_image_templates.begin_delete(rg, "gone").result()
    with pytest.raises(HttpResponseError):
        poller.result()
    assert time.monotonic() - started < 30
    with resource_client(builder_server, sub) as arm:
        assert not arm.resource_groups.check_existence(made.exact_staging_resource_group.split("/")[-1])
    assert list(compute.gallery_image_versions.list_by_gallery_image(rg, "gal1", "tiny")) == []


def test_a_killed_server_resumes_the_run_on_restart(backend, tmp_path_factory, sub):
    """The server (and its in-process worker) is killed mid-build; at restart the job is taken up again, starts over
    from the source, and the run ends Succeeded with its output."""
    data = tmp_path_factory.mktemp(f"builder-crash-{backend}")
    with running_server(backend, data, CONFIG) as srv:
        disk = data / "tiny.raw"
        make_ext4(disk)
        import_platform_image(srv, disk)
        rg = "crash"
        with resource_client(srv, sub) as arm:
            arm.resource_groups.create_or_update(rg, {"location": "eastus"})
        with compute_client(srv, sub) as compute:
            def_id = definition(compute, rg)
        customize = [{"type": "Shell", "name": "slow", "inline": ["echo going", "sleep 3", "echo done"]}]
        with imagebuilder_client(srv, sub) as ib:
            ib.virtual_machine_image_templates.begin_create_or_update(
                rg, "t", template(sub, rg, def_id, customize)
            ).result()
            ib.virtual_machine_image_templates.begin_run(rg, "t")
            wait_for(lambda: "[1 slow] going" in log_lines(ib, sub, rg, "t"))
        srv.kill()
        srv.start()
        with imagebuilder_client(srv, sub) as ib:
            status = wait_for(
                lambda: (
                    (s := ib.virtual_machine_image_templates.get(rg, "t").last_run_status).run_state
                    not in ("Running", "Canceling")
                    and s
                ),
                timeout=120,
            )
            assert status.run_state == "Succeeded", status.message
            lines = log_lines(ib, sub, rg, "t")
            assert any("attempt 2" in line for line in lines) and "[1 slow] done" in lines
            assert ib.virtual_machine_image_templates.get_run_output(rg, "t", "gallery").artifact_id.endswith("1.0.0")


def test_a_file_from_the_servers_own_signed_url(ib, compute, builder_server, sub, rg):
    """A signed URL of this server is recognised as its own (loopback or not) and read in-process."""
    payload = bytes(range(256)) * 4096  # 1 MiB
    compute.disks.begin_create_or_update(
        rg,
        "payload",
        {
            "location": "eastus",
            "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": len(payload) + 512}},
        },
    ).result()
    write = compute.disks.begin_grant_access(rg, "payload", {"access": "Write", "durationInSeconds": 600}).result()
    BlobClient.from_blob_url(write.access_sas, connection_verify=builder_server.ca).upload_page(
        payload, offset=0, length=len(payload)
    )
    compute.disks.begin_revoke_access(rg, "payload").result()
    read = compute.disks.begin_grant_access(rg, "payload", {"access": "Read", "durationInSeconds": 600}).result()
    vhd = BlobClient.from_blob_url(read.access_sas, connection_verify=builder_server.ca).download_blob().readall()
    def_id = definition(compute, rg)
    customize = [
        {
            "type": "File",
            "name": "disk",
            "sourceUri": read.access_sas,
            "sha256Checksum": hashlib.sha256(vhd).hexdigest(),
            "destination": "/payload.vhd",
        }
    ]
    body = template(
        sub,
        rg,
        def_id,
        customize,
        validate={"inVMValidations": [{"type": "Shell", "name": "there", "inline": ["test -f /payload.vhd"]}]},
    )
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "own", body).result()
    ib.virtual_machine_image_templates.begin_run(rg, "own").result()
    assert "[1 disk] uploaded /payload.vhd" in log_lines(ib, sub, rg, "own")


def test_patch_distribute_then_a_vhd_output_and_source_validation_only(ib, compute, sub, rg):
    def_id = definition(compute, rg)
    body = template(sub, rg, def_id, [{"type": "Shell", "name": "a", "inline": ["echo a"]}])
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "vhd", body).result()
    patched = ib.virtual_machine_image_templates.begin_update(
        rg, "vhd", {"properties": {"distribute": [{"type": "VHD", "runOutputName": "disk"}]}}
    ).result()
    assert [d.run_output_name for d in patched.distribute] == ["disk"]
    ib.virtual_machine_image_templates.begin_run(rg, "vhd").result()
    uri = ib.virtual_machine_image_templates.get_run_output(rg, "vhd", "disk").artifact_uri
    staging = patched.exact_staging_resource_group.split("/")[-1]
    assert uri.lower().endswith(f"/resourcegroups/{staging}/providers/microsoft.compute/disks/build".lower())
    assert compute.disks.get(staging, "build").disk_size_gb == 1

    checked = template(
        sub,
        rg,
        def_id,
        [],
        validate={
            "sourceValidationOnly": True,
            "inVMValidations": [{"type": "Shell", "name": "os", "inline": ["cat /etc/os-release"]}],
        },
    )
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "srcval", checked).result()
    ib.virtual_machine_image_templates.begin_run(rg, "srcval").result()
    assert "[1 os] ID=vmgtiny" in log_lines(ib, sub, rg, "srcval")
    assert list(ib.virtual_machine_image_templates.list_run_outputs(rg, "srcval")) == []
    assert list(compute.gallery_image_versions.list_by_gallery_image(rg, "gal1", "tiny")) == []


def test_deleting_the_resource_group_removes_its_templates_staging_groups(ib, compute, builder_server, sub):
    with resource_client(builder_server, sub) as arm:
        arm.resource_groups.create_or_update("doomed", {"location": "eastus"})
        def_id = definition(compute, "doomed")
        body = template(sub, "doomed", def_id, [{"type": "Shell", "name": "a", "inline": ["echo a"]}])
        made = ib.virtual_machine_image_templates.begin_create_or_update("doomed", "t", body).result()
        staging = made.exact_staging_resource_group.split("/")[-1]
        assert arm.resource_groups.check_existence(staging)
        arm.resource_groups.begin_delete("doomed").result()
        assert not arm.resource_groups.check_existence(staging)


def test_windows_sources_take_windows_customizers_only(ib, compute, sub, rg):
    def_id = definition(compute, rg, osType="Windows")
    windows = [
        {"type": "PowerShell", "name": "ps", "inline": ["Write-Host hi"], "runElevated": True},
        {"type": "WindowsRestart", "name": "reboot", "restartTimeout": "10m"},
        {"type": "WindowsUpdate", "name": "updates", "updateLimit": 20},
    ]
    body = template(sub, rg, def_id, windows)
    body["properties"]["source"]["sku"] = "win"
    made = ib.virtual_machine_image_templates.begin_create_or_update(rg, "win", body).result()
    assert [c.type for c in made.customize] == ["PowerShell", "WindowsRestart", "WindowsUpdate"]
    body["properties"]["customize"] = [{"type": "Shell", "name": "sh", "inline": ["echo"]}]
    with pytest.raises(HttpResponseError) as err:
        ib.virtual_machine_image_templates.begin_create_or_update(rg, "win2", body).result()
    assert (err.value.error.code, err.value.error.target) == (
        "UnsupportedCustomizerType",
        "properties.customize[0].type",
    )


def test_a_version_in_two_regions_with_major_pinning(ib, compute, sub, rg):
    def_id = definition(compute, rg)
    body = template(sub, rg, def_id, [{"type": "Shell", "name": "a", "inline": ["echo a"]}])
    body["properties"]["distribute"][0].update(
        targetRegions=[{"name": "westus", "replicaCount": 1, "storageAccountType": "Standard_LRS"}],
        versioning={"scheme": "Latest", "major": 3},
        artifactTags={"built-by": "vmgallery"},
    )
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "two", body).result()
    ib.virtual_machine_image_templates.begin_run(rg, "two").result()
    version = compute.gallery_image_versions.get(rg, "gal1", "tiny", "3.0.0")
    assert sorted(r.name.replace(" ", "").lower() for r in version.publishing_profile.target_regions) == [
        "eastus",
        "westus",
    ]
    assert version.tags == {"built-by": "vmgallery"}


@pytest.mark.parametrize(
    ("source", "code"),
    [
        (
            {"type": "PlatformImage", "publisher": "vmg", "offer": "tiny", "sku": "1", "version": "9.9.9"},
            "BadPIRSource",
        ),
        (
            {"type": "PlatformImage", "publisher": "nobody", "offer": "x", "sku": "y", "version": "latest"},
            "BadPIRSource",
        ),
        ({"type": "ManagedImage", "imageId": "{gallery}"}, "BadManagedImageSource"),
        ({"type": "ManagedImage", "imageId": "/subscriptions/x"}, "BadManagedImageSource"),
        (
            {"type": "SharedImageVersion", "imageVersionId": "{definition}/versions/latest"},
            "BadSharedImageVersionSource",
        ),
        ({"type": "SharedImageVersion", "imageVersionId": "{definition}"}, "BadSharedImageVersionSource"),
    ],
)
def test_sources_that_do_not_resolve_are_refused(ib, compute, sub, rg, source, code):
    def_id = definition(compute, rg)
    gallery_id = def_id.rsplit("/images/", 1)[0]
    body = template(sub, rg, def_id, [])
    body["properties"]["source"] = {
        k: v.replace("{gallery}", gallery_id).replace("{definition}", def_id) for k, v in source.items()
    }
    with pytest.raises(HttpResponseError) as err:
        ib.virtual_machine_image_templates.begin_create_or_update(rg, "nosource", body).result()
    assert err.value.status_code == 400 and err.value.error.code == code
    assert err.value.error.target.startswith("properties.source")
