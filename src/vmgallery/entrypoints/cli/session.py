"""What every remote command does around its own work: connect, report failures as az does, wait for writes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import typer

from . import arm, lro
from .client import ArmClient, CliError
from .credentials import fresh
from .profile import ProfileError, resolve


@contextlib.contextmanager
def connect(endpoint: str | None, subscription: str | None) -> Iterator[ArmClient]:
    """An ArmClient for the resolved profile (a service principal's token renewed if it expires soon); a CliError
    inside becomes `(Code) message` and exit code 1."""
    try:
        with ArmClient(fresh(resolve(endpoint=endpoint, subscription=subscription))) as client:
            yield client
    except (CliError, ProfileError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def write(
    client: ArmClient, method: str, path: str, api_version: str, body: Any = None, *, no_wait: bool, what: str
) -> dict | None:
    """Send a write; unless `no_wait`, wait for its operation and return the resource as it ended."""
    response = client.send(method, path, api_version, body)
    if no_wait:
        return None
    return lro.wait(client, response, what)


def group_location(client: ArmClient, resource_group: str, location: str | None) -> str:
    """az's default location for a new resource: its resource group's."""
    if location:
        return location
    return client.get(arm.group(client.subscription, resource_group), arm.GROUP_API)["location"]
