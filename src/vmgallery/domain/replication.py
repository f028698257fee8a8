"""Replication rules: which replicas a version should have, how replica states add up per region, and what a change
of target regions would do.

A replica is (region, index). Its states move only along `TRANSITIONS`: Pending -> Replicating -> Completed, or
Failed (retried with backoff). A region is Completed when all its replicas are; that is when the version may be used
there. A version being created is ready when every replica in its source region is Completed (`source_complete`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import Conflict, OperationNotAllowed
from .validate import Body

PENDING, REPLICATING, COMPLETED, FAILED = "Pending", "Replicating", "Completed", "Failed"
STATES = (PENDING, REPLICATING, COMPLETED, FAILED)

# Every move a replica's state may make, and what makes it. A write names the state it expects to leave, and the
# store applies it only if the row is still in that state, so of two writers racing for one row exactly one wins.
TRANSITIONS: dict[tuple[str, str], str] = {
    (PENDING, COMPLETED): "the capture itself is the replica (the source region's primary store)",
    (PENDING, REPLICATING): "its copy starts",
    (FAILED, REPLICATING): "its copy is retried",
    # The job's lease passed to another worker (the first one died): only the lease holder may write, so this is
    # the new holder taking the copy over, never a second copier.
    (REPLICATING, REPLICATING): "its copy is resumed",
    (REPLICATING, COMPLETED): "its copy is verified and durable",
    (PENDING, FAILED): "its copy could not start",
    (REPLICATING, FAILED): "its copy failed",
    (FAILED, FAILED): "its retry failed again",
    (COMPLETED, FAILED): "verification found a chunk that no other replica can repair",
}


class RefusedTransition(ValueError):
    """A replica state write the table does not allow: a bug in the caller, never a client's fault."""


def check_move(current: str, to: str) -> None:
    if (current, to) not in TRANSITIONS:
        raise RefusedTransition(f"a replica cannot go from {current} to {to}")


@dataclass(frozen=True)
class Wanted:
    region: str
    index: int
    storage_type: str


def wanted(spec: Body) -> list[Wanted]:
    """The replicas a version's publishing profile asks for (a normalized spec: every region is explicit)."""
    profile = spec["properties"]["publishingProfile"]
    return [
        Wanted(r["name"], i, r["storageAccountType"])
        for r in profile["targetRegions"]
        for i in range(r["regionalReplicaCount"])
    ]


@dataclass(frozen=True)
class ReplicaState:
    region: str
    index: int
    state: str
    bytes_total: int
    bytes_done: int
    error: str | None = None


def source_complete(states: Iterable[ReplicaState], source_region: str) -> bool:
    """Whether a version being created is ready: every replica in its source region is Completed."""
    return all(s.state == COMPLETED for s in states if s.region == source_region)


def region_state(states: Iterable[ReplicaState]) -> tuple[str, int, str]:
    """(state, progress percent, details) of one region from its replicas' states."""
    states = list(states)
    # A replica whose copy has not started yet does not know its size: count it as big as its siblings, so the
    # region's percentage never goes backwards when it starts.
    size = max((s.bytes_total for s in states), default=0)
    total = sum(s.bytes_total or size for s in states)
    done = sum(min(s.bytes_done, s.bytes_total or size) for s in states)
    complete = sum(1 for s in states if s.state == COMPLETED)
    if states and complete == len(states):
        return "Completed", 100, ""
    failed = [s for s in states if s.state == FAILED]
    progress = int(done * 100 / total) if total else int(complete * 100 / max(len(states), 1))
    progress = min(progress, 99)
    if failed:
        return "Failed", progress, "; ".join(f"replica {s.index}: {s.error}" for s in failed)
    if any(s.state in (REPLICATING, COMPLETED) for s in states):
        return "Replicating", progress, f"{complete} of {len(states)} replicas complete"
    return "Replicating", progress, f"queued: {len(states)} replica(s)"


def summary(states: Iterable[ReplicaState]) -> Body:
    """`replicationStatus` as the API shows it."""
    by_region: dict[str, list[ReplicaState]] = {}
    for s in states:
        by_region.setdefault(s.region, []).append(s)
    rows = []
    for region, group in by_region.items():
        state, progress, details = region_state(group)
        rows.append({"region": region, "state": state, "details": details, "progress": progress})
    kinds = {r["state"] for r in rows}
    aggregated = (
        "Completed"
        if kinds == {"Completed"}
        else "Failed"
        if "Failed" in kinds
        else "InProgress"
        if rows
        else "Unknown"
    )
    return {"aggregatedState": aggregated, "summary": rows}


@dataclass(frozen=True)
class Plan:
    added: tuple[Wanted, ...]
    removed: tuple[tuple[str, int], ...]

    @property
    def removed_regions(self) -> list[str]:
        return sorted({r for r, _ in self.removed})


def plan(current: Iterable[tuple[str, int]], spec: Body) -> Plan:
    want = wanted(spec)
    have = set(current)
    return Plan(
        tuple(w for w in want if (w.region, w.index) not in have),
        tuple(sorted(have - {(w.region, w.index) for w in want})),
    )


def check_removal(plan_: Plan, new_spec: Body, holding: set[str], source_region: str) -> None:
    """Dropping a region that holds replicas needs safetyProfile.allowDeletionOfReplicatedLocations; the source
    region can never be dropped (its copy is the version)."""
    gone = {
        r
        for r in plan_.removed_regions
        if r not in {t["name"] for t in new_spec["properties"]["publishingProfile"]["targetRegions"]}
    }
    if source_region in gone:
        raise OperationNotAllowed(
            f"The source region '{source_region}' cannot be removed from the target regions.",
            "properties.publishingProfile.targetRegions",
        )
    replicated = sorted(gone & holding)
    allowed = (new_spec["properties"].get("safetyProfile") or {}).get("allowDeletionOfReplicatedLocations") is True
    if replicated and not allowed:
        raise Conflict(
            f"Removing target region(s) {', '.join(replicated)} would delete their replicas; set "
            "properties.safetyProfile.allowDeletionOfReplicatedLocations to true to allow it.",
            "properties.publishingProfile.targetRegions",
            code="ChangeOfReplicatedLocationsNotAllowed",
        )
