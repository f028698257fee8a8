"""Replication from the CLI: `update --add-region/--remove-region/--dry-run`, `wait --region` and `show --watch`
against a server with three regions (westeurope throttled, so a watch sees it replicating); and, without a server,
the target-region editing, plan rendering, bar view and the waiting on a Failed region."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from rich.console import Console

from vmgallery.entrypoints.cli import replication
from vmgallery.entrypoints.cli.client import ArmClient, CliError
from vmgallery.entrypoints.cli.profile import Profile

from ..conftest import running_server
from .test_disks_cli import ext4_image
from .test_versions_cli import where

MIB = 1 << 20
REGIONS = ("eastus", "westus", "westeurope")


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(f"cli-replication-{backend}")
    (data_dir / "config.toml").write_text(
        f"regions = {json.dumps(list(REGIONS))}\nchunk_size = 65536\n"
        f"replication_bandwidth = {{westeurope = {2 * MIB}}}\n"
    )
    with running_server(backend, data_dir) as srv:
        yield srv


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return ext4_image(tmp_path_factory.mktemp("ext4"), mib=4, random_mib=2)


@pytest.fixture
def at(cli, group, gallery, image) -> list[str]:
    """Version 1.0.0 of an uploaded disk, in eastus only; the options that name it."""
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
    cli.ok(
        "disk",
        "upload",
        "-g",
        group,
        "-n",
        "os",
        "--file",
        str(image),
        "--os-type",
        "Linux",
        "--hyper-v-generation",
        "V2",
    )
    cli.ok("snapshot", "create", "-g", group, "-n", "os-snap", "--source", "os")
    cli.ok("sig", "image-version", "create", *where(group, gallery, "linux", "1.0.0"), "--os-snapshot", "os-snap")
    return where(group, gallery, "linux", "1.0.0")


def status(cli, at: list[str]) -> dict[str, dict]:
    version = cli.json("sig", "image-version", "show", *at, "--expand", "ReplicationStatus")
    return {r["region"]: r for r in version["replicationStatus"]["summary"]}


def targets(cli, at: list[str]) -> dict[str, dict]:
    version = cli.json("sig", "image-version", "show", *at)
    return {r["name"]: r for r in version["publishingProfile"]["targetRegions"]}


def test_dry_run_prints_the_plan_and_changes_nothing(cli, at):
    plan = cli.json("sig", "image-version", "update", *at, "--add-region", "westus=2", "westeurope", "--dry-run")
    assert plan["added"] == [{"region": "westeurope", "replicas": 1}, {"region": "westus", "replicas": 2}]
    assert plan["removed"] == []
    assert plan["bytesToMove"]["westus"] >= 2 * 2 * MIB  # two replicas of the 2 MiB of random bytes, at least
    assert plan["totalBytesToMove"] == sum(plan["bytesToMove"].values())

    table = cli.ok(
        "sig", "image-version", "update", *at, "--add-region", "westus=2", "--dry-run", "-o", "table"
    ).stdout.splitlines()
    assert table[0].split() == ["Region", "Change", "Replicas", "BytesToMove"]
    assert table[2].split()[:3] == ["westus", "add", "2"] and table[2].endswith("MiB")
    assert table[-1].startswith("Total bytes to move: ") and table[-1].endswith(" MiB")
    assert (
        cli.ok(
            "sig",
            "image-version",
            "update",
            *at,
            "--add-region",
            "westus",
            "--dry-run",
            "--query",
            "added[].region",
            "-o",
            "tsv",
        ).stdout
        == "westus\n"
    )

    assert set(targets(cli, at)) == {"eastus"}
    assert set(status(cli, at)) == {"eastus"}


def test_add_a_region_wait_for_it_and_remove_it_only_when_allowed(cli, at):
    updated = cli.json("sig", "image-version", "update", *at, "--add-region", "westus=2")
    assert {r["name"]: r["regionalReplicaCount"] for r in updated["publishingProfile"]["targetRegions"]} == {
        "eastus": 1,
        "westus": 2,
    }
    cli.ok("sig", "image-version", "wait", *at, "--region", "westus", "--interval", "0.1", "--timeout", "60")
    assert status(cli, at)["westus"]["state"] == "Completed"
    cli.ok("sig", "image-version", "wait", *at, "--region", "eastus", "westus", "--interval", "0.1")

    for extra in ((), ("--dry-run",), ("--allow-replicated-location-deletion", "false")):
        refused = cli.fails("sig", "image-version", "update", *at, "--remove-region", "westus", *extra)
        assert refused.stderr.startswith("(ChangeOfReplicatedLocationsNotAllowed) ") and "westus" in refused.stderr
        assert "--allow-replicated-location-deletion" in refused.stderr
    assert set(targets(cli, at)) == {"eastus", "westus"}

    plan = cli.json(
        "sig",
        "image-version",
        "update",
        *at,
        "--remove-region",
        "westus",
        "--allow-replicated-location-deletion",
        "--dry-run",
    )
    assert plan == {
        "added": [],
        "removed": [{"region": "westus", "replicas": 2}],
        "bytesToMove": {},
        "totalBytesToMove": 0,
    }
    cli.ok("sig", "image-version", "update", *at, "--remove-region", "West US", "--allow-replicated-location-deletion")
    assert set(targets(cli, at)) == {"eastus"}
    assert set(status(cli, at)) == {"eastus"}

    gone = cli.fails("sig", "image-version", "wait", *at, "--region", "westus", "--interval", "0.1")
    assert gone.stderr.startswith("(InvalidArgumentValue) westus is not a target region")


def test_region_option_errors(cli, at):
    both = cli.fails("sig", "image-version", "update", *at, "--target-regions", "eastus", "--add-region", "westus")
    assert both.stderr.startswith("(MutuallyExclusiveArgument) ")
    missing = cli.fails("sig", "image-version", "update", *at, "--remove-region", "westus")
    assert missing.stderr.startswith("(InvalidArgumentValue) westus is not a target region")
    bad = cli.fails("sig", "image-version", "update", *at, "--add-region", "westus=many")
    assert bad.stderr.startswith("(InvalidArgumentValue) ") and "westus=many" in bad.stderr
    unknown = cli.fails("sig", "image-version", "update", *at, "--add-region", "mars", "--dry-run")
    assert "mars" in unknown.stderr
    assert cli.fails("sig", "image-version", "wait", *at, "--region", "eastus", "--exists").stderr.startswith(
        "usage error: "
    )


def test_watch_shows_each_region_until_completed(cli, at):
    cli.ok("sig", "image-version", "update", *at, "--add-region", "westus", "westeurope=2")
    watched = cli.ok("sig", "image-version", "show", *at, "--watch", "--interval", "0.1", "--timeout", "120")
    assert json.loads(watched.stdout)["replicationStatus"]["aggregatedState"] == "Completed"
    lines: dict[str, list[str]] = {}
    for line in watched.stderr.splitlines():
        region, _, rest = line.partition(": ")
        lines.setdefault(region, []).append(rest)
    assert set(lines) == set(REGIONS)
    assert all(seen[-1] == "Completed 100%" for seen in lines.values()), lines
    # westeurope copies at 2 MiB/s: the watch saw it on its way.
    assert any(line.startswith("Replicating ") for line in lines["westeurope"]), lines


# Without a server: the pieces the commands are built of.


def test_edit_target_regions_merges_adds_and_folds_names():
    current = [
        {"name": "eastus", "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS", "excludeFromLatest": True}
    ]
    edited = replication.edit_target_regions(
        current, [{"name": "East US", "regionalReplicaCount": 3}, {"name": "westus"}], []
    )
    assert edited == [
        {"name": "eastus", "regionalReplicaCount": 3, "storageAccountType": "Standard_LRS", "excludeFromLatest": True},
        {"name": "westus"},
    ]
    assert current[0]["regionalReplicaCount"] == 1  # the version as read is left alone
    assert replication.edit_target_regions(edited, [], ["West US"]) == edited[:1]
    with pytest.raises(CliError, match="both added and removed"):
        replication.edit_target_regions(current, [{"name": "westus"}], ["westus"])


def test_plan_rows_and_sizes():
    assert [replication.human_size(n) for n in (0, 1023, 1024, 5 * MIB // 2, 3 << 40, 5000 << 40)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "2.5 MiB",
        "3.0 TiB",
        "5000.0 TiB",
    ]
    plan = {
        "added": [{"region": "westus", "replicas": 2}],
        "removed": [{"region": "westeurope", "replicas": 1}],
        "bytesToMove": {"westus": 4 * MIB},
        "totalBytesToMove": 4 * MIB,
    }
    assert replication.plan_rows(plan) == [
        {"region": "westus", "change": "add", "replicas": 2, "bytesToMove": "4.0 MiB"},
        {"region": "westeurope", "change": "remove", "replicas": 1, "bytesToMove": "0 B"},
    ]


def test_bar_view_draws_a_bar_per_region():
    out = io.StringIO()
    with replication.BarView(Console(file=out, force_terminal=True, width=120)) as view:
        view.update(
            {
                "eastus": {"region": "eastus", "state": "Completed", "progress": 100, "details": ""},
                "westus": {"region": "westus", "state": "Failed", "progress": 40, "details": "[disk full]"},
            }
        )
    text = out.getvalue()
    assert "eastus" in text and "westus" in text and "100%" in text and "[disk full]" in text


def fake_client(states: list[tuple[str, str]]) -> ArmClient:
    """A client whose version answers westus in each of `states` (state, details) in turn, the last for ever."""
    answers = list(states)

    def handler(request: httpx.Request) -> httpx.Response:
        state, details = answers.pop(0) if len(answers) > 1 else answers[0]
        return httpx.Response(
            200,
            json={
                "name": "1.0.0",
                "properties": {
                    "publishingProfile": {"targetRegions": [{"name": "eastus"}, {"name": "westus"}]},
                    "replicationStatus": {
                        "aggregatedState": "Failed" if state == "Failed" else "InProgress",
                        "summary": [
                            {"region": "eastus", "state": "Completed", "progress": 100, "details": ""},
                            {"region": "westus", "state": state, "progress": 40, "details": details},
                        ],
                    },
                },
            },
        )

    return ArmClient(Profile("https://gallery.test", "token", None, "sub"), transport=httpx.MockTransport(handler))


def test_a_failed_region_is_shown_and_waited_on(capsys):
    failing = [("Failed", "replica 0: disk full")] * 2 + [("Failed", "replica 0: gone")]
    with fake_client(failing + [("Replicating", ""), ("Completed", "")]) as client:
        replication.wait_for_regions(client, "/v", ["westus"], 0, 10)
    assert capsys.readouterr().err.splitlines() == [
        "westus: Failed 40% (replica 0: disk full); the server retries it, still waiting.",
        "westus: Failed 40% (replica 0: gone); the server retries it, still waiting.",
        "westus: Replicating 40%",
        "westus: Completed 40%",
    ]
    with fake_client([("Failed", "replica 0: disk full")]) as client, pytest.raises(CliError) as exc:
        replication.wait_for_regions(client, "/v", ["westus"], 0, 0)
    assert exc.value.code == "WaitTimeout"
    assert exc.value.message.endswith("Not completed: westus: Failed 40% (replica 0: disk full).")
