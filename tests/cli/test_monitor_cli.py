"""`vmgallery monitor activity-log list` with az's options, against the real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def test_activity_log_list(cli, group, subscription):
    cli.ok("sig", "create", "-g", group, "-r", "gal1", "-o", "none")
    cli.ok("group", "create", "-n", f"{group}-other", "-l", "eastus", "-o", "none")
    events = cli.json("monitor", "activity-log", "list", "--resource-group", group, "--offset", "1h")
    ops = [(e["operationName"]["value"], e["status"]["value"]) for e in events]
    assert ("Microsoft.Compute/galleries/write", "Started") in ops
    assert ("Microsoft.Resources/subscriptions/resourceGroups/write", "Succeeded") in ops
    assert {e["resourceGroupName"] for e in events} == {group}
    correlation = events[0]["correlationId"]
    same = cli.json("monitor", "activity-log", "list", "--correlation-id", correlation)
    assert same and {e["correlationId"] for e in same} == {correlation}
    assert len(cli.json("monitor", "activity-log", "list", "--max-events", "1")) == 1
    start = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cli.json("monitor", "activity-log", "list", "--start-time", start, "--offset", "1d") == []
    table = cli.ok("monitor", "activity-log", "list", "-g", group, "-o", "table").stdout
    assert table.splitlines()[0].split() == ["Time", "Operation", "Status", "Caller", "ResourceId"]
    assert "Microsoft.Compute/galleries/write" in table
    refused = cli.fails("monitor", "activity-log", "list", "--offset", "yesterday")
    assert "--offset" in refused.stderr
    refused = cli.fails("monitor", "activity-log", "list", "-g", group, "--correlation-id", correlation)
    assert "only one of" in refused.stderr
