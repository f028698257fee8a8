"""Where a build's outputs can be read besides the ARM API, with azure-storage-blob from a storage account (Azurite):
a VHD output written where its `uri` names, checked as a fixed VHD holding the built file system, and each run's
customization.log in the `packerlogs` container, one folder per run, as Azure keeps it."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError

from tests.azurite import azurite  # noqa: F401  (the session fixture)
from tests.fake_engine import read_file
from vmgallery.domain.vhd import parse_vhd_footer

from .builder_support import definition, log_lines, template
from .test_image_builder import (  # noqa: F401  (fixtures)
    compute,
    ib,
    rg,
    serve_builder,
    sub,
)

LOGS = "packerlogs"


@pytest.fixture(scope="module")
def builder_server(backend, azurite, tmp_path_factory):  # noqa: F811  (the session fixture)
    with serve_builder(
        backend,
        azurite,
        tmp_path_factory.mktemp(f"outputs-{backend}"),
        builder=f'customization_log_container = "{azurite.endpoint}/{LOGS}"\n',
    ) as srv:
        yield srv


def test_each_runs_customization_log_is_a_blob_in_packerlogs(ib, compute, sub, rg, azurite):  # noqa: F811
    customize = [{"type": "Shell", "name": "hello", "inline": ["echo hello from the log"]}]
    ib.virtual_machine_image_templates.begin_create_or_update(
        rg, "logged", template(sub, rg, definition(compute, rg), customize)
    ).result()
    uris = []
    for _ in range(2):
        ib.virtual_machine_image_templates.begin_run(rg, "logged").result()
        announced = [line for line in log_lines(ib, sub, rg, "logged") if "customization.log: " in line]
        uris.append(announced[0].split("customization.log: ")[1].split(" ")[0])
    container = azurite.service().get_container_client(LOGS)
    names = {b.name for b in container.list_blobs()}
    for uri in uris:  # one folder per run, named by the run's id
        run_id, name = uri.removeprefix(f"{azurite.endpoint}/{LOGS}/").split("/")
        assert name == "customization.log" and f"{run_id}/customization.log" in names
        assert len(run_id) == 36
    assert uris[0] != uris[1]
    text = container.get_blob_client(uris[1].split(f"/{LOGS}/")[1]).download_blob().readall().decode()
    lines = [line.split(" ", 1)[1] for line in text.splitlines()]  # each line: its time, then the line
    assert lines == log_lines(ib, sub, rg, "logged")
    assert "[1 hello] hello from the log" in lines and any(
        line.startswith("[2 deprovision] exit code 0") for line in lines
    )


def test_a_vhd_output_is_written_to_the_storage_account_its_uri_names(ib, compute, sub, rg, azurite, tmp_path):  # noqa: F811
    blob = azurite.service().get_blob_client(f"vhds{uuid.uuid4().hex[:8]}", "built.vhd")  # with the account's key
    uri = blob.url
    body = template(
        sub, rg, definition(compute, rg), [{"type": "Shell", "name": "m", "inline": ["echo vhd > /etc/out"]}]
    )
    body["properties"]["distribute"] = [{"type": "VHD", "runOutputName": "vhd", "uri": uri}]
    made = ib.virtual_machine_image_templates.begin_create_or_update(rg, "vhd", body).result()
    ib.virtual_machine_image_templates.begin_run(rg, "vhd").result()
    assert ib.virtual_machine_image_templates.get_run_output(rg, "vhd", "vhd").artifact_uri == uri

    data = blob.download_blob().readall()
    footer = parse_vhd_footer(data[-512:])
    assert footer.disk_type == 2 and footer.current_size == len(data) - 512  # fixed, covering the raw bytes
    built = tmp_path / "built.vhd"
    built.write_bytes(data)
    assert read_file(built, "/etc/out") == "vhd\n"
    assert read_file(built, "/etc/machine-id") == ""  # deprovisioned
    # Written to the account, nothing is kept in the staging group.
    staging = made.exact_staging_resource_group.split("/")[-1]
    assert list(compute.disks.list_by_resource_group(staging)) == []


@pytest.mark.parametrize("uri", ["https://elsewhere.example.test/vhds/x.vhd", "vhds/x.vhd"])
def test_a_vhd_uri_outside_the_configured_accounts_is_refused(ib, compute, sub, rg, uri):
    body = template(sub, rg, definition(compute, rg), [])
    body["properties"]["distribute"] = [{"type": "VHD", "runOutputName": "vhd", "uri": uri}]
    with pytest.raises(HttpResponseError) as err:
        ib.virtual_machine_image_templates.begin_create_or_update(rg, "far", body).result()
    assert err.value.status_code == 400 and err.value.error.target == "properties.distribute[0].uri"
    # A PATCH of distribute is checked as a create is.
    body["properties"]["distribute"] = [{"type": "VHD", "runOutputName": "vhd"}]
    ib.virtual_machine_image_templates.begin_create_or_update(rg, "near", body).result()
    patch = {"properties": {"distribute": [{"type": "VHD", "runOutputName": "vhd", "uri": uri}]}}
    with pytest.raises(HttpResponseError) as err:
        ib.virtual_machine_image_templates.begin_update(rg, "near", patch).result()
    assert err.value.status_code == 400 and err.value.error.target == "properties.distribute[0].uri"
