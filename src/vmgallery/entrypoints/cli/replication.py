"""Replication from the CLI's side: editing a version's target regions, showing a replication plan, and following
a version's per-region replication status (waiting for regions, or watching them with progress bars).

A region's replication state is Replicating, Completed or Failed. The server retries a Failed replica by itself,
with backoff, so Failed is not an end here: waiting and watching go on (showing the failure) until the regions
are Completed or the timeout passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import typer

from ...domain.ids import normalize_location
from . import arm
from .client import ArmClient, CliError
from .output import OutputFormat, emit

if TYPE_CHECKING:
    from rich.console import Console

COMPLETED, FAILED = "Completed", "Failed"
# The server's refusal to drop regions holding replicas without safetyProfile.allowDeletionOfReplicatedLocations.
REPLICATED_REMOVAL_REFUSED = "ChangeOfReplicatedLocationsNotAllowed"
PLAN_COLUMNS = (("Region", "region"), ("Change", "change"), ("Replicas", "replicas"), ("BytesToMove", "bytesToMove"))


def edit_target_regions(current: list[dict], add: list[dict], remove: list[str]) -> list[dict]:
    """`current` with `add` merged in (a listed region takes the given count and storage type, the rest of its
    settings kept) and `remove` taken out; regions are compared as Azure folds them ("West US" is westus)."""
    dropping = {normalize_location(r) for r in remove}
    adding = {normalize_location(r["name"]) for r in add}
    if both := sorted(dropping & adding):
        raise CliError(f"usage error: {', '.join(both)} is both added and removed.", "MutuallyExclusiveArgument")
    present = {normalize_location(r["name"]) for r in current}
    if missing := sorted(dropping - present):
        raise CliError(
            f"{', '.join(missing)} is not a target region of this version; its target regions are "
            f"{', '.join(sorted(present))}.",
            "InvalidArgumentValue",
        )
    regions = [dict(r) for r in current if normalize_location(r["name"]) not in dropping]
    by_name = {normalize_location(r["name"]): r for r in regions}
    for region in add:
        name = normalize_location(region["name"])
        if name in by_name:
            by_name[name].update({k: v for k, v in region.items() if k != "name"})
        else:
            by_name[name] = dict(region)
            regions.append(by_name[name])
    return regions


def human_size(size: int) -> str:
    """Bytes in binary units with one decimal: 512 B, 4.0 MiB, 1.5 GiB."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):  # noqa: B007 (the unit the loop stops at is printed)
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"


def plan_rows(plan: dict) -> list[dict]:
    """One row per region and change, bytes in readable units (a removal moves nothing)."""
    moving = plan.get("bytesToMove") or {}
    rows = [
        {
            "region": a["region"],
            "change": "add",
            "replicas": a["replicas"],
            "bytesToMove": human_size(moving.get(a["region"], 0)),
        }
        for a in plan.get("added") or []
    ]
    rows += [
        {"region": r["region"], "change": "remove", "replicas": r["replicas"], "bytesToMove": human_size(0)}
        for r in plan.get("removed") or []
    ]
    return rows


def emit_plan(plan: dict, output: OutputFormat, query: str | None) -> None:
    """The plan as the server gave it; `-o table` (without --query) as rows with readable sizes and a total."""
    if output is not OutputFormat.table or query:
        emit(plan, output, query, ())
        return
    emit(plan_rows(plan), output, None, PLAN_COLUMNS)
    typer.echo(f"Total bytes to move: {human_size(plan.get('totalBytesToMove') or 0)}")


def read_version(client: ArmClient, path: str, expand: str | None = None) -> dict:
    """GET an image version, with `$expand` (ReplicationStatus adds `properties.replicationStatus`)."""
    if expand is None:
        return client.get(path, arm.VERSION_API["show"])
    # The query is written out: httpx's params= would replace it, not add api-version to it.
    return client.send("GET", f"{path}?api-version={arm.VERSION_API['show']}&$expand={expand}").json()


def summary(version: dict) -> dict[str, dict]:
    """The per-region rows of a version's replicationStatus, by region name, in the order of its target regions."""
    properties = version.get("properties") or {}
    rows = {
        normalize_location(r["region"]): r for r in (properties.get("replicationStatus") or {}).get("summary") or []
    }
    targets = [
        normalize_location(t["name"]) for t in (properties.get("publishingProfile") or {}).get("targetRegions") or []
    ]
    return {r: rows[r] for r in targets if r in rows} | rows


def aggregated(version: dict) -> str | None:
    return ((version.get("properties") or {}).get("replicationStatus") or {}).get("aggregatedState")


def poll(
    client: ArmClient, path: str, interval: float, timeout: float, timed_out: Callable[[dict], str]
) -> Iterator[dict]:
    """The version (with its replication status), read every `interval` seconds until the caller stops; after
    `timeout` seconds a WaitTimeout whose message ends with `timed_out(last version read)`."""
    deadline = time.monotonic() + timeout
    while True:
        version = read_version(client, path, "ReplicationStatus")
        yield version
        if time.monotonic() + interval > deadline:
            raise CliError(f"Wait operation timed-out after {timeout:g} seconds. {timed_out(version)}", "WaitTimeout")
        time.sleep(interval)


def _describe(row: dict) -> str:
    text = f"{row['region']}: {row.get('state')} {row.get('progress', 0)}%"
    return f"{text} ({row['details']})" if row.get("details") else text


def wait_for_regions(client: ArmClient, path: str, regions: list[str], interval: float, timeout: float) -> None:
    """Until every region in `regions` is Completed, showing their progress on stderr (bars on a terminal, else a
    line per change). A Failed region is shown and waited on, since the server retries it; a region the version
    does not target fails at once."""
    wanted = [normalize_location(r) for r in regions]

    def unfinished(version: dict) -> str:
        rows = summary(version)
        return (
            "Not completed: "
            + "; ".join(
                _describe(rows[r]) if r in rows else f"{r}: not started"
                for r in wanted
                if rows.get(r, {}).get("state") != COMPLETED
            )
            + "."
        )

    with _view() as view:
        for version in poll(client, path, interval, timeout, unfinished):
            targets = [
                normalize_location(t["name"])
                for t in ((version.get("properties") or {}).get("publishingProfile") or {}).get("targetRegions") or []
            ]
            if missing := [r for r in wanted if r not in targets]:
                raise CliError(
                    f"{', '.join(missing)} is not a target region of image version '{version.get('name')}'; "
                    f"its target regions are {', '.join(targets)}.",
                    "InvalidArgumentValue",
                )
            rows = summary(version)
            view.update({r: rows[r] for r in wanted if r in rows})
            if all(rows.get(r, {}).get("state") == COMPLETED for r in wanted):
                return


class LineView:
    """For a log or a pipe: one line per change of a region's state, progress or details."""

    def __init__(self) -> None:
        self._last: dict[str, tuple] = {}

    def __enter__(self) -> LineView:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, rows: dict[str, dict]) -> None:
        for name, row in rows.items():
            seen = (row.get("state"), row.get("progress"), row.get("details"))
            if self._last.get(name) != seen:
                self._last[name] = seen
                retried = "; the server retries it, still waiting." if row.get("state") == FAILED else ""
                typer.echo(_describe(row) + retried, err=True)
        for name in [n for n in self._last if n not in rows]:
            del self._last[name]
            typer.echo(f"{name}: removed", err=True)


class BarView:
    """For a terminal: one progress bar per region with its state and details, redrawn in place."""

    STYLES = {COMPLETED: "green", FAILED: "red"}

    def __init__(self, console: Console) -> None:
        # rich loads only when bars are shown, not with every command that imports this module.
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[state]}"),
            TextColumn("{task.fields[details]}"),
            console=console,
        )
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> BarView:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def update(self, rows: dict[str, dict]) -> None:
        from rich.markup import escape

        for name, row in rows.items():
            state = row.get("state") or ""
            style = self.STYLES.get(state, "yellow")
            fields = {"state": f"[{style}]{escape(state)}[/]", "details": f"[dim]{escape(row.get('details') or '')}[/]"}
            if name not in self._tasks:
                self._tasks[name] = self._progress.add_task(escape(row["region"]), total=100, **fields)
            self._progress.update(self._tasks[name], completed=row.get("progress") or 0, **fields)
        for name in [n for n in self._tasks if n not in rows]:
            self._progress.update(self._tasks.pop(name), details="[dim]removed[/]")


def _view() -> BarView | LineView:
    from rich.console import Console

    console = Console(stderr=True)
    return BarView(console) if console.is_terminal else LineView()


def watch(client: ArmClient, path: str, interval: float, timeout: float) -> dict:
    """Show the version's replication per region on stderr until aggregatedState is Completed; return the version
    as last read. Bars on a terminal, else one line per change."""

    def state(version: dict) -> str:
        return f"Replication is {aggregated(version) or 'Unknown'}."

    with _view() as view:
        for version in poll(client, path, interval, timeout, state):
            view.update(summary(version))
            if aggregated(version) == COMPLETED:
                break
    return version
