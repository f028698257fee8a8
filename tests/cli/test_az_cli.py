"""The real az CLI (azure-cli from PyPI, installed by scripts/test into .ci/az) against a real server, unchanged:
registering vmgallery as a cloud from its /metadata/endpoints, a service principal's login through vmgallery's
authority, then the gallery commands, sharing and a role assignment that az resolves through vmgallery's Graph.

Each command's JSON is checked, and what it did is checked on the server through the admin token. az starts in 1-2 s,
so the test runs each command once, on SQLite only (the HTTP layer it exercises is the same on both databases).
"""

from __future__ import annotations

import configparser
import json
import os
import ssl
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from azure.identity import ClientSecretCredential

ROOT = Path(__file__).resolve().parents[2]
AZ = os.environ.get("VMGALLERY_TEST_AZ") or str(ROOT / ".ci" / "az" / "bin" / "az")
COMPUTE = "providers/Microsoft.Compute"


class Az:
    """Runs the real `az` with its own config dir, trusting the server's certificate and nothing from the caller's
    environment that could change what az does (AZURE_* settings, another CA bundle)."""

    def __init__(self, config_dir: Path, ca: str):
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "REQUESTS_", "CURL_", "SSL_"))}
        self.env = {
            **keep,
            "AZURE_CONFIG_DIR": str(config_dir),
            "REQUESTS_CA_BUNDLE": ca,
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
            "AZURE_CORE_NO_COLOR": "true",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AZ, *args], env=self.env, capture_output=True, text=True, timeout=120)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"az {' '.join(args)} -> {done.returncode}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str):
        return json.loads(self.ok(*args, "--output", "json"))


@pytest.fixture
def az(tmp_path, server) -> Az:
    if not os.access(AZ, os.X_OK):
        pytest.fail(f"az is not installed at {AZ}: run scripts/test, which installs azure-cli into .ci/az")
    return Az(tmp_path / "azure", server.ca)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_real_az_cli_drives_galleries_sharing_and_roles(az, cli, server):
    # The directory, made by the admin: a tenant, its subscription, the deploying SP (Owner of the subscription)
    # and a second SP that az will make a Reader of the gallery.
    tenant = cli.json("identity", "tenant", "create", "--name", "contoso")["tenantId"]
    sub = cli.json("identity", "subscription", "create", "--tenant", tenant, "--name", "prod")["subscriptionId"]
    deployer = cli.json("identity", "sp", "create", "--tenant", tenant, "--name", "deployer")
    reader = cli.json("identity", "sp", "create", "--tenant", tenant, "--name", "reader")
    cli.ok(
        "role", "assignment", "create", "--role", "Owner", "--assignee-object-id", deployer["objectId"],
        "--assignee-principal-type", "ServicePrincipal", "--scope", f"/subscriptions/{sub}", "--subscription", sub,
    )  # fmt: skip

    # Registering the cloud reads /metadata/endpoints: the authority and Graph are the server itself.
    az.ok("cloud", "register", "-n", "vmgallery", "--endpoint-resource-manager", server.url)
    clouds = configparser.ConfigParser()
    clouds.read(az.env["AZURE_CONFIG_DIR"] + "/clouds.config")
    endpoints = clouds["vmgallery"]
    assert endpoints["endpoint_active_directory"] == server.url
    assert endpoints["endpoint_microsoft_graph_resource_id"] == server.url + "/"
    assert endpoints["endpoint_active_directory_resource_id"] == "https://management.core.windows.net/"
    az.ok("cloud", "set", "-n", "vmgallery")
    az.ok("config", "set", "core.instance_discovery=false")

    accounts = az.json("login", "--service-principal", "-u", deployer["appId"], "-p", deployer["password"],
                       "--tenant", tenant)  # fmt: skip
    assert [(a["id"], a["tenantId"], a["name"], a["state"], a["cloudName"]) for a in accounts] == [
        (sub, tenant, "prod", "Enabled", "vmgallery")
    ]
    assert accounts[0]["user"] == {"name": deployer["appId"], "type": "servicePrincipal"}

    group = az.json("group", "create", "-n", "rg-az", "-l", "eastus")
    assert group["id"] == f"/subscriptions/{sub}/resourceGroups/rg-az" and group["location"] == "eastus"
    assert group["properties"]["provisioningState"] == "Succeeded"
    gallery_id = f"/subscriptions/{sub}/resourceGroups/rg-az/{COMPUTE}/galleries/gal1"

    made = az.json("sig", "create", "-g", "rg-az", "-r", "gal1", "--permissions", "Groups", "--description", "az")
    assert made["id"] == gallery_id and made["provisioningState"] == "Succeeded"
    assert made["description"] == "az" and made["location"] == "eastus"
    assert made["identifier"]["uniqueName"] == f"{sub}-GAL1"
    assert made["sharingProfile"]["permissions"] == "Groups"
    assert az.json("sig", "show", "-g", "rg-az", "-r", "gal1") == made
    assert [g["id"] for g in az.json("sig", "list")] == [gallery_id]

    definition = az.json(
        "sig", "image-definition", "create", "-g", "rg-az", "-r", "gal1", "-i", "ubuntu", "-p", "contoso",
        "-f", "ubuntu", "-s", "22_04", "--os-type", "Linux",
    )  # fmt: skip
    assert definition["id"] == f"{gallery_id}/images/ubuntu" and definition["provisioningState"] == "Succeeded"
    assert definition["identifier"] == {"publisher": "contoso", "offer": "ubuntu", "sku": "22_04"}
    assert definition["hyperVGeneration"] == "V2" and definition["osState"] == "Generalized"
    assert definition["features"] == [{"name": "SecurityType", "value": "TrustedLaunchSupported"}]
    listed = az.json("sig", "image-definition", "list", "-g", "rg-az", "-r", "gal1")
    assert [d["name"] for d in listed] == ["ubuntu"]

    # The version's source: a managed disk the admin makes (az's --os-snapshot takes a disk id as well).
    disk = cli.json("disk", "create", "-g", "rg-az", "-n", "os", "-z", "1", "--subscription", sub)["id"]
    version = az.json(
        "sig", "image-version", "create", "-g", "rg-az", "-r", "gal1", "-i", "ubuntu", "-e", "1.0.0",
        "--os-snapshot", disk, "--target-regions", "eastus", "westus=2=standard_zrs",
    )  # fmt: skip
    assert version["id"] == f"{gallery_id}/images/ubuntu/versions/1.0.0"
    assert version["provisioningState"] == "Succeeded"
    assert version["storageProfile"]["osDiskImage"]["source"]["id"] == disk
    regions = {r["name"]: r for r in version["publishingProfile"]["targetRegions"]}
    assert set(regions) == {"eastus", "westus"}
    assert (regions["westus"]["regionalReplicaCount"], regions["westus"]["storageAccountType"]) == (2, "Standard_ZRS")
    shown = az.json("sig", "image-version", "show", "-g", "rg-az", "-r", "gal1", "-i", "ubuntu", "-e", "1.0.0",
                    "--expand", "ReplicationStatus")  # fmt: skip
    assert shown["id"] == version["id"] and shown["replicationStatus"]["aggregatedState"] == "Completed"

    consumer_sub, consumer_tenant = str(uuid.uuid4()), str(uuid.uuid4())
    shared = az.json("sig", "share", "add", "-g", "rg-az", "-r", "gal1", "--subscription-ids", consumer_sub,
                     "--tenant-ids", consumer_tenant)  # fmt: skip
    assert shared == {
        "operationType": "Add",
        "groups": [{"type": "Subscriptions", "ids": [consumer_sub]}, {"type": "AADTenants", "ids": [consumer_tenant]}],
    }
    with server.http() as admin:
        stored = admin.get(
            gallery_id, params={"api-version": "2023-07-03", "$expand": "sharingProfile/Groups"}
        ).raise_for_status()
        assert stored.json()["properties"]["sharingProfile"]["groups"] == [
            {"type": "Subscriptions", "ids": [consumer_sub]},
            {"type": "AADTenants", "ids": [consumer_tenant]},
        ]

    # The reader SP may not read the gallery until az assigns it Reader there (az finds its object id in Graph).
    credential = ClientSecretCredential(
        tenant, reader["appId"], reader["password"], authority=server.url, disable_instance_discovery=True,
        connection_verify=server.ca,
    )  # fmt: skip
    token = credential.get_token("https://management.azure.com/.default").token
    trust = ssl.create_default_context(cafile=server.ca)
    with httpx.Client(base_url=server.url, verify=trust, headers={"Authorization": f"Bearer {token}"}) as as_reader:
        assert as_reader.get(gallery_id, params={"api-version": "2023-07-03"}).status_code == 403
        assignment = az.json(
            "role", "assignment", "create", "--role", "Reader", "--assignee", reader["appId"], "--scope", gallery_id
        )
        assert assignment["principalId"] == reader["objectId"] and assignment["scope"] == gallery_id
        assert assignment["principalType"] == "ServicePrincipal"
        assert assignment["createdBy"] == deployer["objectId"]
        assert assignment["roleDefinitionId"].endswith("/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7")
        seen = as_reader.get(gallery_id, params={"api-version": "2023-07-03"})
        assert seen.status_code == 200 and seen.json()["id"] == gallery_id
        assert as_reader.delete(gallery_id, params={"api-version": "2023-07-03"}).status_code == 403
