"""Publish a golden image with the Azure SDK for Python against a vmgallery server, as you would on Azure:

resource group -> gallery -> image definition -> a disk uploaded from a fixed VHD (through BlobClient) -> an image
version from that disk in two regions -> a disk made from `latest` in the second region -> its bytes downloaded.

    .venv/bin/pip install -e '.[sdk]'        # azure-mgmt-compute and azure-mgmt-resource, pinned
    .venv/bin/python examples/sdk_quickstart.py golden.vhd --out copy.vhd

golden.vhd is a fixed VHD, e.g. `qemu-img convert -O vpc -o subformat=fixed,force_size=on golden.qcow2 golden.vhd`
(a size of whole MiB; `vmgallery disk upload` converts any format for you). The server is found from --endpoint and
--data-dir (defaults: `scripts/serve`'s), which holds its admin token and TLS certificate.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from azure.core.credentials import AccessToken
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.storage.blob import BlobClient

PIECE = 4 << 20  # bytes per page write; Azure takes at most 4 MiB


class ServerToken:
    """A credential holding the server's bearer token (on Azure: DefaultAzureCredential from azure-identity)."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("vhd", type=Path, help="the golden image, a fixed VHD")
    parser.add_argument("--out", type=Path, default=Path("copy.vhd"), help="where the new disk is downloaded to")
    parser.add_argument("--endpoint", default="https://127.0.0.1:8443")
    parser.add_argument("--data-dir", type=Path, default=Path("~/.local/share/vmgallery").expanduser())
    parser.add_argument("--subscription", default="00000000-0000-0000-0000-000000000000")
    parser.add_argument("--resource-group", default="rg")
    args = parser.parse_args()

    credential = ServerToken((args.data_dir / "admin-token").read_text().strip())
    cert = str(args.data_dir / "tls" / "cert.pem")
    connection = {
        "base_url": args.endpoint,
        "credential_scopes": ["https://management.azure.com/.default"],
        "connection_verify": cert,
    }
    resources = ResourceManagementClient(credential, args.subscription, **connection)
    compute = ComputeManagementClient(credential, args.subscription, **connection)
    rg = args.resource_group

    resources.resource_groups.create_or_update(rg, {"location": "eastus"})
    compute.galleries.begin_create_or_update(rg, "gallery1", {"location": "eastus"}).result()
    compute.gallery_images.begin_create_or_update(
        rg,
        "gallery1",
        "ubuntu",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "osState": "Generalized",
                "hyperVGeneration": "V2",
                "identifier": {"publisher": "me", "offer": "ubuntu", "sku": "24_04"},
            },
        },
    ).result()

    # Bodies are ARM's JSON, as in Azure's REST reference. A disk waiting for an upload, a write SAS for it, and the
    # VHD's pages sent through the page-blob protocol.
    size = args.vhd.stat().st_size
    compute.disks.begin_create_or_update(
        rg,
        "golden",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "hyperVGeneration": "V2",
                "creationData": {"createOption": "Upload", "uploadSizeBytes": size},
            },
        },
    ).result()
    access = compute.disks.begin_grant_access(rg, "golden", {"access": "Write", "durationInSeconds": 3600}).result()
    blob = BlobClient.from_blob_url(access.access_sas, connection_verify=cert)
    with open(args.vhd, "rb") as f:
        for offset in range(0, size, PIECE):
            piece = f.read(PIECE)
            if piece.count(0) != len(piece):  # a disk starts zeroed: zeros need not travel
                blob.upload_page(piece, offset=offset, length=len(piece))
    compute.disks.begin_revoke_access(rg, "golden").result()

    # A version from the disk (no byte is copied), replicated to a second region in the background.
    golden = compute.disks.get(rg, "golden")
    compute.gallery_image_versions.begin_create_or_update(
        rg,
        "gallery1",
        "ubuntu",
        "1.0.0",
        {
            "location": "eastus",
            "properties": {
                "publishingProfile": {"targetRegions": [{"name": "eastus"}, {"name": "westus"}]},
                "storageProfile": {"osDiskImage": {"source": {"id": golden.id}}},
            },
        },
    ).result()
    while True:
        status = compute.gallery_image_versions.get(
            rg, "gallery1", "ubuntu", "1.0.0", expand="ReplicationStatus"
        ).properties.replication_status
        print(", ".join(f"{s.region}: {s.state.value} {s.progress}%" for s in status.summary))
        if status.aggregated_state == "Completed":
            break
        time.sleep(1)

    # A disk from `latest` in westus, read back through a read SAS.
    definition = compute.gallery_images.get(rg, "gallery1", "ubuntu")
    compute.disks.begin_create_or_update(
        rg,
        "vm1-os",
        {
            "location": "westus",
            "properties": {
                "creationData": {
                    "createOption": "FromImage",
                    "galleryImageReference": {"id": f"{definition.id}/versions/latest"},
                }
            },
        },
    ).result()
    access = compute.disks.begin_grant_access(rg, "vm1-os", {"access": "Read", "durationInSeconds": 3600}).result()
    with open(args.out, "wb") as f:
        BlobClient.from_blob_url(access.access_sas, connection_verify=cert).download_blob(max_concurrency=4).readinto(f)
    compute.disks.begin_revoke_access(rg, "vm1-os").result()
    print(f"{args.out}: {os.path.getsize(args.out)} bytes, from {definition.id}/versions/latest in westus")


if __name__ == "__main__":
    main()
