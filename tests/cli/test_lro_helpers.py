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
