"""`vmgallery sig share ...` and the consumer listings, as az spells them, against the real server: a second
subscription sees what is shared with it, and stops seeing it after remove; community listings; plain errors."""

from __future__ import annotations

import uuid

import pytest

from .conftest import Cli, env_for


@pytest.fixture
def published(cli, group, gallery, tmp_path) -> str:
    raw = tmp_path / "os.raw"
    raw.write_bytes(bytes(range(256)) * 4096 * 2)  # 2 MiB
    cli.ok("disk", "upload", "-g", group, "-n", "os", "--file", str(raw), "--os-type", "Linux")
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
        "off",
        "-s",
        "sku",
        "--os-type",
        "Linux",
    )
    cli.ok(
        "sig",
        "image-version",
        "create",
        "-g",
        group,
        "-r",
        gallery,
        "-i",
        "linux",
        "-e",
        "1.0.0",
        "--os-snapshot",
        "os",
        "-o",
        "none",
    )
    cli.ok(
        "sig",
        "image-version",
        "create",
        "-g",
        group,
        "-r",
        gallery,
        "-i",
        "linux",
        "-e",
        "1.1.0",
        "--os-snapshot",
        "os",
        "--exclude-from-latest",
        "-o",
        "none",
    )
    return gallery


@pytest.fixture
def consumer(server) -> tuple[str, Cli]:
    sub = str(uuid.uuid4())
    return sub, Cli(env_for(server, sub))


def test_share_add_list_and_remove(cli, group, published, consumer):
    sub, theirs = consumer
    refused = cli.fails("sig", "share", "add", "-g", group, "-r", published, "--subscription-ids", sub)
    assert "needs 'Groups'" in refused.stderr and "--permissions Groups" in refused.stderr

    cli.ok("sig", "update", "-g", group, "-r", published, "--permissions", "groups", "-o", "none")
    added = cli.json("sig", "share", "add", "-g", group, "-r", published, "--subscription-ids", sub)
    assert added == {"operationType": "Add", "groups": [{"type": "Subscriptions", "ids": [sub]}]}
    shown = cli.json("sig", "show", "-g", group, "-r", published, "--select", "Permissions", "--sharing-groups")
    assert shown["sharingProfile"]["groups"] == [{"type": "Subscriptions", "ids": [sub]}]
    unique = shown["identifier"]["uniqueName"]

    listed = theirs.json("sig", "list-shared", "-l", "eastus")
    assert [(g["name"], g["uniqueId"]) for g in listed] == [(unique, f"/SharedGalleries/{unique}")]
    assert theirs.json("sig", "list-shared", "-l", "eastus", "--shared-to", "tenant") == []
    images = theirs.json("sig", "image-definition", "list-shared", "-l", "eastus", "--gallery-unique-name", unique)
    assert [(i["name"], i["identifier"]["publisher"]) for i in images] == [("linux", "pub")]
    versions = theirs.json(
        "sig", "image-version", "list-shared", "-l", "eastus", "--gallery-unique-name", unique, "-i", "linux"
    )
    assert sorted(v["name"] for v in versions) == ["1.0.0", "1.1.0"]
    assert theirs.json("sig", "show-shared", "-l", "eastus", "-n", unique)["uniqueId"] == f"/SharedGalleries/{unique}"
    where = ("-l", "eastus", "--gallery-unique-name", unique, "-i", "linux")
    image = theirs.json("sig", "image-definition", "show-shared", *where)
    assert image["uniqueId"] == f"/SharedGalleries/{unique}/Images/linux" and image["osType"] == "Linux"
    version = theirs.json("sig", "image-version", "show-shared", *where, "-e", "1.1.0")
    assert version["name"] == "1.1.0" and version["excludeFromLatest"] is True
    # Shared with the subscription, not its tenant: the tenant's view has no such gallery.
    to_tenant = theirs.fails("sig", "image-version", "list-shared", *where, "--shared-to", "tenant")
    assert to_tenant.stderr.startswith("(ResourceNotFound) ")
    bad = theirs.run("sig", "image-definition", "list-shared", *where[:4], "--shared-to", "everyone")
    assert bad.exit_code == 2 and "--shared-to takes 'tenant', not 'everyone'" in bad.stderr
    table = theirs.ok("sig", "list-shared", "-l", "eastus", "-o", "table").stdout
    assert unique in table

    cli.ok("sig", "share", "remove", "-g", group, "-r", published, "--subscription-ids", sub, "-o", "none")
    assert theirs.json("sig", "list-shared", "-l", "eastus") == []
    gone = theirs.fails("sig", "image-definition", "list-shared", "-l", "eastus", "--gallery-unique-name", unique)
    assert "not shared with subscription" in gone.stderr and group not in gone.stderr


def test_community_enable_list_and_reset(cli, group, published, consumer):
    _sub, theirs = consumer
    cli.ok(
        "sig",
        "update",
        "-g",
        group,
        "-r",
        published,
        "--permissions",
        "Community",
        "--publisher-uri",
        "https://example.com",
        "--publisher-email",
        "images@example.com",
        "--eula",
        "https://example.com/eula",
        "--public-name-prefix",
        "contoso",
        "-o",
        "none",
    )
    cli.ok("sig", "share", "enable-community", "-g", group, "-r", published, "-o", "none")
    info = cli.json("sig", "show", "-g", group, "-r", published)["sharingProfile"]["communityGalleryInfo"]
    (public,) = info["publicNames"]
    assert info["communityGalleryEnabled"] is True and public.startswith("contoso-")

    shown = theirs.json("sig", "show-community", "-l", "eastus", "--public-gallery-name", public)
    assert shown["uniqueId"] == f"/CommunityGalleries/{public}"
    assert shown["communityMetadata"]["publisherContact"] == "images@example.com"
    images = theirs.json("sig", "image-definition", "list-community", "-l", "eastus", "--public-gallery-name", public)
    assert [i["name"] for i in images] == ["linux"]
    image = theirs.json(
        "sig", "image-definition", "show-community", "-l", "eastus", "--public-gallery-name", public, "-i", "linux"
    )
    assert image["uniqueId"] == f"/CommunityGalleries/{public}/Images/linux" and image["identifier"]["sku"] == "sku"
    versions = theirs.json(
        "sig", "image-version", "list-community", "-l", "eastus", "--public-gallery-name", public, "-i", "linux"
    )
    assert [v["name"] for v in versions] == ["1.0.0"]  # 1.1.0 is excluded from latest
    pinned = theirs.json(
        "sig",
        "image-version",
        "show-community",
        "-l",
        "eastus",
        "--public-gallery-name",
        public,
        "-i",
        "linux",
        "-e",
        "1.1.0",
    )
    assert pinned["excludeFromLatest"] is True

    cli.ok("sig", "share", "reset", "-g", group, "-r", published, "-o", "none")
    assert cli.json("sig", "show", "-g", group, "-r", published)["sharingProfile"]["permissions"] == "Private"
    theirs.fails("sig", "show-community", "-l", "eastus", "--public-gallery-name", public)
