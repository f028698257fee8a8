"""Resource groups, galleries and image definitions through their whole life, with az's options and defaults."""

from __future__ import annotations

import uuid

GALLERY_API = {"api-version": "2026-03-03"}


def definition_args(group: str, gallery: str, name: str, *extra: str, offer: str | None = None) -> list[str]:
    return [
        "sig",
        "image-definition",
        "create",
        "-g",
        group,
        "-r",
        gallery,
        "-i",
        name,
        "-p",
        "pub",
        "-f",
        offer or f"offer-{name}",
        "-s",
        "sku",
        "--os-type",
        "linux",
        *extra,
    ]


def test_group_create_show_list_delete(cli, server, subscription):
    created = cli.json(
        "group", "create", "--name", "rg-life", "--location", "westus", "--tags", "env=test", "team=images"
    )
    assert created["name"] == "rg-life" and created["location"] == "westus"
    assert created["tags"] == {"env": "test", "team": "images"}
    assert created["properties"]["provisioningState"] == "Succeeded"
    assert cli.json("group", "show", "-n", "rg-life") == created
    assert [g["name"] for g in cli.json("group", "list")] == ["rg-life"]

    cli.ok("group", "delete", "-n", "rg-life", "--yes")
    assert cli.json("group", "list") == []
    assert cli.fails("group", "show", "-n", "rg-life").stderr.startswith("(ResourceGroupNotFound) ")


def test_group_delete_asks_before_deleting(cli, group):
    result = cli.fails("group", "delete", "-n", group)
    assert "Use --yes" in result.stderr
    assert cli.json("group", "show", "-n", group)["name"] == group


def test_gallery_lifecycle_in_the_groups_location(cli, server, subscription):
    cli.ok("group", "create", "-n", "rg-gal", "-l", "westeurope")
    created = cli.json(
        "sig", "create", "-g", "rg-gal", "-r", "gallery1", "--description", "first", "--tags", "a=1", "b=2"
    )
    assert created["location"] == "westeurope"
    assert created["provisioningState"] == "Succeeded"
    assert created["resourceGroup"] == "rg-gal"
    assert created["description"] == "first" and created["tags"] == {"a": "1", "b": "2"}
    assert created["identifier"]["uniqueName"].endswith("-GALLERY1")
    assert "properties" not in created

    updated = cli.json("sig", "update", "-g", "rg-gal", "-r", "gallery1", "--description", "second", "--tags", "c=3")
    assert updated["description"] == "second" and updated["tags"] == {"c": "3"}
    cli.ok("sig", "update", "-g", "rg-gal", "-r", "gallery1", "--set", "description=third word", "tags.d=4")
    with server.http() as http:
        stored = http.get(
            f"/subscriptions/{subscription}/resourceGroups/rg-gal/providers/Microsoft.Compute/galleries/gallery1",
            params=GALLERY_API,
        ).json()
    assert stored["properties"]["description"] == "third word" and stored["tags"] == {"c": "3", "d": "4"}

    assert cli.json("sig", "show", "-g", "rg-gal", "-r", "gallery1")["description"] == "third word"
    cli.ok("sig", "create", "-g", "rg-gal", "-r", "gallery2", "-l", "eastus")
    assert sorted(g["name"] for g in cli.json("sig", "list", "-g", "rg-gal")) == ["gallery1", "gallery2"]
    assert sorted(g["name"] for g in cli.json("sig", "list")) == ["gallery1", "gallery2"]

    cli.ok("sig", "delete", "-g", "rg-gal", "-r", "gallery2")
    assert [g["name"] for g in cli.json("sig", "list")] == ["gallery1"]
    assert cli.fails("sig", "show", "-g", "rg-gal", "-r", "gallery2").stderr.startswith("(ResourceNotFound) ")


def test_image_definition_lifecycle(cli, group, gallery):
    created = cli.json(
        *definition_args(
            group,
            gallery,
            "def1",
            "--os-state",
            "Specialized",
            "--hyper-v-generation",
            "V2",
            "--architecture",
            "Arm64",
            "--features",
            "SecurityType=TrustedLaunch IsHibernateSupported=true",
            "--description",
            "an image",
            "--minimum-cpu-core",
            "2",
            "--maximum-cpu-core",
            "8",
            "--minimum-memory",
            "2048",
            "--maximum-memory",
            "16384",
            "--disallowed-disk-types",
            "Standard_LRS",
            "Premium_LRS",
            "--end-of-life-date",
            "2030-01-01",
            "--eula",
            "eula text",
            "--privacy-statement-uri",
            "https://example.com/privacy",
            "--release-note-uri",
            "https://example.com/notes",
            "--plan-name",
            "plan",
            "--plan-product",
            "product",
            "--plan-publisher",
            "planpub",
            "--tags",
            "k=v",
        )
    )
    assert created["provisioningState"] == "Succeeded" and created["resourceGroup"] == group
    assert created["identifier"] == {"publisher": "pub", "offer": "offer-def1", "sku": "sku"}
    assert (created["osType"], created["osState"], created["hyperVGeneration"], created["architecture"]) == (
        "Linux",
        "Specialized",
        "V2",
        "Arm64",
    )
    assert sorted((f["name"], f["value"]) for f in created["features"]) == [
        ("IsHibernateSupported", "True"),
        ("SecurityType", "TrustedLaunch"),
    ]
    assert created["recommended"] == {"vCPUs": {"min": 2, "max": 8}, "memory": {"min": 2048, "max": 16384}}
    assert created["disallowed"] == {"diskTypes": ["Standard_LRS", "Premium_LRS"]}
    assert created["endOfLifeDate"] == "2030-01-01T12:59:59Z"
    assert created["purchasePlan"] == {"name": "plan", "product": "product", "publisher": "planpub"}
    assert (created["eula"], created["privacyStatementUri"], created["releaseNoteUri"]) == (
        "eula text",
        "https://example.com/privacy",
        "https://example.com/notes",
    )
    assert created["tags"] == {"k": "v"}

    updated = cli.json(
        "sig",
        "image-definition",
        "update",
        "-g",
        group,
        "-r",
        gallery,
        "-i",
        "def1",
        "--description",
        "changed",
        "--end-of-life-date",
        "2031-06-30",
        "--maximum-cpu-core",
        "16",
        "--release-note-uri",
        "https://example.com/notes2",
        "--set",
        "recommended.memory.max=32768",
    )
    assert updated["description"] == "changed" and updated["endOfLifeDate"] == "2031-06-30T12:59:59Z"
    assert updated["recommended"] == {"vCPUs": {"min": 2, "max": 16}, "memory": {"min": 2048, "max": 32768}}
    assert updated["releaseNoteUri"] == "https://example.com/notes2"
    assert updated["identifier"] == created["identifier"]

    shown = cli.json("sig", "image-definition", "show", "-g", group, "-r", gallery, "--gallery-image-name", "def1")
    assert shown == updated
    cli.ok(*definition_args(group, gallery, "def2"))
    listed = cli.json("sig", "image-definition", "list", "--resource-group", group, "--gallery-name", gallery)
    assert sorted(d["name"] for d in listed) == ["def1", "def2"]

    cli.ok("sig", "image-definition", "delete", "-g", group, "-r", gallery, "-i", "def1")
    cli.ok("sig", "image-definition", "delete", "-g", group, "-r", gallery, "-i", "def2")
    assert cli.json("sig", "image-definition", "list", "-g", group, "-r", gallery) == []
    cli.ok("sig", "delete", "-g", group, "-r", gallery)
    cli.ok("group", "delete", "-n", group, "-y")
    assert cli.json("group", "list") == []


def test_image_definition_defaults_are_azs(cli, group, gallery):
    created = cli.json(*definition_args(group, gallery, "defaults"))
    assert created["osState"] == "Generalized" and created["hyperVGeneration"] == "V2"
    assert created["features"] == [{"name": "SecurityType", "value": "TrustedLaunchSupported"}]
    assert created["location"] == "eastus"

    standard = cli.json(*definition_args(group, gallery, "standard", "--features", "SecurityType=Standard"))
    assert "features" not in standard
    gen1 = cli.json(*definition_args(group, gallery, "gen1", "--hyper-v-generation", "V1"))
    assert "features" not in gen1 and gen1["hyperVGeneration"] == "V1"
    hibernate = cli.json(*definition_args(group, gallery, "hibernate", "--features", "IsHibernateSupported=true"))
    assert sorted(f["name"] for f in hibernate["features"]) == ["IsHibernateSupported", "SecurityType"]


def test_server_refusals_come_back_as_code_and_message(cli, group, gallery):
    cli.ok(*definition_args(group, gallery, "first", offer="same"))
    clash = cli.fails(*definition_args(group, gallery, "second", offer="same"))
    assert clash.stderr.startswith("(GalleryImageIdentifierAlreadyExists) ")
    assert clash.stdout == ""

    bad_name = cli.fails("sig", "create", "-g", group, "-r", "bad!name")
    assert bad_name.stderr.startswith("(InvalidResourceName) ")
    missing_group = cli.fails("sig", "create", "-g", f"rg-{uuid.uuid4().hex[:6]}", "-r", "g1", "-l", "eastus")
    assert missing_group.stderr.startswith("(ResourceGroupNotFound) ")
    not_empty = cli.fails("sig", "delete", "-g", group, "-r", gallery)
    assert "first" in not_empty.stderr


def test_usage_errors_exit_with_2(cli, group):
    result = cli.run(
        "sig",
        "image-definition",
        "create",
        "-g",
        group,
        "-r",
        "g",
        "-i",
        "d",
        "-p",
        "p",
        "-f",
        "f",
        "-s",
        "s",
        "--os-type",
        "Solaris",
    )
    assert result.exit_code == 2
