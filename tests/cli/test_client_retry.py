"""The CLI's ARM client sends a request once more when the server dropped the kept-alive connection under it."""

import httpx
import pytest

from vmgallery.entrypoints.cli.client import ArmClient, CliError
from vmgallery.entrypoints.cli.profile import Profile


def _client(handler) -> ArmClient:
    # httpx.MockTransport: a fake server, standing in for uvicorn closing an idle connection as a request goes out.
    return ArmClient(Profile("https://gallery.test", "token", None, "sub"), transport=httpx.MockTransport(handler))


def test_a_dropped_kept_alive_connection_is_retried_once():
    calls = []

    def handler(request):
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, json={"ok": True})

    with _client(handler) as client:
        assert client.get("/subscriptions/sub/resourcegroups/g", "2021-04-01") == {"ok": True}
    assert calls == ["/subscriptions/sub/resourcegroups/g"] * 2


def test_a_server_that_keeps_dropping_is_an_error_not_a_loop():
    calls = []

    def handler(request):
        calls.append(1)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    with _client(handler) as client, pytest.raises(CliError, match="failed"):
        client.get("/subscriptions/sub/resourcegroups/g", "2021-04-01")
    assert len(calls) == 2
