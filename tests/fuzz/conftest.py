"""The fuzzing run's tally, printed at the end of the session (by tests/conftest.py) so CI logs can quote it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    requests: int = 0
    operations: set[str] = field(default_factory=set)
    server_errors: int = 0
    mismatches: int = 0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)  # (generation mode, status): count


TALLIES: dict[str, Tally] = {}


def summary_lines() -> list[str]:
    return [
        f"fuzz[{name}]: {t.requests} requests over {len(t.operations)} operations, "
        f"{t.server_errors} server errors, {t.mismatches} schema mismatches "
        f"(statuses: {', '.join(f'{mode} {status}: {n}' for (mode, status), n in sorted(t.statuses.items()))})"
        for name, t in sorted(TALLIES.items())
    ]


def exported() -> dict[str, dict]:
    """The tallies as plain data, for a pytest-xdist worker to hand to the controller."""
    return {
        name: {
            "requests": t.requests,
            "operations": sorted(t.operations),
            "server_errors": t.server_errors,
            "mismatches": t.mismatches,
            "statuses": [[mode, status, n] for (mode, status), n in t.statuses.items()],
        }
        for name, t in TALLIES.items()
    }


def merge(data: dict[str, dict]) -> None:
    """Add a worker's exported tallies to this process's (each worker ran some of each backend's operations)."""
    for name, d in data.items():
        t = TALLIES.setdefault(name, Tally())
        t.requests += d["requests"]
        t.operations.update(d["operations"])
        t.server_errors += d["server_errors"]
        t.mismatches += d["mismatches"]
        for mode, status, n in d["statuses"]:
            t.statuses[(mode, status)] += n


def pytest_sessionfinish(session):
    # Under pytest-xdist the run happens in workers, whose terminals nobody sees: each hands its tallies to the
    # controller, which adds them up and prints them (tests/conftest.py).
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["fuzz_tallies"] = exported()
