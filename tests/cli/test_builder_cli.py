"""`vmgallery image builder run|cancel` against a real server whose builds run on the fake engine
(tests/fake_engine.py): the CLI waits for a build as for any write (progress bar, the operation's own error, each
poll's Retry-After)."""

from __future__ import annotations

import functools
import itertools
import json
import ssl
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.api.builder_support import import_platform_image
from tests.api.test_image_builder import CONFIG, make_ext4
from tests.conftest import running_server
from vmgallery.entrypoints.cli import session
from vmgallery.entrypoints.cli.client import ArmClient

from .conftest import Cli, cli_process, env_for, finish


@pytest.fixture(scope="module")
def builder_server(backend, tmp_path_factory):
    data = tmp_path_factory.mktemp(f"cli-builder-{backend}")
    with running_server(backend, data, CONFIG) as srv:
        disk = data / "tiny.raw"
        make_ext4(disk)
        import_platform_image(srv, disk)
        yield srv


@pytest.fixture
def builder(builder_server, subscription) -> Cli:
    return Cli(env_for(builder_server, subscription))


@pytest.fixture
def definition_id(builder) -> str:
    group = f"rg-{uuid.uuid4().hex[:8]}"
    builder.ok("group", "create", "-n", group, "-l", "eastus")
    builder.ok("sig", "create", "-g", group, "-r", "gal")
    identifier = ["-p", "p", "-f", "tiny", "-s", "s", "--os-type", "Linux", "--hyper-v-generation", "V1"]
    return builder.json("sig", "image-definition", "create", "-g", group, "-r", "gal", "-i", "tiny", *identifier)["id"]


def make_template(builder: Cli, definition_id: str, name: str, inline: list[str], tmp_path) -> str:
    """Creates template `name` (one Shell step running `inline`) in the definition's group; returns the group."""
    subscription, group = definition_id.split("/")[2], definition_id.split("/")[4]
    uami = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ManagedIdentity"
    body = {
        "location": "eastus",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {f"{uami}/userAssignedIdentities/ib": {}}},
        "properties": {
            "source": {"type": "PlatformImage", "publisher": "vmg", "offer": "tiny", "sku": "1", "version": "latest"},
            "customize": [{"type": "Shell", "name": "step", "inline": inline}],
            "distribute": [{"type": "SharedImage", "galleryImageId": definition_id, "runOutputName": "gallery"}],
        },
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body))
    builder.ok("image", "builder", "create", "-g", group, "-n", name, "--image-template", str(path), "-o", "none")
    return group


def run_state(builder: Cli, group: str, name: str) -> str:
    return builder.json("image", "builder", "show", "-g", group, "-n", name)["lastRunStatus"]["runState"]


def test_run_waits_with_a_progress_bar_and_the_build_distributes(
    builder_server, subscription, builder, definition_id, tmp_path
):
    group = make_template(builder, definition_id, "t1", ["echo hello from the cli"], tmp_path)
    # rich draws its progress only on a terminal; these make the pipe count as one.
    running = cli_process(
        builder_server,
        subscription,
        "image",
        "builder",
        "run",
        "-g",
        group,
        "-n",
        "t1",
        TTY_COMPATIBLE="1",
        TTY_INTERACTIVE="1",
    )
    code, out, err = finish(running)
    assert code == 0, err
    assert out == "" and "Running (image template 't1')" in err
    assert run_state(builder, group, "t1") == "Succeeded"
    outputs = builder.json("image", "builder", "show-runs", "-g", group, "-n", "t1")
    assert [o["artifactId"].lower() for o in outputs] == [f"{definition_id}/versions/1.0.0".lower()]


def test_a_failed_build_is_reported_with_the_operation_s_code_and_message(builder, definition_id, tmp_path):
    group = make_template(builder, definition_id, "bad", ["echo fetching agent", "exit 3"], tmp_path)
    result = builder.fails("image", "builder", "run", "-g", group, "-n", "bad")
    first = result.stderr.splitlines()[0]
    assert first.startswith("(") and ") " in first, result.stderr
    assert "'step'" in first and "exit code 3" in first and "fetching agent" in result.stderr
    assert run_state(builder, group, "bad") == "Failed"


def test_cancel_stops_the_running_build_and_the_waiting_run_says_so(
    builder_server, subscription, builder, definition_id, tmp_path
):
    group = make_template(builder, definition_id, "long", ["echo going", "sleep 120"], tmp_path)
    running = cli_process(builder_server, subscription, "image", "builder", "run", "-g", group, "-n", "long")
    try:
        deadline = time.monotonic() + 60
        while "[1 step] going" not in builder.ok("image", "builder", "logs", "-g", group, "-n", "long").stdout:
            assert time.monotonic() < deadline and running.poll() is None, "the build did not start"
            time.sleep(0.2)
        started = time.monotonic()
        assert builder.ok("image", "builder", "cancel", "-g", group, "-n", "long").stdout == ""
        code, _, err = finish(running)
    finally:
        if running.poll() is None:
            running.kill()
    assert time.monotonic() - started < 30
    assert code == 1 and "Canceled" in err, err
    assert run_state(builder, group, "long") == "Canceled"
    again = builder.fails("image", "builder", "cancel", "-g", group, "-n", "long")
    assert again.stderr.startswith("(Conflict) ") and "has no build in progress" in again.stderr


class RetryAfterRewriter(httpx.BaseTransport):
    """The real server underneath; a fake of a server whose Retry-After hint changes: each response that carries the
    header gets `post` (the POST's) or the next of `polls` instead, and the poll values sent are kept in `sent`."""

    def __init__(self, ca: str, post: str, polls: Iterator[str]):
        self.inner = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=ca))
        self.post, self.polls, self.sent = post, polls, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if "Retry-After" in response.headers:
            value = self.post if request.method == "POST" else next(self.polls)
            if request.method != "POST":
                self.sent.append(float(value))
            response.headers["Retry-After"] = value
        return response

    def close(self) -> None:
        self.inner.close()


def test_each_poll_s_retry_after_sets_the_wait_before_the_next_poll(
    builder_server, builder, definition_id, tmp_path, monkeypatch
):
    group = make_template(builder, definition_id, "paced", ["sleep 1"], tmp_path)
    hints = itertools.cycle(("0.05", "0.1", "0.15", "0.2"))
    rewriter = RetryAfterRewriter(builder_server.ca, "30", hints)
    monkeypatch.setattr(session, "ArmClient", functools.partial(ArmClient, transport=rewriter))
    waits: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        real_sleep(min(seconds, 0.2))  # a wrong 30 s wait is recorded, not waited out

    monkeypatch.setattr(time, "sleep", sleep)
    builder.ok("image", "builder", "run", "-g", group, "-n", "paced")
    assert len(rewriter.sent) >= 3, rewriter.sent  # the build took several polls
    # The first look is at once; after each poll still in progress, that poll's hint.
    assert waits == [0.0, *rewriter.sent]
