"""The CLI's LRO helpers read Retry-After (seconds or an HTTP date, clamped) and tell a finished write from one to
poll; a failed operation is reported with its own code and message."""

import email.utils
import time

import httpx
import pytest

from vmgallery.entrypoints.cli import lro
from vmgallery.entrypoints.cli.client import CliError


def response(method="PUT", status=201, headers=None, body=None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, json=body, request=httpx.Request(method, "https://x/y"))


def test_retry_after_reads_seconds_dates_and_clamps():
    assert lro.retry_after(response()) == lro.DEFAULT_RETRY_AFTER
    assert lro.retry_after(response(headers={"Retry-After": "2"})) == 2.0
    assert lro.retry_after(response(headers={"Retry-After": "-4"})) == 0.0
    assert lro.retry_after(response(headers={"Retry-After": "3600"})) == lro.MAX_RETRY_AFTER
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 10 <= lro.retry_after(response(headers={"Retry-After": later})) <= 20
    assert lro.retry_after(response(headers={"Retry-After": "soon"})) == lro.DEFAULT_RETRY_AFTER


def test_what_counts_as_finished():
    op = {"Azure-AsyncOperation": "https://x/op"}
    assert lro._finished(response())
    assert lro._finished(response("DELETE", 200, op)) and not lro._finished(response("DELETE", 202, op))
    assert lro._finished(response("POST", 200, op, {"ok": 1})) and not lro._finished(response("POST", 202, op))
    assert lro._finished(response(headers=op, body={"properties": {"provisioningState": "Succeeded"}}))
    assert not lro._finished(response(headers=op, body={"properties": {"provisioningState": "Creating"}}))
    assert not lro._finished(response(headers=op, body={"properties": {"provisioningState": "Failed"}}))


def test_a_failed_operation_says_its_own_error_or_its_state():
    with pytest.raises(CliError, match="disk is gone") as raised:
        lro._raise_failed({"status": "Failed", "error": {"code": "NotFound", "message": "disk is gone"}}, "d")
    assert raised.value.code == "NotFound"
    with pytest.raises(CliError, match="The operation on gallery g ended Canceled"):
        lro._raise_failed({"status": "Canceled"}, "gallery g")


def test_a_post_action_s_result_is_its_location_s_answer_not_a_get_of_the_action_url():
    from vmgallery.entrypoints.cli.client import ArmClient
    from vmgallery.entrypoints.cli.profile import Profile

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:  # a fake ARM server for one POST action
        seen.append((request.method, request.url.path))
        if request.method == "POST":
            headers = {"Azure-AsyncOperation": "https://x/op", "Location": "https://x/result", "Retry-After": "0"}
            return httpx.Response(202, headers=headers)
        if request.url.path == "/op":
            return httpx.Response(200, json={"status": "Succeeded"})
        return httpx.Response(200, json={"outcome": "shared"})

    profile = Profile("https://x", "token", None, "sub")
    with ArmClient(profile, transport=httpx.MockTransport(handler)) as client:
        started = client.send("POST", "/g/share", "2023-07-03", {})
        assert lro.wait(client, started, "gallery g") == {"outcome": "shared"}
    assert seen == [("POST", "/g/share"), ("GET", "/op"), ("GET", "/result")]
