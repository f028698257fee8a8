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


def summary_lines() -> list[str]:
    return [
        f"fuzz[{name}]: {t.requests} requests over {len(t.operations)} operations, "
        f"{t.server_errors} server errors, {t.mismatches} schema mismatches "
        f"(statuses: {', '.join(f'{mode} {status}: {n}' for (mode, status), n in sorted(t.statuses.items()))})"
        for name, t in TALLIES.items()
    ]


def pytest_sessionfinish(session):
    # Under pytest-xdist the run happens in a worker, whose terminal nobody sees: hand the lines to the controller
    # (tests/conftest.py prints them).
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["fuzz_summary"] = summary_lines()


def pytest_terminal_summary(terminalreporter):
    for line in summary_lines():
        terminalreporter.write_line(line)
