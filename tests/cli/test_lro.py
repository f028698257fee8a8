"""Long-running operations: --no-wait returns at once; otherwise the CLI polls until the operation ends.

These use a server without workers (`workerless_server`), so an operation stays InProgress until the test starts a
`vmgallery worker` process: whether the CLI waited or not is then decided by the test, not by timing.
"""

from __future__ import annotations

import time
import uuid

import pytest

from .conftest import Cli, cli_process, env_for, finish, start_worker, stop_worker

GALLERY_API = {"api-version": "2026-03-03"}


@pytest.fixture
def slow(workerless_server, subscription) -> Cli:
    return Cli(env_for(workerless_server, subscription))


@pytest.fixture
def slow_group(slow) -> str:
    # Resource group PUTs answer at once, as in ARM, so this needs no worker.
    name = f"rg-{uuid.uuid4().hex[:8]}"
    slow.ok("group", "create", "-n", name, "-l", "eastus")
    return name


def gallery_state(server, subscription: str, group: str, name: str) -> str | None:
    with server.http() as http:
        response = http.get(
            f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/{name}",
            params=GALLERY_API,
        )
    return response.json()["properties"]["provisioningState"] if response.status_code == 200 else None


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_no_wait_returns_before_the_operation_ends(slow, slow_group):
    result = slow.ok("sig", "create", "-g", slow_group, "-r", "pending", "--no-wait")
    assert result.stdout == "" and result.stderr == ""
    assert (
        slow.ok("sig", "show", "-g", slow_group, "-r", "pending", "--query", "provisioningState", "-o", "tsv").stdout
        == "Creating\n"
    )


def test_the_cli_waits_for_the_operation_then_prints_the_final_resource(
    workerless_server, subscription, slow, slow_group
):
    # rich draws its progress only on a terminal; these make the pipe count as one.
    creating = cli_process(
        workerless_server,
        subscription,
        "sig",
        "create",
        "-g",
        slow_group,
        "-r",
        "waited",
        "--description",
        "polled",
        TTY_COMPATIBLE="1",
        TTY_INTERACTIVE="1",
    )
    worker = None
    try:
        wait_until(lambda: gallery_state(workerless_server, subscription, slow_group, "waited") == "Creating")
        assert creating.poll() is None, creating.communicate()
        worker = start_worker(workerless_server)
        code, out, err = finish(creating)
        assert code == 0, err
        assert '"provisioningState": "Succeeded"' in out and '"description": "polled"' in out
        assert "Running (gallery 'waited')" in err

        code, _, err = finish(
            cli_process(workerless_server, subscription, "sig", "delete", "-g", slow_group, "-r", "waited")
        )
        assert code == 0, err
        assert gallery_state(workerless_server, subscription, slow_group, "waited") is None
    finally:
        if creating.poll() is None:
            creating.kill()
        if worker is not None:
            stop_worker(worker)


def test_delete_with_no_wait_leaves_the_delete_running(workerless_server, subscription, slow, slow_group):
    worker = start_worker(workerless_server)
    try:
        code, _, err = finish(
            cli_process(workerless_server, subscription, "sig", "create", "-g", slow_group, "-r", "doomed")
        )
        assert code == 0, err
    finally:
        stop_worker(worker)
    assert slow.ok("sig", "delete", "-g", slow_group, "-r", "doomed", "--no-wait").stdout == ""
    assert gallery_state(workerless_server, subscription, slow_group, "doomed") == "Deleting"
