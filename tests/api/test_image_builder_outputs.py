"""Where a build's outputs can be read besides the ARM API: a VHD output written to the storage account its `uri`
names (Azurite here), read back with azure-storage-blob and checked as a fixed VHD holding the built file system."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError

from tests.azurite import azurite  # noqa: F401  (the session fixture)
from tests.fake_engine import read_file
from vmgallery.domain.vhd import parse_vhd_footer

from .test_image_builder import (  # noqa: F401  (fixtures)
    builder_server,
    compute,
    definition,
    ib,
    rg,
    sub,
    template,
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
