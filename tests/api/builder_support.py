"""What the image builder's API and end-to-end tests share: a platform image imported as a source, the gallery
definition and template a build targets, the run's live log, waiting for a condition, and a disk's bytes read back
through a grant-access SAS."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from azure.core.rest import HttpRequest
from azure.storage.blob import BlobClient


def import_platform_image(srv, disk: Path, sku="1", version="1.0.0", os_type="Linux") -> None:
    """`disk` into the server's platform image catalog as vmg:tiny:SKU:VERSION in eastus (`vmgallery platform-image
    import`, on the server's data folder and database)."""
    args = [sys.executable, "-m", "vmgallery", "platform-image", "import", "--data-dir", str(srv.data_dir)]
    args += ["--database-url", srv.database_url] if srv.database_url else []
    args += ["--location", "eastus", "--publisher", "vmg", "--offer", "tiny", "--sku", sku, "--version", version]
    subprocess.run([*args, "--os-type", os_type, str(disk)], check=True, capture_output=True)


def definition(compute, rg, name="tiny", **props) -> str:
    gallery = "gal1"
    compute.galleries.begin_create_or_update(rg, gallery, {"location": "eastus"}).result()
    body = {
        "location": "eastus",
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "hyperVGeneration": "V1",
            "identifier": {"publisher": "p", "offer": name, "sku": "s"},
            **props,
        },
    }
    return compute.gallery_images.begin_create_or_update(rg, gallery, name, body).result().id


def template(sub, rg, definition_id, customize, **props) -> dict:
    uami = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ib"
    body = {
        "location": "eastus",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {uami: {}}},
        "properties": {
            "source": {"type": "PlatformImage", "publisher": "vmg", "offer": "tiny", "sku": "1", "version": "latest"},
            "customize": customize,
            "distribute": [{"type": "SharedImage", "galleryImageId": definition_id, "runOutputName": "gallery"}],
            **props,
        },
    }
    return body


def log_lines(ib, sub, rg, name) -> list[str]:
    path = (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.VirtualMachineImages/imageTemplates/{name}"
        "/customizationLog?api-version=2025-10-01"
    )
    response = ib.send_request(HttpRequest("GET", path))
    response.raise_for_status()
    return [entry["line"] for entry in response.json()["lines"]]


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def download_disk(compute, server, rg, disk_name, dest: Path) -> Path:
    """A managed disk's bytes as a raw file (its VHD footer dropped), through a read SAS granted for the download."""
    access = compute.disks.begin_grant_access(rg, disk_name, {"access": "Read", "durationInSeconds": 600}).result()
    data = BlobClient.from_blob_url(access.access_sas, connection_verify=server.ca).download_blob().readall()
    compute.disks.begin_revoke_access(rg, disk_name).result()
    dest.write_bytes(data[:-512])
    return dest
