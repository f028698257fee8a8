"""Waiting for ARM long-running operations, as az does: poll `Azure-AsyncOperation`, waiting each poll's Retry-After,
then GET the resource (a PUT or PATCH), the operation's result (a POST action: its `Location`), or nothing (a DELETE).

Most writes finish within the request (the body already says Succeeded, or a DELETE or POST answers 200/204); then
there is nothing to wait for. Otherwise a spinner with the operation's percentComplete runs on stderr until it ends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .client import ArmClient, CliError

if TYPE_CHECKING:
    import httpx

TERMINAL = ("Succeeded", "Failed", "Canceled")
# ARM's own fallback is 30 s; a vmgallery server always sends Retry-After, so this only guards odd proxies.
DEFAULT_RETRY_AFTER = 5.0
MAX_RETRY_AFTER = 60.0


def retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After")
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime  # rare (ARM sends seconds): not loaded with every command

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _finished(response: httpx.Response) -> bool:
    if "Azure-AsyncOperation" not in response.headers:
        return True
    if response.request.method in ("DELETE", "POST"):
        return response.status_code in (200, 204)
    body = response.json() if response.content else {}
    # A Failed state is not "finished" here: polling fetches the operation's error to report.
    return ((body or {}).get("properties") or {}).get("provisioningState") == "Succeeded"


def _raise_failed(status: dict, what: str) -> None:
    error = status.get("error") or {}
    raise CliError(
        error.get("message") or f"The operation on {what} ended {status.get('status')}.",
        error.get("code") or status.get("status"),
    )


def _action_result(client: ArmClient, response: httpx.Response) -> dict | None:
    """A finished POST action's result: what its `Location` (ARM's operationResults) answers, if anything."""
    location = response.headers.get("Location")
    if not location:
        return None
    result = client.send("GET", location)
    return result.json() if result.status_code == 200 and result.content else None


def wait(client: ArmClient, response: httpx.Response, what: str) -> dict | None:
    """Wait for the operation `response` started; return the resource as it ended (None after a delete), or a POST
    action's result.

    Raises CliError if the operation failed.
    """
    method = response.request.method
    if _finished(response):
        return response.json() if method != "DELETE" and response.content else None
    url = response.headers["Azure-AsyncOperation"]
    # The first look is at once: a DELETE answers 202 even when it has already finished, as ARM's do.
    delay = 0.0
    # rich loads only when a bar is shown: most commands finish without one.
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        console=console,
        transient=True,
        # Off a terminal rich draws nothing but a blank line at the end, which would come before an error message.
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(f"Running ({what})", total=100)
        while True:
            time.sleep(delay)
            poll = client.send("GET", url)
            status = poll.json()
            progress.update(task, completed=float(status.get("percentComplete") or 0))
            if status.get("status") == "Succeeded":
                break
            if status.get("status") in TERMINAL:
                _raise_failed(status, what)
            delay = retry_after(poll)
    if method == "DELETE":
        return None
    if method == "POST":
        return _action_result(client, response)
    # The request URL carries the resource path and its api-version: the final GET is az's.
    return client.send("GET", str(response.request.url)).json()
