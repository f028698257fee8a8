"""The fuzzing run's tally, printed at the end of the session so CI logs (and the merger) can quote it."""

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


def pytest_terminal_summary(terminalreporter):
    for name, t in TALLIES.items():
        terminalreporter.write_line(
            f"fuzz[{name}]: {t.requests} requests over {len(t.operations)} operations, "
            f"{t.server_errors} server errors, {t.mismatches} schema mismatches "
            f"(statuses: {', '.join(f'{mode} {status}: {n}' for (mode, status), n in sorted(t.statuses.items()))})"
        )
